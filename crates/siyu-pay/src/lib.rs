//! WeChat Pay API v3 (微信支付), as siyu speaks it: notification verification and resource
//! decryption (`notify`). Like `siyu-wecom`, this crate knows the provider's wire formats
//! and nothing of siyu's storage.

pub mod notify;

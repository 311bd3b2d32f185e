//! WeChat Pay API v3 (微信支付), as siyu speaks it (protocols.md §7):
//!
//! - [`notify`]: notification verification (timestamp window, key chosen by `Wechatpay-Serial`,
//!   SHA256-RSA over the raw body, `SIGNTEST` probes refused) and AEAD_AES_256_GCM resources;
//! - [`client`]: the merchant client — signed requests, verified responses, JSAPI prepay, order
//!   query and close, refunds, and `wx.requestPayment` parameters;
//! - [`resource`]: the transaction and refund resources, one type for queries and notifications;
//! - [`sandbox`]: a simulated WeChat Pay with real order and refund state, signed responses,
//!   encrypted and signed notifications with retries, and a cashier page, for tests and demo mode;
//! - [`fixtures`]: published test keys (never for real payments).
//!
//! Like `siyu-wecom`, this crate knows the provider's wire formats and nothing of siyu's storage
//! or order rules: deciding what a payment means for an order is the caller's job.

pub mod bill;
pub mod client;
pub mod fixtures;
pub mod notify;
pub mod resource;
pub mod sandbox;

pub use client::{JsapiOrder, MerchantConfig, PayClient, PayError, PayParams, RefundOrder};
pub use resource::{Notice, RefundInfo, RefundStatus, TradeState, Transaction};

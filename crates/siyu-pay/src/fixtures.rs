//! Published RSA-2048 key pairs for tests and the demo sandbox. **Never use them for real
//! payments**: the private keys ship with the source code, so anyone can sign with them.
//!
//! They exist because generating an RSA key takes seconds in a debug build; tests in every
//! crate take these instead, and only demo mode (a release build) generates a fresh key with
//! [`crate::sandbox::PaySandbox::generate_platform_key`].

/// The sandbox's "WeChat Pay" private key (PKCS#8 PEM): it signs responses and notifications.
pub const PLATFORM_KEY_PEM: &str = include_str!("../tests/fixtures/platform_key.pem");
/// The public half of [`PLATFORM_KEY_PEM`]: what a merchant verifies WeChat Pay with.
pub const PLATFORM_PUBLIC_PEM: &str = include_str!("../tests/fixtures/platform_public.pem");
/// A merchant's private key (PKCS#8 PEM): it signs API requests and `paySign`.
pub const MERCHANT_KEY_PEM: &str = include_str!("../tests/fixtures/merchant_key.pem");
/// The public half of [`MERCHANT_KEY_PEM`]: what the sandbox verifies requests with.
pub const MERCHANT_PUBLIC_PEM: &str = include_str!("../tests/fixtures/merchant_public.pem");
/// A WeChat Pay public-key id in the real format, for the fixture platform key.
pub const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
/// A 32-byte APIv3 key for tests and the demo.
pub const APIV3_KEY: &str = "siyuSandboxApiV3Key0123456789abc";

//! siyu's WeCom (企业微信) protocol: callback crypto and envelopes, typed callback events, and
//! (as the gateway grows) the API client and the sandbox that speaks the same protocol.
//!
//! Everything in this crate speaks WeCom's wire formats and nothing else: no siyu storage,
//! no HTTP framework of siyu's. Crypto and parsing are pure and take randomness and time as
//! arguments.

pub mod api;
pub mod client;
pub mod crypto;
pub mod errcode;
pub mod events;
pub mod miniprogram;
pub mod sandbox;
mod xml;

pub use client::{Client, Config as ClientConfig, WecomError};
pub use crypto::{CryptoError, Format, MsgCrypt};
pub use events::{Callback, Event};

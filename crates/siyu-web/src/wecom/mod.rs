//! The WeCom gateway at siyu's edge: the callback endpoint WeCom posts to, the gateway that
//! turns stored callbacks into typed domain events, the connection check, and the API and
//! console for all of it.

pub mod api;
pub mod callback;
pub mod corp_tags;
pub mod gateway;
pub mod live_codes;
pub mod reminders;
pub mod transfers;

pub use gateway::Gateway;

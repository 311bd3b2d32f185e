//! siyu's pure domain core.
//!
//! Owns the vocabulary every other crate speaks (ids, money, instants, roles, validation,
//! paging) and the business rules that can be stated without I/O. This crate must never
//! import a database driver, an HTTP framework or a clock that reads the system time
//! outside [`time::SystemClock`]: rules take time and randomness as arguments so they can be
//! tested exhaustively.

pub mod acquisition;
pub mod auth;
pub mod commerce;
pub mod customers;
pub mod ids;
pub mod jobs;
pub mod money;
pub mod org;
pub mod paging;
pub mod time;
pub mod validate;
pub mod wecom;

pub use ids::*;
pub use money::Fen;
pub use time::{Clock, Timestamp};

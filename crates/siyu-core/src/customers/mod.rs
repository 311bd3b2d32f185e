//! Customer operations rules: RFM scoring, segment expressions and the bitmap index that
//! evaluates them and the transfer planner
//! (OneID and lifecycle rules live in `profile`).

pub mod bitmap;
pub mod import;
pub mod profile;
pub mod retail;
pub mod rfm;
pub mod segment;
pub mod transfer;

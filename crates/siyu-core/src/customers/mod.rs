//! Customer operations rules: RFM scoring, segment expressions and the bitmap index that
//! evaluates them, the transfer planner and the limits of group transfers
//! (OneID and lifecycle rules live in `profile`).

pub mod bitmap;
pub mod campaign;
pub mod group_transfer;
pub mod import;
pub mod profile;
pub mod retail;
pub mod rfm;
pub mod segment;
pub mod transfer;

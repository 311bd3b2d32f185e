//! Customer operations rules: RFM scoring, segment expressions and the bitmap index that
//! evaluates them (OneID, lifecycle and transfers join here as they are built).

pub mod bitmap;
pub mod profile;
pub mod retail;
pub mod rfm;
pub mod segment;

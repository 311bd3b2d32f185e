//! Acquisition (引流; scrm-rules §1): the rules of channel live codes, stated without I/O.

pub mod live_code;
pub mod short_link;

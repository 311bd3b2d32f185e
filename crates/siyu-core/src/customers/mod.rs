//! Customer operations rules: RFM scoring and segmentation (more to come: OneID, lifecycle,
//! segments).

pub mod rfm;

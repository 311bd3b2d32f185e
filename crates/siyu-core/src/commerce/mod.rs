//! Commerce rules (the mini-mall): exact money arithmetic first; the pricing pipeline, stock
//! and order state machines, coupons and the marketing plays build on it.

pub mod allocate;
pub mod bargain;
pub mod catalogue;
pub mod coupon;
pub mod discount;
pub mod flash;
pub mod group_buy;
pub mod order;
pub mod presale;
pub mod pricing;
pub mod promotion;

//! The mall's storage: the catalogue and stock (`catalogue`), orders with their reservations
//! and the one compensation routine (`orders`), and payments, prepays, notifications and
//! refunds (`payments`). The rules live in `siyu_core::commerce`; WeChat Pay is spoken by the
//! edge. Every guarded write checks the rows it affected: zero rows is a business refusal.

pub mod catalogue;
pub mod coupons;
pub mod discounts;
pub mod flash;
pub mod orders;
pub mod payments;
pub mod presales;
pub mod promotions;
pub mod reconcile;

/// A business refusal: a stable code, the field it concerns (if any) and an explanation.
pub(crate) fn rejected(code: &'static str, field: Option<&str>, message: impl Into<String>) -> crate::StoreError {
    crate::StoreError::Rejected { code, field: field.map(str::to_string), message: message.into() }
}

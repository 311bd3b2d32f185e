//! The mall's storage: the catalogue and stock (`catalogue`), orders with their reservations
//! and the one compensation routine (`orders`), and payments, prepays, notifications and
//! refunds (`payments`). The rules live in `siyu_core::commerce`; WeChat Pay is spoken by the
//! edge. Every guarded write checks the rows it affected: zero rows is a business refusal.

pub mod bargains;
pub mod catalogue;
pub mod coupons;
pub mod discounts;
pub mod flash;
pub mod group_buys;
pub mod orders;
pub mod payments;
pub mod presales;
pub mod promotions;
pub mod reconcile;

/// A business refusal: a stable code, the field it concerns (if any) and an explanation.
pub(crate) fn rejected(code: &'static str, field: Option<&str>, message: impl Into<String>) -> crate::StoreError {
    crate::StoreError::Rejected { code, field: field.map(str::to_string), message: message.into() }
}

/// STK-1 across the plays that sell a SKU at their own price (预售, 秒杀, 拼团, 砍价): the name
/// of an active one, other than `$id`, holding the SKU over an overlapping span, in the
/// caller's transaction. A bargain's span runs to its purchase deadline.
#[macro_export]
#[doc(hidden)]
macro_rules! activity_clash {
    ($tx:expr, $tenant:expr, $sku:expr, $start:expr, $end:expr, $id:expr) => {{
        let name: Option<String> = sqlx::query_scalar(
            "SELECT s.name FROM presale_skus k JOIN presales s ON s.tenant_id = k.tenant_id AND s.id = k.presale_id \
             WHERE k.tenant_id = $1 AND k.sku_id = $2 AND s.status = 'active' AND s.id <> $5 \
             AND s.deposit_start < $4 AND $3 < s.final_end \
             UNION ALL SELECT f.name FROM flash_sale_skus k JOIN flash_sales f ON f.tenant_id = k.tenant_id \
             AND f.id = k.sale_id WHERE k.tenant_id = $1 AND k.sku_id = $2 AND f.status = 'active' AND f.id <> $5 \
             AND f.starts_at < $4 AND $3 < f.ends_at \
             UNION ALL SELECT g.name FROM group_buy_skus k JOIN group_buys g ON g.tenant_id = k.tenant_id \
             AND g.id = k.activity_id WHERE k.tenant_id = $1 AND k.sku_id = $2 AND g.status = 'active' \
             AND g.id <> $5 AND g.starts_at < $4 AND $3 < g.ends_at \
             UNION ALL SELECT b.name FROM bargains b WHERE b.tenant_id = $1 AND b.sku_id = $2 \
             AND b.status = 'active' AND b.id <> $5 AND b.starts_at < $4 AND $3 < b.purchase_deadline",
        )
        .bind($tenant.0)
        .bind($sku.0)
        .bind($start.0)
        .bind($end.0)
        .bind($id.0)
        .fetch_optional(&mut *$tx)
        .await?;
        name
    }};
}

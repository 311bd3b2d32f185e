//! The mall's storage: the catalogue and stock (`catalogue`), orders with their reservations
//! and the one compensation routine (`orders`), and payments, prepays, notifications and
//! refunds (`payments`). The rules live in `siyu_core::commerce`; WeChat Pay is spoken by the
//! edge. Every guarded write checks the rows it affected: zero rows is a business refusal.

pub mod bargains;
pub mod catalogue;
pub mod coupons;
pub mod discounts;
pub mod flash;
pub mod flash_gate;
pub mod group_buys;
pub mod orders;
pub mod payments;
pub mod presales;
pub mod promotions;
pub mod reconcile;

impl crate::Store {
    /// The SKUs a play names (预售, 秒杀, 拼团, 砍价), each the tenant's and on sale, with their
    /// products, in the order given; with `one_product`, all of one product, refused with that
    /// message otherwise.
    pub(crate) async fn activity_skus<'a>(
        &self,
        tenant: siyu_core::TenantId,
        ids: impl Iterator<Item = &'a str>,
        one_product: Option<&str>,
    ) -> crate::Result<Vec<(siyu_core::SkuId, siyu_core::ProductId)>> {
        let mut out = Vec::new();
        for (i, s) in ids.enumerate() {
            let field = format!("skus.{i}.sku_id");
            let id: siyu_core::SkuId = s.parse().map_err(|_| rejected("bad_reference", Some(&field), "no such SKU"))?;
            let k = self.sku(tenant, id).await.map_err(|e| match e {
                crate::StoreError::NotFound => rejected("bad_reference", Some(&field), "no such SKU"),
                other => other,
            })?;
            if !k.active {
                return Err(rejected("sku_unavailable", Some(&field), "this SKU is not on sale"));
            }
            out.push((id, k.product_id));
        }
        if let (Some(message), Some(first)) = (one_product, out.first()) {
            if out.iter().any(|s| s.1 != first.1) {
                return Err(rejected("mixed_products", Some("skus"), message));
            }
        }
        Ok(out)
    }
}

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

//! Item promotions: 限时折扣 and 第二件半价 with their windows. A SKU takes at most one 限时折扣
//! and a product at most one 第二件半价 at any instant (STK-1): creation takes the tenant row
//! first, so two creators cannot both pass the check.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::discount::{DiscountInput, DiscountKind};
use siyu_core::{DiscountId, ProductId, SkuId, TenantId, Timestamp};

use super::rejected;
use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct DiscountItemView {
    /// A SKU (限时折扣) or a product (第二件半价).
    pub ref_id: Uuid,
    /// The product's title, with the SKU's specification for a SKU.
    pub label: String,
    pub list_fen: Option<i64>,
    pub price_fen: Option<i64>,
    pub qty: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Discount {
    pub id: DiscountId,
    pub name: String,
    pub kind: DiscountKind,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// `active` or `stopped`.
    pub status: String,
    /// A bundle's price.
    pub price_fen: Option<i64>,
    pub items: Vec<DiscountItemView>,
    pub created_at: Timestamp,
}

/// What is running now for a cart: each SKU's 限时折扣 price, and the 第二件半价 products by
/// promotion name.
#[derive(Clone, Debug, Default)]
pub struct RunningDiscounts {
    pub prices: BTreeMap<SkuId, (String, i64)>,
    pub second_half: BTreeMap<String, Vec<ProductId>>,
    /// Bundles any of whose products is in the cart, whole.
    pub bundles: Vec<siyu_core::commerce::pricing::Bundle>,
}

type Row = (Uuid, String, String, i64, i64, String, i64, Option<i64>);
const SELECT: &str = "SELECT id, name, kind, starts_at, ends_at, status, created_at, price_fen FROM discounts";

impl Store {
    /// Creates an item promotion over this tenant's SKUs or products. A 限时折扣 price must
    /// be below the SKU's price; an item already in a running or coming promotion of the same
    /// kind over an overlapping window is refused (STK-1).
    pub async fn create_discount(&self, actor: &Actor, d: &DiscountInput) -> Result<Discount> {
        let tenant = actor.tenant_id;
        let field = |i: usize| match d.kind {
            DiscountKind::LimitedPrice => format!("skus.{i}.sku_id"),
            DiscountKind::SecondHalf => format!("product_ids.{i}"),
            DiscountKind::Bundle => format!("components.{i}.product_id"),
        };
        // BD-1: a bundle costs less than its cheapest combination at list prices.
        let mut cheapest = 0_i64;
        let mut ids = Vec::with_capacity(d.items.len());
        for (i, item) in d.items.iter().enumerate() {
            let id: Uuid = item.id.parse().map_err(|_| rejected("bad_reference", Some(&field(i)), "no such item"))?;
            let found = match d.kind {
                DiscountKind::LimitedPrice => match self.sku(tenant, SkuId(id)).await {
                    Ok(s) if item.price_fen.is_some_and(|p| p >= s.price_fen) => {
                        return Err(rejected(
                            "not_a_discount",
                            Some(&format!("skus.{i}.price_fen")),
                            "a limited-time price must be below the SKU's price",
                        ))
                    }
                    Ok(_) => true,
                    Err(StoreError::NotFound) => false,
                    Err(e) => return Err(e),
                },
                DiscountKind::SecondHalf | DiscountKind::Bundle => match self.product(tenant, ProductId(id)).await {
                    Ok(p) => {
                        let min = p.skus.iter().filter(|k| k.active).map(|k| k.price_fen).min().unwrap_or(0);
                        cheapest += min * i64::from(item.qty);
                        true
                    }
                    Err(StoreError::NotFound) => false,
                    Err(e) => return Err(e),
                },
            };
            if !found {
                return Err(rejected("bad_reference", Some(&field(i)), "no such item"));
            }
            ids.push(id);
        }
        if d.kind == DiscountKind::Bundle && d.bundle_price_fen.is_none_or(|p| p >= cheapest) {
            return Err(rejected(
                "not_a_discount",
                Some("bundle_price_fen"),
                format!("a bundle must cost less than its products at their prices ({cheapest} fen)"),
            ));
        }
        let id = DiscountId::new();
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tenants SET updated_at = updated_at WHERE id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
            // Several bundles may share a product: the pipeline gives each unit to at most one.
            let exclusive = if d.kind == DiscountKind::Bundle { &[][..] } else { &ids[..] };
            for (i, item) in exclusive.iter().enumerate() {
                let clash: Option<String> = sqlx::query_scalar(
                    "SELECT d.name FROM discount_items x JOIN discounts d ON d.tenant_id = x.tenant_id \
                     AND d.id = x.discount_id WHERE x.tenant_id = $1 AND x.ref_id = $2 AND d.kind = $3 \
                     AND d.status = 'active' AND d.starts_at < $5 AND $4 < d.ends_at",
                )
                .bind(tenant.0)
                .bind(item)
                .bind(d.kind.as_str())
                .bind(d.starts_at.0)
                .bind(d.ends_at.0)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(name) = clash {
                    return Err(rejected(
                        "discount_overlaps",
                        Some(&field(i)),
                        format!(
                            "this item is in “{name}” at the same time; an item takes one such promotion at a time"
                        ),
                    ));
                }
            }
            sqlx::query(
                "INSERT INTO discounts (tenant_id, id, name, kind, starts_at, ends_at, status, created_at, updated_at, \
                 price_fen) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7, $8)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&d.name)
            .bind(d.kind.as_str())
            .bind(d.starts_at.0)
            .bind(d.ends_at.0)
            .bind(now.0)
            .bind(d.bundle_price_fen)
            .execute(&mut *tx)
            .await?;
            for (item, ref_id) in d.items.iter().zip(&ids) {
                sqlx::query(
                    "INSERT INTO discount_items (tenant_id, discount_id, ref_id, price_fen, qty) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(ref_id)
                .bind(item.price_fen)
                .bind(i64::from(item.qty))
                .execute(&mut *tx)
                .await?;
            }
            audit!(tx, self, actor, "discount.create", "discount", id, None, snapshot(d));
        });
        self.discount(tenant, id).await
    }

    pub async fn discount(&self, tenant: TenantId, id: DiscountId) -> Result<Discount> {
        let sql = format!("{SELECT} WHERE tenant_id = $1 AND id = $2");
        let r: Option<Row> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        let r = r.ok_or(StoreError::NotFound)?;
        Ok(self.with_items(tenant, vec![r]).await?.remove(0))
    }

    /// Item promotions, newest first.
    pub async fn discounts(&self, tenant: TenantId) -> Result<Vec<Discount>> {
        let sql = format!("{SELECT} WHERE tenant_id = $1 ORDER BY id DESC LIMIT 200");
        let rows: Vec<Row> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).fetch_all(p).await?);
        self.with_items(tenant, rows).await
    }

    async fn with_items(&self, tenant: TenantId, rows: Vec<Row>) -> Result<Vec<Discount>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            type ItemRow = (Uuid, Option<i64>, Option<String>, Option<String>, Option<i64>, i64);
            // A SKU item joins its SKU and product; a product item its product.
            let items: Vec<ItemRow> = on_read!(self, |p| sqlx::query_as(
                "SELECT x.ref_id, x.price_fen, COALESCE(sp.title, p.title), \
                 CASE WHEN k.id IS NULL THEN NULL ELSE CAST(k.spec AS TEXT) END, k.price_fen, x.qty \
                 FROM discount_items x LEFT JOIN skus k ON k.tenant_id = x.tenant_id AND k.id = x.ref_id \
                 LEFT JOIN products sp ON sp.tenant_id = k.tenant_id AND sp.id = k.product_id \
                 LEFT JOIN products p ON p.tenant_id = x.tenant_id AND p.id = x.ref_id \
                 WHERE x.tenant_id = $1 AND x.discount_id = $2 ORDER BY x.ref_id"
            )
            .bind(tenant.0)
            .bind(r.0)
            .fetch_all(p)
            .await?);
            out.push(Discount {
                id: DiscountId(r.0),
                name: r.1,
                kind: DiscountKind::parse(&r.2).unwrap_or(DiscountKind::LimitedPrice),
                starts_at: Timestamp(r.3),
                ends_at: Timestamp(r.4),
                status: r.5,
                price_fen: r.7,
                items: items
                    .into_iter()
                    .map(|x| {
                        let spec: Vec<String> =
                            x.3.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
                        let title = x.2.unwrap_or_default();
                        DiscountItemView {
                            ref_id: x.0,
                            label: if spec.is_empty() { title } else { format!("{title} {}", spec.join(" / ")) },
                            list_fen: x.4,
                            price_fen: x.1,
                            qty: x.5,
                        }
                    })
                    .collect(),
                created_at: Timestamp(r.6),
            });
        }
        Ok(out)
    }

    /// The item promotions running at `at` for these SKUs and products.
    pub async fn running_discounts(
        &self,
        tenant: TenantId,
        skus: &[SkuId],
        products: &[ProductId],
        at: Timestamp,
    ) -> Result<RunningDiscounts> {
        let rows: Vec<(String, String, Uuid, Option<i64>, Uuid)> = on_read!(self, |p| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT d.kind, d.name, x.ref_id, x.price_fen, d.id FROM discount_items x JOIN discounts d \
                 ON d.tenant_id = x.tenant_id AND d.id = x.discount_id WHERE d.status = 'active' AND d.starts_at <= ",
            );
            qb.push_bind(at.0).push(" AND d.ends_at > ").push_bind(at.0);
            qb.push(" AND x.tenant_id = ").push_bind(tenant.0).push(" AND x.ref_id IN (");
            let mut sep = qb.separated(", ");
            for s in skus {
                sep.push_bind(s.0);
            }
            for p in products {
                sep.push_bind(p.0);
            }
            qb.push(")");
            qb.build_query_as::<(String, String, Uuid, Option<i64>, Uuid)>().fetch_all(p).await?
        });
        let mut out = RunningDiscounts::default();
        let mut bundles = std::collections::BTreeSet::new();
        for (kind, name, ref_id, price, id) in rows {
            match (DiscountKind::parse(&kind), price) {
                (Some(DiscountKind::LimitedPrice), Some(p)) => {
                    out.prices.insert(SkuId(ref_id), (name, p));
                }
                (Some(DiscountKind::SecondHalf), _) => out.second_half.entry(name).or_default().push(ProductId(ref_id)),
                (Some(DiscountKind::Bundle), _) => {
                    bundles.insert(id);
                }
                _ => {}
            }
        }
        // A bundle applies only whole, so each is read with all its products.
        for id in bundles {
            let d = self.discount(tenant, DiscountId(id)).await?;
            out.bundles.push(siyu_core::commerce::pricing::Bundle {
                id: d.name,
                components: d.items.iter().map(|i| (i.ref_id.to_string(), u32::try_from(i.qty).unwrap_or(1))).collect(),
                price: d.price_fen.unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Ends an item promotion now; orders already placed keep their prices (LD-1).
    pub async fn stop_discount(&self, actor: &Actor, id: DiscountId) -> Result<Discount> {
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE discounts SET status = 'stopped', updated_at = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(self.now().0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            audit!(tx, self, actor, "discount.stop", "discount", id, None, None);
        });
        self.discount(actor.tenant_id, id).await
    }
}

//! Flash sales (秒杀) on the database alone (FS-8.2, stock buckets). Creating a sale carves
//! each SKU's quota out of its stock (the SKU's `reserved` holds it) and splits it over bucket
//! rows. An order takes its units from one bucket by a conditional update, probing the others
//! from a random start, and counts them against the buyer's limit in the same transaction
//! (FS-2), with the window checked against the server clock inside it (FS-3). Its reservation
//! names the bucket (`pool_id = "{sale}:{bucket}"`), so cancelling gives the units back to
//! that bucket once; when the sale has ended they go back to the SKU instead. Ending a sale
//! returns what its buckets still hold to the SKU, once.

use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::flash::{probe_order, split_quota, FlashInput};
use siyu_core::commerce::pricing::ActivityKind;
use siyu_core::{BuyerId, FlashSaleId, OrderId, SkuId, TenantId, Timestamp};

use super::orders::{order_no_for, ActivityTerms, CartItem, Order, Play};
use super::rejected;
use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct FlashSku {
    pub sku_id: SkuId,
    /// The product's title with the SKU's specification.
    pub label: String,
    pub price_fen: i64,
    pub quota: i64,
    /// What the buckets still hold (units in unpaid orders are not here).
    pub remaining: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FlashSale {
    pub id: FlashSaleId,
    pub name: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub per_order: i64,
    pub per_user: i64,
    pub timeout_secs: i64,
    pub buckets: i64,
    /// `active` or `ended`.
    pub status: String,
    pub skus: Vec<FlashSku>,
}

type Row = (Uuid, String, i64, i64, i64, i64, i64, i64, String);

/// Why a flash-sale order is refused, worded alike whichever path refused it: the database,
/// or Redis in front of it (`flash_gate`).
pub(crate) enum Refusal {
    SaleNotOpen,
    SkuNotInSale,
    SoldOut,
    /// Units one order may take.
    OverOrderLimit(i64),
    /// Units one buyer may hold in the sale.
    OverUserLimit(i64),
}

impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> StoreError {
        match r {
            Refusal::SaleNotOpen => rejected("sale_not_open", None, "the sale is not on now"),
            Refusal::SkuNotInSale => {
                rejected("sku_not_in_sale", Some("items.0.sku_id"), "this item is not in the sale")
            }
            Refusal::SoldOut => rejected("sold_out", Some("items.0.sku_id"), "sold out"),
            Refusal::OverOrderLimit(n) => {
                rejected("over_order_limit", Some("items.0.qty"), format!("an order takes at most {n}"))
            }
            Refusal::OverUserLimit(n) => {
                rejected("over_user_limit", Some("items.0.qty"), format!("each buyer may take {n} in this sale"))
            }
        }
    }
}

/// A running sale as the database holds it, for loading and checking Redis.
pub(crate) struct GateState {
    pub sale: FlashSale,
    pub stock: Vec<(SkuId, i64)>,
    pub buyers: Vec<(BuyerId, i64)>,
}

impl Store {
    /// Creates a sale and carves its quotas out of stock; a SKU short of stock, or already in
    /// a presale or another flash sale over an overlapping window (STK-1), is refused.
    pub async fn create_flash_sale(&self, actor: &Actor, f: &FlashInput) -> Result<FlashSale> {
        let tenant = actor.tenant_id;
        let found = self.activity_skus(tenant, f.skus.iter().map(|s| s.sku_id.as_str()), None).await?;
        let skus: Vec<_> = found.into_iter().zip(&f.skus).map(|((id, _), s)| (id, s)).collect();
        let id = FlashSaleId::new();
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tenants SET updated_at = updated_at WHERE id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO flash_sales (tenant_id, id, name, starts_at, ends_at, per_order, per_user, timeout_secs, \
                 buckets, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $10)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&f.name)
            .bind(f.starts_at.0)
            .bind(f.ends_at.0)
            .bind(f.per_order)
            .bind(f.per_user)
            .bind(f.timeout_secs)
            .bind(i64::from(f.buckets))
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            for (i, (sku, s)) in skus.iter().enumerate() {
                let field = format!("skus.{i}.sku_id");
                let clash = crate::activity_clash!(tx, tenant, sku, f.starts_at, f.ends_at, id);
                if let Some(name) = clash {
                    return Err(rejected(
                        "activity_overlaps",
                        Some(&field),
                        format!("this SKU is in “{name}” at the same time; a SKU is in one such activity at a time"),
                    ));
                }
                // The quota leaves the shelf for the sale: held as reserved until sold or returned.
                let carved = sqlx::query(
                    "UPDATE skus SET reserved = reserved + $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                     AND on_hand - reserved >= $3",
                )
                .bind(tenant.0)
                .bind(sku.0)
                .bind(s.quota)
                .bind(now.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if carved == 0 {
                    return Err(rejected(
                        "flash_short_of_stock",
                        Some(&format!("skus.{i}.quota")),
                        "the SKU has less stock available than this quota",
                    ));
                }
                sqlx::query(
                    "INSERT INTO flash_sale_skus (tenant_id, sale_id, sku_id, price_fen, quota) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(sku.0)
                .bind(s.price_fen)
                .bind(s.quota)
                .execute(&mut *tx)
                .await?;
                for (b, part) in split_quota(s.quota, f.buckets).into_iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO flash_buckets (tenant_id, sale_id, sku_id, bucket, remaining) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(tenant.0)
                    .bind(id.0)
                    .bind(sku.0)
                    .bind(b as i64)
                    .bind(part)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            audit!(tx, self, actor, "flash.create", "flash_sale", id, None, snapshot(f));
        });
        self.flash_sale(tenant, id).await
    }

    pub async fn flash_sale(&self, tenant: TenantId, id: FlashSaleId) -> Result<FlashSale> {
        let r: Option<Row> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, name, starts_at, ends_at, per_order, per_user, timeout_secs, buckets, status FROM flash_sales \
             WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(p)
        .await?
        });
        let r = r.ok_or(StoreError::NotFound)?;
        type SkuRow = (Uuid, i64, i64, i64, String, Json<Vec<String>>);
        let skus: Vec<SkuRow> = on_read!(self, |p| sqlx::query_as(
            "SELECT k.sku_id, k.price_fen, k.quota, CAST(COALESCE((SELECT SUM(b.remaining) FROM flash_buckets b \
             WHERE b.tenant_id = k.tenant_id AND b.sale_id = k.sale_id AND b.sku_id = k.sku_id), 0) AS BIGINT), \
             p.title, s.spec FROM flash_sale_skus k JOIN skus s ON s.tenant_id = k.tenant_id AND s.id = k.sku_id \
             JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id \
             WHERE k.tenant_id = $1 AND k.sale_id = $2 ORDER BY k.sku_id"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?);
        Ok(FlashSale {
            id: FlashSaleId(r.0),
            name: r.1,
            starts_at: Timestamp(r.2),
            ends_at: Timestamp(r.3),
            per_order: r.4,
            per_user: r.5,
            timeout_secs: r.6,
            buckets: r.7,
            status: r.8,
            skus: skus
                .into_iter()
                .map(|k| FlashSku {
                    sku_id: SkuId(k.0),
                    label: if k.5 .0.is_empty() { k.4 } else { format!("{} {}", k.4, k.5 .0.join(" / ")) },
                    price_fen: k.1,
                    quota: k.2,
                    remaining: k.3,
                })
                .collect(),
        })
    }

    /// Whether a sale runs or is still to come at `at` (one read, for the mall's home).
    pub async fn flash_sale_open(&self, tenant: TenantId, at: Timestamp) -> Result<bool> {
        let hit: Option<Uuid> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT id FROM flash_sales WHERE tenant_id = $1 AND status = 'active' AND ends_at > $2 LIMIT 1"
        )
        .bind(tenant.0)
        .bind(at.0)
        .fetch_optional(p)
        .await?);
        Ok(hit.is_some())
    }

    /// Sales, newest first: all of them, or with `open_at` only those running or to come then.
    pub async fn flash_sales(&self, tenant: TenantId, open_at: Option<Timestamp>) -> Result<Vec<FlashSale>> {
        let ids: Vec<Uuid> = on_read!(self, |p| {
            sqlx::query_scalar(
            "SELECT id FROM flash_sales WHERE tenant_id = $1 AND ($2 IS NULL OR (status = 'active' AND ends_at > $2)) \
             ORDER BY id DESC LIMIT 100"
        )
        .bind(tenant.0)
        .bind(open_at.map(|t| t.0))
        .fetch_all(p)
        .await?
        });
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.flash_sale(tenant, FlashSaleId(id)).await?);
        }
        Ok(out)
    }

    /// What Redis needs to admit buyers to a running sale (see `flash_gate`): its window and
    /// limits, each SKU's units still in the buckets, and every buyer's units. `None` when the
    /// sale is not active.
    pub(crate) async fn flash_gate_state(&self, tenant: TenantId, sale: FlashSaleId) -> Result<Option<GateState>> {
        let s = match self.flash_sale(tenant, sale).await {
            Ok(s) if s.status == "active" => s,
            Ok(_) | Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let buyers = self.flash_buyers(tenant, sale).await?;
        Ok(Some(GateState { stock: s.skus.iter().map(|k| (k.sku_id, k.remaining)).collect(), buyers, sale: s }))
    }

    /// Units each buyer holds in a sale (pending and paid orders; FS-2).
    pub(crate) async fn flash_buyers(&self, tenant: TenantId, sale: FlashSaleId) -> Result<Vec<(BuyerId, i64)>> {
        let rows: Vec<(Uuid, i64)> = on_read!(self, |p| sqlx::query_as(
            "SELECT buyer_id, bought FROM flash_buyers WHERE tenant_id = $1 AND sale_id = $2 AND bought > 0"
        )
        .bind(tenant.0)
        .bind(sale.0)
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(|(b, n)| (BuyerId(b), n)).collect())
    }

    /// Places a flash-sale order: the window, the buyer's limit and one bucket's units are
    /// checked and taken in one transaction; anything refused changes nothing. A retry with
    /// the same client key returns the first order (FS-4).
    pub async fn create_flash_order(
        &self,
        tenant: TenantId,
        buyer: BuyerId,
        sale: FlashSaleId,
        item: CartItem,
        client_key: Option<&str>,
    ) -> Result<Order> {
        if let Some(k) = client_key {
            if let Some(id) = self.order_id_by_client_key(tenant, buyer, k).await? {
                return self.order(tenant, id).await;
            }
        }
        let s = self.flash_sale(tenant, sale).await?;
        let terms = s.skus.iter().find(|k| k.sku_id == item.sku_id).ok_or(Refusal::SkuNotInSale)?;
        let qty = i64::from(item.qty);
        // An empty pool answers at once (FS-8.4's sold-out flag, read rather than cached): most
        // of a hot sale's requests arrive after it sold out. A unit a cancel returns later is
        // found by the next request.
        if terms.remaining < qty {
            return Err(Refusal::SoldOut.into());
        }
        if qty < 1 || qty > s.per_order {
            return Err(Refusal::OverOrderLimit(s.per_order).into());
        }
        let priced = self
            .price_cart(
                tenant,
                &[item],
                None,
                Play::Activity(&ActivityTerms {
                    kind: ActivityKind::Flash,
                    sku: item.sku_id,
                    price_fen: terms.price_fen,
                }),
            )
            .await?;
        let q = &priced.quote;
        let line = &priced.items[0];
        let lq = &q.lines[0];
        let now = self.now();
        let id = OrderId::new();
        let start = rand::random::<u32>();
        let no = order_no_for(self, tenant, now).await?;
        let result: std::result::Result<(), StoreError> = in_tx!(self, |tx| {
            // FS-3: the window against the server clock, inside the transaction.
            let open: Option<i64> = sqlx::query_scalar(
                "SELECT timeout_secs FROM flash_sales WHERE tenant_id = $1 AND id = $2 AND status = 'active' \
                 AND starts_at <= $3 AND $3 < ends_at",
            )
            .bind(tenant.0)
            .bind(sale.0)
            .bind(now.0)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(timeout) = open else {
                tx.rollback().await?;
                return Err(Refusal::SaleNotOpen.into());
            };
            let inserted = sqlx::query(
                "INSERT INTO orders (tenant_id, id, no, buyer_id, customer_id, kind, status, list_fen, goods_fen, \
                 shipping_fen, payable_fen, quote, client_key, created_at, expires_at, updated_at) \
                 SELECT $1, $2, $3, $4, b.customer_id, 'flash', 'pending_payment', $5, $6, $7, $8, $9, $10, $11, $12, $11 \
                 FROM mall_buyers b WHERE b.tenant_id = $1 AND b.id = $4",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&no)
            .bind(buyer.0)
            .bind(q.list_total)
            .bind(q.goods)
            .bind(q.shipping_fee - q.shipping_discount)
            .bind(q.payable)
            .bind(Json(q))
            .bind(client_key)
            .bind(now.0)
            .bind(now.0 + timeout * 1_000_000)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(r) if r.rows_affected() == 1 => {}
                Ok(_) => {
                    tx.rollback().await?;
                    return Err(StoreError::NotFound);
                }
                Err(e) => {
                    tx.rollback().await?;
                    return match StoreError::constraint(e, "client_key") {
                        StoreError::Duplicate("client_key") => {
                            let k = client_key.unwrap_or_default();
                            let first =
                                self.order_id_by_client_key(tenant, buyer, k).await?.ok_or(StoreError::NotFound)?;
                            return self.order(tenant, first).await;
                        }
                        other => Err(other),
                    };
                }
            }
            // FS-2: the buyer's units in the same step as the stock.
            let counted = sqlx::query(
                "INSERT INTO flash_buyers (tenant_id, sale_id, buyer_id, bought) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, sale_id, buyer_id) DO UPDATE SET bought = flash_buyers.bought + $4 \
                 WHERE flash_buyers.bought + $4 <= $5",
            )
            .bind(tenant.0)
            .bind(sale.0)
            .bind(buyer.0)
            .bind(qty)
            .bind(s.per_user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if counted == 0 || qty > s.per_user {
                tx.rollback().await?;
                return Err(Refusal::OverUserLimit(s.per_user).into());
            }
            let mut taken = None;
            for b in probe_order(start, s.buckets as u32) {
                let n = sqlx::query(
                    "UPDATE flash_buckets SET remaining = remaining - $5 WHERE tenant_id = $1 AND sale_id = $2 \
                     AND sku_id = $3 AND bucket = $4 AND remaining >= $5",
                )
                .bind(tenant.0)
                .bind(sale.0)
                .bind(item.sku_id.0)
                .bind(i64::from(b))
                .bind(qty)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 1 {
                    taken = Some(b);
                    break;
                }
            }
            let Some(bucket) = taken else {
                tx.rollback().await?;
                return Err(Refusal::SoldOut.into());
            };
            sqlx::query(
                "INSERT INTO order_lines (tenant_id, order_id, line_no, sku_id, product_id, title, spec, qty, \
                 unit_list_fen, unit_price_fen, paid_fen, units, shares) VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9, \
                 $10, $11, '[]')",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(item.sku_id.0)
            .bind(line.product_id.0)
            .bind(&line.title)
            .bind(&line.spec)
            .bind(qty)
            .bind(lq.unit_list)
            .bind(lq.unit_price)
            .bind(lq.paid)
            .bind(Json(&lq.units))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO stock_reservations (tenant_id, order_id, sku_id, pool_id, qty, status, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'reserved', $6)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(item.sku_id.0)
            .bind(format!("{}:{bucket}", sale.0))
            .bind(qty)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            Ok(())
        });
        result?;
        self.order(tenant, id).await
    }

    /// Ends the sales whose window closed: what their buckets still hold goes back to the
    /// SKU, once (the status moves conditionally). Returns how many ended.
    pub async fn end_due_flash_sales(&self) -> Result<usize> {
        let now = self.now();
        let due: Vec<(Uuid, Uuid)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT tenant_id, id FROM flash_sales WHERE status = 'active' AND ends_at <= $1 ORDER BY ends_at LIMIT 100"
        )
        .bind(now.0)
        .fetch_all(p)
        .await?
        });
        let mut ended = 0;
        for (tenant, sale) in due {
            let moved = in_tx!(self, |tx| {
                let n = sqlx::query(
                    "UPDATE flash_sales SET status = 'ended', updated_at = $3 WHERE tenant_id = $1 AND id = $2 \
                     AND status = 'active'",
                )
                .bind(tenant)
                .bind(sale)
                .bind(now.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 1 {
                    // The sale row is taken first, so a cancel (which takes it too) either
                    // returned its units to a bucket before this or sees the sale ended.
                    let left: Vec<(Uuid, i64)> = sqlx::query_as(
                        "SELECT sku_id, CAST(SUM(remaining) AS BIGINT) FROM flash_buckets WHERE tenant_id = $1 \
                         AND sale_id = $2 GROUP BY sku_id",
                    )
                    .bind(tenant)
                    .bind(sale)
                    .fetch_all(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE flash_buckets SET remaining = 0 WHERE tenant_id = $1 AND sale_id = $2")
                        .bind(tenant)
                        .bind(sale)
                        .execute(&mut *tx)
                        .await?;
                    for (sku, units) in left.into_iter().filter(|x| x.1 > 0) {
                        sqlx::query("UPDATE skus SET reserved = reserved - $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                            .bind(tenant)
                            .bind(sku)
                            .bind(units)
                            .bind(now.0)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                n
            });
            ended += moved as usize;
        }
        Ok(ended)
    }
}

//! Presales (预售 / 定金膨胀): the stored presale, its SKUs' terms and quotas, and closing a
//! presale order whose balance never came (PS-2).
//!
//! A SKU belongs to at most one active presale over overlapping spans (STK-1): creation takes
//! the tenant row first, so two creators cannot both pass the check. Each SKU's quota is a
//! counter moved by conditional updates (`taken + q <= quota`) in the order's transaction;
//! the one compensation routine gives it back with the stock.

use serde::Serialize;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::order::{self, OrderEvent, OrderStatus, Outcome};
use siyu_core::commerce::presale::{deposit_fate, DepositFate, Phase, PresaleInput, Terms, Windows};
use siyu_core::{OrderId, PresaleId, ProductId, SkuId, TenantId, Timestamp};

use super::payments::RefundKind;
use super::rejected;
use crate::audit::snapshot;
use crate::{audit, cancel_from, in_tx, on_read, outbox, restock_committed, system_refund, Result, Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct PresaleSku {
    pub sku_id: SkuId,
    pub spec: String,
    #[serde(flatten)]
    pub terms: Terms,
    pub balance_fen: i64,
    pub quota: i64,
    /// Units held by deposit orders (unpaid, paid or completed); a closed order gives its back.
    pub taken: i64,
}

/// How a presale's orders stand.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PresaleStats {
    pub awaiting_deposit: i64,
    pub awaiting_balance: i64,
    pub paid: i64,
    pub cancelled: i64,
    pub deposits_fen: i64,
    pub balances_fen: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Presale {
    pub id: PresaleId,
    pub name: String,
    pub product_id: ProductId,
    pub product_title: String,
    #[serde(flatten)]
    pub windows: Windows,
    pub ship_from: Timestamp,
    pub deposit_forfeit: bool,
    /// `active` or `cancelled`.
    pub status: String,
    pub skus: Vec<PresaleSku>,
    pub stats: PresaleStats,
    pub created_at: Timestamp,
}

impl Presale {
    pub fn phase(&self, now: Timestamp) -> Phase {
        self.windows.phase(now)
    }
    pub fn terms_of(&self, sku: SkuId) -> Option<&PresaleSku> {
        self.skus.iter().find(|s| s.sku_id == sku)
    }
}

type Row = (Uuid, String, Uuid, String, i64, i64, i64, i64, i64, bool, String, i64);
const SELECT: &str = "SELECT s.id, s.name, s.product_id, p.title, s.deposit_start, s.deposit_end, s.final_start, \
     s.final_end, s.ship_from, s.deposit_forfeit, s.status, s.created_at FROM presales s \
     JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id";

impl Store {
    /// Creates a presale over some SKUs of one product, refusing a SKU another active presale
    /// holds over an overlapping span (STK-1).
    pub async fn create_presale(&self, actor: &Actor, p: &PresaleInput) -> Result<Presale> {
        let tenant = actor.tenant_id;
        let found = self
            .activity_skus(
                tenant,
                p.skus.iter().map(|s| s.sku_id.as_str()),
                Some("a presale sells the SKUs of one product"),
            )
            .await?;
        let skus: Vec<_> = found.into_iter().zip(&p.skus).map(|((id, product), s)| (id, product, s)).collect();
        let product = skus[0].1;
        let id = PresaleId::new();
        let now = self.now();
        let (span_start, span_end) = p.windows.span();
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tenants SET updated_at = updated_at WHERE id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
            for (i, (sku, _, _)) in skus.iter().enumerate() {
                // STK-1 across plays: another presale, a flash sale, group-buy or bargain.
                let clash = crate::activity_clash!(tx, tenant, sku, span_start, span_end, id);
                if let Some(name) = clash {
                    return Err(rejected(
                        "presale_overlaps",
                        Some(&format!("skus.{i}.sku_id")),
                        format!(
                            "this SKU is in the presale “{name}” at the same time; a SKU is in one presale at a time"
                        ),
                    ));
                }
            }
            sqlx::query(
                "INSERT INTO presales (tenant_id, id, name, product_id, deposit_start, deposit_end, final_start, final_end, \
                 ship_from, deposit_forfeit, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $11)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&p.name)
            .bind(product.0)
            .bind(p.windows.deposit_start.0)
            .bind(p.windows.deposit_end.0)
            .bind(p.windows.final_start.0)
            .bind(p.windows.final_end.0)
            .bind(p.ship_from.0)
            .bind(p.deposit_forfeit)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            for (sku, _, s) in &skus {
                sqlx::query(
                    "INSERT INTO presale_skus (tenant_id, presale_id, sku_id, price_fen, deposit_fen, deposit_value_fen, \
                     quota) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(sku.0)
                .bind(s.terms.price_fen)
                .bind(s.terms.deposit_fen)
                .bind(s.terms.deposit_value_fen)
                .bind(s.quota)
                .execute(&mut *tx)
                .await?;
            }
            audit!(tx, self, actor, "presale.create", "presale", id, None, snapshot(p));
        });
        self.presale(tenant, id).await
    }

    pub async fn presale(&self, tenant: TenantId, id: PresaleId) -> Result<Presale> {
        let sql = format!("{SELECT} WHERE s.tenant_id = $1 AND s.id = $2");
        let r: Option<Row> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        let r = r.ok_or(StoreError::NotFound)?;
        Ok(self.with_presale_skus(tenant, vec![r]).await?.remove(0))
    }

    /// Presales, newest first.
    pub async fn presales(&self, tenant: TenantId) -> Result<Vec<Presale>> {
        let sql = format!("{SELECT} WHERE s.tenant_id = $1 ORDER BY s.id DESC LIMIT 200");
        let rows: Vec<Row> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).fetch_all(p).await?);
        self.with_presale_skus(tenant, rows).await
    }

    /// The active presale of a product that has not ended at `at`, if any (what the mall
    /// shows on the product page).
    pub async fn presale_of_product(
        &self,
        tenant: TenantId,
        product: ProductId,
        at: Timestamp,
    ) -> Result<Option<Presale>> {
        let sql = format!(
            "{SELECT} WHERE s.tenant_id = $1 AND s.product_id = $2 AND s.status = 'active' AND s.final_end > $3 \
             ORDER BY s.deposit_start LIMIT 1"
        );
        let r: Option<Row> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(product.0)
            .bind(at.0)
            .fetch_optional(p)
            .await?);
        match r {
            Some(r) => Ok(self.with_presale_skus(tenant, vec![r]).await?.pop()),
            None => Ok(None),
        }
    }

    /// Of these SKUs, those an active presale holds at `at`: they sell only through it.
    pub async fn skus_in_presale(&self, tenant: TenantId, skus: &[SkuId], at: Timestamp) -> Result<Vec<SkuId>> {
        let rows: Vec<Uuid> = on_read!(self, |p| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT k.sku_id FROM presale_skus k JOIN presales s ON s.tenant_id = k.tenant_id \
                 AND s.id = k.presale_id WHERE s.status = 'active' AND s.deposit_start <= ",
            );
            qb.push_bind(at.0).push(" AND s.final_end > ").push_bind(at.0);
            qb.push(" AND k.tenant_id = ").push_bind(tenant.0).push(" AND k.sku_id IN (");
            let mut sep = qb.separated(", ");
            for s in skus {
                sep.push_bind(s.0);
            }
            qb.push(")");
            qb.build_query_scalar::<Uuid>().fetch_all(p).await?
        });
        Ok(rows.into_iter().map(SkuId).collect())
    }

    async fn with_presale_skus(&self, tenant: TenantId, rows: Vec<Row>) -> Result<Vec<Presale>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            type SkuRow = (Uuid, sqlx::types::Json<Vec<String>>, i64, i64, i64, i64, i64);
            let skus: Vec<SkuRow> = on_read!(self, |p| sqlx::query_as(
                "SELECT k.sku_id, s.spec, k.price_fen, k.deposit_fen, k.deposit_value_fen, k.quota, k.taken \
                 FROM presale_skus k JOIN skus s ON s.tenant_id = k.tenant_id AND s.id = k.sku_id \
                 WHERE k.tenant_id = $1 AND k.presale_id = $2 ORDER BY k.sku_id"
            )
            .bind(tenant.0)
            .bind(r.0)
            .fetch_all(p)
            .await?);
            let counts: Vec<(String, i64, i64, i64)> = on_read!(self, |p| sqlx::query_as(
                "SELECT status, COUNT(*), CAST(COALESCE(SUM(deposit_fen), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(paid_fen - deposit_fen), 0) AS BIGINT) \
                 FROM orders WHERE tenant_id = $1 AND presale_id = $2 GROUP BY status"
            )
            .bind(tenant.0)
            .bind(r.0)
            .fetch_all(p)
            .await?);
            let mut stats = PresaleStats::default();
            for (status, n, deposits, balances) in counts {
                match OrderStatus::parse(&status) {
                    Some(OrderStatus::PendingPayment) => stats.awaiting_deposit += n,
                    Some(OrderStatus::AwaitingBalance) => {
                        stats.awaiting_balance += n;
                        stats.deposits_fen += deposits;
                    }
                    Some(OrderStatus::Cancelled) => stats.cancelled += n,
                    Some(_) => {
                        stats.paid += n;
                        stats.deposits_fen += deposits;
                        stats.balances_fen += balances;
                    }
                    None => {}
                }
            }
            out.push(Presale {
                id: PresaleId(r.0),
                name: r.1,
                product_id: ProductId(r.2),
                product_title: r.3,
                windows: Windows {
                    deposit_start: Timestamp(r.4),
                    deposit_end: Timestamp(r.5),
                    final_start: Timestamp(r.6),
                    final_end: Timestamp(r.7),
                },
                ship_from: Timestamp(r.8),
                deposit_forfeit: r.9,
                status: r.10,
                skus: skus
                    .into_iter()
                    .map(|k| {
                        let terms = Terms { price_fen: k.2, deposit_fen: k.3, deposit_value_fen: k.4 };
                        PresaleSku {
                            sku_id: SkuId(k.0),
                            spec: k.1 .0.join(" / "),
                            terms,
                            balance_fen: terms.balance_fen(),
                            quota: k.5,
                            taken: k.6,
                        }
                    })
                    .collect(),
                stats,
                created_at: Timestamp(r.11),
            });
        }
        Ok(out)
    }

    /// The merchant cancels a presale: no more deposits, and every order of it is to be
    /// closed with its money refunded (PS-2). Returns the orders the caller must settle: the
    /// unpaid are cancelled, those waiting for the balance closed with the deposit refunded,
    /// and the fully paid refunded in full.
    pub async fn cancel_presale(&self, actor: &Actor, id: PresaleId) -> Result<Vec<(OrderId, OrderStatus)>> {
        let tenant = actor.tenant_id;
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE presales SET status = 'cancelled', updated_at = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(self.now().0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            audit!(tx, self, actor, "presale.cancel", "presale", id, None, None);
        });
        let rows: Vec<(Uuid, String)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, status FROM orders WHERE tenant_id = $1 AND presale_id = $2 AND status <> 'cancelled' ORDER BY id"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?
        });
        Ok(rows.into_iter().filter_map(|(o, s)| OrderStatus::parse(&s).map(|s| (OrderId(o), s))).collect())
    }

    /// Closes a presale order waiting for its balance (PS-2): the balance lapsed, the buyer
    /// gave up, or the merchant cancelled the presale. Its committed stock returns to the
    /// shelf and the quota, open prepays close, and the deposit is refunded unless
    /// "定金不退" was shown and the merchant did not cancel. Closing a closed order changes
    /// nothing.
    pub async fn close_presale_order(
        &self,
        tenant: TenantId,
        id: OrderId,
        reason: &str,
        merchant: bool,
        by: Option<&Actor>,
    ) -> Result<()> {
        let now = self.now();
        in_tx!(self, |tx| {
            if let Some(status) = cancel_from!(tx, tenant, id, now, reason, OrderStatus::AwaitingBalance) {
                let from = OrderStatus::parse(&status).unwrap_or(OrderStatus::Cancelled);
                return match order::apply(from, OrderEvent::Cancel, false) {
                    Ok(Outcome::Already) => Ok(()),
                    _ => Err(rejected(
                        "order_not_cancellable",
                        None,
                        format!("an order that is {status} cannot be closed"),
                    )),
                };
            }
            let (presale, forfeit, deposit_paid): (Uuid, bool, i64) = sqlx::query_as(
                "SELECT o.presale_id, s.deposit_forfeit, o.paid_fen FROM orders o JOIN presales s \
                 ON s.tenant_id = o.tenant_id AND s.id = o.presale_id WHERE o.tenant_id = $1 AND o.id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_one(&mut *tx)
            .await?;
            for (sku, qty) in restock_committed!(tx, tenant, id.0, now) {
                sqlx::query(
                    "UPDATE presale_skus SET taken = taken - $4 WHERE tenant_id = $1 AND presale_id = $2 AND sku_id = $3",
                )
                .bind(tenant.0)
                .bind(presale)
                .bind(sku)
                .bind(qty)
                .execute(&mut *tx)
                .await?;
            }
            let fate = deposit_fate(forfeit, merchant);
            if fate == DepositFate::Refunded {
                let payment: Uuid = sqlx::query_scalar(
                    "SELECT id FROM payments WHERE tenant_id = $1 AND order_id = $2 AND disposition = 'applied' \
                     ORDER BY created_at LIMIT 1",
                )
                .bind(tenant.0)
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await?;
                system_refund!(tx, tenant, id.0, payment, deposit_paid, RefundKind::PresaleDeposit, now);
                sqlx::query("UPDATE orders SET refunded_fen = refunded_fen + $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id.0)
                    .bind(deposit_paid)
                    .execute(&mut *tx)
                    .await?;
            }
            outbox!(
                tx,
                tenant,
                "order.cancelled",
                id.0,
                1,
                serde_json::json!({"order": id, "reason": reason, "deposit": fate}),
                now
            );
            if let Some(a) = by {
                audit!(
                    tx,
                    self,
                    a,
                    "order.close_presale",
                    "order",
                    id,
                    None,
                    Some(serde_json::json!({ "reason": reason, "deposit": fate }))
                );
            }
            Ok(())
        })
    }
}

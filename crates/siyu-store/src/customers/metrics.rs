//! Purchase history and what is computed from it: lifetime orders and spend, the last
//! purchase day, automatic lifecycle stages and RFM (analytics.md §8).
//!
//! The ledger holds one row per effective-order candidate (`order_ref` unique per tenant, so
//! a replay changes nothing). An order is effective while it is not fully refunded; its net
//! amount is paid − refunded.

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::customers::profile::stage_after_purchases;
use siyu_core::customers::rfm::{self, Centre, Raw};
use siyu_core::{CustomerId, TenantId, Timestamp};

use super::segment_key;
use crate::{audit, in_tx, on_read, Result, Store};

/// One purchase to record.
#[derive(Clone, Debug)]
pub struct Purchase {
    pub order_ref: String,
    pub customer_id: CustomerId,
    pub paid_at: Timestamp,
    pub paid_fen: i64,
    pub refunded_fen: i64,
}

/// How RFM is computed: the reference day (local day number; the window is
/// `[ref − window, ref)`), the window in days (`None` = all history) and the centre.
#[derive(Clone, Copy, Debug)]
pub struct RfmParams {
    pub ref_day: i64,
    pub window_days: Option<i64>,
    pub centre: Centre,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MetricsSummary {
    /// Customers with at least one effective order ever.
    pub buyers: u64,
    /// Customers scored by RFM (effective orders inside the window).
    pub scored: u64,
    /// Customers per RFM segment key.
    pub segments: Vec<(String, u64)>,
    pub ref_day: i64,
    pub stage_changes: u64,
}

#[derive(Default)]
struct Agg {
    orders: i64,
    spend: i64,
    last_at: i64,
    days: std::collections::BTreeSet<i64>,
    w_orders: i64,
    w_spend: i64,
    w_last_day: Option<i64>,
}

const CHUNK: usize = 1_000;

impl Store {
    /// Records purchases (idempotent by `order_ref`). Returns how many were new.
    pub async fn record_purchases(&self, actor: &Actor, source: &str, ps: &[Purchase]) -> Result<u64> {
        let tenant = actor.tenant_id;
        let mut added = 0;
        for chunk in ps.chunks(CHUNK) {
            added += in_tx!(self, |tx| {
                let mut n = 0;
                for p in chunk {
                    n += sqlx::query(
                        "INSERT INTO customer_purchases (tenant_id, order_ref, customer_id, paid_at, paid_fen, refunded_fen, source) \
                         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS \
                         (SELECT 1 FROM customers WHERE tenant_id = $1 AND id = $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(tenant.0)
                    .bind(&p.order_ref)
                    .bind(p.customer_id.0)
                    .bind(p.paid_at.0)
                    .bind(p.paid_fen)
                    .bind(p.refunded_fen)
                    .bind(source)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                audit!(
                    tx,
                    self,
                    actor,
                    "customer.purchases",
                    "customer_purchases",
                    source,
                    None,
                    Some(serde_json::json!({"rows": chunk.len(), "added": n}))
                );
                n
            });
        }
        Ok(added)
    }

    /// Recomputes every customer's purchase metrics, automatic stage and RFM from the ledger,
    /// writing only rows that change. Days are local at `offset_hours`.
    pub async fn recompute_customer_metrics(
        &self,
        actor: &Actor,
        offset_hours: i8,
        p: RfmParams,
    ) -> Result<MetricsSummary> {
        let tenant = actor.tenant_id;
        let rows: Vec<(Uuid, i64, i64, i64)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT customer_id, paid_at, paid_fen, refunded_fen FROM customer_purchases \
             WHERE tenant_id = $1 AND refunded_fen < paid_fen"
        )
        .bind(tenant.0)
        .fetch_all(pool)
        .await?);
        let lo = p.window_days.map(|w| p.ref_day - w);
        let mut aggs: HashMap<Uuid, Agg> = HashMap::new();
        for (cid, at, paid, refunded) in rows {
            let a = aggs.entry(cid).or_default();
            let day = Timestamp(at).local_day(offset_hours);
            a.orders += 1;
            a.spend += paid - refunded;
            a.last_at = a.last_at.max(at);
            a.days.insert(day);
            if day < p.ref_day && lo.is_none_or(|lo| day >= lo) {
                a.w_orders += 1;
                a.w_spend += paid - refunded;
                a.w_last_day = Some(a.w_last_day.map_or(day, |d: i64| d.max(day)));
            }
        }
        // RFM over the population with an effective order in the window, in a stable order.
        let mut pop: Vec<(Uuid, Raw)> = aggs
            .iter()
            .filter_map(|(id, a)| {
                a.w_last_day.map(|d| (*id, Raw { r_days: p.ref_day - d, f: a.w_orders, m_fen: a.w_spend }))
            })
            .collect();
        pop.sort_by_key(|(id, _)| *id);
        let raws: Vec<Raw> = pop.iter().map(|(_, r)| *r).collect();
        let scored = rfm::score(&raws, p.centre);
        let rfm_by: HashMap<Uuid, rfm::Scored> = pop.iter().map(|(id, _)| *id).zip(scored).collect();

        let current: Vec<CurrentRow> = on_read!(self, |pool| {
            sqlx::query_as(
            "SELECT id, lifecycle, lifecycle_locked_until, orders_count, spend_fen, last_order_at, rfm_r, rfm_f, rfm_m, rfm_segment \
             FROM customers WHERE tenant_id = $1 AND status = 'active'"
        )
        .bind(tenant.0)
        .fetch_all(pool)
        .await?
        });
        let now = self.now();
        let mut summary = MetricsSummary { ref_day: p.ref_day, ..Default::default() };
        let mut counts: HashMap<&'static str, u64> = HashMap::new();
        let mut updates = Vec::new();
        for c in current {
            let a = aggs.get(&c.id);
            let r = rfm_by.get(&c.id);
            if a.is_some() {
                summary.buyers += 1;
            }
            if let Some(r) = r {
                summary.scored += 1;
                *counts.entry(segment_key(r.segment)).or_default() += 1;
            }
            let locked = c.lifecycle_locked_until.is_some_and(|t| t > now.0);
            let stage = a.and_then(|a| stage_after_purchases(&c.lifecycle, a.days.len(), locked));
            let new = NewValues {
                orders: a.map_or(0, |a| a.orders),
                spend: a.map_or(0, |a| a.spend),
                last_at: a.map(|a| a.last_at),
                rfm: r.map(|r| (r.scores.r as i64, r.scores.f as i64, r.scores.m as i64, segment_key(r.segment))),
                stage,
            };
            let same = new.orders == c.orders_count
                && new.spend == c.spend_fen
                && new.last_at == c.last_order_at
                && new.stage.is_none()
                && new.rfm.map(|(r, f, m, s)| (r, f, m, s.to_string()))
                    == match (c.rfm_r, c.rfm_f, c.rfm_m, &c.rfm_segment) {
                        (Some(r), Some(f), Some(m), Some(s)) => Some((r, f, m, s.clone())),
                        _ => None,
                    };
            if !same {
                if new.stage.is_some() {
                    summary.stage_changes += 1;
                }
                updates.push((c.id, c.lifecycle, new));
            }
        }
        for chunk in updates.chunks(CHUNK) {
            in_tx!(self, |tx| {
                let (_, seq) = bump!(tx, tenant, 0);
                for (id, before_stage, v) in chunk {
                    sqlx::query(
                        "UPDATE customers SET orders_count = $3, spend_fen = $4, last_order_at = $5, last_order_day = $6, \
                         rfm_r = $7, rfm_f = $8, rfm_m = $9, rfm_segment = $10, rfm_ref_day = $11, \
                         lifecycle = COALESCE($12, lifecycle), updated_at = $13, change_seq = $14 \
                         WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant.0)
                    .bind(id)
                    .bind(v.orders)
                    .bind(v.spend)
                    .bind(v.last_at)
                    .bind(v.last_at.map(|t| Timestamp(t).local_day(offset_hours)))
                    .bind(v.rfm.map(|x| x.0))
                    .bind(v.rfm.map(|x| x.1))
                    .bind(v.rfm.map(|x| x.2))
                    .bind(v.rfm.map(|x| x.3))
                    .bind(v.rfm.map(|_| p.ref_day))
                    .bind(v.stage)
                    .bind(now.0)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                    if let Some(stage) = v.stage {
                        let summary = format!("stage {before_stage} → {stage}");
                        timeline!(tx, tenant, CustomerId(*id), now, "stage", "rule", actor, &summary);
                    }
                }
            });
        }
        let mut segs: Vec<(String, u64)> = counts.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        segs.sort();
        summary.segments = segs;
        in_tx!(self, |tx| {
            audit!(
                tx,
                self,
                actor,
                "customer.metrics",
                "tenant",
                tenant,
                None,
                Some(serde_json::json!({"ref_day": p.ref_day, "buyers": summary.buyers, "scored": summary.scored,
                    "changed": updates.len(), "stage_changes": summary.stage_changes}))
            );
        });
        Ok(summary)
    }

    /// Raw RFM inputs as stored, for reports and tests: (customer, r, f, m, segment key).
    pub async fn rfm_snapshot(&self, tenant: TenantId) -> Result<Vec<(CustomerId, i64, i64, i64, String)>> {
        let rows: Vec<(Uuid, i64, i64, i64, String)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT id, rfm_r, rfm_f, rfm_m, rfm_segment FROM customers \
             WHERE tenant_id = $1 AND status = 'active' AND rfm_segment IS NOT NULL ORDER BY id"
        )
        .bind(tenant.0)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(|(id, r, f, m, s)| (CustomerId(id), r, f, m, s)).collect())
    }
}

#[derive(sqlx::FromRow)]
struct CurrentRow {
    id: Uuid,
    lifecycle: String,
    lifecycle_locked_until: Option<i64>,
    orders_count: i64,
    spend_fen: i64,
    last_order_at: Option<i64>,
    rfm_r: Option<i64>,
    rfm_f: Option<i64>,
    rfm_m: Option<i64>,
    rfm_segment: Option<String>,
}

struct NewValues {
    orders: i64,
    spend: i64,
    last_at: Option<i64>,
    rfm: Option<(i64, i64, i64, &'static str)>,
    stage: Option<&'static str>,
}

/// A tenant's RFM configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RfmSettings {
    /// `None` = all history.
    pub window_days: Option<i64>,
    pub centre: Centre,
    /// A fixed reference date (`YYYY-MM-DD`) for historical data; `None` = today.
    pub ref_date: Option<String>,
}

impl Default for RfmSettings {
    fn default() -> Self {
        RfmSettings { window_days: Some(365), centre: Centre::Mean, ref_date: None }
    }
}

impl RfmSettings {
    /// The parameters for a run on local day `today`.
    pub fn params(&self, today: i64) -> RfmParams {
        let ref_day = self.ref_date.as_deref().and_then(siyu_core::time::parse_day).unwrap_or(today);
        RfmParams { ref_day, window_days: self.window_days, centre: self.centre }
    }
}

impl Store {
    pub async fn rfm_settings(&self, tenant: TenantId) -> Result<RfmSettings> {
        type Row = (Option<i64>, String, Option<i64>, Option<i64>, Option<i64>, Option<String>);
        let r: Option<Row> = on_read!(self, |pool| {
            sqlx::query_as(
            "SELECT rfm_window_days, rfm_centre, rfm_r_days, rfm_f, rfm_m_fen, rfm_ref_date FROM customer_settings WHERE tenant_id = $1"
        )
        .bind(tenant.0)
        .fetch_optional(pool)
        .await?
        });
        Ok(match r {
            None => RfmSettings::default(),
            Some((window_days, centre, r_days, f, m_fen, ref_date)) => RfmSettings {
                window_days,
                centre: match (centre.as_str(), r_days, f, m_fen) {
                    ("fixed", Some(r_days), Some(f), Some(m_fen)) => Centre::Fixed { r_days, f, m_fen },
                    _ => Centre::Mean,
                },
                ref_date,
            },
        })
    }

    pub async fn save_rfm_settings(&self, actor: &Actor, s: &RfmSettings) -> Result<()> {
        let before = self.rfm_settings(actor.tenant_id).await?;
        let (centre, r, f, m) = match s.centre {
            Centre::Mean => ("mean", None, None, None),
            Centre::Fixed { r_days, f, m_fen } => ("fixed", Some(r_days), Some(f), Some(m_fen)),
        };
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO customer_settings (tenant_id, rfm_window_days, rfm_centre, rfm_r_days, rfm_f, rfm_m_fen, rfm_ref_date, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id) DO UPDATE SET rfm_window_days = $2, \
                 rfm_centre = $3, rfm_r_days = $4, rfm_f = $5, rfm_m_fen = $6, rfm_ref_date = $7, updated_at = $8",
            )
            .bind(actor.tenant_id.0)
            .bind(s.window_days)
            .bind(centre)
            .bind(r)
            .bind(f)
            .bind(m)
            .bind(&s.ref_date)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            audit!(
                tx,
                self,
                actor,
                "rfm.settings",
                "tenant",
                actor.tenant_id,
                crate::audit::snapshot(&before),
                crate::audit::snapshot(s)
            );
        });
        Ok(())
    }
}

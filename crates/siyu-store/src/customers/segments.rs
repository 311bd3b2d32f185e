//! Saved segments, and segment expressions compiled to SQL.
//!
//! The SQL form is the reference the bitmap index is tested against on both backends, the
//! baseline the benchmark reports beside it, and what answers while an index is still being
//! built. Each predicate is wrapped so a missing fact is FALSE rather than NULL, which keeps
//! `NOT` two-valued exactly as [`siyu_core::customers::segment::matches`] defines it.

use serde::Serialize;
use uuid::Uuid;

use siyu_core::auth::{Actor, DataScope};
use siyu_core::customers::segment::{Expr, Metric, RfmDim};
use siyu_core::{SegmentId, TenantId, Timestamp};

use super::{scope_binds, segment_key};
use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct SegmentRec {
    pub id: SegmentId,
    pub name: String,
    pub description: String,
    pub expr: Expr,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

type SegmentRow = (Uuid, String, String, sqlx::types::Json<Expr>, i64, i64);

fn from_row(r: SegmentRow) -> SegmentRec {
    SegmentRec {
        id: SegmentId(r.0),
        name: r.1,
        description: r.2,
        expr: r.3 .0,
        created_at: Timestamp(r.4),
        updated_at: Timestamp(r.5),
    }
}

/// A value bound into compiled SQL.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Uuid(Uuid),
    Text(String),
    Int(i64),
}

/// Compiles a resolved expression to a boolean SQL condition over `customers c`. Placeholders
/// are numbered from `first`.
pub fn to_sql(e: &Expr, today: i64, first: usize) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let sql = compile(e, today, first, &mut args);
    (sql, args)
}

fn compile(e: &Expr, today: i64, first: usize, args: &mut Vec<Arg>) -> String {
    let mut p = |a: Arg| -> String {
        args.push(a);
        format!("${}", first + args.len() - 1)
    };
    match e {
        Expr::All => "1 = 1".into(),
        Expr::And(xs) | Expr::Or(xs) => {
            let op = if matches!(e, Expr::And(_)) { " AND " } else { " OR " };
            let parts: Vec<String> = xs.iter().map(|x| compile(x, today, first, args)).collect();
            format!("({})", parts.join(op))
        }
        Expr::Not(x) => format!("(NOT {})", compile(x, today, first, args)),
        Expr::Tag(t) => format!(
            "EXISTS (SELECT 1 FROM customer_tags ct WHERE ct.tenant_id = c.tenant_id AND ct.customer_id = c.id AND ct.tag_id = {})",
            p(Arg::Uuid(t.0))
        ),
        Expr::Lifecycle(s) => format!("(c.lifecycle = {})", p(Arg::Text(s.clone()))),
        Expr::Channel(s) => format!(
            "EXISTS (SELECT 1 FROM customer_channels ch WHERE ch.tenant_id = c.tenant_id AND ch.customer_id = c.id AND ch.state = {})",
            p(Arg::Text(s.clone()))
        ),
        Expr::Staff(s) => format!("COALESCE(c.owner_staff_id = {}, FALSE)", p(Arg::Uuid(s.0))),
        Expr::Store(s) => format!("COALESCE(c.store_id = {}, FALSE)", p(Arg::Uuid(s.0))),
        Expr::RfmSegment(s) => format!("COALESCE(c.rfm_segment = {}, FALSE)", p(Arg::Text(segment_key(*s).into()))),
        Expr::RfmScore { dim, min, max } => {
            let col = match dim {
                RfmDim::R => "c.rfm_r",
                RfmDim::F => "c.rfm_f",
                RfmDim::M => "c.rfm_m",
            };
            let lo = p(Arg::Int(*min as i64));
            let hi = p(Arg::Int(*max as i64));
            format!("COALESCE({col} >= {lo} AND {col} <= {hi}, FALSE)")
        }
        Expr::Field { key, value } => {
            let k = p(Arg::Text(key.clone()));
            let v = p(Arg::Text(value.clone()));
            format!(
                "EXISTS (SELECT 1 FROM customer_fields cf WHERE cf.tenant_id = c.tenant_id AND cf.customer_id = c.id \
                 AND cf.key = {k} AND cf.value = {v})"
            )
        }
        Expr::Range { metric, min, max } => {
            let (col, lo, hi) = match metric {
                Metric::Orders => ("c.orders_count", *min, *max),
                Metric::SpendFen => ("c.spend_fen", *min, *max),
                // days ∈ [min, max] ⇔ last day ∈ [today − max, today − min].
                Metric::DaysSincePurchase => {
                    ("c.last_order_day", max.map(|m| today - m), Some(today - min.unwrap_or(0)))
                }
            };
            let mut conds = Vec::new();
            if let Some(lo) = lo {
                conds.push(format!("{col} >= {}", p(Arg::Int(lo))));
            }
            if let Some(hi) = hi {
                conds.push(format!("{col} <= {}", p(Arg::Int(hi))));
            }
            if conds.is_empty() {
                conds.push(format!("{col} IS NOT NULL"));
            }
            format!("COALESCE({}, FALSE)", conds.join(" AND "))
        }
        // Resolution removes references; an unresolved one matches nothing, as in `matches`.
        Expr::Segment(_) => "1 = 0".into(),
    }
}

macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Uuid(u) => q.bind(*u),
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

impl Store {
    pub async fn segments(&self, tenant: TenantId) -> Result<Vec<SegmentRec>> {
        let rows: Vec<SegmentRow> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, name, description, expr, created_at, updated_at FROM segments WHERE tenant_id = $1 ORDER BY name"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?
        });
        Ok(rows.into_iter().map(from_row).collect())
    }

    pub async fn segment(&self, tenant: TenantId, id: SegmentId) -> Result<SegmentRec> {
        let r: Option<SegmentRow> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, name, description, expr, created_at, updated_at FROM segments WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(p)
        .await?
        });
        r.map(from_row).ok_or(StoreError::NotFound)
    }

    /// Saves a segment (new when `id` is None). The caller has validated and resolved `expr`.
    pub async fn save_segment(
        &self,
        actor: &Actor,
        id: Option<SegmentId>,
        name: &str,
        description: &str,
        expr: &Expr,
    ) -> Result<SegmentRec> {
        let tenant = actor.tenant_id;
        let now = self.now();
        let before = match id {
            Some(id) => Some(self.segment(tenant, id).await?),
            None => None,
        };
        let rec = SegmentRec {
            id: id.unwrap_or_default(),
            name: name.to_string(),
            description: description.to_string(),
            expr: expr.clone(),
            created_at: before.as_ref().map(|b| b.created_at).unwrap_or(now),
            updated_at: now,
        };
        in_tx!(self, |tx| {
            let sql = if before.is_some() {
                "UPDATE segments SET name = $3, description = $4, expr = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2"
            } else {
                "INSERT INTO segments (tenant_id, id, name, description, expr, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)"
            };
            sqlx::query(sql)
                .bind(tenant.0)
                .bind(rec.id.0)
                .bind(name)
                .bind(description)
                .bind(sqlx::types::Json(expr))
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::constraint(e, "name"))?;
            let action = if before.is_some() { "segment.update" } else { "segment.create" };
            audit!(tx, self, actor, action, "segment", rec.id, before.as_ref().and_then(snapshot), snapshot(&rec));
        });
        Ok(rec)
    }

    /// Deletes a segment unless another segment refers to it.
    pub async fn delete_segment(&self, actor: &Actor, id: SegmentId) -> Result<()> {
        let tenant = actor.tenant_id;
        let before = self.segment(tenant, id).await?;
        for other in self.segments(tenant).await? {
            let mut refs = Vec::new();
            siyu_core::customers::segment::references(&other.expr, &mut refs);
            if other.id != id && refs.contains(&id) {
                return Err(StoreError::Conflict(format!("segment \"{}\" uses this segment", other.name)));
            }
        }
        in_tx!(self, |tx| {
            sqlx::query("DELETE FROM segments WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            audit!(tx, self, actor, "segment.delete", "segment", id, snapshot(&before), None);
        });
        Ok(())
    }

    /// Counts the members of a resolved expression in SQL.
    pub async fn count_segment_sql(&self, tenant: TenantId, scope: DataScope, e: &Expr, today: i64) -> Result<i64> {
        let (cond, args) = to_sql(e, today, 4);
        let sql = format!(
            "SELECT COUNT(*) FROM customers c WHERE c.tenant_id = $1 AND c.status = 'active' \
             AND ($2 OR c.owner_staff_id = $3) AND {cond}"
        );
        let (all, own) = scope_binds(scope);
        let n: i64 = on_read!(self, |p| {
            bind_args!(sqlx::query_scalar(&sql).bind(tenant.0).bind(all).bind(own), &args).fetch_one(p).await?
        });
        Ok(n)
    }

    /// Member numbers of a resolved expression in SQL, ascending (for tests and fallbacks).
    pub async fn segment_nums_sql(&self, tenant: TenantId, scope: DataScope, e: &Expr, today: i64) -> Result<Vec<u32>> {
        let (cond, args) = to_sql(e, today, 4);
        let sql = format!(
            "SELECT c.num FROM customers c WHERE c.tenant_id = $1 AND c.status = 'active' \
             AND ($2 OR c.owner_staff_id = $3) AND {cond} ORDER BY c.num"
        );
        let (all, own) = scope_binds(scope);
        let v: Vec<i64> = on_read!(self, |p| {
            bind_args!(sqlx::query_scalar(&sql).bind(tenant.0).bind(all).bind(own), &args).fetch_all(p).await?
        });
        Ok(v.into_iter().map(|n| n as u32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use siyu_core::TagId;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let e = Expr::And(vec![
            Expr::Tag(TagId(Uuid::nil())),
            Expr::Not(Box::new(Expr::Range { metric: Metric::DaysSincePurchase, min: Some(7), max: Some(30) })),
        ]);
        let (sql, args) = to_sql(&e, 100, 4);
        assert!(sql.contains("ct.tag_id = $4"), "{sql}");
        assert!(sql.contains("c.last_order_day >= $5 AND c.last_order_day <= $6"), "{sql}");
        assert_eq!(args, vec![Arg::Uuid(Uuid::nil()), Arg::Int(70), Arg::Int(93)]);
    }
}

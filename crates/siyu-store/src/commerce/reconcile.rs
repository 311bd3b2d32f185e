//! The daily reconciliation of the provider's trade bill (PAY-7): every bill line must match
//! exactly one payment or refund row here, at the same amount, and every payment recorded
//! here on that day must be in the bill. What does not match is kept with the run and
//! raises an alert.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::{TenantId, Timestamp};

use crate::{on_read, on_write, Result, Store};

/// A bill line as siyu needs it.
#[derive(Clone, Debug)]
pub struct ProviderLine {
    pub refund: bool,
    pub transaction_id: String,
    pub out_trade_no: String,
    pub out_refund_no: String,
    /// The payment's amount, or the refund's.
    pub amount_fen: i64,
}

/// One thing that did not match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// `unknown_payment`, `payment_amount`, `unknown_refund`, `refund_amount`,
    /// `refund_not_final`, `duplicate_line` or `missing_in_bill`.
    pub code: String,
    /// The transaction id or out_refund_no concerned.
    pub reference: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Reconciliation {
    pub bill_date: String,
    /// `running`, `matched`, `unmatched` or `failed` (the bill could not be had).
    pub status: String,
    pub lines: i64,
    pub matched: i64,
    pub problems: Vec<Mismatch>,
    pub detail: Option<String>,
    pub updated_at: Timestamp,
}

type Row = (String, String, i64, i64, Json<Vec<Mismatch>>, Option<String>, i64);
const SELECT: &str = "SELECT bill_date, status, lines, matched, problems, detail, updated_at FROM pay_reconciliations";

/// A failed run is tried again after this long.
const RETRY_FAILED_SECS: i64 = 3600;

impl Store {
    /// Claims the run of one bill date: true when this caller should do it (a new date, a
    /// failed run old enough to retry, or `force` for any run not in progress). Several
    /// processes may ask; one wins.
    pub async fn claim_reconciliation(&self, tenant: TenantId, bill_date: &str, force: bool) -> Result<bool> {
        let now = self.now().0;
        let n = on_write!(self, |p| {
            sqlx::query(
            "INSERT INTO pay_reconciliations (tenant_id, bill_date, status, created_at, updated_at) \
             VALUES ($1, $2, 'running', $3, $3) ON CONFLICT (tenant_id, bill_date) DO UPDATE SET status = 'running', \
             updated_at = $3 WHERE pay_reconciliations.status <> 'running' AND ($4 OR (pay_reconciliations.status = 'failed' \
             AND pay_reconciliations.updated_at <= $5))"
        )
        .bind(tenant.0)
        .bind(bill_date)
        .bind(now)
        .bind(force)
        .bind(now - RETRY_FAILED_SECS * 1_000_000)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// Notes that the bill could not be fetched or read.
    pub async fn fail_reconciliation(&self, tenant: TenantId, bill_date: &str, detail: &str) -> Result<()> {
        on_write!(self, |p| sqlx::query(
            "UPDATE pay_reconciliations SET status = 'failed', detail = $3, updated_at = $4 WHERE tenant_id = $1 \
             AND bill_date = $2"
        )
        .bind(tenant.0)
        .bind(bill_date)
        .bind(detail)
        .bind(self.now().0)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Matches a day's bill against this tenant's rows and records the outcome.
    pub async fn reconcile(&self, tenant: TenantId, bill_date: &str, bill: &[ProviderLine]) -> Result<Reconciliation> {
        let mut problems = Vec::new();
        let mut seen: BTreeSet<(bool, &str)> = BTreeSet::new();
        let mut matched = 0;
        let mut push = |code: &str, reference: &str, detail: String| {
            problems.push(Mismatch { code: code.into(), reference: reference.into(), detail });
        };
        for l in bill {
            let key = if l.refund { l.out_refund_no.as_str() } else { l.transaction_id.as_str() };
            if !seen.insert((l.refund, key)) {
                push("duplicate_line", key, "the bill lists it twice".into());
                continue;
            }
            if l.refund {
                let row: Option<(i64, String)> = on_read!(self, |p| sqlx::query_as(
                    "SELECT amount_fen, status FROM refunds WHERE tenant_id = $1 AND out_refund_no = $2"
                )
                .bind(tenant.0)
                .bind(&l.out_refund_no)
                .fetch_optional(p)
                .await?);
                match row {
                    None => push("unknown_refund", key, format!("a refund of {} fen siyu never made", l.amount_fen)),
                    Some((fen, _)) if fen != l.amount_fen => {
                        push("refund_amount", key, format!("{} fen in the bill, {fen} here", l.amount_fen))
                    }
                    Some((_, status)) if status != "succeeded" => {
                        push("refund_not_final", key, format!("refunded in the bill, {status} here"))
                    }
                    Some(_) => matched += 1,
                }
            } else {
                let row: Option<i64> = on_read!(self, |p| sqlx::query_scalar(
                    "SELECT amount_fen FROM payments WHERE tenant_id = $1 AND transaction_id = $2"
                )
                .bind(tenant.0)
                .bind(&l.transaction_id)
                .fetch_optional(p)
                .await?);
                match row {
                    None => push(
                        "unknown_payment",
                        key,
                        format!("{} fen for {} that siyu never recorded", l.amount_fen, l.out_trade_no),
                    ),
                    Some(fen) if fen != l.amount_fen => {
                        push("payment_amount", key, format!("{} fen in the bill, {fen} here", l.amount_fen))
                    }
                    Some(_) => matched += 1,
                }
            }
        }
        // Payments recorded here whose provider time is on that day must be in the bill.
        let ours: Vec<String> = on_read!(self, |p| {
            sqlx::query_scalar(
            "SELECT transaction_id FROM payments WHERE tenant_id = $1 AND success_time LIKE $2 ORDER BY transaction_id"
        )
        .bind(tenant.0)
        .bind(format!("{bill_date}T%"))
        .fetch_all(p)
        .await?
        });
        for tx in ours.iter().filter(|t| !seen.contains(&(false, t.as_str()))) {
            push("missing_in_bill", tx, "recorded here as paid that day, absent from the bill".into());
        }
        let status = if problems.is_empty() { "matched" } else { "unmatched" };
        if !problems.is_empty() {
            // The first few name the kind of trouble; the run keeps them all.
            let first: Vec<_> = problems.iter().take(5).collect();
            tracing::warn!(%tenant, bill_date, problems = problems.len(), ?first, "ALERT: the WeChat Pay bill does not match");
        }
        let now = self.now();
        on_write!(self, |p| sqlx::query(
            "UPDATE pay_reconciliations SET status = $3, lines = $4, matched = $5, problems = $6, detail = NULL, \
             updated_at = $7 WHERE tenant_id = $1 AND bill_date = $2"
        )
        .bind(tenant.0)
        .bind(bill_date)
        .bind(status)
        .bind(bill.len() as i64)
        .bind(matched)
        .bind(Json(&problems))
        .bind(now.0)
        .execute(p)
        .await?
        .rows_affected());
        // What was just written, without reading it back.
        Ok(Reconciliation {
            bill_date: bill_date.into(),
            status: status.into(),
            lines: bill.len() as i64,
            matched,
            problems,
            detail: None,
            updated_at: now,
        })
    }

    /// The latest runs, newest bill first.
    pub async fn reconciliations(&self, tenant: TenantId, limit: i64) -> Result<Vec<Reconciliation>> {
        let sql = format!("{SELECT} WHERE tenant_id = $1 ORDER BY bill_date DESC LIMIT $2");
        let rows: Vec<Row> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(limit).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|r| Reconciliation {
                bill_date: r.0,
                status: r.1,
                lines: r.2,
                matched: r.3,
                problems: r.4 .0,
                detail: r.5,
                updated_at: Timestamp(r.6),
            })
            .collect())
    }

    /// Tenants with WeChat Pay set up, with their zones: the reconciliation's work list.
    pub async fn pay_tenants(&self) -> Result<Vec<(TenantId, String)>> {
        let rows: Vec<(Uuid, String)> = on_read!(self, |p| sqlx::query_as(
            "SELECT t.id, t.timezone FROM pay_settings s JOIN tenants t ON t.id = s.tenant_id ORDER BY t.id"
        )
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(|r| (TenantId(r.0), r.1)).collect())
    }
}

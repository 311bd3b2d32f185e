//! Customer import records: a rejected file's row-level report, or a validated file's rows
//! waiting (sealed: they hold names and phones) for the job that imports them in one
//! transaction.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::customers::import::RowError;
use siyu_core::{TenantId, Timestamp};

use super::{ImportOutcome, ImportRow};
use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

/// One problem of a rejected file, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImportProblem {
    pub row: usize,
    pub column: String,
    pub code: String,
    pub message: String,
}

/// An upload and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct CustomerImport {
    pub id: Uuid,
    pub file_name: String,
    pub format: String,
    /// `rejected` (bad rows; nothing written), `queued`, `running`, `done` or `failed`
    /// (nothing written).
    pub status: String,
    /// Customer rows in the file.
    pub total: i64,
    pub created: i64,
    /// Rows matching a customer siyu already had (by external id or phone): left as they were.
    pub existing: i64,
    pub error_count: i64,
    pub errors: Vec<ImportProblem>,
    pub failure: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

type Row =
    (Uuid, String, String, String, i64, i64, i64, i64, String, Option<String>, String, i64, Option<i64>, Option<i64>);
const COLS: &str =
    "id, file_name, format, status, total, created, existing, error_count, errors, failure, created_by, \
     created_at, started_at, finished_at";

fn from_row(r: Row) -> CustomerImport {
    CustomerImport {
        id: r.0,
        file_name: r.1,
        format: r.2,
        status: r.3,
        total: r.4,
        created: r.5,
        existing: r.6,
        error_count: r.7,
        errors: serde_json::from_str(&r.8).unwrap_or_default(),
        failure: r.9,
        created_by: r.10,
        created_at: Timestamp(r.11),
        started_at: r.12.map(Timestamp),
        finished_at: r.13.map(Timestamp),
    }
}

fn aad(tenant: TenantId, id: Uuid) -> String {
    format!("customer_import:{tenant}:{id}")
}

impl Store {
    /// Records an upload: `Ok(rows)` queues them for the import job; `Err((problems, count))`
    /// records the rejection and its report. Nothing else is written either way.
    pub async fn create_customer_import(
        &self,
        actor: &Actor,
        file_name: &str,
        format: &str,
        checked: std::result::Result<&[ImportRow], (&[RowError], usize)>,
    ) -> Result<CustomerImport> {
        let tenant = actor.tenant_id;
        let id = Uuid::now_v7();
        let now = self.now();
        let (status, total, problems, count, sealed) = match checked {
            Ok(rows) => {
                let json = serde_json::to_string(rows).map_err(|e| StoreError::Conflict(e.to_string()))?;
                ("queued", rows.len(), vec![], 0, Some(self.sealer.seal(&aad(tenant, id), &json)))
            }
            Err((errs, n)) => {
                let p: Vec<ImportProblem> = errs
                    .iter()
                    .map(|e| ImportProblem {
                        row: e.row,
                        column: e.column.clone(),
                        code: e.code.into(),
                        message: e.message.clone(),
                    })
                    .collect();
                let rows = errs.iter().map(|e| e.row).max().unwrap_or(0).saturating_sub(1);
                ("rejected", rows, p, n, None)
            }
        };
        let name: String = file_name.chars().take(200).collect();
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO customer_imports (tenant_id, id, file_name, format, status, total, error_count, errors, rows_sealed, \
                 created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(&name)
            .bind(format)
            .bind(status)
            .bind(total as i64)
            .bind(count as i64)
            .bind(serde_json::to_string(&problems).unwrap_or_else(|_| "[]".into()))
            .bind(&sealed)
            .bind(actor.audit_identity().2)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            audit!(
                tx,
                self,
                actor,
                "customer.import.upload",
                "customer_import",
                id,
                None,
                snapshot(&serde_json::json!({"format": format, "status": status, "rows": total, "problems": count}))
            );
        });
        self.customer_import(tenant, id).await
    }

    pub async fn customer_import(&self, tenant: TenantId, id: Uuid) -> Result<CustomerImport> {
        let sql = format!("SELECT {COLS} FROM customer_imports WHERE tenant_id = $1 AND id = $2");
        let r: Option<Row> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id).fetch_optional(p).await?);
        r.map(from_row).ok_or(StoreError::NotFound)
    }

    /// Recent imports, newest first.
    pub async fn customer_imports(&self, tenant: TenantId, limit: i64) -> Result<Vec<CustomerImport>> {
        let sql = format!("SELECT {COLS} FROM customer_imports WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2");
        let rows: Vec<Row> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(limit).fetch_all(p).await?);
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Marks a queued (or interrupted) import running and hands over its rows; `None` when it
    /// is already finished, so a re-delivered job does nothing.
    pub async fn start_customer_import(&self, tenant: TenantId, id: Uuid) -> Result<Option<Vec<ImportRow>>> {
        let now = self.now();
        let sealed: Option<Option<String>> = in_tx!(self, |tx| {
            sqlx::query_scalar(
                "UPDATE customer_imports SET status = 'running', started_at = $3 \
                 WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running') RETURNING rows_sealed",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(now.0)
            .fetch_optional(&mut *tx)
            .await?
        });
        let Some(Some(sealed)) = sealed else { return Ok(None) };
        let json = self.sealer.open(&aad(tenant, id), &sealed).map_err(|e| StoreError::Conflict(e.to_string()))?;
        serde_json::from_str(&json).map(Some).map_err(|e| StoreError::Conflict(e.to_string()))
    }

    /// Records the import's end and drops its waiting rows.
    pub async fn finish_customer_import(
        &self,
        tenant: TenantId,
        id: Uuid,
        outcome: std::result::Result<&ImportOutcome, &str>,
    ) -> Result<()> {
        let now = self.now();
        let (status, created, existing, failure) = match outcome {
            Ok(o) => ("done", o.created as i64, o.existing as i64, None),
            Err(e) => ("failed", 0, 0, Some(e.chars().take(500).collect::<String>())),
        };
        in_tx!(self, |tx| {
            sqlx::query(
                "UPDATE customer_imports SET status = $3, created = $4, existing = $5, failure = $6, finished_at = $7, \
                 rows_sealed = NULL WHERE tenant_id = $1 AND id = $2 AND status = 'running'",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(status)
            .bind(created)
            .bind(existing)
            .bind(failure)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }
}

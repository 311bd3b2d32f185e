//! The durable jobs queue, stored beside the data it acts on.
//!
//! Delivery is at least once: a worker *leases* a job (`locked_by`, `locked_until`) and keeps
//! the lease alive with heartbeats while it runs. A worker that dies (even by SIGKILL) stops
//! heartbeating, the lease expires, and another worker claims the job again. Each claim
//! increments `attempts`, and completion is conditional on `(locked_by, attempts)`, a fencing
//! token: a worker that lost its lease cannot complete or fail a job someone else now holds.
//! On PostgreSQL claims use `FOR UPDATE SKIP LOCKED`, so many processes claim disjoint jobs
//! without waiting on each other; on SQLite the single write lock serialises claims.

use serde::Serialize;
use sqlx::types::Json;
use sqlx::FromRow;
use std::time::Duration;
use uuid::Uuid;

use siyu_core::jobs::JobStatus;
use siyu_core::paging::{Page, PageRequest};
use siyu_core::{JobId, TenantId, Timestamp};

use crate::{on_read, on_write, Db, Result, Store, StoreError};

#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: String,
    pub tenant_id: Option<TenantId>,
    pub payload: serde_json::Value,
    /// When to run; now if `None`.
    pub run_at: Option<Timestamp>,
    /// Enqueueing a second job with the same key is a no-op that returns the first job's id.
    pub dedupe_key: Option<String>,
    pub max_attempts: u32,
}

impl NewJob {
    pub fn new(kind: &str, payload: serde_json::Value) -> Self {
        NewJob { kind: kind.into(), tenant_id: None, payload, run_at: None, dedupe_key: None, max_attempts: 10 }
    }
    pub fn tenant(mut self, t: TenantId) -> Self {
        self.tenant_id = Some(t);
        self
    }
    pub fn at(mut self, t: Timestamp) -> Self {
        self.run_at = Some(t);
        self
    }
    pub fn dedupe(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
    pub fn attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Job {
    pub id: JobId,
    pub tenant_id: Option<TenantId>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub dedupe_key: Option<String>,
    pub status: JobStatus,
    pub run_at: Timestamp,
    pub attempts: u32,
    pub max_attempts: u32,
    pub locked_by: Option<String>,
    pub locked_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

#[derive(FromRow)]
struct JobRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    kind: String,
    payload: Json<serde_json::Value>,
    dedupe_key: Option<String>,
    status: String,
    run_at: i64,
    attempts: i32,
    max_attempts: i32,
    locked_by: Option<String>,
    locked_until: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
}

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Self {
        Job {
            id: JobId(r.id),
            tenant_id: r.tenant_id.map(TenantId),
            kind: r.kind,
            payload: r.payload.0,
            dedupe_key: r.dedupe_key,
            status: JobStatus::parse(&r.status).unwrap_or(JobStatus::Dead),
            run_at: Timestamp(r.run_at),
            attempts: r.attempts.max(0) as u32,
            max_attempts: r.max_attempts.max(0) as u32,
            locked_by: r.locked_by,
            locked_until: r.locked_until.map(Timestamp),
            last_error: r.last_error,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
            finished_at: r.finished_at.map(Timestamp),
        }
    }
}

const JOB_COLS: &str =
    "id, tenant_id, kind, payload, dedupe_key, status, run_at, attempts, max_attempts, locked_by, locked_until, last_error, created_at, updated_at, finished_at";

#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
}

/// Binds: id, tenant_id, kind, payload, dedupe_key, run_at, max_attempts, now. Shared with
/// modules that enqueue inside their own transaction.
pub(crate) const ENQUEUE_SQL: &str = "INSERT INTO jobs (id, tenant_id, kind, payload, dedupe_key, status, run_at, attempts, max_attempts, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, 'queued', $6, 0, $7, $8, $8) ON CONFLICT DO NOTHING";

impl Store {
    pub async fn enqueue(&self, j: NewJob) -> Result<JobId> {
        let now = self.now();
        let id = JobId::new();
        let inserted = on_write!(self, |p| {
            sqlx::query(ENQUEUE_SQL)
                .bind(id.0)
                .bind(j.tenant_id.map(|t| t.0))
                .bind(&j.kind)
                .bind(Json(&j.payload))
                .bind(&j.dedupe_key)
                .bind(j.run_at.unwrap_or(now).0)
                .bind(j.max_attempts.max(1) as i32)
                .bind(now.0)
                .execute(p)
                .await?
                .rows_affected()
        });
        if inserted == 1 {
            return Ok(id);
        }
        let existing: Option<Uuid> =
            on_read!(self, |p| sqlx::query_scalar("SELECT id FROM jobs WHERE dedupe_key = $1")
                .bind(&j.dedupe_key)
                .fetch_optional(p)
                .await?);
        existing
            .map(JobId)
            .ok_or_else(|| StoreError::Conflict("job insert conflicted but no job holds its dedupe key".into()))
    }

    /// Leases up to `limit` due jobs to `worker` for `lease`. Jobs whose previous lease
    /// expired (their worker died) are due again.
    pub async fn claim_jobs(&self, worker: &str, limit: u32, lease: Duration) -> Result<Vec<Job>> {
        let now = self.now();
        let until = now.plus(lease);
        let pick = "SELECT id FROM jobs WHERE (status = 'queued' AND run_at <= $3) OR (status = 'running' AND locked_until < $3) ORDER BY run_at LIMIT $4";
        let rows: Vec<JobRow> = match &self.db {
            Db::Postgres(p) => {
                let sql = format!(
                    "UPDATE jobs SET status = 'running', locked_by = $1, locked_until = $2, attempts = attempts + 1, updated_at = $3 \
                     WHERE id IN ({pick} FOR UPDATE SKIP LOCKED) RETURNING {JOB_COLS}"
                );
                sqlx::query_as(&sql).bind(worker).bind(until.0).bind(now.0).bind(limit as i64).fetch_all(p).await?
            }
            Db::Sqlite { write, .. } => {
                let sql = format!(
                    "UPDATE jobs SET status = 'running', locked_by = $1, locked_until = $2, attempts = attempts + 1, updated_at = $3 \
                     WHERE id IN ({pick}) RETURNING {JOB_COLS}"
                );
                sqlx::query_as(&sql).bind(worker).bind(until.0).bind(now.0).bind(limit as i64).fetch_all(write).await?
            }
        };
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Extends a lease. `false` means the lease was lost and the worker must stop.
    pub async fn heartbeat_job(&self, id: JobId, worker: &str, attempt: u32, lease: Duration) -> Result<bool> {
        let now = self.now();
        let n = on_write!(self, |p| {
            sqlx::query(
            "UPDATE jobs SET locked_until = $4, updated_at = $5 WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND status = 'running'"
        )
        .bind(id.0)
        .bind(worker)
        .bind(attempt as i32)
        .bind(now.plus(lease).0)
        .bind(now.0)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// Marks a leased job done. `false` means the lease had been lost (someone else holds the
    /// job now); the caller's work was a duplicate delivery and idempotency covers it.
    pub async fn complete_job(&self, id: JobId, worker: &str, attempt: u32) -> Result<bool> {
        let now = self.now();
        let n = on_write!(self, |p| {
            sqlx::query(
            "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL, last_error = NULL, finished_at = $4, updated_at = $4 \
             WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND status = 'running'"
        )
        .bind(id.0)
        .bind(worker)
        .bind(attempt as i32)
        .bind(now.0)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records a failed attempt: back to the queue at `retry_at`, or dead when `None`.
    pub async fn fail_job(
        &self,
        id: JobId,
        worker: &str,
        attempt: u32,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<bool> {
        let now = self.now();
        let err: String = error.chars().take(2000).collect();
        let (status, run_at, finished) = match retry_at {
            Some(t) => ("queued", Some(t.0), None),
            None => ("dead", None, Some(now.0)),
        };
        let n = on_write!(self, |p| {
            sqlx::query(
            "UPDATE jobs SET status = $4, run_at = COALESCE($5, run_at), last_error = $6, locked_by = NULL, locked_until = NULL, finished_at = $7, updated_at = $8 \
             WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND status = 'running'"
        )
        .bind(id.0)
        .bind(worker)
        .bind(attempt as i32)
        .bind(status)
        .bind(run_at)
        .bind(err)
        .bind(finished)
        .bind(now.0)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn job(&self, id: JobId) -> Result<Job> {
        let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1");
        let r: Option<JobRow> = on_read!(self, |p| sqlx::query_as(&sql).bind(id.0).fetch_optional(p).await?);
        r.map(Into::into).ok_or(StoreError::NotFound)
    }

    /// A tenant's jobs, newest first.
    pub async fn list_jobs(&self, tenant: TenantId, f: &JobFilter, page: &PageRequest) -> Result<Page<Job>> {
        let sql = format!(
            "SELECT {JOB_COLS} FROM jobs WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR kind = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<JobRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(f.status.map(|s| s.as_str()))
            .bind(&f.kind)
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        Ok(Page::from_rows(rows, page, |r| r.id).map(Into::into))
    }

    /// Puts a dead job of this tenant back in the queue with fresh attempts.
    pub async fn retry_dead_job(&self, tenant: TenantId, id: JobId) -> Result<()> {
        let now = self.now();
        let n = on_write!(self, |p| {
            sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $3, finished_at = NULL, updated_at = $3 WHERE id = $1 AND tenant_id = $2 AND status = 'dead'"
        )
        .bind(id.0)
        .bind(tenant.0)
        .bind(now.0)
        .execute(p)
        .await?
        .rows_affected()
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Deletes finished jobs older than `age`.
    pub async fn purge_finished_jobs(&self, age: Duration) -> Result<u64> {
        let cutoff = self.now().minus(age);
        let n = on_write!(self, |p| sqlx::query("DELETE FROM jobs WHERE status = 'done' AND finished_at < $1")
            .bind(cutoff.0)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n)
    }

    /// Effect of the built-in `system.probe` job: records completion once per job id.
    pub async fn record_probe(&self, job: JobId, worker: &str) -> Result<bool> {
        let n = on_write!(self, |p| {
            sqlx::query("INSERT INTO job_probe_results (job_id, worker, completed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(job.0)
            .bind(worker)
            .bind(self.now().0)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// How many times the probe effect of `job` was applied (0 or 1, if all is well).
    pub async fn probe_results(&self, job: JobId) -> Result<i64> {
        let n: i64 = on_read!(self, |p| sqlx::query_scalar("SELECT COUNT(*) FROM job_probe_results WHERE job_id = $1")
            .bind(job.0)
            .fetch_one(p)
            .await?);
        Ok(n)
    }
}

//! WeCom gateway storage: app settings with sealed secrets, the durable callback inbox, replay
//! memory, and the typed domain events the inbox is processed into.
//!
//! A callback is accepted in one transaction that records its nonce, inserts the inbox row
//! under its dedupe key and schedules its processing job — so an acknowledged callback is
//! always stored and always scheduled, and a duplicate (a WeCom retry, a replay, a concurrent
//! double delivery) changes nothing.

use serde::Serialize;
use serde_json::json;
use sqlx::types::Json;
use sqlx::FromRow;
use std::time::Duration;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::paging::{Page, PageRequest};
use siyu_core::wecom::AppInput;
use siyu_core::{InboxId, JobId, TenantId, Timestamp, WecomAppId, WecomEventId};

use crate::audit::snapshot;
use crate::jobs::ENQUEUE_SQL;
use crate::{audit, in_tx, on_read, on_write, Result, Store, StoreError};

/// Job kind that turns one inbox row into its domain event.
pub const INBOX_JOB: &str = "wecom.inbox";

/// A configured app, without its secrets.
#[derive(Clone, Debug, Serialize)]
pub struct WecomApp {
    pub id: WecomAppId,
    pub tenant_id: TenantId,
    pub name: String,
    pub corp_id: String,
    pub agent_id: String,
    pub base_url: String,
    pub callback_verified_at: Option<Timestamp>,
    pub last_event_at: Option<Timestamp>,
    pub last_check_at: Option<Timestamp>,
    pub last_check: Option<serde_json::Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An app's secrets, opened. Never logged: `Debug` hides them.
#[derive(Clone)]
pub struct WecomCredentials {
    pub corp_id: String,
    pub base_url: String,
    pub secret: String,
    pub callback_token: String,
    pub encoding_aes_key: String,
}

impl std::fmt::Debug for WecomCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomCredentials")
            .field("corp_id", &self.corp_id)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(FromRow)]
struct AppRow {
    tenant_id: Uuid,
    id: Uuid,
    name: String,
    corp_id: String,
    agent_id: String,
    base_url: String,
    callback_verified_at: Option<i64>,
    last_event_at: Option<i64>,
    last_check_at: Option<i64>,
    last_check: Option<Json<serde_json::Value>>,
    created_at: i64,
    updated_at: i64,
}

impl From<AppRow> for WecomApp {
    fn from(r: AppRow) -> Self {
        WecomApp {
            id: WecomAppId(r.id),
            tenant_id: TenantId(r.tenant_id),
            name: r.name,
            corp_id: r.corp_id,
            agent_id: r.agent_id,
            base_url: r.base_url,
            callback_verified_at: r.callback_verified_at.map(Timestamp),
            last_event_at: r.last_event_at.map(Timestamp),
            last_check_at: r.last_check_at.map(Timestamp),
            last_check: r.last_check.map(|j| j.0),
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        }
    }
}

const APP_COLS: &str = "tenant_id, id, name, corp_id, agent_id, base_url, callback_verified_at, last_event_at, last_check_at, last_check, created_at, updated_at";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxStatus {
    Pending,
    Processed,
    Failed,
    Dead,
}

impl InboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxStatus::Pending => "pending",
            InboxStatus::Processed => "processed",
            InboxStatus::Failed => "failed",
            InboxStatus::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Processed, Self::Failed, Self::Dead].into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct InboxItem {
    pub id: InboxId,
    pub app_id: WecomAppId,
    pub dedupe_key: String,
    pub received_at: Timestamp,
    pub envelope: String,
    pub payload: String,
    pub event_kind: String,
    pub entity: String,
    pub status: InboxStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub processed_at: Option<Timestamp>,
}

#[derive(FromRow)]
struct InboxRow {
    id: Uuid,
    app_id: Uuid,
    dedupe_key: String,
    received_at: i64,
    envelope: String,
    payload: String,
    event_kind: String,
    entity: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    processed_at: Option<i64>,
}

impl From<InboxRow> for InboxItem {
    fn from(r: InboxRow) -> Self {
        InboxItem {
            id: InboxId(r.id),
            app_id: WecomAppId(r.app_id),
            dedupe_key: r.dedupe_key,
            received_at: Timestamp(r.received_at),
            envelope: r.envelope,
            payload: r.payload,
            event_kind: r.event_kind,
            entity: r.entity,
            status: InboxStatus::parse(&r.status).unwrap_or(InboxStatus::Failed),
            attempts: r.attempts.max(0) as u32,
            last_error: r.last_error,
            processed_at: r.processed_at.map(Timestamp),
        }
    }
}

const INBOX_COLS: &str = "id, app_id, dedupe_key, received_at, envelope, payload, event_kind, entity, status, attempts, last_error, processed_at";

#[derive(Clone, Debug, Serialize)]
pub struct WecomEventRec {
    pub id: WecomEventId,
    pub app_id: WecomAppId,
    pub inbox_id: InboxId,
    pub kind: String,
    pub entity: String,
    pub payload: serde_json::Value,
    pub occurred_at: Timestamp,
    pub created_at: Timestamp,
}

#[derive(FromRow)]
struct EventRow {
    id: Uuid,
    app_id: Uuid,
    inbox_id: Uuid,
    kind: String,
    entity: String,
    payload: Json<serde_json::Value>,
    occurred_at: i64,
    created_at: i64,
}

impl From<EventRow> for WecomEventRec {
    fn from(r: EventRow) -> Self {
        WecomEventRec {
            id: WecomEventId(r.id),
            app_id: WecomAppId(r.app_id),
            inbox_id: InboxId(r.inbox_id),
            kind: r.kind,
            entity: r.entity,
            payload: r.payload.0,
            occurred_at: Timestamp(r.occurred_at),
            created_at: Timestamp(r.created_at),
        }
    }
}

/// A verified, decrypted callback ready to store.
pub struct IncomingCallback<'a> {
    pub app_id: WecomAppId,
    pub timestamp: i64,
    pub nonce: &'a str,
    pub dedupe_key: &'a str,
    pub envelope: &'a str,
    pub payload: &'a str,
    pub event_kind: &'a str,
    pub entity: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Stored and scheduled for processing.
    New(InboxId),
    /// Seen before (same nonce, or same event): acknowledged, nothing changed.
    Duplicate,
}

#[derive(Clone, Debug, Default)]
pub struct InboxFilter {
    pub status: Option<InboxStatus>,
    pub app_id: Option<WecomAppId>,
}

fn aad(tenant: TenantId, app: WecomAppId, what: &str) -> String {
    format!("{tenant}|{app}|wecom.{what}")
}

impl Store {
    pub async fn create_wecom_app(
        &self,
        actor: &Actor,
        input: &AppInput,
        secret: &str,
        callback_token: &str,
        encoding_aes_key: &str,
    ) -> Result<WecomApp> {
        let now = self.now();
        let app = WecomApp {
            id: WecomAppId::new(),
            tenant_id: actor.tenant_id,
            name: input.name.clone(),
            corp_id: input.corp_id.clone(),
            agent_id: input.agent_id.clone(),
            base_url: input.base_url.clone(),
            callback_verified_at: None,
            last_event_at: None,
            last_check_at: None,
            last_check: None,
            created_at: now,
            updated_at: now,
        };
        let t = actor.tenant_id;
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO wecom_apps (tenant_id, id, name, corp_id, agent_id, base_url, secret_sealed, callback_token_sealed, encoding_aes_key_sealed, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(t.0)
            .bind(app.id.0)
            .bind(&app.name)
            .bind(&app.corp_id)
            .bind(&app.agent_id)
            .bind(&app.base_url)
            .bind(self.sealer.seal(&aad(t, app.id, "secret"), secret))
            .bind(self.sealer.seal(&aad(t, app.id, "callback_token"), callback_token))
            .bind(self.sealer.seal(&aad(t, app.id, "encoding_aes_key"), encoding_aes_key))
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "agent_id"))?;
            audit!(tx, self, actor, "wecom_app.create", "wecom_app", app.id, None, snapshot(&app));
        });
        Ok(app)
    }

    /// Updates settings; `secret: None` keeps the stored secret.
    pub async fn update_wecom_app(
        &self,
        actor: &Actor,
        id: WecomAppId,
        input: &AppInput,
        secret: Option<&str>,
    ) -> Result<WecomApp> {
        let before = self.wecom_app(actor.tenant_id, id).await?;
        let now = self.now();
        let after = WecomApp {
            name: input.name.clone(),
            corp_id: input.corp_id.clone(),
            agent_id: input.agent_id.clone(),
            base_url: input.base_url.clone(),
            updated_at: now,
            ..before.clone()
        };
        let sealed = secret.map(|s| self.sealer.seal(&aad(actor.tenant_id, id, "secret"), s));
        in_tx!(self, |tx| {
            sqlx::query(
                "UPDATE wecom_apps SET name = $3, corp_id = $4, agent_id = $5, base_url = $6, secret_sealed = COALESCE($7, secret_sealed), updated_at = $8 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(&after.name)
            .bind(&after.corp_id)
            .bind(&after.agent_id)
            .bind(&after.base_url)
            .bind(sealed)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "agent_id"))?;
            let mut a = snapshot(&after);
            if secret.is_some() {
                if let Some(o) = a.as_mut().and_then(|v| v.as_object_mut()) {
                    o.insert("secret".into(), json!("changed"));
                }
            }
            audit!(tx, self, actor, "wecom_app.update", "wecom_app", id, snapshot(&before), a);
        });
        Ok(after)
    }

    pub async fn wecom_app(&self, tenant: TenantId, id: WecomAppId) -> Result<WecomApp> {
        let sql = format!("SELECT {APP_COLS} FROM wecom_apps WHERE tenant_id = $1 AND id = $2");
        let r: Option<AppRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(Into::into).ok_or(StoreError::NotFound)
    }

    pub async fn list_wecom_apps(&self, tenant: TenantId) -> Result<Vec<WecomApp>> {
        let sql = format!("SELECT {APP_COLS} FROM wecom_apps WHERE tenant_id = $1 ORDER BY id");
        let r: Vec<AppRow> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).fetch_all(p).await?);
        Ok(r.into_iter().map(Into::into).collect())
    }

    /// The app's secrets, opened with the master key.
    pub async fn wecom_credentials(&self, tenant: TenantId, id: WecomAppId) -> Result<WecomCredentials> {
        let row: Option<(String, String, String, String, String)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT corp_id, base_url, secret_sealed, callback_token_sealed, encoding_aes_key_sealed FROM wecom_apps WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(p)
        .await?
        });
        let (corp_id, base_url, s, t, k) = row.ok_or(StoreError::NotFound)?;
        Ok(WecomCredentials {
            corp_id,
            base_url,
            secret: self.sealer.open(&aad(tenant, id, "secret"), &s)?,
            callback_token: self.sealer.open(&aad(tenant, id, "callback_token"), &t)?,
            encoding_aes_key: self.sealer.open(&aad(tenant, id, "encoding_aes_key"), &k)?,
        })
    }

    pub async fn mark_callback_verified(&self, tenant: TenantId, id: WecomAppId) -> Result<()> {
        let now = self.now();
        on_write!(self, |p| sqlx::query(
            "UPDATE wecom_apps SET callback_verified_at = $3 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(now.0)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn record_wecom_check(&self, tenant: TenantId, id: WecomAppId, result: &serde_json::Value) -> Result<()> {
        let now = self.now();
        on_write!(self, |p| sqlx::query(
            "UPDATE wecom_apps SET last_check_at = $3, last_check = $4 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(now.0)
        .bind(Json(result))
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Stores a verified callback and schedules its processing, atomically; a duplicate
    /// changes nothing.
    pub async fn accept_callback(&self, tenant: TenantId, c: &IncomingCallback<'_>) -> Result<Accepted> {
        let now = self.now();
        let inbox = InboxId::new();
        let accepted = in_tx!(self, |tx| {
            let fresh_nonce = sqlx::query("INSERT INTO wecom_nonces (tenant_id, app_id, timestamp, nonce, seen_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                .bind(tenant.0)
                .bind(c.app_id.0)
                .bind(c.timestamp)
                .bind(c.nonce)
                .bind(now.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if fresh_nonce == 0 {
                return Ok(Accepted::Duplicate);
            }
            let stored = sqlx::query(
                "INSERT INTO wecom_inbox (tenant_id, id, app_id, dedupe_key, received_at, envelope, payload, event_kind, entity, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending') ON CONFLICT DO NOTHING",
            )
            .bind(tenant.0)
            .bind(inbox.0)
            .bind(c.app_id.0)
            .bind(c.dedupe_key)
            .bind(now.0)
            .bind(c.envelope)
            .bind(c.payload)
            .bind(c.event_kind)
            .bind(c.entity)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if stored == 1 {
                sqlx::query(ENQUEUE_SQL)
                    .bind(JobId::new().0)
                    .bind(Some(tenant.0))
                    .bind(INBOX_JOB)
                    .bind(Json(json!({"inbox_id": inbox.0})))
                    .bind(Some(format!("{INBOX_JOB}:{}", inbox.0)))
                    .bind(now.0)
                    .bind(10i32)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE wecom_apps SET last_event_at = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(c.app_id.0)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
            }
            if stored == 1 {
                Accepted::New(inbox)
            } else {
                Accepted::Duplicate
            }
        });
        Ok(accepted)
    }

    pub async fn inbox_item(&self, tenant: TenantId, id: InboxId) -> Result<InboxItem> {
        let sql = format!("SELECT {INBOX_COLS} FROM wecom_inbox WHERE tenant_id = $1 AND id = $2");
        let r: Option<InboxRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(Into::into).ok_or(StoreError::NotFound)
    }

    pub async fn list_inbox(&self, tenant: TenantId, f: &InboxFilter, page: &PageRequest) -> Result<Page<InboxItem>> {
        let sql = format!(
            "SELECT {INBOX_COLS} FROM wecom_inbox WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR app_id = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<InboxRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.app_id.map(|a| a.0))
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        Ok(Page::from_rows(rows, page, |r| r.id).map(Into::into))
    }

    /// Records the domain event of an inbox row and marks the row processed, atomically. A
    /// second call for the same row (a re-delivered job) inserts nothing.
    pub async fn record_wecom_event(
        &self,
        tenant: TenantId,
        item: &InboxItem,
        kind: &str,
        payload: &serde_json::Value,
        occurred_at: Timestamp,
    ) -> Result<bool> {
        let now = self.now();
        let inserted = in_tx!(self, |tx| {
            let n = sqlx::query(
                "INSERT INTO wecom_events (tenant_id, id, app_id, inbox_id, kind, entity, payload, occurred_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.0)
            .bind(WecomEventId::new().0)
            .bind(item.app_id.0)
            .bind(item.id.0)
            .bind(kind)
            .bind(&item.entity)
            .bind(Json(payload))
            .bind(occurred_at.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("UPDATE wecom_inbox SET status = 'processed', attempts = attempts + 1, last_error = NULL, processed_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(item.id.0)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            n == 1
        });
        Ok(inserted)
    }

    /// Records a failed processing attempt; `dead` when no retries remain.
    pub async fn fail_inbox_item(&self, tenant: TenantId, id: InboxId, error: &str, dead: bool) -> Result<()> {
        let status = if dead { "dead" } else { "failed" };
        on_write!(self, |p| {
            sqlx::query("UPDATE wecom_inbox SET status = $3, attempts = attempts + 1, last_error = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id.0)
            .bind(status)
            .bind(error.chars().take(2000).collect::<String>())
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Replays a failed or dead inbox row: back to pending, with a fresh processing job.
    pub async fn retry_inbox_item(&self, tenant: TenantId, id: InboxId) -> Result<()> {
        let item = self.inbox_item(tenant, id).await?;
        if item.status == InboxStatus::Processed {
            return Err(StoreError::Conflict("this callback was processed already".into()));
        }
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query("UPDATE wecom_inbox SET status = 'pending' WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query(ENQUEUE_SQL)
                .bind(JobId::new().0)
                .bind(Some(tenant.0))
                .bind(INBOX_JOB)
                .bind(Json(json!({"inbox_id": id.0})))
                .bind(Some(format!("{INBOX_JOB}:{}:retry:{}", id.0, now.0)))
                .bind(now.0)
                .bind(10i32)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    pub async fn list_wecom_events(
        &self,
        tenant: TenantId,
        entity: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<WecomEventRec>> {
        const SQL: &str =
            "SELECT id, app_id, inbox_id, kind, entity, payload, occurred_at, created_at FROM wecom_events \
            WHERE tenant_id = $1 AND ($2 IS NULL OR entity = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4";
        let rows: Vec<EventRow> = on_read!(self, |p| sqlx::query_as(SQL)
            .bind(tenant.0)
            .bind(entity)
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        Ok(Page::from_rows(rows, page, |r| r.id).map(Into::into))
    }

    /// Whether an earlier callback about the same entity is still being worked on (pending or
    /// failed, received within the last hour): the later one waits, so one entity's events
    /// apply in order. Older stragglers stop blocking: handlers re-read state, so order is a
    /// courtesy, and an entity must never be wedged by one row whose job died.
    pub async fn earlier_unprocessed(&self, tenant: TenantId, item: &InboxItem) -> Result<bool> {
        let since = self.now().minus(Duration::from_secs(3600));
        let n: Option<Uuid> = on_read!(self, |p| {
            sqlx::query_scalar(
            "SELECT id FROM wecom_inbox WHERE tenant_id = $1 AND entity = $2 AND id < $3 AND status IN ('pending', 'failed') AND received_at > $4 LIMIT 1"
        )
        .bind(tenant.0)
        .bind(&item.entity)
        .bind(item.id.0)
        .bind(since.0)
        .fetch_optional(p)
        .await?
        });
        Ok(n.is_some())
    }

    /// Processes an inbox row again a little later, as a fresh job: waiting for an earlier
    /// event is not a failure and must not spend attempts.
    pub async fn defer_inbox_item(&self, tenant: TenantId, id: InboxId, delay: Duration) -> Result<()> {
        let now = self.now();
        on_write!(self, |p| sqlx::query(ENQUEUE_SQL)
            .bind(JobId::new().0)
            .bind(Some(tenant.0))
            .bind(INBOX_JOB)
            .bind(Json(json!({"inbox_id": id.0})))
            .bind(Some(format!("{INBOX_JOB}:{}:defer:{}", id.0, now.0)))
            .bind(now.plus(delay).0)
            .bind(10i32)
            .bind(now.0)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Deletes processed callbacks received before `age` ago (scrm-rules S-6 keeps 30 days);
    /// their events stay.
    pub async fn purge_wecom_inbox(&self, age: Duration) -> Result<u64> {
        let cutoff = self.now().minus(age);
        let n =
            on_write!(self, |p| sqlx::query("DELETE FROM wecom_inbox WHERE status = 'processed' AND received_at < $1")
                .bind(cutoff.0)
                .execute(p)
                .await?
                .rows_affected());
        Ok(n)
    }

    /// Forgets nonces older than the replay window; run by housekeeping.
    pub async fn purge_wecom_nonces(&self, window: Duration) -> Result<u64> {
        let cutoff = self.now().minus(window * 2);
        let n = on_write!(self, |p| sqlx::query("DELETE FROM wecom_nonces WHERE seen_at < $1")
            .bind(cutoff.0)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n)
    }
}

//! The audit log: who changed what, when, with the entity before and after.
//!
//! Every store function that changes tenant data writes its audit row inside the same
//! transaction as the change (see [`audit!`]), so a change without its audit row — or an
//! audit row for a change that rolled back — cannot exist. The request id comes from a
//! task-local the HTTP edge sets, so log lines and audit rows of one request share it.

use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::paging::{Page, PageRequest};
use siyu_core::{AuditId, TenantId, Timestamp};

use crate::{on_read, Result, Store};

tokio::task_local! {
    /// The id of the HTTP request (or job) being served, if any.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|r| r.clone()).ok()
}

#[doc(hidden)]
pub const INSERT_SQL: &str = "INSERT INTO audit_log (tenant_id, id, at, actor_kind, actor_id, actor_name, action, entity_type, entity_id, before, after, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Writes one audit row on an open transaction: `audit!(tx, store, actor, "store.create",
/// "store", id, before_json, after_json)`.
#[macro_export]
#[doc(hidden)]
macro_rules! audit {
    ($tx:expr, $store:expr, $actor:expr, $action:expr, $etype:expr, $eid:expr, $before:expr, $after:expr) => {{
        let (kind, aid, aname) = $actor.audit_identity();
        let before: Option<serde_json::Value> = $before;
        let after: Option<serde_json::Value> = $after;
        sqlx::query($crate::audit::INSERT_SQL)
            .bind($actor.tenant_id.0)
            .bind(uuid::Uuid::now_v7())
            .bind($store.now().0)
            .bind(kind)
            .bind(aid)
            .bind(aname)
            .bind($action)
            .bind($etype)
            .bind($eid.to_string())
            .bind(before.map(sqlx::types::Json))
            .bind(after.map(sqlx::types::Json))
            .bind($crate::audit::current_request_id())
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Serialises an entity for the audit log.
pub fn snapshot<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: Timestamp,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    at: i64,
    actor_kind: String,
    actor_id: Option<String>,
    actor_name: String,
    action: String,
    entity_type: String,
    entity_id: String,
    before: Option<Json<serde_json::Value>>,
    after: Option<Json<serde_json::Value>>,
    request_id: Option<String>,
}

impl From<Row> for AuditEntry {
    fn from(r: Row) -> Self {
        AuditEntry {
            id: AuditId(r.id),
            at: Timestamp(r.at),
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            actor_name: r.actor_name,
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            before: r.before.map(|j| j.0),
            after: r.after.map(|j| j.0),
            request_id: r.request_id,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<String>,
    /// Prefix of the action, e.g. `store.` for every store change.
    pub action_prefix: Option<String>,
}

impl Store {
    pub async fn list_audit(&self, tenant: TenantId, f: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>> {
        const SQL: &str = "SELECT id, at, actor_kind, actor_id, actor_name, action, entity_type, entity_id, before, after, request_id \
            FROM audit_log WHERE tenant_id = $1 \
            AND ($2 IS NULL OR entity_type = $2) AND ($3 IS NULL OR entity_id = $3) \
            AND ($4 IS NULL OR actor_id = $4) AND ($5 IS NULL OR action LIKE $5 ESCAPE '\\') \
            AND ($6 IS NULL OR id < $6) ORDER BY id DESC LIMIT $7";
        let prefix = f.action_prefix.as_ref().map(|p| format!("{}%", crate::like_escape(p)));
        let rows: Vec<Row> = on_read!(self, |p| sqlx::query_as(SQL)
            .bind(tenant.0)
            .bind(&f.entity_type)
            .bind(&f.entity_id)
            .bind(&f.actor_id)
            .bind(prefix)
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        Ok(Page::from_rows(rows, page, |r| r.id).map(AuditEntry::from))
    }
}

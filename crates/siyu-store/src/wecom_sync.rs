//! WeCom state as siyu last saw it: external contacts, staff–customer relationships, corp tags
//! and customer groups, plus per-entity sync health. Writers are upserts that report whether
//! anything changed, which is how reconciliation counts drift.

use serde::Serialize;
use sqlx::types::Json;
use sqlx::FromRow;
use uuid::Uuid;

use siyu_core::paging::{Page, PageRequest};
use siyu_core::{TenantId, Timestamp, WecomAppId};

use crate::{in_tx, on_read, on_write, Result, Store};

/// Relationship statuses (scrm-rules C-1), plus `removed`: gone from WeCom, found only by
/// reconciliation, so which side ended it is unknown.
pub const REL_STATUSES: [&str; 6] =
    ["half", "active", "deleted_by_staff", "deleted_by_customer", "transferred_out", "removed"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContactRec {
    pub external_userid: String,
    pub name: String,
    pub avatar: Option<String>,
    pub kind: i64,
    pub gender: i64,
    pub unionid: Option<String>,
    pub corp_name: Option<String>,
}

/// A staff–customer relationship as WeCom reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelationshipRec {
    pub external_userid: String,
    pub userid: String,
    pub remark: String,
    pub description: String,
    pub add_time: i64,
    pub add_way: i64,
    pub state: Option<String>,
    pub status: String,
    pub corp_tag_ids: Vec<String>,
    pub remark_mobiles: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Relationship {
    #[serde(flatten)]
    pub rec: RelationshipRec,
    pub status_changed_at: Timestamp,
    pub status_reason: Option<String>,
    pub last_synced_at: Timestamp,
    pub last_source: String,
}

#[derive(FromRow)]
struct RelRow {
    external_userid: String,
    userid: String,
    remark: String,
    description: String,
    add_time: i64,
    add_way: i64,
    state: Option<String>,
    status: String,
    corp_tag_ids: Json<Vec<String>>,
    remark_mobiles: Json<Vec<String>>,
    status_changed_at: i64,
    status_reason: Option<String>,
    last_synced_at: i64,
    last_source: String,
}

impl From<RelRow> for Relationship {
    fn from(r: RelRow) -> Self {
        Relationship {
            rec: RelationshipRec {
                external_userid: r.external_userid,
                userid: r.userid,
                remark: r.remark,
                description: r.description,
                add_time: r.add_time,
                add_way: r.add_way,
                state: r.state,
                status: r.status,
                corp_tag_ids: r.corp_tag_ids.0,
                remark_mobiles: r.remark_mobiles.0,
            },
            status_changed_at: Timestamp(r.status_changed_at),
            status_reason: r.status_reason,
            last_synced_at: Timestamp(r.last_synced_at),
            last_source: r.last_source,
        }
    }
}

const REL_COLS: &str = "external_userid, userid, remark, description, add_time, add_way, state, status, corp_tag_ids, remark_mobiles, status_changed_at, status_reason, last_synced_at, last_source";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CorpTagRec {
    pub id: String,
    pub group_id: String,
    pub group_name: String,
    pub name: String,
    pub sort_order: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupRec {
    pub chat_id: String,
    pub name: String,
    pub owner: String,
    pub member_count: i64,
    pub member_version: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncState {
    pub app_id: WecomAppId,
    pub entity: String,
    pub last_run_at: Option<Timestamp>,
    pub last_ok_at: Option<Timestamp>,
    pub seen: i64,
    pub drift: i64,
    pub total_drift: i64,
    pub last_error: Option<String>,
}

#[derive(FromRow)]
struct SyncRow {
    app_id: Uuid,
    entity: String,
    last_run_at: Option<i64>,
    last_ok_at: Option<i64>,
    seen: i64,
    drift: i64,
    total_drift: i64,
    last_error: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct RelationshipFilter {
    pub userid: Option<String>,
    pub external_userid: Option<String>,
    pub status: Option<String>,
}

/// `(name, avatar, kind, gender, unionid, corp_name)` of a stored contact.
type ContactCols = (String, Option<String>, i64, i64, Option<String>, Option<String>);

impl Store {
    /// Upserts a contact; `true` when anything changed.
    pub async fn upsert_wecom_contact(&self, tenant: TenantId, c: &ContactRec, source: &str) -> Result<bool> {
        let now = self.now();
        let changed = in_tx!(self, |tx| {
            let old: Option<ContactCols> = sqlx::query_as(
                "SELECT name, avatar, kind, gender, unionid, corp_name FROM wecom_contacts WHERE tenant_id = $1 AND external_userid = $2",
            )
            .bind(tenant.0)
            .bind(&c.external_userid)
            .fetch_optional(&mut *tx)
            .await?;
            let same = old.as_ref().is_some_and(|o| {
                (&o.0, &o.1, o.2, o.3, &o.4, &o.5) == (&c.name, &c.avatar, c.kind, c.gender, &c.unionid, &c.corp_name)
            });
            sqlx::query(
                "INSERT INTO wecom_contacts (tenant_id, external_userid, name, avatar, kind, gender, unionid, corp_name, last_synced_at, last_source) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (tenant_id, external_userid) DO UPDATE SET name = excluded.name, avatar = excluded.avatar, kind = excluded.kind, \
                 gender = excluded.gender, unionid = excluded.unionid, corp_name = excluded.corp_name, last_synced_at = excluded.last_synced_at, last_source = excluded.last_source",
            )
            .bind(tenant.0)
            .bind(&c.external_userid)
            .bind(&c.name)
            .bind(&c.avatar)
            .bind(c.kind)
            .bind(c.gender)
            .bind(&c.unionid)
            .bind(&c.corp_name)
            .bind(now.0)
            .bind(source)
            .execute(&mut *tx)
            .await?;
            !same
        });
        Ok(changed)
    }

    /// Upserts a relationship; `true` when anything siyu cares about changed.
    pub async fn upsert_wecom_relationship(
        &self,
        tenant: TenantId,
        r: &RelationshipRec,
        source: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        let now = self.now();
        let changed = in_tx!(self, |tx| {
            let sql = format!("SELECT {REL_COLS} FROM wecom_relationships WHERE tenant_id = $1 AND external_userid = $2 AND userid = $3");
            let old: Option<RelRow> = sqlx::query_as(&sql)
                .bind(tenant.0)
                .bind(&r.external_userid)
                .bind(&r.userid)
                .fetch_optional(&mut *tx)
                .await?;
            let old: Option<Relationship> = old.map(Into::into);
            let same = old.as_ref().is_some_and(|o| o.rec == *r);
            let status_changed = old.as_ref().is_none_or(|o| o.rec.status != r.status);
            sqlx::query(
                "INSERT INTO wecom_relationships (tenant_id, external_userid, userid, remark, description, add_time, add_way, state, status, corp_tag_ids, remark_mobiles, \
                 status_changed_at, status_reason, last_synced_at, last_source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $12, $14) \
                 ON CONFLICT (tenant_id, external_userid, userid) DO UPDATE SET remark = excluded.remark, description = excluded.description, add_time = excluded.add_time, \
                 add_way = excluded.add_way, state = excluded.state, status = excluded.status, corp_tag_ids = excluded.corp_tag_ids, remark_mobiles = excluded.remark_mobiles, \
                 status_changed_at = CASE WHEN wecom_relationships.status = excluded.status THEN wecom_relationships.status_changed_at ELSE excluded.status_changed_at END, \
                 status_reason = CASE WHEN wecom_relationships.status = excluded.status THEN wecom_relationships.status_reason ELSE excluded.status_reason END, \
                 last_synced_at = excluded.last_synced_at, last_source = excluded.last_source",
            )
            .bind(tenant.0)
            .bind(&r.external_userid)
            .bind(&r.userid)
            .bind(&r.remark)
            .bind(&r.description)
            .bind(r.add_time)
            .bind(r.add_way)
            .bind(&r.state)
            .bind(&r.status)
            .bind(Json(&r.corp_tag_ids))
            .bind(Json(&r.remark_mobiles))
            .bind(now.0)
            .bind(if status_changed { reason } else { None })
            .bind(source)
            .execute(&mut *tx)
            .await?;
            !same
        });
        Ok(changed)
    }

    /// Sets a relationship's status if it exists and differs; `true` when it changed.
    pub async fn set_wecom_relationship_status(
        &self,
        tenant: TenantId,
        external: &str,
        userid: &str,
        status: &str,
        reason: &str,
        source: &str,
    ) -> Result<bool> {
        let now = self.now();
        let n = on_write!(self, |p| {
            sqlx::query(
            "UPDATE wecom_relationships SET status = $4, status_reason = $5, status_changed_at = $6, last_synced_at = $6, last_source = $7 \
             WHERE tenant_id = $1 AND external_userid = $2 AND userid = $3 AND status <> $4"
        )
        .bind(tenant.0)
        .bind(external)
        .bind(userid)
        .bind(status)
        .bind(reason)
        .bind(now.0)
        .bind(source)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn wecom_relationships_of(&self, tenant: TenantId, userids: &[String]) -> Result<Vec<Relationship>> {
        let mut out = Vec::new();
        for u in userids {
            let sql = format!("SELECT {REL_COLS} FROM wecom_relationships WHERE tenant_id = $1 AND userid = $2");
            let rows: Vec<RelRow> =
                on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(u).fetch_all(p).await?);
            out.extend(rows.into_iter().map(Relationship::from));
        }
        Ok(out)
    }

    pub async fn list_wecom_relationships(
        &self,
        tenant: TenantId,
        f: &RelationshipFilter,
        page: &PageRequest,
    ) -> Result<Page<Relationship>> {
        // Newest first, up to the page size; relationships have natural keys, so there is no
        // id cursor yet and only the first page is served.
        let sql = format!(
            "SELECT {REL_COLS} FROM wecom_relationships WHERE tenant_id = $1 AND ($2 IS NULL OR userid = $2) AND ($3 IS NULL OR external_userid = $3) \
             AND ($4 IS NULL OR status = $4) ORDER BY add_time DESC, external_userid, userid LIMIT $5"
        );
        let rows: Vec<RelRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(&f.userid)
            .bind(&f.external_userid)
            .bind(&f.status)
            .bind(page.limit as i64)
            .fetch_all(p)
            .await?);
        Ok(Page { items: rows.into_iter().map(Into::into).collect(), next_cursor: None })
    }

    /// Replaces the corp tag list with WeCom's; returns how many tags changed.
    pub async fn sync_wecom_corp_tags(&self, tenant: TenantId, tags: &[CorpTagRec]) -> Result<i64> {
        let now = self.now();
        let drift = in_tx!(self, |tx| {
            let old: Vec<(String, String, String, String, i64, bool)> = sqlx::query_as(
                "SELECT id, group_id, group_name, name, sort_order, deleted FROM wecom_corp_tags WHERE tenant_id = $1",
            )
            .bind(tenant.0)
            .fetch_all(&mut *tx)
            .await?;
            let mut drift = 0i64;
            for t in tags {
                let same = old.iter().any(|o| {
                    o.0 == t.id
                        && o.1 == t.group_id
                        && o.2 == t.group_name
                        && o.3 == t.name
                        && o.4 == t.sort_order
                        && !o.5
                });
                if !same {
                    drift += 1;
                }
                sqlx::query(
                    "INSERT INTO wecom_corp_tags (tenant_id, id, group_id, group_name, name, sort_order, deleted, last_synced_at) VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET group_id = excluded.group_id, group_name = excluded.group_name, name = excluded.name, \
                     sort_order = excluded.sort_order, deleted = FALSE, last_synced_at = excluded.last_synced_at",
                )
                .bind(tenant.0)
                .bind(&t.id)
                .bind(&t.group_id)
                .bind(&t.group_name)
                .bind(&t.name)
                .bind(t.sort_order)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            }
            for o in old.iter().filter(|o| !o.5 && !tags.iter().any(|t| t.id == o.0)) {
                drift += 1;
                sqlx::query(
                    "UPDATE wecom_corp_tags SET deleted = TRUE, last_synced_at = $3 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(&o.0)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            }
            drift
        });
        Ok(drift)
    }

    pub async fn wecom_corp_tags(&self, tenant: TenantId) -> Result<Vec<CorpTagRec>> {
        let rows: Vec<(String, String, String, String, i64)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, group_id, group_name, name, sort_order FROM wecom_corp_tags WHERE tenant_id = $1 AND deleted = FALSE ORDER BY group_name, sort_order DESC, name"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, group_id, group_name, name, sort_order)| CorpTagRec {
                id,
                group_id,
                group_name,
                name,
                sort_order,
            })
            .collect())
    }

    /// Upserts a group; `true` when anything changed.
    pub async fn upsert_wecom_group(&self, tenant: TenantId, g: &GroupRec, source: &str) -> Result<bool> {
        let now = self.now();
        let changed = in_tx!(self, |tx| {
            let old: Option<(String, String, i64, String, bool)> =
                sqlx::query_as("SELECT name, owner, member_count, member_version, dismissed FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2")
                    .bind(tenant.0)
                    .bind(&g.chat_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let same = old.as_ref().is_some_and(|o| {
                o.0 == g.name && o.1 == g.owner && o.2 == g.member_count && o.3 == g.member_version && !o.4
            });
            sqlx::query(
                "INSERT INTO wecom_groups (tenant_id, chat_id, name, owner, member_count, member_version, dismissed, created_at, last_synced_at, last_source) \
                 VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $9) ON CONFLICT (tenant_id, chat_id) DO UPDATE SET name = excluded.name, owner = excluded.owner, \
                 member_count = excluded.member_count, member_version = excluded.member_version, dismissed = FALSE, last_synced_at = excluded.last_synced_at, last_source = excluded.last_source",
            )
            .bind(tenant.0)
            .bind(&g.chat_id)
            .bind(&g.name)
            .bind(&g.owner)
            .bind(g.member_count)
            .bind(&g.member_version)
            .bind(g.created_at)
            .bind(now.0)
            .bind(source)
            .execute(&mut *tx)
            .await?;
            !same
        });
        Ok(changed)
    }

    pub async fn dismiss_wecom_group(&self, tenant: TenantId, chat_id: &str) -> Result<bool> {
        let now = self.now();
        let n = on_write!(self, |p| {
            sqlx::query("UPDATE wecom_groups SET dismissed = TRUE, last_synced_at = $3 WHERE tenant_id = $1 AND chat_id = $2 AND dismissed = FALSE")
            .bind(tenant.0)
            .bind(chat_id)
            .bind(now.0)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn wecom_group(&self, tenant: TenantId, chat_id: &str) -> Result<Option<GroupRec>> {
        let r: Option<(String, String, String, i64, String, i64)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT chat_id, name, owner, member_count, member_version, created_at FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2"
        )
        .bind(tenant.0)
        .bind(chat_id)
        .fetch_optional(p)
        .await?
        });
        Ok(r.map(|(chat_id, name, owner, member_count, member_version, created_at)| GroupRec {
            chat_id,
            name,
            owner,
            member_count,
            member_version,
            created_at,
        }))
    }

    /// Records one reconciliation pass over one kind of entity.
    pub async fn record_wecom_sync(
        &self,
        tenant: TenantId,
        app: WecomAppId,
        entity: &str,
        seen: i64,
        drift: i64,
        error: Option<&str>,
    ) -> Result<()> {
        let now = self.now();
        let ok_at = if error.is_none() { Some(now.0) } else { None };
        on_write!(self, |p| {
            sqlx::query(
            "INSERT INTO wecom_sync_state (tenant_id, app_id, entity, last_run_at, last_ok_at, seen, drift, total_drift, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) \
             ON CONFLICT (tenant_id, app_id, entity) DO UPDATE SET last_run_at = excluded.last_run_at, \
             last_ok_at = COALESCE(excluded.last_ok_at, wecom_sync_state.last_ok_at), seen = excluded.seen, drift = excluded.drift, \
             total_drift = wecom_sync_state.total_drift + excluded.drift, last_error = excluded.last_error"
        )
        .bind(tenant.0)
        .bind(app.0)
        .bind(entity)
        .bind(now.0)
        .bind(ok_at)
        .bind(seen)
        .bind(drift)
        .bind(error)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn wecom_sync_states(&self, tenant: TenantId) -> Result<Vec<SyncState>> {
        let rows: Vec<SyncRow> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT app_id, entity, last_run_at, last_ok_at, seen, drift, total_drift, last_error FROM wecom_sync_state WHERE tenant_id = $1 ORDER BY app_id, entity"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| SyncState {
                app_id: WecomAppId(r.app_id),
                entity: r.entity,
                last_run_at: r.last_run_at.map(Timestamp),
                last_ok_at: r.last_ok_at.map(Timestamp),
                seen: r.seen,
                drift: r.drift,
                total_drift: r.total_drift,
                last_error: r.last_error,
            })
            .collect())
    }

    /// The staff member with this WeCom userid, if any.
    pub async fn staff_by_wecom_userid(&self, tenant: TenantId, userid: &str) -> Result<Option<siyu_core::org::Staff>> {
        let id: Option<Uuid> =
            on_read!(self, |p| sqlx::query_scalar("SELECT id FROM staff WHERE tenant_id = $1 AND wecom_userid = $2")
                .bind(tenant.0)
                .bind(userid)
                .fetch_optional(p)
                .await?);
        match id {
            Some(id) => Ok(Some(self.staff(tenant, siyu_core::auth::DataScope::Tenant, siyu_core::StaffId(id)).await?)),
            None => Ok(None),
        }
    }
}

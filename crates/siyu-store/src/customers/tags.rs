//! Tag groups, tags and tag membership.
//!
//! Internal tags belong to siyu and are written here. Corp tags mirror WeCom's (kind `corp`,
//! `wecom_tag_id` set); their membership is projected from relationships and they are never
//! applied directly here, because WeCom is their truth (scrm-rules R-1, C-20).

use serde::Serialize;
use sqlx::FromRow;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::customers::campaign::Campaign;
use siyu_core::customers::segment::Expr;
use siyu_core::{CustomerId, TagGroupId, TagId, TenantId, Timestamp};

use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

/// What a rule-tag refresh did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleRefresh {
    pub tags: u64,
    pub added: u64,
    pub removed: u64,
    /// Rules that could not be evaluated (a deleted segment, a reference to a rule tag).
    pub skipped: Vec<TagId>,
}

async fn touch_rule(store: &Store, tenant: TenantId, tag: TagId) -> Result<()> {
    let now = store.now();
    crate::on_write!(store, |p| sqlx::query("UPDATE tags SET rule_refreshed_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.0)
        .bind(tag.0)
        .bind(now.0)
        .execute(p)
        .await?
        .rows_affected());
    Ok(())
}

#[derive(Clone, Debug, Serialize)]
pub struct TagGroup {
    pub id: TagGroupId,
    pub name: String,
    /// `internal` or `corp`.
    pub kind: String,
    pub wecom_group_id: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tag {
    pub id: TagId,
    pub group_id: TagGroupId,
    pub name: String,
    pub kind: String,
    pub wecom_tag_id: Option<String>,
    /// Live customers holding the tag.
    pub customers: i64,
    pub created_at: Timestamp,
    /// A campaign tag's campaign.
    pub campaign: Option<Campaign>,
}

#[derive(FromRow)]
struct TagRow {
    id: Uuid,
    group_id: Uuid,
    name: String,
    kind: String,
    wecom_tag_id: Option<String>,
    customers: i64,
    created_at: i64,
    campaign_first_day: Option<i64>,
    campaign_last_day: Option<i64>,
    campaign_keep_days: Option<i64>,
}

impl From<TagRow> for Tag {
    fn from(r: TagRow) -> Self {
        Tag {
            id: TagId(r.id),
            group_id: TagGroupId(r.group_id),
            name: r.name,
            kind: r.kind,
            wecom_tag_id: r.wecom_tag_id,
            customers: r.customers,
            created_at: Timestamp(r.created_at),
            campaign: campaign_of(r.campaign_first_day, r.campaign_last_day, r.campaign_keep_days),
        }
    }
}

/// A tag's campaign columns as a campaign (a tag without days has none).
fn campaign_of(first_day: Option<i64>, last_day: Option<i64>, keep_days: Option<i64>) -> Option<Campaign> {
    Some(Campaign { first_day: first_day?, last_day: last_day?, keep_days })
}

const TAG_SELECT: &str = "SELECT t.id, t.group_id, t.name, t.kind, t.wecom_tag_id, \
     (SELECT COUNT(*) FROM customer_tags ct WHERE ct.tenant_id = t.tenant_id AND ct.tag_id = t.id) AS customers, \
     t.created_at, t.campaign_first_day, t.campaign_last_day, t.campaign_keep_days FROM tags t";

macro_rules! set_campaign {
    ($tx:expr, $tenant:expr, $tag:expr, $c:expr) => {
        sqlx::query(
            "UPDATE tags SET campaign_first_day = $3, campaign_last_day = $4, campaign_keep_days = $5 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind($tenant.0)
        .bind($tag.0)
        .bind($c.first_day)
        .bind($c.last_day)
        .bind($c.keep_days)
        .execute(&mut *$tx)
        .await?
    };
}

/// How many customers one statement tags or untags; keeps statements and locks short.
const BULK_CHUNK: usize = 5_000;

impl Store {
    pub async fn tag_groups(&self, tenant: TenantId) -> Result<Vec<TagGroup>> {
        let groups: Vec<(Uuid, String, String, Option<String>)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, name, kind, wecom_group_id FROM tag_groups WHERE tenant_id = $1 ORDER BY kind DESC, sort_order, name"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?
        });
        let sql = format!("{TAG_SELECT} WHERE t.tenant_id = $1 ORDER BY t.sort_order, t.name");
        let tags: Vec<TagRow> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).fetch_all(p).await?);
        let mut out: Vec<TagGroup> = groups
            .into_iter()
            .map(|(id, name, kind, wecom_group_id)| TagGroup {
                id: TagGroupId(id),
                name,
                kind,
                wecom_group_id,
                tags: vec![],
            })
            .collect();
        for t in tags {
            if let Some(g) = out.iter_mut().find(|g| g.id.0 == t.group_id) {
                g.tags.push(t.into());
            }
        }
        Ok(out)
    }

    pub async fn tag(&self, tenant: TenantId, id: TagId) -> Result<Tag> {
        let sql = format!("{TAG_SELECT} WHERE t.tenant_id = $1 AND t.id = $2");
        let r: Option<TagRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(Into::into).ok_or(StoreError::NotFound)
    }

    /// A tag's name and kind, without counting its holders: for existence checks on hot paths
    /// (segment expressions, tagging), where [`Store::tag`]'s count would scan the memberships.
    pub async fn tag_name_kind(&self, tenant: TenantId, id: TagId) -> Result<(String, String)> {
        let r: Option<(String, String)> =
            on_read!(self, |p| sqlx::query_as("SELECT name, kind FROM tags WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .fetch_optional(p)
                .await?);
        r.ok_or(StoreError::NotFound)
    }

    /// Creates a rule tag (C-25) in an internal group: its holders will be the customers
    /// matching `rule` (see [`Store::refresh_rule_tags`]).
    pub async fn create_rule_tag(&self, actor: &Actor, group: TagGroupId, name: &str, rule: &Expr) -> Result<Tag> {
        let t = self.create_tag(actor, group, name).await?;
        let json = serde_json::to_string(rule).map_err(|e| StoreError::Conflict(e.to_string()))?;
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tags SET kind = 'rule', rule_expr = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(actor.tenant_id.0)
                .bind(t.id.0)
                .bind(&json)
                .execute(&mut *tx)
                .await?;
            audit!(tx, self, actor, "tag.rule", "tag", t.id, None, Some(serde_json::json!({"rule": rule})));
        });
        self.tag(actor.tenant_id, t.id).await
    }

    /// Creates a campaign tag in an internal group: applied only while `campaign` runs.
    pub async fn create_campaign_tag(
        &self,
        actor: &Actor,
        group: TagGroupId,
        name: &str,
        campaign: &Campaign,
    ) -> Result<Tag> {
        let t = self.create_tag(actor, group, name).await?;
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tags SET kind = 'campaign' WHERE tenant_id = $1 AND id = $2")
                .bind(actor.tenant_id.0)
                .bind(t.id.0)
                .execute(&mut *tx)
                .await?;
            set_campaign!(tx, actor.tenant_id, t.id, campaign);
            audit!(tx, self, actor, "tag.campaign", "tag", t.id, None, snapshot(campaign));
        });
        self.tag(actor.tenant_id, t.id).await
    }

    /// Changes a campaign tag's days or keep period. Holders stay; a shortened keep period
    /// lets them go on the next expiry run.
    pub async fn set_tag_campaign(&self, actor: &Actor, tag: TagId, campaign: &Campaign) -> Result<()> {
        let before = self.tag(actor.tenant_id, tag).await?;
        if before.kind != "campaign" {
            return Err(StoreError::Conflict("only a campaign tag has a campaign".into()));
        }
        in_tx!(self, |tx| {
            set_campaign!(tx, actor.tenant_id, tag, campaign);
            audit!(tx, self, actor, "tag.campaign", "tag", tag, snapshot(&before.campaign), snapshot(campaign));
        });
        Ok(())
    }

    /// A campaign tag's campaign, without counting its holders (tagging one customer must not
    /// scan every membership of a large campaign).
    async fn tag_campaign(&self, tenant: TenantId, tag: TagId) -> Result<Option<Campaign>> {
        let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT campaign_first_day, campaign_last_day, campaign_keep_days FROM tags WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(tag.0)
        .fetch_optional(p)
        .await?
        });
        let (first, last, keep) = row.ok_or(StoreError::NotFound)?;
        Ok(campaign_of(first, last, keep))
    }

    /// Lets go of every holder of campaign tags whose keep period is over on local day
    /// `today`. Returns how many memberships ended.
    pub async fn expire_campaign_tags(&self, tenant: TenantId, today: i64) -> Result<u64> {
        let due: Vec<Uuid> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT t.id FROM tags t WHERE t.tenant_id = $1 AND t.kind = 'campaign' \
             AND t.campaign_keep_days IS NOT NULL AND t.campaign_last_day + 1 + t.campaign_keep_days <= $2 \
             AND EXISTS (SELECT 1 FROM customer_tags ct WHERE ct.tenant_id = t.tenant_id AND ct.tag_id = t.id)"
        )
        .bind(tenant.0)
        .bind(today)
        .fetch_all(p)
        .await?);
        let actor = Actor::system(tenant);
        let mut ended = 0;
        for tag in due {
            let holders: Vec<Uuid> = on_read!(self, |p| sqlx::query_scalar(
                "SELECT customer_id FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2"
            )
            .bind(tenant.0)
            .bind(tag)
            .fetch_all(p)
            .await?);
            let holders: Vec<CustomerId> = holders.into_iter().map(CustomerId).collect();
            ended += self.apply_tag(&actor, TagId(tag), &holders, false, "campaign").await?;
        }
        Ok(ended)
    }

    /// Replaces a rule tag's rule.
    pub async fn set_tag_rule(&self, actor: &Actor, tag: TagId, rule: &Expr) -> Result<()> {
        let json = serde_json::to_string(rule).map_err(|e| StoreError::Conflict(e.to_string()))?;
        in_tx!(self, |tx| {
            let n = sqlx::query("UPDATE tags SET rule_expr = $3 WHERE tenant_id = $1 AND id = $2 AND kind = 'rule'")
                .bind(actor.tenant_id.0)
                .bind(tag.0)
                .bind(&json)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict("only a rule tag has a rule".into()));
            }
            audit!(tx, self, actor, "tag.rule", "tag", tag, None, Some(serde_json::json!({"rule": rule})));
        });
        Ok(())
    }

    /// Every rule tag of a tenant with its rule.
    pub async fn rule_tags(&self, tenant: TenantId) -> Result<Vec<(TagId, Expr)>> {
        let rows: Vec<(Uuid, String)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, rule_expr FROM tags WHERE tenant_id = $1 AND kind = 'rule' AND rule_expr IS NOT NULL ORDER BY id"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?
        });
        Ok(rows.into_iter().filter_map(|(id, e)| Some((TagId(id), serde_json::from_str(&e).ok()?))).collect())
    }

    /// Makes a rule tag's holders exactly the customers numbered `want` (live customers).
    /// Works on customer numbers, so an unchanged rule costs two scans and a set difference;
    /// only the customers that change are looked up. Returns (added, removed).
    pub async fn sync_rule_tag(&self, actor: &Actor, tag: TagId, want: &[u32]) -> Result<(u64, u64)> {
        let tenant = actor.tenant_id;
        let have: Vec<i64> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT customer_num FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2"
        )
        .bind(tenant.0)
        .bind(tag.0)
        .fetch_all(p)
        .await?);
        let have: roaring::RoaringBitmap = have.into_iter().map(|n| n as u32).collect();
        let want: roaring::RoaringBitmap = want.iter().copied().collect();
        let add: Vec<u32> = (&want - &have).iter().collect();
        let remove: Vec<u32> = (&have - &want).iter().collect();
        let mut added = 0;
        if !add.is_empty() {
            let ids = self.customer_ids_for_nums(tenant, &add).await?;
            added = self.apply_tag(actor, tag, &ids, true, "rule").await?;
        }
        let mut removed = 0;
        if !remove.is_empty() {
            let ids = self.customer_ids_for_nums(tenant, &remove).await?;
            removed = self.apply_tag(actor, tag, &ids, false, "rule").await?;
        }
        touch_rule(self, tenant, tag).await?;
        Ok((added, removed))
    }

    /// Re-evaluates every rule tag of a tenant as of local day `today` (segment references
    /// resolved against the saved segments; a rule that has become invalid — a deleted
    /// segment, a reference to another rule tag — is skipped and reported).
    pub async fn refresh_rule_tags(&self, tenant: TenantId, today: i64) -> Result<RuleRefresh> {
        let actor = Actor::system(tenant);
        let defs: std::collections::BTreeMap<_, _> =
            self.segments(tenant).await?.into_iter().map(|x| (x.id, x.expr)).collect();
        let rules = self.rule_tags(tenant).await?;
        let rule_ids: Vec<TagId> = rules.iter().map(|r| r.0).collect();
        let mut out = RuleRefresh::default();
        for (tag, rule) in rules {
            let Ok(e) = siyu_core::customers::segment::resolve(&rule, &|id| defs.get(&id).cloned()) else {
                out.skipped.push(tag);
                continue;
            };
            let mut used = Vec::new();
            siyu_core::customers::segment::tags(&e, &mut used);
            if used.iter().any(|t| rule_ids.contains(t)) {
                out.skipped.push(tag);
                continue;
            }
            let nums = self.segment_nums_sql(tenant, siyu_core::auth::DataScope::Tenant, &e, today).await?;
            let (a, r) = self.sync_rule_tag(&actor, tag, &nums).await?;
            out.tags += 1;
            out.added += a;
            out.removed += r;
        }
        Ok(out)
    }

    /// A tag's WeCom id when it mirrors a corp tag (`None` for internal tags).
    pub async fn wecom_tag_id(&self, tenant: TenantId, id: TagId) -> Result<Option<String>> {
        let r: Option<Option<String>> =
            on_read!(self, |p| sqlx::query_scalar("SELECT wecom_tag_id FROM tags WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .fetch_optional(p)
                .await?);
        r.ok_or(StoreError::NotFound)
    }

    /// A tag group's WeCom id when it mirrors a corp tag group.
    pub async fn wecom_group_id(&self, tenant: TenantId, id: TagGroupId) -> Result<Option<String>> {
        let r: Option<Option<String>> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT wecom_group_id FROM tag_groups WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(p)
        .await?);
        r.ok_or(StoreError::NotFound)
    }

    /// The siyu tag mirroring a WeCom corp tag.
    pub async fn tag_by_wecom_id(&self, tenant: TenantId, wecom_id: &str) -> Result<Option<TagId>> {
        let r: Option<Uuid> =
            on_read!(self, |p| sqlx::query_scalar("SELECT id FROM tags WHERE tenant_id = $1 AND wecom_tag_id = $2")
                .bind(tenant.0)
                .bind(wecom_id)
                .fetch_optional(p)
                .await?);
        Ok(r.map(TagId))
    }

    /// Members with a live relationship to a WeCom external contact.
    pub async fn live_userids_of(&self, tenant: TenantId, external: &str) -> Result<Vec<String>> {
        Ok(on_read!(self, |p| sqlx::query_scalar(
            "SELECT userid FROM wecom_relationships WHERE tenant_id = $1 AND external_userid = $2 \
             AND status IN ('active', 'half') ORDER BY add_time, userid"
        )
        .bind(tenant.0)
        .bind(external)
        .fetch_all(p)
        .await?))
    }

    /// Corp tags WeCom holds for the tenant, as last synced (WeCom allows 3,000).
    pub async fn corp_tag_count(&self, tenant: TenantId) -> Result<i64> {
        Ok(on_read!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM wecom_corp_tags WHERE tenant_id = $1 AND deleted = FALSE"
        )
        .bind(tenant.0)
        .fetch_one(p)
        .await?))
    }

    /// Audits a change made in WeCom on an operator's behalf (the change itself reaches siyu's
    /// copy by re-reading WeCom).
    pub async fn audit_wecom_write(
        &self,
        actor: &Actor,
        action: &str,
        id: &str,
        after: serde_json::Value,
    ) -> Result<()> {
        in_tx!(self, |tx| {
            audit!(tx, self, actor, action, "wecom_corp_tag", id, None, Some(after));
        });
        Ok(())
    }

    pub async fn create_tag_group(&self, actor: &Actor, name: &str) -> Result<TagGroup> {
        let now = self.now();
        let g = TagGroup {
            id: TagGroupId::new(),
            name: name.to_string(),
            kind: "internal".into(),
            wecom_group_id: None,
            tags: vec![],
        };
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO tag_groups (tenant_id, id, name, kind, sort_order, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'internal', 0, $4, $4)",
            )
            .bind(actor.tenant_id.0)
            .bind(g.id.0)
            .bind(name)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "name"))?;
            audit!(tx, self, actor, "tag_group.create", "tag_group", g.id, None, snapshot(&g));
        });
        Ok(g)
    }

    pub async fn create_tag(&self, actor: &Actor, group: TagGroupId, name: &str) -> Result<Tag> {
        let now = self.now();
        let kind: Option<String> =
            on_read!(self, |p| sqlx::query_scalar("SELECT kind FROM tag_groups WHERE tenant_id = $1 AND id = $2")
                .bind(actor.tenant_id.0)
                .bind(group.0)
                .fetch_optional(p)
                .await?);
        match kind.as_deref() {
            None => return Err(StoreError::BadReference("group_id")),
            Some("corp") => return Err(StoreError::Conflict("corp tags are created in WeCom".into())),
            Some(_) => {}
        }
        let t = Tag {
            id: TagId::new(),
            group_id: group,
            name: name.to_string(),
            kind: "internal".into(),
            wecom_tag_id: None,
            customers: 0,
            created_at: now,
            campaign: None,
        };
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO tags (tenant_id, id, group_id, name, kind, sort_order, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'internal', 0, $5, $5)",
            )
            .bind(actor.tenant_id.0)
            .bind(t.id.0)
            .bind(group.0)
            .bind(name)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "name"))?;
            audit!(tx, self, actor, "tag.create", "tag", t.id, None, snapshot(&t));
        });
        Ok(t)
    }

    pub async fn rename_tag(&self, actor: &Actor, id: TagId, name: &str) -> Result<Tag> {
        let before = self.tag(actor.tenant_id, id).await?;
        if before.kind == "corp" {
            return Err(StoreError::Conflict("corp tags are renamed in WeCom".into()));
        }
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tags SET name = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(actor.tenant_id.0)
                .bind(id.0)
                .bind(name)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::constraint(e, "name"))?;
            audit!(
                tx,
                self,
                actor,
                "tag.rename",
                "tag",
                id,
                Some(serde_json::json!({"name": before.name})),
                Some(serde_json::json!({"name": name}))
            );
        });
        self.tag(actor.tenant_id, id).await
    }

    /// Deletes an internal tag and its memberships; the customers who held it change.
    pub async fn delete_tag(&self, actor: &Actor, id: TagId) -> Result<()> {
        let tenant = actor.tenant_id;
        let before = self.tag(tenant, id).await?;
        if before.kind == "corp" {
            return Err(StoreError::Conflict("corp tags are deleted in WeCom".into()));
        }
        let now = self.now();
        in_tx!(self, |tx| {
            let (_, seq) = bump!(tx, tenant, 0);
            sqlx::query(
                "UPDATE customers SET change_seq = $3, updated_at = $4 WHERE tenant_id = $1 AND id IN \
                 (SELECT customer_id FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(seq)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM tags WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            audit!(tx, self, actor, "tag.delete", "tag", id, snapshot(&before), None);
        });
        Ok(())
    }

    /// Tags of one customer.
    pub async fn customer_tags(&self, tenant: TenantId, id: CustomerId) -> Result<Vec<Tag>> {
        let sql = format!(
            "{TAG_SELECT} WHERE t.tenant_id = $1 AND t.id IN \
             (SELECT tag_id FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2) ORDER BY t.name"
        );
        let rows: Vec<TagRow> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_all(p).await?);
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Adds or removes an internal tag for the given customers (ids already checked against
    /// the actor's scope by the caller, or numbers taken from the actor's own segment view).
    /// Returns how many memberships changed. Repeats change nothing.
    pub async fn apply_tag(
        &self,
        actor: &Actor,
        tag: TagId,
        who: &[CustomerId],
        add: bool,
        source: &str,
    ) -> Result<u64> {
        let tenant = actor.tenant_id;
        let (tag_name, kind) = self.tag_name_kind(tenant, tag).await?;
        if kind == "corp" {
            return Err(StoreError::Conflict("corp tags are applied through WeCom".into()));
        }
        // A rule tag's holders are whoever its rule matches; only the rule writes them.
        if kind == "rule" && source != "rule" {
            return Err(StoreError::Conflict("rule tags follow their rule and are not set by hand".into()));
        }
        // A campaign tag marks taking part, so it is given only while the campaign runs.
        if kind == "campaign" && add {
            if let Some(c) = self.tag_campaign(tenant, tag).await? {
                let zone = self.tenant(tenant).await?.timezone;
                let today = self.now().local_day(siyu_core::time::zone_offset_hours(&zone).unwrap_or(8));
                c.accepts(today).map_err(StoreError::Conflict)?;
            }
        }
        let now = self.now();
        let mut changed = 0;
        for chunk in who.chunks(BULK_CHUNK) {
            // Ids are UUIDs rendered by us, so inlining them is safe and keeps one statement per
            // chunk on both backends; they are filtered by tenant and liveness in SQL.
            let list = chunk.iter().map(|c| format!("'{}'", c.0)).collect::<Vec<_>>().join(",");
            let ids_sql = match self.backend() {
                crate::Backend::Postgres => format!("({list})"),
                // SQLite stores UUIDs as 16-byte blobs.
                crate::Backend::Sqlite => {
                    let blobs = chunk.iter().map(|c| format!("X'{}'", c.0.simple())).collect::<Vec<_>>().join(",");
                    format!("({blobs})")
                }
            };
            let n = in_tx!(self, |tx| {
                let (_, seq) = bump!(tx, tenant, 0);
                let n = if add {
                    sqlx::query(&format!(
                        "INSERT INTO customer_tags (tenant_id, tag_id, customer_id, customer_num, source, created_at) \
                         SELECT c.tenant_id, $2, c.id, c.num, $3, $4 FROM customers c WHERE c.tenant_id = $1 \
                         AND c.status = 'active' AND c.id IN {ids_sql} ON CONFLICT DO NOTHING"
                    ))
                    .bind(tenant.0)
                    .bind(tag.0)
                    .bind(source)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                } else {
                    sqlx::query(&format!(
                        "DELETE FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2 AND customer_id IN {ids_sql}"
                    ))
                    .bind(tenant.0)
                    .bind(tag.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                };
                sqlx::query(&format!(
                    "UPDATE customers SET change_seq = $2, updated_at = $3 WHERE tenant_id = $1 AND id IN {ids_sql}"
                ))
                .bind(tenant.0)
                .bind(seq)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
                if chunk.len() == 1 && n > 0 {
                    let summary = format!("{} tag {}", if add { "added" } else { "removed" }, tag_name);
                    timeline!(tx, tenant, chunk[0], now, "tag", source, actor, &summary);
                }
                audit!(
                    tx,
                    self,
                    actor,
                    if add { "tag.apply" } else { "tag.remove" },
                    "tag",
                    tag,
                    None,
                    Some(serde_json::json!({"customers": chunk.len(), "changed": n, "source": source}))
                );
                n
            });
            changed += n;
        }
        Ok(changed)
    }
}

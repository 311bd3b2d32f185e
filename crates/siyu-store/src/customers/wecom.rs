//! WeCom → customers: each external contact belongs to one person (OneID), and the person's
//! owner, channels, corp tags and lifecycle are projected from the contact's relationships.
//!
//! WeCom is the truth for relationships and corp tags (rule R-1), so the projection is
//! recomputed from siyu's synced copy (`wecom_contacts`, `wecom_relationships`,
//! `wecom_corp_tags`) every time the gateway has re-read something, never patched.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::customers::profile::{Gender, INITIAL_STAGE};
use siyu_core::{CustomerId, TenantId};

use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store};

/// What a projection changed, for alerts and the timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projected {
    pub customer: Option<CustomerId>,
    pub created: bool,
}

impl Store {
    /// Mirrors WeCom's corp tags into siyu's tags (kind `corp`): groups and tags are created or
    /// renamed to match, and tags WeCom no longer has are removed with their memberships.
    pub async fn mirror_corp_tags(&self, tenant: TenantId) -> Result<u64> {
        let live: Vec<(String, String, String, String, i64)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, group_id, group_name, name, sort_order FROM wecom_corp_tags WHERE tenant_id = $1 AND deleted = FALSE"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?
        });
        let now = self.now();
        let actor = Actor::system(tenant);
        let changed = in_tx!(self, |tx| {
            let mut changed = 0u64;
            let mut group_ids: BTreeMap<String, Uuid> = BTreeMap::new();
            for (_, gid, gname, _, _) in &live {
                if group_ids.contains_key(gid) {
                    continue;
                }
                let found: Option<Uuid> =
                    sqlx::query_scalar("SELECT id FROM tag_groups WHERE tenant_id = $1 AND wecom_group_id = $2")
                        .bind(tenant.0)
                        .bind(gid)
                        .fetch_optional(&mut *tx)
                        .await?;
                let id = match found {
                    Some(id) => {
                        changed += sqlx::query(
                            "UPDATE tag_groups SET name = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND name <> $3",
                        )
                        .bind(tenant.0)
                        .bind(id)
                        .bind(gname)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        id
                    }
                    None => {
                        let id = Uuid::now_v7();
                        sqlx::query(
                            "INSERT INTO tag_groups (tenant_id, id, name, kind, wecom_group_id, sort_order, created_at, updated_at) \
                             VALUES ($1, $2, $3, 'corp', $4, 0, $5, $5)",
                        )
                        .bind(tenant.0)
                        .bind(id)
                        .bind(gname)
                        .bind(gid)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await?;
                        changed += 1;
                        id
                    }
                };
                group_ids.insert(gid.clone(), id);
            }
            for (tid, gid, _, name, order) in &live {
                let group = group_ids[gid];
                let n = sqlx::query(
                    "UPDATE tags SET name = $3, group_id = $4, sort_order = $5, updated_at = $6 \
                     WHERE tenant_id = $1 AND wecom_tag_id = $2 AND (name <> $3 OR group_id <> $4 OR sort_order <> $5)",
                )
                .bind(tenant.0)
                .bind(tid)
                .bind(name)
                .bind(group)
                .bind(order)
                .bind(now.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                changed += n;
                let exists: Option<Uuid> =
                    sqlx::query_scalar("SELECT id FROM tags WHERE tenant_id = $1 AND wecom_tag_id = $2")
                        .bind(tenant.0)
                        .bind(tid)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_none() {
                    sqlx::query(
                        "INSERT INTO tags (tenant_id, id, group_id, name, kind, wecom_tag_id, sort_order, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, 'corp', $5, $6, $7, $7)",
                    )
                    .bind(tenant.0)
                    .bind(Uuid::now_v7())
                    .bind(group)
                    .bind(name)
                    .bind(tid)
                    .bind(order)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                    changed += 1;
                }
            }
            // Corp tags WeCom no longer has: their holders change, then the tags go.
            let live_ids: BTreeSet<&String> = live.iter().map(|t| &t.0).collect();
            let ours: Vec<(Uuid, String)> = sqlx::query_as(
                "SELECT id, wecom_tag_id FROM tags WHERE tenant_id = $1 AND kind = 'corp' AND wecom_tag_id IS NOT NULL",
            )
            .bind(tenant.0)
            .fetch_all(&mut *tx)
            .await?;
            let gone: Vec<Uuid> = ours.into_iter().filter(|(_, w)| !live_ids.contains(w)).map(|(id, _)| id).collect();
            if !gone.is_empty() {
                let (_, seq) = bump!(tx, tenant, 0);
                for id in &gone {
                    sqlx::query(
                        "UPDATE customers SET change_seq = $3 WHERE tenant_id = $1 AND id IN \
                         (SELECT customer_id FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2)",
                    )
                    .bind(tenant.0)
                    .bind(id)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2")
                        .bind(tenant.0)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM tags WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.0)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    changed += 1;
                }
                // Groups left empty by WeCom go too.
                sqlx::query(
                    "DELETE FROM tag_groups WHERE tenant_id = $1 AND kind = 'corp' AND NOT EXISTS \
                     (SELECT 1 FROM tags t WHERE t.tenant_id = tag_groups.tenant_id AND t.group_id = tag_groups.id)",
                )
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
            }
            if changed > 0 {
                audit!(
                    tx,
                    self,
                    actor,
                    "tag.mirror",
                    "tenant",
                    tenant,
                    None,
                    Some(serde_json::json!({"corp_tags": live.len(), "changed": changed}))
                );
            }
            changed
        });
        Ok(changed)
    }

    /// Finds or creates the person behind a WeCom external contact and re-projects their
    /// owner, channels, corp tags and lifecycle from the synced relationships. A contact whose
    /// unionid already belongs to a person joins that person (strong evidence, scrm-rules
    /// C-12). `None` when siyu has not synced the contact.
    pub async fn project_wecom_contact(&self, tenant: TenantId, external_userid: &str) -> Result<Projected> {
        type ContactRow = (String, i64, Option<String>);
        let contact: Option<ContactRow> = on_read!(self, |p| sqlx::query_as(
            "SELECT name, gender, unionid FROM wecom_contacts WHERE tenant_id = $1 AND external_userid = $2"
        )
        .bind(tenant.0)
        .bind(external_userid)
        .fetch_optional(p)
        .await?);
        let Some((name, gender, unionid)) = contact else { return Ok(Projected::default()) };
        type RelRow = (String, String, Option<String>, Json<Vec<String>>, i64);
        let rels: Vec<RelRow> = on_read!(self, |p| sqlx::query_as(
            "SELECT userid, status, state, corp_tag_ids, add_time FROM wecom_relationships \
             WHERE tenant_id = $1 AND external_userid = $2 ORDER BY add_time, userid"
        )
        .bind(tenant.0)
        .bind(external_userid)
        .fetch_all(p)
        .await?);
        let live: Vec<&RelRow> = rels.iter().filter(|r| matches!(r.1.as_str(), "active" | "half")).collect();
        // The owner is the receiver of a completed transfer while that relationship lives
        // (C-52), else the earliest live relationship (C-2) whose member siyu knows as staff.
        let pref: Option<String> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT c.owner_userid_pref FROM customer_identities i JOIN customers c ON c.tenant_id = i.tenant_id \
             AND c.id = i.customer_id WHERE i.tenant_id = $1 AND i.kind = 'external_userid' AND i.namespace = '' AND i.value = $2"
        )
        .bind(tenant.0)
        .bind(external_userid)
        .fetch_optional(p)
        .await?)
        .flatten();
        let mut owner: Option<Uuid> = None;
        let preferred = live.iter().filter(|r| Some(&r.0) == pref.as_ref());
        for r in preferred.chain(live.iter()) {
            if let Some(s) = self.staff_by_wecom_userid(tenant, &r.0).await? {
                owner = Some(s.id.0);
                break;
            }
        }
        let channels: BTreeSet<String> = rels.iter().filter_map(|r| r.2.clone()).filter(|s| !s.is_empty()).collect();
        let wecom_tags: BTreeSet<String> = live.iter().flat_map(|r| r.3 .0.iter().cloned()).collect();
        let now = self.now();
        let actor = Actor::system(tenant);
        let out = in_tx!(self, |tx| {
            let by_ext: Option<Uuid> = sqlx::query_scalar(
                "SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = 'external_userid' AND namespace = '' AND value = $2",
            )
            .bind(tenant.0)
            .bind(external_userid)
            .fetch_optional(&mut *tx)
            .await?;
            let by_union: Option<Uuid> = match &unionid {
                Some(u) if !u.is_empty() => {
                    sqlx::query_scalar(
                        "SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = 'unionid' AND namespace = '' AND value = $2",
                    )
                    .bind(tenant.0)
                    .bind(u)
                    .fetch_optional(&mut *tx)
                    .await?
                }
                _ => None,
            };
            let found = by_ext.or(by_union);
            // One counter bump: a number for a new person, and this change's sequence.
            let (num, seq) = bump!(tx, tenant, if found.is_some() { 0 } else { 1 });
            let (id, created) = match found {
                Some(id) => (CustomerId(id), false),
                None => {
                    let id = CustomerId::new();
                    sqlx::query(
                        "INSERT INTO customers (tenant_id, id, num, name, gender, lifecycle, owner_staff_id, source, \
                         created_at, updated_at, change_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, 'wecom', $8, $8, $9)",
                    )
                    .bind(tenant.0)
                    .bind(id.0)
                    .bind(num)
                    .bind(&name)
                    .bind(Gender::from_code(gender).code())
                    .bind(INITIAL_STAGE)
                    .bind(owner)
                    .bind(now.0)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                    timeline!(tx, tenant, id, now, "created", "wecom", actor, "added on WeCom");
                    audit!(
                        tx,
                        self,
                        actor,
                        "customer.create",
                        "customer",
                        id,
                        None,
                        snapshot(&serde_json::json!({"num": num, "source": "wecom"}))
                    );
                    (id, true)
                }
            };
            let num: i64 = sqlx::query_scalar("SELECT num FROM customers WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await?;
            let mut links = vec![("external_userid", external_userid.to_string())];
            if let Some(u) = unionid.as_ref().filter(|u| !u.is_empty()) {
                links.push(("unionid", u.clone()));
            }
            for (kind, value) in links {
                // A strong identifier already held by another person is never moved (C-14).
                sqlx::query(
                    "INSERT INTO customer_identities (tenant_id, kind, namespace, value, customer_id, source, strength, observed_at, actor) \
                     VALUES ($1, $2, '', $3, $4, 'wecom_api', 'strong', $5, 'siyu') ON CONFLICT DO NOTHING",
                )
                .bind(tenant.0)
                .bind(kind)
                .bind(&value)
                .bind(id.0)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            }
            // Lifecycle from relationships (C-31): all gone → 流失; back again → 跟进中.
            let (stage, locked): (String, Option<i64>) = sqlx::query_as(
                "SELECT lifecycle, lifecycle_locked_until FROM customers WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_one(&mut *tx)
            .await?;
            let locked = locked.is_some_and(|t| t > now.0);
            let new_stage = if locked {
                None
            } else if live.is_empty() && !rels.is_empty() && stage != "lost" {
                Some("lost")
            } else if !live.is_empty() && stage == "lost" {
                Some("following")
            } else {
                None
            };
            sqlx::query(
                "UPDATE customers SET owner_staff_id = $3, lifecycle = COALESCE($4, lifecycle), \
                 name = CASE WHEN source = 'wecom' THEN $5 ELSE name END, updated_at = $6, change_seq = $7 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(owner)
            .bind(new_stage)
            .bind(&name)
            .bind(now.0)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            if let Some(s) = new_stage {
                let summary = format!("stage {stage} → {s}");
                timeline!(tx, tenant, id, now, "stage", "wecom", actor, &summary);
            }
            sqlx::query("DELETE FROM customer_channels WHERE tenant_id = $1 AND customer_id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            for state in &channels {
                sqlx::query(
                    "INSERT INTO customer_channels (tenant_id, customer_id, customer_num, state) VALUES ($1, $2, $3, $4)",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(num)
                .bind(state)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2 AND source = 'wecom'")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            for wt in &wecom_tags {
                sqlx::query(
                    "INSERT INTO customer_tags (tenant_id, tag_id, customer_id, customer_num, source, created_at) \
                     SELECT $1, t.id, $2, $3, 'wecom', $4 FROM tags t WHERE t.tenant_id = $1 AND t.wecom_tag_id = $5 \
                     ON CONFLICT DO NOTHING",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(num)
                .bind(now.0)
                .bind(wt)
                .execute(&mut *tx)
                .await?;
            }
            Projected { customer: Some(id), created }
        });
        Ok(out)
    }

    /// Re-projects every synced contact (after a reconciliation pass).
    pub async fn project_all_wecom_contacts(&self, tenant: TenantId) -> Result<u64> {
        let ids: Vec<String> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT external_userid FROM wecom_contacts WHERE tenant_id = $1 ORDER BY external_userid"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?);
        let mut n = 0;
        for e in &ids {
            if self.project_wecom_contact(tenant, e).await?.customer.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A loss alert.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LossAlert {
    pub id: Uuid,
    pub customer_id: Option<CustomerId>,
    pub customer_name: Option<String>,
    /// `deleted_by_customer` (the customer deleted the member) or `deleted_by_staff`.
    pub kind: String,
    pub external_userid: String,
    pub userid: String,
    pub staff_id: Option<siyu_core::StaffId>,
    /// `event` or `reconcile`.
    pub reason: String,
    pub created_at: siyu_core::Timestamp,
    pub resolved_at: Option<siyu_core::Timestamp>,
}

impl Store {
    /// Records a lost relationship: an alert (one open per relationship and kind, so repeats
    /// change nothing) and a timeline entry. Returns whether a new alert was raised.
    pub async fn record_loss(
        &self,
        tenant: TenantId,
        external_userid: &str,
        userid: &str,
        kind: &str,
        reason: &str,
    ) -> Result<bool> {
        let customer: Option<Uuid> = on_read!(self, |p| {
            sqlx::query_scalar(
            "SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = 'external_userid' AND namespace = '' AND value = $2"
        )
        .bind(tenant.0)
        .bind(external_userid)
        .fetch_optional(p)
        .await?
        });
        let staff = self.staff_by_wecom_userid(tenant, userid).await?.map(|s| s.id.0);
        let now = self.now();
        let actor = Actor::system(tenant);
        let raised = in_tx!(self, |tx| {
            let n = sqlx::query(
                "INSERT INTO customer_alerts (tenant_id, id, customer_id, kind, external_userid, userid, staff_id, reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.0)
            .bind(Uuid::now_v7())
            .bind(customer)
            .bind(kind)
            .bind(external_userid)
            .bind(userid)
            .bind(staff)
            .bind(reason)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                if let Some(c) = customer {
                    let summary = format!("{kind} ({userid})");
                    timeline!(tx, tenant, CustomerId(c), now, "loss", "wecom", actor, &summary);
                }
            }
            n > 0
        });
        Ok(raised)
    }

    /// Loss alerts, newest first; `open_only` hides resolved ones. Guides see their own.
    pub async fn loss_alerts(
        &self,
        tenant: TenantId,
        scope: siyu_core::auth::DataScope,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<LossAlert>> {
        let (all, own) = super::scope_binds(scope);
        type Row = (Uuid, Option<Uuid>, Option<String>, String, String, String, Option<Uuid>, String, i64, Option<i64>);
        let rows: Vec<Row> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT a.id, a.customer_id, c.name, a.kind, a.external_userid, a.userid, a.staff_id, a.reason, a.created_at, a.resolved_at \
             FROM customer_alerts a LEFT JOIN customers c ON c.tenant_id = a.tenant_id AND c.id = a.customer_id \
             WHERE a.tenant_id = $1 AND ($2 OR a.staff_id = $3) AND (NOT $4 OR a.resolved_at IS NULL) \
             ORDER BY a.id DESC LIMIT $5"
        )
        .bind(tenant.0)
        .bind(all)
        .bind(own)
        .bind(open_only)
        .bind(limit)
        .fetch_all(p)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, cid, name, kind, ext, userid, staff, reason, at, resolved)| LossAlert {
                id,
                customer_id: cid.map(CustomerId),
                customer_name: name,
                kind,
                external_userid: ext,
                userid,
                staff_id: staff.map(siyu_core::StaffId),
                reason,
                created_at: siyu_core::Timestamp(at),
                resolved_at: resolved.map(siyu_core::Timestamp),
            })
            .collect())
    }

    pub async fn resolve_loss_alert(&self, actor: &Actor, id: Uuid) -> Result<()> {
        let (all, own) = super::scope_binds(actor.data_scope);
        let now = self.now();
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE customer_alerts SET resolved_at = $3, resolved_by = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND resolved_at IS NULL AND ($5 OR staff_id = $6)",
            )
            .bind(actor.tenant_id.0)
            .bind(id)
            .bind(now.0)
            .bind(actor.audit_identity().2)
            .bind(all)
            .bind(own)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(crate::StoreError::NotFound);
            }
            audit!(tx, self, actor, "alert.resolve", "customer_alert", id, None, None);
        });
        Ok(())
    }
}

/// One OneID link of a person, as the customer page shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IdentityLink {
    pub kind: String,
    pub namespace: String,
    /// The identifier; for phones the blind index, never the number.
    pub value: String,
    pub source: String,
    pub strength: String,
    pub observed_at: siyu_core::Timestamp,
}

/// A staff–customer relationship of a person (WeCom's view), for the customer page.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PersonRelationship {
    pub userid: String,
    pub staff_name: Option<String>,
    pub status: String,
    pub state: Option<String>,
    pub remark: String,
    pub add_time: i64,
}

impl Store {
    pub async fn customer_identities(&self, tenant: TenantId, id: CustomerId) -> Result<Vec<IdentityLink>> {
        let rows: Vec<(String, String, String, String, String, i64)> = on_read!(self, |p| sqlx::query_as(
            "SELECT kind, namespace, value, source, strength, observed_at FROM customer_identities \
             WHERE tenant_id = $1 AND customer_id = $2 ORDER BY observed_at, kind"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(kind, namespace, value, source, strength, at)| IdentityLink {
                kind,
                namespace,
                value,
                source,
                strength,
                observed_at: siyu_core::Timestamp(at),
            })
            .collect())
    }

    pub async fn customer_relationships(&self, tenant: TenantId, id: CustomerId) -> Result<Vec<PersonRelationship>> {
        type Row = (String, Option<String>, String, Option<String>, String, i64);
        let rows: Vec<Row> = on_read!(self, |p| sqlx::query_as(
            "SELECT r.userid, s.name, r.status, r.state, r.remark, r.add_time FROM customer_identities i \
             JOIN wecom_relationships r ON r.tenant_id = i.tenant_id AND r.external_userid = i.value \
             LEFT JOIN staff s ON s.tenant_id = r.tenant_id AND s.wecom_userid = r.userid \
             WHERE i.tenant_id = $1 AND i.customer_id = $2 AND i.kind = 'external_userid' ORDER BY r.add_time"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(userid, staff_name, status, state, remark, add_time)| PersonRelationship {
                userid,
                staff_name,
                status,
                state,
                remark,
                add_time,
            })
            .collect())
    }
}

impl Store {
    /// Everything siyu holds about one person, decrypted, for a data-subject request (PIPL).
    pub async fn export_customer(&self, tenant: TenantId, id: CustomerId) -> Result<serde_json::Value> {
        let c = self.customer(tenant, siyu_core::auth::DataScope::Tenant, id).await?;
        let identities = self.customer_identities(tenant, id).await?;
        let relationships = self.customer_relationships(tenant, id).await?;
        let tags = self.customer_tags(tenant, id).await?;
        let timeline = self.customer_timeline(tenant, id, 10_000).await?;
        let follow_ups = self.follow_ups(tenant, id).await?;
        let purchases: Vec<(String, i64, i64, i64)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT order_ref, paid_at, paid_fen, refunded_fen FROM customer_purchases WHERE tenant_id = $1 AND customer_id = $2 ORDER BY paid_at"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?
        });
        Ok(serde_json::json!({
            "customer": c,
            "identities": identities,
            "wecom_relationships": relationships,
            "tags": tags.iter().map(|t| &t.name).collect::<Vec<_>>(),
            "timeline": timeline,
            "follow_ups": follow_ups,
            "purchases": purchases.iter().map(|(r, at, paid, refunded)| serde_json::json!({
                "order_ref": r, "paid_at": at, "paid_fen": paid, "refunded_fen": refunded
            })).collect::<Vec<_>>(),
        }))
    }

    /// Erases a person's personal data everywhere siyu keeps it, in one transaction: profile
    /// values, sealed phone and fields, identities, tags, channels, timeline, follow-ups,
    /// alerts, and siyu's copies of their WeCom contact and relationships. What remains is an
    /// anonymous row (status `erased`) that keeps purchase aggregates countable. Audited
    /// without personal data. Returns `NotFound` for an unknown or already erased person.
    pub async fn erase_customer(&self, actor: &Actor, id: CustomerId) -> Result<()> {
        let tenant = actor.tenant_id;
        let c = self.customer(tenant, actor.data_scope, id).await?;
        let externals: Vec<String> = on_read!(self, |p| {
            sqlx::query_scalar(
            "SELECT value FROM customer_identities WHERE tenant_id = $1 AND customer_id = $2 AND kind = 'external_userid'"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?
        });
        let now = self.now();
        in_tx!(self, |tx| {
            let (_, seq) = bump!(tx, tenant, 0);
            let n = sqlx::query(
                "UPDATE customers SET name = '', phone_sealed = NULL, phone_index = NULL, phone_masked = NULL, gender = 0, \
                 owner_staff_id = NULL, store_id = NULL, rfm_r = NULL, rfm_f = NULL, rfm_m = NULL, rfm_segment = NULL, \
                 status = 'erased', updated_at = $3, change_seq = $4 WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(now.0)
            .bind(seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(crate::StoreError::NotFound);
            }
            for table in [
                "customer_identities",
                "customer_tags",
                "customer_channels",
                "customer_fields",
                "customer_timeline",
                "follow_ups",
                "customer_alerts",
                "transfer_items",
            ] {
                sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND customer_id = $2"))
                    .bind(tenant.0)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
            }
            for e in &externals {
                for table in ["wecom_relationships", "wecom_contacts", "customer_alerts", "transfer_items"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND external_userid = $2"))
                        .bind(tenant.0)
                        .bind(e)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            // Merge records name the person on either side.
            sqlx::query("DELETE FROM customer_merges WHERE tenant_id = $1 AND (survivor_id = $2 OR absorbed_id = $2)")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            audit!(
                tx,
                self,
                actor,
                "customer.erase",
                "customer",
                id,
                None,
                Some(serde_json::json!({"num": c.num, "wecom_contacts": externals.len()}))
            );
        });
        Ok(())
    }
}

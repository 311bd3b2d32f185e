//! Manual merge and split of persons (scrm-rules C-13..C-15), and merge suggestions from
//! weak evidence.
//!
//! A merge moves everything of the absorbed person to the survivor — identities, tags,
//! channels, custom fields the survivor lacks, the phone if the survivor has none, and the
//! timeline, follow-ups, purchases, alerts and transfers — and records exactly what moved, so
//! an undo (the split) puts each back. Two persons holding different strong identifiers of
//! the same kind (two unionids, two external_userids) are never merged (C-14).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::{CustomerId, TenantId, Timestamp};

use super::{field_aad, phone_aad};
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

/// What one merge moved.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Moved {
    identities: Vec<(String, String, String)>,
    /// The absorbed person's tags: (tag, source, created_at).
    tags: Vec<(Uuid, String, i64)>,
    /// Of those, the ones the survivor did not already hold.
    added_tags: Vec<Uuid>,
    channels: Vec<String>,
    added_channels: Vec<String>,
    copied_fields: Vec<String>,
    phone_copied: bool,
    timeline: Vec<Uuid>,
    follow_ups: Vec<Uuid>,
    purchases: Vec<String>,
    alerts: Vec<Uuid>,
    transfers: Vec<Uuid>,
}

/// A recorded merge.
#[derive(Clone, Debug, Serialize)]
pub struct Merge {
    pub id: Uuid,
    pub survivor_id: CustomerId,
    pub absorbed_id: CustomerId,
    pub survivor_num: i64,
    pub absorbed_num: i64,
    pub absorbed_name: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub undone_at: Option<Timestamp>,
}

/// Two persons that may be one, and why.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MergeSuggestion {
    /// The person known from WeCom.
    pub wecom_customer: CustomerId,
    /// The person holding the phone.
    pub phone_customer: CustomerId,
    /// `remark_mobile`: a member noted this phone on the WeCom contact.
    pub reason: String,
    pub phone_masked: String,
    pub userid: String,
}

/// Gives a person a tag row inside `$tx` unless they hold it; yields whether it was new.
macro_rules! put_tag {
    ($tx:expr, $tenant:expr, $tag:expr, $who:expr, $num:expr, $source:expr, $at:expr) => {{
        sqlx::query(
            "INSERT INTO customer_tags (tenant_id, tag_id, customer_id, customer_num, source, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind($tenant.0)
        .bind($tag)
        .bind($who.0)
        .bind($num)
        .bind($source)
        .bind($at)
        .execute(&mut *$tx)
        .await?
        .rows_affected()
            > 0
    }};
}

/// Gives a person a channel row inside `$tx` unless they have it; yields whether it was new.
macro_rules! put_channel {
    ($tx:expr, $tenant:expr, $who:expr, $num:expr, $state:expr) => {{
        sqlx::query(
            "INSERT INTO customer_channels (tenant_id, customer_id, customer_num, state) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind($tenant.0)
        .bind($who.0)
        .bind($num)
        .bind($state)
        .execute(&mut *$tx)
        .await?
        .rows_affected()
            > 0
    }};
}

/// Moves rows of `$table` keyed by `$col` from one person to another inside `$tx`,
/// returning the moved keys.
macro_rules! move_rows {
    ($tx:expr, $table:literal, $key:literal, $ty:ty, $tenant:expr, $from:expr, $to:expr) => {{
        let keys: Vec<$ty> = sqlx::query_scalar(concat!(
            "UPDATE ",
            $table,
            " SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2 RETURNING ",
            $key
        ))
        .bind($tenant.0)
        .bind($from.0)
        .bind($to.0)
        .fetch_all(&mut *$tx)
        .await?;
        keys
    }};
}

/// Moves the rows of `$table` whose `$key` is listed back to `$to`.
macro_rules! move_back {
    ($tx:expr, $table:literal, $key:literal, $tenant:expr, $keys:expr, $to:expr) => {{
        for k in $keys {
            sqlx::query(concat!("UPDATE ", $table, " SET customer_id = $3 WHERE tenant_id = $1 AND ", $key, " = $2"))
                .bind($tenant.0)
                .bind(k)
                .bind($to.0)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

impl Store {
    /// Merges `absorbed` into `survivor` (both live and different). Returns the merge's id.
    pub async fn merge_customers(&self, actor: &Actor, survivor: CustomerId, absorbed: CustomerId) -> Result<Uuid> {
        let tenant = actor.tenant_id;
        if survivor == absorbed {
            return Err(StoreError::Conflict("a customer cannot be merged into itself".into()));
        }
        let s = self.customer(tenant, actor.data_scope, survivor).await?;
        let a = self.customer(tenant, actor.data_scope, absorbed).await?;
        // C-14: different strong identifiers of one kind mean two people.
        let strong: Vec<(Uuid, String, String, String)> = on_read!(self, |p| sqlx::query_as(
            "SELECT customer_id, kind, namespace, value FROM customer_identities WHERE tenant_id = $1 \
             AND strength = 'strong' AND customer_id IN ($2, $3)"
        )
        .bind(tenant.0)
        .bind(survivor.0)
        .bind(absorbed.0)
        .fetch_all(p)
        .await?);
        for (who, kind, ns, _) in strong.iter().filter(|r| r.0 == survivor.0) {
            if strong.iter().any(|o| o.0 != *who && &o.1 == kind && &o.2 == ns) {
                return Err(StoreError::Conflict(format!(
                    "both customers hold a different strong {kind}: they are two people and are not merged"
                )));
            }
        }
        let defs = self.customer_field_defs(tenant).await?;
        let now = self.now();
        let id = Uuid::now_v7();
        in_tx!(self, |tx| {
            let (_, seq) = bump!(tx, tenant, 0);
            let mut m = Moved::default();
            let idents: Vec<(String, String, String)> = sqlx::query_as(
                "UPDATE customer_identities SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2 \
                 RETURNING kind, namespace, value",
            )
            .bind(tenant.0)
            .bind(absorbed.0)
            .bind(survivor.0)
            .fetch_all(&mut *tx)
            .await?;
            m.identities = idents;
            let theirs: Vec<(Uuid, String, i64)> = sqlx::query_as(
                "DELETE FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2 RETURNING tag_id, source, created_at",
            )
            .bind(tenant.0)
            .bind(absorbed.0)
            .fetch_all(&mut *tx)
            .await?;
            for (tag, source, at) in &theirs {
                if put_tag!(tx, tenant, tag, survivor, s.num, source, at) {
                    m.added_tags.push(*tag);
                }
            }
            m.tags = theirs;
            let states: Vec<String> = sqlx::query_scalar(
                "DELETE FROM customer_channels WHERE tenant_id = $1 AND customer_id = $2 RETURNING state",
            )
            .bind(tenant.0)
            .bind(absorbed.0)
            .fetch_all(&mut *tx)
            .await?;
            for st in &states {
                if put_channel!(tx, tenant, survivor, s.num, st) {
                    m.added_channels.push(st.clone());
                }
            }
            m.channels = states;
            // Fields the survivor lacks are copied (sealed ones re-sealed for their new owner).
            for (k, v) in a.fields.iter().filter(|(k, _)| !s.fields.contains_key(*k)) {
                let sensitive = defs.iter().any(|(key, _, sens)| key == k && *sens);
                let (plain, sealed) = if sensitive {
                    (None, Some(self.sealer.seal(&field_aad(tenant, survivor, k), v)))
                } else {
                    (Some(v.as_str()), None)
                };
                sqlx::query(
                    "INSERT INTO customer_fields (tenant_id, customer_id, customer_num, key, value, value_sealed) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(tenant.0)
                .bind(survivor.0)
                .bind(s.num)
                .bind(k)
                .bind(plain)
                .bind(sealed)
                .execute(&mut *tx)
                .await?;
                m.copied_fields.push(k.clone());
            }
            if let (None, Some(p)) = (&s.phone, &a.phone) {
                sqlx::query(
                    "UPDATE customers SET phone_sealed = $3, phone_index = (SELECT phone_index FROM customers \
                     WHERE tenant_id = $1 AND id = $4), phone_masked = $5 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(survivor.0)
                .bind(self.sealer.seal(&phone_aad(tenant, survivor), p))
                .bind(absorbed.0)
                .bind(&a.phone_masked)
                .execute(&mut *tx)
                .await?;
                m.phone_copied = true;
            }
            m.timeline = move_rows!(tx, "customer_timeline", "id", Uuid, tenant, absorbed, survivor);
            m.follow_ups = move_rows!(tx, "follow_ups", "id", Uuid, tenant, absorbed, survivor);
            m.purchases = move_rows!(tx, "customer_purchases", "order_ref", String, tenant, absorbed, survivor);
            m.alerts = move_rows!(tx, "customer_alerts", "id", Uuid, tenant, absorbed, survivor);
            m.transfers = move_rows!(tx, "transfer_items", "id", Uuid, tenant, absorbed, survivor);
            sqlx::query(
                "UPDATE customers SET status = 'merged', merged_into = $3, phone_index = NULL, updated_at = $4, change_seq = $5 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(absorbed.0)
            .bind(survivor.0)
            .bind(now.0)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE customers SET updated_at = $3, change_seq = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(survivor.0)
                .bind(now.0)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            let summary = format!("merged customer #{} into this profile", a.num);
            timeline!(tx, tenant, survivor, now, "merge", "manual", actor, &summary);
            let snapshot = serde_json::to_string(&m).map_err(|e| StoreError::Conflict(e.to_string()))?;
            sqlx::query(
                "INSERT INTO customer_merges (tenant_id, id, survivor_id, absorbed_id, snapshot, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(survivor.0)
            .bind(absorbed.0)
            .bind(&snapshot)
            .bind(actor.audit_identity().2)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            audit!(
                tx,
                self,
                actor,
                "customer.merge",
                "customer",
                survivor,
                None,
                Some(serde_json::json!({"absorbed_num": a.num, "survivor_num": s.num, "merge": id,
                    "identities": m.identities.len(), "tags": m.tags.len(), "purchases": m.purchases.len()}))
            );
        });
        Ok(id)
    }

    /// Undoes a merge (the split): everything the merge moved goes back to the absorbed
    /// person, who is live again. Changes made since stay with whoever holds them now.
    pub async fn undo_merge(&self, actor: &Actor, id: Uuid) -> Result<()> {
        let tenant = actor.tenant_id;
        type Row = (Uuid, Uuid, String, Option<i64>);
        let row: Option<Row> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT survivor_id, absorbed_id, snapshot, undone_at FROM customer_merges WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(p)
        .await?
        });
        let (survivor, absorbed, snapshot, undone) = row.ok_or(StoreError::NotFound)?;
        let (survivor, absorbed) = (CustomerId(survivor), CustomerId(absorbed));
        // The survivor must be in the actor's scope, and still live.
        let s = self.customer(tenant, actor.data_scope, survivor).await?;
        if undone.is_some() {
            return Err(StoreError::Conflict("this merge was already undone".into()));
        }
        let m: Moved = serde_json::from_str(&snapshot).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let now = self.now();
        in_tx!(self, |tx| {
            let (_, seq) = bump!(tx, tenant, 0);
            let n = sqlx::query(
                "UPDATE customers SET status = 'active', merged_into = NULL, updated_at = $4, change_seq = $5 \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'merged' AND merged_into = $3",
            )
            .bind(tenant.0)
            .bind(absorbed.0)
            .bind(survivor.0)
            .bind(now.0)
            .bind(seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict("the absorbed customer changed since the merge".into()));
            }
            let num: i64 = sqlx::query_scalar("SELECT num FROM customers WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(absorbed.0)
                .fetch_one(&mut *tx)
                .await?;
            for (kind, ns, value) in &m.identities {
                sqlx::query(
                    "UPDATE customer_identities SET customer_id = $5 WHERE tenant_id = $1 AND kind = $2 AND namespace = $3 \
                     AND value = $4 AND customer_id = $6",
                )
                .bind(tenant.0)
                .bind(kind)
                .bind(ns)
                .bind(value)
                .bind(absorbed.0)
                .bind(survivor.0)
                .execute(&mut *tx)
                .await?;
            }
            if m.identities.iter().any(|i| i.0 == "phone") {
                // The absorbed person's phone lookup comes back with its phone identity.
                let ix = m.identities.iter().find(|i| i.0 == "phone").map(|i| i.2.clone());
                sqlx::query("UPDATE customers SET phone_index = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(absorbed.0)
                    .bind(ix)
                    .execute(&mut *tx)
                    .await?;
            }
            for tag in &m.added_tags {
                sqlx::query("DELETE FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2 AND tag_id = $3")
                    .bind(tenant.0)
                    .bind(survivor.0)
                    .bind(tag)
                    .execute(&mut *tx)
                    .await?;
            }
            for (tag, source, at) in &m.tags {
                let _ = put_tag!(tx, tenant, tag, absorbed, num, source, at);
            }
            for st in &m.added_channels {
                sqlx::query("DELETE FROM customer_channels WHERE tenant_id = $1 AND customer_id = $2 AND state = $3")
                    .bind(tenant.0)
                    .bind(survivor.0)
                    .bind(st)
                    .execute(&mut *tx)
                    .await?;
            }
            for st in &m.channels {
                let _ = put_channel!(tx, tenant, absorbed, num, st);
            }
            for k in &m.copied_fields {
                sqlx::query("DELETE FROM customer_fields WHERE tenant_id = $1 AND customer_id = $2 AND key = $3")
                    .bind(tenant.0)
                    .bind(survivor.0)
                    .bind(k)
                    .execute(&mut *tx)
                    .await?;
            }
            if m.phone_copied {
                sqlx::query(
                    "UPDATE customers SET phone_sealed = NULL, phone_index = NULL, phone_masked = NULL \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(survivor.0)
                .execute(&mut *tx)
                .await?;
            }
            move_back!(tx, "customer_timeline", "id", tenant, &m.timeline, absorbed);
            move_back!(tx, "follow_ups", "id", tenant, &m.follow_ups, absorbed);
            move_back!(tx, "customer_purchases", "order_ref", tenant, &m.purchases, absorbed);
            move_back!(tx, "customer_alerts", "id", tenant, &m.alerts, absorbed);
            move_back!(tx, "transfer_items", "id", tenant, &m.transfers, absorbed);
            sqlx::query("UPDATE customers SET updated_at = $3, change_seq = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(survivor.0)
                .bind(now.0)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE customer_merges SET undone_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            let summary = format!("split customer #{num} out of this profile");
            timeline!(tx, tenant, survivor, now, "merge", "manual", actor, &summary);
            audit!(
                tx,
                self,
                actor,
                "customer.unmerge",
                "customer",
                survivor,
                None,
                Some(serde_json::json!({"merge": id, "survivor_num": s.num, "absorbed_num": num}))
            );
        });
        Ok(())
    }

    /// Merges a person took part in (as survivor or absorbed), newest first.
    pub async fn customer_merges(&self, tenant: TenantId, id: CustomerId) -> Result<Vec<Merge>> {
        type Row = (Uuid, Uuid, Uuid, i64, i64, String, String, i64, Option<i64>);
        let rows: Vec<Row> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT m.id, m.survivor_id, m.absorbed_id, s.num, a.num, a.name, m.created_by, m.created_at, m.undone_at \
             FROM customer_merges m JOIN customers s ON s.tenant_id = m.tenant_id AND s.id = m.survivor_id \
             JOIN customers a ON a.tenant_id = m.tenant_id AND a.id = m.absorbed_id \
             WHERE m.tenant_id = $1 AND (m.survivor_id = $2 OR m.absorbed_id = $2) ORDER BY m.id DESC"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| Merge {
                id: r.0,
                survivor_id: CustomerId(r.1),
                absorbed_id: CustomerId(r.2),
                survivor_num: r.3,
                absorbed_num: r.4,
                absorbed_name: r.5,
                created_by: r.6,
                created_at: Timestamp(r.7),
                undone_at: r.8.map(Timestamp),
            })
            .collect())
    }

    /// Merge suggestions from weak evidence (C-13): a phone a member noted on a WeCom
    /// contact (`remark_mobiles`) that another live person holds. Never merged automatically.
    pub async fn merge_suggestions(&self, tenant: TenantId, limit: usize) -> Result<Vec<MergeSuggestion>> {
        type Row = (String, String, sqlx::types::Json<Vec<String>>);
        let rels: Vec<Row> = on_read!(self, |p| sqlx::query_as(
            "SELECT external_userid, userid, remark_mobiles FROM wecom_relationships WHERE tenant_id = $1 \
             AND status IN ('active', 'half') AND remark_mobiles <> '[]' ORDER BY external_userid LIMIT 5000"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?);
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (external, userid, mobiles) in rels {
            let Some(person) = self.person_of_external(tenant, &external).await? else { continue };
            for m in mobiles.0.iter().filter_map(|m| siyu_core::customers::profile::normalize_phone(m)) {
                let ix = self.sealer.blind_index("phone", &m);
                let holder: Option<Uuid> = on_read!(self, |p| sqlx::query_scalar(
                    "SELECT id FROM customers WHERE tenant_id = $1 AND phone_index = $2 AND status = 'active'"
                )
                .bind(tenant.0)
                .bind(&ix)
                .fetch_optional(p)
                .await?);
                if let Some(h) = holder.filter(|h| *h != person.0) {
                    if seen.insert((person.0, h)) {
                        out.push(MergeSuggestion {
                            wecom_customer: person,
                            phone_customer: CustomerId(h),
                            reason: "remark_mobile".into(),
                            phone_masked: siyu_core::customers::profile::mask_phone(&m),
                            userid: userid.clone(),
                        });
                    }
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The live person holding a WeCom external contact.
    pub async fn person_of_external(&self, tenant: TenantId, external: &str) -> Result<Option<CustomerId>> {
        let r: Option<Uuid> = on_read!(self, |p| {
            sqlx::query_scalar(
            "SELECT c.id FROM customer_identities i JOIN customers c ON c.tenant_id = i.tenant_id AND c.id = i.customer_id \
             WHERE i.tenant_id = $1 AND i.kind = 'external_userid' AND i.value = $2 AND c.status = 'active'"
        )
        .bind(tenant.0)
        .bind(external)
        .fetch_optional(p)
        .await?
        });
        Ok(r.map(CustomerId))
    }
}

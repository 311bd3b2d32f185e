//! Customers (persons after OneID), their profile, lifecycle, timeline and follow-ups.
//!
//! Every change to what segments can see about a customer takes a fresh `change_seq` from
//! the tenant's counter row in the same transaction ([`bump`]), so segment indexes in every
//! process can catch up by reading rows whose `change_seq` is above the last one they saw.
//! Personal data (name, phone, sensitive fields, follow-up text) never goes into audit rows,
//! so erasure can remove it from the few tables that hold it.

/// Takes `n` customer numbers and one change sequence number from the tenant's counter row
/// inside transaction `$tx`, yielding (first allocated number, change_seq). The row lock it
/// takes is held to commit, which is what makes `change_seq` commit-ordered per tenant.
macro_rules! bump {
    ($tx:expr, $tenant:expr, $n:expr) => {{
        let n: i64 = $n;
        let (next, seq): (i64, i64) = sqlx::query_as(
            "INSERT INTO customer_counters (tenant_id, next_num, change_seq) VALUES ($1, 1 + $2, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET next_num = customer_counters.next_num + $2, \
             change_seq = customer_counters.change_seq + 1 RETURNING next_num, change_seq",
        )
        .bind($tenant.0)
        .bind(n)
        .fetch_one(&mut *$tx)
        .await?;
        (next - n, seq)
    }};
}

/// Appends a timeline entry inside transaction `$tx`. Summaries never hold personal data.
macro_rules! timeline {
    ($tx:expr, $tenant:expr, $id:expr, $at:expr, $kind:expr, $source:expr, $actor:expr, $summary:expr) => {{
        sqlx::query(
            "INSERT INTO customer_timeline (tenant_id, customer_id, id, at, kind, source, actor, summary) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind($tenant.0)
        .bind($id.0)
        .bind(uuid::Uuid::now_v7())
        .bind($at.0)
        .bind($kind)
        .bind($source)
        .bind($actor.audit_identity().2)
        .bind($summary)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Writes custom profile fields inside transaction `$tx`; sensitive ones (per `$defs`) are
/// sealed and kept out of the plain `value` column (and so out of segments).
macro_rules! write_fields {
    ($tx:expr, $store:expr, $tenant:expr, $id:expr, $num:expr, $fields:expr, $defs:expr) => {{
        for (k, v) in $fields {
            let sensitive = $defs.iter().any(|(key, _, s)| key == k && *s);
            let (plain, sealed) = if sensitive {
                (None, Some($store.sealer.seal(&field_aad($tenant, $id, k), v)))
            } else {
                (Some(v.as_str()), None)
            };
            sqlx::query(
                "INSERT INTO customer_fields (tenant_id, customer_id, customer_num, key, value, value_sealed) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind($tenant.0)
            .bind($id.0)
            .bind($num)
            .bind(k)
            .bind(plain)
            .bind(sealed)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// Links a phone (by its blind index `$ix`) to a person inside transaction `$tx`, as weak
/// evidence from `$source`; a phone already linked to someone else is `Duplicate("phone")`.
macro_rules! link_phone {
    ($tx:expr, $tenant:expr, $ix:expr, $id:expr, $source:expr, $now:expr, $actor:expr) => {{
        sqlx::query(
            "INSERT INTO customer_identities (tenant_id, kind, namespace, value, customer_id, source, strength, observed_at, actor) \
             VALUES ($1, 'phone', '', $2, $3, $4, 'weak', $5, $6)",
        )
        .bind($tenant.0)
        .bind($ix)
        .bind($id.0)
        .bind($source)
        .bind($now.0)
        .bind($actor.audit_identity().2)
        .execute(&mut *$tx)
        .await
        .map_err(|e| StoreError::constraint(e, "phone"))?;
    }};
}

pub mod group_transfers;
pub mod imports;
pub mod index;
pub mod merge;
pub mod metrics;
pub mod reminders;
pub mod segments;
pub mod tags;
pub mod transfers;
pub mod wecom;

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::FromRow;
use uuid::Uuid;

use siyu_core::auth::{Actor, DataScope};
use siyu_core::customers::profile::{mask_phone, CustomerInput, Gender, DEFAULT_STAGES, INITIAL_STAGE};
use siyu_core::customers::rfm::{Scored, Scores, Segment};
use siyu_core::paging::{Page, PageRequest};
use siyu_core::{CustomerId, StaffId, StoreId, TenantId, Timestamp};

use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

/// One customer as the store returns it. `phone` is decrypted; the edge decides whether the
/// viewer may see it or only `phone_masked`.
#[derive(Clone, Debug, Serialize)]
pub struct Customer {
    pub id: CustomerId,
    pub num: i64,
    pub name: String,
    pub phone: Option<String>,
    pub phone_masked: Option<String>,
    pub gender: Gender,
    pub lifecycle: String,
    pub lifecycle_locked_until: Option<Timestamp>,
    pub owner_staff_id: Option<StaffId>,
    pub store_id: Option<StoreId>,
    pub source: String,
    pub orders_count: i64,
    pub spend_fen: i64,
    pub last_order_at: Option<Timestamp>,
    pub rfm: Option<Scored>,
    pub status: String,
    pub fields: BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What the audit log may keep about a customer: no personal data.
#[derive(Serialize)]
struct AuditView<'a> {
    num: i64,
    lifecycle: &'a str,
    owner_staff_id: Option<StaffId>,
    store_id: Option<StoreId>,
    source: &'a str,
    field_keys: Vec<&'a str>,
}

impl Customer {
    fn audit_view(&self) -> Option<serde_json::Value> {
        snapshot(&AuditView {
            num: self.num,
            lifecycle: &self.lifecycle,
            owner_staff_id: self.owner_staff_id,
            store_id: self.store_id,
            source: &self.source,
            field_keys: self.fields.keys().map(String::as_str).collect(),
        })
    }
}

pub(crate) const CUSTOMER_COLS: &str = "c.id, c.num, c.name, c.phone_sealed, c.phone_masked, c.gender, c.lifecycle, \
     c.lifecycle_locked_until, c.owner_staff_id, c.store_id, c.source, c.orders_count, c.spend_fen, c.last_order_at, \
     c.rfm_r, c.rfm_f, c.rfm_m, c.rfm_segment, c.status, c.created_at, c.updated_at";

#[derive(FromRow)]
pub(crate) struct CustomerRow {
    id: Uuid,
    num: i64,
    name: String,
    phone_sealed: Option<String>,
    phone_masked: Option<String>,
    gender: i64,
    lifecycle: String,
    lifecycle_locked_until: Option<i64>,
    owner_staff_id: Option<Uuid>,
    store_id: Option<Uuid>,
    source: String,
    orders_count: i64,
    spend_fen: i64,
    last_order_at: Option<i64>,
    rfm_r: Option<i64>,
    rfm_f: Option<i64>,
    rfm_m: Option<i64>,
    rfm_segment: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

pub fn segment_key(s: Segment) -> &'static str {
    match s {
        Segment::ImportantValue => "important_value",
        Segment::ImportantDevelop => "important_develop",
        Segment::ImportantKeep => "important_keep",
        Segment::ImportantRetain => "important_retain",
        Segment::GeneralValue => "general_value",
        Segment::GeneralDevelop => "general_develop",
        Segment::GeneralKeep => "general_keep",
        Segment::GeneralRetain => "general_retain",
    }
}

pub fn parse_segment_key(s: &str) -> Option<Segment> {
    Segment::ALL.into_iter().find(|x| segment_key(*x) == s)
}

pub(crate) fn rfm_of(r: Option<i64>, f: Option<i64>, m: Option<i64>, seg: Option<&str>) -> Option<Scored> {
    let (r, f, m, seg) = (r?, f?, m?, parse_segment_key(seg?)?);
    Some(Scored { scores: Scores { r: r as u8, f: f as u8, m: m as u8 }, segment: seg })
}

pub(crate) fn phone_aad(tenant: TenantId, id: CustomerId) -> String {
    format!("{tenant}|{id}|customer.phone")
}

pub(crate) fn field_aad(tenant: TenantId, id: CustomerId, key: &str) -> String {
    format!("{tenant}|{id}|customer.field.{key}")
}

impl Store {
    pub(crate) fn customer_from_row(&self, tenant: TenantId, r: CustomerRow) -> Result<Customer> {
        let id = CustomerId(r.id);
        let phone = match &r.phone_sealed {
            Some(s) => Some(self.sealer.open(&phone_aad(tenant, id), s)?),
            None => None,
        };
        Ok(Customer {
            id,
            num: r.num,
            name: r.name,
            phone,
            phone_masked: r.phone_masked,
            gender: Gender::from_code(r.gender),
            lifecycle: r.lifecycle,
            lifecycle_locked_until: r.lifecycle_locked_until.map(Timestamp),
            owner_staff_id: r.owner_staff_id.map(StaffId),
            store_id: r.store_id.map(StoreId),
            source: r.source,
            orders_count: r.orders_count,
            spend_fen: r.spend_fen,
            last_order_at: r.last_order_at.map(Timestamp),
            rfm: rfm_of(r.rfm_r, r.rfm_f, r.rfm_m, r.rfm_segment.as_deref()),
            status: r.status,
            fields: BTreeMap::new(),
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        })
    }

    /// The tenant's lifecycle stages in order: its own if it configured any, else the defaults.
    pub async fn lifecycle_stages(&self, tenant: TenantId, zh: bool) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String)> = on_read!(self, |p| sqlx::query_as(
            "SELECT key, name FROM lifecycle_stages WHERE tenant_id = $1 ORDER BY sort_order, key"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?);
        if !rows.is_empty() {
            return Ok(rows);
        }
        Ok(DEFAULT_STAGES.iter().map(|(k, z, e)| (k.to_string(), (if zh { *z } else { *e }).to_string())).collect())
    }

    /// Custom profile field definitions: (key, label, sensitive).
    pub async fn customer_field_defs(&self, tenant: TenantId) -> Result<Vec<(String, String, bool)>> {
        let rows: Vec<(String, String, bool)> = on_read!(self, |p| sqlx::query_as(
            "SELECT key, label, sensitive FROM customer_field_defs WHERE tenant_id = $1 ORDER BY sort_order, key"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    pub async fn define_customer_field(&self, actor: &Actor, key: &str, label: &str, sensitive: bool) -> Result<()> {
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO customer_field_defs (tenant_id, key, label, sensitive, sort_order, created_at) \
                 VALUES ($1, $2, $3, $4, (SELECT COUNT(*) FROM customer_field_defs WHERE tenant_id = $1), $5)",
            )
            .bind(actor.tenant_id.0)
            .bind(key)
            .bind(label)
            .bind(sensitive)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "key"))?;
            audit!(
                tx,
                self,
                actor,
                "customer_field.define",
                "customer_field",
                key,
                None,
                Some(serde_json::json!({"key": key, "label": label, "sensitive": sensitive}))
            );
        });
        Ok(())
    }

    pub async fn create_customer(&self, actor: &Actor, input: &CustomerInput, source: &str) -> Result<Customer> {
        let tenant = actor.tenant_id;
        let defs = self.customer_field_defs(tenant).await?;
        let now = self.now();
        let id = CustomerId::new();
        let lifecycle = input.lifecycle.clone().unwrap_or_else(|| INITIAL_STAGE.to_string());
        let c = in_tx!(self, |tx| {
            let (num, seq) = bump!(tx, tenant, 1);
            let phone_index = input.phone.as_ref().map(|p| self.sealer.blind_index("phone", p));
            sqlx::query(
                "INSERT INTO customers (tenant_id, id, num, name, phone_sealed, phone_index, phone_masked, gender, lifecycle, \
                 owner_staff_id, store_id, source, created_at, updated_at, change_seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(num)
            .bind(&input.name)
            .bind(input.phone.as_ref().map(|p| self.sealer.seal(&phone_aad(tenant, id), p)))
            .bind(&phone_index)
            .bind(input.phone.as_deref().map(mask_phone))
            .bind(input.gender.code())
            .bind(&lifecycle)
            .bind(input.owner_staff_id.map(|s| s.0))
            .bind(input.store_id.map(|s| s.0))
            .bind(source)
            .bind(now.0)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            if let Some(ix) = &phone_index {
                link_phone!(tx, tenant, ix, id, source, now, actor);
            }
            write_fields!(tx, self, tenant, id, num, &input.fields, &defs);
            timeline!(tx, tenant, id, now, "created", source, actor, "customer created");
            let c = Customer {
                id,
                num,
                name: input.name.clone(),
                phone: input.phone.clone(),
                phone_masked: input.phone.as_deref().map(mask_phone),
                gender: input.gender,
                lifecycle: lifecycle.clone(),
                lifecycle_locked_until: None,
                owner_staff_id: input.owner_staff_id,
                store_id: input.store_id,
                source: source.to_string(),
                orders_count: 0,
                spend_fen: 0,
                last_order_at: None,
                rfm: None,
                status: "active".into(),
                fields: input.fields.clone(),
                created_at: now,
                updated_at: now,
            };
            audit!(tx, self, actor, "customer.create", "customer", id, None, c.audit_view());
            c
        });
        Ok(c)
    }

    /// One customer, if `scope` admits it (guides see the customers they own).
    pub async fn customer(&self, tenant: TenantId, scope: DataScope, id: CustomerId) -> Result<Customer> {
        let sql = format!(
            "SELECT {CUSTOMER_COLS} FROM customers c WHERE c.tenant_id = $1 AND c.id = $2 AND c.status = 'active' \
             AND ($3 OR c.owner_staff_id = $4)"
        );
        let (all, own) = scope_binds(scope);
        let r: Option<CustomerRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(id.0)
            .bind(all)
            .bind(own)
            .fetch_optional(p)
            .await?);
        let mut c = self.customer_from_row(tenant, r.ok_or(StoreError::NotFound)?)?;
        c.fields = self.read_fields(tenant, id).await?;
        Ok(c)
    }

    async fn read_fields(&self, tenant: TenantId, id: CustomerId) -> Result<BTreeMap<String, String>> {
        let rows: Vec<(String, Option<String>, Option<String>)> = on_read!(self, |p| sqlx::query_as(
            "SELECT key, value, value_sealed FROM customer_fields WHERE tenant_id = $1 AND customer_id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?);
        let mut out = BTreeMap::new();
        for (k, v, sealed) in rows {
            let v = match (v, sealed) {
                (Some(v), _) => v,
                (None, Some(s)) => self.sealer.open(&field_aad(tenant, id, &k), &s)?,
                (None, None) => continue,
            };
            out.insert(k, v);
        }
        Ok(out)
    }

    pub async fn update_customer(&self, actor: &Actor, id: CustomerId, input: &CustomerInput) -> Result<Customer> {
        let tenant = actor.tenant_id;
        let before = self.customer(tenant, actor.data_scope, id).await?;
        let defs = self.customer_field_defs(tenant).await?;
        let now = self.now();
        let lifecycle = input.lifecycle.clone().unwrap_or_else(|| before.lifecycle.clone());
        in_tx!(self, |tx| {
            let (_, seq) = bump!(tx, tenant, 0);
            let phone_index = input.phone.as_ref().map(|p| self.sealer.blind_index("phone", p));
            // A guide cannot hand their customer to someone else by editing the owner.
            let owner = match actor.data_scope {
                DataScope::Tenant => input.owner_staff_id.map(|s| s.0),
                _ => before.owner_staff_id.map(|s| s.0),
            };
            let n = sqlx::query(
                "UPDATE customers SET name = $3, phone_sealed = $4, phone_index = $5, phone_masked = $6, gender = $7, \
                 lifecycle = $8, owner_staff_id = $9, store_id = $10, updated_at = $11, change_seq = $12 \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&input.name)
            .bind(input.phone.as_ref().map(|p| self.sealer.seal(&phone_aad(tenant, id), p)))
            .bind(&phone_index)
            .bind(input.phone.as_deref().map(mask_phone))
            .bind(input.gender.code())
            .bind(&lifecycle)
            .bind(owner)
            .bind(input.store_id.map(|s| s.0))
            .bind(now.0)
            .bind(seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if before.phone != input.phone {
                sqlx::query(
                    "DELETE FROM customer_identities WHERE tenant_id = $1 AND customer_id = $2 AND kind = 'phone'",
                )
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                if let Some(ix) = &phone_index {
                    link_phone!(tx, tenant, ix, id, "manual", now, actor);
                }
            }
            sqlx::query("DELETE FROM customer_fields WHERE tenant_id = $1 AND customer_id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            write_fields!(tx, self, tenant, id, before.num, &input.fields, &defs);
            if before.lifecycle != lifecycle {
                sqlx::query("UPDATE customers SET lifecycle_locked_until = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id.0)
                    .bind(now.0 + STAGE_LOCK_MICROS)
                    .execute(&mut *tx)
                    .await?;
                let summary = format!("stage {} → {}", before.lifecycle, lifecycle);
                timeline!(tx, tenant, id, now, "stage", "manual", actor, &summary);
            }
            let after = Customer {
                name: input.name.clone(),
                phone: input.phone.clone(),
                lifecycle: lifecycle.clone(),
                owner_staff_id: owner.map(StaffId),
                store_id: input.store_id,
                fields: input.fields.clone(),
                ..before.clone()
            };
            audit!(tx, self, actor, "customer.update", "customer", id, before.audit_view(), after.audit_view());
        });
        self.customer(tenant, DataScope::Tenant, id).await
    }

    /// A manual stage change; automation leaves the stage alone for 14 days afterwards
    /// (scrm-rules C-32).
    pub async fn set_lifecycle(&self, actor: &Actor, id: CustomerId, stage: &str) -> Result<Customer> {
        let tenant = actor.tenant_id;
        let before = self.customer(tenant, actor.data_scope, id).await?;
        let stages = self.lifecycle_stages(tenant, true).await?;
        if !stages.iter().any(|(k, _)| k == stage) {
            return Err(StoreError::BadReference("stage"));
        }
        if before.lifecycle == stage {
            return Ok(before);
        }
        let now = self.now();
        in_tx!(self, |tx| {
            let (_, seq) = bump!(tx, tenant, 0);
            sqlx::query(
                "UPDATE customers SET lifecycle = $3, updated_at = $4, change_seq = $5 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(stage)
            .bind(now.0)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE customers SET lifecycle_locked_until = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .bind(now.0 + STAGE_LOCK_MICROS)
                .execute(&mut *tx)
                .await?;
            let summary = format!("stage {} → {}", before.lifecycle, stage);
            timeline!(tx, tenant, id, now, "stage", "manual", actor, &summary);
            audit!(
                tx,
                self,
                actor,
                "customer.stage",
                "customer",
                id,
                Some(serde_json::json!({"lifecycle": before.lifecycle})),
                Some(serde_json::json!({"lifecycle": stage}))
            );
        });
        self.customer(tenant, DataScope::Tenant, id).await
    }

    pub async fn list_customers(
        &self,
        tenant: TenantId,
        scope: DataScope,
        f: &CustomerFilter,
        page: &PageRequest,
    ) -> Result<Page<Customer>> {
        let q = f.q.as_ref().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
        let like = q.as_ref().map(|s| format!("%{}%", crate::like_escape(s)));
        let phone_ix = q
            .as_deref()
            .and_then(siyu_core::customers::profile::normalize_phone)
            .map(|p| self.sealer.blind_index("phone", &p));
        let sql = format!(
            "SELECT {CUSTOMER_COLS} FROM customers c WHERE c.tenant_id = $1 AND c.status = 'active' AND ($2 OR c.owner_staff_id = $3) \
             AND ($4 IS NULL OR LOWER(c.name) LIKE $4 ESCAPE '\\' OR c.phone_index = $5) \
             AND ($6 IS NULL OR c.lifecycle = $6) AND ($7 IS NULL OR c.owner_staff_id = $7) \
             AND ($8 IS NULL OR EXISTS (SELECT 1 FROM customer_tags t WHERE t.tenant_id = c.tenant_id AND t.customer_id = c.id AND t.tag_id = $8)) \
             AND ($9 IS NULL OR c.id < $9) ORDER BY c.id DESC LIMIT $10"
        );
        let (all, own) = scope_binds(scope);
        let rows: Vec<CustomerRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(all)
            .bind(own)
            .bind(&like)
            .bind(&phone_ix)
            .bind(&f.lifecycle)
            .bind(f.staff.map(|s| s.0))
            .bind(f.tag.map(|t| t.0))
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        let items = rows.into_iter().map(|r| self.customer_from_row(tenant, r)).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |c| c.id.0))
    }

    /// Live customers of a tenant.
    pub async fn count_customers(&self, tenant: TenantId) -> Result<i64> {
        let n: i64 = on_read!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND status = 'active'"
        )
        .bind(tenant.0)
        .fetch_one(p)
        .await?);
        Ok(n)
    }

    /// Customers by index number, in the order given (a page of segment members).
    pub async fn customers_by_nums(&self, tenant: TenantId, scope: DataScope, nums: &[u32]) -> Result<Vec<Customer>> {
        if nums.is_empty() {
            return Ok(vec![]);
        }
        let list = nums.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        // The numbers come from the index (integers), never from user input, so they can be
        // inlined; this keeps one statement for any page size on both backends.
        let sql = format!(
            "SELECT {CUSTOMER_COLS} FROM customers c WHERE c.tenant_id = $1 AND c.status = 'active' \
             AND ($2 OR c.owner_staff_id = $3) AND c.num IN ({list})"
        );
        let (all, own) = scope_binds(scope);
        let rows: Vec<CustomerRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(all).bind(own).fetch_all(p).await?);
        let mut by_num: std::collections::HashMap<i64, Customer> = std::collections::HashMap::new();
        for r in rows {
            let c = self.customer_from_row(tenant, r)?;
            by_num.insert(c.num, c);
        }
        Ok(nums.iter().filter_map(|n| by_num.remove(&(*n as i64))).collect())
    }

    /// Ids of live customers by index number (bulk actions over a segment).
    pub async fn customer_ids_for_nums(&self, tenant: TenantId, nums: &[u32]) -> Result<Vec<CustomerId>> {
        let mut out = Vec::with_capacity(nums.len());
        for chunk in nums.chunks(5_000) {
            let list = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let sql =
                format!("SELECT id FROM customers WHERE tenant_id = $1 AND status = 'active' AND num IN ({list})");
            let ids: Vec<Uuid> = on_read!(self, |p| sqlx::query_scalar(&sql).bind(tenant.0).fetch_all(p).await?);
            out.extend(ids.into_iter().map(CustomerId));
        }
        Ok(out)
    }

    pub async fn customer_timeline(&self, tenant: TenantId, id: CustomerId, limit: i64) -> Result<Vec<TimelineEntry>> {
        let rows: Vec<(Uuid, i64, String, String, String, String)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, at, kind, source, actor, summary FROM customer_timeline WHERE tenant_id = $1 AND customer_id = $2 \
             ORDER BY at DESC, id DESC LIMIT $3"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(limit)
        .fetch_all(p)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, at, kind, source, actor, summary)| TimelineEntry {
                id,
                at: Timestamp(at),
                kind,
                source,
                actor,
                summary,
            })
            .collect())
    }

    pub async fn add_follow_up(
        &self,
        actor: &Actor,
        id: CustomerId,
        staff: Option<StaffId>,
        kind: &str,
        content: &str,
        next_at: Option<Timestamp>,
    ) -> Result<FollowUp> {
        let tenant = actor.tenant_id;
        let c = self.customer(tenant, actor.data_scope, id).await?;
        let now = self.now();
        let f = FollowUp {
            id: Uuid::now_v7(),
            customer_id: c.id,
            staff_id: staff,
            kind: kind.to_string(),
            content: content.to_string(),
            next_at,
            done_at: None,
            created_by: actor.audit_identity().2,
            created_at: now,
        };
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO follow_ups (tenant_id, id, customer_id, staff_id, kind, content, next_at, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(tenant.0)
            .bind(f.id)
            .bind(id.0)
            .bind(staff.map(|s| s.0))
            .bind(kind)
            .bind(content)
            .bind(next_at.map(|t| t.0))
            .bind(&f.created_by)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            timeline!(tx, tenant, id, now, "follow_up", "manual", actor, &format!("follow-up ({kind})"));
            audit!(
                tx,
                self,
                actor,
                "customer.follow_up",
                "customer",
                id,
                None,
                Some(serde_json::json!({"follow_up": f.id, "kind": kind, "next_at": next_at}))
            );
        });
        Ok(f)
    }

    pub async fn follow_ups(&self, tenant: TenantId, id: CustomerId) -> Result<Vec<FollowUp>> {
        let rows: Vec<FollowUpRow> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, customer_id, staff_id, kind, content, next_at, done_at, created_by, created_at FROM follow_ups \
             WHERE tenant_id = $1 AND customer_id = $2 ORDER BY id DESC LIMIT 200"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Open follow-ups whose next action is due by `at`, oldest first (the reminder list).
    pub async fn due_follow_ups(&self, tenant: TenantId, scope: DataScope, at: Timestamp) -> Result<Vec<FollowUp>> {
        let (all, own) = scope_binds(scope);
        let rows: Vec<FollowUpRow> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, customer_id, staff_id, kind, content, next_at, done_at, created_by, created_at FROM follow_ups \
             WHERE tenant_id = $1 AND done_at IS NULL AND next_at IS NOT NULL AND next_at <= $2 AND ($3 OR staff_id = $4) \
             ORDER BY next_at LIMIT 200"
        )
        .bind(tenant.0)
        .bind(at.0)
        .bind(all)
        .bind(own)
        .fetch_all(p)
        .await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn complete_follow_up(&self, actor: &Actor, id: Uuid) -> Result<()> {
        let (all, own) = scope_binds(actor.data_scope);
        let now = self.now();
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE follow_ups SET done_at = $3 WHERE tenant_id = $1 AND id = $2 AND done_at IS NULL AND ($4 OR staff_id = $5)",
            )
            .bind(actor.tenant_id.0)
            .bind(id)
            .bind(now.0)
            .bind(all)
            .bind(own)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            audit!(tx, self, actor, "follow_up.complete", "follow_up", id, None, None);
        });
        Ok(())
    }
}

#[derive(Clone, Debug, Default)]
pub struct CustomerFilter {
    pub q: Option<String>,
    pub lifecycle: Option<String>,
    pub staff: Option<StaffId>,
    pub tag: Option<siyu_core::TagId>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    pub id: Uuid,
    pub at: Timestamp,
    pub kind: String,
    pub source: String,
    pub actor: String,
    pub summary: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FollowUp {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub staff_id: Option<StaffId>,
    pub kind: String,
    pub content: String,
    pub next_at: Option<Timestamp>,
    pub done_at: Option<Timestamp>,
    pub created_by: String,
    pub created_at: Timestamp,
}

#[derive(FromRow)]
struct FollowUpRow {
    id: Uuid,
    customer_id: Uuid,
    staff_id: Option<Uuid>,
    kind: String,
    content: String,
    next_at: Option<i64>,
    done_at: Option<i64>,
    created_by: String,
    created_at: i64,
}

impl From<FollowUpRow> for FollowUp {
    fn from(r: FollowUpRow) -> Self {
        FollowUp {
            id: r.id,
            customer_id: CustomerId(r.customer_id),
            staff_id: r.staff_id.map(StaffId),
            kind: r.kind,
            content: r.content,
            next_at: r.next_at.map(Timestamp),
            done_at: r.done_at.map(Timestamp),
            created_by: r.created_by,
            created_at: Timestamp(r.created_at),
        }
    }
}

/// Automation leaves a manually set stage alone this long (scrm-rules C-32, default 14 days).
pub const STAGE_LOCK_MICROS: i64 = 14 * 86_400 * 1_000_000;

pub(crate) use crate::org::scope_binds;

/// One row of a bulk import: the profile and, optionally, the key the source system knows
/// the customer by (re-importing the same key finds the same customer).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ImportRow {
    pub external_ref: Option<String>,
    pub input: CustomerInput,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportOutcome {
    pub created: u64,
    pub existing: u64,
    /// Customer ids in input order (new or found).
    #[serde(skip)]
    pub ids: Vec<CustomerId>,
}

/// Rows per multi-row INSERT of an import (15 columns: well inside both engines' bind limits).
const IMPORT_CHUNK: usize = 1_000;

impl Store {
    /// Creates many customers in **one** transaction, so an import either lands whole or not
    /// at all. Rows whose `external_ref` (in the `source` namespace) or phone is already known
    /// are matched, not duplicated. Personal data is sealed as in [`Store::create_customer`].
    pub async fn import_customers(&self, actor: &Actor, source: &str, rows: &[ImportRow]) -> Result<ImportOutcome> {
        self.import_customers_with_progress(actor, source, rows, &|_| {}).await
    }

    /// [`Store::import_customers`], calling `progress` with the rows done so far every few
    /// hundred rows (from inside the transaction: it must not touch the store).
    pub async fn import_customers_with_progress(
        &self,
        actor: &Actor,
        source: &str,
        rows: &[ImportRow],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<ImportOutcome> {
        let tenant = actor.tenant_id;
        let existing: Vec<(String, String, Uuid)> = on_read!(self, |p| sqlx::query_as(
            "SELECT kind, value, customer_id FROM customer_identities WHERE tenant_id = $1 \
             AND ((kind = 'external_ref' AND namespace = $2) OR kind = 'phone')"
        )
        .bind(tenant.0)
        .bind(source)
        .fetch_all(p)
        .await?);
        let defs = self.customer_field_defs(tenant).await?;
        let mut known: std::collections::HashMap<(String, String), Uuid> =
            existing.into_iter().map(|(k, v, id)| ((k, v), id)).collect();
        let now = self.now();
        let who = actor.audit_identity().2;
        let mut out = ImportOutcome::default();
        in_tx!(self, |tx| {
            let fresh = rows.len() as i64;
            let (mut num, seq) = bump!(tx, tenant, fresh);
            // Rows are decided in memory (matching, numbers, sealing), then written as
            // multi-row INSERTs: one statement per chunk instead of several per customer.
            let mut people = Vec::new();
            let mut idents: Vec<(&'static str, String, String, CustomerId)> = Vec::new();
            let mut fields = Vec::new();
            for row in rows {
                let phone_index = row.input.phone.as_ref().map(|p| self.sealer.blind_index("phone", p));
                let found = row
                    .external_ref
                    .as_ref()
                    .and_then(|r| known.get(&("external_ref".to_string(), r.clone())))
                    .or_else(|| phone_index.as_ref().and_then(|ix| known.get(&("phone".to_string(), ix.clone()))))
                    .copied();
                if let Some(id) = found {
                    out.existing += 1;
                    out.ids.push(CustomerId(id));
                    continue;
                }
                let id = CustomerId::new();
                if let Some(r) = &row.external_ref {
                    idents.push(("external_ref", source.to_string(), r.clone(), id));
                    known.insert(("external_ref".to_string(), r.clone()), id.0);
                }
                if let Some(ix) = &phone_index {
                    idents.push(("phone", String::new(), ix.clone(), id));
                    known.insert(("phone".to_string(), ix.clone()), id.0);
                }
                for (k, v) in &row.input.fields {
                    let sensitive = defs.iter().any(|(key, _, sens)| key == k && *sens);
                    let (plain, sealed) = if sensitive {
                        (None, Some(self.sealer.seal(&field_aad(tenant, id, k), v)))
                    } else {
                        (Some(v.clone()), None)
                    };
                    fields.push((id, num, k.clone(), plain, sealed));
                }
                let sealed_phone = row.input.phone.as_ref().map(|p| self.sealer.seal(&phone_aad(tenant, id), p));
                people.push((id, num, row, sealed_phone, phone_index));
                num += 1;
                out.created += 1;
                out.ids.push(id);
            }
            for (done, chunk) in people.chunks(IMPORT_CHUNK).enumerate() {
                progress(done * IMPORT_CHUNK);
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO customers (tenant_id, id, num, name, phone_sealed, phone_index, phone_masked, gender, \
                     lifecycle, owner_staff_id, store_id, source, created_at, updated_at, change_seq) ",
                );
                qb.push_values(chunk, |mut b, (id, num, row, sealed, ix)| {
                    b.push_bind(tenant.0)
                        .push_bind(id.0)
                        .push_bind(*num)
                        .push_bind(&row.input.name)
                        .push_bind(sealed)
                        .push_bind(ix)
                        .push_bind(row.input.phone.as_deref().map(mask_phone))
                        .push_bind(row.input.gender.code())
                        .push_bind(row.input.lifecycle.as_deref().unwrap_or(INITIAL_STAGE))
                        .push_bind(row.input.owner_staff_id.map(|s| s.0))
                        .push_bind(row.input.store_id.map(|s| s.0))
                        .push_bind(source)
                        .push_bind(now.0)
                        .push_bind(now.0)
                        .push_bind(seq);
                });
                qb.build().execute(&mut *tx).await?;
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO customer_timeline (tenant_id, customer_id, id, at, kind, source, actor, summary) ",
                );
                qb.push_values(chunk, |mut b, (id, ..)| {
                    b.push_bind(tenant.0)
                        .push_bind(id.0)
                        .push_bind(Uuid::now_v7())
                        .push_bind(now.0)
                        .push_bind("created")
                        .push_bind(source)
                        .push_bind(&who)
                        .push_bind("customer imported");
                });
                qb.build().execute(&mut *tx).await?;
            }
            for chunk in idents.chunks(IMPORT_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO customer_identities (tenant_id, kind, namespace, value, customer_id, source, strength, observed_at, actor) ",
                );
                qb.push_values(chunk, |mut b, (kind, ns, value, id)| {
                    b.push_bind(tenant.0)
                        .push_bind(*kind)
                        .push_bind(ns)
                        .push_bind(value)
                        .push_bind(id.0)
                        .push_bind("import")
                        .push_bind("weak")
                        .push_bind(now.0)
                        .push_bind(&who);
                });
                qb.build().execute(&mut *tx).await?;
            }
            for chunk in fields.chunks(IMPORT_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO customer_fields (tenant_id, customer_id, customer_num, key, value, value_sealed) ",
                );
                qb.push_values(chunk, |mut b, (id, num, k, plain, sealed)| {
                    b.push_bind(tenant.0)
                        .push_bind(id.0)
                        .push_bind(*num)
                        .push_bind(k)
                        .push_bind(plain)
                        .push_bind(sealed);
                });
                qb.build().execute(&mut *tx).await?;
            }
            progress(rows.len());
            audit!(
                tx,
                self,
                actor,
                "customer.import",
                "customers",
                source,
                None,
                Some(serde_json::json!({"rows": rows.len(), "created": out.created, "existing": out.existing}))
            );
        });
        Ok(out)
    }
}

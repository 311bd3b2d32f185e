//! The API's wire shapes. They are kept apart from the domain types so the domain can change
//! without breaking integrations; conversions are the only coupling.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use siyu_core::auth::{Role, Scope};
use siyu_core::org::{Staff, Store, Tenant, User};
use siyu_core::Timestamp;
use siyu_store::audit::AuditEntry;
use siyu_store::auth::ApiToken;
use siyu_store::jobs::Job;

/// RFC 3339 in UTC.
pub fn ts(t: Timestamp) -> String {
    t.to_rfc3339(0)
}

/// An instant the API was sent as RFC 3339, or a validation error naming the field.
pub fn rfc3339(field: &str, v: &str) -> crate::error::ApiResult<Timestamp> {
    Timestamp::parse_rfc3339(v.trim())
        .ok_or_else(|| crate::error::ApiError::validation(field, "invalid_format", format!("{field} must be RFC 3339")))
}

#[derive(Serialize, ToSchema)]
pub struct TenantOut {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub timezone: String,
    pub default_locale: String,
    pub contact_email: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Tenant> for TenantOut {
    fn from(t: Tenant) -> Self {
        TenantOut {
            id: t.id.0,
            slug: t.slug,
            name: t.name,
            timezone: t.timezone,
            default_locale: t.default_locale,
            contact_email: t.contact_email,
            created_at: ts(t.created_at),
            updated_at: ts(t.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "示例品牌", "timezone": "Asia/Shanghai", "default_locale": "zh-CN", "contact_email": "ops@example.com"}))]
pub struct TenantIn {
    pub name: String,
    pub timezone: String,
    /// `zh-CN` or `en`.
    pub default_locale: String,
    pub contact_email: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StoreOut {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// `open` or `closed`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Store> for StoreOut {
    fn from(s: Store) -> Self {
        StoreOut {
            id: s.id.0,
            code: s.code,
            name: s.name,
            city: s.city,
            address: s.address,
            phone: s.phone,
            status: s.status.as_str().into(),
            created_at: ts(s.created_at),
            updated_at: ts(s.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"code": "sh-001", "name": "上海静安店", "city": "上海", "address": "南京西路 1 号", "phone": "021-00000000", "status": "open"}))]
pub struct StoreIn {
    /// 2-32 lower-case letters, digits, `-` or `_`; unique in the tenant.
    pub code: String,
    pub name: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// `open` (default) or `closed`.
    pub status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StaffOut {
    pub id: Uuid,
    pub name: String,
    pub wecom_userid: Option<String>,
    pub mobile: Option<String>,
    pub store_id: Option<Uuid>,
    pub title: Option<String>,
    /// `active` or `departed`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Staff> for StaffOut {
    fn from(s: Staff) -> Self {
        StaffOut {
            id: s.id.0,
            name: s.name,
            wecom_userid: s.wecom_userid,
            mobile: s.mobile,
            store_id: s.store_id.map(|x| x.0),
            title: s.title,
            status: s.status.as_str().into(),
            created_at: ts(s.created_at),
            updated_at: ts(s.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "王芳", "wecom_userid": "wangfang", "mobile": "13800138000", "title": "导购"}))]
pub struct StaffIn {
    pub name: String,
    /// The member's WeCom userid.
    pub wecom_userid: Option<String>,
    /// Mainland mobile number; stored as E.164.
    pub mobile: Option<String>,
    pub store_id: Option<Uuid>,
    pub title: Option<String>,
    /// `active` (default) or `departed`.
    pub status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserOut {
    pub id: Uuid,
    pub login: String,
    pub display_name: String,
    #[schema(value_type = String, example = "operator")]
    pub role: Role,
    pub staff_id: Option<Uuid>,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        UserOut {
            id: u.id.0,
            login: u.login,
            display_name: u.display_name,
            role: u.role,
            staff_id: u.staff_id.map(|x| x.0),
            disabled: u.disabled,
            created_at: ts(u.created_at),
            updated_at: ts(u.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"login": "li.lei", "display_name": "李雷", "role": "operator", "password": "Change-me-2026"}))]
pub struct UserIn {
    pub login: String,
    pub display_name: String,
    /// `owner`, `admin`, `operator` or `guide`.
    #[schema(value_type = String)]
    pub role: Role,
    /// Link to a staff record (required for guides to see their own data).
    pub staff_id: Option<Uuid>,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"display_name": "李雷（运营）"}))]
pub struct UserPatchIn {
    pub display_name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// A staff id to link; `null` to unlink; omit to keep.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub staff_id: Option<Option<Uuid>>,
    pub disabled: Option<bool>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"password": "Another-pass-2026"}))]
pub struct PasswordIn {
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    pub id: Uuid,
    pub name: String,
    /// First characters of the secret.
    pub prefix: String,
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    pub created_by: Option<Uuid>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<ApiToken> for TokenOut {
    fn from(t: ApiToken) -> Self {
        TokenOut {
            id: t.id.0,
            name: t.name,
            prefix: t.prefix,
            scopes: t.scopes,
            created_by: t.created_by.map(|u| u.0),
            created_at: ts(t.created_at),
            expires_at: t.expires_at.map(ts),
            last_used_at: t.last_used_at.map(ts),
            revoked_at: t.revoked_at.map(ts),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "ERP sync", "scopes": ["stores:read", "staff:read"], "expires_in_days": 365}))]
pub struct TokenIn {
    pub name: String,
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    /// 1-3650 days; omit for a token that does not expire.
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct NewTokenOut {
    pub token: TokenOut,
    /// The secret. Shown only in this response; store it now.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditOut {
    pub id: Uuid,
    pub at: String,
    /// `user`, `token` or `system`.
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

impl From<AuditEntry> for AuditOut {
    fn from(a: AuditEntry) -> Self {
        AuditOut {
            id: a.id.0,
            at: ts(a.at),
            actor_kind: a.actor_kind,
            actor_id: a.actor_id,
            actor_name: a.actor_name,
            action: a.action,
            entity_type: a.entity_type,
            entity_id: a.entity_id,
            before: a.before,
            after: a.after,
            request_id: a.request_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct JobOut {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    /// `queued`, `running`, `done` or `dead`.
    pub status: String,
    pub run_at: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl From<Job> for JobOut {
    fn from(j: Job) -> Self {
        JobOut {
            id: j.id.0,
            kind: j.kind,
            payload: j.payload,
            status: j.status.as_str().into(),
            run_at: ts(j.run_at),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            last_error: j.last_error,
            created_at: ts(j.created_at),
            finished_at: j.finished_at.map(ts),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"hold_ms": 0}))]
pub struct ProbeIn {
    /// How long the probe job holds its lease before completing (0-60000 ms).
    #[serde(default)]
    pub hold_ms: u32,
}

#[derive(Serialize, ToSchema)]
pub struct JobRef {
    pub job_id: Uuid,
}

/// One page of a list: pass `next_cursor` back as `cursor` for the next page.
#[derive(Serialize, ToSchema)]
pub struct PageOf<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> PageOf<T> {
    pub fn from<U>(p: siyu_core::paging::Page<U>) -> Self
    where
        T: From<U>,
    {
        PageOf { items: p.items.into_iter().map(T::from).collect(), next_cursor: p.next_cursor }
    }
}

// ---- customers -------------------------------------------------------------------------------

/// RFM scores and segment of the latest scoring.
#[derive(Serialize, ToSchema)]
pub struct RfmOut {
    pub r: u8,
    pub f: u8,
    pub m: u8,
    /// Scores in R, F, M order, e.g. `534`.
    pub code: String,
    /// One of the eight segment keys, e.g. `important_value`.
    pub segment: String,
    /// The segment's Chinese name, e.g. 重要价值客户.
    pub segment_name: String,
}

impl From<&siyu_core::customers::rfm::Scored> for RfmOut {
    fn from(s: &siyu_core::customers::rfm::Scored) -> Self {
        RfmOut {
            r: s.scores.r,
            f: s.scores.f,
            m: s.scores.m,
            code: s.scores.code(),
            segment: siyu_store::customers::segment_key(s.segment).to_string(),
            segment_name: s.segment.zh().to_string(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CustomerOut {
    pub id: Uuid,
    /// Dense per-tenant number (stable; used by segment cursors).
    pub num: i64,
    pub name: String,
    /// Full E.164 number with the `customers:pii` scope, otherwise masked (`+86 138****5678`).
    pub phone: Option<String>,
    /// `unknown`, `male` or `female`.
    #[schema(value_type = String)]
    pub gender: siyu_core::customers::profile::Gender,
    pub lifecycle: String,
    pub owner_staff_id: Option<Uuid>,
    pub store_id: Option<Uuid>,
    /// `manual`, `import`, `wecom` or `order`.
    pub source: String,
    /// Effective orders, lifetime.
    pub orders_count: i64,
    /// Net paid, lifetime, in fen.
    pub spend_fen: i64,
    pub last_order_at: Option<String>,
    pub rfm: Option<RfmOut>,
    /// Custom profile fields; sensitive ones are `***` without `customers:pii`.
    pub fields: std::collections::BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

impl CustomerOut {
    /// `pii`: whether the viewer may see personal data unmasked; `sensitive` lists the
    /// tenant's sensitive field keys.
    pub fn new(c: siyu_store::customers::Customer, pii: bool, sensitive: &[String]) -> Self {
        let fields = c
            .fields
            .into_iter()
            .map(|(k, v)| {
                let v = if !pii && sensitive.contains(&k) { "***".to_string() } else { v };
                (k, v)
            })
            .collect();
        CustomerOut {
            id: c.id.0,
            num: c.num,
            name: c.name,
            phone: if pii { c.phone } else { c.phone_masked },
            gender: c.gender,
            lifecycle: c.lifecycle,
            owner_staff_id: c.owner_staff_id.map(|s| s.0),
            store_id: c.store_id.map(|s| s.0),
            source: c.source,
            orders_count: c.orders_count,
            spend_fen: c.spend_fen,
            last_order_at: c.last_order_at.map(ts),
            rfm: c.rfm.as_ref().map(RfmOut::from),
            fields,
            created_at: ts(c.created_at),
            updated_at: ts(c.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "王小明", "phone": "13812345678", "gender": "male", "lifecycle": "new", "fields": {"city": "上海"}}))]
pub struct CustomerIn {
    pub name: String,
    /// Mainland mobile, or any `+` international number.
    pub phone: Option<String>,
    /// `unknown` (default), `male` or `female`.
    pub gender: Option<String>,
    /// A lifecycle stage key (see `GET /api/v1/customer-stages`); default `new`.
    pub lifecycle: Option<String>,
    pub owner_staff_id: Option<Uuid>,
    pub store_id: Option<Uuid>,
    /// Custom profile fields by key.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
pub struct TagOut {
    pub id: Uuid,
    pub group_id: Uuid,
    pub name: String,
    /// `internal` (siyu only), `corp` (mirrors a WeCom corp tag), `rule` (held by exactly
    /// the customers its rule matches) or `campaign` (given only while its campaign runs).
    pub kind: String,
    pub wecom_tag_id: Option<String>,
    /// Live customers holding the tag.
    pub customers: i64,
    /// A campaign tag's campaign.
    pub campaign: Option<CampaignIo>,
}

/// A campaign tag's campaign: its first and last local day (inclusive), and how many days
/// after the last day its holders lose it (kept when absent).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"first_day": "2026-11-01", "last_day": "2026-11-11", "keep_days": 30}))]
#[serde(deny_unknown_fields)]
pub struct CampaignIo {
    pub first_day: String,
    pub last_day: String,
    pub keep_days: Option<i64>,
}

impl From<siyu_core::customers::campaign::Campaign> for CampaignIo {
    fn from(c: siyu_core::customers::campaign::Campaign) -> Self {
        use siyu_core::time::format_day;
        CampaignIo { first_day: format_day(c.first_day), last_day: format_day(c.last_day), keep_days: c.keep_days }
    }
}

impl CampaignIo {
    pub fn parse(&self) -> Result<siyu_core::customers::campaign::Campaign, crate::error::ApiError> {
        siyu_core::customers::campaign::Campaign::parse(&self.first_day, &self.last_day, self.keep_days)
            .map_err(crate::error::ApiError::Validation)
    }
}

impl From<siyu_store::customers::tags::Tag> for TagOut {
    fn from(t: siyu_store::customers::tags::Tag) -> Self {
        TagOut {
            id: t.id.0,
            group_id: t.group_id.0,
            name: t.name,
            kind: t.kind,
            wecom_tag_id: t.wecom_tag_id,
            customers: t.customers,
            campaign: t.campaign.map(Into::into),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TagGroupOut {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub tags: Vec<TagOut>,
}

impl From<siyu_store::customers::tags::TagGroup> for TagGroupOut {
    fn from(g: siyu_store::customers::tags::TagGroup) -> Self {
        TagGroupOut { id: g.id.0, name: g.name, kind: g.kind, tags: g.tags.into_iter().map(Into::into).collect() }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CustomerDetailOut {
    #[serde(flatten)]
    pub customer: CustomerOut,
    pub tags: Vec<TagOut>,
}

#[derive(Serialize, ToSchema)]
pub struct TimelineOut {
    pub id: Uuid,
    pub at: String,
    /// `created`, `stage`, `tag`, `follow_up`, …
    pub kind: String,
    /// What caused it: `manual`, `rule`, `import`, `wecom`, …
    pub source: String,
    pub actor: String,
    pub summary: String,
}

impl From<siyu_store::customers::TimelineEntry> for TimelineOut {
    fn from(e: siyu_store::customers::TimelineEntry) -> Self {
        TimelineOut { id: e.id, at: ts(e.at), kind: e.kind, source: e.source, actor: e.actor, summary: e.summary }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FollowUpOut {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub staff_id: Option<Uuid>,
    /// `chat`, `call`, `visit` or `note`.
    pub kind: String,
    pub content: String,
    pub next_at: Option<String>,
    pub done_at: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

impl From<siyu_store::customers::FollowUp> for FollowUpOut {
    fn from(f: siyu_store::customers::FollowUp) -> Self {
        FollowUpOut {
            id: f.id,
            customer_id: f.customer_id.0,
            staff_id: f.staff_id.map(|s| s.0),
            kind: f.kind,
            content: f.content,
            next_at: f.next_at.map(ts),
            done_at: f.done_at.map(ts),
            created_by: f.created_by,
            created_at: ts(f.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"kind": "call", "content": "电话回访，下周到店", "next_at": "2026-12-01T10:00:00+08:00"}))]
pub struct FollowUpIn {
    /// `chat`, `call`, `visit` or `note`.
    pub kind: String,
    pub content: String,
    /// When to remind (RFC 3339).
    pub next_at: Option<String>,
    /// Who follows up; defaults to the customer's owner.
    pub staff_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentOut {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// The segment expression (see `POST /api/v1/segments/count`).
    #[schema(value_type = Object)]
    pub expr: siyu_core::customers::segment::Expr,
    /// Members now, within the viewer's scope.
    pub count: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "高价值茶客", "description": "", "expr": {"and": [{"rfm_segment": "important_value"}, {"range": {"metric": "days_since_purchase", "max": 90}}]}}))]
pub struct SegmentIn {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A boolean expression. Leaves: `"all"`, `{"tag": id}`, `{"lifecycle": key}`,
    /// `{"channel": state}`, `{"staff": id}`, `{"store": id}`, `{"rfm_segment": key}`,
    /// `{"rfm_score": {"dim": "r"|"f"|"m", "min": 1, "max": 5}}`, `{"field": {"key", "value"}}`,
    /// `{"range": {"metric": "orders"|"spend_fen"|"days_since_purchase", "min", "max"}}`,
    /// `{"segment": id}`; combined with `{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}`.
    #[schema(value_type = Object)]
    pub expr: siyu_core::customers::segment::Expr,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"expr": {"and": [{"lifecycle": "new"}, {"not": {"range": {"metric": "orders", "min": 1}}}]}}))]
pub struct ExprIn {
    #[schema(value_type = Object)]
    pub expr: siyu_core::customers::segment::Expr,
}

#[derive(Serialize, ToSchema)]
pub struct CountOut {
    /// Members of the expression within the viewer's scope.
    pub count: u64,
    /// All customers within the viewer's scope.
    pub total: u64,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"remove": false, "expr": {"rfm_segment": "important_retain"}}))]
pub struct BulkTagIn {
    /// Untag instead of tag.
    #[serde(default)]
    pub remove: bool,
    /// Tag these customers…
    pub customer_ids: Option<Vec<Uuid>>,
    /// …or every member of this expression (within the viewer's scope).
    #[schema(value_type = Option<Object>)]
    pub expr: Option<siyu_core::customers::segment::Expr>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkTagOut {
    /// Customers addressed.
    pub customers: u64,
    /// Memberships that changed (repeats change nothing).
    pub changed: u64,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "复购意向"}))]
pub struct NameIn {
    pub name: String,
}

/// A new tag group: siyu's own, or (with `corp`) a corp tag group created in WeCom with its
/// first tags, since WeCom keeps no empty group.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "会员等级", "corp": true, "tags": ["银卡", "金卡"]}))]
#[serde(deny_unknown_fields)]
pub struct TagGroupIn {
    pub name: String,
    /// Create the group in WeCom (企业客户标签) instead of in siyu only.
    #[serde(default)]
    pub corp: bool,
    /// The corp group's first tags (at least one, at most 30 characters each).
    pub tags: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"group_id": "0192f0a0-0000-7000-8000-000000000000", "name": "爱喝茶"}))]
pub struct TagIn {
    pub group_id: Uuid,
    pub name: String,
    /// Makes a rule tag: its holders are exactly the customers matching this segment
    /// expression (same shape as a segment's `expr`), refreshed daily and on change; it
    /// cannot be set by hand and may not test other rule tags.
    #[schema(value_type = Option<Object>)]
    pub rule: Option<siyu_core::customers::segment::Expr>,
    /// Makes a campaign tag (活动标签): it can be given only from `first_day` to `last_day`,
    /// and its holders lose it `keep_days` after the campaign (kept when absent).
    pub campaign: Option<CampaignIo>,
}

/// A rule tag's new rule.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"expr": {"range": {"metric": "orders", "min": 2}}}))]
pub struct RuleIn {
    #[schema(value_type = Object)]
    pub expr: siyu_core::customers::segment::Expr,
}

#[derive(Serialize, ToSchema)]
pub struct RuleRefreshOut {
    pub tags: u64,
    pub added: u64,
    pub removed: u64,
    /// Rule tags whose rule could not be evaluated (a deleted segment, a rule tag inside).
    pub skipped: Vec<Uuid>,
}

impl From<siyu_store::customers::tags::RuleRefresh> for RuleRefreshOut {
    fn from(r: siyu_store::customers::tags::RuleRefresh) -> Self {
        RuleRefreshOut {
            tags: r.tags,
            added: r.added,
            removed: r.removed,
            skipped: r.skipped.into_iter().map(|t| t.0).collect(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"stage": "intent"}))]
pub struct StageIn {
    pub stage: String,
}

#[derive(Serialize, ToSchema)]
pub struct StageOut {
    pub key: String,
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"ref_date": "2026-11-22", "window_days": 365}))]
pub struct RfmRunIn {
    /// The reference date (local, `YYYY-MM-DD`); the window ends the day before. Default today.
    pub ref_date: Option<String>,
    /// Window length in days (default 365); `0` means all history.
    pub window_days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RfmRunOut {
    pub ref_date: String,
    /// Customers with at least one effective order ever.
    pub buyers: u64,
    /// Customers scored (effective orders inside the window).
    pub scored: u64,
    /// Customers per segment key.
    pub segments: std::collections::BTreeMap<String, u64>,
    pub stage_changes: u64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"window_days": 365, "centre": "mean", "ref_date": null}))]
pub struct RfmSettingsIo {
    /// Window in days before the reference date; `null` or `0` = all history.
    pub window_days: Option<i64>,
    /// `mean` (high/low against the population mean) or `fixed` (the thresholds below).
    pub centre: String,
    /// Fixed thresholds: R ≤ days, F ≥ orders, M ≥ fen count as high.
    pub r_days: Option<i64>,
    pub f: Option<i64>,
    pub m_fen: Option<i64>,
    /// A fixed reference date `YYYY-MM-DD` for historical data; `null` = today.
    pub ref_date: Option<String>,
}

impl From<siyu_store::customers::metrics::RfmSettings> for RfmSettingsIo {
    fn from(s: siyu_store::customers::metrics::RfmSettings) -> Self {
        use siyu_core::customers::rfm::Centre;
        let (centre, r_days, f, m_fen) = match s.centre {
            Centre::Mean => ("mean", None, None, None),
            Centre::Fixed { r_days, f, m_fen } => ("fixed", Some(r_days), Some(f), Some(m_fen)),
        };
        RfmSettingsIo { window_days: s.window_days, centre: centre.into(), r_days, f, m_fen, ref_date: s.ref_date }
    }
}

impl RfmSettingsIo {
    pub fn validate(&self) -> Result<siyu_store::customers::metrics::RfmSettings, Vec<siyu_core::validate::Violation>> {
        use siyu_core::customers::rfm::Centre;
        let mut v = siyu_core::validate::Violations::new();
        let window_days = match self.window_days {
            None | Some(0) => None,
            Some(w) if (1..=36_500).contains(&w) => Some(w),
            Some(_) => {
                v.push("window_days", "out_of_range", "window_days must be 0 (all history) to 36500");
                None
            }
        };
        let centre = match self.centre.as_str() {
            "mean" => Centre::Mean,
            "fixed" => match (self.r_days, self.f, self.m_fen) {
                (Some(r_days), Some(f), Some(m_fen)) if r_days >= 1 && f >= 1 && m_fen >= 0 => {
                    Centre::Fixed { r_days, f, m_fen }
                }
                _ => {
                    v.push("r_days", "required", "fixed thresholds need r_days ≥ 1, f ≥ 1 and m_fen ≥ 0");
                    Centre::Mean
                }
            },
            _ => {
                v.push("centre", "invalid_value", "centre must be one of: mean, fixed");
                Centre::Mean
            }
        };
        let ref_date = self.ref_date.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_string);
        if ref_date.as_deref().is_some_and(|d| siyu_core::time::parse_day(d).is_none()) {
            v.push("ref_date", "invalid_format", "ref_date must be YYYY-MM-DD");
        }
        v.into_result()?;
        Ok(siyu_store::customers::metrics::RfmSettings { window_days, centre, ref_date })
    }
}

#[derive(Serialize, ToSchema)]
pub struct AlertOut {
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    pub customer_name: Option<String>,
    /// `deleted_by_customer` (the customer deleted the member) or `deleted_by_staff`.
    pub kind: String,
    pub external_userid: String,
    /// The member's WeCom userid.
    pub userid: String,
    pub staff_id: Option<Uuid>,
    /// `event` or `reconcile`.
    pub reason: String,
    pub created_at: String,
    pub resolved_at: Option<String>,
}

impl From<siyu_store::customers::wecom::LossAlert> for AlertOut {
    fn from(a: siyu_store::customers::wecom::LossAlert) -> Self {
        AlertOut {
            id: a.id,
            customer_id: a.customer_id.map(|c| c.0),
            customer_name: a.customer_name,
            kind: a.kind,
            external_userid: a.external_userid,
            userid: a.userid,
            staff_id: a.staff_id.map(|s| s.0),
            reason: a.reason,
            created_at: ts(a.created_at),
            resolved_at: a.resolved_at.map(ts),
        }
    }
}

// ---- transfers -------------------------------------------------------------------------------

/// Plan a transfer (在职转接 or 离职继承) of one member's customers, or of the customer
/// groups they own.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"kind": "onjob", "handover_staff_id": "0190a0c0-0000-7000-8000-000000000001", "message": "您好，之后由我为您服务"}))]
#[serde(deny_unknown_fields)]
pub struct TransferIn {
    /// `onjob` (在职转接: the member still works here) or `resigned` (离职继承).
    pub kind: String,
    /// `customers` (the default) or `groups` (the customer groups the member owns).
    pub subject: Option<String>,
    pub handover_staff_id: Uuid,
    /// Only these customers; all of the member's when absent.
    pub customer_ids: Option<Vec<Uuid>>,
    /// Only these groups (chat ids), for `subject: groups`; all the member owns when absent.
    pub chat_ids: Option<Vec<String>>,
    /// Receivers; every active member when absent or empty. The planner prefers the handover
    /// member's store, then the least-loaded receiver (for groups: the fewest groups owned).
    pub receiver_staff_ids: Option<Vec<Uuid>>,
    /// Shown to customers of in-service transfers (at most 200 characters); the tenant's
    /// default when absent.
    pub message: Option<String>,
    /// The WeCom app to call; the tenant's first when absent.
    pub app_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct TransferOut {
    pub id: Uuid,
    pub app_id: Uuid,
    /// `onjob` or `resigned`.
    pub kind: String,
    /// `customers` (items in `items`) or `groups` (items in `group_items`).
    pub subject: String,
    /// `manual` or `auto` (planned when the member left).
    pub origin: String,
    pub handover_userid: String,
    pub handover_name: Option<String>,
    pub message: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub executed_at: Option<String>,
    /// Items per status: planned, excluded, sending, waiting, done, refused, limit, failed,
    /// rerouted, cancelled.
    pub counts: std::collections::BTreeMap<String, i64>,
}

impl From<siyu_store::customers::transfers::Transfer> for TransferOut {
    fn from(t: siyu_store::customers::transfers::Transfer) -> Self {
        TransferOut {
            id: t.id.0,
            app_id: t.app_id.0,
            kind: t.kind.as_str().into(),
            subject: t.subject.as_str().into(),
            origin: t.origin,
            handover_userid: t.handover_userid,
            handover_name: t.handover_name,
            message: t.message,
            created_by: t.created_by,
            created_at: ts(t.created_at),
            executed_at: t.executed_at.map(ts),
            counts: t.counts,
        }
    }
}

/// One customer's transfer and what WeCom said about it.
#[derive(Serialize, ToSchema)]
pub struct TransferItemOut {
    pub id: Uuid,
    pub transfer_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub customer_name: Option<String>,
    pub external_userid: String,
    pub handover_userid: String,
    pub takeover_userid: Option<String>,
    pub takeover_name: Option<String>,
    /// planned, excluded, sending, waiting, done, refused, limit, failed, rerouted or cancelled.
    pub status: String,
    /// Why it ended where it did: window, no_receiver, same_member, refused, limit,
    /// no_record, errcode, call_failed, not_friend.
    pub reason: Option<String>,
    /// WeCom's errcode for this customer, when it gave one.
    pub errcode: Option<i64>,
    /// The errcode's meaning in words an operator can act on.
    pub explanation: Option<String>,
    pub sent_at: Option<String>,
    /// When a waiting takeover completes unless the customer refuses.
    pub expected_at: Option<String>,
    pub finished_at: Option<String>,
    pub rerouted_to: Option<Uuid>,
    /// The operator may send it again to the same receiver.
    pub can_retry: bool,
    /// The operator may send it to another receiver instead.
    pub can_reroute: bool,
}

impl From<siyu_store::customers::transfers::TransferItem> for TransferItemOut {
    fn from(i: siyu_store::customers::transfers::TransferItem) -> Self {
        let by_window = i.reason.as_deref() == Some(siyu_core::customers::transfer::reason::WINDOW);
        TransferItemOut {
            id: i.id.0,
            transfer_id: i.transfer_id.0,
            customer_id: i.customer_id.map(|c| c.0),
            customer_name: i.customer_name,
            external_userid: i.external_userid,
            handover_userid: i.handover_userid,
            takeover_userid: i.takeover_userid,
            takeover_name: i.takeover_name,
            status: i.status.as_str().into(),
            explanation: i.errcode.filter(|c| *c != 0).map(|c| siyu_wecom::errcode::lookup(c).meaning.to_string()),
            reason: i.reason,
            errcode: i.errcode,
            sent_at: i.sent_at.map(ts),
            expected_at: i.expected_at.map(ts),
            finished_at: i.finished_at.map(ts),
            rerouted_to: i.rerouted_to.map(|r| r.0),
            can_retry: i.status.retryable(),
            can_reroute: i.status.reroutable() && !by_window,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TransferDetailOut {
    #[serde(flatten)]
    pub transfer: TransferOut,
    pub items: Vec<TransferItemOut>,
    pub group_items: Vec<GroupTransferItemOut>,
}

/// One customer group's transfer. WeCom's answer is final for a group: done or failed.
#[derive(Serialize, ToSchema)]
pub struct GroupTransferItemOut {
    pub id: Uuid,
    pub transfer_id: Uuid,
    pub chat_id: String,
    pub chat_name: Option<String>,
    pub member_count: Option<i64>,
    pub handover_userid: String,
    pub takeover_userid: Option<String>,
    pub takeover_name: Option<String>,
    /// planned, excluded, sending, done, failed, rerouted or cancelled.
    pub status: String,
    /// window (moved twice in 90 days), no_receiver, daily_limit (held back: the member pair
    /// moved 300 groups in 24 hours; it goes out later by itself), not_a_group, wrong_kind,
    /// errcode, call_failed.
    pub reason: Option<String>,
    pub errcode: Option<i64>,
    pub explanation: Option<String>,
    pub sent_at: Option<String>,
    pub finished_at: Option<String>,
    pub rerouted_to: Option<Uuid>,
    pub can_retry: bool,
    pub can_reroute: bool,
}

impl From<siyu_store::customers::group_transfers::GroupTransferItem> for GroupTransferItemOut {
    fn from(i: siyu_store::customers::group_transfers::GroupTransferItem) -> Self {
        use siyu_core::customers::group_transfer;
        GroupTransferItemOut {
            id: i.id.0,
            transfer_id: i.transfer_id.0,
            chat_id: i.chat_id,
            chat_name: i.chat_name,
            member_count: i.member_count,
            handover_userid: i.handover_userid,
            takeover_userid: i.takeover_userid,
            takeover_name: i.takeover_name,
            status: i.status.as_str().into(),
            explanation: i.errcode.filter(|c| *c != 0).map(|c| siyu_wecom::errcode::lookup(c).meaning.to_string()),
            can_retry: group_transfer::retryable(i.status, i.reason.as_deref()),
            can_reroute: group_transfer::reroutable(i.status, i.reason.as_deref()),
            reason: i.reason,
            errcode: i.errcode,
            sent_at: i.sent_at.map(ts),
            finished_at: i.finished_at.map(ts),
            rerouted_to: i.rerouted_to.map(|r| r.0),
        }
    }
}

/// Send a customer to another receiver instead.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"takeover_staff_id": "0190a0c0-0000-7000-8000-000000000002"}))]
#[serde(deny_unknown_fields)]
pub struct RerouteIn {
    pub takeover_staff_id: Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct PollOut {
    /// Items whose state changed.
    pub changed: u64,
}

/// What siyu does when a member leaves, and the default message of in-service transfers.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"auto_mode": "plan", "message": "您好，我是您的新顾问"}))]
pub struct TransferSettingsIo {
    /// `off`, `plan` (plan for approval; the default) or `execute` (plan and send).
    pub auto_mode: String,
    pub message: Option<String>,
}

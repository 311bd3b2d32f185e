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

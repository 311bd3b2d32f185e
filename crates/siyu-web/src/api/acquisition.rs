//! Channel live codes (渠道活码) for operators: open a code (siyu creates its members' WeCom
//! contact ways), read it with today's capacity per member and its recent days, pause and
//! resume it. Customers meet it at its landing page, `/l/{tenant}/{id}`. Short links (短链)
//! to the tenant's own pages, with page views and unique visitors, are here too.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::acquisition::live_code::{LiveCodeDraft, SlotDraft};
use siyu_core::acquisition::short_link::ShortLinkDraft;
use siyu_core::auth::Scope;
use siyu_core::{LiveCodeId, ShortLinkId};
use siyu_store::acquisition::{CodeDay, LiveCode, MemberDay};

use crate::api::dto::{rfc3339, ts};
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::AppState;

#[derive(Deserialize, Serialize, ToSchema)]
pub struct SlotIn {
    /// 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u8>,
    /// `HH:MM`, in the tenant's time zone.
    pub from: String,
    pub to: String,
    /// Primary members on duty in this window; empty: all of them.
    #[serde(default)]
    pub staff: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "门店海报", "staff": ["zhangsan", "lisi"], "backup": ["wangwu"], "fallback": "boss",
    "daily_cap": 100, "tag_ids": [], "welcome": "{customer_name}您好，我是{staff_name}，很高兴为您服务",
    "schedule": [{"weekdays": [1, 2, 3, 4, 5], "from": "09:00", "to": "21:00"}]}))]
pub struct LiveCodeIn {
    pub name: String,
    /// Primary pool: WeCom userids.
    pub staff: Vec<String>,
    #[serde(default)]
    pub backup: Vec<String>,
    /// Takes every scan when everyone else is full.
    pub fallback: String,
    /// Customers each member may be given per day [default 100].
    pub daily_cap: Option<i64>,
    /// Customers the whole code may take per day.
    pub code_cap: Option<i64>,
    #[serde(default)]
    pub schedule: Vec<SlotIn>,
    /// Corp tag ids applied on every add.
    #[serde(default)]
    pub tag_ids: Vec<String>,
    /// `{customer_name}` and `{staff_name}` expand.
    pub welcome: Option<String>,
    /// Add without the member accepting [default true].
    pub skip_verify: Option<bool>,
    /// RFC 3339.
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberOut {
    pub userid: String,
    /// The member's single-member QR (WeCom's image URL).
    pub qr_code: String,
}

#[derive(Serialize, ToSchema)]
pub struct MemberDayOut {
    pub userid: String,
    /// Adds plus reservations still waiting for their add.
    pub used: i64,
    pub adds: i64,
    pub over_cap: i64,
    /// Capacity left today (never below 0).
    pub left: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CodeDayOut {
    /// `YYYY-MM-DD`, tenant's zone.
    pub day: String,
    pub scans: i64,
    /// Customers added through the code that day (each once per member).
    pub adds: i64,
    /// Adds of that day kept: not deleted since by the customer or the member.
    pub net_adds: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LiveCodeOut {
    pub id: Uuid,
    /// Carried by every add through this code.
    pub state: String,
    pub name: String,
    /// `syncing`, `active`, `paused` or `failed`.
    pub status: String,
    pub staff: Vec<String>,
    pub backup: Vec<String>,
    pub fallback: String,
    pub daily_cap: i64,
    pub code_cap: Option<i64>,
    pub schedule: Vec<SlotIn>,
    pub tag_ids: Vec<String>,
    pub welcome: Option<String>,
    pub skip_verify: bool,
    pub expires_at: Option<String>,
    /// The public page to print or share: it picks the member for each scan.
    pub landing_path: String,
    pub members: Vec<MemberOut>,
    pub created_at: String,
    /// Per member, today (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub today: Option<Vec<MemberDayOut>>,
    /// The last 30 days (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<CodeDayOut>>,
    /// Today the fallback member has taken scans: everyone else was full or off duty (A-2
    /// step 3; detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow: Option<bool>,
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl LiveCodeOut {
    pub fn of(c: LiveCode, tenant_slug: &str) -> LiveCodeOut {
        let cfg = c.config;
        LiveCodeOut {
            id: c.id.0,
            landing_path: format!("/l/{tenant_slug}/{}", c.id),
            state: c.state,
            name: c.name,
            status: c.status,
            staff: cfg.staff,
            backup: cfg.backup,
            fallback: cfg.fallback,
            daily_cap: cfg.daily_cap,
            code_cap: cfg.code_cap,
            schedule: cfg
                .schedule
                .into_iter()
                .map(|s| SlotIn {
                    weekdays: s.weekdays,
                    from: hhmm(s.from_minute),
                    to: hhmm(s.to_minute),
                    staff: s.staff,
                })
                .collect(),
            tag_ids: cfg.tag_ids,
            welcome: cfg.welcome,
            skip_verify: cfg.skip_verify,
            expires_at: cfg.expires_at.map(ts),
            members: c.members.into_iter().map(|m| MemberOut { userid: m.userid, qr_code: m.qr_code }).collect(),
            created_at: ts(c.created_at),
            today: None,
            days: None,
            overflow: None,
        }
    }

    pub fn with_stats(mut self, today: Vec<MemberDay>, days: Vec<CodeDay>) -> LiveCodeOut {
        let cap = self.daily_cap;
        self.overflow = Some(today.iter().any(|m| m.userid == self.fallback && m.used > 0));
        self.today = Some(
            today
                .into_iter()
                .map(|m| MemberDayOut {
                    left: (cap - m.used).max(0),
                    userid: m.userid,
                    used: m.used,
                    adds: m.adds,
                    over_cap: m.over_cap,
                })
                .collect(),
        );
        self.days = Some(
            days.into_iter()
                .map(|d| CodeDayOut {
                    day: siyu_core::time::format_day(d.day),
                    scans: d.scans,
                    adds: d.adds,
                    net_adds: d.adds - d.lost,
                })
                .collect(),
        );
        self
    }
}

impl LiveCodeIn {
    pub fn draft(self) -> ApiResult<LiveCodeDraft> {
        Ok(LiveCodeDraft {
            name: self.name,
            staff: self.staff,
            backup: self.backup,
            fallback: Some(self.fallback),
            daily_cap: self.daily_cap,
            code_cap: self.code_cap,
            schedule: self
                .schedule
                .into_iter()
                .map(|s| SlotDraft { weekdays: s.weekdays, from: s.from, to: s.to, staff: s.staff })
                .collect(),
            tag_ids: self.tag_ids,
            welcome: self.welcome,
            skip_verify: self.skip_verify,
            expires_at: self.expires_at.as_deref().map(|e| rfc3339("expires_at", e)).transpose()?,
        })
    }
}

/// A code's detail: the code, today's capacity per member and its last 30 days.
pub async fn detail(s: &AppState, tenant: siyu_core::TenantId, id: LiveCodeId) -> ApiResult<LiveCodeOut> {
    let c = s.store.live_code(tenant, id).await?;
    let t = s.store.tenant(tenant).await?;
    let today = s.store.now().local_day(t.offset_hours());
    let members = s.store.live_code_day(tenant, id, today).await?;
    let days = s.store.live_code_days(tenant, id, today, 30).await?;
    Ok(LiveCodeOut::of(c, &t.slug).with_stats(members, days))
}

/// Open a channel live code: siyu records it and creates one WeCom contact way per member,
/// each carrying the code's state.
#[utoipa::path(post, path = "/api/v1/live-codes", tag = "acquisition", request_body = LiveCodeIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = LiveCodeOut), (status = 409, description = "WeCom is not connected", body = Problem),
        (status = 422, body = Problem), (status = 502, description = "WeCom refused a contact way", body = Problem)))]
async fn create(State(s): State<AppState>, auth: Auth, Json(b): Json<LiveCodeIn>) -> ApiResult<Response> {
    auth.require(Scope::CustomersWrite)?;
    let input = b.draft()?.validate(s.store.now())?;
    let c = s.gateway.open_live_code(&auth, &input).await?;
    let out = detail(&s, auth.tenant_id, c.id).await?;
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// Live codes, newest first.
#[utoipa::path(get, path = "/api/v1/live-codes", tag = "acquisition", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<LiveCodeOut>)))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<LiveCodeOut>>> {
    auth.require(Scope::CustomersRead)?;
    let slug = s.store.tenant(auth.tenant_id).await?.slug;
    Ok(axum::Json(s.store.live_codes(auth.tenant_id).await?.into_iter().map(|c| LiveCodeOut::of(c, &slug)).collect()))
}

/// A live code with today's capacity per member and its last 30 days of scans and adds.
#[utoipa::path(get, path = "/api/v1/live-codes/{live_code_id}", tag = "acquisition", params(("live_code_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = LiveCodeOut), (status = 404, body = Problem)))]
async fn get_one(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<LiveCodeOut>> {
    auth.require(Scope::CustomersRead)?;
    Ok(axum::Json(detail(&s, auth.tenant_id, LiveCodeId(id)).await?))
}

/// Pause a code: its landing page says so and gives no member out.
#[utoipa::path(post, path = "/api/v1/live-codes/{live_code_id}/pause", tag = "acquisition", params(("live_code_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = LiveCodeOut), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn pause(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<LiveCodeOut>> {
    auth.require(Scope::CustomersWrite)?;
    s.store.set_live_code_status(&auth, LiveCodeId(id), "paused").await?;
    Ok(axum::Json(detail(&s, auth.tenant_id, LiveCodeId(id)).await?))
}

/// Resume a paused code.
#[utoipa::path(post, path = "/api/v1/live-codes/{live_code_id}/resume", tag = "acquisition", params(("live_code_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = LiveCodeOut), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn resume(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<LiveCodeOut>> {
    auth.require(Scope::CustomersWrite)?;
    s.store.set_live_code_status(&auth, LiveCodeId(id), "active").await?;
    Ok(axum::Json(detail(&s, auth.tenant_id, LiveCodeId(id)).await?))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "双11短信", "target": "/m/acme", "params": [["utm_source", "sms"]]}))]
pub struct ShortLinkIn {
    pub name: String,
    /// A path on siyu of this tenant: `/l/{tenant}/{live_code_id}` or `/m/{tenant}…`.
    pub target: String,
    /// Attribution parameters added to the target, as `[name, value]` pairs.
    #[serde(default)]
    pub params: Vec<(String, String)>,
    /// RFC 3339.
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LinkDayOut {
    pub day: String,
    pub pv: i64,
    pub uv: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ShortLinkOut {
    pub id: Uuid,
    /// Case-sensitive; the public address is `/s/{code}`.
    pub code: String,
    pub path: String,
    pub name: String,
    pub target: String,
    pub params: Vec<(String, String)>,
    pub expires_at: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    pub pv: i64,
    pub uv: i64,
    pub created_at: String,
    /// The last 30 days (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<LinkDayOut>>,
}

impl From<siyu_store::acquisition::ShortLink> for ShortLinkOut {
    fn from(l: siyu_store::acquisition::ShortLink) -> Self {
        ShortLinkOut {
            id: l.id.0,
            path: format!("/s/{}", l.code),
            code: l.code,
            name: l.name,
            target: l.config.target,
            params: l.config.params,
            expires_at: l.config.expires_at.map(ts),
            status: l.status,
            pv: l.pv,
            uv: l.uv,
            created_at: ts(l.created_at),
            days: None,
        }
    }
}

async fn link_detail(s: &AppState, tenant: siyu_core::TenantId, id: ShortLinkId) -> ApiResult<ShortLinkOut> {
    let l = s.store.short_link(tenant, id).await?;
    let (today, _) = crate::customers::today(s, tenant).await?;
    let days = s.store.short_link_days(tenant, id, today, 30).await?;
    let mut out: ShortLinkOut = l.into();
    out.days = Some(
        days.into_iter().map(|d| LinkDayOut { day: siyu_core::time::format_day(d.day), pv: d.pv, uv: d.uv }).collect(),
    );
    Ok(out)
}

/// Create a short link to one of this tenant's own pages (a live code's landing page or the
/// mall); any other target is refused, so a link is never an open redirect.
#[utoipa::path(post, path = "/api/v1/short-links", tag = "acquisition", request_body = ShortLinkIn,
    security(("bearer" = []), ("session" = [])), responses((status = 201, body = ShortLinkOut), (status = 422, body = Problem)))]
async fn create_link(State(s): State<AppState>, auth: Auth, Json(b): Json<ShortLinkIn>) -> ApiResult<Response> {
    auth.require(Scope::CustomersWrite)?;
    let slug = s.store.tenant(auth.tenant_id).await?.slug;
    let draft = ShortLinkDraft {
        name: b.name,
        target: b.target,
        params: b.params,
        expires_at: b.expires_at.as_deref().map(|e| rfc3339("expires_at", e)).transpose()?,
    };
    let input = draft.validate(&slug, s.store.now())?;
    let l = s.store.create_short_link(&auth, &input).await?;
    let out = link_detail(&s, auth.tenant_id, l.id).await?;
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// Short links, newest first, with their page views and unique visitors.
#[utoipa::path(get, path = "/api/v1/short-links", tag = "acquisition", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<ShortLinkOut>)))]
async fn list_links(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<ShortLinkOut>>> {
    auth.require(Scope::CustomersRead)?;
    Ok(axum::Json(s.store.short_links(auth.tenant_id).await?.into_iter().map(Into::into).collect()))
}

/// A short link with 30 days of page views and unique visitors.
#[utoipa::path(get, path = "/api/v1/short-links/{short_link_id}", tag = "acquisition", params(("short_link_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = ShortLinkOut), (status = 404, body = Problem)))]
async fn get_link(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<ShortLinkOut>> {
    auth.require(Scope::CustomersRead)?;
    Ok(axum::Json(link_detail(&s, auth.tenant_id, ShortLinkId(id)).await?))
}

/// Disable a link: it answers 410 from now on.
#[utoipa::path(post, path = "/api/v1/short-links/{short_link_id}/disable", tag = "acquisition", params(("short_link_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = ShortLinkOut), (status = 404, body = Problem)))]
async fn disable_link(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<ShortLinkOut>> {
    auth.require(Scope::CustomersWrite)?;
    s.store.set_short_link_status(&auth, ShortLinkId(id), "disabled").await?;
    Ok(axum::Json(link_detail(&s, auth.tenant_id, ShortLinkId(id)).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(create_link, list_links))
        .routes(routes!(get_link))
        .routes(routes!(disable_link))
}

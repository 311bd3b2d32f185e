//! `/api/v1/wecom/…`: connection settings, the connection check, the callback inbox and the
//! typed events.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::distributions::{Alphanumeric, DistString};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::wecom::{validate_secret, AppInput};
use siyu_core::{InboxId, WecomAppId};
use siyu_store::wecom::{InboxFilter, InboxItem, InboxStatus, WecomApp, WecomEventRec};
use siyu_wecom::client::WECOM_BASE_URL;

use crate::api::dto::{ts, PageOf};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json, PageParams, Query};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct WecomAppOut {
    pub id: Uuid,
    pub name: String,
    pub corp_id: String,
    pub agent_id: String,
    pub base_url: String,
    /// Path of this app's callback URL on siyu; prefix it with siyu's public address.
    pub callback_path: String,
    pub callback_verified_at: Option<String>,
    pub last_event_at: Option<String>,
    pub last_check_at: Option<String>,
    pub last_check: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn callback_path(a: &WecomApp) -> String {
    format!("/wecom/callback/{}/{}", a.tenant_id, a.id)
}

impl From<WecomApp> for WecomAppOut {
    fn from(a: WecomApp) -> Self {
        WecomAppOut {
            callback_path: callback_path(&a),
            id: a.id.0,
            name: a.name,
            corp_id: a.corp_id,
            agent_id: a.agent_id,
            base_url: a.base_url,
            callback_verified_at: a.callback_verified_at.map(ts),
            last_event_at: a.last_event_at.map(ts),
            last_check_at: a.last_check_at.map(ts),
            last_check: a.last_check,
            created_at: ts(a.created_at),
            updated_at: ts(a.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "客户联系", "corp_id": "ww1436e0e65a779aee", "agent_id": "1000002", "secret": "app-secret-from-wecom-admin"}))]
pub struct WecomAppIn {
    pub name: String,
    pub corp_id: String,
    /// The self-built app's AgentId.
    pub agent_id: String,
    /// The app's Secret. Required when creating; omit to keep the stored one.
    pub secret: Option<String>,
    /// API base URL [default: WeCom's]; a sandbox's for evaluation.
    pub base_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CallbackSettingsOut {
    pub callback_path: String,
    /// Enter as Token in WeCom's callback settings.
    pub token: String,
    /// Enter as EncodingAESKey.
    pub encoding_aes_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct CheckItemOut {
    /// corp_id, secret, visibility, customer_contact, callback, receiving.
    pub key: String,
    /// ok, failed or pending.
    pub status: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct InboxOut {
    pub id: Uuid,
    pub app_id: Uuid,
    pub received_at: String,
    pub event_kind: String,
    pub entity: String,
    /// pending, processed, failed or dead.
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub processed_at: Option<String>,
    /// The decrypted callback.
    pub payload: String,
    pub dedupe_key: String,
}

impl From<InboxItem> for InboxOut {
    fn from(i: InboxItem) -> Self {
        InboxOut {
            id: i.id.0,
            app_id: i.app_id.0,
            received_at: ts(i.received_at),
            event_kind: i.event_kind,
            entity: i.entity,
            status: i.status.as_str().into(),
            attempts: i.attempts,
            last_error: i.last_error,
            processed_at: i.processed_at.map(ts),
            payload: i.payload,
            dedupe_key: i.dedupe_key,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WecomEventOut {
    pub id: Uuid,
    pub app_id: Uuid,
    pub inbox_id: Uuid,
    /// e.g. change_external_contact.add
    pub kind: String,
    /// e.g. contact:wmXXXX or chat:wrXXXX
    pub entity: String,
    pub payload: serde_json::Value,
    pub occurred_at: String,
}

impl From<WecomEventRec> for WecomEventOut {
    fn from(e: WecomEventRec) -> Self {
        WecomEventOut {
            id: e.id.0,
            app_id: e.app_id.0,
            inbox_id: e.inbox_id.0,
            kind: e.kind,
            entity: e.entity,
            payload: e.payload,
            occurred_at: ts(e.occurred_at),
        }
    }
}

/// A fresh callback Token (32 letters and digits) and EncodingAESKey (43 base64 characters).
pub fn new_callback_keys() -> (String, String) {
    use base64::Engine;
    let token = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    let key = base64::engine::general_purpose::STANDARD.encode(k).trim_end_matches('=').to_string();
    (token, key)
}

/// The secret to store on an update: a new one, or none to keep the stored one. Pointing the
/// app at another API address requires the Secret again, so a stolen settings permission
/// cannot send the stored Secret to a server of the thief's choosing.
pub fn secret_for_update(current: &WecomApp, input: &AppInput, secret: Option<&str>) -> ApiResult<Option<String>> {
    match secret.filter(|x| !x.trim().is_empty()) {
        Some(x) => Ok(Some(validate_secret(x)?)),
        None if input.base_url != current.base_url => {
            Err(ApiError::validation("secret", "required", "enter the Secret again when changing the API base URL"))
        }
        None => Ok(None),
    }
}

pub fn app_input(b: &WecomAppIn) -> ApiResult<AppInput> {
    Ok(AppInput::validate(
        &b.name,
        &b.corp_id,
        &b.agent_id,
        b.base_url.as_deref().filter(|u| !u.trim().is_empty()).unwrap_or(WECOM_BASE_URL),
    )?)
}

/// Configured WeCom apps.
#[utoipa::path(get, path = "/api/v1/wecom/apps", tag = "wecom", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<WecomAppOut>), (status = 403, body = Problem)))]
async fn list_apps(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<WecomAppOut>>> {
    auth.require(Scope::SettingsRead)?;
    Ok(axum::Json(s.store.list_wecom_apps(auth.tenant_id).await?.into_iter().map(Into::into).collect()))
}

/// Connect a WeCom self-built app. Generates the callback Token and EncodingAESKey.
#[utoipa::path(post, path = "/api/v1/wecom/apps", tag = "wecom", request_body = WecomAppIn, security(("bearer" = []), ("session" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for repeats")),
    responses((status = 201, body = WecomAppOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_app(State(s): State<AppState>, auth: Auth, Json(b): Json<WecomAppIn>) -> ApiResult<Response> {
    auth.require(Scope::SettingsWrite)?;
    let input = app_input(&b)?;
    let secret = validate_secret(b.secret.as_deref().unwrap_or(""))?;
    let (token, key) = new_callback_keys();
    let app = s.store.create_wecom_app(&auth, &input, &secret, &token, &key).await?;
    s.gateway.schedule_reconcile(auth.tenant_id, app.id, true).await?;
    Ok((StatusCode::CREATED, axum::Json(WecomAppOut::from(app))).into_response())
}

/// One WeCom app.
#[utoipa::path(get, path = "/api/v1/wecom/apps/{app_id}", tag = "wecom", params(("app_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = WecomAppOut), (status = 404, body = Problem)))]
async fn get_app(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<WecomAppOut>> {
    auth.require(Scope::SettingsRead)?;
    Ok(axum::Json(s.store.wecom_app(auth.tenant_id, WecomAppId(id)).await?.into()))
}

/// Change a WeCom app's settings; omit `secret` to keep it.
#[utoipa::path(put, path = "/api/v1/wecom/apps/{app_id}", tag = "wecom", params(("app_id" = Uuid, Path)), request_body = WecomAppIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = WecomAppOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_app(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<WecomAppIn>,
) -> ApiResult<axum::Json<WecomAppOut>> {
    auth.require(Scope::SettingsWrite)?;
    let input = app_input(&b)?;
    let current = s.store.wecom_app(auth.tenant_id, WecomAppId(id)).await?;
    let secret = secret_for_update(&current, &input, b.secret.as_deref())?;
    let app = s.store.update_wecom_app(&auth, WecomAppId(id), &input, secret.as_deref()).await?;
    s.gateway.forget(auth.tenant_id, app.id);
    Ok(axum::Json(app.into()))
}

/// The callback Token and EncodingAESKey to enter in WeCom's admin console.
#[utoipa::path(get, path = "/api/v1/wecom/apps/{app_id}/callback", tag = "wecom", params(("app_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = CallbackSettingsOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn callback_settings(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<CallbackSettingsOut>> {
    auth.require(Scope::SettingsWrite)?;
    let app = s.store.wecom_app(auth.tenant_id, WecomAppId(id)).await?;
    let c = s.store.wecom_credentials(auth.tenant_id, app.id).await?;
    Ok(axum::Json(CallbackSettingsOut {
        callback_path: callback_path(&app),
        token: c.callback_token,
        encoding_aes_key: c.encoding_aes_key,
    }))
}

/// Test the connection item by item; each failure says how to fix it.
#[utoipa::path(post, path = "/api/v1/wecom/apps/{app_id}/check", tag = "wecom", params(("app_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<CheckItemOut>), (status = 404, body = Problem)))]
async fn check_app(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Vec<CheckItemOut>>> {
    auth.require(Scope::SettingsWrite)?;
    let items = s.gateway.check(auth.tenant_id, WecomAppId(id)).await?;
    Ok(axum::Json(
        items
            .into_iter()
            .map(|i| CheckItemOut { key: i.key.into(), status: i.status.into(), message: i.message })
            .collect(),
    ))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// pending, processed, failed or dead.
    pub status: Option<String>,
    pub app_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Received callbacks, newest first.
#[utoipa::path(get, path = "/api/v1/wecom/inbox", tag = "wecom", params(InboxQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<InboxOut>), (status = 400, body = Problem)))]
async fn list_inbox(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<InboxQuery>,
) -> ApiResult<axum::Json<PageOf<InboxOut>>> {
    auth.require(Scope::SettingsRead)?;
    let page = PageParams { limit: q.limit, cursor: q.cursor.clone() }.request()?;
    let status = match q.status.as_deref().filter(|x| !x.is_empty()) {
        None => None,
        Some(x) => Some(InboxStatus::parse(x).ok_or_else(|| ApiError::BadRequest {
            code: "invalid_query",
            field: Some("status".into()),
            message: "status must be one of: pending, processed, failed, dead".into(),
        })?),
    };
    let f = InboxFilter { status, app_id: q.app_id.map(WecomAppId) };
    Ok(axum::Json(PageOf::from(s.store.list_inbox(auth.tenant_id, &f, &page).await?)))
}

/// One received callback.
#[utoipa::path(get, path = "/api/v1/wecom/inbox/{inbox_id}", tag = "wecom", params(("inbox_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = InboxOut), (status = 404, body = Problem)))]
async fn get_inbox(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<InboxOut>> {
    auth.require(Scope::SettingsRead)?;
    Ok(axum::Json(s.store.inbox_item(auth.tenant_id, InboxId(id)).await?.into()))
}

/// Process a failed or dead callback again.
#[utoipa::path(post, path = "/api/v1/wecom/inbox/{inbox_id}/retry", tag = "wecom", params(("inbox_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 202), (status = 404, body = Problem), (status = 409, description = "Already processed", body = Problem)))]
async fn retry_inbox(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    auth.require(Scope::SettingsWrite)?;
    s.store.retry_inbox_item(auth.tenant_id, InboxId(id)).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events of this entity, e.g. `contact:wmXXXX`.
    pub entity: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Typed WeCom events, newest first.
#[utoipa::path(get, path = "/api/v1/wecom/events", tag = "wecom", params(EventQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<WecomEventOut>), (status = 400, body = Problem)))]
async fn list_events(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<EventQuery>,
) -> ApiResult<axum::Json<PageOf<WecomEventOut>>> {
    auth.require(Scope::SettingsRead)?;
    let page = PageParams { limit: q.limit, cursor: q.cursor.clone() }.request()?;
    Ok(axum::Json(PageOf::from(
        s.store.list_wecom_events(auth.tenant_id, q.entity.as_deref().filter(|e| !e.is_empty()), &page).await?,
    )))
}

#[derive(Serialize, ToSchema)]
pub struct SyncStateOut {
    pub app_id: Uuid,
    /// staff, relationships, corp_tags or groups.
    pub entity: String,
    pub last_run_at: Option<String>,
    pub last_ok_at: Option<String>,
    /// Entities WeCom listed in the last pass.
    pub seen: i64,
    /// Entities the last pass had to repair (each a callback siyu missed or that lagged).
    pub drift: i64,
    pub total_drift: i64,
    pub last_error: Option<String>,
}

/// Sync health per app and entity.
#[utoipa::path(get, path = "/api/v1/wecom/sync", tag = "wecom", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<SyncStateOut>), (status = 403, body = Problem)))]
async fn sync_states(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<SyncStateOut>>> {
    auth.require(Scope::SettingsRead)?;
    let v = s.store.wecom_sync_states(auth.tenant_id).await?;
    Ok(axum::Json(
        v.into_iter()
            .map(|x| SyncStateOut {
                app_id: x.app_id.0,
                entity: x.entity,
                last_run_at: x.last_run_at.map(ts),
                last_ok_at: x.last_ok_at.map(ts),
                seen: x.seen,
                drift: x.drift,
                total_drift: x.total_drift,
                last_error: x.last_error,
            })
            .collect(),
    ))
}

/// Reconcile an app with WeCom now (it also runs hourly).
#[utoipa::path(post, path = "/api/v1/wecom/apps/{app_id}/reconcile", tag = "wecom", params(("app_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 202, body = crate::api::dto::JobRef), (status = 404, body = Problem)))]
async fn reconcile_now(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<Response> {
    auth.require(Scope::SettingsWrite)?;
    let app = s.store.wecom_app(auth.tenant_id, WecomAppId(id)).await?;
    let job = s.gateway.schedule_reconcile(auth.tenant_id, app.id, true).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(crate::api::dto::JobRef { job_id: job.0 })).into_response())
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct RelationshipQuery {
    /// A staff member's WeCom userid.
    pub userid: Option<String>,
    pub external_userid: Option<String>,
    /// half, active, deleted_by_staff, deleted_by_customer, transferred_out or removed.
    pub status: Option<String>,
    /// At most this many, newest first (1-200, default 50).
    pub limit: Option<u32>,
}

/// Staff–customer relationships as synced from WeCom.
#[utoipa::path(get, path = "/api/v1/wecom/relationships", tag = "wecom", params(RelationshipQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<serde_json::Value>), (status = 400, body = Problem)))]
async fn relationships(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<RelationshipQuery>,
) -> ApiResult<axum::Json<Vec<siyu_store::wecom_sync::Relationship>>> {
    auth.require(Scope::SettingsRead)?;
    let page = PageParams { limit: q.limit, cursor: None }.request()?;
    if let Some(st) = q.status.as_deref().filter(|x| !siyu_store::wecom_sync::REL_STATUSES.contains(x)) {
        return Err(ApiError::BadRequest {
            code: "invalid_query",
            field: Some("status".into()),
            message: format!("unknown status {st}"),
        });
    }
    let f = siyu_store::wecom_sync::RelationshipFilter {
        userid: q.userid.clone(),
        external_userid: q.external_userid.clone(),
        status: q.status.clone(),
    };
    Ok(axum::Json(s.store.list_wecom_relationships(auth.tenant_id, &f, &page).await?.items))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_apps, create_app))
        .routes(routes!(get_app, update_app))
        .routes(routes!(callback_settings))
        .routes(routes!(check_app))
        .routes(routes!(list_inbox))
        .routes(routes!(get_inbox))
        .routes(routes!(retry_inbox))
        .routes(routes!(list_events))
        .routes(routes!(sync_states))
        .routes(routes!(reconcile_now))
        .routes(routes!(relationships))
}

//! Administration over the API: console users and roles, API tokens, the audit log and jobs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::{check_password_policy, Actor, ActorKind, Role, Scope};
use siyu_core::jobs::JobStatus;
use siyu_core::validate::Violations;
use siyu_core::{ApiTokenId, JobId, StaffId, UserId};
use siyu_store::audit::AuditFilter;
use siyu_store::jobs::{JobFilter, NewJob};
use siyu_store::org::{NewUser, UserFilter, UserPatch};
use siyu_store::secrets::hash_password;

use super::dto::*;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json, PageParams, Query};
use crate::AppState;

/// The most powerful role `actor` may hand out: users by their own role, tokens as admins.
pub fn may_grant(actor: &Actor, role: Role) -> bool {
    match &actor.kind {
        ActorKind::User { role: mine, .. } => mine.may_grant(role),
        ActorKind::Token { .. } => Role::Admin.may_grant(role),
        ActorKind::System => true,
    }
}

fn forbid_role(field: &str, role: Role) -> ApiError {
    ApiError::ForbiddenField {
        field: field.into(),
        message: format!("you cannot grant or change the {} role", role.as_str()),
    }
}

/// The user `id`, if `actor` may manage them (an admin cannot touch an owner).
pub async fn manageable_user(s: &AppState, actor: &Actor, id: UserId) -> ApiResult<siyu_core::org::User> {
    let target = s.store.user(actor.tenant_id, id).await?;
    if !may_grant(actor, target.role) {
        return Err(forbid_role("role", target.role));
    }
    Ok(target)
}

async fn hash(pw: String) -> ApiResult<String> {
    if let Err(p) = check_password_policy(&pw) {
        return Err(ApiError::validation("password", "weak_password", p.to_string()));
    }
    tokio::task::spawn_blocking(move || hash_password(&pw)).await.map_err(|e| ApiError::Internal(e.to_string()))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Search in login and display name.
    pub q: Option<String>,
    /// `owner`, `admin`, `operator` or `guide`.
    pub role: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// List console users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<UserOut>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_users(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<UserQuery>,
) -> ApiResult<axum::Json<PageOf<UserOut>>> {
    auth.require(Scope::UsersRead)?;
    let page = PageParams { limit: q.limit, cursor: q.cursor.clone() }.request()?;
    let role = match q.role.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(Role::parse(r).ok_or_else(|| ApiError::BadRequest {
            code: "invalid_query",
            field: Some("role".into()),
            message: "role must be one of: owner, admin, operator, guide".into(),
        })?),
    };
    let f = UserFilter { q: q.q.clone(), role };
    Ok(axum::Json(PageOf::from(s.store.list_users(auth.tenant_id, &f, &page).await?)))
}

/// Create a console user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserIn, security(("bearer" = []), ("session" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for repeats")),
    responses((status = 201, body = UserOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_user(State(s): State<AppState>, auth: Auth, Json(b): Json<UserIn>) -> ApiResult<Response> {
    auth.require(Scope::UsersWrite)?;
    let mut v = Violations::new();
    let login = v.login("login", &b.login);
    let display_name = v.text("display_name", &b.display_name, 64);
    v.into_result()?;
    if !may_grant(&auth, b.role) {
        return Err(forbid_role("role", b.role));
    }
    let password_hash = hash(b.password).await?;
    let u = s
        .store
        .create_user(
            &auth,
            NewUser { login, display_name, role: b.role, staff_id: b.staff_id.map(StaffId), password_hash },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(UserOut::from(u))).into_response())
}

/// One console user.
#[utoipa::path(get, path = "/api/v1/users/{user_id}", tag = "users", params(("user_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = UserOut), (status = 404, body = Problem)))]
async fn get_user(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<UserOut>> {
    auth.require(Scope::UsersRead)?;
    Ok(axum::Json(s.store.user(auth.tenant_id, UserId(id)).await?.into()))
}

/// Change a user's name, role, staff link or disabled flag. Changing the role or disabling
/// ends the user's sessions.
#[utoipa::path(patch, path = "/api/v1/users/{user_id}", tag = "users", params(("user_id" = Uuid, Path)), request_body = UserPatchIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = UserOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn patch_user(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<UserPatchIn>,
) -> ApiResult<axum::Json<UserOut>> {
    auth.require(Scope::UsersWrite)?;
    let target = manageable_user(&s, &auth, UserId(id)).await?;
    if let Some(r) = b.role {
        if !may_grant(&auth, r) {
            return Err(forbid_role("role", r));
        }
    }
    let mut v = Violations::new();
    let display_name = b.display_name.as_deref().map(|d| v.text("display_name", d, 64));
    v.into_result()?;
    let patch =
        UserPatch { display_name, role: b.role, staff_id: b.staff_id.map(|o| o.map(StaffId)), disabled: b.disabled };
    Ok(axum::Json(s.store.update_user(&auth, target.id, &patch).await?.into()))
}

/// Set a user's password; ends their sessions.
#[utoipa::path(post, path = "/api/v1/users/{user_id}/password", tag = "users", params(("user_id" = Uuid, Path)), request_body = PasswordIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_password(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<PasswordIn>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::UsersWrite)?;
    let target = manageable_user(&s, &auth, UserId(id)).await?;
    let h = hash(b.password).await?;
    s.store.set_password(&auth, target.id, &h).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List API tokens (secrets are never shown again).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(PageParams), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<TokenOut>), (status = 403, body = Problem)))]
async fn list_tokens(
    State(s): State<AppState>,
    auth: Auth,
    Query(p): Query<PageParams>,
) -> ApiResult<axum::Json<PageOf<TokenOut>>> {
    auth.require(Scope::TokensManage)?;
    Ok(axum::Json(PageOf::from(s.store.list_tokens(auth.tenant_id, &p.request()?).await?)))
}

/// Validates a token request against what the actor may delegate.
pub fn check_token_request(auth: &Actor, name: &str, scopes: &[Scope], days: Option<u32>) -> ApiResult<String> {
    let mut v = Violations::new();
    let name = v.text("name", name, 64);
    if scopes.is_empty() {
        v.push("scopes", "required", "choose at least one scope");
    }
    for s in scopes {
        if !s.grantable_to_token() {
            v.push("scopes", "invalid_value", format!("{} cannot be granted to a token", s.as_str()));
        } else if !auth.can(*s) {
            v.push("scopes", "not_held", format!("you do not hold {} yourself", s.as_str()));
        }
    }
    if let Some(d) = days {
        if !(1..=3650).contains(&d) {
            v.push("expires_in_days", "out_of_range", "expires_in_days must be between 1 and 3650");
        }
    }
    v.into_result()?;
    Ok(name)
}

/// Create an API token. The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenIn, security(("bearer" = []), ("session" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for repeats")),
    responses((status = 201, body = NewTokenOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_token(State(s): State<AppState>, auth: Auth, Json(b): Json<TokenIn>) -> ApiResult<Response> {
    auth.require(Scope::TokensManage)?;
    let name = check_token_request(&auth, &b.name, &b.scopes, b.expires_in_days)?;
    let mut scopes = b.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let expires = b.expires_in_days.map(|d| s.store.now().plus(std::time::Duration::from_secs(d as u64 * 86_400)));
    let (tok, secret) = s.store.create_token(&auth, &name, &scopes, expires).await?;
    Ok((StatusCode::CREATED, axum::Json(NewTokenOut { token: tok.into(), secret })).into_response())
}

/// Revoke an API token. Revoking twice is harmless.
#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "tokens", params(("token_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TokenOut), (status = 404, body = Problem)))]
async fn revoke_token(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<TokenOut>> {
    auth.require(Scope::TokensManage)?;
    Ok(axum::Json(s.store.revoke_token(&auth, ApiTokenId(id)).await?.into()))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// e.g. `store`, `staff`, `user`, `api_token`, `tenant`.
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<String>,
    /// Action prefix, e.g. `store.` or `user.update`.
    pub action: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl AuditQuery {
    pub fn filter(&self) -> AuditFilter {
        let f = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
        AuditFilter {
            entity_type: f(&self.entity_type),
            entity_id: f(&self.entity_id),
            actor_id: f(&self.actor_id),
            action_prefix: f(&self.action),
        }
    }
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<AuditOut>), (status = 403, body = Problem)))]
async fn list_audit(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<PageOf<AuditOut>>> {
    auth.require(Scope::AuditRead)?;
    let page = PageParams { limit: q.limit, cursor: q.cursor.clone() }.request()?;
    Ok(axum::Json(PageOf::from(s.store.list_audit(auth.tenant_id, &q.filter(), &page).await?)))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `queued`, `running`, `done` or `dead`.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The tenant's background jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<JobOut>), (status = 403, body = Problem)))]
async fn list_jobs(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<JobQuery>,
) -> ApiResult<axum::Json<PageOf<JobOut>>> {
    auth.require(Scope::JobsRead)?;
    let page = PageParams { limit: q.limit, cursor: q.cursor.clone() }.request()?;
    let status = match q.status.as_deref().filter(|x| !x.is_empty()) {
        None => None,
        Some(x) => Some(JobStatus::parse(x).ok_or_else(|| ApiError::BadRequest {
            code: "invalid_query",
            field: Some("status".into()),
            message: "status must be one of: queued, running, done, dead".into(),
        })?),
    };
    let f = JobFilter { status, kind: q.kind.clone().filter(|k| !k.is_empty()) };
    Ok(axum::Json(PageOf::from(s.store.list_jobs(auth.tenant_id, &f, &page).await?)))
}

async fn tenant_job(s: &AppState, auth: &Auth, id: Uuid) -> ApiResult<siyu_store::jobs::Job> {
    let j = s.store.job(JobId(id)).await?;
    // Jobs are keyed by id alone; tenancy is checked here so another tenant's job is a 404.
    if j.tenant_id != Some(auth.tenant_id) {
        return Err(ApiError::NotFound);
    }
    Ok(j)
}

/// One background job.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}", tag = "jobs", params(("job_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = JobOut), (status = 404, body = Problem)))]
async fn get_job(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<JobOut>> {
    auth.require(Scope::JobsRead)?;
    Ok(axum::Json(tenant_job(&s, &auth, id).await?.into()))
}

/// Put a dead job back in the queue.
#[utoipa::path(post, path = "/api/v1/jobs/{job_id}/retry", tag = "jobs", params(("job_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = JobOut), (status = 404, body = Problem), (status = 409, description = "The job is not dead", body = Problem)))]
async fn retry_job(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<JobOut>> {
    auth.require(Scope::SettingsWrite)?;
    let j = tenant_job(&s, &auth, id).await?;
    if j.status != JobStatus::Dead {
        return Err(ApiError::Conflict {
            code: "job_not_dead",
            field: None,
            message: format!("only dead jobs can be retried; this one is {}", j.status.as_str()),
        });
    }
    s.store.retry_dead_job(auth.tenant_id, j.id).await?;
    Ok(axum::Json(s.store.job(j.id).await?.into()))
}

/// Enqueue a probe job, to check that workers are running. It completes after `hold_ms`.
#[utoipa::path(post, path = "/api/v1/jobs/probe", tag = "jobs", request_body = ProbeIn, security(("bearer" = []), ("session" = [])),
    responses((status = 202, body = JobRef), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn probe(State(s): State<AppState>, auth: Auth, Json(b): Json<ProbeIn>) -> ApiResult<Response> {
    auth.require(Scope::SettingsWrite)?;
    if b.hold_ms > 60_000 {
        return Err(ApiError::validation("hold_ms", "out_of_range", "hold_ms must be at most 60000"));
    }
    let id = s
        .store
        .enqueue(NewJob::new(crate::PROBE_JOB, serde_json::json!({ "hold_ms": b.hold_ms })).tenant(auth.tenant_id))
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(JobRef { job_id: id.0 })).into_response())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, patch_user))
        .routes(routes!(set_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_audit))
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(retry_job))
        .routes(routes!(probe))
}

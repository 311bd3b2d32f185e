//! Login, logout and "who am I", shared by the API and the console.
//!
//! Password login is throttled twice: per (tenant, login) in the database, so the limit holds
//! across processes, and per client address in memory, so one address cannot spray many
//! logins. Unknown tenants and logins cost the same argon2 time as wrong passwords.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use siyu_core::auth::{ActorKind, DataScope, ThrottlePolicy};
use siyu_core::org::User;
use siyu_core::Timestamp;
use siyu_store::auth::NewSession;
use siyu_store::secrets::{dummy_hash, verify_password};

use super::dto::{TenantOut, UserOut};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{cookie, Auth, Json, PeerIp, SESSION_COOKIE};
use crate::AppState;

/// Failed logins per client address, kept in memory.
#[derive(Default)]
pub struct IpThrottle(Mutex<HashMap<IpAddr, Vec<Timestamp>>>);

/// Per address: generous enough for an office behind one NAT, tight enough to stop spraying.
const IP_POLICY: ThrottlePolicy = ThrottlePolicy { max_failures: 30, window: Duration::from_secs(15 * 60) };

impl IpThrottle {
    /// Counts an attempt before it is checked, atomically, so parallel guesses cannot all
    /// slip through; a successful login withdraws its attempt with [`IpThrottle::succeeded`].
    fn begin(&self, ip: IpAddr, now: Timestamp) -> Result<(), Timestamp> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let since = now.minus(IP_POLICY.window);
        map.retain(|_, v| {
            v.retain(|t| *t > since);
            !v.is_empty()
        });
        let entry = map.entry(ip).or_default();
        IP_POLICY.check(entry, now)?;
        entry.push(now);
        Ok(())
    }
    fn succeeded(&self, ip: IpAddr, at: Timestamp) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = map.get_mut(&ip) {
            if let Some(pos) = v.iter().position(|t| *t == at) {
                v.remove(pos);
            }
        }
    }
}

pub enum LoginError {
    Invalid,
    Throttled(Timestamp),
    Internal(String),
}

impl LoginError {
    pub fn into_api(self, now: Timestamp) -> ApiError {
        match self {
            LoginError::Invalid => ApiError::InvalidCredentials,
            LoginError::Throttled(until) => {
                ApiError::TooManyRequests { retry_after_secs: ((until.0 - now.0).max(0) as u64).div_ceil(1_000_000) }
            }
            LoginError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// Checks a password login and opens a session.
pub async fn login(
    state: &AppState,
    tenant_slug: &str,
    login: &str,
    password: &str,
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
) -> Result<(User, NewSession), LoginError> {
    let store = &state.store;
    let now = store.clock().now();
    let login = login.trim().to_lowercase();
    if let Some(ip) = ip {
        state.ip_throttle.begin(ip, now).map_err(LoginError::Throttled)?;
    }
    let internal = |e: siyu_store::StoreError| LoginError::Internal(e.to_string());
    let tenant = store.tenant_by_slug(tenant_slug.trim()).await.map_err(internal)?;
    let candidate = match &tenant {
        Some(t) => {
            // Record the attempt first and count it with the others, so concurrent guesses
            // are all counted before any of them reaches the (slow) password check.
            let policy = ThrottlePolicy::default();
            store.record_login_failure(t.id, &login).await.map_err(internal)?;
            let fails = store.login_failures_since(t.id, &login, now.minus(policy.window)).await.map_err(internal)?;
            // Checked at a reading taken after the insert, so our own attempt is in the window.
            let at = store.now();
            ThrottlePolicy { max_failures: policy.max_failures + 1, ..policy }
                .check(&fails, at)
                .map_err(LoginError::Throttled)?;
            store.user_for_login(t.id, &login).await.map_err(internal)?
        }
        None => None,
    };
    let hash = candidate.as_ref().map(|(_, h)| h.clone()).unwrap_or_else(|| dummy_hash().to_string());
    let pw = password.to_string();
    // argon2 is deliberately slow: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash)).await.unwrap_or(false);
    match (tenant, candidate) {
        (Some(_), Some((user, _))) if ok && !user.disabled => {
            store.clear_login_failures(user.tenant_id, &login).await.map_err(internal)?;
            if let Some(ip) = ip {
                state.ip_throttle.succeeded(ip, now);
            }
            let ua = user_agent.map(str::to_string);
            let sess = store
                .create_session(&user, ip.map(|i| i.to_string()).as_deref(), ua.as_deref())
                .await
                .map_err(internal)?;
            tracing::info!(tenant = %user.tenant_id, user = %user.id, "login");
            Ok((user, sess))
        }
        _ => {
            // The attempt recorded above stays as a failure, for the login and the address.
            tracing::info!(tenant = tenant_slug, "login failed");
            Err(LoginError::Invalid)
        }
    }
}

pub fn session_cookie(state: &AppState, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.config.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie characters are ASCII")
}

/// The client address, from the socket or (behind a trusted proxy) `X-Forwarded-For`. The
/// rightmost entry is the one our own proxy appended; everything left of it came from the
/// client and can be forged.
pub fn client_ip(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
    if state.config.trust_proxy {
        if let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
    }
    peer
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"tenant": "demo", "login": "owner", "password": "siyu-demo-2026"}))]
pub struct LoginIn {
    /// The tenant's slug.
    pub tenant: String,
    pub login: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginOut {
    pub user: UserOut,
    /// Send as `X-CSRF-Token` on writes made with the session cookie.
    pub csrf_token: String,
    pub expires_at: String,
}

/// Log in with a password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginIn, security(()),
    responses((status = 200, body = LoginOut), (status = 401, description = "Wrong tenant, login or password", body = Problem),
              (status = 429, description = "Too many failed attempts", body = Problem)))]
async fn login_api(
    State(state): State<AppState>,
    PeerIp(peer): PeerIp,
    headers: HeaderMap,
    Json(body): Json<LoginIn>,
) -> ApiResult<Response> {
    let ip = client_ip(&state, &headers, peer);
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let now = state.store.now();
    let (user, sess) =
        login(&state, &body.tenant, &body.login, &body.password, ip, ua).await.map_err(|e| e.into_api(now))?;
    let max_age = (sess.expires_at.0 - now.0) / 1_000_000;
    let out = LoginOut { user: user.into(), csrf_token: sess.csrf_token, expires_at: super::dto::ts(sess.expires_at) };
    let mut res = axum::Json(out).into_response();
    res.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &sess.cookie, max_age));
    Ok(res)
}

/// End the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    security(("session" = [])), responses((status = 204), (status = 401, body = Problem)))]
async fn logout_api(State(state): State<AppState>, _auth: Auth, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        state.store.delete_session(c).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(res)
}

#[derive(Serialize, ToSchema)]
pub struct MeOut {
    pub tenant: TenantOut,
    /// `user` or `token`.
    pub kind: String,
    pub user: Option<UserOut>,
    pub token_name: Option<String>,
    pub scopes: Vec<String>,
    /// `tenant` (all rows) or `own_staff` (a guide's own data).
    pub data_scope: String,
}

/// Who the credentials belong to, and what they may do.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = MeOut), (status = 401, body = Problem)))]
async fn me(State(state): State<AppState>, auth: Auth) -> ApiResult<axum::Json<MeOut>> {
    let tenant = state.store.tenant(auth.tenant_id).await?;
    let (kind, user, token_name) = match &auth.kind {
        ActorKind::User { user_id, .. } => {
            ("user", Some(state.store.user(auth.tenant_id, *user_id).await?.into()), None)
        }
        ActorKind::Token { name, .. } => ("token", None, Some(name.clone())),
        ActorKind::System => ("system", None, None),
    };
    Ok(axum::Json(MeOut {
        tenant: tenant.into(),
        kind: kind.into(),
        user,
        token_name,
        scopes: auth.scopes.iter().map(|s| s.as_str().to_string()).collect(),
        data_scope: match auth.data_scope {
            DataScope::Tenant => "tenant",
            DataScope::OwnStaff(_) => "own_staff",
            DataScope::Nothing => "none",
        }
        .into(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login_api)).routes(routes!(logout_api)).routes(routes!(me))
}

//! Cross-cutting request handling: request ids, tracing spans, metrics and idempotency.

use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use siyu_core::auth::ActorKind;
use siyu_store::idempotency::Claim;

use crate::error::ApiError;
use crate::extract::{check_csrf, resolve, Auth};
use crate::AppState;

pub const REQUEST_ID: &str = "x-request-id";
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Largest body the API accepts, and the largest response the idempotency store keeps.
pub const MAX_BODY: usize = 1 << 20;

/// Gives every request an id (the caller's `X-Request-Id` if it is sane, else a fresh UUID),
/// runs the request inside a tracing span carrying it — so every log line names it — and
/// inside the store's task-local, so audit rows carry it too.
pub async fn request_context(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);
    let started = Instant::now();
    let fut = siyu_store::audit::REQUEST_ID.scope(id.clone(), next.run(req));
    let mut res = fut.instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms = elapsed.as_millis() as u64, "request failed");
        } else {
            tracing::debug!(status, elapsed_ms = elapsed.as_millis() as u64, "request");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}

/// Honours `Idempotency-Key` on API POSTs: the first response (success or client error) is
/// stored per tenant and actor and replayed for repeats with the same body; a repeat while
/// the first is still running gets 409; reuse with a different body gets 422. Server errors
/// release the key so the client's retry runs again.
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(req).await;
    }
    let key = match req.headers().get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()) {
        Some(k) if !k.is_empty() && k.len() <= 255 => k.to_string(),
        _ => {
            return ApiError::BadRequest {
                code: "invalid_idempotency_key",
                field: Some("Idempotency-Key".into()),
                message: "Idempotency-Key must be 1-255 visible characters".into(),
            }
            .into_response()
        }
    };
    // The key belongs to an actor, so authenticate first (and hand the result to the handler).
    let (actor, via) = match resolve(&state, req.headers()).await {
        Ok(Some(a)) => a,
        Ok(None) => return ApiError::Unauthenticated.into_response(),
        Err(e) => return e.into_response(),
    };
    if let Err(e) = check_csrf(req.method(), &via, req.headers()) {
        return e.into_response();
    }
    let actor_key = match &actor.kind {
        ActorKind::User { user_id, .. } => format!("user:{user_id}"),
        ActorKind::Token { token_id, .. } => format!("token:{token_id}"),
        ActorKind::System => "system".into(),
    };
    let tenant = actor.tenant_id;
    let (mut parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return ApiError::PayloadTooLarge.into_response(),
    };
    let mut h = Sha256::new();
    h.update(parts.uri.path().as_bytes());
    h.update([0]);
    h.update(&bytes);
    let hash = hex::encode(h.finalize());
    let claim = match state.store.idempotency_claim(tenant, &actor_key, &key, &hash).await {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Claim::InProgress) => return ApiError::IdempotencyInProgress.into_response(),
        Ok(Claim::Mismatch) => return ApiError::IdempotencyMismatch.into_response(),
        Ok(Claim::Replay { status, content_type, body }) => {
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                res.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return res;
        }
        Ok(Claim::Fresh(claim)) => claim,
    };
    let kref = siyu_store::idempotency::KeyRef { tenant, actor_key: &actor_key, key: &key };
    parts.extensions.insert(Auth(actor));
    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (rparts, rbody) = res.into_parts();
    let rbytes = match to_bytes(rbody, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let _ = state.store.idempotency_abandon(kref, claim).await;
            return ApiError::Internal("response too large to store for idempotency".into()).into_response();
        }
    };
    if rparts.status.is_server_error() {
        if let Err(e) = state.store.idempotency_abandon(kref, claim).await {
            tracing::warn!(error = %e, "could not release idempotency key");
        }
    } else {
        let ct = rparts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
        if let Err(e) = state.store.idempotency_complete(kref, claim, rparts.status.as_u16(), ct, &rbytes).await {
            tracing::warn!(error = %e, "could not store idempotent response");
        }
    }
    Response::from_parts(rparts, Body::from(rbytes))
}

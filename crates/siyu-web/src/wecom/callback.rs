//! The URL WeCom calls: `/wecom/callback/{tenant_id}/{app_id}`.
//!
//! GET is URL verification (answer the decrypted echostr, nothing else, within a second).
//! POST is an event: verify the signature, decrypt, check the timestamp window and the nonce,
//! store it in the inbox with its processing job in one transaction, and only then answer 200
//! with an empty body. A bad signature or a stale timestamp stores nothing; a store failure is
//! a 500 so WeCom retries (never acknowledge what was not stored); a duplicate is a 200.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use uuid::Uuid;

use siyu_core::{TenantId, WecomAppId};
use siyu_store::wecom::{Accepted, IncomingCallback};
use siyu_store::StoreError;
use siyu_wecom::{Callback, MsgCrypt};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/wecom/callback/{tenant_id}/{app_id}", get(verify_url).post(receive))
}

type Params = Query<HashMap<String, String>>;

fn reject(status: StatusCode, why: &str) -> Response {
    tracing::warn!(reason = why, "WeCom callback rejected");
    (status, why.to_string()).into_response()
}

async fn crypt(state: &AppState, tenant: Uuid, app: Uuid) -> Result<MsgCrypt, Response> {
    match state.store.wecom_credentials(TenantId(tenant), WecomAppId(app)).await {
        Ok(c) => MsgCrypt::new(&c.callback_token, &c.encoding_aes_key, &c.corp_id).map_err(|e| {
            tracing::error!(error = %e, "WeCom callback: the stored EncodingAESKey is unusable");
            reject(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable")
        }),
        Err(StoreError::NotFound) => Err(reject(StatusCode::NOT_FOUND, "no such WeCom app")),
        Err(e) => {
            tracing::error!(error = %e, "WeCom callback: cannot load the app's settings");
            Err(reject(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable"))
        }
    }
}

async fn verify_url(
    State(state): State<AppState>,
    Path((tenant, app)): Path<(Uuid, Uuid)>,
    Query(q): Params,
) -> Response {
    let c = match crypt(&state, tenant, app).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    match c.verify_url(get("msg_signature"), get("timestamp"), get("nonce"), get("echostr")) {
        Ok(msg) => {
            if let Err(e) = state.store.mark_callback_verified(TenantId(tenant), WecomAppId(app)).await {
                tracing::warn!(error = %e, "could not record the callback verification");
            }
            // The raw message: no quotes, no newline.
            msg.into_response()
        }
        Err(e) => reject(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn receive(
    State(state): State<AppState>,
    Path((tenant, app)): Path<(Uuid, Uuid)>,
    Query(q): Params,
    body: String,
) -> Response {
    let c = match crypt(&state, tenant, app).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let (sig, ts, nonce) = (get("msg_signature"), get("timestamp"), get("nonce"));
    let Ok(ts_num) = ts.parse::<i64>() else { return reject(StatusCode::BAD_REQUEST, "timestamp is not a number") };
    let (_, plain) = match c.decrypt_body(sig, ts, nonce, &body) {
        Ok(x) => x,
        Err(e) => return reject(StatusCode::UNAUTHORIZED, &e.to_string()),
    };
    // Replay window, on the server's clock. The signature covers the timestamp, so an old
    // capture cannot be refreshed.
    let now = state.store.now().unix_secs();
    if (now - ts_num).unsigned_abs() > state.config.callback_window_secs {
        return reject(StatusCode::FORBIDDEN, "timestamp outside the replay window");
    }
    let (dedupe, kind, entity) = match Callback::parse(&plain.msg) {
        Ok(cb) => (cb.dedupe_key(), crate::wecom::gateway::event_kind(&cb), cb.entity()),
        // Keep what cannot be parsed (the inbox shows it as dead with the reason) rather
        // than dropping it; its content is its identity.
        Err(_) => (
            format!("raw:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(plain.msg.as_bytes()))),
            "unparsed".into(),
            "unparsed".into(),
        ),
    };
    let incoming = IncomingCallback {
        app_id: WecomAppId(app),
        timestamp: ts_num,
        nonce,
        dedupe_key: &dedupe,
        envelope: &body,
        payload: &plain.msg,
        event_kind: &kind,
        entity: &entity,
    };
    match state.store.accept_callback(TenantId(tenant), &incoming).await {
        Ok(Accepted::New(id)) => {
            metrics::counter!("siyu_wecom_callbacks_total", "outcome" => "stored").increment(1);
            tracing::info!(inbox = %id, kind, "WeCom callback stored");
            StatusCode::OK.into_response()
        }
        Ok(Accepted::Duplicate) => {
            metrics::counter!("siyu_wecom_callbacks_total", "outcome" => "duplicate").increment(1);
            StatusCode::OK.into_response()
        }
        Err(e) => {
            // Not stored, so not acknowledged: WeCom will retry.
            tracing::error!(error = %e, "WeCom callback not stored");
            reject(StatusCode::INTERNAL_SERVER_ERROR, "not stored; retry")
        }
    }
}

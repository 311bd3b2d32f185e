//! Console login, logout and language switch.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map};

use crate::api::auth::{client_ip, login, session_cookie, LoginError};
use crate::extract::{cookie, PeerIp, SESSION_COOKIE};
use crate::i18n::{self, Lang};
use crate::AppState;

use super::{lang_from, safe_next, templates, urlencode, FormData, LANG_COOKIE};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/login", get(login_page).post(login_submit))
        .route("/console/logout", post(logout))
        .route("/console/lang", get(switch_lang))
}

fn login_lang(h: &HeaderMap) -> Lang {
    lang_from(h).unwrap_or(Lang::Zh)
}

/// Cookie of the login form's CSRF token (double submit): a cross-site POST arrives without
/// it (SameSite=Lax), so nobody can log a victim into an account of the attacker's choosing.
const LOGIN_CSRF_COOKIE: &str = "siyu_login_csrf";

fn render_login(
    state: &AppState,
    lang: Lang,
    values: serde_json::Value,
    error: Option<String>,
    next: &str,
) -> Response {
    let token = siyu_store::secrets::random_secret();
    let mut m = Map::new();
    m.insert("login_csrf".into(), json!(token));
    m.insert("lang".into(), json!(lang.code()));
    m.insert("other_lang".into(), json!(lang.other().code()));
    m.insert("values".into(), values);
    m.insert("error".into(), json!(error));
    m.insert("next".into(), json!(next));
    m.insert("path".into(), json!(format!("/console/login?next={}", urlencode(next))));
    if let Some(d) = &state.config.demo_login {
        m.insert("demo".into(), json!({"tenant": d.tenant, "login": d.login, "password": d.password}));
    }
    let mut res = match templates().render("login.html", &serde_json::Value::Object(m)) {
        Ok(h) => axum::response::Html(h).into_response(),
        Err(e) => return e.into_response(),
    };
    let secure = if state.config.secure_cookies { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGIN_CSRF_COOKIE}={token}; Path=/console/login; HttpOnly; SameSite=Lax; Max-Age=3600{secure}"
    )) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = safe_next(q.get("next").map(String::as_str));
    let values = match &state.config.demo_login {
        Some(d) => json!({"tenant": d.tenant, "login": d.login}),
        None => json!({}),
    };
    render_login(&state, login_lang(&headers), values, None, &next)
}

async fn login_submit(
    State(state): State<AppState>,
    PeerIp(peer): PeerIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    let lang = login_lang(&headers);
    let next = safe_next(f.opt("next"));
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    let sent = f.get("_csrf");
    if expected.is_empty() || !bool::from(subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), expected.as_bytes())) {
        return render_login(&state, lang, f.values(), Some(i18n::t(lang, "error.csrf")), &next);
    }
    let ip = client_ip(&state, &headers, peer);
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    match login(&state, f.get("tenant"), f.get("login"), f.get("password"), ip, ua).await {
        Ok((_, sess)) => {
            let max_age = (sess.expires_at.0 - state.store.now().0) / 1_000_000;
            let mut res = Redirect::to(&next).into_response();
            res.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &sess.cookie, max_age));
            res
        }
        Err(LoginError::Invalid) => render_login(&state, lang, f.values(), Some(i18n::t(lang, "login.invalid")), &next),
        Err(LoginError::Throttled(until)) => {
            let secs = ((until.0 - state.store.now().0).max(0) / 1_000_000 + 1).to_string();
            render_login(&state, lang, f.values(), Some(i18n::tf(lang, "login.throttled", &[("n", &secs)])), &next)
        }
        Err(LoginError::Internal(m)) => crate::error::ApiError::Internal(m).into_response(),
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // Demand the session's CSRF token, so another site cannot log users out at will; without
    // it the session and the cookie stay as they are.
    let mut res = Redirect::to("/console/login").into_response();
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        if let Ok(Some(sess)) = state.store.session(c).await {
            let sent = FormData::parse(&body).get("_csrf").to_string();
            if !sent.is_empty()
                && bool::from(subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), sess.csrf_token.as_bytes()))
            {
                let _ = state.store.delete_session(c).await;
                res.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, "", 0));
            } else {
                return Redirect::to("/console").into_response();
            }
        }
    }
    res
}

async fn switch_lang(Query(q): Query<HashMap<String, String>>) -> Response {
    let lang = q.get("to").and_then(|l| Lang::parse(l)).unwrap_or(Lang::Zh);
    let back = q
        .get("back")
        .map(String::as_str)
        .filter(|b| b.starts_with("/console") && !b.starts_with("//"))
        .unwrap_or("/console");
    let mut res = Redirect::to(back).into_response();
    if let Ok(v) =
        HeaderValue::from_str(&format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code()))
    {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

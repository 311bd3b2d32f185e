//! The public landing page of a channel live code, `/l/{tenant}/{code}`: every
//! visit is a scan that siyu gives to one member — reserving a unit of their capacity today —
//! and answers with that member's QR to long-press inside WeChat. A paused, expired or
//! exhausted code gets a page that says so. Every scan is recorded with its source (the query
//! string) and user agent.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use uuid::Uuid;

use siyu_core::LiveCodeId;
use siyu_store::acquisition::Scan;
use siyu_store::StoreError;

use crate::i18n::{t, Lang};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/l/{tenant}/{code}", get(land)).route("/s/{code}", get(short))
}

/// A short link (A-40..A-43): the hit is recorded (client class, referrer, and the visitor as
/// a keyed hash of address and day, never the address), then a 302 to the tenant's own page
/// with the link's code and parameters. Disabled or expired: 410 with a page that says so.
async fn short(
    State(s): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    peer: crate::extract::PeerIp,
) -> Response {
    use siyu_core::acquisition::short_link::{client_class, is_code};
    let lang = crate::console::lang_from(&headers).unwrap_or(Lang::Zh);
    let missing = || notice(lang, StatusCode::NOT_FOUND, &t(lang, "landing.missing.title"), "landing.missing");
    if !is_code(&code) {
        return missing();
    }
    let link = match s.store.short_link_by_code(&code).await {
        Ok(Some(l)) => l,
        Ok(None) => return missing(),
        Err(e) => return crate::mall::pages::fail(lang, e.into()),
    };
    let now = s.store.now();
    if link.status != "active" || link.config.expires_at.is_some_and(|e| e <= now) {
        return notice(lang, StatusCode::GONE, &link.name, "landing.link_gone");
    }
    let offset = match s.store.tenant(link.tenant_id).await {
        Ok(t) => t.offset_hours(),
        Err(e) => return crate::mall::pages::fail(lang, e.into()),
    };
    let day = now.local_day(offset);
    let ua = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let referrer = headers.get("referer").and_then(|v| v.to_str().ok());
    let ip = crate::api::auth::client_ip(&s, &headers, peer.0).map(|ip| ip.to_string()).unwrap_or_default();
    let visitor = s.store.sealer().blind_index("short_link.visitor", &format!("{day}|{ip}|{ua}"));
    if let Err(e) =
        s.store.record_short_link_hit(link.tenant_id, link.id, day, client_class(ua), referrer, &visitor).await
    {
        // A lost hit must not lose the visitor: the redirect goes out regardless.
        tracing::warn!(error = %e, code, "short link: the hit could not be recorded");
    }
    (StatusCode::FOUND, [(axum::http::header::LOCATION, link.config.location(&link.code))]).into_response()
}

fn page(lang: Lang, status: StatusCode, ctx: serde_json::Value) -> Response {
    let mut ctx = ctx;
    ctx["lang"] = json!(lang.code());
    match crate::console::templates().render("landing.html", &ctx) {
        Ok(h) => (status, Html(h)).into_response(),
        Err(e) => crate::mall::pages::fail(lang, e),
    }
}

fn notice(lang: Lang, status: StatusCode, title: &str, key: &str) -> Response {
    page(lang, status, json!({"title": title, "notice": t(lang, key)}))
}

async fn land(
    State(s): State<AppState>,
    Path((slug, code)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = crate::console::lang_from(&headers).unwrap_or(Lang::Zh);
    let missing = || notice(lang, StatusCode::NOT_FOUND, &t(lang, "landing.missing.title"), "landing.missing");
    let Ok(code) = code.parse::<Uuid>().map(LiveCodeId) else { return missing() };
    let tenant = match s.store.tenant_by_slug(&slug).await {
        Ok(Some(t)) => t,
        Ok(None) => return missing(),
        Err(e) => return crate::mall::pages::fail(lang, e.into()),
    };
    let ua = headers.get("user-agent").and_then(|v| v.to_str().ok());
    let offset = tenant.offset_hours();
    let scan = s.store.scan_live_code(tenant.id, code, offset, query.as_deref(), ua, rand::random()).await;
    let in_wechat = ua.is_some_and(|u| u.contains("MicroMessenger"));
    match scan {
        Ok(Scan::Assigned { qr_code, staff_name, code_name, .. }) => page(
            lang,
            StatusCode::OK,
            json!({"title": code_name, "brand": tenant.name, "qr": qr_code, "staff": staff_name, "in_wechat": in_wechat}),
        ),
        Ok(Scan::Paused) => notice(lang, StatusCode::OK, &tenant.name, "landing.paused"),
        Ok(Scan::Exhausted) => notice(lang, StatusCode::OK, &tenant.name, "landing.exhausted"),
        Ok(Scan::Expired) => notice(lang, StatusCode::GONE, &tenant.name, "landing.expired"),
        Err(StoreError::NotFound) => missing(),
        Err(e) => crate::mall::pages::fail(lang, e.into()),
    }
}

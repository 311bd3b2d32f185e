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
    Router::new().route("/l/{tenant}/{code}", get(land))
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
    let offset = siyu_core::time::zone_offset_hours(&tenant.timezone).unwrap_or(8);
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

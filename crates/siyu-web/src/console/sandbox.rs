//! Demo mode only: act as customers of the built-in WeCom sandbox, so an evaluator can watch
//! a scan turn into a callback, an inbox row, an event and synced relationships.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use siyu_core::auth::Scope;

use super::{urlencode, Ctx, FormData};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/sandbox", get(page))
        .route("/console/sandbox/scan", post(scan))
        .route("/console/sandbox/delete", post(delete))
}

const NAMES: [&str; 8] = ["张小雨", "陈一鸣", "刘思思", "王可可", "赵晓东", "孙悦", "周小北", "吴桐"];

async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(sb) = &s.sandbox else { return ctx.fail(ApiError::NotFound) };
    if let Some(r) = ctx.require(Scope::SettingsRead) {
        return r;
    }
    let rels: Vec<_> = sb
        .relationships()
        .into_iter()
        .map(|(e, u)| json!({"external": e, "userid": u, "name": sb.external_name(&e).unwrap_or_default()}))
        .collect();
    let welcomes: Vec<_> = sb
        .welcomes()
        .iter()
        .map(|w| json!({"userid": w.userid, "external": w.external_userid, "text": w.text}))
        .collect();
    let mut m = ctx.base("sandbox", "sandbox.title");
    m.insert("relationships".into(), json!(rels));
    m.insert("welcomes".into(), json!(welcomes));
    m.insert("message".into(), json!(q.get("done")));
    m.insert("suggested".into(), json!(NAMES[rels.len() % NAMES.len()]));
    ctx.render("sandbox.html", m)
}

fn done(msg: &str) -> Response {
    Redirect::to(&format!("/console/sandbox?done={}", urlencode(msg))).into_response()
}

async fn scan(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    let Some(sb) = &s.sandbox else { return ctx.fail(ApiError::NotFound) };
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    let Some(way) = sb.contact_way_ids().into_iter().next() else { return ctx.fail(ApiError::NotFound) };
    let name = Some(f.get("name").trim()).filter(|n| !n.is_empty()).unwrap_or("新客户");
    let ext = sb.add_external_user(name, None);
    match sb.scan_contact_way(&way, &ext).await {
        Ok((userid, _)) => done(&crate::i18n::tf(ctx.lang, "sandbox.done.scan", &[("userid", &userid)])),
        Err(e) => ctx.fail(ApiError::Internal(e)),
    }
}

async fn delete(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    let Some(sb) = &s.sandbox else { return ctx.fail(ApiError::NotFound) };
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    let Some((ext, userid)) = sb.relationships().into_iter().next() else { return done(&ctx.t("sandbox.none")) };
    match sb.customer_deletes(&ext, &userid).await {
        Ok(()) => done(&ctx.t("sandbox.done.delete")),
        Err(e) => ctx.fail(ApiError::Internal(e)),
    }
}

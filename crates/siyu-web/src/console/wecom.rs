//! Console pages for the WeCom gateway: connection settings, the connection check, and the
//! callback inbox with retry.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::wecom::validate_secret;
use siyu_core::{InboxId, WecomAppId};
use siyu_store::wecom::{InboxFilter, InboxStatus};

use super::{page_req, pager, qget, Ctx, FormData};
use crate::error::ApiError;
use crate::wecom::api::{app_input, callback_path, new_callback_keys, secret_for_update, WecomAppIn};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/wecom", get(page))
        .route("/console/wecom/apps", post(create))
        .route("/console/wecom/apps/{id}", get(edit).post(update))
        .route("/console/wecom/apps/{id}/check", post(check))
        .route("/console/wecom/apps/{id}/reconcile", post(reconcile))
        .route("/console/wecom/inbox/{id}/retry", post(retry))
}

fn app_in(f: &FormData) -> WecomAppIn {
    WecomAppIn {
        name: f.get("name").into(),
        corp_id: f.get("corp_id").trim().into(),
        agent_id: f.get("agent_id").trim().into(),
        secret: f.opt("secret").map(Into::into),
        base_url: f.opt("base_url").map(Into::into),
    }
}

fn inbox_tone(s: InboxStatus) -> &'static str {
    match s {
        InboxStatus::Pending => "blue",
        InboxStatus::Processed => "green",
        InboxStatus::Failed => "orange",
        InboxStatus::Dead => "red",
    }
}

async fn render_page(
    s: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    values: Value,
    errors: Map<String, Value>,
    status: StatusCode,
) -> Response {
    let apps = match s.store.list_wecom_apps(ctx.tenant.id).await {
        Ok(a) => a,
        Err(e) => return ctx.fail(e),
    };
    let can_write = ctx.can(Scope::SettingsWrite);
    let sync = match s.store.wecom_sync_states(ctx.tenant.id).await {
        Ok(v) => v,
        Err(e) => return ctx.fail(e),
    };
    let mut out = Vec::new();
    for a in &apps {
        // The callback Token and key are what the operator types into WeCom; only those who
        // may change settings see them.
        let (token, key) = if can_write {
            match s.store.wecom_credentials(ctx.tenant.id, a.id).await {
                Ok(c) => (c.callback_token, c.encoding_aes_key),
                Err(e) => return ctx.fail(e),
            }
        } else {
            (String::new(), String::new())
        };
        let check: Vec<Value> = a
            .last_check
            .as_ref()
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|i| {
                        let key = i["key"].as_str().unwrap_or_default();
                        let st = i["status"].as_str().unwrap_or("pending");
                        // Failures carry WeCom's errcode and its explanation; the rest read in the
                        // user's language.
                        let msg_key = format!("check.msg.{key}.{st}");
                        let message = if st != "failed" && crate::i18n::has(&msg_key) { json!(ctx.t(&msg_key)) } else { i["message"].clone() };
                        json!({"label": ctx.t(&format!("check.{key}")), "status_label": ctx.t(&format!("check.status.{st}")),
                               "tone": match st { "ok" => "green", "failed" => "red", _ => "orange" }, "message": message})
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(json!({"id": a.id, "name": a.name, "corp_id": a.corp_id, "agent_id": a.agent_id, "base_url": a.base_url,
            "callback_path": callback_path(a), "token": token, "key": key, "verified": a.callback_verified_at.is_some(),
            "last_event": a.last_event_at.map(|t| ctx.when(t)), "check": check,
            "sync": sync.iter().filter(|x| x.app_id == a.id).map(|x| json!({"label": ctx.t(&format!("sync.{}", x.entity)), "seen": x.seen, "drift": x.drift,
                "total_drift": x.total_drift, "last_ok": x.last_ok_at.map(|t| ctx.when(t)), "error": x.last_error})).collect::<Vec<_>>(), "checked_at": a.last_check_at.map(|t| ctx.when(t))}));
    }
    let f = InboxFilter { status: qget(q, "status").and_then(InboxStatus::parse), app_id: None };
    let req = page_req(q);
    let inbox = match s.store.list_inbox(ctx.tenant.id, &f, &req).await {
        Ok(p) => p,
        Err(e) => return ctx.fail(e),
    };
    let rows: Vec<Value> = inbox
        .items
        .iter()
        .map(|i| {
            json!({"id": i.id, "received": ctx.when(i.received_at), "kind": i.event_kind, "entity": i.entity, "status": i.status.as_str(),
                   "status_label": ctx.t(&format!("inbox.status.{}", i.status.as_str())), "tone": inbox_tone(i.status),
                   "error": i.last_error, "payload": i.payload, "retryable": matches!(i.status, InboxStatus::Failed | InboxStatus::Dead)})
        })
        .collect();
    let statuses: Vec<Value> = ["pending", "processed", "failed", "dead"]
        .iter()
        .map(|v| json!({"value": v, "label": ctx.t(&format!("inbox.status.{v}"))}))
        .collect();
    let filters = [("status", qget(q, "status"))];
    let mut m = ctx.base("wecom", "wecom.title");
    m.insert("apps".into(), json!(out));
    m.insert("inbox".into(), json!(rows));
    m.insert("statuses".into(), json!(statuses));
    m.insert("filter".into(), json!({"status": qget(q, "status")}));
    m.insert("pager".into(), pager(ctx, rows.len(), inbox.next_cursor, &filters, req.before.is_none()));
    m.insert("can_write".into(), json!(can_write));
    m.insert("values".into(), values);
    m.insert("errors".into(), Value::Object(errors));
    m.insert("saved".into(), json!(super::flag(q, "saved")));
    m.insert("retried".into(), json!(super::flag(q, "retried")));
    m.insert("synced".into(), json!(super::flag(q, "synced")));
    ctx.render_with(status, "wecom.html", m)
}

async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::SettingsRead) {
        return r;
    }
    render_page(&s, &ctx, &q, json!({}), Map::new(), StatusCode::OK).await
}

async fn create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    let b = app_in(&f);
    let res: Result<_, ApiError> = async {
        let input = app_input(&b)?;
        let secret = validate_secret(b.secret.as_deref().unwrap_or(""))?;
        let (token, key) = new_callback_keys();
        let app = s.store.create_wecom_app(&ctx.actor, &input, &secret, &token, &key).await?;
        s.gateway.schedule_reconcile(ctx.tenant.id, app.id, true).await?;
        Ok(app)
    }
    .await;
    match res {
        Ok(_) => Redirect::to("/console/wecom?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, _)) => {
                render_page(&s, &ctx, &HashMap::new(), f.values(), errors, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

fn form(ctx: &Ctx, id: Uuid, values: Value, errors: Map<String, Value>, status: StatusCode) -> Response {
    let mut m = ctx.base("wecom", "wecom.edit");
    m.insert("action".into(), json!(format!("/console/wecom/apps/{id}")));
    m.insert("values".into(), values);
    m.insert("errors".into(), Value::Object(errors));
    ctx.render_with(status, "wecom_form.html", m)
}

async fn edit(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    if let Some(r) = ctx.require(Scope::SettingsWrite) {
        return r;
    }
    match s.store.wecom_app(ctx.tenant.id, WecomAppId(id)).await {
        Ok(a) => form(
            &ctx,
            id,
            json!({"name": a.name, "corp_id": a.corp_id, "agent_id": a.agent_id, "base_url": a.base_url}),
            Map::new(),
            StatusCode::OK,
        ),
        Err(e) => ctx.fail(e),
    }
}

async fn update(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    let b = app_in(&f);
    let res: Result<_, ApiError> = async {
        let input = app_input(&b)?;
        let current = s.store.wecom_app(ctx.tenant.id, WecomAppId(id)).await?;
        let secret = secret_for_update(&current, &input, b.secret.as_deref())?;
        let app = s.store.update_wecom_app(&ctx.actor, WecomAppId(id), &input, secret.as_deref()).await?;
        s.gateway.forget(ctx.tenant.id, app.id);
        Ok(app)
    }
    .await;
    match res {
        Ok(_) => Redirect::to("/console/wecom?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, _)) => form(&ctx, id, f.values(), errors, StatusCode::UNPROCESSABLE_ENTITY),
            Err(r) => *r,
        },
    }
}

async fn check(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    match s.gateway.check(ctx.tenant.id, WecomAppId(id)).await {
        Ok(_) => Redirect::to(&format!("/console/wecom#app-{id}")).into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn reconcile(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    let res: Result<_, ApiError> = async {
        let app = s.store.wecom_app(ctx.tenant.id, WecomAppId(id)).await?;
        Ok(s.gateway.schedule_reconcile(ctx.tenant.id, app.id, true).await?)
    }
    .await;
    match res {
        Ok(_) => Redirect::to("/console/wecom?synced=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn retry(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    match s.store.retry_inbox_item(ctx.tenant.id, InboxId(id)).await {
        Ok(()) => Redirect::to("/console/wecom?retried=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

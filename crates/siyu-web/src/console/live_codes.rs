//! Console page for channel live codes (渠道活码): open a code over staff members with a daily
//! cap, backups and a fallback, tags and a welcome; watch today's capacity per member and the
//! last week's scans and adds; pause and resume; print the landing page's QR (SVG or PNG).
//! Short links (短链) to the tenant's own pages, with PV and UV, have their page here too.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use siyu_core::acquisition::live_code::{LiveCodeDraft, SlotDraft};
use siyu_core::acquisition::short_link::ShortLinkDraft;
use siyu_core::auth::Scope;
use siyu_core::LiveCodeId;

use super::{Ctx, FormData};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/live-codes", get(page).post(create))
        .route("/console/live-codes/{id}/pause", post(pause))
        .route("/console/live-codes/{id}/resume", post(resume))
        .route("/console/live-codes/{id}/qr.svg", get(qr_svg))
        .route("/console/live-codes/{id}/qr.png", get(qr_png))
        .route("/console/short-links", get(links_page).post(create_link))
        .route("/console/short-links/{id}/disable", post(disable_link))
}

async fn links_view(
    s: &AppState,
    ctx: &Ctx,
    values: Value,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let tenant = ctx.tenant.id;
    let links = match s.store.short_links(tenant).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let now = s.store.now();
    let rows: Vec<Value> = links
        .iter()
        .map(|l| {
            let gone = l.status != "active" || l.config.expires_at.is_some_and(|e| e <= now);
            json!({"id": l.id.to_string(), "name": l.name, "path": format!("/s/{}", l.code), "target": l.config.target,
                "params": l.config.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"),
                "pv": l.pv, "uv": l.uv, "active": !gone,
                "status": ctx.t(if gone { "short_links.status.gone" } else { "short_links.status.active" })})
        })
        .collect();
    let mut targets =
        vec![json!({"value": format!("/m/{}", ctx.tenant.slug), "label": ctx.t("short_links.target.mall")})];
    for c in s.store.live_codes(tenant).await.unwrap_or_default() {
        targets.push(json!({"value": format!("/l/{}/{}", ctx.tenant.slug, c.id),
            "label": crate::i18n::tf(ctx.lang, "short_links.target.code", &[("n", &c.name)])}));
    }
    let mut m = ctx.base("short_links", "short_links.title");
    m.insert("rows".into(), json!(rows));
    m.insert("targets".into(), json!(targets));
    m.insert("values".into(), values);
    m.insert("errors".into(), json!(errors));
    m.insert("error".into(), json!(msg));
    m.insert("can_write".into(), json!(ctx.can(Scope::CustomersWrite)));
    ctx.render_with(status, "short_links.html", m)
}

async fn links_page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    let msg = super::flag(&q, "saved").then(|| ctx.t("common.saved"));
    links_view(&s, &ctx, json!({"utm_source": "sms"}), Map::new(), msg, StatusCode::OK).await
}

async fn create_link(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    let params: Vec<(String, String)> = ["utm_source", "utm_campaign"]
        .iter()
        .filter_map(|k| f.opt(k).map(str::trim).filter(|v| !v.is_empty()).map(|v| (k.to_string(), v.to_string())))
        .collect();
    let draft = ShortLinkDraft { name: f.get("name").into(), target: f.get("target").into(), params, expires_at: None };
    let res = match draft.validate(&ctx.tenant.slug, s.store.now()) {
        Ok(input) => s.store.create_short_link(&ctx.actor, &input).await.map(|_| ()).map_err(ApiError::from),
        Err(v) => Err(ApiError::Validation(v)),
    };
    let res = res.map_err(|e| super::rename_fields(e, &[("params", "utm_campaign")]));
    match res {
        Ok(()) => Redirect::to("/console/short-links?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => links_view(&s, &ctx, f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await,
            Err(r) => *r,
        },
    }
}

async fn disable_link(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    match s.store.set_short_link_status(&ctx.actor, siyu_core::ShortLinkId(id), "disabled").await {
        Ok(_) => Redirect::to("/console/short-links?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn view(
    s: &AppState,
    ctx: &Ctx,
    values: Value,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let tenant = ctx.tenant.id;
    let codes = match s.store.live_codes(tenant).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(e),
    };
    let today = s.store.now().local_day(ctx.offset());
    let staff = s.store.all_staff(tenant).await.unwrap_or_default();
    let name_of =
        |u: &str| staff.iter().find(|m| m.wecom_userid.as_deref() == Some(u)).map_or(u.to_string(), |m| m.name.clone());
    let mut rows = Vec::new();
    for c in codes {
        let members = s.store.live_code_day(tenant, c.id, today).await.unwrap_or_default();
        let fortnight = s.store.live_code_days(tenant, c.id, today, 14).await.unwrap_or_default();
        let week = &fortnight[fortnight.len().saturating_sub(7)..];
        // Bars of scans and adds per day, scaled to the fortnight's busiest day.
        let top = fortnight.iter().map(|d| d.scans.max(d.adds)).max().unwrap_or(0).max(1);
        let bars: Vec<Value> = fortnight
            .iter()
            .enumerate()
            .map(|(i, d)| {
                json!({"x": i * 12, "scans": d.scans * 40 / top, "adds": d.adds * 40 / top,
                    "tip": crate::i18n::tf(ctx.lang, "live_codes.bar", &[("d", &siyu_core::time::format_day(d.day)),
                        ("s", &d.scans.to_string()), ("a", &d.adds.to_string()), ("n", &(d.adds - d.lost).to_string())])})
            })
            .collect();
        let cap = c.config.daily_cap;
        let people: Vec<Value> = c
            .config
            .members()
            .iter()
            .map(|u| {
                let d = members.iter().find(|m| &m.userid == u);
                let used = d.map_or(0, |m| m.used);
                let role = if c.config.staff.contains(u) {
                    "primary"
                } else if c.config.backup.contains(u) {
                    "backup"
                } else {
                    "fallback"
                };
                json!({"name": name_of(u), "role": ctx.t(&format!("live_codes.role.{role}")), "used": used,
                    "adds": d.map_or(0, |m| m.adds), "over": d.map_or(0, |m| m.over_cap),
                    "left": if role == "fallback" { "∞".to_string() } else { (cap - used).max(0).to_string() }})
            })
            .collect();
        rows.push(json!({"id": c.id.to_string(), "name": c.name, "state": c.state,
            "status": c.status, "status_label": ctx.t(&format!("live_codes.status.{}", c.status)),
            "cap": cap, "landing": format!("/l/{}/{}", ctx.tenant.slug, c.id), "people": people,
            "overflow": members.iter().any(|m| m.userid == c.config.fallback && m.used > 0),
            "scans": week.iter().map(|d| d.scans).sum::<i64>(), "adds": week.iter().map(|d| d.adds).sum::<i64>(),
            "net": week.iter().map(|d| d.adds - d.lost).sum::<i64>(), "bars": bars}));
    }
    let options: Vec<Value> = staff
        .iter()
        .filter(|m| m.status == siyu_core::org::StaffStatus::Active)
        .filter_map(|m| m.wecom_userid.as_ref().map(|u| json!({"value": u, "label": format!("{}（{u}）", m.name)})))
        .collect();
    let tags: Vec<Value> = s
        .store
        .wecom_corp_tags(tenant)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|t| json!({"value": t.id, "label": format!("{} / {}", t.group_name, t.name)}))
        .collect();
    let chosen = |k: &str| values.get(k).and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let mut m = ctx.base("live_codes", "live_codes.title");
    m.insert("chosen_tags".into(), json!(chosen("tag_ids")));
    m.insert("chosen_days".into(), json!(chosen("weekdays")));
    m.insert("rows".into(), json!(rows));
    m.insert("tags".into(), json!(tags));
    m.insert(
        "weekdays".into(),
        json!((1..=7)
            .map(|d| json!({"value": d.to_string(), "label": ctx.t(&format!("live_codes.weekday.{d}"))}))
            .collect::<Vec<_>>()),
    );
    m.insert("staff".into(), json!(options));
    m.insert("values".into(), values);
    m.insert("errors".into(), json!(errors));
    m.insert("error".into(), json!(msg));
    m.insert("can_write".into(), json!(ctx.can(Scope::CustomersWrite)));
    ctx.render_with(status, "live_codes.html", m)
}

async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    let msg = super::flag(&q, "saved").then(|| ctx.t("common.saved"));
    view(&s, &ctx, json!({"daily_cap": "100", "skip_verify": "1"}), Map::new(), msg, StatusCode::OK).await
}

async fn create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    let res = async {
        let num = |k: &str| f.opt(k).map(str::trim).filter(|v| !v.is_empty()).map(|v| v.parse::<i64>().unwrap_or(-1));
        let draft = LiveCodeDraft {
            name: f.get("name").into(),
            staff: f.all("staff").into_iter().map(str::to_string).collect(),
            backup: f.all("backup").into_iter().map(str::to_string).collect(),
            fallback: f.opt("fallback").map(str::to_string),
            daily_cap: num("daily_cap"),
            code_cap: num("code_cap"),
            // One window on the chosen weekdays, when the form gives one; none: always on duty.
            schedule: if f.get("from").trim().is_empty() && f.get("to").trim().is_empty() {
                Vec::new()
            } else {
                vec![SlotDraft {
                    weekdays: f.all("weekdays").into_iter().filter_map(|d| d.parse().ok()).collect(),
                    from: f.get("from").into(),
                    to: f.get("to").into(),
                    staff: Vec::new(),
                }]
            },
            tag_ids: f.all("tag_ids").into_iter().map(str::to_string).collect(),
            welcome: f.opt("welcome").map(str::to_string),
            skip_verify: Some(f.checked("skip_verify")),
            expires_at: None,
        };
        let input = draft.validate(s.store.now())?;
        s.gateway.open_live_code(&ctx.actor, &input).await?;
        Ok::<(), ApiError>(())
    }
    .await;
    match res {
        Ok(()) => Redirect::to("/console/live-codes?saved=1").into_response(),
        Err(e) => {
            let e = super::rename_fields(
                e,
                &[("schedule.0.weekdays", "weekdays"), ("schedule.0.from", "from"), ("schedule.0.to", "to")],
            );
            match ctx.form_error(e) {
                Ok((errors, msg)) => {
                    let mut values = f.values();
                    values["tag_ids"] = json!(f.all("tag_ids"));
                    values["weekdays"] = json!(f.all("weekdays"));
                    view(&s, &ctx, values, errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await
                }
                Err(r) => *r,
            }
        }
    }
}

async fn set_status(s: &AppState, ctx: &Ctx, body: &Bytes, id: Uuid, status: &str) -> Response {
    let f = FormData::parse(body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    match s.store.set_live_code_status(&ctx.actor, LiveCodeId(id), status).await {
        Ok(_) => Redirect::to("/console/live-codes?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn pause(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    set_status(&s, &ctx, &body, id, "paused").await
}

async fn resume(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    set_status(&s, &ctx, &body, id, "active").await
}

/// The landing page's absolute URL, as this request reached siyu.
async fn landing_url(s: &AppState, ctx: &Ctx, headers: &HeaderMap, id: Uuid) -> Result<String, Response> {
    s.store.live_code(ctx.tenant.id, LiveCodeId(id)).await.map_err(|e| ctx.fail(e))?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = if s.config.secure_cookies { "https" } else { "http" };
    Ok(format!("{scheme}://{host}/l/{}/{id}", ctx.tenant.slug))
}

async fn qr_svg(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, headers: HeaderMap) -> Response {
    qr(&s, &ctx, &headers, id, "svg").await
}

async fn qr_png(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, headers: HeaderMap) -> Response {
    qr(&s, &ctx, &headers, id, "png").await
}

/// The landing page's QR as a download: `svg` for designers, `png` for everyone else.
async fn qr(s: &AppState, ctx: &Ctx, headers: &HeaderMap, id: Uuid, ext: &str) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    let url = match landing_url(s, ctx, headers, id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (image, mime) = match ext {
        "svg" => (crate::qr::svg(&url).map(String::into_bytes), "image/svg+xml"),
        _ => (crate::qr::png(&url), "image/png"),
    };
    match image {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, mime.to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"live-code.{ext}\"")),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => ctx.fail(e),
    }
}

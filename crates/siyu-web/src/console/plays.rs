//! Console pages for group-buy (拼团) and bargain (砍价): create an activity, stop it, and
//! review how it went — groups with their members and deadlines, bargains started and done.

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
use siyu_core::commerce::bargain::BargainDraft;
use siyu_core::commerce::group_buy::{GroupBuyDraft, GroupSkuInput};
use siyu_core::{BargainId, Fen, GroupBuyId, Timestamp};

use super::yuan;
use super::{Ctx, FormData};
use crate::error::ApiError;
use crate::i18n::tf;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/group-buys", get(groups_page).post(create_group_buy))
        .route("/console/group-buys/{id}/stop", post(stop_group_buy))
        .route("/console/bargains", get(bargains_page).post(create_bargain))
        .route("/console/bargains/{id}/stop", post(stop_bargain))
}

/// Upcoming, running, ended or stopped, as the operator reads an activity.
fn phase(ctx: &Ctx, status: &str, starts: Timestamp, ends: Timestamp, now: Timestamp) -> String {
    ctx.t(&format!("promotions.phase.{}", super::promotions::phase(now, status == "active", starts, ends)))
}

/// The window a console form gives: a local start and a length in hours.
fn window(ctx: &Ctx, f: &FormData) -> Result<(Timestamp, Timestamp), ApiError> {
    let starts = super::presales::local_time(ctx, f.get("starts_at"));
    let starts_at = Timestamp::parse_rfc3339(&starts)
        .ok_or_else(|| ApiError::validation("starts_at", "invalid_format", "give the start"))?;
    let hours: i64 = f.get("hours").trim().parse().unwrap_or(0);
    if !(1..=90 * 24).contains(&hours) {
        return Err(ApiError::validation("hours", "out_of_range", "an activity lasts 1 hour to 90 days"));
    }
    Ok((starts_at, Timestamp(starts_at.0 + hours * 3_600_000_000)))
}

fn number(f: &FormData, k: &str) -> i64 {
    f.get(k).trim().parse().unwrap_or(0)
}

fn price(f: &FormData, k: &str) -> i64 {
    Fen::parse_yuan(f.get(k)).map(|x| x.0).unwrap_or(-1)
}

async fn groups_view(
    s: &AppState,
    ctx: &Ctx,
    values: Value,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let list = match s.store.group_buys(ctx.tenant.id, None).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let now = s.store.now();
    let mut rows = Vec::with_capacity(list.len());
    for a in &list {
        let groups = match s.store.groups(ctx.tenant.id, a.id, false).await {
            Ok(g) => g,
            Err(e) => return ctx.fail(e),
        };
        let lang = ctx.lang;
        rows.push(json!({"id": a.id, "name": a.name, "from": ctx.when(a.starts_at), "to": ctx.when(a.ends_at),
            "active": a.status == "active" && now < a.ends_at,
            "phase": phase(ctx, &a.status, a.starts_at, a.ends_at, now),
            "terms": tf(lang, "groups.terms", &[("n", &a.capacity.to_string()), ("h", &a.valid_hours.to_string()),
                ("u", &a.per_user.to_string())]),
            "virtual": a.virtual_bp.map(|bp| tf(lang, "groups.virtual", &[("p", &format!("{:.2}", bp as f64 / 100.0))])),
            "skus": a.skus.iter().map(|k| tf(lang, "groups.sku", &[("l", &k.label), ("p", &yuan(k.price_fen)),
                ("t", &k.taken.to_string()), ("q", &k.quota.to_string())])).collect::<Vec<_>>(),
            "counts": tf(lang, "groups.counts", &[("o", &a.groups_open.to_string()), ("s", &a.groups_succeeded.to_string()),
                ("f", &a.groups_failed.to_string())]),
            "groups": groups.iter().take(20).map(|g| json!({
                "status": ctx.t(&format!("groups.status.{}", g.status)),
                "fill": format!("{}/{}", g.paid + g.virtual_members, g.capacity),
                "virtual": g.virtual_members,
                "until": ctx.when(g.expires_at),
                "members": g.members.iter().filter(|m| m.status == "paid" || m.status == "held").map(|m| {
                    let who = m.nickname.clone().unwrap_or_else(|| ctx.t("groups.member"));
                    if m.leader { format!("{who}{}", ctx.t("groups.leader")) } else { who }
                }).collect::<Vec<_>>().join("、"),
            })).collect::<Vec<_>>()}));
    }
    let form = super::FormState { values, errors, msg };
    let m = super::play_frame(s, ctx, "group_buys", "groups.title", rows, form).await;
    ctx.render_with(status, "group_buys.html", m)
}

async fn groups_page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let msg = super::flag(&q, "saved").then(|| ctx.t("common.saved"));
    let values = json!({"hours": "168", "capacity": "3", "valid_hours": "24", "per_user": "1", "quota": "100"});
    groups_view(&s, &ctx, values, Map::new(), msg, StatusCode::OK).await
}

async fn create_group_buy(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let res = async {
        let p = super::form_product(&s, ctx.tenant.id, &f).await?;
        let (starts_at, ends_at) = window(&ctx, &f)?;
        let virtual_pct = f.get("virtual_pct").trim();
        let virtual_bp =
            if virtual_pct.is_empty() { None } else { Some(virtual_pct.parse::<i64>().map(|p| p * 100).unwrap_or(0)) };
        let (price, quota) = (price(&f, "price"), number(&f, "quota"));
        let draft = GroupBuyDraft {
            name: f.get("name").into(),
            starts_at: Some(starts_at),
            ends_at: Some(ends_at),
            capacity: Some(number(&f, "capacity")),
            valid_hours: Some(number(&f, "valid_hours")),
            per_user: Some(number(&f, "per_user")),
            virtual_bp,
            new_joiners_only: f.get("new_joiners_only") == "1",
            timeout_secs: None,
            skus: p
                .skus
                .iter()
                .filter(|k| k.active)
                .map(|k| GroupSkuInput { sku_id: k.id.to_string(), price_fen: price, quota })
                .collect(),
        };
        s.store.create_group_buy(&ctx.actor, &draft.validate()?).await?;
        Ok::<(), ApiError>(())
    }
    .await;
    let res = res.map_err(|e| {
        super::rename_fields(
            e,
            &[
                ("skus.0.price_fen", "price"),
                ("skus.0.quota", "quota"),
                ("skus.0.sku_id", "product_id"),
                ("skus", "product_id"),
                ("virtual_bp", "virtual_pct"),
                ("ends_at", "hours"),
            ],
        )
    });
    match res {
        Ok(()) => Redirect::to("/console/group-buys?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => groups_view(&s, &ctx, f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await,
            Err(r) => *r,
        },
    }
}

async fn stop_group_buy(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    match s.store.stop_group_buy(&ctx.actor, GroupBuyId(id)).await {
        Ok(_) => Redirect::to("/console/group-buys?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn bargains_view(
    s: &AppState,
    ctx: &Ctx,
    values: Value,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let list = match s.store.bargains(ctx.tenant.id, None).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let now = s.store.now();
    let lang = ctx.lang;
    let rows: Vec<Value> = list
        .iter()
        .map(|b| {
            json!({"id": b.id, "name": b.name, "label": b.label, "from": ctx.when(b.starts_at), "to": ctx.when(b.ends_at),
                "active": b.status == "active" && now < b.ends_at,
                "phase": phase(ctx, &b.status, b.starts_at, b.ends_at, now),
                "terms": tf(lang, "bargains.terms", &[("p", &yuan(b.price_fen)), ("f", &yuan(b.floor_fen)),
                    ("h", &b.helpers.to_string())]),
                "stock": tf(lang, "bargains.stock", &[("t", &b.taken.to_string()), ("q", &b.quota.to_string())]),
                "counts": tf(lang, "bargains.counts", &[("s", &b.started.to_string()), ("c", &b.completed.to_string())])})
        })
        .collect();
    let form = super::FormState { values, errors, msg };
    let m = super::play_frame(s, ctx, "bargains", "bargains.title", rows, form).await;
    ctx.render_with(status, "bargains.html", m)
}

async fn bargains_page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let msg = super::flag(&q, "saved").then(|| ctx.t("common.saved"));
    let values = json!({"hours": "72", "helpers": "5", "help_limit": "1", "quota": "50", "floor": "0.01"});
    bargains_view(&s, &ctx, values, Map::new(), msg, StatusCode::OK).await
}

async fn create_bargain(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let res = async {
        let p = super::form_product(&s, ctx.tenant.id, &f).await?;
        let (starts_at, ends_at) = window(&ctx, &f)?;
        // A bargain is on one SKU: the product's first on sale, at its own price.
        let sku =
            p.skus.iter().find(|k| k.active).ok_or_else(|| {
                ApiError::validation("product_id", "unknown_reference", "the product has no SKU on sale")
            })?;
        let boost = f.get("new_user_pct").trim();
        let draft = BargainDraft {
            name: f.get("name").into(),
            sku_id: sku.id.to_string(),
            price_fen: sku.price_fen,
            floor_fen: price(&f, "floor"),
            helpers: number(&f, "helpers"),
            help_limit: Some(number(&f, "help_limit")),
            quota: number(&f, "quota"),
            starts_at: Some(starts_at),
            ends_at: Some(ends_at),
            purchase_deadline: None,
            cut_bp: None,
            new_user_bp: (!boost.is_empty()).then(|| boost.parse::<i64>().map(|p| p * 100).unwrap_or(0)),
            buy_at_current: f.get("buy_at_current") == "1",
            timeout_secs: None,
        };
        s.store.create_bargain(&ctx.actor, &draft.validate()?).await?;
        Ok::<(), ApiError>(())
    }
    .await;
    let res = res.map_err(|e| {
        super::rename_fields(
            e,
            &[
                ("floor_fen", "floor"),
                ("price_fen", "product_id"),
                ("sku_id", "product_id"),
                ("new_user_bp", "new_user_pct"),
                ("ends_at", "hours"),
            ],
        )
    });
    match res {
        Ok(()) => Redirect::to("/console/bargains?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => {
                bargains_view(&s, &ctx, f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

async fn stop_bargain(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    match s.store.stop_bargain(&ctx.actor, BargainId(id)).await {
        Ok(_) => Redirect::to("/console/bargains?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

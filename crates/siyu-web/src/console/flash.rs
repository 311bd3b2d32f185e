//! Console page for flash sales (秒杀): create a sale over a product's SKUs (its quotas leave
//! the shelf at once) and watch what each pool still holds.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use siyu_core::auth::Scope;
use siyu_core::commerce::flash::{FlashDraft, FlashSkuInput};
use siyu_core::{Fen, Timestamp};

use super::yuan;
use super::{Ctx, FormData};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/flash-sales", get(page).post(create))
}

async fn view(
    s: &AppState,
    ctx: &Ctx,
    values: Value,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let list = match s.store.flash_sales(ctx.tenant.id, None).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let now = s.store.now();
    let mut cached = HashMap::new();
    for f in list.iter().filter(|f| f.status == "active" && now < f.ends_at) {
        if let Some(c) = crate::mall::cached_stocks(s, f.id).await {
            cached.insert(f.id, c);
        }
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|f| {
            let in_redis = |k: &siyu_store::commerce::flash::FlashSku| {
                cached.get(&f.id).and_then(|c| c.get(&k.sku_id)).map(|n| {
                    crate::i18n::tf(ctx.lang, "flash.redis_left", &[("n", &n.to_string())])
                })
            };
            let phase = if f.status != "active" || now >= f.ends_at {
                "ended"
            } else if now < f.starts_at {
                "upcoming"
            } else {
                "running"
            };
            json!({"name": f.name, "from": ctx.when(f.starts_at), "to": ctx.when(f.ends_at),
                "phase": ctx.t(&format!("flash.phase.{phase}")),
                "limits": crate::i18n::tf(ctx.lang, "flash.limits", &[("o", &f.per_order.to_string()), ("u", &f.per_user.to_string())]),
                "skus": f.skus.iter().map(|k| {
                    let line = crate::i18n::tf(ctx.lang, "flash.sku", &[("l", &k.label), ("p", &yuan(k.price_fen)),
                        ("r", &k.remaining.to_string()), ("q", &k.quota.to_string())]);
                    match in_redis(k) { Some(r) => format!("{line} · {r}"), None => line }
                }).collect::<Vec<_>>()})
        })
        .collect();
    let form = super::FormState { values, errors, msg };
    let mut m = super::play_frame(s, ctx, "flash", "flash.title", rows, form).await;
    m.insert("redis".into(), json!(s.flash_gate.is_some()));
    ctx.render_with(status, "flash.html", m)
}

async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let msg = super::flag(&q, "saved").then(|| ctx.t("common.saved"));
    view(&s, &ctx, json!({"minutes": "30", "per_user": "1", "quota": "100"}), Map::new(), msg, StatusCode::OK).await
}

async fn create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let res = async {
        let p = super::form_product(&s, ctx.tenant.id, &f).await?;
        let starts = super::presales::local_time(&ctx, f.get("starts_at"));
        let starts_at = Timestamp::parse_rfc3339(&starts)
            .ok_or_else(|| ApiError::validation("starts_at", "invalid_format", "give the start"))?;
        let minutes: i64 = f.get("minutes").trim().parse().unwrap_or(0);
        if !(1..=7 * 24 * 60).contains(&minutes) {
            return Err(ApiError::validation("minutes", "out_of_range", "a sale lasts 1 minute to 7 days"));
        }
        let price = Fen::parse_yuan(f.get("price")).map(|x| x.0).unwrap_or(-1);
        let quota: i64 = f.get("quota").trim().parse().unwrap_or(0);
        let per_user: i64 = f.get("per_user").trim().parse().unwrap_or(0);
        let draft = FlashDraft {
            name: f.get("name").into(),
            starts_at: Some(starts_at),
            ends_at: Some(Timestamp(starts_at.0 + minutes * 60_000_000)),
            per_order: Some(per_user.clamp(1, 99)),
            per_user: Some(per_user),
            timeout_secs: None,
            buckets: None,
            skus: p
                .skus
                .iter()
                .filter(|k| k.active)
                .map(|k| FlashSkuInput { sku_id: k.id.to_string(), price_fen: price, quota })
                .collect(),
        };
        let input = draft.validate()?;
        s.store.create_flash_sale(&ctx.actor, &input).await?;
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
                ("per_order", "per_user"),
            ],
        )
    });
    match res {
        Ok(()) => Redirect::to("/console/flash-sales?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => view(&s, &ctx, f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await,
            Err(r) => *r,
        },
    }
}

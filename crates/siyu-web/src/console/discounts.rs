//! Console page for item promotions: 限时折扣 (a product's SKUs at N 折 for some days) and
//! 第二件半价 (on a product), each stoppable; an item takes one of each kind at a time.

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
use siyu_core::commerce::discount::{price_at, DiscountKind};
use siyu_core::{DiscountId, Fen};

use super::promotions::day;
use super::yuan;
use super::{Ctx, FormData};
use crate::api::commerce::discounts::{BundleComponentIn, DiscountIn, DiscountSkuIn};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/discounts", get(page).post(create)).route("/console/discounts/{id}/stop", post(stop))
}

async fn view(
    s: &AppState,
    ctx: &Ctx,
    values: Value,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let list = match s.store.discounts(ctx.tenant.id).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let now = s.store.now();
    let rows: Vec<Value> = list
        .iter()
        .map(|d| {
            let phase = super::promotions::phase(now, d.status == "active", d.starts_at, d.ends_at);
            let items: Vec<String> = d
                .items
                .iter()
                .map(|i| match (i.list_fen, i.price_fen) {
                    (Some(l), Some(p)) => format!("{} {} → {}", i.label, yuan(l), yuan(p)),
                    _ if d.kind == DiscountKind::Bundle => format!("{} ×{}", i.label, i.qty),
                    _ => i.label.clone(),
                })
                .chain(d.price_fen.map(|p| crate::i18n::tf(ctx.lang, "discounts.bundle_for", &[("p", &yuan(p))])))
                .collect();
            json!({"id": d.id, "name": d.name, "kind": ctx.t(&format!("discounts.kind.{}", d.kind.as_str())),
                "items": items, "from": ctx.when(d.starts_at), "to": ctx.when(d.ends_at),
                "phase": ctx.t(&format!("promotions.phase.{phase}")), "stoppable": matches!(phase, "upcoming" | "running")})
        })
        .collect();
    let form = super::FormState { values, errors, msg };
    let mut m = super::play_frame(s, ctx, "discounts", "discounts.title", rows, form).await;
    m.insert(
        "kinds".into(),
        json!(["limited_price", "second_half", "bundle"]
            .iter()
            .map(|k| json!({"value": k, "label": ctx.t(&format!("discounts.kind.{k}"))}))
            .collect::<Vec<_>>()),
    );
    ctx.render_with(status, "discounts.html", m)
}

async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let msg = super::flag(&q, "saved").then(|| ctx.t("common.saved"));
    view(&s, &ctx, json!({"kind": "limited_price"}), Map::new(), msg, StatusCode::OK).await
}

async fn create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let res = async {
        let p = super::form_product(&s, ctx.tenant.id, &f).await?;
        let kind = f.get("kind").to_string();
        let mut skus = Vec::new();
        if DiscountKind::parse(&kind) == Some(DiscountKind::LimitedPrice) {
            // N 折 of each SKU's own price, floored to the fen.
            let bp = Fen::parse_yuan(f.get("zhe")).map(|z| z.0 * 10).unwrap_or(-1);
            for k in p.skus.iter().filter(|k| k.active) {
                let price = price_at(k.price_fen, bp)
                    .ok_or_else(|| ApiError::validation("zhe", "out_of_range", "a discount is 0.1 to 9.9 折"))?;
                skus.push(DiscountSkuIn { sku_id: k.id.0, price_fen: price });
            }
        }
        // A bundle: this product and a second one, each in its quantity.
        let mut components = Vec::new();
        if DiscountKind::parse(&kind) == Some(DiscountKind::Bundle) {
            let qty = |k: &str| f.opt(k).map_or(Ok(1), |q| q.trim().parse::<u32>()).unwrap_or(0);
            components.push(BundleComponentIn { product_id: p.id.0, qty: qty("q1") });
            if let Ok(second) = f.get("product2_id").parse::<Uuid>() {
                components.push(BundleComponentIn { product_id: second, qty: qty("q2") });
            }
        }
        let b = DiscountIn {
            name: f.get("name").into(),
            kind,
            starts_at: day(&ctx, f.get("from"), 0),
            ends_at: day(&ctx, f.get("to"), 1),
            skus,
            product_ids: vec![p.id.0],
            components,
            bundle_price_fen: f.opt("bundle_price").map(|v| Fen::parse_yuan(v).map(|x| x.0).unwrap_or(-1)),
        };
        let input = crate::api::commerce::discounts::discount_input(b)?;
        s.store.create_discount(&ctx.actor, &input).await?;
        Ok::<(), ApiError>(())
    }
    .await;
    let res = res.map_err(|e| {
        super::rename_fields(
            e,
            &[
                ("starts_at", "from"),
                ("ends_at", "to"),
                ("skus", "product_id"),
                ("skus.0.sku_id", "product_id"),
                ("product_ids.0", "product_id"),
                ("product_ids", "product_id"),
                ("components", "product2_id"),
                ("components.0.qty", "q1"),
                ("components.1.qty", "q2"),
                ("components.1.product_id", "product2_id"),
                ("bundle_price_fen", "bundle_price"),
            ],
        )
    });
    match res {
        Ok(()) => Redirect::to("/console/discounts?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => view(&s, &ctx, f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await,
            Err(r) => *r,
        },
    }
}

async fn stop(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    match s.store.stop_discount(&ctx.actor, DiscountId(id)).await {
        Ok(_) => Redirect::to("/console/discounts?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

//! Console page for order promotions: 满减 tiers, 每满减 and 满折, with their days; one runs
//! at a time, and it can be stopped.

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
use siyu_core::commerce::pricing::PromoRule;
use siyu_core::{Fen, PromotionId, Timestamp};

use super::yuan;
use super::{Ctx, FormData};
use crate::api::commerce::promotions::{PromotionIn, TierIn};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/promotions", get(page).post(create))
        .route("/console/promotions/{id}/stop", post(stop))
}

/// What a rule does, in the operator's words; `gift_name` names a 满送 gift's SKU.
fn describe(ctx: &Ctx, r: &PromoRule, gift_name: &dyn Fn(&str) -> String) -> String {
    let tf = |k: &str, a: &[(&str, &str)]| crate::i18n::tf(ctx.lang, k, a);
    match r {
        PromoRule::Tiers { tiers } => tiers
            .iter()
            .map(|(t, o)| tf("promotions.desc.tier", &[("t", &yuan(*t)), ("o", &yuan(*o))]))
            .collect::<Vec<_>>()
            .join("，"),
        PromoRule::Every { step, off, max_off } => {
            let s = tf("promotions.desc.every", &[("t", &yuan(*step)), ("o", &yuan(*off))]);
            match max_off {
                Some(m) => format!("{s}，{}", tf("coupons.desc.cap", &[("c", &yuan(*m))])),
                None => s,
            }
        }
        PromoRule::Percent { threshold, off_bp } => {
            tf("promotions.desc.percent", &[("t", &yuan(*threshold)), ("z", &crate::mall::pages::zhe(*off_bp))])
        }
        PromoRule::Gift { threshold, sku, qty } => {
            tf("promotions.desc.gift", &[("t", &yuan(*threshold)), ("g", &gift_name(sku)), ("q", &qty.to_string())])
        }
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
    let list = match s.store.promotions(ctx.tenant.id).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let now = s.store.now();
    // Listed products, for the gift's choice and names (a gift is a product's first SKU).
    let products = super::listed_products(s, ctx.tenant.id).await;
    let gift_name = |sku: &str| {
        products
            .iter()
            .find_map(|p| p.skus.iter().find(|k| k.id.to_string() == sku).map(|_| p.title.clone()))
            .unwrap_or_else(|| ctx.t("promotions.gift.gone"))
    };
    let rows: Vec<Value> = list
        .iter()
        .map(|p| {
            let phase = phase(now, p.status == "active", p.starts_at, p.ends_at);
            json!({"id": p.id, "name": p.name, "what": describe(ctx, &p.rule, &gift_name), "from": ctx.when(p.starts_at),
                "to": ctx.when(p.ends_at), "phase": ctx.t(&format!("promotions.phase.{phase}")),
                "stoppable": matches!(phase, "upcoming" | "running")})
        })
        .collect();
    let mut m = ctx.base("promotions", "promotions.title");
    m.insert("rows".into(), json!(rows));
    m.insert("values".into(), values);
    m.insert("errors".into(), json!(errors));
    m.insert("error".into(), json!(msg));
    m.insert(
        "kinds".into(),
        json!(["tiers", "every", "percent", "gift"]
            .iter()
            .map(|k| json!({"value": k, "label": ctx.t(&format!("promotions.kind.{k}"))}))
            .collect::<Vec<_>>()),
    );
    m.insert(
        "gift_products".into(),
        json!(super::product_options(products.iter().filter(|p| p.skus.iter().any(|k| k.active)))),
    );
    m.insert("can_write".into(), json!(ctx.can(Scope::CommerceWrite)));
    ctx.render_with(status, "promotions.html", m)
}

async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let msg = super::flag(&q, "saved").then(|| ctx.t("common.saved"));
    view(&s, &ctx, json!({"kind": "tiers"}), Map::new(), msg, StatusCode::OK).await
}

/// Where a stoppable promotion with a half-open window stands: `stopped`, `upcoming`,
/// `running` or `ended` (the `promotions.phase.*` labels).
pub(super) fn phase(now: Timestamp, active: bool, starts_at: Timestamp, ends_at: Timestamp) -> &'static str {
    if !active {
        "stopped"
    } else if now < starts_at {
        "upcoming"
    } else if now < ends_at {
        "running"
    } else {
        "ended"
    }
}

/// A local day (`YYYY-MM-DD`) to the instant it starts, as RFC 3339 for the API's input.
pub(super) fn day(ctx: &Ctx, s: &str, plus_days: i64) -> String {
    match siyu_core::time::parse_day(s.trim()) {
        Some(d) => Timestamp::from_unix_secs((d + plus_days) * 86_400 - i64::from(ctx.offset()) * 3600)
            .to_rfc3339(ctx.offset()),
        None => s.to_string(),
    }
}

async fn create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let money = |k: &str| f.opt(k).map(|v| Fen::parse_yuan(v).map(|x| x.0).unwrap_or(-1));
    let tiers: Vec<TierIn> = (1..=3)
        .filter_map(|i| {
            Some(TierIn { threshold_fen: money(&format!("t{i}"))?, off_fen: money(&format!("o{i}")).unwrap_or(-1) })
        })
        .collect();
    // The gift is the chosen product's first SKU on sale.
    let gift_sku_id = match f.opt("gift_product").and_then(|p| p.parse::<Uuid>().ok()) {
        Some(p) => s
            .store
            .product(ctx.tenant.id, siyu_core::ProductId(p))
            .await
            .ok()
            .and_then(|p| p.skus.iter().find(|k| k.active).map(|k| k.id.0)),
        None => None,
    };
    let b = PromotionIn {
        name: f.get("name").into(),
        kind: f.get("kind").into(),
        tiers,
        step_fen: money("step").unwrap_or(0),
        off_fen: money("off").unwrap_or(0),
        max_off_fen: money("max_off"),
        threshold_fen: money("threshold").unwrap_or(0),
        off_bp: f.opt("zhe").map(|z| Fen::parse_yuan(z).map(|x| 10_000 - x.0 * 10).unwrap_or(-1)).unwrap_or(0),
        gift_sku_id,
        gift_qty: f.opt("gift_qty").map_or(1, |q| q.trim().parse().unwrap_or(0)),
        product_ids: Vec::new(),
        category_ids: Vec::new(),
        exclude_product_ids: Vec::new(),
        // The last day is included: the window ends when the day after it starts.
        starts_at: day(&ctx, f.get("from"), 0),
        ends_at: day(&ctx, f.get("to"), 1),
    };
    let res = match crate::api::commerce::promotions::promotion_input(&s, ctx.tenant.id, b).await {
        Ok(i) => s.store.create_promotion(&ctx.actor, &i).await.map(|_| ()).map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let res = res.map_err(|e| {
        super::rename_fields(
            e,
            &[
                ("tiers", "t1"),
                ("tiers.0", "t1"),
                ("tiers.1", "t2"),
                ("tiers.2", "t3"),
                ("step_fen", "step"),
                ("off_fen", "off"),
                ("max_off_fen", "max_off"),
                ("threshold_fen", "threshold"),
                ("off_bp", "zhe"),
                ("gift_sku_id", "gift_product"),
                ("starts_at", "from"),
                ("ends_at", "to"),
            ],
        )
    });
    match res {
        Ok(()) => Redirect::to("/console/promotions?saved=1").into_response(),
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
    match s.store.stop_promotion(&ctx.actor, PromotionId(id)).await {
        Ok(_) => Redirect::to("/console/promotions?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

//! Console page for presales with a deposit (预售 / 定金膨胀): create one over a product's
//! SKUs, watch its deposits and balances, and cancel it (which refunds everything, PS-2).

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
use siyu_core::{Fen, PresaleId, Timestamp};

use super::yuan;
use super::{Ctx, FormData};
use crate::api::commerce::presales::{PresaleIn, PresaleSkuIn};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/presales", get(page).post(create))
        .route("/console/presales/{id}/cancel", post(cancel))
}

async fn view(
    s: &AppState,
    ctx: &Ctx,
    values: Value,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let list = match s.store.presales(ctx.tenant.id).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let now = s.store.now();
    let rows: Vec<Value> = list
        .iter()
        .map(|p| {
            let phase = serde_json::to_value(p.phase(now)).ok().and_then(|v| v.as_str().map(str::to_string));
            let phase = if p.status == "active" { phase.unwrap_or_default() } else { "cancelled".into() };
            json!({"id": p.id, "name": p.name, "product": p.product_title, "phase": ctx.t(&format!("presales.phase.{phase}")),
                "deposit": format!("{} – {}", ctx.when(p.windows.deposit_start), ctx.when(p.windows.deposit_end)),
                "balance": format!("{} – {}", ctx.when(p.windows.final_start), ctx.when(p.windows.final_end)),
                "terms": p.skus.iter().map(|k| crate::i18n::tf(ctx.lang, "presales.terms", &[
                    ("s", if k.spec.is_empty() { "—" } else { &k.spec }), ("p", &yuan(k.terms.price_fen)),
                    ("d", &yuan(k.terms.deposit_fen)), ("v", &yuan(k.terms.deposit_value_fen)),
                    ("t", &k.taken.to_string()), ("q", &k.quota.to_string())])).collect::<Vec<_>>(),
                "forfeit": p.deposit_forfeit,
                "stats": crate::i18n::tf(ctx.lang, "presales.stats", &[
                    ("w", &p.stats.awaiting_deposit.to_string()), ("b", &p.stats.awaiting_balance.to_string()),
                    ("p", &p.stats.paid.to_string()), ("c", &p.stats.cancelled.to_string()),
                    ("d", &yuan(p.stats.deposits_fen)), ("f", &yuan(p.stats.balances_fen))]),
                "cancellable": p.status == "active" && p.phase(now) != siyu_core::commerce::presale::Phase::Over})
        })
        .collect();
    let form = super::FormState { values, errors, msg };
    let mut m = super::play_frame(s, ctx, "presales", "presales.title", rows, form).await;
    m.insert("can_refund".into(), json!(ctx.can(Scope::CommerceRefund)));
    ctx.render_with(status, "presales.html", m)
}

async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let msg = match q.get("cancelled") {
        Some(counts) => {
            let n: Vec<&str> = counts.split('.').collect();
            let at = |i: usize| n.get(i).copied().unwrap_or("0");
            Some(crate::i18n::tf(
                ctx.lang,
                "presales.cancelled_msg",
                &[("c", at(0)), ("b", at(1)), ("r", at(2)), ("f", at(3))],
            ))
        }
        None => super::flag(&q, "saved").then(|| ctx.t("common.saved")),
    };
    view(&s, &ctx, json!({"quota": "100"}), Map::new(), msg, StatusCode::OK).await
}

/// A `datetime-local` value (`YYYY-MM-DDTHH:MM`, the operator's zone) as RFC 3339.
pub(super) fn local_time(ctx: &Ctx, v: &str) -> String {
    let v = v.trim();
    let (day, clock) = v.split_once('T').unwrap_or((v, "00:00"));
    let hm: Vec<i64> = clock.split(':').take(2).filter_map(|x| x.parse().ok()).collect();
    match (siyu_core::time::parse_day(day), hm.as_slice()) {
        (Some(d), [h, m]) if (0..24).contains(h) && (0..60).contains(m) => {
            Timestamp::from_unix_secs(d * 86_400 + h * 3600 + m * 60 - i64::from(ctx.offset()) * 3600)
                .to_rfc3339(ctx.offset())
        }
        _ => v.to_string(),
    }
}

async fn create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let res = async {
        let money = |k: &str| f.opt(k).map(|v| Fen::parse_yuan(v).map(|x| x.0).unwrap_or(-1));
        let p = super::form_product(&s, ctx.tenant.id, &f).await?;
        let quota = f.get("quota").trim().parse::<i64>().unwrap_or(-1);
        // Every SKU on sale joins, at the presale price or, left blank, at its own price.
        let skus: Vec<PresaleSkuIn> = p
            .skus
            .iter()
            .filter(|k| k.active)
            .map(|k| PresaleSkuIn {
                sku_id: k.id.0,
                price_fen: money("price").unwrap_or(k.price_fen),
                deposit_fen: money("deposit").unwrap_or(0),
                deposit_value_fen: money("deposit_value").or(money("deposit")).unwrap_or(0),
                quota,
            })
            .collect();
        let b = PresaleIn {
            name: f.get("name").into(),
            deposit_start: local_time(&ctx, f.get("deposit_start")),
            deposit_end: local_time(&ctx, f.get("deposit_end")),
            final_start: local_time(&ctx, f.get("final_start")),
            final_end: local_time(&ctx, f.get("final_end")),
            ship_from: f.opt("ship_from").map(|v| local_time(&ctx, v)),
            deposit_forfeit: f.checked("deposit_forfeit"),
            skus,
        };
        let input = crate::api::commerce::presales::presale_input(b)?;
        s.store.create_presale(&ctx.actor, &input).await?;
        Ok::<(), ApiError>(())
    }
    .await;
    // Every SKU shares the form's terms, so a SKU's error is the form field's.
    let res = res.map_err(|e| {
        super::rename_fields(
            e,
            &[
                ("skus.0.price_fen", "deposit_value"),
                ("skus.0.quota", "quota"),
                ("skus.0.sku_id", "product_id"),
                ("skus", "product_id"),
            ],
        )
    });
    match res {
        Ok(()) => Redirect::to("/console/presales?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => view(&s, &ctx, f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await,
            Err(r) => *r,
        },
    }
}

async fn cancel(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceRefund) {
        return r;
    }
    match crate::api::commerce::presales::cancel_presale(&s, &ctx.actor, PresaleId(id)).await {
        Ok(o) => Redirect::to(&format!(
            "/console/presales?cancelled={}.{}.{}.{}",
            o.cancelled, o.closed, o.refunded, o.failed
        ))
        .into_response(),
        Err(e) => ctx.fail(e),
    }
}

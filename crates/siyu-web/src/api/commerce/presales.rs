//! Presales with a deposit (预售 / 定金膨胀) for operators: create one over a product's SKUs,
//! read how its orders stand, and cancel it, which settles every order of it (PS-2).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::{Actor, Scope};
use siyu_core::commerce::order::OrderStatus;
use siyu_core::commerce::presale::{PresaleDraft, PresaleInput, PresaleSkuInput, Terms};
use siyu_core::{OrderId, PresaleId, Timestamp};
use siyu_store::commerce::payments::{NewRefund, RefundKind};
use siyu_store::commerce::presales::Presale;

use crate::api::dto::{rfc3339, ts};
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::AppState;

#[derive(Deserialize, Serialize, ToSchema, Clone)]
pub struct PresaleSkuIn {
    pub sku_id: Uuid,
    /// The presale price of one unit.
    pub price_fen: i64,
    /// Paid up front per unit.
    pub deposit_fen: i64,
    /// What the deposit is worth against the price (≥ the deposit: 定金膨胀).
    pub deposit_value_fen: i64,
    /// Units this presale may sell.
    pub quota: i64,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "双11 预售", "deposit_start": "2026-10-20T20:00:00+08:00",
    "deposit_end": "2026-11-10T20:00:00+08:00", "final_start": "2026-11-10T20:00:00+08:00",
    "final_end": "2026-11-11T23:59:59+08:00", "ship_from": "2026-11-12T00:00:00+08:00", "deposit_forfeit": true,
    "skus": [{"sku_id": "0194f8e0-0000-7000-8000-000000000001", "price_fen": 29900, "deposit_fen": 5000,
        "deposit_value_fen": 10000, "quota": 500}]}))]
pub struct PresaleIn {
    pub name: String,
    /// RFC 3339; every window is half-open.
    pub deposit_start: String,
    pub deposit_end: String,
    pub final_start: String,
    pub final_end: String,
    /// The earliest the goods ship; defaults to the start of the balance window.
    pub ship_from: Option<String>,
    /// Show "定金不退": a deposit whose balance is never paid is kept.
    #[serde(default)]
    pub deposit_forfeit: bool,
    pub skus: Vec<PresaleSkuIn>,
}

#[derive(Serialize, ToSchema)]
pub struct PresaleSkuOut {
    pub sku_id: Uuid,
    pub spec: String,
    pub price_fen: i64,
    pub deposit_fen: i64,
    pub deposit_value_fen: i64,
    /// price − deposit value: what the balance costs per unit.
    pub balance_fen: i64,
    pub quota: i64,
    pub taken: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PresaleStatsOut {
    pub awaiting_deposit: i64,
    pub awaiting_balance: i64,
    pub paid: i64,
    pub cancelled: i64,
    pub deposits_fen: i64,
    pub balances_fen: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PresaleOut {
    pub id: Uuid,
    pub name: String,
    pub product_id: Uuid,
    pub product_title: String,
    pub deposit_start: String,
    pub deposit_end: String,
    pub final_start: String,
    pub final_end: String,
    pub ship_from: String,
    pub deposit_forfeit: bool,
    /// `active` or `cancelled`.
    pub status: String,
    /// upcoming, deposit, waiting, balance or over.
    pub phase: String,
    pub skus: Vec<PresaleSkuOut>,
    pub stats: PresaleStatsOut,
}

pub fn presale_out(p: Presale, now: Timestamp) -> PresaleOut {
    let phase = serde_json::to_value(p.phase(now)).ok().and_then(|v| v.as_str().map(str::to_string));
    PresaleOut {
        id: p.id.0,
        name: p.name,
        product_id: p.product_id.0,
        product_title: p.product_title,
        deposit_start: ts(p.windows.deposit_start),
        deposit_end: ts(p.windows.deposit_end),
        final_start: ts(p.windows.final_start),
        final_end: ts(p.windows.final_end),
        ship_from: ts(p.ship_from),
        deposit_forfeit: p.deposit_forfeit,
        status: p.status,
        phase: phase.unwrap_or_default(),
        skus: p
            .skus
            .into_iter()
            .map(|k| PresaleSkuOut {
                sku_id: k.sku_id.0,
                spec: k.spec,
                price_fen: k.terms.price_fen,
                deposit_fen: k.terms.deposit_fen,
                deposit_value_fen: k.terms.deposit_value_fen,
                balance_fen: k.balance_fen,
                quota: k.quota,
                taken: k.taken,
            })
            .collect(),
        stats: PresaleStatsOut {
            awaiting_deposit: p.stats.awaiting_deposit,
            awaiting_balance: p.stats.awaiting_balance,
            paid: p.stats.paid,
            cancelled: p.stats.cancelled,
            deposits_fen: p.stats.deposits_fen,
            balances_fen: p.stats.balances_fen,
        },
    }
}

/// Checks a presale: its windows in order, its terms per SKU.
pub fn presale_input(b: PresaleIn) -> ApiResult<PresaleInput> {
    let draft = PresaleDraft {
        name: b.name,
        deposit_start: Some(rfc3339("deposit_start", &b.deposit_start)?),
        deposit_end: Some(rfc3339("deposit_end", &b.deposit_end)?),
        final_start: Some(rfc3339("final_start", &b.final_start)?),
        final_end: Some(rfc3339("final_end", &b.final_end)?),
        ship_from: match b.ship_from.as_deref().map(str::trim).filter(|x| !x.is_empty()) {
            Some(v) => Some(rfc3339("ship_from", v)?),
            None => None,
        },
        deposit_forfeit: b.deposit_forfeit,
        skus: b
            .skus
            .iter()
            .map(|k| PresaleSkuInput {
                sku_id: k.sku_id.to_string(),
                terms: Terms {
                    price_fen: k.price_fen,
                    deposit_fen: k.deposit_fen,
                    deposit_value_fen: k.deposit_value_fen,
                },
                quota: k.quota,
            })
            .collect(),
    };
    Ok(draft.validate()?)
}

/// What cancelling a presale did to its orders.
#[derive(Serialize, ToSchema, Default)]
pub struct PresaleCancelOut {
    /// Unpaid deposit orders cancelled.
    pub cancelled: usize,
    /// Orders waiting for the balance closed, their deposits refunded.
    pub closed: usize,
    /// Fully paid orders refunded (what was not refunded already).
    pub refunded: usize,
    /// Orders that could not be settled now (the provider was unreachable, or a payment
    /// landed meanwhile); cancel them from their order page.
    pub failed: usize,
    pub presale: Option<PresaleOut>,
}

/// Cancels a presale and settles its orders: everything taken is given back (PS-2).
pub async fn cancel_presale(s: &AppState, actor: &Actor, id: PresaleId) -> ApiResult<PresaleCancelOut> {
    let t = actor.tenant_id;
    let reason = "the presale was cancelled";
    let mut out = PresaleCancelOut::default();
    for (order, status) in s.store.cancel_presale(actor, id).await? {
        let done = match status {
            OrderStatus::PendingPayment => {
                super::orders::cancel(s, t, order, reason, Some(actor)).await.map(|_| &mut out.cancelled)
            }
            OrderStatus::AwaitingBalance => close_waiting(s, actor, order, reason).await.map(|_| &mut out.closed),
            _ => refund_everything(s, actor, order).await.map(|_| &mut out.refunded),
        };
        match done {
            Ok(n) => *n += 1,
            Err(e) => {
                tracing::warn!(%order, error = ?e, "presale cancelled: an order is left to settle by hand");
                out.failed += 1;
            }
        }
    }
    out.presale = Some(presale_out(s.store.presale(t, id).await?, s.store.now()));
    Ok(out)
}

async fn close_waiting(s: &AppState, actor: &Actor, order: OrderId, reason: &str) -> ApiResult<()> {
    for p in s.store.prepays(actor.tenant_id, order).await?.into_iter().filter(|p| p.status == "open") {
        s.pay.close_at_provider(actor.tenant_id, &p.out_trade_no).await?;
    }
    s.store.close_presale_order(actor.tenant_id, order, reason, true, Some(actor)).await?;
    Ok(())
}

async fn refund_everything(s: &AppState, actor: &Actor, order: OrderId) -> ApiResult<()> {
    let o = s.store.order(actor.tenant_id, order).await?;
    let lines: Vec<(i64, i64)> =
        o.lines.iter().filter(|l| l.qty > l.refunded_qty).map(|l| (l.line_no, l.qty - l.refunded_qty)).collect();
    if lines.is_empty() {
        return Ok(());
    }
    let r = NewRefund {
        lines,
        shipping: o.shipped_at.is_none() && o.shipping_fen > 0,
        reason: Some("the presale was cancelled".into()),
        kind: RefundKind::Merchant,
    };
    s.store.create_refund(actor.tenant_id, order, &r, Some(actor)).await?;
    Ok(())
}

/// Presales, newest first.
#[utoipa::path(get, path = "/api/v1/presales", tag = "coupons", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<PresaleOut>), (status = 403, body = Problem)))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<PresaleOut>>> {
    auth.require(Scope::CommerceRead)?;
    let now = s.store.now();
    Ok(axum::Json(s.store.presales(auth.tenant_id).await?.into_iter().map(|p| presale_out(p, now)).collect()))
}

/// Create a presale. A SKU may be in one presale at a time (STK-1).
#[utoipa::path(post, path = "/api/v1/presales", tag = "coupons", request_body = PresaleIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = PresaleOut), (status = 409, description = "A SKU is in another presale", body = Problem), (status = 422, body = Problem)))]
async fn create(State(s): State<AppState>, auth: Auth, Json(b): Json<PresaleIn>) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let input = presale_input(b)?;
    let p = s.store.create_presale(&auth, &input).await?;
    Ok((StatusCode::CREATED, axum::Json(presale_out(p, s.store.now()))).into_response())
}

/// A presale with its SKUs' quotas and how its orders stand.
#[utoipa::path(get, path = "/api/v1/presales/{presale_id}", tag = "coupons", params(("presale_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = PresaleOut), (status = 404, body = Problem)))]
async fn get_one(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<PresaleOut>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(presale_out(s.store.presale(auth.tenant_id, PresaleId(id)).await?, s.store.now())))
}

/// Cancel a presale: unpaid orders are cancelled, deposits refunded whatever the terms, and
/// fully paid orders refunded in full.
#[utoipa::path(post, path = "/api/v1/presales/{presale_id}/cancel", tag = "coupons", params(("presale_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = PresaleCancelOut), (status = 404, body = Problem)))]
async fn cancel(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<PresaleCancelOut>> {
    auth.require(Scope::CommerceRefund)?;
    s.store.presale(auth.tenant_id, PresaleId(id)).await?;
    Ok(axum::Json(cancel_presale(&s, &auth, PresaleId(id)).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get_one)).routes(routes!(cancel))
}

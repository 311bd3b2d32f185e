//! Orders and refunds for operators: list and read orders with their payments, cancel an
//! unpaid one, ship a paid one, ask WeChat Pay about a payment (PAY-7), refund units, and
//! decide buyers' refund requests.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::order::{OrderEvent, OrderStatus};
use siyu_core::validate::Violations;
use siyu_core::{OrderId, RefundId, TenantId, Timestamp};
use siyu_store::commerce::orders::OrderFilter;
use siyu_store::commerce::payments::{NewRefund, RefundKind};

use super::dto::{CancelIn, DecisionIn, OrderDetailOut, OrderOut, RefundIn, RefundLineIn, RefundOut, ShipIn};
use crate::api::dto::PageOf;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json, Query};
use crate::AppState;

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// pending_payment, paid, awaiting_group, to_ship, shipped, received, completed, cancelled.
    pub status: Option<String>,
    /// Part of the order number.
    pub q: Option<String>,
    pub buyer_id: Option<Uuid>,
    /// Created at or after (RFC 3339).
    pub from: Option<String>,
    /// Created before (RFC 3339).
    pub to: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn bad_query(field: &str, message: &str) -> ApiError {
    ApiError::BadRequest { code: "invalid_query", field: Some(field.into()), message: message.into() }
}

impl OrderQuery {
    pub fn filter(&self) -> ApiResult<OrderFilter> {
        let status = match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(x) => Some(OrderStatus::parse(x).ok_or_else(|| bad_query("status", "status is not an order status"))?),
        };
        let time = |field: &str, v: &Option<String>| -> ApiResult<Option<Timestamp>> {
            match v.as_deref().filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => Timestamp::parse_rfc3339(s).map(Some).ok_or_else(|| bad_query(field, "use RFC 3339")),
            }
        };
        Ok(OrderFilter {
            status,
            buyer: self.buyer_id.map(siyu_core::BuyerId),
            q: self.q.clone().filter(|q| !q.trim().is_empty()),
            created_from: time("from", &self.from)?,
            created_to: time("to", &self.to)?,
        })
    }
}

pub async fn detail(s: &AppState, tenant: TenantId, id: OrderId) -> ApiResult<OrderDetailOut> {
    let order = s.store.order(tenant, id).await?;
    let refunds =
        s.store.refunds(tenant, None, Some(id), &siyu_core::paging::PageRequest::parse(Some(200), None)?).await?;
    Ok(OrderDetailOut {
        order: order.into(),
        payments: s.store.payments_of(tenant, id).await?.into_iter().map(Into::into).collect(),
        prepays: s.store.prepays(tenant, id).await?.into_iter().map(Into::into).collect(),
        refunds: refunds.items.into_iter().map(Into::into).collect(),
    })
}

/// Orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<OrderOut>), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn list_orders(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<OrderQuery>,
) -> ApiResult<axum::Json<PageOf<OrderOut>>> {
    auth.require(Scope::CommerceRead)?;
    let page = siyu_core::paging::PageRequest::parse(q.limit, q.cursor.as_deref())?;
    Ok(axum::Json(PageOf::from(s.store.orders(auth.tenant_id, &q.filter()?, &page).await?)))
}

/// An order with its lines (per-unit allocations), payments, prepays and refunds.
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders", params(("order_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = OrderDetailOut), (status = 404, body = Problem)))]
async fn get_order(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<OrderDetailOut>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(detail(&s, auth.tenant_id, OrderId(id)).await?))
}

/// Cancel an unpaid order; its stock goes back. The prepay is closed at WeChat Pay first,
/// and a payment found there is applied instead.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", tag = "orders", request_body = CancelIn, params(("order_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = OrderDetailOut), (status = 404, body = Problem), (status = 409, description = "Already paid", body = Problem)))]
async fn cancel_order(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<CancelIn>,
) -> ApiResult<axum::Json<OrderDetailOut>> {
    auth.require(Scope::CommerceWrite)?;
    let t = auth.tenant_id;
    s.store.order(t, OrderId(id)).await?;
    let reason = b.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("cancelled by the merchant");
    cancel(&s, t, OrderId(id), reason, Some(&auth)).await?;
    Ok(axum::Json(detail(&s, t, OrderId(id)).await?))
}

/// Cancels an unpaid order after closing its open prepays at the provider (a payment found
/// there wins), for the buyer and the merchant alike.
pub async fn cancel(
    s: &AppState,
    t: TenantId,
    id: OrderId,
    reason: &str,
    by: Option<&siyu_core::auth::Actor>,
) -> ApiResult<()> {
    let open = s.store.prepays(t, id).await?.into_iter().any(|p| p.status == "open");
    if open {
        // A presale order waiting for its balance may be closed too; a payment landing now
        // moves it on, and then it cannot.
        let before = s.store.order(t, id).await?.status;
        if s.pay.check_payment(t, id).await? != before {
            return Err(ApiError::Conflict {
                code: "order_not_cancellable",
                field: None,
                message: "this order has just been paid; ask for a refund instead".into(),
            });
        }
        for p in s.store.prepays(t, id).await?.into_iter().filter(|p| p.status == "open") {
            s.pay.close_at_provider(t, &p.out_trade_no).await?;
        }
    }
    s.store.cancel_order(t, id, reason, by).await?;
    Ok(())
}

/// Ship a paid order with its carrier and tracking number.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/ship", tag = "orders", request_body = ShipIn, params(("order_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = OrderDetailOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn ship_order(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<ShipIn>,
) -> ApiResult<axum::Json<OrderDetailOut>> {
    auth.require(Scope::CommerceWrite)?;
    let t = auth.tenant_id;
    s.store.order(t, OrderId(id)).await?;
    let mut v = Violations::new();
    let carrier = v.text("carrier", &b.carrier, 32);
    let tracking = v.text("tracking_no", &b.tracking_no, 64);
    v.into_result()?;
    s.store.advance_order(t, OrderId(id), OrderEvent::Ship, Some(&auth), Some((&carrier, &tracking))).await?;
    Ok(axum::Json(detail(&s, t, OrderId(id)).await?))
}

/// Ask WeChat Pay whether the order was paid, and apply a payment it reports (查单).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/check-payment", tag = "orders", params(("order_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = OrderDetailOut), (status = 404, body = Problem), (status = 502, body = Problem)))]
async fn check_payment(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<OrderDetailOut>> {
    auth.require(Scope::CommerceRead)?;
    let t = auth.tenant_id;
    s.store.order(t, OrderId(id)).await?;
    s.pay.check_payment(t, OrderId(id)).await?;
    Ok(axum::Json(detail(&s, t, OrderId(id)).await?))
}

/// A refund as the console and the H5 mall post it: parallel `line_no` and `qty` fields, a
/// quantity of 0 meaning "not this line".
pub fn refund_form(line_nos: &[&str], qtys: &[&str], shipping: bool, reason: Option<&str>) -> RefundIn {
    let lines = line_nos
        .iter()
        .zip(qtys)
        .filter_map(|(l, q)| Some(RefundLineIn { line_no: l.parse().ok()?, qty: q.trim().parse().ok()? }))
        .filter(|l| l.qty != 0)
        .collect();
    RefundIn { lines, shipping, reason: reason.map(str::to_string) }
}

pub fn refund_input(b: RefundIn, kind: RefundKind) -> ApiResult<NewRefund> {
    let mut v = Violations::new();
    for (i, l) in b.lines.iter().enumerate() {
        if l.qty < 1 {
            v.push(&format!("lines.{i}.qty"), "out_of_range", "refund at least one unit");
        }
    }
    let reason = v.opt_text("reason", b.reason.as_deref(), 200);
    v.into_result()?;
    Ok(NewRefund { lines: b.lines.iter().map(|l| (l.line_no, l.qty)).collect(), shipping: b.shipping, reason, kind })
}

/// Refund units of a paid order: each unit returns exactly what it paid after every discount;
/// shipping only with every item before shipment. The refund goes to WeChat Pay at once.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/refunds", tag = "orders", request_body = RefundIn, params(("order_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = RefundOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_refund(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<RefundIn>,
) -> ApiResult<Response> {
    auth.require(Scope::CommerceRefund)?;
    let t = auth.tenant_id;
    s.store.order(t, OrderId(id)).await?;
    let r = s.store.create_refund(t, OrderId(id), &refund_input(b, RefundKind::Merchant)?, Some(&auth)).await?;
    submit_soon(&s);
    Ok((StatusCode::CREATED, axum::Json(RefundOut::from(s.store.refund(t, r.id).await?))).into_response())
}

/// Sends approved refunds without waiting for the next sweep.
pub fn submit_soon(s: &AppState) {
    let pay = s.pay.clone();
    tokio::spawn(async move {
        if let Err(e) = pay.push_refunds(50).await {
            tracing::warn!(error = ?e, "refund submission deferred to the sweep");
        }
    });
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct RefundQuery {
    /// requested, approved, submitted, succeeded, abnormal, rejected.
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Refunds, newest first.
#[utoipa::path(get, path = "/api/v1/refunds", tag = "orders", params(RefundQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<RefundOut>), (status = 403, body = Problem)))]
async fn list_refunds(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<RefundQuery>,
) -> ApiResult<axum::Json<PageOf<RefundOut>>> {
    auth.require(Scope::CommerceRead)?;
    let page = siyu_core::paging::PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    Ok(axum::Json(PageOf::from(s.store.refunds(auth.tenant_id, status, None, &page).await?)))
}

async fn decide(s: &AppState, auth: &Auth, id: Uuid, approve: bool, note: Option<String>) -> ApiResult<RefundOut> {
    auth.require(Scope::CommerceRefund)?;
    s.store.refund(auth.tenant_id, RefundId(id)).await?;
    let note = note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    let r = s.store.decide_refund(auth, RefundId(id), approve, note.as_deref()).await?;
    if approve {
        submit_soon(s);
    }
    Ok(r.into())
}

/// Approve a buyer's refund request; it goes to WeChat Pay.
#[utoipa::path(post, path = "/api/v1/refunds/{refund_id}/approve", tag = "orders", request_body = DecisionIn, params(("refund_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = RefundOut), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn approve_refund(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<DecisionIn>,
) -> ApiResult<axum::Json<RefundOut>> {
    Ok(axum::Json(decide(&s, &auth, id, true, b.note).await?))
}

/// Reject a buyer's refund request; its units can be asked for again.
#[utoipa::path(post, path = "/api/v1/refunds/{refund_id}/reject", tag = "orders", request_body = DecisionIn, params(("refund_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = RefundOut), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn reject_refund(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<DecisionIn>,
) -> ApiResult<axum::Json<RefundOut>> {
    Ok(axum::Json(decide(&s, &auth, id, false, b.note).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
        .routes(routes!(ship_order))
        .routes(routes!(check_payment))
        .routes(routes!(create_refund))
        .routes(routes!(list_refunds))
        .routes(routes!(approve_refund))
        .routes(routes!(reject_refund))
}

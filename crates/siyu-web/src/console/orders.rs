//! Console pages for orders: the list with filters and export, an order with why its price
//! is what it is (every pricing step's share per line and per unit), its payments and
//! refunds, and the actions — cancel, ship, ask WeChat Pay, refund units; the refunds queue;
//! and the WeChat Pay settings.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::order::{OrderEvent, OrderStatus};
use siyu_core::{OrderId, RefundId, Timestamp};
use siyu_store::commerce::orders::{Order, OrderFilter};
use siyu_store::commerce::payments::RefundKind;

use super::yuan;
use super::{page_req, pager, qget, Ctx, FormData};
use crate::api::commerce::dto::PaySettingsIn;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/orders", get(orders_page))
        .route("/console/orders/export", get(orders_export))
        .route("/console/orders/{id}", get(order_page))
        .route("/console/orders/{id}/{action}", post(order_action))
        .route("/console/refunds", get(refunds_page))
        .route("/console/refunds/{id}/{decision}", post(refund_decide))
        .route("/console/pay", get(pay_page).post(pay_submit))
        .route("/console/pay/reconcile", post(pay_reconcile))
}

type Q = Query<HashMap<String, String>>;

fn status_view(ctx: &Ctx, s: OrderStatus) -> Value {
    let tone = match s {
        OrderStatus::PendingPayment => "warning",
        OrderStatus::Cancelled => "neutral",
        OrderStatus::Paid | OrderStatus::ToShip | OrderStatus::AwaitingGroup => "info",
        _ => "success",
    };
    json!({"value": s.as_str(), "label": ctx.t(&format!("order.status.{}", s.as_str())), "tone": tone})
}

fn refund_status_view(ctx: &Ctx, s: &str) -> Value {
    let tone = match s {
        "succeeded" => "success",
        "requested" => "warning",
        "abnormal" => "danger",
        "rejected" => "neutral",
        _ => "info",
    };
    json!({"value": s, "label": ctx.t(&format!("refund.status.{s}")), "tone": tone})
}

/// Start of a local day (`YYYY-MM-DD`) as an instant.
fn day_start(ctx: &Ctx, s: Option<&str>) -> Option<Timestamp> {
    let day = siyu_core::time::parse_day(s?)?;
    Some(Timestamp::from_unix_secs(day * 86_400 - i64::from(ctx.offset()) * 3600))
}

fn filter(ctx: &Ctx, q: &HashMap<String, String>) -> OrderFilter {
    OrderFilter {
        status: qget(q, "status").and_then(OrderStatus::parse),
        buyer: None,
        q: qget(q, "q").map(str::to_string),
        created_from: day_start(ctx, qget(q, "from")),
        created_to: day_start(ctx, qget(q, "to")).map(|t| t.plus(std::time::Duration::from_secs(86_400))),
    }
}

fn row(ctx: &Ctx, o: &Order) -> Value {
    let items: Vec<String> = o.lines.iter().map(|l| format!("{} ×{}", l.title, l.qty)).collect();
    json!({"id": o.id, "no": o.no, "status": status_view(ctx, o.status), "payable": yuan(o.payable_fen),
        "refunded": (o.refunded_fen > 0).then(|| yuan(o.refunded_fen)), "items": items.join("，"),
        "buyer": o.address.as_ref().map(|a| a.name.clone()).or(o.buyer_openid.clone()), "created": ctx.when(o.created_at)})
}

async fn orders_page(State(s): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let page = page_req(&q);
    let list = match s.store.orders(ctx.tenant.id, &filter(&ctx, &q), &page).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let rows: Vec<Value> = list.items.iter().map(|o| row(&ctx, o)).collect();
    let statuses: Vec<Value> = OrderStatus::ALL.iter().map(|s| status_view(&ctx, *s)).collect();
    let filters =
        [("q", qget(&q, "q")), ("status", qget(&q, "status")), ("from", qget(&q, "from")), ("to", qget(&q, "to"))];
    let mut m = ctx.base("orders", "orders.title");
    m.insert("rows".into(), json!(rows));
    m.insert("filter".into(), json!(q));
    m.insert("statuses".into(), json!(statuses));
    m.insert("export".into(), json!(format!("/console/orders/export{}", super::query_with(&filters))));
    m.insert("pager".into(), pager(&ctx, rows.len(), list.next_cursor, &filters, page.before.is_none()));
    ctx.render("orders.html", m)
}

/// Every order matching the filters as CSV (UTF-8 with BOM, so spreadsheet apps read the
/// Chinese), one row per line with its allocated paid amount.
async fn orders_export(State(s): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let f = filter(&ctx, &q);
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "order_no",
        "status",
        "created_at",
        "paid_at",
        "sku_id",
        "title",
        "spec",
        "qty",
        "unit_list_fen",
        "line_paid_fen",
        "order_payable_fen",
        "shipping_fen",
        "refunded_fen",
        "consignee",
        "phone",
        "address",
    ]);
    let mut page = siyu_core::paging::PageRequest { limit: 200, before: None };
    loop {
        let list = match s.store.orders(ctx.tenant.id, &f, &page).await {
            Ok(l) => l,
            Err(e) => return ctx.fail(e),
        };
        for o in &list.items {
            let (name, phone, addr) = o
                .address
                .as_ref()
                .map(|a| (a.name.clone(), a.phone.clone(), format!("{} {}", a.region, a.detail)))
                .unwrap_or_default();
            for l in &o.lines {
                let _ = w.write_record([
                    o.no.clone(),
                    o.status.as_str().to_string(),
                    o.created_at.to_rfc3339(ctx.offset()),
                    o.paid_at.map(|t| t.to_rfc3339(ctx.offset())).unwrap_or_default(),
                    l.sku_id.to_string(),
                    l.title.clone(),
                    l.spec.clone(),
                    l.qty.to_string(),
                    l.unit_list_fen.to_string(),
                    l.paid_fen.to_string(),
                    o.payable_fen.to_string(),
                    o.shipping_fen.to_string(),
                    o.refunded_fen.to_string(),
                    name.clone(),
                    phone.clone(),
                    addr.clone(),
                ]);
            }
        }
        match list.next_cursor.as_deref().and_then(siyu_core::paging::decode_cursor) {
            Some(c) => page.before = Some(c),
            None => break,
        }
    }
    let mut body = "\u{feff}".as_bytes().to_vec();
    body.extend(w.into_inner().unwrap_or_default());
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"orders.csv\"".to_string()),
        ],
        body,
    )
        .into_response()
}

async fn order_view(s: &AppState, ctx: &Ctx, id: Uuid, msg: Option<String>, status: StatusCode) -> Response {
    let d = match crate::api::commerce::orders::detail(s, ctx.tenant.id, OrderId(id)).await {
        Ok(d) => d,
        Err(e) => return ctx.fail(e),
    };
    let o = match s.store.order(ctx.tenant.id, OrderId(id)).await {
        Ok(o) => o,
        Err(e) => return ctx.fail(e),
    };
    let lines: Vec<Value> = o
        .lines
        .iter()
        .map(|l| {
            let shares: Vec<Value> = l
                .shares
                .iter()
                .map(|x| json!({"label": ctx.t(&format!("step.{}", x.kind)), "source": x.source, "amount": yuan(x.fen)}))
                .collect();
            json!({"line_no": l.line_no, "title": l.title, "spec": l.spec, "qty": l.qty, "unit_list": yuan(l.unit_list_fen),
                "unit_price": yuan(l.unit_price_fen), "paid": yuan(l.paid_fen),
                "units": l.units.iter().map(|u| yuan(*u)).collect::<Vec<_>>(), "shares": shares,
                "refundable": l.qty - l.refunded_qty, "refunded": l.refunded_qty})
        })
        .collect();
    let refunds: Vec<Value> = d
        .refunds
        .iter()
        .map(|r| {
            json!({"id": r.id, "no": r.out_refund_no, "amount": yuan(r.amount_fen), "kind": ctx.t(&format!("refund.kind.{}", r.kind)),
                "status": refund_status_view(ctx, &r.status), "reason": r.reason, "detail": r.detail})
        })
        .collect();
    let payments: Vec<Value> = d
        .payments
        .iter()
        .map(|p| {
            json!({"transaction_id": p.transaction_id, "out_trade_no": p.out_trade_no, "amount": yuan(p.amount_fen),
                "disposition": ctx.t(&format!("payment.{}", p.disposition))})
        })
        .collect();
    let mut m = ctx.base("orders", "orders.detail");
    m.insert(
        "order".into(),
        json!({"id": o.id, "no": o.no, "status": status_view(ctx, o.status), "list": yuan(o.list_fen), "goods": yuan(o.goods_fen),
            "shipping": yuan(o.shipping_fen), "payable": yuan(o.payable_fen), "paid": yuan(o.paid_fen), "refunded": yuan(o.refunded_fen),
            "discount": yuan(o.list_fen - o.goods_fen), "created": ctx.when(o.created_at), "expires": ctx.when(o.expires_at),
            "paid_at": o.paid_at.map(|t| ctx.when(t)), "shipped_at": o.shipped_at.map(|t| ctx.when(t)), "carrier": o.carrier,
            "tracking_no": o.tracking_no, "cancel_reason": o.cancel_reason, "address": o.address, "note": o.note,
            "pending": matches!(o.status, OrderStatus::PendingPayment | OrderStatus::AwaitingBalance),
            "shippable": matches!(o.status, OrderStatus::Paid | OrderStatus::ToShip),
            "presale": o.presale_id.map(|_| json!({"deposit": yuan(o.deposit_fen), "balance": yuan(o.payable_fen - o.deposit_fen),
                "deposit_paid_at": o.deposit_paid_at.map(|t| ctx.when(t))})),
            "refundable": o.status.is_paid() && o.status != OrderStatus::AwaitingBalance && o.refunded_fen < o.paid_fen}),
    );
    m.insert("lines".into(), json!(lines));
    m.insert("payments".into(), json!(payments));
    m.insert("refunds".into(), json!(refunds));
    m.insert("error".into(), json!(msg));
    m.insert("failed".into(), json!(status != StatusCode::OK));
    m.insert("can_write".into(), json!(ctx.can(Scope::CommerceWrite)));
    m.insert("can_refund".into(), json!(ctx.can(Scope::CommerceRefund)));
    ctx.render_with(status, "order.html", m)
}

async fn order_page(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, Query(q): Q) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let msg = qget(&q, "done").map(|d| ctx.t(&format!("orders.done.{d}")));
    order_view(&s, &ctx, id, msg, StatusCode::OK).await
}

async fn order_action(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, action)): Path<(Uuid, String)>,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    let scope = if action == "refund" { Scope::CommerceRefund } else { Scope::CommerceWrite };
    if let Some(r) = ctx.deny(&f, scope) {
        return r;
    }
    let t = ctx.tenant.id;
    let oid = OrderId(id);
    if let Err(e) = s.store.order(t, oid).await {
        return ctx.fail(e);
    }
    let res: Result<(), ApiError> = match action.as_str() {
        "cancel" => {
            let reason = f.opt("reason").unwrap_or("cancelled by the merchant").to_string();
            crate::api::commerce::orders::cancel(&s, t, oid, &reason, Some(&ctx.actor)).await
        }
        "ship" => {
            let mut v = siyu_core::validate::Violations::new();
            let carrier = v.text("carrier", f.get("carrier"), 32);
            let tracking = v.text("tracking_no", f.get("tracking_no"), 64);
            match v.into_result() {
                Ok(()) => s
                    .store
                    .advance_order(t, oid, OrderEvent::Ship, Some(&ctx.actor), Some((&carrier, &tracking)))
                    .await
                    .map(|_| ())
                    .map_err(ApiError::from),
                Err(v) => Err(ApiError::Validation(v)),
            }
        }
        "check" => s.pay.check_payment(t, oid).await.map(|_| ()),
        "refund" => {
            let b = crate::api::commerce::orders::refund_form(
                &f.all("line_no"),
                &f.all("qty"),
                f.checked("shipping"),
                f.opt("reason"),
            );
            match crate::api::commerce::orders::refund_input(b, RefundKind::Merchant) {
                Ok(n) => match s.store.create_refund(t, oid, &n, Some(&ctx.actor)).await {
                    Ok(_) => {
                        crate::api::commerce::orders::submit_soon(&s);
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e),
            }
        }
        _ => Err(ApiError::NotFound),
    };
    match res {
        Ok(()) => Redirect::to(&format!("/console/orders/{id}?done={action}")).into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => {
                let text = msg.or_else(|| errors.values().next().and_then(|v| v.as_str()).map(str::to_string));
                order_view(&s, &ctx, id, text, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

async fn refunds_page(State(s): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let page = page_req(&q);
    let list = match s.store.refunds(ctx.tenant.id, qget(&q, "status"), None, &page).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let rows: Vec<Value> = list
        .items
        .iter()
        .map(|r| {
            json!({"id": r.id, "order_id": r.order_id, "order_no": r.order_no, "no": r.out_refund_no, "amount": yuan(r.amount_fen),
                "kind": ctx.t(&format!("refund.kind.{}", r.kind.as_str())), "status": refund_status_view(&ctx, &r.status),
                "reason": r.reason, "detail": r.detail, "created": ctx.when(r.created_at), "requested": r.status == "requested"})
        })
        .collect();
    let statuses: Vec<Value> = ["requested", "approved", "submitted", "succeeded", "abnormal", "rejected"]
        .iter()
        .map(|x| refund_status_view(&ctx, x))
        .collect();
    let filters = [("status", qget(&q, "status"))];
    let mut m = ctx.base("refunds", "refunds.title");
    m.insert("rows".into(), json!(rows));
    m.insert("filter".into(), json!(q));
    m.insert("statuses".into(), json!(statuses));
    m.insert("saved".into(), json!(super::flag(&q, "saved")));
    m.insert("can_refund".into(), json!(ctx.can(Scope::CommerceRefund)));
    m.insert("pager".into(), pager(&ctx, rows.len(), list.next_cursor, &filters, page.before.is_none()));
    ctx.render("refunds.html", m)
}

async fn refund_decide(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, decision)): Path<(Uuid, String)>,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceRefund) {
        return r;
    }
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return ctx.fail(ApiError::NotFound),
    };
    match s.store.decide_refund(&ctx.actor, RefundId(id), approve, f.opt("note")).await {
        Ok(_) => {
            if approve {
                crate::api::commerce::orders::submit_soon(&s);
            }
            Redirect::to("/console/refunds?saved=1").into_response()
        }
        Err(e) => ctx.fail(e),
    }
}

async fn pay_view(
    s: &AppState,
    ctx: &Ctx,
    values: Value,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let (settings, log) =
        match tokio::try_join!(s.store.pay_settings(ctx.tenant.id), s.store.pay_notifications(ctx.tenant.id, 50)) {
            Ok(x) => x,
            Err(e) => return ctx.fail(e),
        };
    let mut m = ctx.base("pay", "pay.title");
    m.insert("configured".into(), json!(settings.is_some()));
    m.insert("notify_url".into(), json!(crate::pay::notify_url(&ctx.origin, ctx.tenant.id)));
    m.insert(
        "log".into(),
        json!(log
            .iter()
            .map(|n| json!({"id": n.id, "event": n.event_type, "trade": n.out_trade_no, "outcome": n.outcome,
                "detail": n.detail, "at": ctx.when(n.received_at)}))
            .collect::<Vec<_>>()),
    );
    m.insert("values".into(), values);
    m.insert("errors".into(), json!(errors));
    m.insert("error".into(), json!(msg));
    m.insert("can_write".into(), json!(ctx.can(Scope::SettingsWrite)));
    m.insert("can_reconcile".into(), json!(ctx.can(Scope::CommerceWrite)));
    let recons = s.store.reconciliations(ctx.tenant.id, 30).await.unwrap_or_default();
    m.insert(
        "recons".into(),
        json!(recons
            .iter()
            .map(|r| json!({"date": r.bill_date, "status": ctx.t(&format!("pay.recon.status.{}", r.status)),
                "lines": r.lines, "matched": r.matched, "detail": r.detail,
                "problems": r.problems.iter().map(|p| json!({"label": ctx.t(&format!("pay.recon.code.{}", p.code)),
                    "reference": p.reference, "detail": p.detail})).collect::<Vec<_>>()}))
            .collect::<Vec<_>>()),
    );
    ctx.render_with(status, "pay.html", m)
}

async fn pay_page(State(s): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    if let Some(r) = ctx.require(Scope::SettingsRead) {
        return r;
    }
    let values = match s.store.pay_settings(ctx.tenant.id).await {
        Ok(Some(p)) => json!({"appid": p.appid, "mchid": p.mchid, "merchant_serial": p.merchant_serial,
            "platform_key_id": p.platform_key_id, "platform_public_key_pem": p.platform_public_key_pem,
            "base_url": p.base_url, "notify_base": p.notify_base, "order_timeout_minutes": p.order_timeout_secs / 60,
            "login_base_url": p.login_base_url, "has_app_secret": p.has_app_secret}),
        Ok(None) => {
            json!({"notify_base": ctx.origin, "order_timeout_minutes": 30, "base_url": crate::pay::WECHATPAY_BASE_URL})
        }
        Err(e) => return ctx.fail(e),
    };
    let msg = super::flag(&q, "saved").then(|| ctx.t("common.saved"));
    pay_view(&s, &ctx, values, Map::new(), msg, StatusCode::OK).await
}

/// Reconciles one day's bill now, and shows the outcome on the pay page.
async fn pay_reconcile(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let res = match crate::api::commerce::settings::bill_date(&s, f.get("bill_date")) {
        Ok(day) => match s.pay.reconcile(ctx.tenant.id, &day, true).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(ApiError::Conflict {
                code: "reconciliation_running",
                field: None,
                message: "this day's bill is being reconciled right now".into(),
            }),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match res {
        Ok(r) => {
            let msg = crate::i18n::tf(
                ctx.lang,
                "pay.recon.done",
                &[("d", &r.bill_date), ("m", &r.matched.to_string()), ("p", &r.problems.len().to_string())],
            );
            pay_view(&s, &ctx, json!({}), Map::new(), Some(msg), StatusCode::OK).await
        }
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => pay_view(&s, &ctx, f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await,
            Err(r) => *r,
        },
    }
}

async fn pay_submit(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    let b = PaySettingsIn {
        appid: f.get("appid").into(),
        mchid: f.get("mchid").into(),
        merchant_serial: f.get("merchant_serial").into(),
        merchant_key_pem: f.opt("merchant_key_pem").map(str::to_string),
        apiv3_key: f.opt("apiv3_key").map(str::to_string),
        platform_key_id: f.opt("platform_key_id").map(str::to_string),
        platform_public_key_pem: f.opt("platform_public_key_pem").map(str::to_string),
        platform_certs: Vec::new(),
        base_url: f.opt("base_url").map(str::to_string),
        notify_base: f.get("notify_base").into(),
        order_timeout_minutes: f.opt("order_timeout_minutes").map(|x| x.trim().parse().unwrap_or(0)),
        app_secret: f.opt("app_secret").map(str::to_string),
        login_base_url: f.opt("login_base_url").map(str::to_string),
    };
    let res = match crate::api::commerce::settings::validate(b) {
        Ok(i) => s.store.save_pay_settings(&ctx.actor, &i).await.map(|_| ()).map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => Redirect::to("/console/pay?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => {
                let mut v = f.values();
                if let Some(o) = v.as_object_mut() {
                    o.remove("merchant_key_pem");
                    o.remove("apiv3_key");
                    o.remove("app_secret");
                }
                pay_view(&s, &ctx, v, errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

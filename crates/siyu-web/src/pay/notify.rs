//! The URL WeChat Pay posts to: `/pay/notify/{tenant_id}` (protocols.md §7.1–7.6).
//!
//! Verify on the raw body with the tenant's platform keys and the server clock, decrypt, check
//! the resource against our order (PAY-2), apply it, and answer 200 only after the change is
//! committed (PAY-3). A verification failure is a 401 and changes nothing; a storage failure
//! is a 500, so WeChat Pay delivers again. Applying is idempotent by transaction id and
//! refund number, so any number of deliveries, in any order, leaves one outcome (PAY-4).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use uuid::Uuid;

use siyu_core::TenantId;
use siyu_pay::notify::Headers;
use siyu_pay::{Notice, RefundStatus, TradeState};
use siyu_store::commerce::payments::PaymentResult;
use siyu_store::StoreError;

use super::PayGateway;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/pay/notify/{tenant_id}", post(receive))
}

fn fail(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(serde_json::json!({"code": "FAIL", "message": why}))).into_response()
}

fn outcome_of(r: &PaymentResult) -> &'static str {
    match r {
        PaymentResult::Paid { .. } => "paid",
        PaymentResult::Duplicate => "duplicate",
        PaymentResult::UnknownTrade => "unknown_trade",
        PaymentResult::AmountMismatch { .. } => "amount_mismatch",
        PaymentResult::LatePayment { .. } => "late_payment",
        PaymentResult::DoublePayment { .. } => "double_payment",
    }
}

async fn receive(State(s): State<AppState>, Path(tenant): Path<Uuid>, headers: HeaderMap, body: Bytes) -> Response {
    let tenant = TenantId(tenant);
    let creds = match s.store.pay_credentials(tenant).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return fail(StatusCode::NOT_FOUND, "payments are not configured"),
        Err(e) => {
            tracing::error!(%tenant, error = %e, "pay notify: cannot load settings");
            return fail(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable");
        }
    };
    let pairs = headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)));
    let opened = Headers::from_pairs(pairs).map_err(|e| e.to_string()).and_then(|h| {
        let client = super::client(&s.store, &creds)?;
        client.open_notification(&h, &body).map_err(|e| e.to_string())
    });
    let (n, notice) = match opened {
        Ok(x) => x,
        Err(why) => {
            tracing::warn!(%tenant, reason = %why, "pay notify refused");
            return fail(StatusCode::UNAUTHORIZED, "verification failed");
        }
    };
    let gw = PayGateway::new(s.store.clone());
    let (trade, outcome, detail) = match &notice {
        Notice::Transaction(t) => {
            if !matches!(t.trade_state, TradeState::Success) {
                (Some(t.out_trade_no.as_str()), "ignored", Some(format!("trade_state {}", t.trade_state.as_str())))
            } else {
                match gw.apply_transaction(tenant, &creds, t).await {
                    Ok(r) => {
                        let detail = match &r {
                            PaymentResult::AmountMismatch { expected, got } => {
                                Some(format!("expected {expected} fen, notified {got} fen"))
                            }
                            _ => None,
                        };
                        (Some(t.out_trade_no.as_str()), outcome_of(&r), detail)
                    }
                    Err(e) => {
                        tracing::error!(%tenant, error = %e, "pay notify: payment not applied");
                        return fail(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable");
                    }
                }
            }
        }
        Notice::Refund(r) => {
            let ok = r.status == RefundStatus::Success;
            let final_ = ok || matches!(r.status, RefundStatus::Abnormal | RefundStatus::Closed);
            let res = if final_ {
                s.store.finish_refund(tenant, &r.out_refund_no, ok, Some(&r.refund_id), Some(r.status.as_str())).await
            } else {
                Ok(false)
            };
            match res {
                Ok(_) => {
                    (Some(r.out_trade_no.as_str()), if ok { "refund_succeeded" } else { "refund_not_succeeded" }, None)
                }
                Err(StoreError::NotFound) => (Some(r.out_trade_no.as_str()), "unknown_refund", None),
                Err(e) => {
                    tracing::error!(%tenant, error = %e, "pay notify: refund not applied");
                    return fail(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable");
                }
            }
        }
    };
    // The log is written after the change, so a failure before it makes WeChat Pay retry.
    if let Err(e) =
        s.store.record_pay_notification(tenant, &n.id, &n.event_type, trade, outcome, detail.as_deref()).await
    {
        tracing::warn!(%tenant, error = %e, "pay notify: applied, but the log entry failed");
    }
    StatusCode::OK.into_response()
}

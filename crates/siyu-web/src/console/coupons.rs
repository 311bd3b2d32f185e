//! Console page for coupons: templates with how many were claimed and used, a form to create
//! one (amounts in yuan, percentage as 折), and stopping a template.

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
use siyu_core::commerce::coupon::Validity;
use siyu_core::commerce::pricing::CouponKind;
use siyu_core::{CouponTemplateId, Fen};

use super::yuan;
use super::{Ctx, FormData};
use crate::api::commerce::dto::CouponTemplateIn;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/coupons", get(page).post(create))
        .route("/console/coupons/{id}/stop", post(stop))
        .route("/console/coupons/{id}/issue", post(issue))
}

/// What a coupon takes off, in the operator's words.
pub fn describe(ctx: &Ctx, k: &CouponKind) -> String {
    match k {
        CouponKind::Amount { face, threshold } => {
            if *threshold > 0 {
                crate::i18n::tf(ctx.lang, "coupons.desc.amount", &[("t", &yuan(*threshold)), ("f", &yuan(*face))])
            } else {
                crate::i18n::tf(ctx.lang, "coupons.desc.free", &[("f", &yuan(*face))])
            }
        }
        CouponKind::Percent { off_bp, cap, threshold } => {
            let zhe = crate::mall::pages::zhe(*off_bp);
            let mut s = crate::i18n::tf(ctx.lang, "coupons.desc.percent", &[("z", &zhe)]);
            if *threshold > 0 {
                s = format!(
                    "{} · {}",
                    crate::i18n::tf(ctx.lang, "coupons.desc.threshold", &[("t", &yuan(*threshold))]),
                    s
                );
            }
            if let Some(c) = cap {
                s = format!("{s} · {}", crate::i18n::tf(ctx.lang, "coupons.desc.cap", &[("c", &yuan(*c))]));
            }
            s
        }
        CouponKind::Shipping { face, .. } => crate::i18n::tf(ctx.lang, "coupons.desc.shipping", &[("f", &yuan(*face))]),
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
    let list = match s.store.coupon_templates(ctx.tenant.id).await {
        Ok(l) => l,
        Err(e) => return ctx.fail(e),
    };
    let rows: Vec<Value> = list
        .iter()
        .map(|t| {
            let validity = match t.validity {
                Validity::Days { days } => crate::i18n::tf(ctx.lang, "coupons.valid_days", &[("n", &days.to_string())]),
                Validity::Fixed { start, end } => format!("{} – {}", ctx.when(start), ctx.when(end)),
            };
            json!({"id": t.id, "name": t.name, "what": describe(ctx, &t.kind), "validity": validity, "issued": t.issued,
                "total": t.total, "per_user": t.per_user, "code": t.code, "active": t.status == "active",
                "status": ctx.t(&format!("coupons.status.{}", t.status))})
        })
        .collect();
    let mut m = ctx.base("coupons", "coupons.title");
    m.insert("rows".into(), json!(rows));
    m.insert("values".into(), values);
    m.insert("errors".into(), json!(errors));
    m.insert("error".into(), json!(msg));
    m.insert(
        "kinds".into(),
        json!(["amount", "percent", "shipping"]
            .iter()
            .map(|k| json!({"value": k, "label": ctx.t(&format!("coupons.kind.{k}"))}))
            .collect::<Vec<_>>()),
    );
    m.insert("can_write".into(), json!(ctx.can(Scope::CommerceWrite)));
    let segments = if ctx.can(Scope::CustomersRead) {
        s.store.segments(ctx.tenant.id).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    m.insert(
        "segments".into(),
        json!(segments.iter().map(|x| json!({"value": x.id, "label": x.name})).collect::<Vec<_>>()),
    );
    ctx.render_with(status, "coupons.html", m)
}

async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let msg = match (q.get("issued"), q.get("refused"), q.get("without")) {
        (Some(i), Some(r), Some(w)) => {
            Some(crate::i18n::tf(ctx.lang, "coupons.issued_msg", &[("i", i), ("r", r), ("w", w)]))
        }
        _ => super::flag(&q, "saved").then(|| ctx.t("common.saved")),
    };
    view(&s, &ctx, json!({"kind": "amount", "valid_days": "7", "per_user": "1"}), Map::new(), msg, StatusCode::OK).await
}

async fn create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let money = |k: &str| f.opt(k).map(|v| Fen::parse_yuan(v).map(|x| x.0).unwrap_or(-1));
    // 折 as people say it: 9 折 is 10 % off, 8.5 折 is 15 % off.
    let off_bp = f.opt("zhe").map(|z| Fen::parse_yuan(z).map(|x| 10_000 - x.0 * 10).unwrap_or(-1)).unwrap_or(0);
    let int = |k: &str| f.opt(k).map(|v| v.trim().parse::<i64>().unwrap_or(-1));
    let b = CouponTemplateIn {
        name: f.get("name").into(),
        kind: f.get("kind").into(),
        face_fen: money("face").unwrap_or(0),
        off_bp,
        cap_fen: money("cap"),
        threshold_fen: money("threshold").unwrap_or(0),
        product_ids: Vec::new(),
        category_ids: Vec::new(),
        exclude_product_ids: Vec::new(),
        valid_from: None,
        valid_to: None,
        valid_days: int("valid_days"),
        total: int("total").unwrap_or(0),
        per_user: int("per_user"),
        code: f.opt("code").map(str::to_string),
    };
    let res = match crate::api::commerce::coupons::template_input(&s, ctx.tenant.id, b).await {
        Ok(i) => s.store.create_coupon_template(&ctx.actor, &i).await.map(|_| ()).map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let res = res.map_err(|e| {
        super::rename_fields(
            e,
            &[("face_fen", "face"), ("off_bp", "zhe"), ("cap_fen", "cap"), ("threshold_fen", "threshold")],
        )
    });
    match res {
        Ok(()) => Redirect::to("/console/coupons?saved=1").into_response(),
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
    match s.store.stop_coupon_template(&ctx.actor, CouponTemplateId(id)).await {
        Ok(_) => Redirect::to("/console/coupons?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn issue(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite).or_else(|| ctx.require(Scope::CustomersRead)) {
        return r;
    }
    let Ok(segment) = f.get("segment_id").parse::<Uuid>() else { return ctx.fail(ApiError::NotFound) };
    match crate::api::commerce::coupons::issue_to_segment(&s, &ctx.actor, CouponTemplateId(id), segment).await {
        Ok(o) => Redirect::to(&format!(
            "/console/coupons?issued={}&refused={}&without={}",
            o.issued, o.refused, o.without_mall_account
        ))
        .into_response(),
        Err(e) => ctx.fail(e),
    }
}

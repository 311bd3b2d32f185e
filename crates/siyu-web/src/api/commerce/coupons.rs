//! Coupon templates for operators: create (amount, percentage or shipping; threshold; scope;
//! fixed or N-day validity; total and per-customer limits; optional promo code), list with
//! how many were claimed and used, and stop.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::coupon::{TemplateDraft, TemplateInput};
use siyu_core::commerce::pricing;
use siyu_core::{CouponTemplateId, TenantId, Timestamp};

use super::dto::{CouponTemplateIn, CouponTemplateOut};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::AppState;

/// Validates a template and checks that its scope names this tenant's products and categories.
pub async fn template_input(s: &AppState, tenant: TenantId, b: CouponTemplateIn) -> ApiResult<TemplateInput> {
    let time = |field: &str, v: &Option<String>| -> ApiResult<Option<Timestamp>> {
        match v.as_deref().map(str::trim).filter(|x| !x.is_empty()) {
            None => Ok(None),
            Some(x) => crate::api::dto::rfc3339(field, x).map(Some),
        }
    };
    let draft = TemplateDraft {
        name: b.name,
        kind: b.kind,
        face_fen: b.face_fen,
        off_bp: b.off_bp,
        cap_fen: b.cap_fen,
        threshold_fen: b.threshold_fen,
        scope: pricing::Scope {
            products: b.product_ids.iter().map(Uuid::to_string).collect(),
            categories: b.category_ids.iter().map(Uuid::to_string).collect(),
            exclude: b.exclude_product_ids.iter().map(Uuid::to_string).collect(),
        },
        valid_from: time("valid_from", &b.valid_from)?,
        valid_to: time("valid_to", &b.valid_to)?,
        valid_days: b.valid_days,
        total: b.total,
        per_user: b.per_user,
        code: b.code,
    };
    let input = draft.validate()?;
    check_scope(s, tenant, &b.product_ids, &b.category_ids, &b.exclude_product_ids).await?;
    Ok(input)
}

/// A scope may name only this tenant's products and categories.
pub async fn check_scope(
    s: &AppState,
    tenant: TenantId,
    products: &[Uuid],
    categories: &[Uuid],
    excluded: &[Uuid],
) -> ApiResult<()> {
    for (field, ids) in [("product_ids", products), ("exclude_product_ids", excluded)] {
        for id in ids {
            if s.store.product(tenant, siyu_core::ProductId(*id)).await.is_err() {
                return Err(ApiError::validation(field, "unknown_reference", "a product in the scope does not exist"));
            }
        }
    }
    let cats: Vec<Uuid> = s.store.categories(tenant).await?.into_iter().map(|c| c.id.0).collect();
    if categories.iter().any(|c| !cats.contains(c)) {
        return Err(ApiError::validation(
            "category_ids",
            "unknown_reference",
            "a category in the scope does not exist",
        ));
    }
    Ok(())
}

/// Coupon templates, newest first.
#[utoipa::path(get, path = "/api/v1/coupon-templates", tag = "coupons", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<CouponTemplateOut>), (status = 403, body = Problem)))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<CouponTemplateOut>>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.coupon_templates(auth.tenant_id).await?.into_iter().map(Into::into).collect()))
}

/// Create a coupon template. Its rules are frozen once created (CP-7): stop it and create a
/// new one to change them.
#[utoipa::path(post, path = "/api/v1/coupon-templates", tag = "coupons", request_body = CouponTemplateIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = CouponTemplateOut), (status = 409, description = "The promo code is taken", body = Problem), (status = 422, body = Problem)))]
async fn create(State(s): State<AppState>, auth: Auth, Json(b): Json<CouponTemplateIn>) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let input = template_input(&s, auth.tenant_id, b).await?;
    let t: CouponTemplateOut = s.store.create_coupon_template(&auth, &input).await?.into();
    Ok((StatusCode::CREATED, axum::Json(t)).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct CouponTemplateDetailOut {
    pub template: CouponTemplateOut,
    /// Claimed coupons per status: unused, locked, used.
    pub usage: std::collections::BTreeMap<String, i64>,
}

/// A template with how its coupons are used.
#[utoipa::path(get, path = "/api/v1/coupon-templates/{coupon_template_id}", tag = "coupons", params(("coupon_template_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = CouponTemplateDetailOut), (status = 404, body = Problem)))]
async fn get_one(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<CouponTemplateDetailOut>> {
    auth.require(Scope::CommerceRead)?;
    let t = s.store.coupon_template(auth.tenant_id, CouponTemplateId(id)).await?;
    let usage = s.store.coupon_usage(auth.tenant_id, t.id).await?.into_iter().collect();
    Ok(axum::Json(CouponTemplateDetailOut { template: t.into(), usage }))
}

/// Stop giving a template out; coupons already claimed stay usable until they expire.
#[utoipa::path(post, path = "/api/v1/coupon-templates/{coupon_template_id}/stop", tag = "coupons", params(("coupon_template_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = CouponTemplateOut), (status = 404, body = Problem)))]
async fn stop(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<CouponTemplateOut>> {
    auth.require(Scope::CommerceWrite)?;
    Ok(axum::Json(s.store.stop_coupon_template(&auth, CouponTemplateId(id)).await?.into()))
}

#[derive(serde::Deserialize, ToSchema)]
#[schema(example = json!({"segment_id": "01930000-0000-7000-8000-000000000000"}))]
pub struct IssueIn {
    /// A saved segment (人群): each member with a mall account gets one coupon.
    pub segment_id: Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct IssueOut {
    pub issued: u64,
    /// Members refused by the template's total or per-customer limit.
    pub refused: u64,
    /// Members who have never signed in to the mall (no account to hold a coupon).
    pub without_mall_account: u64,
}

/// 定向发券: give one coupon to every member of a segment who has a mall account, under the
/// template's limits.
#[utoipa::path(post, path = "/api/v1/coupon-templates/{coupon_template_id}/issue", tag = "coupons", request_body = IssueIn,
    params(("coupon_template_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = IssueOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn issue(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<IssueIn>,
) -> ApiResult<axum::Json<IssueOut>> {
    auth.require(Scope::CommerceWrite)?;
    auth.require(Scope::CustomersRead)?;
    Ok(axum::Json(issue_to_segment(&s, &auth, CouponTemplateId(id), b.segment_id).await?))
}

/// What the API and the console share for 定向发券.
pub async fn issue_to_segment(
    s: &AppState,
    auth: &siyu_core::auth::Actor,
    id: CouponTemplateId,
    segment: Uuid,
) -> ApiResult<IssueOut> {
    let t = auth.tenant_id;
    let tpl = s.store.coupon_template(t, id).await?;
    let rec = s.store.segment(t, siyu_core::SegmentId(segment)).await.map_err(|e| match e {
        siyu_store::StoreError::NotFound => ApiError::validation("segment_id", "unknown_reference", "no such segment"),
        other => other.into(),
    })?;
    let expr = crate::customers::resolve_expr(s, t, &rec.expr, None).await?;
    let (today, off) = crate::customers::today(s, t).await?;
    let nums = s.store.segment_nums_sql(t, siyu_core::auth::DataScope::Tenant, &expr, today).await?;
    let (issued, refused, without) = s.store.issue_coupons(t, tpl.id, &nums, off).await?;
    Ok(IssueOut { issued, refused, without_mall_account: without })
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one))
        .routes(routes!(stop))
        .routes(routes!(issue))
}

//! Order promotions for operators: 满减 by tiers, 每满减 and 满折, each with a scope and a
//! window; at most one runs at a time. Checkout applies the running one and explains it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::pricing;
use siyu_core::commerce::promotion::{PromotionDraft, PromotionInput};
use siyu_core::{PromotionId, TenantId};
use siyu_store::commerce::promotions::Promotion;

use crate::api::dto::{rfc3339, ts};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::AppState;

#[derive(Deserialize, ToSchema, Clone, Copy)]
pub struct TierIn {
    pub threshold_fen: i64,
    pub off_fen: i64,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "满100减10，满200减30", "kind": "tiers", "tiers": [{"threshold_fen": 10000, "off_fen": 1000}, {"threshold_fen": 20000, "off_fen": 3000}],
    "starts_at": "2026-11-11T00:00:00+08:00", "ends_at": "2026-11-12T00:00:00+08:00"}))]
pub struct PromotionIn {
    pub name: String,
    /// `tiers` (满减: the highest tier met applies), `every` (每满减), `percent` (满折) or
    /// `gift` (满送).
    pub kind: String,
    #[serde(default)]
    pub tiers: Vec<TierIn>,
    /// For `every`: each full `step_fen` takes `off_fen` off, at most `max_off_fen`.
    #[serde(default)]
    pub step_fen: i64,
    #[serde(default)]
    pub off_fen: i64,
    pub max_off_fen: Option<i64>,
    /// For `percent`: from `threshold_fen`, `off_bp` off (1000 = 10 % off).
    #[serde(default)]
    pub threshold_fen: i64,
    #[serde(default)]
    pub off_bp: i64,
    /// For `gift` (满送): from `threshold_fen`, this SKU in `gift_qty` units at no charge,
    /// while it is in stock.
    pub gift_sku_id: Option<Uuid>,
    #[serde(default)]
    pub gift_qty: u32,
    #[serde(default)]
    pub product_ids: Vec<Uuid>,
    #[serde(default)]
    pub category_ids: Vec<Uuid>,
    #[serde(default)]
    pub exclude_product_ids: Vec<Uuid>,
    /// RFC 3339; the window is half-open.
    pub starts_at: String,
    pub ends_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct PromotionOut {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Object)]
    pub rule: serde_json::Value,
    #[schema(value_type = Object)]
    pub scope: serde_json::Value,
    pub starts_at: String,
    pub ends_at: String,
    /// `active` or `stopped`.
    pub status: String,
}

impl From<Promotion> for PromotionOut {
    fn from(p: Promotion) -> Self {
        PromotionOut {
            id: p.id.0,
            name: p.name,
            rule: serde_json::to_value(&p.rule).unwrap_or_default(),
            scope: serde_json::to_value(&p.scope).unwrap_or_default(),
            starts_at: ts(p.starts_at),
            ends_at: ts(p.ends_at),
            status: p.status,
        }
    }
}

/// Validates a promotion and checks its scope names this tenant's products and categories.
pub async fn promotion_input(s: &AppState, tenant: TenantId, b: PromotionIn) -> ApiResult<PromotionInput> {
    let draft = PromotionDraft {
        name: b.name,
        kind: b.kind,
        tiers: b.tiers.iter().map(|t| (t.threshold_fen, t.off_fen)).collect(),
        step_fen: b.step_fen,
        off_fen: b.off_fen,
        max_off_fen: b.max_off_fen,
        threshold_fen: b.threshold_fen,
        off_bp: b.off_bp,
        gift_sku: b.gift_sku_id.map(|u| u.to_string()),
        gift_qty: b.gift_qty,
        scope: pricing::Scope {
            products: b.product_ids.iter().map(Uuid::to_string).collect(),
            categories: b.category_ids.iter().map(Uuid::to_string).collect(),
            exclude: b.exclude_product_ids.iter().map(Uuid::to_string).collect(),
        },
        starts_at: Some(rfc3339("starts_at", &b.starts_at)?),
        ends_at: Some(rfc3339("ends_at", &b.ends_at)?),
    };
    let input = draft.validate()?;
    if let Some(sku) = b.gift_sku_id {
        match s.store.sku(tenant, siyu_core::SkuId(sku)).await {
            Ok(_) => {}
            Err(siyu_store::StoreError::NotFound) => {
                return Err(ApiError::validation("gift_sku_id", "unknown_reference", "no such SKU"))
            }
            Err(e) => return Err(e.into()),
        }
    }
    super::coupons::check_scope(s, tenant, &b.product_ids, &b.category_ids, &b.exclude_product_ids).await?;
    Ok(input)
}

/// Promotions, newest first.
#[utoipa::path(get, path = "/api/v1/promotions", tag = "coupons", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<PromotionOut>), (status = 403, body = Problem)))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<PromotionOut>>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.promotions(auth.tenant_id).await?.into_iter().map(Into::into).collect()))
}

/// Create a promotion. Its window must not overlap another running promotion's.
#[utoipa::path(post, path = "/api/v1/promotions", tag = "coupons", request_body = PromotionIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = PromotionOut), (status = 409, description = "Overlaps a running promotion", body = Problem), (status = 422, body = Problem)))]
async fn create(State(s): State<AppState>, auth: Auth, Json(b): Json<PromotionIn>) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let input = promotion_input(&s, auth.tenant_id, b).await?;
    let out: PromotionOut = s.store.create_promotion(&auth, &input).await?.into();
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// End a promotion now; orders already placed keep their prices.
#[utoipa::path(post, path = "/api/v1/promotions/{promotion_id}/stop", tag = "coupons", params(("promotion_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = PromotionOut), (status = 404, body = Problem)))]
async fn stop(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<PromotionOut>> {
    auth.require(Scope::CommerceWrite)?;
    Ok(axum::Json(s.store.stop_promotion(&auth, PromotionId(id)).await?.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(stop))
}

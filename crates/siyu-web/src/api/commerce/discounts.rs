//! Item promotions for operators: 限时折扣 (SKU prices inside a window) and 第二件半价 (among
//! products). An item takes one promotion of each kind at a time (STK-1); checkout prices
//! with those running and explains them per line.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::discount::{DiscountDraft, DiscountInput};
use siyu_core::DiscountId;
use siyu_store::commerce::discounts::Discount;

use crate::api::dto::{rfc3339, ts};
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::AppState;

#[derive(Deserialize, ToSchema, Clone, Copy)]
pub struct DiscountSkuIn {
    pub sku_id: Uuid,
    /// The SKU's price while the discount runs; below its own price.
    pub price_fen: i64,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
pub struct BundleComponentIn {
    pub product_id: Uuid,
    pub qty: u32,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "周末限时折扣", "kind": "limited_price", "starts_at": "2026-11-28T00:00:00+08:00",
    "ends_at": "2026-11-30T00:00:00+08:00", "skus": [{"sku_id": "0194f8e0-0000-7000-8000-000000000001", "price_fen": 9900}]}))]
pub struct DiscountIn {
    pub name: String,
    /// `limited_price` (限时折扣), `second_half` (第二件半价) or `bundle` (组合套餐).
    pub kind: String,
    /// RFC 3339; the window is half-open.
    pub starts_at: String,
    pub ends_at: String,
    /// For `limited_price`.
    #[serde(default)]
    pub skus: Vec<DiscountSkuIn>,
    /// For `second_half`.
    #[serde(default)]
    pub product_ids: Vec<Uuid>,
    /// For `bundle`: its products with their quantities, and what they cost together.
    #[serde(default)]
    pub components: Vec<BundleComponentIn>,
    pub bundle_price_fen: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DiscountItemOut {
    /// The SKU (limited_price) or product (second_half).
    pub id: Uuid,
    pub label: String,
    pub list_fen: Option<i64>,
    pub price_fen: Option<i64>,
    pub qty: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DiscountOut {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub starts_at: String,
    pub ends_at: String,
    /// `active` or `stopped`.
    pub status: String,
    /// A bundle's price.
    pub bundle_price_fen: Option<i64>,
    pub items: Vec<DiscountItemOut>,
}

impl From<Discount> for DiscountOut {
    fn from(d: Discount) -> Self {
        DiscountOut {
            id: d.id.0,
            name: d.name,
            kind: d.kind.as_str().into(),
            starts_at: ts(d.starts_at),
            ends_at: ts(d.ends_at),
            status: d.status,
            bundle_price_fen: d.price_fen,
            items: d
                .items
                .into_iter()
                .map(|i| DiscountItemOut {
                    id: i.ref_id,
                    label: i.label,
                    list_fen: i.list_fen,
                    price_fen: i.price_fen,
                    qty: i.qty,
                })
                .collect(),
        }
    }
}

pub fn discount_input(b: DiscountIn) -> ApiResult<DiscountInput> {
    let draft = DiscountDraft {
        name: b.name,
        kind: b.kind,
        starts_at: Some(rfc3339("starts_at", &b.starts_at)?),
        ends_at: Some(rfc3339("ends_at", &b.ends_at)?),
        skus: b.skus.iter().map(|s| (s.sku_id.to_string(), s.price_fen)).collect(),
        products: b.product_ids.iter().map(Uuid::to_string).collect(),
        components: b.components.iter().map(|c| (c.product_id.to_string(), c.qty)).collect(),
        bundle_price_fen: b.bundle_price_fen,
    };
    Ok(draft.validate()?)
}

/// Item promotions, newest first.
#[utoipa::path(get, path = "/api/v1/discounts", tag = "coupons", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<DiscountOut>), (status = 403, body = Problem)))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<DiscountOut>>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.discounts(auth.tenant_id).await?.into_iter().map(Into::into).collect()))
}

/// Create an item promotion. An item already in one of the same kind at an overlapping time
/// is refused.
#[utoipa::path(post, path = "/api/v1/discounts", tag = "coupons", request_body = DiscountIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = DiscountOut), (status = 409, description = "Overlaps, or not a discount", body = Problem), (status = 422, body = Problem)))]
async fn create(State(s): State<AppState>, auth: Auth, Json(b): Json<DiscountIn>) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let input = discount_input(b)?;
    let out: DiscountOut = s.store.create_discount(&auth, &input).await?.into();
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// End an item promotion now; orders already placed keep their prices.
#[utoipa::path(post, path = "/api/v1/discounts/{discount_id}/stop", tag = "coupons", params(("discount_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = DiscountOut), (status = 404, body = Problem)))]
async fn stop(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<DiscountOut>> {
    auth.require(Scope::CommerceWrite)?;
    Ok(axum::Json(s.store.stop_discount(&auth, DiscountId(id)).await?.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(stop))
}

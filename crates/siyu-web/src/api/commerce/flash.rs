//! Flash sales (秒杀) for operators: create a sale (its quotas leave the shelf at once) and
//! read how much each bucket pool still holds. Buyers order through the mall API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::flash::{FlashDraft, FlashSkuInput};
use siyu_core::FlashSaleId;
use siyu_store::commerce::flash::FlashSale;

use crate::api::dto::{rfc3339, ts};
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
pub struct FlashSkuIn {
    pub sku_id: Uuid,
    pub price_fen: i64,
    pub quota: i64,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "20点秒杀", "starts_at": "2026-11-23T20:00:00+08:00", "ends_at": "2026-11-23T20:30:00+08:00",
    "per_order": 1, "per_user": 1, "skus": [{"sku_id": "0194f8e0-0000-7000-8000-000000000001", "price_fen": 990, "quota": 1000}]}))]
pub struct FlashSaleIn {
    pub name: String,
    /// RFC 3339; the window is half-open.
    pub starts_at: String,
    pub ends_at: String,
    /// Units per order (default 1).
    pub per_order: Option<i64>,
    /// Units per buyer over the sale, unpaid and paid orders together (default: per_order).
    pub per_user: Option<i64>,
    /// Minutes an unpaid order waits (default 10).
    pub timeout_minutes: Option<i64>,
    /// Rows each pool is split into (default 8).
    pub buckets: Option<u32>,
    pub skus: Vec<FlashSkuIn>,
}

#[derive(Serialize, ToSchema)]
pub struct FlashSkuOut {
    pub sku_id: Uuid,
    pub price_fen: i64,
    pub quota: i64,
    /// Units the pool still holds (those in unpaid orders are not in it).
    pub remaining: i64,
    /// With Redis pre-deduction (`SIYU_REDIS_URL`): units Redis may still admit, which trails
    /// `remaining` by the requests in flight and by gaps reconciliation has yet to repair.
    /// Absent without Redis, or while the sale is not loaded there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_remaining: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FlashSaleOut {
    pub id: Uuid,
    pub name: String,
    pub starts_at: String,
    pub ends_at: String,
    pub per_order: i64,
    pub per_user: i64,
    pub timeout_minutes: i64,
    pub buckets: i64,
    /// `active` or `ended`.
    pub status: String,
    pub skus: Vec<FlashSkuOut>,
}

impl From<FlashSale> for FlashSaleOut {
    fn from(f: FlashSale) -> Self {
        FlashSaleOut {
            id: f.id.0,
            name: f.name,
            starts_at: ts(f.starts_at),
            ends_at: ts(f.ends_at),
            per_order: f.per_order,
            per_user: f.per_user,
            timeout_minutes: f.timeout_secs / 60,
            buckets: f.buckets,
            status: f.status,
            skus: f
                .skus
                .into_iter()
                .map(|k| FlashSkuOut {
                    sku_id: k.sku_id.0,
                    price_fen: k.price_fen,
                    quota: k.quota,
                    remaining: k.remaining,
                    redis_remaining: None,
                })
                .collect(),
        }
    }
}

/// Create a flash sale: each quota leaves the SKU's stock for the sale's pool at once.
#[utoipa::path(post, path = "/api/v1/flash-sales", tag = "coupons", request_body = FlashSaleIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = FlashSaleOut), (status = 409, description = "Short of stock, or the SKU is in another activity", body = Problem), (status = 422, body = Problem)))]
async fn create(State(s): State<AppState>, auth: Auth, Json(b): Json<FlashSaleIn>) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let draft = FlashDraft {
        name: b.name,
        starts_at: Some(rfc3339("starts_at", &b.starts_at)?),
        ends_at: Some(rfc3339("ends_at", &b.ends_at)?),
        per_order: b.per_order,
        per_user: b.per_user,
        timeout_secs: b.timeout_minutes.map(|m| m * 60),
        buckets: b.buckets,
        skus: b
            .skus
            .iter()
            .map(|k| FlashSkuInput { sku_id: k.sku_id.to_string(), price_fen: k.price_fen, quota: k.quota })
            .collect(),
    };
    let input = draft.validate().map_err(super::dto::minutes_fields)?;
    let out: FlashSaleOut = s.store.create_flash_sale(&auth, &input).await?.into();
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// A flash sale with what each pool still holds.
#[utoipa::path(get, path = "/api/v1/flash-sales/{flash_sale_id}", tag = "coupons", params(("flash_sale_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = FlashSaleOut), (status = 404, body = Problem)))]
async fn get_one(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<FlashSaleOut>> {
    auth.require(Scope::CommerceRead)?;
    let mut out: FlashSaleOut = s.store.flash_sale(auth.tenant_id, FlashSaleId(id)).await?.into();
    if let Some(cached) = crate::mall::cached_stocks(&s, FlashSaleId(id)).await {
        for k in &mut out.skus {
            k.redis_remaining = cached.get(&siyu_core::SkuId(k.sku_id)).copied();
        }
    }
    Ok(axum::Json(out))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create)).routes(routes!(get_one))
}

//! Categories, shipping templates, products with their SKUs, and stock adjustments.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::catalogue::{CategoryInput, ProductStatus, ShippingTemplateInput, StockChange};
use siyu_core::{CategoryId, ProductId, ShippingTemplateId, SkuId};
use siyu_store::commerce::catalogue::ProductFilter;

use super::dto::{
    CategoryIn, CategoryOut, ProductIn, ProductOut, ProductStatusIn, ShippingTemplateIn, ShippingTemplateOut, SkuOut,
    StockIn,
};
use crate::api::dto::PageOf;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json, Query};
use crate::AppState;

/// Product categories, in display order.
#[utoipa::path(get, path = "/api/v1/categories", tag = "catalogue", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<CategoryOut>), (status = 403, body = Problem)))]
async fn list_categories(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<CategoryOut>>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.categories(auth.tenant_id).await?.into_iter().map(Into::into).collect()))
}

/// Create a category.
#[utoipa::path(post, path = "/api/v1/categories", tag = "catalogue", request_body = CategoryIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = CategoryOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_category(State(s): State<AppState>, auth: Auth, Json(b): Json<CategoryIn>) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let c = CategoryInput::validate(&b.name, b.parent_id, b.sort)?;
    let out: CategoryOut = s.store.create_category(&auth, &c).await?.into();
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// Rename, re-parent or re-sort a category.
#[utoipa::path(put, path = "/api/v1/categories/{category_id}", tag = "catalogue", request_body = CategoryIn, params(("category_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_category(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<CategoryIn>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::CommerceWrite)?;
    let c = CategoryInput::validate(&b.name, b.parent_id, b.sort)?;
    s.store.update_category(&auth, CategoryId(id), &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete an empty category.
#[utoipa::path(delete, path = "/api/v1/categories/{category_id}", tag = "catalogue", params(("category_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 409, description = "Still holds products or sub-categories", body = Problem)))]
async fn delete_category(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    auth.require(Scope::CommerceWrite)?;
    s.store.delete_category(&auth, CategoryId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shipping templates (运费模板).
#[utoipa::path(get, path = "/api/v1/shipping-templates", tag = "catalogue", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<ShippingTemplateOut>), (status = 403, body = Problem)))]
async fn list_templates(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<ShippingTemplateOut>>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.shipping_templates(auth.tenant_id).await?.into_iter().map(Into::into).collect()))
}

/// Create a shipping template: a flat fee, free from a goods amount.
#[utoipa::path(post, path = "/api/v1/shipping-templates", tag = "catalogue", request_body = ShippingTemplateIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = ShippingTemplateOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_template(
    State(s): State<AppState>,
    auth: Auth,
    Json(b): Json<ShippingTemplateIn>,
) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let t = ShippingTemplateInput::validate(&b.name, b.fee_fen, b.free_from_fen)?;
    let out: ShippingTemplateOut = s.store.create_shipping_template(&auth, &t).await?.into();
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// Change a shipping template; orders already placed keep the fee they were quoted.
#[utoipa::path(put, path = "/api/v1/shipping-templates/{template_id}", tag = "catalogue", request_body = ShippingTemplateIn,
    params(("template_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_template(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<ShippingTemplateIn>,
) -> ApiResult<StatusCode> {
    auth.require(Scope::CommerceWrite)?;
    let t = ShippingTemplateInput::validate(&b.name, b.fee_fen, b.free_from_fen)?;
    s.store.update_shipping_template(&auth, ShippingTemplateId(id), &t).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// `draft`, `listed` or `delisted`.
    pub status: Option<String>,
    pub category_id: Option<Uuid>,
    /// Part of the title, or a SKU code.
    pub q: Option<String>,
    /// Only products with nothing left to sell.
    pub sold_out: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl ProductQuery {
    pub fn filter(&self) -> ApiResult<ProductFilter> {
        let status = match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(x) => Some(ProductStatus::parse(x).ok_or_else(|| ApiError::BadRequest {
                code: "invalid_query",
                field: Some("status".into()),
                message: "status must be one of: draft, listed, delisted".into(),
            })?),
        };
        Ok(ProductFilter {
            status,
            category: self.category_id.map(CategoryId),
            q: self.q.clone().filter(|q| !q.trim().is_empty()),
            sold_out: self.sold_out.unwrap_or(false),
        })
    }
}

/// Products, newest first.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalogue", params(ProductQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<ProductOut>), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn list_products(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<ProductQuery>,
) -> ApiResult<axum::Json<PageOf<ProductOut>>> {
    auth.require(Scope::CommerceRead)?;
    let page = siyu_core::paging::PageRequest::parse(q.limit, q.cursor.as_deref())?;
    Ok(axum::Json(PageOf::from(s.store.products(auth.tenant_id, &q.filter()?, &page).await?)))
}

/// Create a product with its SKUs (prices in fen, opening stock).
#[utoipa::path(post, path = "/api/v1/products", tag = "catalogue", request_body = ProductIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = ProductOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_product(State(s): State<AppState>, auth: Auth, Json(b): Json<ProductIn>) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let p = b.draft().validate()?;
    let out: ProductOut = s.store.create_product(&auth, &p).await?.into();
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// One product with its SKUs and stock.
#[utoipa::path(get, path = "/api/v1/products/{product_id}", tag = "catalogue", params(("product_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = ProductOut), (status = 404, body = Problem)))]
async fn get_product(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<ProductOut>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.product(auth.tenant_id, ProductId(id)).await?.into()))
}

/// Replace a product. SKUs named by `id` keep their stock; new ones are added; SKUs left out
/// stop selling (they stay on past orders).
#[utoipa::path(put, path = "/api/v1/products/{product_id}", tag = "catalogue", request_body = ProductIn, params(("product_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = ProductOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_product(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<ProductIn>,
) -> ApiResult<axum::Json<ProductOut>> {
    auth.require(Scope::CommerceWrite)?;
    s.store.product(auth.tenant_id, ProductId(id)).await?;
    let p = b.draft().validate()?;
    Ok(axum::Json(s.store.update_product(&auth, ProductId(id), &p).await?.into()))
}

/// List, delist or return a product to draft.
#[utoipa::path(post, path = "/api/v1/products/{product_id}/status", tag = "catalogue", request_body = ProductStatusIn,
    params(("product_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = ProductOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_status(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<ProductStatusIn>,
) -> ApiResult<axum::Json<ProductOut>> {
    auth.require(Scope::CommerceWrite)?;
    s.store.product(auth.tenant_id, ProductId(id)).await?;
    let status = ProductStatus::parse(&b.status).ok_or_else(|| {
        ApiError::validation("status", "invalid_value", "status must be one of: draft, listed, delisted")
    })?;
    Ok(axum::Json(s.store.set_product_status(&auth, ProductId(id), status).await?.into()))
}

/// Change a SKU's stock by hand: add or remove units, or set the counted number. Stock never
/// goes below what unpaid orders hold.
#[utoipa::path(post, path = "/api/v1/skus/{sku_id}/stock", tag = "catalogue", request_body = StockIn, params(("sku_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = SkuOut), (status = 404, body = Problem), (status = 409, description = "Below the reserved units", body = Problem),
        (status = 422, body = Problem)))]
async fn adjust_stock(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<StockIn>,
) -> ApiResult<axum::Json<SkuOut>> {
    auth.require(Scope::CommerceWrite)?;
    s.store.sku(auth.tenant_id, SkuId(id)).await?;
    let change = StockChange::validate(b.delta, b.on_hand)?;
    let note = b.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    Ok(axum::Json(s.store.adjust_stock(&auth, SkuId(id), &change, note).await?.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_categories, create_category))
        .routes(routes!(update_category, delete_category))
        .routes(routes!(list_templates, create_template))
        .routes(routes!(update_template))
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, update_product))
        .routes(routes!(set_status))
        .routes(routes!(adjust_stock))
}

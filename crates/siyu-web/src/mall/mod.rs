//! The buyers' side of the mall: `/mall/{tenant}/api/…`, used by the H5 mall and by a mini
//! program. A buyer is known by a mall session (`Authorization: Bearer …`, or the
//! `siyu_mall` cookie of the H5 pages), bound to one tenant. Buyers see listed products
//! only, and their own orders only: another buyer's order is a 404.
//!
//! Submitting honours `Idempotency-Key` per buyer in the store itself (ORD-3), so a retried
//! submit returns the first order instead of reserving stock twice.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use siyu_core::commerce::catalogue::ProductStatus;
use siyu_core::commerce::order::{Address, OrderEvent};
use siyu_core::paging::PageRequest;
use siyu_core::{CategoryId, OrderId, ProductId, SkuId, TenantId};
use siyu_store::commerce::catalogue::ProductFilter;
use siyu_store::commerce::orders::{CartItem, NewOrder, OrderFilter, Play};
use siyu_store::commerce::payments::{Buyer, RefundKind};

use crate::api::commerce::dto::{
    CategoryOut, OrderOut, ProductOut, QuoteIn, QuoteOut, RefundIn, RefundOut, SubmitIn, UserCouponOut,
};
use crate::api::dto::PageOf;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::AppState;

/// The H5 mall's session cookie.
pub const MALL_COOKIE: &str = "siyu_mall";

mod admission;
pub mod pages;
mod plays;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(pages::router())
        .merge(plays::router())
        .route("/mall/{tenant}/api/session", post(sign_in))
        .route("/mall/{tenant}/api/categories", get(categories))
        .route("/mall/{tenant}/api/products", get(products))
        .route("/mall/{tenant}/api/products/{product_id}", get(product))
        .route("/mall/{tenant}/api/products/{product_id}/presale", get(product_presale))
        .route("/mall/{tenant}/api/quote", post(quote))
        .route("/mall/{tenant}/api/orders", get(my_orders).post(submit))
        .route("/mall/{tenant}/api/orders/{order_id}", get(my_order))
        .route("/mall/{tenant}/api/flash-sales/{sale_id}/orders", post(flash_submit))
        .route("/mall/{tenant}/api/orders/{order_id}/pay", post(pay))
        .route("/mall/{tenant}/api/orders/{order_id}/cancel", post(cancel))
        .route("/mall/{tenant}/api/orders/{order_id}/receive", post(receive))
        .route("/mall/{tenant}/api/orders/{order_id}/refunds", post(request_refund))
        .route("/mall/{tenant}/api/coupons", get(coupons))
        .route("/mall/{tenant}/api/coupons/claim", post(claim_by_code))
        .route("/mall/{tenant}/api/coupons/{template_id}/claim", post(claim))
}

/// The tenant a mall URL names (by slug).
pub async fn tenant_of(s: &AppState, slug: &str) -> ApiResult<TenantId> {
    Ok(s.store.tenant_by_slug(slug).await?.ok_or(ApiError::NotFound)?.id)
}

pub fn session_secret(h: &HeaderMap) -> Option<String> {
    if let Some(b) = h.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
        return Some(b.trim().to_string());
    }
    h.get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == MALL_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The signed-in buyer of this tenant.
pub async fn buyer(s: &AppState, tenant: TenantId, h: &HeaderMap) -> ApiResult<Buyer> {
    let secret = session_secret(h).ok_or(ApiError::Unauthenticated)?;
    s.store.mall_session(tenant, &secret).await?.ok_or(ApiError::Unauthenticated)
}

async fn categories(State(s): State<AppState>, Path(slug): Path<String>) -> ApiResult<axum::Json<Vec<CategoryOut>>> {
    let t = tenant_of(&s, &slug).await?;
    Ok(axum::Json(s.store.categories(t).await?.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize)]
struct ProductQuery {
    category_id: Option<Uuid>,
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn products(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<ProductQuery>,
) -> ApiResult<axum::Json<PageOf<ProductOut>>> {
    let t = tenant_of(&s, &slug).await?;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let f = ProductFilter {
        status: Some(ProductStatus::Listed),
        category: q.category_id.map(CategoryId),
        q: q.q.filter(|x| !x.trim().is_empty()),
        sold_out: false,
    };
    let mut out = PageOf::<ProductOut>::from(s.store.products(t, &f, &page).await?);
    for p in &mut out.items {
        p.skus.retain(|k| k.active);
    }
    Ok(axum::Json(out))
}

/// A listed product, as buyers see it: only the SKUs on sale.
pub async fn listed_product(s: &AppState, t: TenantId, id: ProductId) -> ApiResult<ProductOut> {
    let p = s.store.product(t, id).await?;
    if p.status != ProductStatus::Listed {
        return Err(ApiError::NotFound);
    }
    let mut out = ProductOut::from(p);
    out.skus.retain(|k| k.active);
    Ok(out)
}

async fn product(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
) -> ApiResult<axum::Json<ProductOut>> {
    let t = tenant_of(&s, &slug).await?;
    Ok(axum::Json(listed_product(&s, t, ProductId(id)).await?))
}

/// The presale a product is in, if one is open or coming (404 when none).
async fn product_presale(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
) -> ApiResult<axum::Json<crate::api::commerce::presales::PresaleOut>> {
    let t = tenant_of(&s, &slug).await?;
    let now = s.store.now();
    let p = s.store.presale_of_product(t, ProductId(id), now).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(crate::api::commerce::presales::presale_out(p, now)))
}

fn cart(items: &[crate::api::commerce::dto::CartItemIo]) -> Vec<CartItem> {
    items.iter().map(|i| CartItem { sku_id: SkuId(i.sku_id), qty: i.qty }).collect()
}

/// One of the buyer's own coupons, or a clear refusal.
pub async fn own_coupon(
    s: &AppState,
    t: TenantId,
    buyer: &Buyer,
    id: Uuid,
) -> ApiResult<siyu_store::commerce::coupons::UserCoupon> {
    let mine = s.store.buyer_coupons(t, buyer.id).await?.into_iter().find(|c| c.id.0 == id);
    mine.ok_or_else(|| ApiError::validation("coupon_id", "unknown_reference", "not one of your coupons"))
}

async fn quote(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Json(b): Json<QuoteIn>,
) -> ApiResult<axum::Json<QuoteOut>> {
    let t = tenant_of(&s, &slug).await?;
    let coupon = match b.coupon_id {
        Some(id) => {
            let buyer = buyer(&s, t, &headers).await?;
            Some(own_coupon(&s, t, &buyer, id).await?)
        }
        None => None,
    };
    let presale = match b.presale_id {
        Some(id) => Some(s.store.presale(t, siyu_core::PresaleId(id)).await.map_err(|e| match e {
            siyu_store::StoreError::NotFound => {
                ApiError::validation("presale_id", "unknown_reference", "no such presale")
            }
            other => other.into(),
        })?),
        None => None,
    };
    let play = presale.as_ref().map_or(Play::Plain, Play::Presale);
    Ok(axum::Json(s.store.price_cart(t, &cart(&b.items), coupon.as_ref(), play).await?.into()))
}

/// Validates and submits a buyer's order (the H5 checkout and the API share it).
pub async fn submit_order(
    s: &AppState,
    t: TenantId,
    buyer: &Buyer,
    b: SubmitIn,
    client_key: Option<String>,
) -> ApiResult<siyu_store::commerce::orders::Order> {
    let address = match b.address {
        Some(a) => Some(Address { name: a.name, phone: a.phone, region: a.region, detail: a.detail }.validate()?),
        None => None,
    };
    let note = b.note.map(|n| n.trim().chars().take(200).collect::<String>()).filter(|n| !n.is_empty());
    let n = NewOrder {
        buyer: buyer.id,
        items: cart(&b.items),
        address,
        note,
        client_key,
        expected_payable: b.expected_payable_fen,
        coupon: b.coupon_id.map(siyu_core::UserCouponId),
        presale: b.presale_id.map(siyu_core::PresaleId),
    };
    Ok(s.store.create_order(t, &n).await?)
}

#[derive(serde::Deserialize)]
struct FlashSubmitIn {
    sku_id: Uuid,
    #[serde(default = "one")]
    qty: u32,
}

fn one() -> u32 {
    1
}

/// A play order's `Idempotency-Key`, when it is one (1–255 characters).
fn client_key(h: &HeaderMap) -> Option<&str> {
    h.get(crate::middleware::IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()).filter(|k| !k.is_empty() && k.len() <= 255)
}

pub use admission::FlashThrottle;

/// Places a flash-sale order behind admission control (FS-8.4): through Redis when siyu has
/// one (FS-8.3), else on the database alone. Both answer with the same codes.
pub(crate) async fn flash_order(
    s: &AppState,
    tenant: siyu_core::TenantId,
    buyer: siyu_core::BuyerId,
    sale: siyu_core::FlashSaleId,
    item: CartItem,
    client_key: Option<&str>,
) -> Result<siyu_store::commerce::orders::Order, siyu_store::StoreError> {
    if !s.flash_throttle.admit(sale.0, buyer.0) {
        return Err(siyu_store::StoreError::Rejected {
            code: "too_many_requests",
            field: None,
            message: "too many attempts; try again in a second".into(),
        });
    }
    match &s.flash_gate {
        Some(g) => g.create_flash_order(tenant, buyer, sale, item, client_key).await,
        None => s.store.create_flash_order(tenant, buyer, sale, item, client_key).await,
    }
}

/// What Redis may still admit per SKU of a sale, for operators; `None` without Redis, while
/// the sale is not loaded there, or when Redis does not answer.
pub(crate) async fn cached_stocks(
    s: &AppState,
    sale: siyu_core::FlashSaleId,
) -> Option<std::collections::HashMap<SkuId, i64>> {
    s.flash_gate.as_ref()?.cached_stocks(sale).await.ok().flatten()
}

/// A flash-sale order: one SKU of the sale, at its price. The `Idempotency-Key` header makes a
/// retry return the first order (FS-4).
async fn flash_submit(
    State(s): State<AppState>,
    Path((slug, sale)): Path<(String, Uuid)>,
    headers: HeaderMap,
    Json(b): Json<FlashSubmitIn>,
) -> ApiResult<Response> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    let item = CartItem { sku_id: SkuId(b.sku_id), qty: b.qty };
    let o = flash_order(&s, t, buyer.id, siyu_core::FlashSaleId(sale), item, client_key(&headers)).await?;
    let out: crate::api::commerce::dto::OrderOut = o.into();
    Ok((axum::http::StatusCode::CREATED, axum::Json(out)).into_response())
}

async fn submit(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Json(b): Json<SubmitIn>,
) -> ApiResult<Response> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    let key = match headers.get(crate::middleware::IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= 255 => Some(k.to_string()),
        Some(_) => {
            return Err(ApiError::BadRequest {
                code: "invalid_idempotency_key",
                field: Some("Idempotency-Key".into()),
                message: "Idempotency-Key must be 1-255 visible characters".into(),
            })
        }
    };
    let o = submit_order(&s, t, &buyer, b, key).await?;
    Ok((StatusCode::CREATED, axum::Json(OrderOut::from(o))).into_response())
}

/// The buyer's own order, or 404.
pub async fn own_order(
    s: &AppState,
    t: TenantId,
    buyer: &Buyer,
    id: OrderId,
) -> ApiResult<siyu_store::commerce::orders::Order> {
    let o = s.store.order(t, id).await?;
    if o.buyer_id != buyer.id {
        return Err(ApiError::NotFound);
    }
    Ok(o)
}

async fn my_orders(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ProductQuery>,
) -> ApiResult<axum::Json<PageOf<OrderOut>>> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let f = OrderFilter { buyer: Some(buyer.id), ..Default::default() };
    Ok(axum::Json(PageOf::from(s.store.orders(t, &f, &page).await?)))
}

async fn my_order(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<OrderOut>> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    Ok(axum::Json(own_order(&s, t, &buyer, OrderId(id)).await?.into()))
}

/// What the device needs to pay: `wx.requestPayment` parameters (mini program, JSAPI).
#[derive(Serialize)]
pub struct PayOut {
    pub out_trade_no: String,
    pub prepay_id: String,
    pub pay_params: siyu_pay::PayParams,
}

async fn pay(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<PayOut>> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    own_order(&s, t, &buyer, OrderId(id)).await?;
    let p = s.pay.prepay(t, OrderId(id), &buyer.openid).await?;
    Ok(axum::Json(PayOut { out_trade_no: p.out_trade_no, prepay_id: p.prepay_id, pay_params: p.params }))
}

async fn cancel(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<OrderOut>> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    own_order(&s, t, &buyer, OrderId(id)).await?;
    crate::api::commerce::orders::cancel(&s, t, OrderId(id), "cancelled by the buyer", None).await?;
    Ok(axum::Json(s.store.order(t, OrderId(id)).await?.into()))
}

async fn receive(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<OrderOut>> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    own_order(&s, t, &buyer, OrderId(id)).await?;
    Ok(axum::Json(s.store.advance_order(t, OrderId(id), OrderEvent::Receive, None, None).await?.into()))
}

async fn request_refund(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    Json(b): Json<RefundIn>,
) -> ApiResult<Response> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    let o = own_order(&s, t, &buyer, OrderId(id)).await?;
    // The buyer's after-sale path closes with the after-sale window (REF-6).
    if let Some(r) = o.received_at {
        if s.store.now().0 >= r.0 + crate::pay::AFTER_SALE_SECS * 1_000_000 {
            return Err(ApiError::Conflict {
                code: "after_sale_closed",
                field: None,
                message: "the after-sale period of this order has ended".into(),
            });
        }
    }
    let input = crate::api::commerce::orders::refund_input(b, RefundKind::Customer)?;
    let r = s.store.create_refund(t, OrderId(id), &input, None).await?;
    Ok((StatusCode::CREATED, axum::Json(RefundOut::from(r))).into_response())
}

/// What the buyer can claim, and what they hold.
#[derive(Serialize)]
pub struct CouponsOut {
    pub claimable: Vec<crate::api::commerce::dto::CouponTemplateOut>,
    pub mine: Vec<UserCouponOut>,
}

async fn coupons(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<CouponsOut>> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    let now = s.store.now();
    // Promo-code templates are claimed by their code only.
    let claimable = s
        .store
        .coupon_templates(t)
        .await?
        .into_iter()
        .filter(|x| x.status == "active" && x.issued < x.total && x.code.is_none())
        .map(Into::into)
        .collect();
    let mine = s.store.buyer_coupons(t, buyer.id).await?.into_iter().map(|c| UserCouponOut::new(c, now)).collect();
    Ok(axum::Json(CouponsOut { claimable, mine }))
}

/// The tenant's zone offset, for "N days" validity.
pub async fn offset_of(s: &AppState, t: TenantId) -> ApiResult<i8> {
    Ok(s.store.tenant(t).await?.offset_hours())
}

async fn claim(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    let tpl = s.store.coupon_template(t, siyu_core::CouponTemplateId(id)).await?;
    if tpl.code.is_some() {
        return Err(ApiError::NotFound);
    }
    let c = s.store.claim_coupon(t, buyer.id, tpl.id, offset_of(&s, t).await?).await?;
    Ok((StatusCode::CREATED, axum::Json(UserCouponOut::new(c, s.store.now()))).into_response())
}

#[derive(Deserialize)]
struct CodeIn {
    code: String,
}

async fn claim_by_code(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Json(b): Json<CodeIn>,
) -> ApiResult<Response> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    let c = s.store.claim_coupon_by_code(t, buyer.id, &b.code, offset_of(&s, t).await?).await?;
    Ok((StatusCode::CREATED, axum::Json(UserCouponOut::new(c, s.store.now()))).into_response())
}

#[derive(Deserialize)]
struct SignIn {
    /// The code from `wx.login` (single use, valid five minutes).
    code: String,
}

#[derive(Serialize)]
struct SessionOut {
    /// Send as `Authorization: Bearer …` on every mall call.
    token: String,
    buyer_id: Uuid,
    expires_in: i64,
}

/// Signs a customer in from the mini program: its `wx.login` code is exchanged with WeChat
/// (code2Session) for the openid, which is the buyer. The session_key never leaves WeChat's
/// answer.
async fn sign_in(State(s): State<AppState>, Path(slug): Path<String>, Json(b): Json<SignIn>) -> ApiResult<Response> {
    let t = tenant_of(&s, &slug).await?;
    let not_configured = || ApiError::Conflict {
        code: "login_not_configured",
        field: None,
        message: "the mall's mini program is not set up to sign customers in".into(),
    };
    let c = match s.store.pay_credentials(t).await {
        Ok(c) => c,
        Err(siyu_store::StoreError::NotFound) => return Err(not_configured()),
        Err(e) => return Err(e.into()),
    };
    let secret = c.app_secret.ok_or_else(not_configured)?;
    if b.code.trim().is_empty() || b.code.len() > 128 {
        return Err(ApiError::validation("code", "invalid_format", "code is the value wx.login returned"));
    }
    let mp = siyu_wecom::miniprogram::MiniProgram::new(&c.settings.login_base_url, &c.settings.appid, &secret);
    let session = match mp.code2session(b.code.trim()).await {
        Ok(x) => x,
        Err(siyu_wecom::client::WecomError::Api { code, meaning, .. }) => {
            return Err(ApiError::Conflict {
                code: "login_failed",
                field: Some("code".into()),
                message: format!("WeChat refused the login ({code}): {meaning}"),
            })
        }
        Err(e) => return Err(ApiError::Upstream(e.to_string())),
    };
    let buyer = s.store.buyer_for_openid(t, &session.openid, session.unionid.as_deref()).await?;
    let token = s.store.create_mall_session(t, buyer.id).await?;
    let out = SessionOut { token, buyer_id: buyer.id.0, expires_in: siyu_store::commerce::payments::MALL_SESSION_SECS };
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

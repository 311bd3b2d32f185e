//! The JSON API, `/api/v1`. Each capability module exports an `OpenApiRouter`; this module
//! merges them and declares the document's metadata and security schemes.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub mod acquisition;
pub mod admin;
pub mod auth;
pub mod commerce;
pub mod customers;
pub mod dto;
pub mod imports;
pub mod merges;
pub mod org;
pub mod transfers;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "siyu API",
        description = "Private-domain traffic operations. Errors are RFC 9457 problem+json with a stable `code`. \
            Lists page with `limit` and `cursor`. POSTs that create things honour `Idempotency-Key`. \
            Authenticate with `Authorization: Bearer <API token>`, or with the console session cookie plus `X-CSRF-Token` on writes.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Login, logout, who am I"),
        (name = "tenant", description = "The brand's own settings"),
        (name = "stores", description = "Stores (门店)"),
        (name = "staff", description = "Staff and shopping guides (员工/导购)"),
        (name = "users", description = "Console users and roles"),
        (name = "tokens", description = "API tokens for integrations"),
        (name = "audit", description = "Audit log"),
        (name = "jobs", description = "Durable background jobs"),
        (name = "wecom", description = "WeCom (企业微信) connection, callback inbox and events"),
        (name = "acquisition", description = "Acquisition (引流): channel live codes"),
        (name = "customers", description = "Customers (客户): profiles, lifecycle, timeline, follow-ups"),
        (name = "tags", description = "Tag groups and tags (标签)"),
        (name = "segments", description = "Segments (人群), live counts and RFM (客户价值分层)"),
        (name = "transfers", description = "Customer transfers (在职转接 / 离职继承) through WeCom"),
        (name = "catalogue", description = "The mall's categories, shipping templates, products, SKUs and stock"),
        (name = "coupons", description = "Coupon templates (优惠券) and order promotions (满减 / 满折)"),
        (name = "orders", description = "Orders, payments (WeChat Pay), refunds and payment settings"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::extract::SESSION_COOKIE))),
        );
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(org::router())
        .merge(customers::router())
        .merge(transfers::router())
        .merge(imports::router())
        .merge(merges::router())
        .merge(admin::router())
        .merge(commerce::router())
        .merge(acquisition::router())
        .merge(crate::wecom::api::router())
}

//! The mall over the API, for operators and integrations: the catalogue and stock
//! (`catalogue`), orders and refunds (`orders`), and WeChat Pay settings (`settings`). The
//! buyers' own API is `crate::mall`.

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub mod bargains;
pub mod catalogue;
pub mod coupons;
pub mod discounts;
pub mod dto;
pub mod flash;
pub mod group_buys;
pub mod orders;
pub mod presales;
pub mod promotions;
pub mod settings;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(bargains::router())
        .merge(catalogue::router())
        .merge(coupons::router())
        .merge(discounts::router())
        .merge(flash::router())
        .merge(group_buys::router())
        .merge(orders::router())
        .merge(presales::router())
        .merge(promotions::router())
        .merge(settings::router())
}

//! The buyers' side of group-buy (拼团) and bargain (砍价): `/mall/{tenant}/api/…`.
//!
//! A group is opened or joined with the order that pays for the seat; leaving a group still
//! filling refunds the order in full. A bargain is started once per activity, helped by other
//! buyers (never its owner), and bought at its price. Every order honours `Idempotency-Key`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use siyu_core::{BargainId, BargainRecordId, GroupBuyId, GroupId, OrderId, SkuId};
use siyu_store::commerce::bargains::Helped;
use siyu_store::commerce::orders::CartItem;

use super::{buyer, client_key, own_order, tenant_of};
use crate::api::commerce::bargains::{BargainOut, BargainRecordOut};
use crate::api::commerce::dto::OrderOut;
use crate::api::commerce::group_buys::{GroupBuyOut, GroupOut};
use crate::error::ApiResult;
use crate::extract::Json;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mall/{tenant}/api/group-buys", get(group_buys))
        .route("/mall/{tenant}/api/group-buys/{activity_id}", get(group_buy))
        .route("/mall/{tenant}/api/group-buys/{activity_id}/orders", post(group_order))
        .route("/mall/{tenant}/api/groups/{group_id}", get(group))
        .route("/mall/{tenant}/api/orders/{order_id}/leave-group", post(leave_group))
        .route("/mall/{tenant}/api/bargains", get(bargains))
        .route("/mall/{tenant}/api/bargains/{bargain_id}/start", post(start_bargain))
        .route("/mall/{tenant}/api/bargain-records/{record_id}", get(bargain_record))
        .route("/mall/{tenant}/api/bargain-records/{record_id}/help", post(help))
        .route("/mall/{tenant}/api/bargain-records/{record_id}/orders", post(bargain_order))
}

fn created(o: siyu_store::commerce::orders::Order) -> Response {
    (StatusCode::CREATED, axum::Json(OrderOut::from(o))).into_response()
}

/// Group-buys running now.
async fn group_buys(State(s): State<AppState>, Path(slug): Path<String>) -> ApiResult<axum::Json<Vec<GroupBuyOut>>> {
    let t = tenant_of(&s, &slug).await?;
    let list = s.store.group_buys(t, Some(s.store.now())).await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

#[derive(Serialize)]
struct GroupBuyView {
    activity: GroupBuyOut,
    /// Groups a buyer may join now: open, not full, before their deadline, leader paid.
    joinable: Vec<GroupOut>,
}

async fn group_buy(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
) -> ApiResult<axum::Json<GroupBuyView>> {
    let t = tenant_of(&s, &slug).await?;
    let a = s.store.group_buy(t, GroupBuyId(id)).await?;
    let joinable = s.store.groups(t, a.id, true).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(GroupBuyView { activity: a.into(), joinable }))
}

#[derive(Deserialize)]
struct GroupOrderIn {
    sku_id: Uuid,
    #[serde(default = "super::one")]
    qty: u32,
    /// The group to join; omit to open a new one.
    group_id: Option<Uuid>,
}

/// Opens a group or joins one, with the order that pays for the seat.
async fn group_order(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    Json(b): Json<GroupOrderIn>,
) -> ApiResult<Response> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    let item = CartItem { sku_id: SkuId(b.sku_id), qty: b.qty };
    let o = s
        .store
        .create_group_order(t, buyer.id, GroupBuyId(id), b.group_id.map(GroupId), item, client_key(&headers))
        .await?;
    Ok(created(o))
}

/// A group with its members and deadline: what the share page shows.
async fn group(State(s): State<AppState>, Path((slug, id)): Path<(String, Uuid)>) -> ApiResult<axum::Json<GroupOut>> {
    let t = tenant_of(&s, &slug).await?;
    Ok(axum::Json(s.store.group(t, GroupId(id)).await?.into()))
}

/// Leaves a group still filling: the order closes and is refunded in full.
async fn leave_group(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<OrderOut>> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    own_order(&s, t, &buyer, OrderId(id)).await?;
    Ok(axum::Json(s.store.leave_group(t, OrderId(id), None).await?.into()))
}

/// Bargains taking new starts now.
async fn bargains(State(s): State<AppState>, Path(slug): Path<String>) -> ApiResult<axum::Json<Vec<BargainOut>>> {
    let t = tenant_of(&s, &slug).await?;
    let list = s.store.bargains(t, Some(s.store.now())).await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

/// Starts the buyer's bargain, or returns the one they started.
async fn start_bargain(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<BargainRecordOut>> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    Ok(axum::Json(s.store.start_bargain(t, buyer.id, BargainId(id)).await?.into()))
}

async fn bargain_record(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
) -> ApiResult<axum::Json<BargainRecordOut>> {
    let t = tenant_of(&s, &slug).await?;
    Ok(axum::Json(s.store.bargain_record(t, BargainRecordId(id)).await?.into()))
}

/// One help: a random cut, the last required one landing on the floor.
async fn help(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Helped>> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    Ok(axum::Json(s.store.help_bargain(t, buyer.id, BargainRecordId(id), rand::random()).await?))
}

/// Buys the buyer's bargain at its price.
async fn bargain_order(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let t = tenant_of(&s, &slug).await?;
    let buyer = buyer(&s, t, &headers).await?;
    let o = s.store.create_bargain_order(t, buyer.id, BargainRecordId(id), client_key(&headers)).await?;
    Ok(created(o))
}

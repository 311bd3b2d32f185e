//! Customer transfers over the API (在职转接 / 离职继承): plan a batch, send it, poll WeCom,
//! retry, re-route or cancel single customers, and the tenant's transfer settings. All of it
//! needs `customers:transfer`, which only operators and admins hold.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::customers::transfer::{self, AutoMode, Kind, Subject};
use siyu_core::validate::Violations;
use siyu_core::{CustomerId, GroupTransferItemId, StaffId, TransferId, TransferItemId, WecomAppId};
use siyu_store::customers::transfers::TransferSettings;
use siyu_store::StoreError;

use super::dto::{
    GroupTransferItemOut, PageOf, PollOut, RerouteIn, TransferDetailOut, TransferIn, TransferItemOut, TransferOut,
    TransferSettingsIo,
};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json, PageParams, Query};
use crate::wecom::transfers::PlanRequest;
use crate::AppState;

pub async fn detail(s: &AppState, tenant: siyu_core::TenantId, id: TransferId) -> ApiResult<TransferDetailOut> {
    let t = s.store.transfer(tenant, id).await?;
    let items = s.store.transfer_items(tenant, id).await?;
    let groups = s.store.group_transfer_items(tenant, id).await?;
    Ok(TransferDetailOut {
        transfer: t.into(),
        items: items.into_iter().map(Into::into).collect(),
        group_items: groups.into_iter().map(Into::into).collect(),
    })
}

/// Transfers, newest first.
#[utoipa::path(get, path = "/api/v1/transfers", tag = "transfers", params(PageParams), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<TransferOut>), (status = 403, body = Problem)))]
async fn list_transfers(
    State(s): State<AppState>,
    auth: Auth,
    Query(p): Query<PageParams>,
) -> ApiResult<axum::Json<PageOf<TransferOut>>> {
    auth.require(Scope::CustomersTransfer)?;
    let page = p.request()?;
    Ok(axum::Json(PageOf::from(s.store.transfers(auth.tenant_id, &page).await?)))
}

/// Plan a transfer: the planner spreads the member's customers over the receivers (same
/// store first, then the least loaded) and leaves out customers already transferred twice in
/// 90 days. Nothing is sent to WeCom until the plan is executed.
#[utoipa::path(post, path = "/api/v1/transfers", tag = "transfers", request_body = TransferIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = TransferDetailOut), (status = 409, description = "Every customer already has an open transfer", body = Problem),
        (status = 422, body = Problem), (status = 502, description = "WeCom refused or could not be reached", body = Problem)))]
async fn create_transfer(State(s): State<AppState>, auth: Auth, Json(b): Json<TransferIn>) -> ApiResult<Response> {
    auth.require(Scope::CustomersTransfer)?;
    let mut v = Violations::new();
    let kind = v.choice("kind", Some(&b.kind), Kind::Onjob, Kind::parse, "onjob, resigned");
    let subject = v.choice("subject", b.subject.as_deref(), Subject::Customers, Subject::parse, "customers, groups");
    if subject == Subject::Groups && b.customer_ids.is_some() {
        v.push("customer_ids", "not_allowed", "a group transfer names groups (chat_ids), not customers");
    }
    if subject == Subject::Customers && b.chat_ids.is_some() {
        v.push("chat_ids", "not_allowed", "chat_ids belong to a group transfer (subject: groups)");
    }
    v.into_result()?;
    let req = PlanRequest {
        app_id: b.app_id.map(WecomAppId),
        kind,
        subject,
        handover: StaffId(b.handover_staff_id),
        customers: b.customer_ids.map(|ids| ids.into_iter().map(CustomerId).collect()),
        chats: b.chat_ids,
        receivers: b.receiver_staff_ids.unwrap_or_default().into_iter().map(StaffId).collect(),
        message: b.message,
        origin: "manual",
    };
    let t = s.gateway.plan_transfer(&auth, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(detail(&s, auth.tenant_id, t.id).await?)).into_response())
}

/// A transfer with every customer's state.
#[utoipa::path(get, path = "/api/v1/transfers/{transfer_id}", tag = "transfers", params(("transfer_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TransferDetailOut), (status = 404, body = Problem)))]
async fn get_transfer(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<TransferDetailOut>> {
    auth.require(Scope::CustomersTransfer)?;
    Ok(axum::Json(detail(&s, auth.tenant_id, TransferId(id)).await?))
}

/// Send the planned customers to WeCom (≤100 per call). WeCom's acceptance only starts a
/// takeover: accepted customers are `waiting` until WeCom reports them final.
#[utoipa::path(post, path = "/api/v1/transfers/{transfer_id}/execute", tag = "transfers", params(("transfer_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TransferDetailOut), (status = 404, body = Problem), (status = 502, body = Problem)))]
async fn execute_transfer(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<TransferDetailOut>> {
    auth.require(Scope::CustomersTransfer)?;
    s.gateway.execute_transfer(&auth, TransferId(id)).await?;
    Ok(axum::Json(detail(&s, auth.tenant_id, TransferId(id)).await?))
}

/// Ask WeCom now about every open transfer of the tenant (siyu also does it hourly).
#[utoipa::path(post, path = "/api/v1/transfers/poll", tag = "transfers", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PollOut), (status = 502, body = Problem)))]
async fn poll_transfers(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<PollOut>> {
    auth.require(Scope::CustomersTransfer)?;
    Ok(axum::Json(PollOut { changed: s.gateway.poll_transfers(auth.tenant_id).await? }))
}

/// Send a failed customer again to the same receiver (on the next execute).
#[utoipa::path(post, path = "/api/v1/transfer-items/{item_id}/retry", tag = "transfers", params(("item_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TransferItemOut), (status = 404, body = Problem), (status = 409, description = "Not a failed item", body = Problem)))]
async fn retry_item(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<TransferItemOut>> {
    auth.require(Scope::CustomersTransfer)?;
    Ok(axum::Json(s.store.retry_transfer_item(&auth, TransferItemId(id)).await?.into()))
}

/// Send a customer to another receiver instead: for a receiver at its customer limit, a
/// failed call, or a customer the planner could not place. Counts toward WeCom's 2-in-90-days.
#[utoipa::path(post, path = "/api/v1/transfer-items/{item_id}/reroute", tag = "transfers", params(("item_id" = Uuid, Path)),
    request_body = RerouteIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TransferItemOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn reroute_item(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<RerouteIn>,
) -> ApiResult<axum::Json<TransferItemOut>> {
    auth.require(Scope::CustomersTransfer)?;
    s.store.transfer_item(auth.tenant_id, TransferItemId(id)).await?;
    let to = receiver_userid(&s, auth.tenant_id, StaffId(b.takeover_staff_id)).await?;
    Ok(axum::Json(s.store.reroute_transfer_item(&auth, TransferItemId(id), &to).await?.into()))
}

/// The WeCom userid of an active member who may receive customers.
pub async fn receiver_userid(s: &AppState, tenant: siyu_core::TenantId, id: StaffId) -> ApiResult<String> {
    let staff = match s.store.staff(tenant, siyu_core::auth::DataScope::Tenant, id).await {
        Err(StoreError::NotFound) => {
            return Err(ApiError::validation("takeover_staff_id", "unknown_reference", "no such staff member"))
        }
        r => r?,
    };
    match staff.wecom_userid {
        Some(u) if staff.status.as_str() == "active" => Ok(u),
        _ => {
            Err(ApiError::validation("takeover_staff_id", "ineligible", "the receiver must be an active WeCom member"))
        }
    }
}

/// Withdraw a planned customer from its batch.
#[utoipa::path(post, path = "/api/v1/transfer-items/{item_id}/cancel", tag = "transfers", params(("item_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 409, description = "Only planned items can be cancelled", body = Problem)))]
async fn cancel_item(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    auth.require(Scope::CustomersTransfer)?;
    s.store.transfer_item(auth.tenant_id, TransferItemId(id)).await?;
    s.store.cancel_transfer_item(&auth, TransferItemId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a failed group again to the same receiver (on the next execute). Not for a group
/// that is gone or whose owner's employment changed: re-plan those.
#[utoipa::path(post, path = "/api/v1/group-transfer-items/{item_id}/retry", tag = "transfers", params(("item_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = GroupTransferItemOut), (status = 404, body = Problem), (status = 409, description = "Not a retryable item", body = Problem)))]
async fn retry_group_item(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<GroupTransferItemOut>> {
    auth.require(Scope::CustomersTransfer)?;
    Ok(axum::Json(s.store.reopen_group_transfer_item(&auth, GroupTransferItemId(id), None).await?.into()))
}

/// Send a failed or unplaced group to another receiver instead.
#[utoipa::path(post, path = "/api/v1/group-transfer-items/{item_id}/reroute", tag = "transfers", params(("item_id" = Uuid, Path)),
    request_body = RerouteIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = GroupTransferItemOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn reroute_group_item(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<RerouteIn>,
) -> ApiResult<axum::Json<GroupTransferItemOut>> {
    auth.require(Scope::CustomersTransfer)?;
    s.store.group_transfer_item(auth.tenant_id, GroupTransferItemId(id)).await?;
    let to = receiver_userid(&s, auth.tenant_id, StaffId(b.takeover_staff_id)).await?;
    Ok(axum::Json(s.store.reopen_group_transfer_item(&auth, GroupTransferItemId(id), Some(&to)).await?.into()))
}

/// Withdraw a planned group from its batch.
#[utoipa::path(post, path = "/api/v1/group-transfer-items/{item_id}/cancel", tag = "transfers", params(("item_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 409, description = "Only planned items can be cancelled", body = Problem)))]
async fn cancel_group_item(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    auth.require(Scope::CustomersTransfer)?;
    s.store.group_transfer_item(auth.tenant_id, GroupTransferItemId(id)).await?;
    s.store.cancel_group_transfer_item(&auth, GroupTransferItemId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/transfer-settings", tag = "transfers", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TransferSettingsIo)))]
async fn get_settings(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<TransferSettingsIo>> {
    auth.require(Scope::CustomersTransfer)?;
    let t = s.store.transfer_settings(auth.tenant_id).await?;
    Ok(axum::Json(TransferSettingsIo { auto_mode: t.auto_mode.as_str().into(), message: t.message }))
}

/// What happens when a member leaves (`off`, `plan` for approval, or `execute`), and the
/// default message shown to customers of in-service transfers.
#[utoipa::path(put, path = "/api/v1/transfer-settings", tag = "transfers", request_body = TransferSettingsIo,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TransferSettingsIo), (status = 422, body = Problem)))]
async fn put_settings(
    State(s): State<AppState>,
    auth: Auth,
    Json(b): Json<TransferSettingsIo>,
) -> ApiResult<axum::Json<TransferSettingsIo>> {
    auth.require(Scope::CustomersTransfer)?;
    let settings = transfer_settings(&b.auto_mode, b.message.as_deref().unwrap_or(""))?;
    s.store.save_transfer_settings(&auth, &settings).await?;
    Ok(axum::Json(TransferSettingsIo { auto_mode: settings.auto_mode.as_str().into(), message: settings.message }))
}

/// Validates transfer settings as the API and the console receive them.
pub fn transfer_settings(mode: &str, message: &str) -> Result<TransferSettings, ApiError> {
    let mut v = Violations::new();
    let auto_mode = v.choice("auto_mode", Some(mode), AutoMode::Plan, AutoMode::parse, "off, plan, execute");
    let message = match transfer::message(message) {
        Ok(m) => m,
        Err(_) => {
            v.push("message", "too_long", format!("at most {} characters", transfer::MESSAGE_MAX_CHARS));
            None
        }
    };
    v.into_result()?;
    Ok(TransferSettings { auto_mode, message })
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_transfers, create_transfer))
        .routes(routes!(poll_transfers))
        .routes(routes!(get_transfer))
        .routes(routes!(execute_transfer))
        .routes(routes!(retry_item))
        .routes(routes!(reroute_item))
        .routes(routes!(cancel_item))
        .routes(routes!(retry_group_item))
        .routes(routes!(reroute_group_item))
        .routes(routes!(cancel_group_item))
        .routes(routes!(get_settings, put_settings))
}

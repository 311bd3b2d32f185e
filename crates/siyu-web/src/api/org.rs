//! The tenant's organisation over the API: its settings, stores and staff.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::{DataScope, Scope};
use siyu_core::org::{StaffInput, StaffStatus, StoreInput, StoreStatus, TenantSettings};
use siyu_core::{StaffId, StoreId};
use siyu_store::org::{StaffFilter, StoreFilter};

use super::dto::{PageOf, StaffIn, StaffOut, StoreIn, StoreOut, TenantIn, TenantOut};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json, PageParams, Query};
use crate::AppState;

/// The tenant's settings.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenant", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TenantOut), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn get_tenant(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<TenantOut>> {
    auth.require(Scope::SettingsRead)?;
    Ok(axum::Json(s.store.tenant(auth.tenant_id).await?.into()))
}

/// Change the tenant's settings.
#[utoipa::path(put, path = "/api/v1/tenant", tag = "tenant", request_body = TenantIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TenantOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_tenant(
    State(s): State<AppState>,
    auth: Auth,
    Json(b): Json<TenantIn>,
) -> ApiResult<axum::Json<TenantOut>> {
    auth.require(Scope::SettingsWrite)?;
    let v = TenantSettings::validate(&b.name, &b.timezone, &b.default_locale, b.contact_email.as_deref())?;
    Ok(axum::Json(s.store.update_tenant_settings(&auth, &v).await?.into()))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct StoreQuery {
    /// Search in code, name and city.
    pub q: Option<String>,
    /// `open` or `closed`.
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn parse_status<T>(field: &str, v: Option<&str>, parse: fn(&str) -> Option<T>, allowed: &str) -> ApiResult<Option<T>> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(x) => parse(x).map(Some).ok_or_else(|| ApiError::BadRequest {
            code: "invalid_query",
            field: Some(field.into()),
            message: format!("{field} must be one of: {allowed}"),
        }),
    }
}

/// List stores.
#[utoipa::path(get, path = "/api/v1/stores", tag = "stores", params(StoreQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<StoreOut>), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn list_stores(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<StoreQuery>,
) -> ApiResult<axum::Json<PageOf<StoreOut>>> {
    auth.require(Scope::StoresRead)?;
    let page = PageParams { limit: q.limit, cursor: q.cursor.clone() }.request()?;
    let f = StoreFilter {
        q: q.q.clone(),
        status: parse_status("status", q.status.as_deref(), StoreStatus::parse, "open, closed")?,
    };
    Ok(axum::Json(PageOf::from(s.store.list_stores(auth.tenant_id, &f, &page).await?)))
}

pub fn store_input(b: &StoreIn) -> ApiResult<StoreInput> {
    Ok(StoreInput::validate(
        &b.code,
        &b.name,
        b.city.as_deref(),
        b.address.as_deref(),
        b.phone.as_deref(),
        b.status.as_deref(),
    )?)
}

/// Create a store.
#[utoipa::path(post, path = "/api/v1/stores", tag = "stores", request_body = StoreIn, security(("bearer" = []), ("session" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for repeats")),
    responses((status = 201, body = StoreOut), (status = 409, description = "Code already in use", body = Problem), (status = 422, body = Problem)))]
async fn create_store(State(s): State<AppState>, auth: Auth, Json(b): Json<StoreIn>) -> ApiResult<Response> {
    auth.require(Scope::StoresWrite)?;
    let rec = s.store.create_store(&auth, &store_input(&b)?).await?;
    Ok((StatusCode::CREATED, axum::Json(StoreOut::from(rec))).into_response())
}

/// One store.
#[utoipa::path(get, path = "/api/v1/stores/{store_id}", tag = "stores", params(("store_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = StoreOut), (status = 404, body = Problem)))]
async fn get_store(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<StoreOut>> {
    auth.require(Scope::StoresRead)?;
    Ok(axum::Json(s.store.store(auth.tenant_id, StoreId(id)).await?.into()))
}

/// Replace a store's fields.
#[utoipa::path(put, path = "/api/v1/stores/{store_id}", tag = "stores", params(("store_id" = Uuid, Path)), request_body = StoreIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = StoreOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_store(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<StoreIn>,
) -> ApiResult<axum::Json<StoreOut>> {
    auth.require(Scope::StoresWrite)?;
    let input = store_input(&b)?;
    Ok(axum::Json(s.store.update_store(&auth, StoreId(id), &input).await?.into()))
}

/// Delete a store that has no staff.
#[utoipa::path(delete, path = "/api/v1/stores/{store_id}", tag = "stores", params(("store_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 409, description = "Store still has staff", body = Problem)))]
async fn delete_store(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    auth.require(Scope::StoresWrite)?;
    s.store.delete_store(&auth, StoreId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct StaffQuery {
    /// Search in name, WeCom userid and mobile.
    pub q: Option<String>,
    /// `active` or `departed`.
    pub status: Option<String>,
    pub store_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// List staff. Guides see only their own record.
#[utoipa::path(get, path = "/api/v1/staff", tag = "staff", params(StaffQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<StaffOut>), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn list_staff(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<StaffQuery>,
) -> ApiResult<axum::Json<PageOf<StaffOut>>> {
    auth.require(Scope::StaffRead)?;
    let page = PageParams { limit: q.limit, cursor: q.cursor.clone() }.request()?;
    let f = StaffFilter {
        q: q.q.clone(),
        status: parse_status("status", q.status.as_deref(), StaffStatus::parse, "active, departed")?,
        store_id: q.store_id.map(StoreId),
    };
    Ok(axum::Json(PageOf::from(s.store.list_staff(auth.tenant_id, auth.data_scope, &f, &page).await?)))
}

pub fn staff_input(b: &StaffIn) -> ApiResult<StaffInput> {
    Ok(StaffInput::validate(
        &b.name,
        b.wecom_userid.as_deref(),
        b.mobile.as_deref(),
        b.store_id.map(StoreId),
        b.title.as_deref(),
        b.status.as_deref(),
    )?)
}

/// Add a staff member.
#[utoipa::path(post, path = "/api/v1/staff", tag = "staff", request_body = StaffIn, security(("bearer" = []), ("session" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for repeats")),
    responses((status = 201, body = StaffOut), (status = 409, description = "WeCom userid already in use", body = Problem), (status = 422, body = Problem)))]
async fn create_staff(State(s): State<AppState>, auth: Auth, Json(b): Json<StaffIn>) -> ApiResult<Response> {
    auth.require(Scope::StaffWrite)?;
    let rec = s.store.create_staff(&auth, &staff_input(&b)?).await?;
    Ok((StatusCode::CREATED, axum::Json(StaffOut::from(rec))).into_response())
}

/// One staff member. Guides may read only their own record.
#[utoipa::path(get, path = "/api/v1/staff/{staff_id}", tag = "staff", params(("staff_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = StaffOut), (status = 404, body = Problem)))]
async fn get_staff(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<StaffOut>> {
    auth.require(Scope::StaffRead)?;
    Ok(axum::Json(s.store.staff(auth.tenant_id, auth.data_scope, StaffId(id)).await?.into()))
}

/// Replace a staff member's fields. Guides may change their own name, mobile and title only.
#[utoipa::path(put, path = "/api/v1/staff/{staff_id}", tag = "staff", params(("staff_id" = Uuid, Path)), request_body = StaffIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = StaffOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_staff(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<StaffIn>,
) -> ApiResult<axum::Json<StaffOut>> {
    let input = staff_input(&b)?;
    let id = StaffId(id);
    if !auth.can(Scope::StaffWrite) {
        auth.require(Scope::StaffWriteOwn)?;
        guard_own_staff_edit(&s, &auth, id, &input).await?;
    }
    Ok(axum::Json(s.store.update_staff(&auth, id, &input).await?.into()))
}

/// A guide editing their own record may not move stores, change status or relink WeCom.
pub async fn guard_own_staff_edit(s: &AppState, auth: &Auth, id: StaffId, input: &StaffInput) -> ApiResult<()> {
    let DataScope::OwnStaff(own) = auth.data_scope else { return Err(ApiError::NotFound) };
    if own != id {
        return Err(ApiError::NotFound);
    }
    let cur = s.store.staff(auth.tenant_id, auth.data_scope, id).await?;
    for (field, same) in [
        ("store_id", cur.store_id == input.store_id),
        ("status", cur.status == input.status),
        ("wecom_userid", cur.wecom_userid == input.wecom_userid),
    ] {
        if !same {
            return Err(ApiError::ForbiddenField {
                field: field.into(),
                message: format!("only an operator or admin can change {field}"),
            });
        }
    }
    Ok(())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_tenant, put_tenant))
        .routes(routes!(list_stores, create_store))
        .routes(routes!(get_store, update_store, delete_store))
        .routes(routes!(list_staff, create_staff))
        .routes(routes!(get_staff, update_staff))
}

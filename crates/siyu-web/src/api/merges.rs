//! Merging two customers into one profile and splitting them again (OneID by hand), and the
//! merge suggestions weak evidence produces. Tenant-wide acts: operators and admins only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::{DataScope, Scope};
use siyu_core::CustomerId;
use siyu_store::customers::merge::{Merge, MergeSuggestion};

use super::dto::ts;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::AppState;

fn require_manager(auth: &Auth) -> ApiResult<()> {
    auth.require(Scope::CustomersWrite)?;
    if auth.data_scope != DataScope::Tenant {
        return Err(ApiError::ForbiddenField {
            field: "data_scope".into(),
            message: "only operators and admins merge customers".into(),
        });
    }
    Ok(())
}

/// Merge another customer into this one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"absorbed_id": "0190a0c0-0000-7000-8000-000000000003"}))]
pub struct MergeIn {
    /// The customer that disappears into this one.
    pub absorbed_id: Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct MergeOut {
    pub id: Uuid,
    pub survivor_id: Uuid,
    pub absorbed_id: Uuid,
    pub survivor_num: i64,
    pub absorbed_num: i64,
    pub absorbed_name: String,
    pub created_by: String,
    pub created_at: String,
    /// Set once the merge was undone (split).
    pub undone_at: Option<String>,
}

impl From<Merge> for MergeOut {
    fn from(m: Merge) -> Self {
        MergeOut {
            id: m.id,
            survivor_id: m.survivor_id.0,
            absorbed_id: m.absorbed_id.0,
            survivor_num: m.survivor_num,
            absorbed_num: m.absorbed_num,
            absorbed_name: m.absorbed_name,
            created_by: m.created_by,
            created_at: ts(m.created_at),
            undone_at: m.undone_at.map(ts),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SuggestionOut {
    /// The person known from WeCom.
    pub wecom_customer_id: Uuid,
    /// The person who holds the phone.
    pub phone_customer_id: Uuid,
    /// `remark_mobile`: a member noted the phone on the WeCom contact.
    pub reason: String,
    pub phone_masked: String,
    /// The member who noted it.
    pub userid: String,
}

impl From<MergeSuggestion> for SuggestionOut {
    fn from(s: MergeSuggestion) -> Self {
        SuggestionOut {
            wecom_customer_id: s.wecom_customer.0,
            phone_customer_id: s.phone_customer.0,
            reason: s.reason,
            phone_masked: s.phone_masked,
            userid: s.userid,
        }
    }
}

/// Merge `absorbed_id` into this customer: identities, tags, channels, missing fields, the
/// phone if this customer has none, timeline, follow-ups, purchases, alerts and transfers move
/// here, and the other profile closes. Refused when both hold different strong identifiers of
/// one kind (two unionids: two people). Undo with `POST /api/v1/customer-merges/{id}/undo`.
#[utoipa::path(post, path = "/api/v1/customers/{customer_id}/merge", tag = "customers", params(("customer_id" = Uuid, Path)),
    request_body = MergeIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = MergeOut), (status = 404, body = Problem), (status = 409, description = "Same customer, or conflicting strong identifiers", body = Problem)))]
async fn merge(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<MergeIn>,
) -> ApiResult<Response> {
    require_manager(&auth)?;
    let mid = s.store.merge_customers(&auth, CustomerId(id), CustomerId(b.absorbed_id)).await?;
    let m = s.store.customer_merges(auth.tenant_id, CustomerId(id)).await?.into_iter().find(|m| m.id == mid);
    let m = m.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, axum::Json(MergeOut::from(m))).into_response())
}

/// Merges this customer took part in, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{customer_id}/merges", tag = "customers", params(("customer_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<MergeOut>), (status = 404, body = Problem)))]
async fn merges(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<Vec<MergeOut>>> {
    require_manager(&auth)?;
    // Merged-away customers are no longer live, so the survivor answers for both.
    let rows = s.store.customer_merges(auth.tenant_id, CustomerId(id)).await?;
    if rows.is_empty() {
        s.store.customer(auth.tenant_id, auth.data_scope, CustomerId(id)).await?;
    }
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// Undo a merge (split): what it moved goes back, and the absorbed customer is live again.
#[utoipa::path(post, path = "/api/v1/customer-merges/{merge_id}/undo", tag = "customers", params(("merge_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 409, description = "Already undone", body = Problem)))]
async fn undo(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    require_manager(&auth)?;
    s.store.undo_merge(&auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pairs of customers that may be one person, from weak evidence (a phone a member noted on a
/// WeCom contact that another customer holds). Never merged automatically.
#[utoipa::path(get, path = "/api/v1/merge-suggestions", tag = "customers", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<SuggestionOut>)))]
async fn suggestions(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<SuggestionOut>>> {
    require_manager(&auth)?;
    let rows = s.store.merge_suggestions(auth.tenant_id, 100).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(merge))
        .routes(routes!(merges))
        .routes(routes!(undo))
        .routes(routes!(suggestions))
}

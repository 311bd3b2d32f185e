//! Group-buy (拼团) for operators: create an activity over SKUs of one product, stop it, and
//! review its groups with their members. Buyers open and join groups through the mall API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::group_buy::{GroupBuyDraft, GroupSkuInput};
use siyu_core::GroupBuyId;
use siyu_store::commerce::group_buys::{Group, GroupBuy};

use crate::api::dto::{rfc3339, ts};
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
pub struct GroupSkuIn {
    pub sku_id: Uuid,
    pub price_fen: i64,
    pub quota: i64,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "3人团", "starts_at": "2026-11-23T10:00:00+08:00", "ends_at": "2026-11-30T10:00:00+08:00",
    "capacity": 3, "valid_hours": 24, "per_user": 1, "virtual_bp": 6667,
    "skus": [{"sku_id": "0194f8e0-0000-7000-8000-000000000001", "price_fen": 5900, "quota": 300}]}))]
pub struct GroupBuyIn {
    pub name: String,
    /// RFC 3339; the window is half-open.
    pub starts_at: String,
    pub ends_at: String,
    /// Members a group needs (2–100).
    pub capacity: Option<i64>,
    /// Hours a group has to fill (default 24); never past the activity's end.
    pub valid_hours: Option<i64>,
    /// Units per buyer over the activity (default 1).
    pub per_user: Option<i64>,
    /// 模拟成团: a group whose paid members reach this share of its size (basis points) at
    /// its deadline succeeds with virtual members. Omit to never do so.
    pub virtual_bp: Option<i64>,
    /// Only buyers without an earlier paid order may join (老带新).
    #[serde(default)]
    pub new_joiners_only: bool,
    /// Minutes an unpaid order holds its seat (default 15).
    pub timeout_minutes: Option<i64>,
    pub skus: Vec<GroupSkuIn>,
}

#[derive(Serialize, ToSchema)]
pub struct GroupSkuOut {
    pub sku_id: Uuid,
    pub label: String,
    pub list_fen: i64,
    pub price_fen: i64,
    pub quota: i64,
    pub taken: i64,
}

#[derive(Serialize, ToSchema)]
pub struct GroupBuyOut {
    pub id: Uuid,
    pub name: String,
    pub product_id: Uuid,
    pub starts_at: String,
    pub ends_at: String,
    pub capacity: i64,
    pub valid_hours: i64,
    pub per_user: i64,
    pub virtual_bp: Option<i64>,
    pub new_joiners_only: bool,
    pub timeout_minutes: i64,
    /// `active` or `stopped`.
    pub status: String,
    pub groups_open: i64,
    pub groups_succeeded: i64,
    pub groups_failed: i64,
    pub skus: Vec<GroupSkuOut>,
}

impl From<GroupBuy> for GroupBuyOut {
    fn from(g: GroupBuy) -> Self {
        GroupBuyOut {
            id: g.id.0,
            name: g.name,
            product_id: g.product_id.0,
            starts_at: ts(g.starts_at),
            ends_at: ts(g.ends_at),
            capacity: g.capacity,
            valid_hours: g.valid_hours,
            per_user: g.per_user,
            virtual_bp: g.virtual_bp,
            new_joiners_only: g.new_joiners_only,
            timeout_minutes: g.timeout_secs / 60,
            status: g.status,
            groups_open: g.groups_open,
            groups_succeeded: g.groups_succeeded,
            groups_failed: g.groups_failed,
            skus: g
                .skus
                .into_iter()
                .map(|k| GroupSkuOut {
                    sku_id: k.sku_id.0,
                    label: k.label,
                    list_fen: k.list_fen,
                    price_fen: k.price_fen,
                    quota: k.quota,
                    taken: k.taken,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupMemberOut {
    pub buyer_id: Uuid,
    pub nickname: Option<String>,
    pub order_id: Uuid,
    /// held (unpaid), paid, left, refunded or released.
    pub status: String,
    pub joined_at: String,
    pub leader: bool,
}

#[derive(Serialize, ToSchema)]
pub struct GroupOut {
    pub id: Uuid,
    pub activity_id: Uuid,
    pub leader_id: Uuid,
    pub capacity: i64,
    /// Held and paid seats together.
    pub seats: i64,
    pub paid: i64,
    /// Seats filled by 模拟成团 (no order, payment or statistic).
    pub virtual_members: i64,
    /// open, succeeded or failed.
    pub status: String,
    pub opened_at: String,
    pub expires_at: String,
    pub closed_at: Option<String>,
    pub members: Vec<GroupMemberOut>,
}

impl From<Group> for GroupOut {
    fn from(g: Group) -> Self {
        GroupOut {
            id: g.id.0,
            activity_id: g.activity_id.0,
            leader_id: g.leader_id.0,
            capacity: g.capacity,
            seats: g.seats,
            paid: g.paid,
            virtual_members: g.virtual_members,
            status: g.status,
            opened_at: ts(g.opened_at),
            expires_at: ts(g.expires_at),
            closed_at: g.closed_at.map(ts),
            members: g
                .members
                .into_iter()
                .map(|m| GroupMemberOut {
                    buyer_id: m.buyer_id.0,
                    nickname: m.nickname,
                    order_id: m.order_id.0,
                    status: m.status,
                    joined_at: ts(m.joined_at),
                    leader: m.leader,
                })
                .collect(),
        }
    }
}

/// Create a group-buy over SKUs of one product.
#[utoipa::path(post, path = "/api/v1/group-buys", tag = "coupons", request_body = GroupBuyIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = GroupBuyOut), (status = 409, description = "A SKU is in another activity at the same time", body = Problem), (status = 422, body = Problem)))]
async fn create(State(s): State<AppState>, auth: Auth, Json(b): Json<GroupBuyIn>) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let draft = GroupBuyDraft {
        name: b.name,
        starts_at: Some(rfc3339("starts_at", &b.starts_at)?),
        ends_at: Some(rfc3339("ends_at", &b.ends_at)?),
        capacity: b.capacity,
        valid_hours: b.valid_hours,
        per_user: b.per_user,
        virtual_bp: b.virtual_bp,
        new_joiners_only: b.new_joiners_only,
        timeout_secs: b.timeout_minutes.map(|m| m * 60),
        skus: b
            .skus
            .iter()
            .map(|k| GroupSkuInput { sku_id: k.sku_id.to_string(), price_fen: k.price_fen, quota: k.quota })
            .collect(),
    };
    let input = draft.validate().map_err(super::dto::minutes_fields)?;
    let out: GroupBuyOut = s.store.create_group_buy(&auth, &input).await?.into();
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// Group-buys, newest first.
#[utoipa::path(get, path = "/api/v1/group-buys", tag = "coupons", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<GroupBuyOut>)))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<GroupBuyOut>>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.group_buys(auth.tenant_id, None).await?.into_iter().map(Into::into).collect()))
}

/// A group-buy with its quotas and how its groups went.
#[utoipa::path(get, path = "/api/v1/group-buys/{group_buy_id}", tag = "coupons", params(("group_buy_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = GroupBuyOut), (status = 404, body = Problem)))]
async fn get_one(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<GroupBuyOut>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.group_buy(auth.tenant_id, GroupBuyId(id)).await?.into()))
}

/// Stop a group-buy: no group opens or takes members any more; open groups run to their own
/// deadline.
#[utoipa::path(post, path = "/api/v1/group-buys/{group_buy_id}/stop", tag = "coupons", params(("group_buy_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = GroupBuyOut), (status = 404, body = Problem)))]
async fn stop(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<GroupBuyOut>> {
    auth.require(Scope::CommerceWrite)?;
    Ok(axum::Json(s.store.stop_group_buy(&auth, GroupBuyId(id)).await?.into()))
}

/// A group-buy's groups, newest first, with their members.
#[utoipa::path(get, path = "/api/v1/group-buys/{group_buy_id}/groups", tag = "coupons", params(("group_buy_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = Vec<GroupOut>), (status = 404, body = Problem)))]
async fn groups(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<Vec<GroupOut>>> {
    auth.require(Scope::CommerceRead)?;
    let a = s.store.group_buy(auth.tenant_id, GroupBuyId(id)).await?;
    Ok(axum::Json(s.store.groups(auth.tenant_id, a.id, false).await?.into_iter().map(Into::into).collect()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one))
        .routes(routes!(stop))
        .routes(routes!(groups))
}

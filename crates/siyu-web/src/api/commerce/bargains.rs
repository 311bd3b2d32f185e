//! Bargain (砍价) for operators: create an activity over one SKU, stop it, and read how its
//! bargains went. Buyers start, help and buy through the mall API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::bargain::BargainDraft;
use siyu_core::BargainId;
use siyu_store::commerce::bargains::{Bargain, BargainRecord};

use crate::api::dto::{rfc3339, ts};
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "砍价0.01元拿", "sku_id": "0194f8e0-0000-7000-8000-000000000001", "price_fen": 9900,
    "floor_fen": 1, "helpers": 10, "quota": 100, "starts_at": "2026-11-23T10:00:00+08:00", "ends_at": "2026-11-26T10:00:00+08:00"}))]
pub struct BargainIn {
    pub name: String,
    pub sku_id: Uuid,
    /// Where every bargain starts.
    pub price_fen: i64,
    /// Where the last required helper lands it.
    pub floor_fen: i64,
    /// Helpers a bargain needs; at most `price_fen − floor_fen`, so each cuts at least 1 fen.
    pub helpers: i64,
    /// Bargains one person may help in this activity (default 1).
    pub help_limit: Option<i64>,
    pub quota: i64,
    /// RFC 3339: bargains start and take helps in [starts_at, ends_at).
    pub starts_at: String,
    pub ends_at: String,
    /// RFC 3339: buying at the bargained price closes then (default: ends_at).
    pub purchase_deadline: Option<String>,
    /// An ordinary cut's share of what is left, low and high, in basis points (default 2000–5000).
    pub cut_bp_low: Option<i64>,
    pub cut_bp_high: Option<i64>,
    /// A helper with no order yet cuts this share instead (basis points).
    pub new_user_bp: Option<i64>,
    /// Let buyers order at the price reached before the floor.
    #[serde(default)]
    pub buy_at_current: bool,
    /// Minutes an unpaid order holds its unit (default 15).
    pub timeout_minutes: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct BargainOut {
    pub id: Uuid,
    pub name: String,
    pub sku_id: Uuid,
    pub product_id: Uuid,
    pub label: String,
    pub list_fen: i64,
    pub price_fen: i64,
    pub floor_fen: i64,
    pub helpers: i64,
    pub help_limit: i64,
    pub quota: i64,
    /// Units in unpaid and paid orders.
    pub taken: i64,
    pub starts_at: String,
    pub ends_at: String,
    pub purchase_deadline: String,
    pub cut_bp_low: i64,
    pub cut_bp_high: i64,
    pub new_user_bp: Option<i64>,
    pub buy_at_current: bool,
    pub timeout_minutes: i64,
    /// `active` or `stopped`.
    pub status: String,
    pub started: i64,
    pub completed: i64,
}

impl From<Bargain> for BargainOut {
    fn from(b: Bargain) -> Self {
        BargainOut {
            id: b.id.0,
            name: b.name,
            sku_id: b.sku_id.0,
            product_id: b.product_id.0,
            label: b.label,
            list_fen: b.list_fen,
            price_fen: b.price_fen,
            floor_fen: b.floor_fen,
            helpers: b.helpers,
            help_limit: b.help_limit,
            quota: b.quota,
            taken: b.taken,
            starts_at: ts(b.starts_at),
            ends_at: ts(b.ends_at),
            purchase_deadline: ts(b.purchase_deadline),
            cut_bp_low: b.cut_bp.0,
            cut_bp_high: b.cut_bp.1,
            new_user_bp: b.new_user_bp,
            buy_at_current: b.buy_at_current,
            timeout_minutes: b.timeout_secs / 60,
            status: b.status,
            started: b.started,
            completed: b.completed,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct HelpOut {
    pub helper_id: Uuid,
    pub nickname: Option<String>,
    pub cut_fen: i64,
    pub at: String,
}

#[derive(Serialize, ToSchema)]
pub struct BargainRecordOut {
    pub id: Uuid,
    pub bargain_id: Uuid,
    pub buyer_id: Uuid,
    pub nickname: Option<String>,
    pub price_fen: i64,
    pub floor_fen: i64,
    pub current_fen: i64,
    pub helpers: i64,
    pub required: i64,
    pub order_id: Option<Uuid>,
    pub created_at: String,
    pub helps: Vec<HelpOut>,
}

impl From<BargainRecord> for BargainRecordOut {
    fn from(r: BargainRecord) -> Self {
        BargainRecordOut {
            id: r.id.0,
            bargain_id: r.bargain_id.0,
            buyer_id: r.buyer_id.0,
            nickname: r.nickname,
            price_fen: r.price_fen,
            floor_fen: r.floor_fen,
            current_fen: r.current_fen,
            helpers: r.helpers,
            required: r.required,
            order_id: r.order_id.map(|o| o.0),
            created_at: ts(r.created_at),
            helps: r
                .helps
                .into_iter()
                .map(|h| HelpOut { helper_id: h.helper_id.0, nickname: h.nickname, cut_fen: h.cut_fen, at: ts(h.at) })
                .collect(),
        }
    }
}

/// Create a bargain over one SKU.
#[utoipa::path(post, path = "/api/v1/bargains", tag = "coupons", request_body = BargainIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = BargainOut), (status = 409, description = "The SKU is in another activity at the same time", body = Problem), (status = 422, body = Problem)))]
async fn create(State(s): State<AppState>, auth: Auth, Json(b): Json<BargainIn>) -> ApiResult<Response> {
    auth.require(Scope::CommerceWrite)?;
    let draft = BargainDraft {
        name: b.name,
        sku_id: b.sku_id.to_string(),
        price_fen: b.price_fen,
        floor_fen: b.floor_fen,
        helpers: b.helpers,
        help_limit: b.help_limit,
        quota: b.quota,
        starts_at: Some(rfc3339("starts_at", &b.starts_at)?),
        ends_at: Some(rfc3339("ends_at", &b.ends_at)?),
        purchase_deadline: match &b.purchase_deadline {
            Some(d) => Some(rfc3339("purchase_deadline", d)?),
            None => None,
        },
        cut_bp: match (b.cut_bp_low, b.cut_bp_high) {
            (None, None) => None,
            (lo, hi) => Some((lo.unwrap_or(2_000), hi.unwrap_or(5_000))),
        },
        new_user_bp: b.new_user_bp,
        buy_at_current: b.buy_at_current,
        timeout_secs: b.timeout_minutes.map(|m| m * 60),
    };
    let input = draft.validate().map_err(super::dto::minutes_fields)?;
    let out: BargainOut = s.store.create_bargain(&auth, &input).await?.into();
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// Bargains, newest first.
#[utoipa::path(get, path = "/api/v1/bargains", tag = "coupons", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<BargainOut>)))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<BargainOut>>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.bargains(auth.tenant_id, None).await?.into_iter().map(Into::into).collect()))
}

/// A bargain activity with how many bargains started and reached the floor.
#[utoipa::path(get, path = "/api/v1/bargains/{bargain_id}", tag = "coupons", params(("bargain_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = BargainOut), (status = 404, body = Problem)))]
async fn get_one(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<BargainOut>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.bargain(auth.tenant_id, BargainId(id)).await?.into()))
}

/// Stop a bargain: no new bargains or helps; bargains that reached their price may still be
/// bought until the purchase deadline.
#[utoipa::path(post, path = "/api/v1/bargains/{bargain_id}/stop", tag = "coupons", params(("bargain_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = BargainOut), (status = 404, body = Problem)))]
async fn stop(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<BargainOut>> {
    auth.require(Scope::CommerceWrite)?;
    Ok(axum::Json(s.store.stop_bargain(&auth, BargainId(id)).await?.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(get_one)).routes(routes!(stop))
}

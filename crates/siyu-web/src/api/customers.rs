//! Customers over the API: profiles, lifecycle, timeline, follow-ups, tags, segments and RFM.
//!
//! Guides hold `customers:read`/`customers:write` for the customers they own; defining tags
//! and segments and running RFM are tenant-wide acts reserved to operators and admins.
//! Personal data is masked unless the viewer holds `customers:pii`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use siyu_core::auth::{DataScope, Scope};
use siyu_core::customers::segment::Expr;
use siyu_core::paging::{PageRequest, PagingError};
use siyu_core::time::{format_day, parse_day};
use siyu_core::validate::Violations;
use siyu_core::{CustomerId, SegmentId, StaffId, StoreId, TagGroupId, TagId, TenantId, Timestamp};
use siyu_store::customers::metrics::RfmParams;
use siyu_store::customers::CustomerFilter;

use super::dto::{
    AlertOut, BulkTagIn, BulkTagOut, CampaignIo, CountOut, CustomerDetailOut, CustomerIn, CustomerOut, ExprIn,
    FollowUpIn, FollowUpOut, NameIn, PageOf, RfmRunIn, RfmRunOut, RfmSettingsIo, RuleIn, RuleRefreshOut, SegmentIn,
    SegmentOut, StageIn, StageOut, TagGroupIn, TagGroupOut, TagIn, TagOut, TimelineOut,
};
use crate::customers::{customer_input, resolve_expr, resolve_with, segment_defs, today, unmask_edit};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json, PageParams, Query};
use crate::AppState;

/// Tag and segment definitions and RFM runs touch the whole tenant.
fn require_manager(auth: &Auth) -> ApiResult<()> {
    auth.require(Scope::CustomersWrite)?;
    if auth.data_scope != DataScope::Tenant {
        return Err(ApiError::ForbiddenField {
            field: "data_scope".into(),
            message: "only operators and admins manage tags, segments and RFM".into(),
        });
    }
    Ok(())
}

/// The tenant's sensitive field keys, for masking.
async fn sensitive_keys(s: &AppState, tenant: TenantId) -> ApiResult<Vec<String>> {
    Ok(s.store.customer_field_defs(tenant).await?.into_iter().filter(|d| d.2).map(|d| d.0).collect())
}

pub async fn customer_out(s: &AppState, auth: &Auth, c: siyu_store::customers::Customer) -> ApiResult<CustomerOut> {
    let sens = sensitive_keys(s, auth.tenant_id).await?;
    Ok(CustomerOut::new(c, auth.can(Scope::CustomersPii), &sens))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Search by name, or by exact phone number.
    pub q: Option<String>,
    /// Lifecycle stage key.
    pub lifecycle: Option<String>,
    pub staff_id: Option<Uuid>,
    pub tag_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// List customers.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(CustomerQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<CustomerOut>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_customers(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<CustomerQuery>,
) -> ApiResult<axum::Json<PageOf<CustomerOut>>> {
    auth.require(Scope::CustomersRead)?;
    let page = PageParams { limit: q.limit, cursor: q.cursor.clone() }.request()?;
    let f = CustomerFilter {
        q: q.q.clone(),
        lifecycle: q.lifecycle.clone().filter(|x| !x.is_empty()),
        staff: q.staff_id.map(StaffId),
        tag: q.tag_id.map(TagId),
    };
    let p = s.store.list_customers(auth.tenant_id, auth.data_scope, &f, &page).await?;
    let sens = sensitive_keys(&s, auth.tenant_id).await?;
    let pii = auth.can(Scope::CustomersPii);
    Ok(axum::Json(PageOf {
        items: p.items.into_iter().map(|c| CustomerOut::new(c, pii, &sens)).collect(),
        next_cursor: p.next_cursor,
    }))
}

async fn input_of(
    s: &AppState,
    auth: &Auth,
    b: &CustomerIn,
) -> ApiResult<siyu_core::customers::profile::CustomerInput> {
    // A guide's new customers are their own.
    let owner = match auth.data_scope {
        DataScope::OwnStaff(me) => Some(b.owner_staff_id.map(StaffId).unwrap_or(me)),
        _ => b.owner_staff_id.map(StaffId),
    };
    customer_input(
        s,
        auth.tenant_id,
        &b.name,
        b.phone.as_deref(),
        b.gender.as_deref(),
        b.lifecycle.as_deref(),
        owner,
        b.store_id.map(StoreId),
        &b.fields,
    )
    .await
}

/// Create a customer by hand.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = CustomerIn, security(("bearer" = []), ("session" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for repeats")),
    responses((status = 201, body = CustomerOut), (status = 409, description = "Phone already belongs to a customer", body = Problem), (status = 422, body = Problem)))]
async fn create_customer(State(s): State<AppState>, auth: Auth, Json(b): Json<CustomerIn>) -> ApiResult<Response> {
    auth.require(Scope::CustomersWrite)?;
    if auth.data_scope == DataScope::Nothing {
        return Err(ApiError::Forbidden(Scope::CustomersWrite));
    }
    let mut input = input_of(&s, &auth, &b).await?;
    if let DataScope::OwnStaff(me) = auth.data_scope {
        input.owner_staff_id = Some(me);
    }
    let c = s.store.create_customer(&auth, &input, "manual").await?;
    Ok((StatusCode::CREATED, axum::Json(customer_out(&s, &auth, c).await?)).into_response())
}

/// One customer with their tags.
#[utoipa::path(get, path = "/api/v1/customers/{customer_id}", tag = "customers", params(("customer_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = CustomerDetailOut), (status = 404, body = Problem)))]
async fn get_customer(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<CustomerDetailOut>> {
    auth.require(Scope::CustomersRead)?;
    let c = s.store.customer(auth.tenant_id, auth.data_scope, CustomerId(id)).await?;
    let tags = s.store.customer_tags(auth.tenant_id, c.id).await?;
    Ok(axum::Json(CustomerDetailOut {
        customer: customer_out(&s, &auth, c).await?,
        tags: tags.into_iter().map(Into::into).collect(),
    }))
}

/// Replace a customer's profile fields.
#[utoipa::path(put, path = "/api/v1/customers/{customer_id}", tag = "customers", params(("customer_id" = Uuid, Path)),
    request_body = CustomerIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = CustomerOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_customer(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(mut b): Json<CustomerIn>,
) -> ApiResult<axum::Json<CustomerOut>> {
    auth.require(Scope::CustomersWrite)?;
    let id = CustomerId(id);
    let current = s.store.customer(auth.tenant_id, auth.data_scope, id).await?;
    let pii = auth.can(Scope::CustomersPii);
    let keep_phone = unmask_edit(&s, auth.tenant_id, pii, &current, &mut b.phone, &mut b.fields).await?;
    let mut input = input_of(&s, &auth, &b).await?;
    if keep_phone {
        input.phone = current.phone.clone();
    }
    let c = s.store.update_customer(&auth, id, &input).await?;
    Ok(axum::Json(customer_out(&s, &auth, c).await?))
}

/// Move a customer to another lifecycle stage by hand (automation then leaves it for 14 days).
#[utoipa::path(post, path = "/api/v1/customers/{customer_id}/stage", tag = "customers", params(("customer_id" = Uuid, Path)),
    request_body = StageIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = CustomerOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_stage(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<StageIn>,
) -> ApiResult<axum::Json<CustomerOut>> {
    auth.require(Scope::CustomersWrite)?;
    let c = s.store.set_lifecycle(&auth, CustomerId(id), b.stage.trim()).await.map_err(|e| match e {
        siyu_store::StoreError::BadReference(_) => {
            ApiError::validation("stage", "unknown_stage", format!("{} is not a lifecycle stage", b.stage))
        }
        e => e.into(),
    })?;
    Ok(axum::Json(customer_out(&s, &auth, c).await?))
}

/// Everything that happened with a customer, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{customer_id}/timeline", tag = "customers", params(("customer_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<TimelineOut>), (status = 404, body = Problem)))]
async fn timeline(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Vec<TimelineOut>>> {
    auth.require(Scope::CustomersRead)?;
    let c = s.store.customer(auth.tenant_id, auth.data_scope, CustomerId(id)).await?;
    let tl = s.store.customer_timeline(auth.tenant_id, c.id, 200).await?;
    Ok(axum::Json(tl.into_iter().map(Into::into).collect()))
}

/// A customer's follow-ups.
#[utoipa::path(get, path = "/api/v1/customers/{customer_id}/follow-ups", tag = "customers", params(("customer_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<FollowUpOut>), (status = 404, body = Problem)))]
async fn list_follow_ups(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Vec<FollowUpOut>>> {
    auth.require(Scope::CustomersRead)?;
    let c = s.store.customer(auth.tenant_id, auth.data_scope, CustomerId(id)).await?;
    Ok(axum::Json(s.store.follow_ups(auth.tenant_id, c.id).await?.into_iter().map(Into::into).collect()))
}

pub const FOLLOW_UP_KINDS: [&str; 4] = ["chat", "call", "visit", "note"];

/// Validated follow-up fields: (kind, content, next_at).
pub fn follow_up_input(
    kind: &str,
    content: &str,
    next_at: Option<&str>,
) -> ApiResult<(String, String, Option<Timestamp>)> {
    let mut v = Violations::new();
    let kind = kind.trim().to_string();
    if !FOLLOW_UP_KINDS.contains(&kind.as_str()) {
        v.push("kind", "invalid_value", format!("kind must be one of: {}", FOLLOW_UP_KINDS.join(", ")));
    }
    let content = v.text("content", content, 1000);
    let next_at = match next_at.map(str::trim).filter(|x| !x.is_empty()) {
        None => None,
        Some(x) => {
            let t = Timestamp::parse_rfc3339(x);
            if t.is_none() {
                v.push("next_at", "invalid_format", "next_at must be an RFC 3339 time, e.g. 2026-12-01T10:00:00+08:00");
            }
            t
        }
    };
    v.into_result()?;
    Ok((kind, content, next_at))
}

/// Record a follow-up, optionally with a next action to be reminded of.
#[utoipa::path(post, path = "/api/v1/customers/{customer_id}/follow-ups", tag = "customers", params(("customer_id" = Uuid, Path)),
    request_body = FollowUpIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = FollowUpOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_follow_up(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<FollowUpIn>,
) -> ApiResult<Response> {
    auth.require(Scope::CustomersWrite)?;
    let (kind, content, next_at) = follow_up_input(&b.kind, &b.content, b.next_at.as_deref())?;
    let c = s.store.customer(auth.tenant_id, auth.data_scope, CustomerId(id)).await?;
    let staff = match auth.data_scope {
        DataScope::OwnStaff(me) => Some(me),
        _ => b.staff_id.map(StaffId).or(c.owner_staff_id),
    };
    let f = s.store.add_follow_up(&auth, c.id, staff, &kind, &content, next_at).await?;
    Ok((StatusCode::CREATED, axum::Json(FollowUpOut::from(f))).into_response())
}

/// Adds or removes one internal tag on one customer the actor may see.
async fn set_customer_tag(s: &AppState, auth: &Auth, id: Uuid, tag: Uuid, add: bool) -> ApiResult<StatusCode> {
    auth.require(Scope::CustomersWrite)?;
    let c = s.store.customer(auth.tenant_id, auth.data_scope, CustomerId(id)).await?;
    crate::customers::tags::set(s, auth, c.id, TagId(tag), add).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tag one customer. A corp tag is written with WeCom's `mark_tag` on every live
/// relationship of the customer, then re-read from WeCom.
#[utoipa::path(put, path = "/api/v1/customers/{customer_id}/tags/{tag_id}", tag = "customers",
    params(("customer_id" = Uuid, Path), ("tag_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem), (status = 502, description = "WeCom refused or could not be reached", body = Problem)))]
async fn tag_customer(
    State(s): State<AppState>,
    auth: Auth,
    Path((id, tag)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    set_customer_tag(&s, &auth, id, tag, true).await
}

/// Remove a tag from one customer (for a corp tag, in WeCom on every live relationship).
#[utoipa::path(delete, path = "/api/v1/customers/{customer_id}/tags/{tag_id}", tag = "customers",
    params(("customer_id" = Uuid, Path), ("tag_id" = Uuid, Path)), security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn untag_customer(
    State(s): State<AppState>,
    auth: Auth,
    Path((id, tag)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    set_customer_tag(&s, &auth, id, tag, false).await
}

/// The tenant's lifecycle stages, in order.
#[utoipa::path(get, path = "/api/v1/customer-stages", tag = "customers", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<StageOut>), (status = 401, body = Problem)))]
async fn stages(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<StageOut>>> {
    auth.require(Scope::CustomersRead)?;
    let st = s.store.lifecycle_stages(auth.tenant_id, true).await?;
    Ok(axum::Json(st.into_iter().map(|(key, name)| StageOut { key, name }).collect()))
}

// ---- tags ------------------------------------------------------------------------------------

/// Tag groups with their tags and how many customers hold each.
#[utoipa::path(get, path = "/api/v1/tag-groups", tag = "tags", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<TagGroupOut>), (status = 401, body = Problem)))]
async fn list_tag_groups(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<TagGroupOut>>> {
    auth.require(Scope::CustomersRead)?;
    Ok(axum::Json(s.store.tag_groups(auth.tenant_id).await?.into_iter().map(Into::into).collect()))
}

pub fn tag_name(name: &str) -> ApiResult<String> {
    let mut v = Violations::new();
    // WeCom's limit for corp tag names (scrm-rules C-24); internal tags keep the same bound.
    let n = v.text("name", name, 30);
    v.into_result()?;
    Ok(n)
}

/// Create a tag group: siyu's own, or with `corp` a corp tag group created in WeCom first
/// (with its first tags), then mirrored.
#[utoipa::path(post, path = "/api/v1/tag-groups", tag = "tags", request_body = TagGroupIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = TagGroupOut), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 502, description = "WeCom refused or could not be reached", body = Problem)))]
async fn create_tag_group(State(s): State<AppState>, auth: Auth, Json(b): Json<TagGroupIn>) -> ApiResult<Response> {
    require_manager(&auth)?;
    let name = tag_name(&b.name)?;
    let id = if b.corp {
        s.gateway.create_corp_tag_group(&auth, &name, b.tags.as_deref().unwrap_or_default()).await?
    } else if b.tags.is_some() {
        return Err(ApiError::validation("tags", "not_allowed", "add tags to siyu's own groups one by one"));
    } else {
        s.store.create_tag_group(&auth, &name).await?.id
    };
    let g = s.store.tag_groups(auth.tenant_id).await?.into_iter().find(|g| g.id == id).ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, axum::Json(TagGroupOut::from(g))).into_response())
}

/// Create a tag in a group. In a corp tag group the tag is created in WeCom first (names of
/// at most 30 characters; at most 3,000 corp tags), then mirrored.
#[utoipa::path(post, path = "/api/v1/tags", tag = "tags", request_body = TagIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = TagOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_tag(State(s): State<AppState>, auth: Auth, Json(b): Json<TagIn>) -> ApiResult<Response> {
    require_manager(&auth)?;
    let name = tag_name(&b.name)?;
    if b.rule.is_some() && b.campaign.is_some() {
        return Err(ApiError::validation("campaign", "not_allowed", "a tag follows a rule or a campaign, not both"));
    }
    if let Some(c) = &b.campaign {
        let c = c.parse()?;
        let id = s.store.create_campaign_tag(&auth, TagGroupId(b.group_id), &name, &c).await?.id;
        return Ok(
            (StatusCode::CREATED, axum::Json(TagOut::from(s.store.tag(auth.tenant_id, id).await?))).into_response()
        );
    }
    let id = match &b.rule {
        Some(rule) => {
            crate::customers::rule_expr(&s, auth.tenant_id, rule).await?;
            let id = s.store.create_rule_tag(&auth, TagGroupId(b.group_id), &name, rule).await?.id;
            crate::customers::refresh_rules(&s, auth.tenant_id).await?;
            id
        }
        None => crate::customers::tags::create(&s, &auth, TagGroupId(b.group_id), &name).await?,
    };
    Ok((StatusCode::CREATED, axum::Json(TagOut::from(s.store.tag(auth.tenant_id, id).await?))).into_response())
}

/// Rename a tag (a corp tag in WeCom first).
#[utoipa::path(put, path = "/api/v1/tags/{tag_id}", tag = "tags", params(("tag_id" = Uuid, Path)), request_body = NameIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TagOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn rename_tag(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<NameIn>,
) -> ApiResult<axum::Json<TagOut>> {
    require_manager(&auth)?;
    crate::customers::tags::rename(&s, &auth, TagId(id), &tag_name(&b.name)?).await?;
    Ok(axum::Json(s.store.tag(auth.tenant_id, TagId(id)).await?.into()))
}

/// Delete a tag and remove it from every customer (a corp tag in WeCom first).
#[utoipa::path(delete, path = "/api/v1/tags/{tag_id}", tag = "tags", params(("tag_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_tag(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    require_manager(&auth)?;
    crate::customers::tags::delete(&s, &auth, TagId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace a rule tag's rule; its holders follow at once.
#[utoipa::path(put, path = "/api/v1/tags/{tag_id}/rule", tag = "tags", params(("tag_id" = Uuid, Path)), request_body = RuleIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TagOut), (status = 404, body = Problem), (status = 409, description = "Not a rule tag", body = Problem), (status = 422, body = Problem)))]
async fn set_rule(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<RuleIn>,
) -> ApiResult<axum::Json<TagOut>> {
    require_manager(&auth)?;
    s.store.tag_name_kind(auth.tenant_id, TagId(id)).await?;
    crate::customers::rule_expr(&s, auth.tenant_id, &b.expr).await?;
    s.store.set_tag_rule(&auth, TagId(id), &b.expr).await?;
    crate::customers::refresh_rules(&s, auth.tenant_id).await?;
    Ok(axum::Json(s.store.tag(auth.tenant_id, TagId(id)).await?.into()))
}

/// Change a campaign tag's days or keep period. Holders stay; a shorter keep period lets them
/// go on the next daily run.
#[utoipa::path(put, path = "/api/v1/tags/{tag_id}/campaign", tag = "tags", params(("tag_id" = Uuid, Path)), request_body = CampaignIo,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = TagOut), (status = 404, body = Problem), (status = 409, description = "Not a campaign tag", body = Problem), (status = 422, body = Problem)))]
async fn set_campaign(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<CampaignIo>,
) -> ApiResult<axum::Json<TagOut>> {
    require_manager(&auth)?;
    let c = b.parse()?;
    s.store.set_tag_campaign(&auth, TagId(id), &c).await?;
    Ok(axum::Json(s.store.tag(auth.tenant_id, TagId(id)).await?.into()))
}

/// Re-evaluate every rule tag now (siyu also does it daily, after the metrics run).
#[utoipa::path(post, path = "/api/v1/rule-tags/refresh", tag = "tags", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = RuleRefreshOut)))]
async fn refresh_rule_tags(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<RuleRefreshOut>> {
    require_manager(&auth)?;
    Ok(axum::Json(crate::customers::refresh_rules(&s, auth.tenant_id).await?.into()))
}

/// The customers a bulk action addresses: listed ids (each checked against the viewer's
/// scope) or an expression's members within it.
pub async fn bulk_targets(
    s: &AppState,
    auth: &Auth,
    ids: Option<&[Uuid]>,
    expr: Option<&Expr>,
) -> ApiResult<Vec<CustomerId>> {
    match (ids, expr) {
        (Some(ids), None) => {
            if ids.len() > 1_000 {
                return Err(ApiError::validation("customer_ids", "too_many", "at most 1000 ids; use expr for more"));
            }
            let mut out = Vec::new();
            for id in ids {
                let c = s.store.customer(auth.tenant_id, auth.data_scope, CustomerId(*id)).await.map_err(|_| {
                    ApiError::validation("customer_ids", "unknown_reference", format!("no customer {id} in your scope"))
                })?;
                out.push(c.id);
            }
            Ok(out)
        }
        (None, Some(e)) => {
            let resolved = resolve_expr(s, auth.tenant_id, e, None).await?;
            let (day, _) = today(s, auth.tenant_id).await?;
            let members = s.segments.members(auth.tenant_id, auth.data_scope, &resolved, day).await?;
            let nums: Vec<u32> = members.iter().collect();
            Ok(s.store.customer_ids_for_nums(auth.tenant_id, &nums).await?)
        }
        _ => Err(ApiError::validation("expr", "required", "give either customer_ids or expr")),
    }
}

/// Tag or untag many customers at once: listed ids, or every member of an expression.
#[utoipa::path(post, path = "/api/v1/tags/{tag_id}/apply", tag = "tags", params(("tag_id" = Uuid, Path)), request_body = BulkTagIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = BulkTagOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn bulk_tag(
    State(s): State<AppState>,
    auth: Auth,
    Path(tag): Path<Uuid>,
    Json(b): Json<BulkTagIn>,
) -> ApiResult<axum::Json<BulkTagOut>> {
    auth.require(Scope::CustomersWrite)?;
    s.store.tag_name_kind(auth.tenant_id, TagId(tag)).await?;
    let who = bulk_targets(&s, &auth, b.customer_ids.as_deref(), b.expr.as_ref()).await?;
    let changed = s.store.apply_tag(&auth, TagId(tag), &who, !b.remove, "bulk").await?;
    Ok(axum::Json(BulkTagOut { customers: who.len() as u64, changed }))
}

// ---- segments --------------------------------------------------------------------------------

async fn segment_out(
    s: &AppState,
    auth: &Auth,
    rec: siyu_store::customers::segments::SegmentRec,
) -> ApiResult<SegmentOut> {
    let defs = segment_defs(s, auth.tenant_id).await?;
    let (day, _) = today(s, auth.tenant_id).await?;
    segment_out_with(s, auth, rec, &defs, day).await
}

/// [`segment_out`] with the definitions and the day loaded once for a whole list.
async fn segment_out_with(
    s: &AppState,
    auth: &Auth,
    rec: siyu_store::customers::segments::SegmentRec,
    defs: &std::collections::BTreeMap<SegmentId, Expr>,
    day: i64,
) -> ApiResult<SegmentOut> {
    let count = match resolve_with(s, auth.tenant_id, &rec.expr, defs).await {
        Ok(e) => s.segments.count(auth.tenant_id, auth.data_scope, &e, day).await?,
        // A segment whose references were deleted since it was saved counts nothing.
        Err(_) => 0,
    };
    Ok(SegmentOut {
        id: rec.id.0,
        name: rec.name,
        description: rec.description,
        expr: rec.expr,
        count,
        created_at: super::dto::ts(rec.created_at),
        updated_at: super::dto::ts(rec.updated_at),
    })
}

/// Saved segments with their current counts.
#[utoipa::path(get, path = "/api/v1/segments", tag = "segments", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<SegmentOut>), (status = 401, body = Problem)))]
async fn list_segments(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<SegmentOut>>> {
    auth.require(Scope::CustomersRead)?;
    let recs = s.store.segments(auth.tenant_id).await?;
    let defs = recs.iter().map(|x| (x.id, x.expr.clone())).collect();
    let (day, _) = today(&s, auth.tenant_id).await?;
    let mut out = Vec::new();
    for rec in recs {
        out.push(segment_out_with(&s, &auth, rec, &defs, day).await?);
    }
    Ok(axum::Json(out))
}

fn segment_fields(b: &SegmentIn) -> ApiResult<(String, String)> {
    let mut v = Violations::new();
    let name = v.text("name", &b.name, 40);
    let desc = v.opt_text("description", Some(&b.description), 200).unwrap_or_default();
    v.into_result()?;
    Ok((name, desc))
}

/// Save a new segment.
#[utoipa::path(post, path = "/api/v1/segments", tag = "segments", request_body = SegmentIn, security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = SegmentOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_segment(State(s): State<AppState>, auth: Auth, Json(b): Json<SegmentIn>) -> ApiResult<Response> {
    require_manager(&auth)?;
    let (name, desc) = segment_fields(&b)?;
    resolve_expr(&s, auth.tenant_id, &b.expr, None).await?;
    let rec = s.store.save_segment(&auth, None, &name, &desc, &b.expr).await?;
    Ok((StatusCode::CREATED, axum::Json(segment_out(&s, &auth, rec).await?)).into_response())
}

/// One saved segment with its current count.
#[utoipa::path(get, path = "/api/v1/segments/{segment_id}", tag = "segments", params(("segment_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = SegmentOut), (status = 404, body = Problem)))]
async fn get_segment(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<SegmentOut>> {
    auth.require(Scope::CustomersRead)?;
    let rec = s.store.segment(auth.tenant_id, SegmentId(id)).await?;
    Ok(axum::Json(segment_out(&s, &auth, rec).await?))
}

/// Replace a segment's name, description and expression.
#[utoipa::path(put, path = "/api/v1/segments/{segment_id}", tag = "segments", params(("segment_id" = Uuid, Path)),
    request_body = SegmentIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = SegmentOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_segment(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<SegmentIn>,
) -> ApiResult<axum::Json<SegmentOut>> {
    require_manager(&auth)?;
    let id = SegmentId(id);
    s.store.segment(auth.tenant_id, id).await?;
    let (name, desc) = segment_fields(&b)?;
    resolve_expr(&s, auth.tenant_id, &b.expr, Some(id)).await?;
    let rec = s.store.save_segment(&auth, Some(id), &name, &desc, &b.expr).await?;
    Ok(axum::Json(segment_out(&s, &auth, rec).await?))
}

/// Delete a segment no other segment uses.
#[utoipa::path(delete, path = "/api/v1/segments/{segment_id}", tag = "segments", params(("segment_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 409, description = "Used by another segment", body = Problem)))]
async fn delete_segment(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    require_manager(&auth)?;
    s.store.delete_segment(&auth, SegmentId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Count an expression's members now (the segment builder's live count).
#[utoipa::path(post, path = "/api/v1/segments/count", tag = "segments", request_body = ExprIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = CountOut), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn count_expr(State(s): State<AppState>, auth: Auth, Json(b): Json<ExprIn>) -> ApiResult<axum::Json<CountOut>> {
    auth.require(Scope::CustomersRead)?;
    let e = resolve_expr(&s, auth.tenant_id, &b.expr, None).await?;
    let (day, _) = today(&s, auth.tenant_id).await?;
    let (count, total) = s.segments.count_with_total(auth.tenant_id, auth.data_scope, &e, day).await?;
    Ok(axum::Json(CountOut { count, total }))
}

pub fn encode_num_cursor(num: u32) -> String {
    URL_SAFE_NO_PAD.encode(format!("n{num}"))
}

pub fn decode_num_cursor(c: Option<&str>) -> ApiResult<Option<u32>> {
    let Some(c) = c.filter(|c| !c.is_empty()) else { return Ok(None) };
    let bad = || ApiError::from(PagingError::BadCursor);
    let raw = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let s = std::str::from_utf8(&raw).map_err(|_| bad())?;
    s.strip_prefix('n').and_then(|n| n.parse().ok()).map(Some).ok_or_else(bad)
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A page of an expression's members, newest first.
pub async fn members_page(s: &AppState, auth: &Auth, e: &Expr, q: &MembersQuery) -> ApiResult<PageOf<CustomerOut>> {
    // The limit follows every list's rules; the cursor is a member number, not an id.
    let limit = PageRequest::parse(q.limit, None)?.limit;
    let before = decode_num_cursor(q.cursor.as_deref())?;
    let (day, _) = today(s, auth.tenant_id).await?;
    let (nums, _) = s.segments.page(auth.tenant_id, auth.data_scope, e, day, before, limit as usize + 1).await?;
    let more = nums.len() > limit as usize;
    let nums = &nums[..nums.len().min(limit as usize)];
    let rows = s.store.customers_by_nums(auth.tenant_id, auth.data_scope, nums).await?;
    let sens = sensitive_keys(s, auth.tenant_id).await?;
    let pii = auth.can(Scope::CustomersPii);
    Ok(PageOf {
        items: rows.into_iter().map(|c| CustomerOut::new(c, pii, &sens)).collect(),
        next_cursor: if more { nums.last().map(|n| encode_num_cursor(*n)) } else { None },
    })
}

/// Members of a saved segment, newest first.
#[utoipa::path(get, path = "/api/v1/segments/{segment_id}/customers", tag = "segments",
    params(("segment_id" = Uuid, Path), MembersQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<CustomerOut>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn segment_members(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<MembersQuery>,
) -> ApiResult<axum::Json<PageOf<CustomerOut>>> {
    auth.require(Scope::CustomersRead)?;
    let rec = s.store.segment(auth.tenant_id, SegmentId(id)).await?;
    let e = resolve_expr(&s, auth.tenant_id, &rec.expr, None).await?;
    Ok(axum::Json(members_page(&s, &auth, &e, &q).await?))
}

/// Members of an unsaved expression, newest first (the builder's preview).
#[utoipa::path(post, path = "/api/v1/segments/preview", tag = "segments", params(MembersQuery), request_body = ExprIn,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PageOf<CustomerOut>), (status = 400, body = Problem), (status = 422, body = Problem)))]
async fn preview(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<MembersQuery>,
    Json(b): Json<ExprIn>,
) -> ApiResult<axum::Json<PageOf<CustomerOut>>> {
    auth.require(Scope::CustomersRead)?;
    let e = resolve_expr(&s, auth.tenant_id, &b.expr, None).await?;
    Ok(axum::Json(members_page(&s, &auth, &e, &q).await?))
}

/// Recompute purchase metrics, automatic stages and RFM now (the daily job does the same).
#[utoipa::path(post, path = "/api/v1/rfm/run", tag = "segments", request_body = RfmRunIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = RfmRunOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn run_rfm(State(s): State<AppState>, auth: Auth, Json(b): Json<RfmRunIn>) -> ApiResult<axum::Json<RfmRunOut>> {
    require_manager(&auth)?;
    let (day, off) = today(&s, auth.tenant_id).await?;
    let settings = s.store.rfm_settings(auth.tenant_id).await?;
    let defaults = settings.params(day);
    let ref_day = match b.ref_date.as_deref().filter(|x| !x.is_empty()) {
        None => defaults.ref_day,
        Some(d) => parse_day(d)
            .ok_or_else(|| ApiError::validation("ref_date", "invalid_format", "ref_date must be YYYY-MM-DD"))?,
    };
    let window = match b.window_days {
        None => defaults.window_days,
        Some(0) => None,
        Some(w) if (1..=36_500).contains(&w) => Some(w),
        Some(_) => {
            return Err(ApiError::validation("window_days", "out_of_range", "window_days must be 0 (all) to 36500"))
        }
    };
    let sum = s
        .store
        .recompute_customer_metrics(&auth, off, RfmParams { ref_day, window_days: window, centre: defaults.centre })
        .await?;
    Ok(axum::Json(RfmRunOut {
        ref_date: format_day(sum.ref_day),
        buyers: sum.buyers,
        scored: sum.scored,
        segments: sum.segments.into_iter().collect(),
        stage_changes: sum.stage_changes,
    }))
}

/// The tenant's RFM configuration.
#[utoipa::path(get, path = "/api/v1/rfm/settings", tag = "segments", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = RfmSettingsIo), (status = 401, body = Problem)))]
async fn get_rfm_settings(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<RfmSettingsIo>> {
    auth.require(Scope::CustomersRead)?;
    Ok(axum::Json(s.store.rfm_settings(auth.tenant_id).await?.into()))
}

/// Change the tenant's RFM configuration (used by the daily run and by default on demand).
#[utoipa::path(put, path = "/api/v1/rfm/settings", tag = "segments", request_body = RfmSettingsIo, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = RfmSettingsIo), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_rfm_settings(
    State(s): State<AppState>,
    auth: Auth,
    Json(b): Json<RfmSettingsIo>,
) -> ApiResult<axum::Json<RfmSettingsIo>> {
    require_manager(&auth)?;
    let settings = b.validate()?;
    s.store.save_rfm_settings(&auth, &settings).await?;
    Ok(axum::Json(settings.into()))
}

/// Everything siyu holds about one person, unmasked (a data-subject access request under PIPL).
#[utoipa::path(get, path = "/api/v1/customers/{customer_id}/export", tag = "customers", params(("customer_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The person's data as JSON", body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn export_customer(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    auth.require(Scope::CustomersPii)?;
    let c = s.store.customer(auth.tenant_id, auth.data_scope, CustomerId(id)).await?;
    Ok(axum::Json(s.store.export_customer(auth.tenant_id, c.id).await?))
}

/// Erase a person's personal data everywhere (PIPL); anonymous purchase aggregates remain.
#[utoipa::path(post, path = "/api/v1/customers/{customer_id}/erase", tag = "customers", params(("customer_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn erase_customer(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    auth.require(Scope::CustomersPii)?;
    require_manager(&auth)?;
    s.store.erase_customer(&auth, CustomerId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Follow-ups whose next action is due now, oldest first (the reminder list). Guides see their
/// own.
#[utoipa::path(get, path = "/api/v1/follow-ups/due", tag = "customers", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<FollowUpOut>), (status = 401, body = Problem)))]
async fn due_follow_ups(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<FollowUpOut>>> {
    auth.require(Scope::CustomersRead)?;
    let rows = s.store.due_follow_ups(auth.tenant_id, auth.data_scope, s.store.now()).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// Include resolved alerts.
    #[serde(default)]
    pub all: bool,
}

/// Loss alerts (流失提醒), newest first: customers who deleted a member, members who deleted a
/// customer. Guides see their own.
#[utoipa::path(get, path = "/api/v1/customer-alerts", tag = "customers", params(AlertQuery), security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<AlertOut>), (status = 401, body = Problem)))]
async fn list_alerts(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<AlertQuery>,
) -> ApiResult<axum::Json<Vec<AlertOut>>> {
    auth.require(Scope::CustomersRead)?;
    let rows = s.store.loss_alerts(auth.tenant_id, auth.data_scope, !q.all, 200).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// Mark a loss alert handled.
#[utoipa::path(post, path = "/api/v1/customer-alerts/{alert_id}/resolve", tag = "customers", params(("alert_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 204), (status = 404, description = "No such open alert in your scope", body = Problem)))]
async fn resolve_alert(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    auth.require(Scope::CustomersWrite)?;
    s.store.resolve_loss_alert(&auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers, create_customer))
        .routes(routes!(get_customer, update_customer))
        .routes(routes!(set_stage))
        .routes(routes!(timeline))
        .routes(routes!(list_follow_ups, create_follow_up))
        .routes(routes!(tag_customer, untag_customer))
        .routes(routes!(stages))
        .routes(routes!(list_tag_groups, create_tag_group))
        .routes(routes!(create_tag))
        .routes(routes!(rename_tag, delete_tag))
        .routes(routes!(set_rule))
        .routes(routes!(set_campaign))
        .routes(routes!(refresh_rule_tags))
        .routes(routes!(bulk_tag))
        .routes(routes!(list_segments, create_segment))
        .routes(routes!(count_expr))
        .routes(routes!(preview))
        .routes(routes!(get_segment, update_segment, delete_segment))
        .routes(routes!(segment_members))
        .routes(routes!(run_rfm))
        .routes(routes!(get_rfm_settings, put_rfm_settings))
        .routes(routes!(list_alerts))
        .routes(routes!(due_follow_ups))
        .routes(routes!(export_customer))
        .routes(routes!(erase_customer))
        .routes(routes!(resolve_alert))
}

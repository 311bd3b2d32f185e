//! Console pages for the organisation: overview, area placeholders, brand settings, stores
//! and staff.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::org::{StaffStatus, StoreStatus, TenantSettings};
use siyu_core::paging::PageRequest;
use siyu_core::time::SUPPORTED_ZONES;
use siyu_core::{StaffId, StoreId};
use siyu_store::org::{StaffFilter, StoreFilter};

use super::{page_req, pager, qget, Ctx, FormData};
use crate::api::dto::{StaffIn, StoreIn};
use crate::api::org::{guard_own_staff_edit, staff_input, store_input};
use crate::error::ApiError;
use crate::extract::Auth;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/areas/{area}", get(area))
        .route("/console/settings", get(settings_page).post(settings_submit))
        .route("/console/stores", get(stores_page))
        .route("/console/stores/new", get(store_new).post(store_create))
        .route("/console/stores/{id}", get(store_edit).post(store_update))
        .route("/console/stores/{id}/delete", post(store_delete))
        .route("/console/staff", get(staff_page))
        .route("/console/staff/new", get(staff_new).post(staff_create))
        .route("/console/staff/{id}", get(staff_edit).post(staff_update))
}

type Q = Query<HashMap<String, String>>;

async fn home(State(s): State<AppState>, ctx: Ctx) -> Response {
    let counts = match s.store.org_counts(ctx.tenant.id).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(e),
    };
    let mut m = ctx.base("home", "home.title");
    m.insert("counts".into(), json!(counts));
    m.insert(
        "setup".into(),
        json!([
            {"label": ctx.t("home.setup.stores"), "done": counts.stores > 0, "href": "/console/stores/new"},
            {"label": ctx.t("home.setup.staff"), "done": counts.staff > 0, "href": "/console/staff/new"},
            {"label": ctx.t("home.setup.users"), "done": counts.users > 1, "href": "/console/users/new"},
            {"label": ctx.t("home.setup.tokens"), "done": counts.api_tokens > 0, "href": "/console/tokens"},
        ]),
    );
    let areas: Vec<Value> = AREAS
        .iter()
        .map(|a| json!({"id": a, "label": ctx.t(&format!("area.{a}")), "items": ctx.t(&format!("area.{a}.items"))}))
        .collect();
    m.insert("areas".into(), json!(areas));
    ctx.render("home.html", m)
}

const AREAS: &[&str] =
    &["acquisition", "customers", "engagement", "commerce", "fission", "loyalty", "analytics", "integrations"];

async fn area(ctx: Ctx, Path(area): Path<String>) -> Response {
    if !AREAS.contains(&area.as_str()) {
        return ctx.fail(ApiError::NotFound);
    }
    let mut m = ctx.base(&format!("area.{area}"), &format!("area.{area}"));
    let items: Vec<String> = ctx.t(&format!("area.{area}.items")).split(" · ").map(str::to_string).collect();
    m.insert("items".into(), json!(items));
    ctx.render("area.html", m)
}

// ---- settings ------------------------------------------------------------------------------

fn zones() -> Value {
    json!(SUPPORTED_ZONES
        .iter()
        .map(|(z, o)| json!({"value": z, "label": format!("{z} (UTC{o:+})")}))
        .collect::<Vec<_>>())
}

async fn settings_page(ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::SettingsRead) {
        return r;
    }
    let t = &ctx.tenant;
    let values = json!({"name": t.name, "timezone": t.timezone, "default_locale": t.default_locale, "contact_email": t.contact_email});
    settings_render(&ctx, values, Map::new(), super::flag(&q.0, "saved"), StatusCode::OK)
}

fn settings_render(ctx: &Ctx, values: Value, errors: Map<String, Value>, saved: bool, status: StatusCode) -> Response {
    let mut m = ctx.base("settings", "settings.title");
    m.insert("values".into(), values);
    m.insert("errors".into(), Value::Object(errors));
    m.insert("saved".into(), json!(saved));
    m.insert("zones".into(), zones());
    m.insert("slug".into(), json!(ctx.tenant.slug));
    m.insert("can_write".into(), json!(ctx.can(Scope::SettingsWrite)));
    ctx.render_with(status, "settings.html", m)
}

async fn settings_submit(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    let res = match TenantSettings::validate(
        f.get("name"),
        f.get("timezone"),
        f.get("default_locale"),
        f.opt("contact_email"),
    ) {
        Ok(v) => s.store.update_tenant_settings(&ctx.actor, &v).await.map_err(ApiError::from),
        Err(v) => Err(ApiError::Validation(v)),
    };
    match res {
        Ok(_) => Redirect::to("/console/settings?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, _)) => settings_render(&ctx, f.values(), errors, false, StatusCode::UNPROCESSABLE_ENTITY),
            Err(r) => *r,
        },
    }
}

// ---- stores --------------------------------------------------------------------------------

fn store_status_label(ctx: &Ctx, s: StoreStatus) -> Value {
    json!({"value": s.as_str(), "label": ctx.t(&format!("store.status.{}", s.as_str())), "tone": if s == StoreStatus::Open { "green" } else { "gray" }})
}

async fn stores_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::StoresRead) {
        return r;
    }
    let q = q.0;
    let status = qget(&q, "status").and_then(StoreStatus::parse);
    let f = StoreFilter { q: qget(&q, "q").map(str::to_string), status };
    let req = page_req(&q);
    let page = match s.store.list_stores(ctx.tenant.id, &f, &req).await {
        Ok(p) => p,
        Err(e) => return ctx.fail(e),
    };
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|x| {
            json!({"id": x.id, "code": x.code, "name": x.name, "city": x.city, "address": x.address, "phone": x.phone,
                   "status": store_status_label(&ctx, x.status), "updated": ctx.when(x.updated_at)})
        })
        .collect();
    let filters = [("q", qget(&q, "q")), ("status", qget(&q, "status"))];
    let mut m = ctx.base("stores", "stores.title");
    m.insert("rows".into(), json!(rows));
    m.insert("filter".into(), json!({"q": qget(&q, "q"), "status": qget(&q, "status")}));
    m.insert(
        "statuses".into(),
        json!([store_status_label(&ctx, StoreStatus::Open), store_status_label(&ctx, StoreStatus::Closed)]),
    );
    m.insert("pager".into(), pager(&ctx, rows.len(), page.next_cursor, &filters, req.before.is_none()));
    m.insert("can_write".into(), json!(ctx.can(Scope::StoresWrite)));
    m.insert("saved".into(), json!(super::flag(&q, "saved")));
    m.insert("deleted".into(), json!(super::flag(&q, "deleted")));
    ctx.render("stores.html", m)
}

fn store_form(
    ctx: &Ctx,
    id: Option<Uuid>,
    values: Value,
    errors: Map<String, Value>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let mut m = ctx.base("stores", if id.is_some() { "stores.edit" } else { "stores.new" });
    m.insert("id".into(), json!(id));
    m.insert(
        "action".into(),
        json!(id.map(|i| format!("/console/stores/{i}")).unwrap_or_else(|| "/console/stores/new".into())),
    );
    m.insert("values".into(), values);
    m.insert("errors".into(), Value::Object(errors));
    m.insert("error".into(), json!(error));
    m.insert(
        "statuses".into(),
        json!([store_status_label(ctx, StoreStatus::Open), store_status_label(ctx, StoreStatus::Closed)]),
    );
    ctx.render_with(status, "store_form.html", m)
}

fn store_in(f: &FormData) -> StoreIn {
    StoreIn {
        code: f.get("code").into(),
        name: f.get("name").into(),
        city: f.opt("city").map(Into::into),
        address: f.opt("address").map(Into::into),
        phone: f.opt("phone").map(Into::into),
        status: f.opt("status").map(Into::into),
    }
}

async fn store_new(ctx: Ctx) -> Response {
    if let Some(r) = ctx.require(Scope::StoresWrite) {
        return r;
    }
    store_form(&ctx, None, json!({"status": "open"}), Map::new(), None, StatusCode::OK)
}

async fn store_create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::StoresWrite) {
        return r;
    }
    let res = match store_input(&store_in(&f)) {
        Ok(i) => s.store.create_store(&ctx.actor, &i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match res {
        Ok(_) => Redirect::to("/console/stores?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => store_form(&ctx, None, f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY),
            Err(r) => *r,
        },
    }
}

async fn store_edit(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    if let Some(r) = ctx.require(Scope::StoresWrite) {
        return r;
    }
    match s.store.store(ctx.tenant.id, StoreId(id)).await {
        Ok(x) => {
            let v = json!({"code": x.code, "name": x.name, "city": x.city, "address": x.address, "phone": x.phone, "status": x.status.as_str()});
            store_form(&ctx, Some(id), v, Map::new(), None, StatusCode::OK)
        }
        Err(e) => ctx.fail(e),
    }
}

async fn store_update(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::StoresWrite) {
        return r;
    }
    let res = match store_input(&store_in(&f)) {
        Ok(i) => s.store.update_store(&ctx.actor, StoreId(id), &i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match res {
        Ok(_) => Redirect::to("/console/stores?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => store_form(&ctx, Some(id), f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY),
            Err(r) => *r,
        },
    }
}

async fn store_delete(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::StoresWrite) {
        return r;
    }
    match s.store.delete_store(&ctx.actor, StoreId(id)).await {
        Ok(()) => Redirect::to("/console/stores?deleted=1").into_response(),
        Err(siyu_store::StoreError::Conflict(_)) => match s.store.store(ctx.tenant.id, StoreId(id)).await {
            Ok(x) => {
                let v = json!({"code": x.code, "name": x.name, "city": x.city, "address": x.address, "phone": x.phone, "status": x.status.as_str()});
                store_form(&ctx, Some(id), v, Map::new(), Some(ctx.t("stores.delete.blocked")), StatusCode::CONFLICT)
            }
            Err(e) => ctx.fail(e),
        },
        Err(e) => ctx.fail(e),
    }
}

// ---- staff ---------------------------------------------------------------------------------

fn staff_status_label(ctx: &Ctx, s: StaffStatus) -> Value {
    json!({"value": s.as_str(), "label": ctx.t(&format!("staff.status.{}", s.as_str())), "tone": if s == StaffStatus::Active { "green" } else { "gray" }})
}

/// Stores for select boxes and for showing store names in lists.
/// The tenant's stores as select options (also used by the customer pages).
pub(super) async fn store_options(s: &AppState, ctx: &Ctx) -> Result<Vec<Value>, ApiError> {
    let req = PageRequest { limit: siyu_core::paging::MAX_LIMIT, before: None };
    let page = s.store.list_stores(ctx.tenant.id, &StoreFilter::default(), &req).await?;
    Ok(page.items.iter().map(|x| json!({"value": x.id, "label": format!("{} ({})", x.name, x.code)})).collect())
}

async fn staff_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::StaffRead) {
        return r;
    }
    let q = q.0;
    let f = StaffFilter {
        q: qget(&q, "q").map(str::to_string),
        status: qget(&q, "status").and_then(StaffStatus::parse),
        store_id: qget(&q, "store_id").and_then(|x| x.parse().ok()).map(StoreId),
    };
    let req = page_req(&q);
    let page = match s.store.list_staff(ctx.tenant.id, ctx.actor.data_scope, &f, &req).await {
        Ok(p) => p,
        Err(e) => return ctx.fail(e),
    };
    let stores = match store_options(&s, &ctx).await {
        Ok(x) => x,
        Err(e) => return ctx.fail(e),
    };
    let store_name = |id: Option<StoreId>| {
        id.and_then(|id| stores.iter().find(|o| o["value"] == json!(id.0)).map(|o| o["label"].clone()))
            .unwrap_or(Value::Null)
    };
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|x| {
            json!({"id": x.id, "name": x.name, "wecom_userid": x.wecom_userid, "mobile": x.mobile, "title": x.title,
                   "store": store_name(x.store_id), "status": staff_status_label(&ctx, x.status), "updated": ctx.when(x.updated_at)})
        })
        .collect();
    let filters = [("q", qget(&q, "q")), ("status", qget(&q, "status")), ("store_id", qget(&q, "store_id"))];
    let mut m = ctx.base("staff", "staff.title");
    m.insert("rows".into(), json!(rows));
    m.insert(
        "filter".into(),
        json!({"q": qget(&q, "q"), "status": qget(&q, "status"), "store_id": qget(&q, "store_id")}),
    );
    m.insert(
        "statuses".into(),
        json!([staff_status_label(&ctx, StaffStatus::Active), staff_status_label(&ctx, StaffStatus::Departed)]),
    );
    m.insert("stores".into(), json!(stores));
    m.insert("pager".into(), pager(&ctx, rows.len(), page.next_cursor, &filters, req.before.is_none()));
    m.insert("can_write".into(), json!(ctx.can(Scope::StaffWrite)));
    m.insert("can_edit_own".into(), json!(ctx.can(Scope::StaffWriteOwn)));
    m.insert("saved".into(), json!(super::flag(&q, "saved")));
    ctx.render("staff.html", m)
}

async fn staff_form(
    s: &AppState,
    ctx: &Ctx,
    id: Option<Uuid>,
    values: Value,
    errors: Map<String, Value>,
    status: StatusCode,
) -> Response {
    let stores = match store_options(s, ctx).await {
        Ok(x) => x,
        Err(e) => return ctx.fail(e),
    };
    let mut m = ctx.base("staff", if id.is_some() { "staff.edit" } else { "staff.new" });
    m.insert("id".into(), json!(id));
    m.insert(
        "action".into(),
        json!(id.map(|i| format!("/console/staff/{i}")).unwrap_or_else(|| "/console/staff/new".into())),
    );
    m.insert("values".into(), values);
    m.insert("errors".into(), Value::Object(errors));
    m.insert("stores".into(), json!(stores));
    m.insert(
        "statuses".into(),
        json!([staff_status_label(ctx, StaffStatus::Active), staff_status_label(ctx, StaffStatus::Departed)]),
    );
    // A guide editing their own record sees the protected fields, read-only.
    m.insert("own_only".into(), json!(!ctx.can(Scope::StaffWrite)));
    ctx.render_with(status, "staff_form.html", m)
}

fn staff_in(f: &FormData) -> StaffIn {
    StaffIn {
        name: f.get("name").into(),
        wecom_userid: f.opt("wecom_userid").map(Into::into),
        mobile: f.opt("mobile").map(Into::into),
        store_id: f.opt("store_id").and_then(|x| x.parse().ok()),
        title: f.opt("title").map(Into::into),
        status: f.opt("status").map(Into::into),
    }
}

async fn staff_new(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Some(r) = ctx.require(Scope::StaffWrite) {
        return r;
    }
    staff_form(&s, &ctx, None, json!({"status": "active"}), Map::new(), StatusCode::OK).await
}

async fn staff_create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::StaffWrite) {
        return r;
    }
    let res = match staff_input(&staff_in(&f)) {
        Ok(i) => s.store.create_staff(&ctx.actor, &i).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match res {
        Ok(_) => Redirect::to("/console/staff?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, _)) => staff_form(&s, &ctx, None, f.values(), errors, StatusCode::UNPROCESSABLE_ENTITY).await,
            Err(r) => *r,
        },
    }
}

fn staff_values(x: &siyu_core::org::Staff) -> Value {
    json!({"name": x.name, "wecom_userid": x.wecom_userid, "mobile": x.mobile.as_deref().map(|m| m.trim_start_matches("+86")),
           "store_id": x.store_id, "title": x.title, "status": x.status.as_str()})
}

async fn staff_edit(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    if !(ctx.can(Scope::StaffWrite) || ctx.can(Scope::StaffWriteOwn)) {
        return ctx.fail(ApiError::Forbidden(Scope::StaffWrite));
    }
    match s.store.staff(ctx.tenant.id, ctx.actor.data_scope, StaffId(id)).await {
        Ok(x) => staff_form(&s, &ctx, Some(id), staff_values(&x), Map::new(), StatusCode::OK).await,
        Err(e) => ctx.fail(e),
    }
}

async fn staff_update(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = f.csrf_error(&ctx) {
        return r;
    }
    let sid = StaffId(id);
    let mut input_in = staff_in(&f);
    let res = async {
        if !ctx.can(Scope::StaffWrite) {
            if !ctx.can(Scope::StaffWriteOwn) {
                return Err(ApiError::Forbidden(Scope::StaffWrite));
            }
            // Guides' forms show protected fields read-only; take them from the record.
            let cur = s.store.staff(ctx.tenant.id, ctx.actor.data_scope, sid).await?;
            input_in.wecom_userid = cur.wecom_userid.clone();
            input_in.store_id = cur.store_id.map(|x| x.0);
            input_in.status = Some(cur.status.as_str().into());
            let input = staff_input(&input_in)?;
            guard_own_staff_edit(&s, &Auth(ctx.actor.clone()), sid, &input).await?;
            return Ok(s.store.update_staff(&ctx.actor, sid, &input).await?);
        }
        let input = staff_input(&input_in)?;
        Ok(s.store.update_staff(&ctx.actor, sid, &input).await?)
    }
    .await;
    match res {
        Ok(_) => Redirect::to("/console/staff?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, _)) => {
                staff_form(&s, &ctx, Some(id), f.values(), errors, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

//! Console pages for customer operations: the customer list and detail, tags, and the
//! segment builder with its live count. They call the same store functions and validation
//! as `api::customers`, so the two cannot disagree.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use siyu_core::auth::{DataScope, Scope};
use siyu_core::customers::campaign::{Campaign, Phase};
use siyu_core::customers::rfm::Segment;
use siyu_core::customers::segment::{Expr, Metric, RfmDim};
use siyu_core::paging::PageRequest;
use siyu_core::time::format_day;
use siyu_core::{CustomerId, SegmentId, StaffId, StoreId, TagGroupId, TagId};
use siyu_store::customers::metrics::RfmParams;
use siyu_store::customers::{segment_key, Customer, CustomerFilter};
use siyu_store::org::StaffFilter;

use super::org::store_options;
use super::{flag, page_req, pager, qget, Ctx, FormData};
use crate::api::customers::{follow_up_input, tag_name, FOLLOW_UP_KINDS};
use crate::api::imports::file_response;
use crate::customers::{customer_input, resolve_expr, resolve_with, unmask_edit};
use crate::error::ApiError;
use crate::sheets::{write_table, Format};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/customers", get(list_page))
        .route(
            "/console/customers/export.csv",
            get(|s: State<AppState>, c: Ctx, q: Q| export_list(s, c, q, Format::Csv)),
        )
        .route(
            "/console/customers/export.xlsx",
            get(|s: State<AppState>, c: Ctx, q: Q| export_list(s, c, q, Format::Xlsx)),
        )
        .route("/console/customers/new", get(new_page).post(create))
        .route("/console/customers/{id}", get(detail_page).post(update))
        .route("/console/customers/{id}/stage", post(set_stage))
        .route("/console/customers/{id}/export.json", get(export_one))
        .route("/console/customers/{id}/erase", post(erase_one))
        .route("/console/customers/{id}/tags", post(add_tag))
        .route("/console/customers/{id}/tags/{tag}/remove", post(remove_tag))
        .route("/console/customers/{id}/follow-ups", post(add_follow_up))
        .route("/console/customers/alerts/{id}/resolve", post(resolve_alert))
        .route("/console/customers/{id}/merge", post(merge))
        .route("/console/customer-merges/{id}/undo", post(undo_merge))
        .route("/console/tags", get(tags_page).post(tags_submit))
        .route("/console/segments", get(segments_page))
        .route("/console/segments/rfm", post(run_rfm))
        .route("/console/segments/count", post(live_count))
        .route("/console/segments/rfm-settings", post(rfm_settings))
        .route("/console/segments/new", get(segment_new).post(segment_create))
        .route("/console/segments/{id}", get(segment_edit).post(segment_update))
        .route("/console/segments/{id}/delete", post(segment_delete))
        .route(
            "/console/segments/{id}/export.csv",
            get(|s: State<AppState>, c: Ctx, p: Path<Uuid>| export_segment(s, c, p, Format::Csv)),
        )
        .route(
            "/console/segments/{id}/export.xlsx",
            get(|s: State<AppState>, c: Ctx, p: Path<Uuid>| export_segment(s, c, p, Format::Xlsx)),
        )
}

type Q = Query<HashMap<String, String>>;

/// The tenant's local day number now; the console already holds the tenant, so its zone needs
/// no second read.
fn local_day(s: &AppState, ctx: &Ctx) -> i64 {
    s.store.now().local_day(ctx.offset())
}

fn deny_manager(ctx: &Ctx, f: &FormData) -> Option<Response> {
    ctx.deny(f, Scope::CustomersWrite).or_else(|| {
        (ctx.actor.data_scope != DataScope::Tenant).then(|| {
            super::error_page(ctx.lang, StatusCode::FORBIDDEN, "error.forbidden", "error.forbidden.desc", None)
        })
    })
}

fn stage_label(stages: &[(String, String)], key: &str) -> String {
    stages.iter().find(|(k, _)| k == key).map(|(_, n)| n.clone()).unwrap_or_else(|| key.to_string())
}

fn segment_name(ctx: &Ctx, s: Segment) -> String {
    ctx.t(&format!("rfm.{}", segment_key(s)))
}

fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

/// One customer as a table row or detail header; personal data masked without the permission.
fn row(ctx: &Ctx, c: &Customer, stages: &[(String, String)], staff: &HashMap<StaffId, String>) -> Value {
    let pii = ctx.can(Scope::CustomersPii);
    json!({
        "id": c.id.0,
        "num": c.num,
        "name": c.name,
        "phone": if pii { c.phone.clone() } else { c.phone_masked.clone() },
        "stage": stage_label(stages, &c.lifecycle),
        "stage_key": c.lifecycle,
        "owner": c.owner_staff_id.and_then(|s| staff.get(&s).cloned()),
        "orders": c.orders_count,
        "spend": yuan(c.spend_fen),
        "last_order": c.last_order_at.map(|t| ctx.when(t)),
        "rfm": c.rfm.as_ref().map(|r| json!({"code": r.scores.code(), "segment": segment_name(ctx, r.segment)})),
        "source": ctx.t(&format!("customers.source.{}", c.source)),
        "created": ctx.when(c.created_at),
    })
}

async fn staff_names(s: &AppState, ctx: &Ctx) -> Result<HashMap<StaffId, String>, ApiError> {
    let mut out = HashMap::new();
    let mut page = PageRequest { limit: 200, before: None };
    loop {
        let p = s.store.list_staff(ctx.tenant.id, DataScope::Tenant, &StaffFilter::default(), &page).await?;
        for st in &p.items {
            out.insert(st.id, st.name.clone());
        }
        match p.next_cursor.as_deref().and_then(siyu_core::paging::decode_cursor) {
            Some(c) if out.len() < 2_000 => page.before = Some(c),
            _ => break,
        }
    }
    Ok(out)
}

fn options<K: ToString>(items: impl IntoIterator<Item = (K, String)>) -> Vec<Value> {
    items.into_iter().map(|(k, v)| json!({"value": k.to_string(), "label": v})).collect()
}

async fn tag_options(s: &AppState, ctx: &Ctx) -> Result<Vec<Value>, ApiError> {
    let groups = s.store.tag_groups(ctx.tenant.id).await?;
    Ok(groups
        .iter()
        .flat_map(|g| {
            g.tags
                .iter()
                .map(move |t| json!({"value": t.id.0, "label": format!("{} / {}", g.name, t.name), "kind": t.kind}))
        })
        .collect())
}

// ---- list ----------------------------------------------------------------------------------

fn filter_of(q: &HashMap<String, String>) -> CustomerFilter {
    CustomerFilter {
        q: qget(q, "q").map(str::to_string),
        lifecycle: qget(q, "lifecycle").map(str::to_string),
        staff: qget(q, "staff_id").and_then(|v| v.parse().ok()).map(StaffId),
        tag: qget(q, "tag_id").and_then(|v| v.parse().ok()).map(TagId),
    }
}

async fn list_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    let res: Result<Response, ApiError> = async {
        let f = filter_of(&q.0);
        let page = page_req(&q.0);
        let p = s.store.list_customers(ctx.tenant.id, ctx.actor.data_scope, &f, &page).await?;
        let stages = s.store.lifecycle_stages(ctx.tenant.id, ctx.lang == crate::i18n::Lang::Zh).await?;
        let staff = staff_names(&s, &ctx).await?;
        let mut m = ctx.base("customers", "customers.title");
        let rows: Vec<Value> = p.items.iter().map(|c| row(&ctx, c, &stages, &staff)).collect();
        let filters = [
            ("q", qget(&q.0, "q")),
            ("lifecycle", qget(&q.0, "lifecycle")),
            ("staff_id", qget(&q.0, "staff_id")),
            ("tag_id", qget(&q.0, "tag_id")),
        ];
        m.insert("pager".into(), pager(&ctx, rows.len(), p.next_cursor.clone(), &filters, page.before.is_none()));
        m.insert("export".into(), json!(format!("/console/customers/export.csv{}", super::query_with(&filters))));
        m.insert("export_xlsx".into(), json!(format!("/console/customers/export.xlsx{}", super::query_with(&filters))));
        m.insert("can_import".into(), json!(ctx.can(Scope::CustomersWrite) && ctx.actor.data_scope == DataScope::Tenant));
        m.insert("rows".into(), json!(rows));
        m.insert("filter".into(), json!(q.0));
        m.insert("stages".into(), json!(options(stages.clone())));
        m.insert("staff".into(), json!(options(staff.iter().map(|(k, v)| (k.0, v.clone())))));
        m.insert("tags".into(), json!(tag_options(&s, &ctx).await?));
        m.insert(
            "segments".into(),
            json!(s
                .store
                .segments(ctx.tenant.id)
                .await?
                .iter()
                .map(|x| json!({"id": x.id.0, "name": x.name}))
                .collect::<Vec<_>>()),
        );
        m.insert(
            "can_write".into(),
            json!(ctx.can(Scope::CustomersWrite) && ctx.actor.data_scope != DataScope::Nothing),
        );
        m.insert("can_export".into(), json!(ctx.can(Scope::CustomersPii)));
        m.insert("saved".into(), json!(flag(&q.0, "saved")));
        m.insert("erased".into(), json!(flag(&q.0, "erased")));
        let due = s.store.due_follow_ups(ctx.tenant.id, ctx.actor.data_scope, s.store.now()).await?;
        m.insert(
            "due".into(),
            json!(due.iter().take(20).map(|f| json!({
                "customer_id": f.customer_id.0, "kind": ctx.t(&format!("followup.kind.{}", f.kind)),
                "content": f.content, "next_at": f.next_at.map(|t| ctx.when(t)),
            })).collect::<Vec<_>>()),
        );
        let alerts = s.store.loss_alerts(ctx.tenant.id, ctx.actor.data_scope, true, 20).await?;
        m.insert(
            "alerts".into(),
            json!(alerts.iter().map(|a| json!({
                "id": a.id, "customer_id": a.customer_id.map(|c| c.0), "name": a.customer_name.clone().unwrap_or_else(|| a.external_userid.clone()),
                "kind": ctx.t(&format!("alert.{}", a.kind)), "userid": a.userid, "at": ctx.when(a.created_at),
            })).collect::<Vec<_>>()),
        );
        // Merge suggestions from weak evidence, for those who may merge.
        if ctx.can(Scope::CustomersWrite) && ctx.actor.data_scope == DataScope::Tenant {
            let mut rows = Vec::new();
            for g in s.store.merge_suggestions(ctx.tenant.id, 10).await? {
                let (Ok(w), Ok(p)) = (
                    s.store.customer(ctx.tenant.id, DataScope::Tenant, g.wecom_customer).await,
                    s.store.customer(ctx.tenant.id, DataScope::Tenant, g.phone_customer).await,
                ) else {
                    continue;
                };
                rows.push(json!({"wecom_id": w.id.0, "wecom_name": w.name, "phone_id": p.id.0, "phone_name": p.name,
                    "phone": g.phone_masked, "userid": g.userid}));
            }
            m.insert("suggestions".into(), json!(rows));
        }
        Ok(ctx.render("customers.html", m))
    }
    .await;
    res.unwrap_or_else(|e| ctx.fail(e))
}

// ---- create / edit ---------------------------------------------------------------------------

async fn form_render(
    s: &AppState,
    ctx: &Ctx,
    action: &str,
    title: &str,
    values: Value,
    errors: Map<String, Value>,
    status: StatusCode,
) -> Response {
    let res: Result<Response, ApiError> = async {
        let mut m = ctx.base("customers", "customers.title");
        m.insert("title".into(), json!(title));
        m.insert("action".into(), json!(action));
        m.insert("values".into(), values);
        m.insert("errors".into(), Value::Object(errors));
        let stages = s.store.lifecycle_stages(ctx.tenant.id, ctx.lang == crate::i18n::Lang::Zh).await?;
        m.insert("stages".into(), json!(options(stages)));
        let staff = staff_names(s, ctx).await?;
        m.insert("staff".into(), json!(options(staff.into_iter().map(|(k, v)| (k.0, v)))));
        m.insert("stores".into(), json!(store_options(s, ctx).await?));
        m.insert(
            "genders".into(),
            json!(["unknown", "male", "female"]
                .iter()
                .map(|g| json!({"value": g, "label": ctx.t(&format!("gender.{g}"))}))
                .collect::<Vec<_>>()),
        );
        let defs = s.store.customer_field_defs(ctx.tenant.id).await?;
        m.insert(
            "fields".into(),
            json!(defs.iter().map(|(k, l, sens)| json!({"key": k, "label": l, "sensitive": sens})).collect::<Vec<_>>()),
        );
        m.insert("guide".into(), json!(ctx.actor.data_scope != DataScope::Tenant));
        Ok(ctx.render_with(status, "customer_form.html", m))
    }
    .await;
    res.unwrap_or_else(|e| ctx.fail(e))
}

async fn new_page(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersWrite) {
        return r;
    }
    let title = ctx.t("customers.new");
    form_render(&s, &ctx, "/console/customers/new", &title, json!({"gender": "unknown"}), Map::new(), StatusCode::OK)
        .await
}

/// The custom field values a profile form posted (`field_<key>`).
async fn form_fields(s: &AppState, ctx: &Ctx, f: &FormData) -> Result<BTreeMap<String, String>, ApiError> {
    let defs = s.store.customer_field_defs(ctx.tenant.id).await?;
    Ok(defs.iter().filter_map(|(k, _, _)| f.opt(&format!("field_{k}")).map(|v| (k.clone(), v.to_string()))).collect())
}

/// Profile input from the form, with the phone and custom fields given separately (an edit
/// may have replaced masked values with the stored ones).
async fn input_from_form(
    s: &AppState,
    ctx: &Ctx,
    f: &FormData,
    phone: Option<&str>,
    fields: &BTreeMap<String, String>,
) -> Result<siyu_core::customers::profile::CustomerInput, ApiError> {
    let owner = match ctx.actor.data_scope {
        DataScope::OwnStaff(me) => Some(me),
        _ => f.opt("owner_staff_id").and_then(|v| v.parse().ok()).map(StaffId),
    };
    customer_input(
        s,
        ctx.tenant.id,
        f.get("name"),
        phone,
        f.opt("gender"),
        f.opt("lifecycle"),
        owner,
        f.opt("store_id").and_then(|v| v.parse().ok()).map(StoreId),
        fields,
    )
    .await
}

async fn create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    let input = match form_fields(&s, &ctx, &f).await {
        Ok(fields) => input_from_form(&s, &ctx, &f, f.opt("phone"), &fields).await,
        Err(e) => Err(e),
    };
    let res = match input {
        Ok(input) => s.store.create_customer(&ctx.actor, &input, "manual").await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match res {
        Ok(c) => Redirect::to(&format!("/console/customers/{}?saved=1", c.id.0)).into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, _)) => {
                let title = ctx.t("customers.new");
                form_render(
                    &s,
                    &ctx,
                    "/console/customers/new",
                    &title,
                    f.values(),
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            Err(r) => *r,
        },
    }
}

async fn update(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    let id = CustomerId(id);
    let current = match s.store.customer(ctx.tenant.id, ctx.actor.data_scope, id).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(e),
    };
    let pii = ctx.can(Scope::CustomersPii);
    let res = async {
        let mut phone = f.opt("phone").map(str::to_string);
        let mut fields = form_fields(&s, &ctx, &f).await?;
        let keep_phone = unmask_edit(&s, ctx.tenant.id, pii, &current, &mut phone, &mut fields).await?;
        let mut input = input_from_form(&s, &ctx, &f, phone.as_deref(), &fields).await?;
        if keep_phone {
            input.phone = current.phone.clone();
        }
        Ok::<_, ApiError>(s.store.update_customer(&ctx.actor, id, &input).await?)
    }
    .await;
    match res {
        Ok(c) => Redirect::to(&format!("/console/customers/{}?saved=1", c.id.0)).into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, _)) => {
                let title = ctx.t("customers.edit");
                let action = format!("/console/customers/{}", id.0);
                form_render(&s, &ctx, &action, &title, f.values(), errors, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

// ---- detail --------------------------------------------------------------------------------

async fn detail_page(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    detail_render(&s, &ctx, CustomerId(id), &q.0, Map::new(), StatusCode::OK).await
}

async fn detail_render(
    s: &AppState,
    ctx: &Ctx,
    id: CustomerId,
    q: &HashMap<String, String>,
    errors: Map<String, Value>,
    status: StatusCode,
) -> Response {
    let res: Result<Response, ApiError> = async {
        let c = s.store.customer(ctx.tenant.id, ctx.actor.data_scope, id).await?;
        let stages = s.store.lifecycle_stages(ctx.tenant.id, ctx.lang == crate::i18n::Lang::Zh).await?;
        let staff = staff_names(s, ctx).await?;
        let mut m = ctx.base("customers", "customers.title");
        m.insert("title".into(), json!(c.name));
        m.insert("c".into(), row(ctx, &c, &stages, &staff));
        let pii = ctx.can(Scope::CustomersPii);
        let defs = s.store.customer_field_defs(ctx.tenant.id).await?;
        let fields: Vec<Value> = defs
            .iter()
            .map(|(k, l, sens)| {
                let v = c.fields.get(k).cloned();
                let v = if *sens && !pii { v.map(|_| "***".to_string()) } else { v };
                json!({"key": k, "label": l, "value": v})
            })
            .collect();
        m.insert("fields".into(), json!(fields));
        let tags = s.store.customer_tags(ctx.tenant.id, id).await?;
        m.insert("tags".into(), json!(tags.iter().map(|t| json!({"id": t.id.0, "name": t.name, "kind": t.kind})).collect::<Vec<_>>()));
        // Corp tags too: they are written to WeCom on every live relationship.
        m.insert("tag_options".into(), json!(tag_options(s, ctx).await?));
        m.insert("stages".into(), json!(options(stages.clone())));
        let tl = s.store.customer_timeline(ctx.tenant.id, id, 100).await?;
        m.insert(
            "timeline".into(),
            json!(tl.iter().map(|e| json!({"at": ctx.when(e.at), "kind": ctx.t(&format!("timeline.{}", e.kind)), "source": e.source, "actor": e.actor, "summary": e.summary})).collect::<Vec<_>>()),
        );
        let idents = s.store.customer_identities(ctx.tenant.id, id).await?;
        m.insert(
            "identities".into(),
            json!(idents.iter().map(|i| json!({
                "kind": ctx.t(&format!("identity.{}", i.kind)),
                // A phone link holds only the blind index; never show it as if it were a number.
                "value": if i.kind == "phone" { ctx.t("identity.sealed") } else { i.value.clone() },
                "source": i.source, "strength": ctx.t(&format!("identity.{}", i.strength)), "at": ctx.when(i.observed_at),
            })).collect::<Vec<_>>()),
        );
        let rels = s.store.customer_relationships(ctx.tenant.id, id).await?;
        m.insert(
            "relationships".into(),
            json!(rels.iter().map(|r| json!({
                "staff": r.staff_name.clone().unwrap_or_else(|| r.userid.clone()), "status": ctx.t(&format!("rel.{}", r.status)),
                "live": matches!(r.status.as_str(), "active" | "half"), "state": r.state, "remark": r.remark,
                "added": ctx.when(siyu_core::Timestamp::from_unix_secs(r.add_time)),
            })).collect::<Vec<_>>()),
        );
        let fus = s.store.follow_ups(ctx.tenant.id, id).await?;
        m.insert(
            "follow_ups".into(),
            json!(fus.iter().map(|f| json!({"kind": ctx.t(&format!("followup.kind.{}", f.kind)), "content": f.content, "next_at": f.next_at.map(|t| ctx.when(t)), "done": f.done_at.is_some(), "by": f.created_by, "at": ctx.when(f.created_at)})).collect::<Vec<_>>()),
        );
        m.insert(
            "kinds".into(),
            json!(FOLLOW_UP_KINDS.iter().map(|k| json!({"value": k, "label": ctx.t(&format!("followup.kind.{k}"))})).collect::<Vec<_>>()),
        );
        let mut values = json!({
            "name": c.name, "phone": if pii { c.phone.clone() } else { c.phone_masked.clone() },
            "gender": match c.gender { siyu_core::customers::profile::Gender::Male => "male", siyu_core::customers::profile::Gender::Female => "female", _ => "unknown" },
            "lifecycle": c.lifecycle, "owner_staff_id": c.owner_staff_id.map(|x| x.0), "store_id": c.store_id.map(|x| x.0),
        });
        for (k, v) in &c.fields {
            values[format!("field_{k}")] = json!(v);
        }
        m.insert("values".into(), values);
        m.insert("errors".into(), Value::Object(errors));
        m.insert("can_write".into(), json!(ctx.can(Scope::CustomersWrite)));
        m.insert("can_pii".into(), json!(ctx.can(Scope::CustomersPii) && ctx.actor.data_scope == DataScope::Tenant));
        m.insert("saved".into(), json!(flag(q, "saved")));
        let manager = ctx.can(Scope::CustomersWrite) && ctx.actor.data_scope == DataScope::Tenant;
        m.insert("can_merge".into(), json!(manager));
        if manager {
            let merges = s.store.customer_merges(ctx.tenant.id, id).await?;
            m.insert(
                "merges".into(),
                json!(merges
                    .iter()
                    .map(|x| json!({"id": x.id, "absorbed_num": x.absorbed_num, "absorbed_name": x.absorbed_name,
                        "at": ctx.when(x.created_at), "undone": x.undone_at.is_some(), "survivor": x.survivor_id == id}))
                    .collect::<Vec<_>>()),
            );
        }
        Ok(ctx.render_with(status, "customer.html", m))
    }
    .await;
    res.unwrap_or_else(|e| ctx.fail(e))
}

async fn set_stage(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    match s.store.set_lifecycle(&ctx.actor, CustomerId(id), f.get("stage")).await {
        Ok(_) => Redirect::to(&format!("/console/customers/{id}?saved=1")).into_response(),
        Err(siyu_store::StoreError::BadReference(_)) => {
            let mut e = Map::new();
            e.insert("stage".into(), json!(ctx.t("customers.stage.unknown")));
            detail_render(&s, &ctx, CustomerId(id), &HashMap::new(), e, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => ctx.fail(e),
    }
}

async fn add_tag(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    let res: Result<(), ApiError> = async {
        let c = s.store.customer(ctx.tenant.id, ctx.actor.data_scope, CustomerId(id)).await?;
        let tag: Uuid =
            f.get("tag_id").parse().map_err(|_| ApiError::validation("tag_id", "required", "choose a tag"))?;
        crate::customers::tags::set(&s, &ctx.actor, c.id, TagId(tag), true).await
    }
    .await;
    match res {
        Ok(()) => Redirect::to(&format!("/console/customers/{id}?saved=1")).into_response(),
        Err(ApiError::Validation(v)) => {
            let e = ctx.field_errors(&v);
            detail_render(&s, &ctx, CustomerId(id), &HashMap::new(), e, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => ctx.fail(e),
    }
}

async fn remove_tag(State(s): State<AppState>, ctx: Ctx, Path((id, tag)): Path<(Uuid, Uuid)>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    let res: Result<u64, ApiError> = async {
        let c = s.store.customer(ctx.tenant.id, ctx.actor.data_scope, CustomerId(id)).await?;
        crate::customers::tags::set(&s, &ctx.actor, c.id, TagId(tag), false).await.map(|_| 0)
    }
    .await;
    match res {
        Ok(_) => Redirect::to(&format!("/console/customers/{id}?saved=1")).into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn add_follow_up(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    // The form's datetime-local is in the tenant's zone.
    let next = f.opt("next_at").map(|v| {
        let v = if v.len() == 16 { format!("{v}:00") } else { v.to_string() };
        format!("{v}{:+03}:00", ctx.offset())
    });
    let res: Result<(), ApiError> = async {
        let (kind, content, next_at) = follow_up_input(f.get("kind"), f.get("content"), next.as_deref())?;
        let c = s.store.customer(ctx.tenant.id, ctx.actor.data_scope, CustomerId(id)).await?;
        let staff = match ctx.actor.data_scope {
            DataScope::OwnStaff(me) => Some(me),
            _ => c.owner_staff_id,
        };
        s.store.add_follow_up(&ctx.actor, c.id, staff, &kind, &content, next_at).await?;
        Ok(())
    }
    .await;
    match res {
        Ok(()) => Redirect::to(&format!("/console/customers/{id}?saved=1")).into_response(),
        Err(ApiError::Validation(v)) => {
            let e = ctx.field_errors(&v);
            detail_render(&s, &ctx, CustomerId(id), &HashMap::new(), e, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => ctx.fail(e),
    }
}

// ---- tags ----------------------------------------------------------------------------------

async fn tags_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    tags_render(&s, &ctx, flag(&q.0, "saved"), Map::new(), None, StatusCode::OK).await
}

async fn tags_render(
    s: &AppState,
    ctx: &Ctx,
    saved: bool,
    errors: Map<String, Value>,
    message: Option<String>,
    status: StatusCode,
) -> Response {
    let groups = match s.store.tag_groups(ctx.tenant.id).await {
        Ok(g) => g,
        Err(e) => return ctx.fail(e),
    };
    let mut m = ctx.base("tags", "tags.title");
    let today = match crate::customers::today(s, ctx.tenant.id).await {
        Ok((d, _)) => d,
        Err(e) => return ctx.fail(e),
    };
    let campaign = |c: &Option<Campaign>| {
        c.map(|c| {
            let phase = c.phase(today);
            let keep = match c.expires_on() {
                Some(e) => format!(" → {}", format_day(e - 1)),
                None => String::new(),
            };
            json!({
                "days": format!("{} ~ {}{keep}", format_day(c.first_day), format_day(c.last_day)),
                "phase": ctx.t(&format!("tags.campaign.{}", phase.as_str())),
                "tone": if phase == Phase::Running { "green" } else { "gray" },
            })
        })
    };
    m.insert(
        "groups".into(),
        json!(groups.iter().map(|g| json!({"id": g.id.0, "name": g.name, "kind": g.kind, "tags": g.tags.iter().map(|t| json!({"id": t.id.0, "name": t.name, "customers": t.customers, "kind": t.kind, "campaign": campaign(&t.campaign)})).collect::<Vec<_>>()})).collect::<Vec<_>>()),
    );
    m.insert(
        "group_options".into(),
        json!(groups
            .iter()
            .map(|g| json!({"value": g.id.0, "label": if g.kind == "corp" { format!("{}（{}）", g.name, ctx.t("tags.kind.corp")) } else { g.name.clone() }}))
            .collect::<Vec<_>>()),
    );
    m.insert(
        "internal_group_options".into(),
        json!(groups
            .iter()
            .filter(|g| g.kind == "internal")
            .map(|g| json!({"value": g.id.0, "label": g.name}))
            .collect::<Vec<_>>()),
    );
    let segs = match s.store.segments(ctx.tenant.id).await {
        Ok(x) => x,
        Err(e) => return ctx.fail(e),
    };
    m.insert(
        "segment_options".into(),
        json!(segs.iter().map(|x| json!({"value": x.id.0, "label": x.name})).collect::<Vec<_>>()),
    );
    m.insert("errors".into(), Value::Object(errors));
    m.insert("message".into(), json!(message));
    m.insert("saved".into(), json!(saved));
    m.insert("can_write".into(), json!(ctx.can(Scope::CustomersWrite) && ctx.actor.data_scope == DataScope::Tenant));
    let has_wecom = s.store.list_wecom_apps(ctx.tenant.id).await.map(|a| !a.is_empty()).unwrap_or(false);
    m.insert("has_wecom".into(), json!(has_wecom));
    ctx.render_with(status, "tags.html", m)
}

async fn tags_submit(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = deny_manager(&ctx, &f) {
        return r;
    }
    let res: Result<(), ApiError> = async {
        match f.get("op") {
            "group" => {
                let name = tag_name(f.get("name")).map_err(|e| rename_field(e, "group_name"))?;
                if f.opt("corp").is_some() {
                    // Tags typed in one field, separated as people write lists: 、，, ; or spaces.
                    let tags: Vec<String> = f
                        .get("group_tags")
                        .split(['、', '，', ',', ';', '；', ' '])
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect();
                    let fields = [("name", "group_name"), ("tags", "group_tags"), ("app_id", "group_tags")];
                    s.gateway
                        .create_corp_tag_group(&ctx.actor, &name, &tags)
                        .await
                        .map_err(|e| super::rename_fields(e.into(), &fields))?;
                } else {
                    s.store
                        .create_tag_group(&ctx.actor, &name)
                        .await
                        .map_err(|e| rename_field(e.into(), "group_name"))?;
                }
            }
            "tag" => {
                let name = tag_name(f.get("tag_name")).map_err(|e| rename_field(e, "tag_name"))?;
                let group: Uuid = f
                    .get("group_id")
                    .parse()
                    .map_err(|_| ApiError::validation("group_id", "required", "choose a group"))?;
                crate::customers::tags::create(&s, &ctx.actor, TagGroupId(group), &name)
                    .await
                    .map_err(|e| rename_field(e, "tag_name"))?;
            }
            "rename" => {
                let id: Uuid = f.get("tag_id").parse().map_err(|_| ApiError::NotFound)?;
                let name = tag_name(f.get("name")).map_err(|e| rename_field(e, &format!("rename_{id}")))?;
                crate::customers::tags::rename(&s, &ctx.actor, TagId(id), &name)
                    .await
                    .map_err(|e| rename_field(e, &format!("rename_{id}")))?;
            }
            "campaign" => {
                let name = tag_name(f.get("campaign_name")).map_err(|e| rename_field(e, "campaign_name"))?;
                let group: Uuid = f
                    .get("campaign_group_id")
                    .parse()
                    .map_err(|_| ApiError::validation("campaign_group_id", "required", "choose a group"))?;
                let keep = match f.opt("keep_days") {
                    None => None,
                    Some(k) => Some(k.trim().parse::<i64>().map_err(|_| {
                        ApiError::validation("keep_days", "invalid_format", "keep_days must be a whole number")
                    })?),
                };
                let c = Campaign::parse(f.get("first_day"), f.get("last_day"), keep).map_err(ApiError::Validation)?;
                s.store
                    .create_campaign_tag(&ctx.actor, TagGroupId(group), &name, &c)
                    .await
                    .map_err(|e| rename_field(e.into(), "campaign_name"))?;
            }
            "rule" => {
                let name = tag_name(f.get("rule_name")).map_err(|e| rename_field(e, "rule_name"))?;
                let group: Uuid = f
                    .get("rule_group_id")
                    .parse()
                    .map_err(|_| ApiError::validation("rule_group_id", "required", "choose a group"))?;
                let seg: Uuid = f
                    .get("segment_id")
                    .parse()
                    .map_err(|_| ApiError::validation("segment_id", "required", "choose a segment"))?;
                let rule = Expr::Segment(SegmentId(seg));
                crate::customers::rule_expr(&s, ctx.tenant.id, &rule)
                    .await
                    .map_err(|e| rename_field(e, "segment_id"))?;
                s.store
                    .create_rule_tag(&ctx.actor, TagGroupId(group), &name, &rule)
                    .await
                    .map_err(|e| rename_field(e.into(), "rule_name"))?;
                crate::customers::refresh_rules(&s, ctx.tenant.id).await?;
            }
            "refresh_rules" => {
                crate::customers::refresh_rules(&s, ctx.tenant.id).await?;
            }
            "delete" => {
                let id: Uuid = f.get("tag_id").parse().map_err(|_| ApiError::NotFound)?;
                crate::customers::tags::delete(&s, &ctx.actor, TagId(id)).await?;
            }
            _ => return Err(ApiError::NotFound),
        }
        Ok(())
    }
    .await;
    match res {
        Ok(()) => Redirect::to("/console/tags?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => tags_render(&s, &ctx, false, errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await,
            Err(r) => *r,
        },
    }
}

/// Points a validation or duplicate error at a differently named form field.
fn rename_field(e: ApiError, to: &str) -> ApiError {
    match e {
        ApiError::Validation(v) => ApiError::Validation(
            v.into_iter()
                .map(|mut x| {
                    x.field = to.to_string();
                    x
                })
                .collect(),
        ),
        ApiError::Conflict { code, field: Some(_), message } => {
            ApiError::Conflict { code, field: Some(to.into()), message }
        }
        other => other,
    }
}

// ---- segments ------------------------------------------------------------------------------

async fn segments_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    let res: Result<Response, ApiError> = async {
        let day = local_day(&s, &ctx);
        let mut rows = Vec::new();
        let saved = s.store.segments(ctx.tenant.id).await?;
        let defs = saved.iter().map(|x| (x.id, x.expr.clone())).collect();
        for seg in saved {
            let count = match resolve_with(&s, ctx.tenant.id, &seg.expr, &defs).await {
                Ok(e) => Some(s.segments.count(ctx.tenant.id, ctx.actor.data_scope, &e, day).await?),
                Err(_) => None,
            };
            rows.push(json!({"id": seg.id.0, "name": seg.name, "description": seg.description, "count": count, "updated": ctx.when(seg.updated_at)}));
        }
        let mut m = ctx.base("segments", "segments.title");
        m.insert("rows".into(), json!(rows));
        // The RFM overview: customers per segment now.
        let mut rfm = Vec::new();
        for seg in Segment::ALL {
            let n = s.segments.count(ctx.tenant.id, ctx.actor.data_scope, &Expr::RfmSegment(seg), day).await?;
            rfm.push(json!({"key": segment_key(seg), "name": segment_name(&ctx, seg), "count": n, "play": ctx.t(&format!("rfm.{}.play", segment_key(seg)))}));
        }
        m.insert("rfm".into(), json!(rfm));
        let info = s.segments.info(ctx.tenant.id).await?;
        m.insert("index".into(), json!({"customers": info.customers, "mib": format!("{:.1}", info.bytes as f64 / 1_048_576.0), "build_ms": info.build_ms}));
        m.insert("can_write".into(), json!(ctx.can(Scope::CustomersWrite) && ctx.actor.data_scope == DataScope::Tenant));
        m.insert("rfm_done".into(), json!(qget(&q.0, "rfm")));
        let settings = s.store.rfm_settings(ctx.tenant.id).await?;
        m.insert("today".into(), json!(format_day(settings.params(day).ref_day)));
        let io = crate::api::dto::RfmSettingsIo::from(settings.clone());
        m.insert("rfm_settings".into(), json!(io));
        m.insert("rfm_errors".into(), json!({}));
        m.insert(
            "rfm_window".into(),
            json!(settings.window_days.map(|w| w.to_string()).unwrap_or_else(|| ctx.t("segments.rfm.all_history"))),
        );
        m.insert("saved".into(), json!(flag(&q.0, "saved")));
        Ok(ctx.render("segments.html", m))
    }
    .await;
    res.unwrap_or_else(|e| ctx.fail(e))
}

async fn run_rfm(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = deny_manager(&ctx, &f) {
        return r;
    }
    let res: Result<String, ApiError> = async {
        let (day, off) = (local_day(&s, &ctx), ctx.offset());
        let ref_day = match f.opt("ref_date") {
            None => s.store.rfm_settings(ctx.tenant.id).await?.params(day).ref_day,
            Some(d) => siyu_core::time::parse_day(d)
                .ok_or_else(|| ApiError::validation("ref_date", "invalid_format", "ref_date must be YYYY-MM-DD"))?,
        };
        let settings = s.store.rfm_settings(ctx.tenant.id).await?;
        let defaults = settings.params(day);
        let p = RfmParams { ref_day, ..defaults };
        let sum = s.store.recompute_customer_metrics(&ctx.actor, off, p).await?;
        Ok(format!("{}/{}", sum.scored, sum.buyers))
    }
    .await;
    match res {
        Ok(done) => Redirect::to(&format!("/console/segments?rfm={}", super::urlencode(&done))).into_response(),
        Err(e) => ctx.fail(e),
    }
}

/// Condition kinds the builder offers, in order.
const KINDS: [&str; 14] = [
    "tag",
    "lifecycle",
    "staff",
    "store",
    "channel",
    "rfm_segment",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "orders",
    "spend",
    "days",
    "field",
    "segment",
];

/// Rows the builder form shows.
const ROWS: usize = 6;

/// Reads the builder form into an expression: rows `c{i}_kind`, `c{i}_not`, `c{i}_value`,
/// `c{i}_min`, `c{i}_max`, combined by `op` (`and`/`or`); or, in advanced mode, `expr_json`.
fn expr_from_form(f: &FormData) -> Result<Expr, ApiError> {
    if f.get("mode") == "json" {
        return serde_json::from_str::<Expr>(f.get("expr_json"))
            .map_err(|e| ApiError::validation("expr_json", "invalid_format", e.to_string()));
    }
    let mut parts = Vec::new();
    for i in 0..ROWS {
        let kind = f.get(&format!("c{i}_kind"));
        if kind.is_empty() {
            continue;
        }
        let field = |n: &str| format!("c{i}_{n}");
        let value = f.get(&field("value")).trim().to_string();
        // Free-text values (channel states, field values) come from their own input.
        let text = f.get(&field("text")).trim().to_string();
        let need = |v: &str| -> Result<String, ApiError> {
            if v.is_empty() {
                Err(ApiError::validation(&field("value"), "required", "choose a value"))
            } else {
                Ok(v.to_string())
            }
        };
        let id = |v: &str| -> Result<Uuid, ApiError> {
            need(v)?.parse().map_err(|_| ApiError::validation(&field("value"), "required", "choose a value"))
        };
        let num = |n: &str, scale: i64| -> Result<Option<i64>, ApiError> {
            let v = f.get(&field(n)).trim();
            if v.is_empty() {
                return Ok(None);
            }
            let parsed = if scale == 100 {
                v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).map(|x| (x * 100.0).round() as i64)
            } else {
                v.parse::<i64>().ok()
            };
            parsed
                .map(Some)
                .ok_or_else(|| ApiError::validation(&field(n), "invalid_format", "enter a whole number of at least 0"))
        };
        let score = |d: RfmDim| -> Result<Expr, ApiError> {
            let min = num("min", 1)?.unwrap_or(1).clamp(0, 255) as u8;
            let max = num("max", 1)?.unwrap_or(5).clamp(0, 255) as u8;
            Ok(Expr::RfmScore { dim: d, min, max })
        };
        let range = |m: Metric, scale: i64| -> Result<Expr, ApiError> {
            Ok(Expr::Range { metric: m, min: num("min", scale)?, max: num("max", scale)? })
        };
        let e = match kind {
            "tag" => Expr::Tag(TagId(id(&value)?)),
            "lifecycle" => Expr::Lifecycle(need(&value)?),
            "staff" => Expr::Staff(StaffId(id(&value)?)),
            "store" => Expr::Store(StoreId(id(&value)?)),
            "channel" => Expr::Channel(
                need(&text).map_err(|_| ApiError::validation(&field("text"), "required", "enter a value"))?,
            ),
            "rfm_segment" => Expr::RfmSegment(
                siyu_store::customers::parse_segment_key(&value)
                    .ok_or_else(|| ApiError::validation(&field("value"), "required", "choose a value"))?,
            ),
            "rfm_r" => score(RfmDim::R)?,
            "rfm_f" => score(RfmDim::F)?,
            "rfm_m" => score(RfmDim::M)?,
            "orders" => range(Metric::Orders, 1)?,
            "spend" => range(Metric::SpendFen, 100)?,
            "days" => range(Metric::DaysSincePurchase, 1)?,
            "field" => {
                let key = f.get(&field("key")).trim().to_string();
                if key.is_empty() {
                    return Err(ApiError::validation(&field("key"), "required", "choose a field"));
                }
                Expr::Field { key, value: text }
            }
            "segment" => Expr::Segment(SegmentId(id(&value)?)),
            _ => return Err(ApiError::validation(&field("kind"), "invalid_value", "unknown condition")),
        };
        parts.push(if f.checked(&field("not")) { Expr::Not(Box::new(e)) } else { e });
    }
    Ok(match (parts.len(), f.get("op")) {
        (0, _) => Expr::All,
        (1, _) => parts.pop().expect("one"),
        (_, "or") => Expr::Or(parts),
        _ => Expr::And(parts),
    })
}

/// The builder's form values for an expression, when it has the builder's flat shape.
fn form_of(e: &Expr) -> Option<Map<String, Value>> {
    let (op, parts): (&str, Vec<&Expr>) = match e {
        Expr::All => ("and", vec![]),
        Expr::And(xs) => ("and", xs.iter().collect()),
        Expr::Or(xs) => ("or", xs.iter().collect()),
        other => ("and", vec![other]),
    };
    if parts.len() > ROWS {
        return None;
    }
    let mut m = Map::new();
    m.insert("op".into(), json!(op));
    for (i, p) in parts.iter().enumerate() {
        let (neg, leaf) = match p {
            Expr::Not(x) => (true, &**x),
            x => (false, *x),
        };
        let mut set = |k: &str, v: Value| {
            m.insert(format!("c{i}_{k}"), v);
        };
        if neg {
            set("not", json!("1"));
        }
        let yuan = |v: Option<i64>| v.map(|f| json!(format!("{}.{:02}", f / 100, f % 100)));
        match leaf {
            Expr::Tag(t) => (set("kind", json!("tag")), set("value", json!(t.0))).1,
            Expr::Lifecycle(s) => (set("kind", json!("lifecycle")), set("value", json!(s))).1,
            Expr::Staff(s) => (set("kind", json!("staff")), set("value", json!(s.0))).1,
            Expr::Store(s) => (set("kind", json!("store")), set("value", json!(s.0))).1,
            Expr::Channel(s) => (set("kind", json!("channel")), set("text", json!(s))).1,
            Expr::RfmSegment(s) => (set("kind", json!("rfm_segment")), set("value", json!(segment_key(*s)))).1,
            Expr::RfmScore { dim, min, max } => {
                let k = match dim {
                    RfmDim::R => "rfm_r",
                    RfmDim::F => "rfm_f",
                    RfmDim::M => "rfm_m",
                };
                set("kind", json!(k));
                set("min", json!(min));
                set("max", json!(max));
            }
            Expr::Range { metric, min, max } => {
                let (k, lo, hi) = match metric {
                    Metric::Orders => ("orders", min.map(|v| json!(v)), max.map(|v| json!(v))),
                    Metric::SpendFen => ("spend", yuan(*min), yuan(*max)),
                    Metric::DaysSincePurchase => ("days", min.map(|v| json!(v)), max.map(|v| json!(v))),
                };
                set("kind", json!(k));
                if let Some(v) = lo {
                    set("min", v);
                }
                if let Some(v) = hi {
                    set("max", v);
                }
            }
            Expr::Field { key, value } => {
                set("kind", json!("field"));
                set("key", json!(key));
                set("text", json!(value));
            }
            Expr::Segment(s) => (set("kind", json!("segment")), set("value", json!(s.0))).1,
            _ => return None,
        }
    }
    Some(m)
}

async fn builder_render(
    s: &AppState,
    ctx: &Ctx,
    action: &str,
    editing: Option<SegmentId>,
    mut values: Map<String, Value>,
    errors: Map<String, Value>,
    status: StatusCode,
) -> Response {
    let res: Result<Response, ApiError> = async {
        let mut m = ctx.base("segments", "segments.title");
        m.insert("title".into(), json!(ctx.t(if editing.is_some() { "segments.edit" } else { "segments.new" })));
        m.insert("action".into(), json!(action));
        m.insert("editing".into(), json!(editing.map(|x| x.0)));
        values.entry("op").or_insert(json!("and"));
        m.insert("values".into(), Value::Object(values));
        m.insert("errors".into(), Value::Object(errors));
        m.insert("rows".into(), json!((0..ROWS).collect::<Vec<_>>()));
        m.insert(
            "kinds".into(),
            json!(KINDS.iter().map(|k| json!({"value": k, "label": ctx.t(&format!("seg.kind.{k}"))})).collect::<Vec<_>>()),
        );
        let stages = s.store.lifecycle_stages(ctx.tenant.id, ctx.lang == crate::i18n::Lang::Zh).await?;
        let staff = staff_names(s, ctx).await?;
        let segs = s.store.segments(ctx.tenant.id).await?;
        let defs = s.store.customer_field_defs(ctx.tenant.id).await?;
        // Value choices per kind, for the row's value select (filled in by console.js).
        m.insert(
            "choices".into(),
            json!({
                "tag": tag_options(s, ctx).await?,
                "lifecycle": options(stages),
                "staff": options(staff.into_iter().map(|(k, v)| (k.0, v))),
                "store": store_options(s, ctx).await?,
                "rfm_segment": Segment::ALL.iter().map(|x| json!({"value": segment_key(*x), "label": segment_name(ctx, *x)})).collect::<Vec<_>>(),
                "segment": segs.iter().filter(|x| Some(x.id) != editing).map(|x| json!({"value": x.id.0, "label": x.name})).collect::<Vec<_>>(),
                "field": defs.iter().filter(|d| !d.2).map(|d| json!({"value": d.0, "label": d.1})).collect::<Vec<_>>(),
            }),
        );
        Ok(ctx.render_with(status, "segment_form.html", m))
    }
    .await;
    res.unwrap_or_else(|e| ctx.fail(e))
}

async fn segment_new(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    builder_render(&s, &ctx, "/console/segments/new", None, Map::new(), Map::new(), StatusCode::OK).await
}

async fn segment_edit(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    let seg = match s.store.segment(ctx.tenant.id, SegmentId(id)).await {
        Ok(x) => x,
        Err(e) => return ctx.fail(e),
    };
    let mut values = form_of(&seg.expr).unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("mode".into(), json!("json"));
        m
    });
    values.insert("expr_json".into(), json!(serde_json::to_string_pretty(&seg.expr).unwrap_or_default()));
    values.insert("name".into(), json!(seg.name));
    values.insert("description".into(), json!(seg.description));
    let action = format!("/console/segments/{id}");
    builder_render(&s, &ctx, &action, Some(seg.id), values, Map::new(), StatusCode::OK).await
}

async fn save(s: &AppState, ctx: &Ctx, f: &FormData, id: Option<SegmentId>) -> Result<SegmentId, ApiError> {
    let mut v = siyu_core::validate::Violations::new();
    let name = v.text("name", f.get("name"), 40);
    let desc = v.opt_text("description", f.opt("description"), 200).unwrap_or_default();
    v.into_result()?;
    let e = expr_from_form(f)?;
    resolve_expr(s, ctx.tenant.id, &e, id).await?;
    Ok(s.store.save_segment(&ctx.actor, id, &name, &desc, &e).await?.id)
}

async fn segment_submit(s: AppState, ctx: Ctx, f: FormData, id: Option<SegmentId>) -> Response {
    if let Some(r) = deny_manager(&ctx, &f) {
        return r;
    }
    match save(&s, &ctx, &f, id).await {
        Ok(id) => Redirect::to(&format!("/console/segments/{}?saved=1", id.0)).into_response(),
        Err(e) => {
            let action =
                id.map(|x| format!("/console/segments/{}", x.0)).unwrap_or_else(|| "/console/segments/new".into());
            match ctx.form_error(builder_error(e)) {
                Ok((errors, msg)) => {
                    let mut errors = errors;
                    if let Some(m) = msg {
                        errors.insert("expr".into(), json!(m));
                    }
                    let values = f.values().as_object().cloned().unwrap_or_default();
                    builder_render(&s, &ctx, &action, id, values, errors, StatusCode::UNPROCESSABLE_ENTITY).await
                }
                Err(r) => *r,
            }
        }
    }
}

/// Expression errors name JSON paths (`expr.and[1].tag`); the builder shows them at the top.
fn builder_error(e: ApiError) -> ApiError {
    match e {
        ApiError::Validation(v) => ApiError::Validation(
            v.into_iter()
                .map(|mut x| {
                    if x.field.starts_with("expr") {
                        x.field = "expr".into();
                    }
                    x
                })
                .collect(),
        ),
        other => other,
    }
}

async fn segment_create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    segment_submit(s, ctx, FormData::parse(&body), None).await
}

async fn segment_update(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    if let Err(e) = s.store.segment(ctx.tenant.id, SegmentId(id)).await {
        return ctx.fail(e);
    }
    segment_submit(s, ctx, FormData::parse(&body), Some(SegmentId(id))).await
}

async fn segment_delete(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = deny_manager(&ctx, &f) {
        return r;
    }
    match s.store.delete_segment(&ctx.actor, SegmentId(id)).await {
        Ok(()) => Redirect::to("/console/segments?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

/// The builder's live count: the same form, answered as JSON.
async fn live_count(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = f.csrf_error(&ctx).or_else(|| ctx.require(Scope::CustomersRead)) {
        return r;
    }
    let editing = f.opt("editing").and_then(|v| v.parse().ok()).map(SegmentId);
    let res: Result<(u64, u64), ApiError> = async {
        let e = expr_from_form(&f)?;
        let e = resolve_expr(&s, ctx.tenant.id, &e, editing).await?;
        let day = local_day(&s, &ctx);
        Ok(s.segments.count_with_total(ctx.tenant.id, ctx.actor.data_scope, &e, day).await?)
    }
    .await;
    match res {
        Ok((n, total)) => axum::Json(json!({"count": n, "total": total, "label": crate::i18n::tf(ctx.lang, "segments.count", &[("n", &n.to_string()), ("total", &total.to_string())])})).into_response(),
        Err(ApiError::Validation(v)) => {
            let msg = ctx.field_errors(&v).values().next().and_then(|x| x.as_str().map(str::to_string)).unwrap_or_default();
            (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"error": msg}))).into_response()
        }
        Err(e) => ctx.fail(e),
    }
}

// ---- export --------------------------------------------------------------------------------

/// The list's rows as a CSV or XLSX download, with the page's column headings.
fn table_response(name: &str, ctx: &Ctx, rows: Vec<Value>, format: Format) -> Response {
    let head = ["name", "phone", "stage", "owner", "orders", "spend", "last_order", "rfm", "source", "created"];
    let labels: Vec<String> = head.iter().map(|h| ctx.t(&format!("customers.col.{h}"))).collect();
    let mut table = Vec::with_capacity(rows.len());
    for r in rows {
        let cell = |k: &str| match &r[k] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other if k == "rfm" => other["code"]
                .as_str()
                .map(|c| format!("{c} {}", other["segment"].as_str().unwrap_or("")))
                .unwrap_or_default(),
            other => other.to_string(),
        };
        table.push(head.iter().map(|k| cell(k)).collect::<Vec<_>>());
    }
    match write_table(format, name, &labels, &table) {
        Ok(bytes) => file_response(format, name, bytes),
        Err(e) => ctx.fail(ApiError::Internal(e)),
    }
}

/// Exports stop here; larger lists go through the API's paging.
const EXPORT_MAX: usize = 100_000;

async fn export_list(State(s): State<AppState>, ctx: Ctx, q: Q, format: Format) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    let res: Result<Vec<Value>, ApiError> = async {
        let f = filter_of(&q.0);
        let stages = s.store.lifecycle_stages(ctx.tenant.id, ctx.lang == crate::i18n::Lang::Zh).await?;
        let staff = staff_names(&s, &ctx).await?;
        let mut out = Vec::new();
        let mut page = PageRequest { limit: 200, before: None };
        loop {
            let p = s.store.list_customers(ctx.tenant.id, ctx.actor.data_scope, &f, &page).await?;
            out.extend(p.items.iter().map(|c| row(&ctx, c, &stages, &staff)));
            match p.next_cursor.as_deref().and_then(siyu_core::paging::decode_cursor) {
                Some(c) if out.len() < EXPORT_MAX => page.before = Some(c),
                _ => break,
            }
        }
        Ok(out)
    }
    .await;
    match res {
        Ok(rows) => table_response("customers", &ctx, rows, format),
        Err(e) => ctx.fail(e),
    }
}

async fn export_segment(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, format: Format) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersRead) {
        return r;
    }
    let res: Result<Vec<Value>, ApiError> = async {
        let seg = s.store.segment(ctx.tenant.id, SegmentId(id)).await?;
        let e = resolve_expr(&s, ctx.tenant.id, &seg.expr, None).await?;
        let day = local_day(&s, &ctx);
        let members = s.segments.members(ctx.tenant.id, ctx.actor.data_scope, &e, day).await?;
        let nums = siyu_core::customers::bitmap::page_desc(&members, None, EXPORT_MAX);
        let stages = s.store.lifecycle_stages(ctx.tenant.id, ctx.lang == crate::i18n::Lang::Zh).await?;
        let staff = staff_names(&s, &ctx).await?;
        let mut out = Vec::new();
        for chunk in nums.chunks(1_000) {
            let cs = s.store.customers_by_nums(ctx.tenant.id, ctx.actor.data_scope, chunk).await?;
            out.extend(cs.iter().map(|c| row(&ctx, c, &stages, &staff)));
        }
        Ok(out)
    }
    .await;
    match res {
        Ok(rows) => table_response("segment", &ctx, rows, format),
        Err(e) => ctx.fail(e),
    }
}

async fn resolve_alert(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersWrite) {
        return r;
    }
    match s.store.resolve_loss_alert(&ctx.actor, id).await {
        Ok(()) => Redirect::to("/console/customers?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn rfm_settings(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = deny_manager(&ctx, &f) {
        return r;
    }
    let num = |k: &str| f.opt(k).and_then(|v| v.trim().parse::<i64>().ok());
    let io = crate::api::dto::RfmSettingsIo {
        window_days: if f.get("window") == "all" { None } else { num("window_days").or(Some(-1)) },
        centre: f.get("centre").to_string(),
        r_days: num("r_days"),
        f: num("f"),
        // The form asks for yuan; settings keep fen.
        m_fen: f.opt("m_yuan").and_then(|v| v.trim().parse::<f64>().ok()).map(|y| (y * 100.0).round() as i64),
        ref_date: f.opt("ref_date").map(str::to_string),
    };
    let res = match io.validate() {
        Ok(settings) => s.store.save_rfm_settings(&ctx.actor, &settings).await.map_err(ApiError::from),
        Err(v) => Err(ApiError::Validation(v)),
    };
    match res {
        Ok(()) => Redirect::to("/console/segments?saved=1").into_response(),
        Err(ApiError::Validation(v)) => {
            let msg = ctx
                .field_errors(&v)
                .values()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect::<Vec<_>>()
                .join(" ");
            super::error_page(ctx.lang, StatusCode::UNPROCESSABLE_ENTITY, "segments.rfm.settings", &msg, None)
        }
        Err(e) => ctx.fail(e),
    }
}

async fn export_one(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersPii) {
        return r;
    }
    let res: Result<Value, ApiError> = async {
        let c = s.store.customer(ctx.tenant.id, ctx.actor.data_scope, CustomerId(id)).await?;
        Ok(s.store.export_customer(ctx.tenant.id, c.id).await?)
    }
    .await;
    match res {
        Ok(v) => (
            [
                (header::CONTENT_TYPE, "application/json; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"customer-{id}.json\"")),
            ],
            serde_json::to_vec_pretty(&v).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn erase_one(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = deny_manager(&ctx, &f).or_else(|| ctx.require(Scope::CustomersPii)) {
        return r;
    }
    match s.store.erase_customer(&ctx.actor, CustomerId(id)).await {
        Ok(()) => Redirect::to("/console/customers?erased=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

// ---- merge and split -----------------------------------------------------------------------

async fn merge(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = deny_manager(&ctx, &f) {
        return r;
    }
    let res: Result<(), ApiError> = async {
        let absorbed = match f.opt("absorbed_id").and_then(|v| v.parse().ok()) {
            Some(a) => CustomerId(a),
            None => {
                let num: u32 = f.get("absorbed_num").trim().trim_start_matches('#').parse().map_err(|_| {
                    ApiError::validation("absorbed_num", "required", "enter the number of the customer to merge in")
                })?;
                let ids = s.store.customer_ids_for_nums(ctx.tenant.id, &[num]).await?;
                *ids.first().ok_or_else(|| {
                    ApiError::validation("absorbed_num", "unknown_reference", "no live customer has this number")
                })?
            }
        };
        s.store.merge_customers(&ctx.actor, CustomerId(id), absorbed).await?;
        Ok(())
    }
    .await;
    match res {
        Ok(()) => Redirect::to(&format!("/console/customers/{id}?saved=1")).into_response(),
        Err(ApiError::Conflict { message, .. }) => {
            let e = Map::from_iter([("absorbed_num".to_string(), json!(message))]);
            detail_render(&s, &ctx, CustomerId(id), &HashMap::new(), e, StatusCode::CONFLICT).await
        }
        Err(ApiError::Validation(v)) => {
            let e = ctx.field_errors(&v);
            detail_render(&s, &ctx, CustomerId(id), &HashMap::new(), e, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => ctx.fail(e),
    }
}

async fn undo_merge(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = deny_manager(&ctx, &f) {
        return r;
    }
    match s.store.undo_merge(&ctx.actor, id).await {
        Ok(()) => {
            let back = f.opt("back").and_then(|b| b.parse::<Uuid>().ok());
            let to =
                back.map(|b| format!("/console/customers/{b}?saved=1")).unwrap_or_else(|| "/console/customers".into());
            Redirect::to(&to).into_response()
        }
        Err(e) => ctx.fail(e),
    }
}

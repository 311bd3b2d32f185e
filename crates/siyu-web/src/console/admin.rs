//! Console pages for administration: users and roles, API tokens, the audit log and jobs.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use siyu_core::auth::{check_password_policy, Role, Scope};
use siyu_core::jobs::JobStatus;
use siyu_core::paging::PageRequest;
use siyu_core::validate::Violations;
use siyu_core::{ApiTokenId, JobId, StaffId, UserId};
use siyu_store::jobs::{JobFilter, NewJob};
use siyu_store::org::{NewUser, StaffFilter, UserFilter, UserPatch};
use siyu_store::secrets::hash_password;

use super::{page_req, pager, qget, role_options, Ctx, FormData};
use crate::api::admin::{check_token_request, manageable_user, may_grant, AuditQuery};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/users", get(users_page))
        .route("/console/users/new", get(user_new).post(user_create))
        .route("/console/users/{id}", get(user_edit).post(user_update))
        .route("/console/users/{id}/password", post(user_password))
        .route("/console/tokens", get(tokens_page).post(token_create))
        .route("/console/tokens/{id}/revoke", post(token_revoke))
        .route("/console/audit", get(audit_page))
        .route("/console/jobs", get(jobs_page))
        .route("/console/jobs/probe", post(job_probe))
        .route("/console/jobs/{id}/retry", post(job_retry))
}

type Q = Query<HashMap<String, String>>;

// ---- users ---------------------------------------------------------------------------------

async fn users_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::UsersRead) {
        return r;
    }
    let q = q.0;
    let f = UserFilter { q: qget(&q, "q").map(str::to_string), role: qget(&q, "role").and_then(Role::parse) };
    let req = page_req(&q);
    let page = match s.store.list_users(ctx.tenant.id, &f, &req).await {
        Ok(p) => p,
        Err(e) => return ctx.fail(e),
    };
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|u| {
            json!({"id": u.id, "login": u.login, "name": u.display_name, "role": u.role.as_str(),
                   "role_label": ctx.t(&format!("role.{}", u.role.as_str())), "disabled": u.disabled,
                   "linked": u.staff_id.is_some(), "updated": ctx.when(u.updated_at),
                   "editable": ctx.can(Scope::UsersWrite) && may_grant(&ctx.actor, u.role), "is_me": u.id == ctx.user.id})
        })
        .collect();
    let filters = [("q", qget(&q, "q")), ("role", qget(&q, "role"))];
    let mut m = ctx.base("users", "users.title");
    m.insert("rows".into(), json!(rows));
    m.insert("filter".into(), json!({"q": qget(&q, "q"), "role": qget(&q, "role")}));
    let roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| json!({"value": r.as_str(), "label": ctx.t(&format!("role.{}", r.as_str())), "desc": ctx.t(&format!("role.{}.desc", r.as_str()))}))
        .collect();
    m.insert("roles".into(), json!(roles));
    m.insert("pager".into(), pager(&ctx, rows.len(), page.next_cursor, &filters, req.before.is_none()));
    m.insert("can_write".into(), json!(ctx.can(Scope::UsersWrite)));
    m.insert("saved".into(), json!(super::flag(&q, "saved")));
    m.insert("password_done".into(), json!(super::flag(&q, "password")));
    ctx.render("users.html", m)
}

async fn staff_options(s: &AppState, ctx: &Ctx) -> Result<Vec<Value>, Response> {
    let req = PageRequest { limit: siyu_core::paging::MAX_LIMIT, before: None };
    let page = s
        .store
        .list_staff(ctx.tenant.id, ctx.actor.data_scope, &StaffFilter::default(), &req)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(page.items.iter().map(|x| json!({"value": x.id, "label": format!("{}{}", x.name, x.wecom_userid.as_deref().map(|u| format!(" ({u})")).unwrap_or_default())})).collect())
}

async fn user_form(
    s: &AppState,
    ctx: &Ctx,
    id: Option<Uuid>,
    values: Value,
    errors: Map<String, Value>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let staff = match staff_options(s, ctx).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut m = ctx.base("users", if id.is_some() { "users.edit" } else { "users.new" });
    m.insert("id".into(), json!(id));
    m.insert(
        "action".into(),
        json!(id.map(|i| format!("/console/users/{i}")).unwrap_or_else(|| "/console/users/new".into())),
    );
    m.insert("values".into(), values);
    m.insert("errors".into(), Value::Object(errors));
    m.insert("error".into(), json!(error));
    m.insert("roles".into(), json!(role_options(ctx)));
    m.insert("staff".into(), json!(staff));
    ctx.render_with(status, "user_form.html", m)
}

async fn user_new(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Some(r) = ctx.require(Scope::UsersWrite) {
        return r;
    }
    user_form(&s, &ctx, None, json!({"role": "operator"}), Map::new(), None, StatusCode::OK).await
}

async fn user_create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::UsersWrite) {
        return r;
    }
    let res: Result<_, ApiError> = async {
        let mut v = Violations::new();
        let login = v.login("login", f.get("login"));
        let display_name = v.text("display_name", f.get("display_name"), 64);
        let role = Role::parse(f.get("role"));
        if role.is_none() {
            v.push("role", "invalid_value", "choose a role");
        }
        if let Err(p) = check_password_policy(f.get("password")) {
            v.push("password", "weak_password", p.to_string());
        }
        v.into_result()?;
        let role = role.unwrap_or(Role::Guide);
        if !may_grant(&ctx.actor, role) {
            return Err(ApiError::ForbiddenField { field: "role".into(), message: String::new() });
        }
        let pw = f.get("password").to_string();
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let staff_id = f.opt("staff_id").and_then(|x| x.parse().ok()).map(StaffId);
        Ok(s.store.create_user(&ctx.actor, NewUser { login, display_name, role, staff_id, password_hash }).await?)
    }
    .await;
    match res {
        Ok(_) => Redirect::to("/console/users?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => {
                user_form(&s, &ctx, None, f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

async fn user_edit(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    if let Some(r) = ctx.require(Scope::UsersWrite) {
        return r;
    }
    match s.store.user(ctx.tenant.id, UserId(id)).await {
        Ok(u) if may_grant(&ctx.actor, u.role) => {
            let v = json!({"login": u.login, "display_name": u.display_name, "role": u.role.as_str(), "staff_id": u.staff_id, "disabled": u.disabled});
            user_form(&s, &ctx, Some(id), v, Map::new(), None, StatusCode::OK).await
        }
        Ok(_) => ctx.fail(ApiError::Forbidden(Scope::UsersWrite)),
        Err(e) => ctx.fail(e),
    }
}

async fn user_update(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::UsersWrite) {
        return r;
    }
    let res: Result<_, ApiError> = async {
        let target = manageable_user(&s, &ctx.actor, UserId(id)).await?;
        let mut v = Violations::new();
        let display_name = v.text("display_name", f.get("display_name"), 64);
        let role = Role::parse(f.get("role"));
        if role.is_none() {
            v.push("role", "invalid_value", "choose a role");
        }
        v.into_result()?;
        let role = role.unwrap_or(target.role);
        if !may_grant(&ctx.actor, role) {
            return Err(ApiError::ForbiddenField { field: "role".into(), message: String::new() });
        }
        let staff_id = Some(f.opt("staff_id").and_then(|x| x.parse().ok()).map(StaffId));
        let patch = UserPatch {
            display_name: Some(display_name),
            role: Some(role),
            staff_id,
            disabled: Some(f.checked("disabled")),
        };
        Ok(s.store.update_user(&ctx.actor, target.id, &patch).await?)
    }
    .await;
    match res {
        Ok(_) => Redirect::to("/console/users?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => {
                user_form(&s, &ctx, Some(id), f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

async fn user_password(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::UsersWrite) {
        return r;
    }
    let res: Result<_, ApiError> = async {
        let target = manageable_user(&s, &ctx.actor, UserId(id)).await?;
        if let Err(p) = check_password_policy(f.get("new_password")) {
            return Err(ApiError::validation("new_password", "weak_password", p.to_string()));
        }
        let pw = f.get("new_password").to_string();
        let h = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(s.store.set_password(&ctx.actor, target.id, &h).await?)
    }
    .await;
    match res {
        Ok(()) => Redirect::to("/console/users?password=1").into_response(),
        Err(e) => match (ctx.form_error(e), s.store.user(ctx.tenant.id, UserId(id)).await) {
            (Ok((errors, msg)), Ok(u)) => {
                let v = json!({"login": u.login, "display_name": u.display_name, "role": u.role.as_str(), "staff_id": u.staff_id, "disabled": u.disabled});
                user_form(&s, &ctx, Some(id), v, errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            (Err(r), _) => *r,
            (_, Err(e)) => ctx.fail(e),
        },
    }
}

// ---- tokens --------------------------------------------------------------------------------

fn scope_options(ctx: &Ctx) -> Vec<Value> {
    Scope::ALL
        .iter()
        .filter(|s| s.grantable_to_token() && ctx.can(**s))
        .map(|s| json!({"value": s.as_str(), "label": ctx.t(&format!("scope.{}", s.as_str()))}))
        .collect()
}

async fn tokens_render(
    s: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    created: Option<(String, String)>,
    values: Value,
    errors: Map<String, Value>,
    status: StatusCode,
) -> Response {
    let req = page_req(q);
    let page = match s.store.list_tokens(ctx.tenant.id, &req).await {
        Ok(p) => p,
        Err(e) => return ctx.fail(e),
    };
    let now = s.store.now();
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|t| {
            let (st, tone) = if t.revoked_at.is_some() {
                ("revoked", "gray")
            } else if t.expires_at.is_some_and(|e| now >= e) {
                ("expired", "orange")
            } else {
                ("active", "green")
            };
            json!({"id": t.id, "name": t.name, "prefix": t.prefix,
                   "scopes": t.scopes.iter().map(|x| ctx.t(&format!("scope.{}", x.as_str()))).collect::<Vec<_>>(),
                   "created": ctx.when(t.created_at), "last_used": t.last_used_at.map(|x| ctx.when(x)),
                   "expires": t.expires_at.map(|x| ctx.when(x)), "status": st, "status_label": ctx.t(&format!("token.status.{st}")), "tone": tone,
                   "revocable": st == "active"})
        })
        .collect();
    let mut m = ctx.base("tokens", "tokens.title");
    m.insert("rows".into(), json!(rows));
    m.insert("pager".into(), pager(ctx, rows.len(), page.next_cursor, &[], req.before.is_none()));
    m.insert("scopes".into(), json!(scope_options(ctx)));
    m.insert("created".into(), json!(created.map(|(name, secret)| json!({"name": name, "secret": secret}))));
    m.insert("values".into(), values);
    m.insert("errors".into(), Value::Object(errors));
    ctx.render_with(status, "tokens.html", m)
}

async fn tokens_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::TokensManage) {
        return r;
    }
    tokens_render(&s, &ctx, &q.0, None, json!({"scopes": []}), Map::new(), StatusCode::OK).await
}

async fn token_create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::TokensManage) {
        return r;
    }
    let scopes: Vec<Scope> = f.all("scopes").into_iter().filter_map(Scope::parse).collect();
    let days = f.opt("expires_in_days").map(|d| d.trim().parse::<u32>().unwrap_or(0));
    let res: Result<_, ApiError> = async {
        let name = check_token_request(&ctx.actor, f.get("name"), &scopes, days)?;
        let expires = days.map(|d| s.store.now().plus(std::time::Duration::from_secs(d as u64 * 86_400)));
        Ok(s.store.create_token(&ctx.actor, &name, &scopes, expires).await?)
    }
    .await;
    match res {
        // The secret is shown in this response only; the page is not cached.
        Ok((tok, secret)) => {
            let mut r = tokens_render(
                &s,
                &ctx,
                &HashMap::new(),
                Some((tok.name, secret)),
                json!({"scopes": []}),
                Map::new(),
                StatusCode::CREATED,
            )
            .await;
            r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            *r.status_mut() = StatusCode::OK;
            r
        }
        Err(e) => match ctx.form_error(e) {
            Ok((errors, _)) => {
                let mut values = f.values();
                values["scopes"] = json!(f.all("scopes"));
                tokens_render(&s, &ctx, &HashMap::new(), None, values, errors, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

async fn token_revoke(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::TokensManage) {
        return r;
    }
    match s.store.revoke_token(&ctx.actor, ApiTokenId(id)).await {
        Ok(_) => Redirect::to("/console/tokens").into_response(),
        Err(e) => ctx.fail(e),
    }
}

// ---- audit ---------------------------------------------------------------------------------

/// Field-by-field comparison of an audit entry's before and after.
fn diff(before: &Option<Value>, after: &Option<Value>) -> Vec<Value> {
    let empty = Map::new();
    let b = before.as_ref().and_then(Value::as_object).unwrap_or(&empty);
    let a = after.as_ref().and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "tenant_id" | "id" | "created_at" | "updated_at"))
        .map(
            |k| json!({"field": k, "before": show(b.get(k)), "after": show(a.get(k)), "changed": b.get(k) != a.get(k)}),
        )
        .collect()
}

async fn audit_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::AuditRead) {
        return r;
    }
    let q = q.0;
    let aq = AuditQuery {
        entity_type: qget(&q, "entity_type").map(str::to_string),
        entity_id: qget(&q, "entity_id").map(str::to_string),
        actor_id: qget(&q, "actor_id").map(str::to_string),
        action: qget(&q, "action").map(str::to_string),
        limit: None,
        cursor: None,
    };
    let req = page_req(&q);
    let page = match s.store.list_audit(ctx.tenant.id, &aq.filter(), &req).await {
        Ok(p) => p,
        Err(e) => return ctx.fail(e),
    };
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|e| {
            json!({"at": ctx.when(e.at), "actor": e.actor_name, "actor_kind": e.actor_kind, "action": e.action,
                   "entity_type": e.entity_type, "entity_id": e.entity_id, "request_id": e.request_id,
                   "changes": diff(&e.before, &e.after)})
        })
        .collect();
    let filters = [
        ("entity_type", qget(&q, "entity_type")),
        ("action", qget(&q, "action")),
        ("entity_id", qget(&q, "entity_id")),
    ];
    let mut m = ctx.base("audit", "audit.title");
    m.insert("rows".into(), json!(rows));
    m.insert("filter".into(), json!({"entity_type": qget(&q, "entity_type"), "action": qget(&q, "action"), "entity_id": qget(&q, "entity_id")}));
    m.insert("entity_types".into(), json!(["tenant", "store", "staff", "user", "api_token"]));
    m.insert("pager".into(), pager(&ctx, rows.len(), page.next_cursor, &filters, req.before.is_none()));
    ctx.render("audit.html", m)
}

// ---- jobs ----------------------------------------------------------------------------------

async fn jobs_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::JobsRead) {
        return r;
    }
    let q = q.0;
    let f = JobFilter { status: qget(&q, "status").and_then(JobStatus::parse), kind: None };
    let req = page_req(&q);
    let page = match s.store.list_jobs(ctx.tenant.id, &f, &req).await {
        Ok(p) => p,
        Err(e) => return ctx.fail(e),
    };
    let tone = |st: JobStatus| match st {
        JobStatus::Queued => "blue",
        JobStatus::Running => "orange",
        JobStatus::Done => "green",
        JobStatus::Dead => "red",
    };
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|j| {
            json!({"id": j.id, "kind": j.kind, "status": j.status.as_str(), "status_label": ctx.t(&format!("job.status.{}", j.status.as_str())),
                   "tone": tone(j.status), "attempts": format!("{}/{}", j.attempts, j.max_attempts), "run_at": ctx.when(j.run_at),
                   "created": ctx.when(j.created_at), "error": j.last_error, "dead": j.status == JobStatus::Dead})
        })
        .collect();
    let statuses: Vec<Value> = ["queued", "running", "done", "dead"]
        .iter()
        .map(|st| json!({"value": st, "label": ctx.t(&format!("job.status.{st}"))}))
        .collect();
    let filters = [("status", qget(&q, "status"))];
    let mut m = ctx.base("jobs", "jobs.title");
    m.insert("rows".into(), json!(rows));
    m.insert("statuses".into(), json!(statuses));
    m.insert("filter".into(), json!({"status": qget(&q, "status")}));
    m.insert("pager".into(), pager(&ctx, rows.len(), page.next_cursor, &filters, req.before.is_none()));
    m.insert("can_write".into(), json!(ctx.can(Scope::SettingsWrite)));
    m.insert("probed".into(), json!(super::flag(&q, "probed")));
    ctx.render("jobs.html", m)
}

async fn job_probe(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    match s.store.enqueue(NewJob::new(crate::PROBE_JOB, json!({"hold_ms": 0})).tenant(ctx.tenant.id)).await {
        Ok(_) => Redirect::to("/console/jobs?probed=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn job_retry(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::SettingsWrite) {
        return r;
    }
    match s.store.retry_dead_job(ctx.tenant.id, JobId(id)).await {
        Ok(()) => Redirect::to("/console/jobs").into_response(),
        Err(e) => ctx.fail(e),
    }
}

//! Console pages for importing customers from CSV or XLSX: the upload form with recent
//! imports, and one import's page — its progress while it runs (the page refreshes itself),
//! its counts when done, or every problem of a rejected file with a downloadable report.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use uuid::Uuid;

use siyu_core::auth::{DataScope, Scope};
use siyu_store::customers::imports::{CustomerImport, ImportProblem};

use super::{Ctx, FormData};
use crate::api::imports::file_response;
use crate::error::ApiError;
use crate::i18n;
use crate::sheets::{write_table, Format};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/customers/import",
            get(page).post(upload).layer(axum::extract::DefaultBodyLimit::max(crate::imports::MAX_UPLOAD)),
        )
        .route("/console/customers/imports/{id}", get(detail))
        .route(
            "/console/customers/imports/{id}/report.csv",
            get(|s: State<AppState>, c: Ctx, p: Path<Uuid>| report(s, c, p, Format::Csv)),
        )
        .route(
            "/console/customers/imports/{id}/report.xlsx",
            get(|s: State<AppState>, c: Ctx, p: Path<Uuid>| report(s, c, p, Format::Xlsx)),
        )
}

fn deny(ctx: &Ctx) -> Option<Response> {
    ctx.require(Scope::CustomersWrite).or_else(|| {
        (ctx.actor.data_scope != DataScope::Tenant).then(|| {
            super::error_page(ctx.lang, StatusCode::FORBIDDEN, "error.forbidden", "error.forbidden.desc", None)
        })
    })
}

fn status_tone(s: &str) -> &'static str {
    match s {
        "done" => "green",
        "queued" | "running" => "blue",
        _ => "red",
    }
}

fn summary(ctx: &Ctx, r: &CustomerImport) -> Value {
    json!({
        "id": r.id,
        "file_name": r.file_name,
        "format": r.format.to_uppercase(),
        "status": r.status,
        "status_label": ctx.t(&format!("imports.status.{}", r.status)),
        "tone": status_tone(&r.status),
        "total": r.total,
        "created": r.created,
        "existing": r.existing,
        "problems": r.error_count,
        "at": ctx.when(r.created_at),
    })
}

/// A problem in the reader's language: the translated code, else siyu's English message.
fn explain(ctx: &Ctx, p: &ImportProblem) -> String {
    let key = format!("imports.err.{}", p.code);
    if i18n::has(&key) {
        i18n::tf(ctx.lang, &key, &[("column", &p.column), ("detail", &p.message)])
    } else {
        p.message.clone()
    }
}

async fn page(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Some(r) = deny(&ctx) {
        return r;
    }
    render_page(&s, &ctx, None, StatusCode::OK).await
}

async fn render_page(s: &AppState, ctx: &Ctx, message: Option<String>, status: StatusCode) -> Response {
    let recent = match s.store.customer_imports(ctx.tenant.id, 20).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(e),
    };
    let mut m = ctx.base("customers", "imports.title");
    m.insert("rows".into(), json!(recent.iter().map(|r| summary(ctx, r)).collect::<Vec<_>>()));
    m.insert("message".into(), json!(message));
    ctx.render_with(status, "imports.html", m)
}

async fn upload(State(s): State<AppState>, ctx: Ctx, mut mp: Multipart) -> Response {
    let mut fields = Vec::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        match mp.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or_default().to_string();
                let file_name = f.file_name().map(str::to_string);
                match f.bytes().await {
                    Ok(b) if name == "file" => file = Some((file_name.unwrap_or_else(|| "upload".into()), b.to_vec())),
                    Ok(b) => fields.push((name, String::from_utf8_lossy(&b).into_owned())),
                    Err(_) => return ctx.fail(ApiError::PayloadTooLarge),
                }
            }
            Ok(None) => break,
            Err(_) => return ctx.fail(ApiError::PayloadTooLarge),
        }
    }
    let f = FormData::from_pairs(fields);
    if let Some(r) = f.csrf_error(&ctx).or_else(|| deny(&ctx)) {
        return r;
    }
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        let msg = ctx.t("imports.choose_file");
        return render_page(&s, &ctx, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    match crate::imports::accept(&s.store, &ctx.actor, &name, &bytes).await {
        Ok(rec) => Redirect::to(&format!("/console/customers/imports/{}", rec.id)).into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn detail(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    if let Some(r) = deny(&ctx) {
        return r;
    }
    let rec = match s.store.customer_import(ctx.tenant.id, id).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(e),
    };
    let mut m = ctx.base("customers", "imports.title");
    let open = matches!(rec.status.as_str(), "queued" | "running");
    let done = match rec.status.as_str() {
        "running" => crate::imports::progress(id).unwrap_or(0) as i64,
        "done" => rec.total,
        _ => 0,
    };
    let pct = if rec.total > 0 { done * 100 / rec.total } else { 0 };
    m.insert("imp".into(), summary(&ctx, &rec));
    m.insert("progress".into(), json!({"done": done, "pct": pct}));
    m.insert(
        "problems".into(),
        json!(rec
            .errors
            .iter()
            .map(|p| json!({"row": p.row, "column": p.column, "text": explain(&ctx, p)}))
            .collect::<Vec<_>>()),
    );
    m.insert("more".into(), json!(rec.error_count - rec.errors.len() as i64));
    m.insert("failure".into(), json!(rec.failure));
    if open {
        m.insert("refresh".into(), json!(1));
    }
    ctx.render("import.html", m)
}

async fn report(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, format: Format) -> Response {
    if let Some(r) = deny(&ctx) {
        return r;
    }
    let rec = match s.store.customer_import(ctx.tenant.id, id).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(e),
    };
    let head = ["imports.col.row", "imports.col.column", "imports.col.problem"].map(|k| ctx.t(k)).to_vec();
    let rows: Vec<Vec<String>> =
        rec.errors.iter().map(|p| vec![p.row.to_string(), p.column.clone(), explain(&ctx, p)]).collect();
    match write_table(format, "problems", &head, &rows) {
        Ok(bytes) => file_response(format, "import-report", bytes),
        Err(e) => ctx.fail(ApiError::Internal(e)),
    }
}

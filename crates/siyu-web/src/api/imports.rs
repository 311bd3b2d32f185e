//! Customer import and export over the API: upload a CSV or XLSX file, follow its progress,
//! download a rejected file's row-level report; export a filtered customer list or a segment
//! as CSV or XLSX.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use siyu_core::auth::{DataScope, Scope};
use siyu_core::paging::PageRequest;
use siyu_core::{SegmentId, StaffId, TagId};
use siyu_store::customers::imports::{CustomerImport, ImportProblem};
use siyu_store::customers::{Customer, CustomerFilter};

use super::dto::ts;
use crate::customers::resolve_expr;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Query};
use crate::sheets::{write_table, Format};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct ImportProblemOut {
    /// The spreadsheet row (the header is row 1; 0 means the whole file).
    pub row: usize,
    /// The column's header as written in the file.
    pub column: String,
    /// Stable code: required, invalid_format, unknown_stage, unknown_staff, unknown_store,
    /// duplicate_in_file, unknown_column, duplicate_column, missing_column, empty,
    /// too_many_rows, unreadable, too_long, unknown_field, invalid_value.
    pub code: String,
    pub message: String,
}

impl From<ImportProblem> for ImportProblemOut {
    fn from(p: ImportProblem) -> Self {
        ImportProblemOut { row: p.row, column: p.column, code: p.code, message: p.message }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ImportOut {
    pub id: Uuid,
    pub file_name: String,
    /// `csv` or `xlsx`.
    pub format: String,
    /// `rejected` (bad rows, nothing written), `queued`, `running`, `done` or `failed`
    /// (nothing written).
    pub status: String,
    pub total: i64,
    /// Rows written so far while `running` (when this server runs the import).
    pub processed: Option<i64>,
    pub created: i64,
    /// Rows matching an existing customer (by external id or phone), left unchanged.
    pub existing: i64,
    /// Problems found; `problems` lists the first 1,000.
    pub problem_count: i64,
    pub problems: Vec<ImportProblemOut>,
    pub failure: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl ImportOut {
    pub fn new(r: CustomerImport) -> Self {
        let processed = match r.status.as_str() {
            "running" => crate::imports::progress(r.id).map(|n| n as i64),
            "done" => Some(r.total),
            _ => None,
        };
        ImportOut {
            id: r.id,
            file_name: r.file_name,
            format: r.format,
            status: r.status,
            total: r.total,
            processed,
            created: r.created,
            existing: r.existing,
            problem_count: r.error_count,
            problems: r.errors.into_iter().map(Into::into).collect(),
            failure: r.failure,
            created_at: ts(r.created_at),
            finished_at: r.finished_at.map(ts),
        }
    }
}

/// Importing and exporting lists are tenant-wide acts.
fn require_manager(auth: &Auth) -> ApiResult<()> {
    auth.require(Scope::CustomersWrite)?;
    if auth.data_scope != DataScope::Tenant {
        return Err(ApiError::ForbiddenField {
            field: "data_scope".into(),
            message: "only operators and admins import customers".into(),
        });
    }
    Ok(())
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, shown in the import list.
    pub file_name: Option<String>,
}

/// Upload a CSV (UTF-8 or GB18030) or XLSX file of customers, header row first (姓名/name
/// required; 手机号/phone, 性别/gender, 阶段/stage, 跟进员工/owner, 门店/store,
/// 外部编号/external_ref and custom fields by key or label). Every row is checked first: with
/// any problem the import is `rejected` with a row-level report and nothing is written;
/// otherwise it is `queued` and imported in one transaction by a background job.
#[utoipa::path(post, path = "/api/v1/customer-imports", tag = "customers", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The CSV or XLSX file, at most 20 MiB"),
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, body = ImportOut), (status = 403, body = Problem), (status = 413, body = Problem)))]
async fn upload(
    State(s): State<AppState>,
    auth: Auth,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    require_manager(&auth)?;
    let name = q.file_name.unwrap_or_else(|| "upload".into());
    let rec = crate::imports::accept(&s.store, &auth, &name, &body).await?;
    Ok((StatusCode::CREATED, axum::Json(ImportOut::new(rec))).into_response())
}

/// Recent imports, newest first.
#[utoipa::path(get, path = "/api/v1/customer-imports", tag = "customers", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<ImportOut>), (status = 403, body = Problem)))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<ImportOut>>> {
    require_manager(&auth)?;
    let rows = s.store.customer_imports(auth.tenant_id, 50).await?;
    Ok(axum::Json(rows.into_iter().map(ImportOut::new).collect()))
}

/// One import: status, progress, counts and problems.
#[utoipa::path(get, path = "/api/v1/customer-imports/{import_id}", tag = "customers", params(("import_id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = ImportOut), (status = 404, body = Problem)))]
async fn get_import(State(s): State<AppState>, auth: Auth, Path(id): Path<Uuid>) -> ApiResult<axum::Json<ImportOut>> {
    require_manager(&auth)?;
    Ok(axum::Json(ImportOut::new(s.store.customer_import(auth.tenant_id, id).await?)))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
}

fn format_of(q: Option<&str>) -> ApiResult<Format> {
    match q {
        None => Ok(Format::Csv),
        Some(f) => Format::parse(f).ok_or_else(|| ApiError::BadRequest {
            code: "invalid_format",
            field: Some("format".into()),
            message: "format must be csv or xlsx".into(),
        }),
    }
}

/// A file download.
pub fn file_response(format: Format, name: &str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.{}\"", format.ext())),
        ],
        bytes,
    )
        .into_response()
}

/// A rejected import's problems as CSV or XLSX: row, column, code, message.
#[utoipa::path(get, path = "/api/v1/customer-imports/{import_id}/report", tag = "customers", params(("import_id" = Uuid, Path), FormatQuery),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The report file"), (status = 404, body = Problem)))]
async fn report(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    require_manager(&auth)?;
    let format = format_of(q.format.as_deref())?;
    let rec = s.store.customer_import(auth.tenant_id, id).await?;
    let labels = ["row", "column", "code", "message"].map(String::from);
    let (head, rows) = crate::imports::report_table(&rec, labels);
    let bytes = write_table(format, "problems", &head, &rows).map_err(ApiError::Internal)?;
    Ok(file_response(format, "import-report", bytes))
}

/// Exports stop here; larger lists page through `GET /api/v1/customers`.
pub const EXPORT_MAX: usize = 100_000;

/// The exported columns, in order.
pub const EXPORT_COLUMNS: [&str; 12] = [
    "id",
    "num",
    "name",
    "phone",
    "gender",
    "stage",
    "owner_staff_id",
    "store_id",
    "orders",
    "spend_fen",
    "last_order_at",
    "rfm",
];

/// One customer as an export row; phones masked unless the viewer holds `customers:pii`.
pub fn export_row(c: &Customer, pii: bool) -> Vec<String> {
    let phone = if pii { c.phone.clone() } else { c.phone_masked.clone() };
    vec![
        c.id.to_string(),
        c.num.to_string(),
        c.name.clone(),
        phone.unwrap_or_default(),
        format!("{:?}", c.gender).to_lowercase(),
        c.lifecycle.clone(),
        c.owner_staff_id.map(|x| x.to_string()).unwrap_or_default(),
        c.store_id.map(|x| x.to_string()).unwrap_or_default(),
        c.orders_count.to_string(),
        c.spend_fen.to_string(),
        c.last_order_at.map(ts).unwrap_or_default(),
        c.rfm.as_ref().map(|r| format!("{}{}{}", r.scores.r, r.scores.f, r.scores.m)).unwrap_or_default(),
    ]
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
    pub q: Option<String>,
    pub lifecycle: Option<String>,
    pub staff_id: Option<Uuid>,
    pub tag_id: Option<Uuid>,
}

/// The customer list (with the list's filters) as CSV or XLSX, up to 100,000 rows. Guides
/// export their own customers.
#[utoipa::path(get, path = "/api/v1/customers/export", tag = "customers", params(ExportQuery),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The file"), (status = 400, body = Problem)))]
async fn export_customers(State(s): State<AppState>, auth: Auth, Query(q): Query<ExportQuery>) -> ApiResult<Response> {
    auth.require(Scope::CustomersRead)?;
    let format = format_of(q.format.as_deref())?;
    let f = CustomerFilter { q: q.q, lifecycle: q.lifecycle, staff: q.staff_id.map(StaffId), tag: q.tag_id.map(TagId) };
    let pii = auth.can(Scope::CustomersPii);
    let mut rows = Vec::new();
    let mut page = PageRequest { limit: 200, before: None };
    loop {
        let p = s.store.list_customers(auth.tenant_id, auth.data_scope, &f, &page).await?;
        rows.extend(p.items.iter().map(|c| export_row(c, pii)));
        match p.next_cursor.as_deref().and_then(siyu_core::paging::decode_cursor) {
            Some(c) if rows.len() < EXPORT_MAX => page.before = Some(c),
            _ => break,
        }
    }
    let head: Vec<String> = EXPORT_COLUMNS.iter().map(|c| c.to_string()).collect();
    let bytes = write_table(format, "customers", &head, &rows).map_err(ApiError::Internal)?;
    Ok(file_response(format, "customers", bytes))
}

/// A segment's members as CSV or XLSX, up to 100,000 rows, newest first.
#[utoipa::path(get, path = "/api/v1/segments/{segment_id}/export", tag = "segments", params(("segment_id" = Uuid, Path), FormatQuery),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The file"), (status = 404, body = Problem)))]
async fn export_segment(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    auth.require(Scope::CustomersRead)?;
    let format = format_of(q.format.as_deref())?;
    let seg = s.store.segment(auth.tenant_id, SegmentId(id)).await?;
    let e = resolve_expr(&s, auth.tenant_id, &seg.expr, None).await?;
    let (day, _) = crate::customers::today(&s, auth.tenant_id).await?;
    let members = s.segments.members(auth.tenant_id, auth.data_scope, &e, day).await?;
    let nums = siyu_core::customers::bitmap::page_desc(&members, None, EXPORT_MAX);
    let pii = auth.can(Scope::CustomersPii);
    let mut rows = Vec::new();
    for chunk in nums.chunks(1_000) {
        let cs = s.store.customers_by_nums(auth.tenant_id, auth.data_scope, chunk).await?;
        rows.extend(cs.iter().map(|c| export_row(c, pii)));
    }
    let head: Vec<String> = EXPORT_COLUMNS.iter().map(|c| c.to_string()).collect();
    let bytes = write_table(format, "segment", &head, &rows).map_err(ApiError::Internal)?;
    Ok(file_response(format, "segment", bytes))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload, list).layer(DefaultBodyLimit::max(crate::imports::MAX_UPLOAD)))
        .routes(routes!(get_import))
        .routes(routes!(report))
        .routes(routes!(export_customers))
        .routes(routes!(export_segment))
}

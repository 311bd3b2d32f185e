//! Customer import as the API, the console and the CLI share it: read the upload, check
//! every row against the tenant, record a rejection with its report or queue the job, and
//! run the job — one transaction, with progress others can watch.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::customers::import::{self, Context, RowError};
use siyu_core::paging::PageRequest;
use siyu_core::TenantId;
use siyu_store::customers::imports::CustomerImport;
use siyu_store::customers::ImportRow;
use siyu_store::jobs::NewJob;
use siyu_store::{Store, StoreError};

use crate::sheets;

/// Job kind that imports a queued file.
pub const IMPORT_JOB: &str = "customers.import";
/// The largest upload accepted.
pub const MAX_UPLOAD: usize = 20 << 20;
/// The namespace of imported customers' external ids.
pub const SOURCE: &str = "import";

/// Rows done of each running import in this process (the transaction is not visible to
/// anyone else until it commits, so progress is reported beside it).
static PROGRESS: LazyLock<Mutex<HashMap<Uuid, usize>>> = LazyLock::new(Default::default);

/// Rows an import running in this process has written so far.
pub fn progress(id: Uuid) -> Option<usize> {
    PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).get(&id).copied()
}

/// The tenant's stages, staff, stores and custom fields, as the rows are checked against.
async fn context(store: &Store, tenant: TenantId) -> Result<Context, StoreError> {
    let mut stages = store.lifecycle_stages(tenant, true).await?;
    stages.extend(store.lifecycle_stages(tenant, false).await?);
    let mut staff = HashMap::new();
    for s in store.all_staff(tenant).await? {
        staff.insert(s.name.to_lowercase(), s.id);
        if let Some(u) = &s.wecom_userid {
            staff.insert(u.to_lowercase(), s.id);
        }
    }
    let mut stores = HashMap::new();
    let mut page = PageRequest { limit: 200, before: None };
    loop {
        let p = store.list_stores(tenant, &Default::default(), &page).await?;
        for s in &p.items {
            stores.insert(s.name.to_lowercase(), s.id);
            stores.insert(s.code.to_lowercase(), s.id);
        }
        match p.next_cursor.as_deref().and_then(siyu_core::paging::decode_cursor) {
            Some(c) => page.before = Some(c),
            None => break,
        }
    }
    let fields = store.customer_field_defs(tenant).await?.into_iter().map(|(k, l, _)| (k, l)).collect();
    Ok(Context { stages, staff, stores, fields })
}

/// Checks an uploaded file and records the outcome: rejected with every problem, or queued
/// for the import job (which is enqueued here). Nothing is imported by this call.
pub async fn accept(store: &Store, actor: &Actor, file_name: &str, bytes: &[u8]) -> Result<CustomerImport, StoreError> {
    let format = sheets::Format::sniff(bytes).ext();
    let grid = sheets::read_grid(bytes);
    let ctx = context(store, actor.tenant_id).await?;
    let checked = match grid {
        Ok(g) => import::validate(&g, &ctx),
        Err(m) => Err((vec![RowError { row: 0, column: String::new(), code: "unreadable", message: m }], 1)),
    };
    let rec = match &checked {
        Ok(valid) => {
            let rows: Vec<ImportRow> = valid
                .iter()
                .map(|v| ImportRow { external_ref: v.external_ref.clone(), input: v.input.clone() })
                .collect();
            store.create_customer_import(actor, file_name, format, Ok(&rows)).await?
        }
        Err((errs, n)) => store.create_customer_import(actor, file_name, format, Err((errs, *n))).await?,
    };
    if rec.status == "queued" {
        let job = NewJob::new(IMPORT_JOB, serde_json::json!({"import_id": rec.id}))
            .tenant(actor.tenant_id)
            .dedupe(format!("customers.import:{}", rec.id));
        store.enqueue(job).await?;
    }
    Ok(rec)
}

/// Runs a queued import: every row in one transaction, so a failure leaves nothing behind.
/// Idempotent: a finished import is not run again, and a re-run after a crash matches the
/// rows it finds by external id or phone instead of duplicating them.
pub async fn run(store: &Store, tenant: TenantId, id: Uuid) -> Result<(), String> {
    let Some(rows) = store.start_customer_import(tenant, id).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let actor = Actor::system(tenant);
    let report = |n: usize| {
        PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).insert(id, n);
    };
    let result = store.import_customers_with_progress(&actor, SOURCE, &rows, &report).await;
    PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    let failure = result.as_ref().err().map(|e| e.to_string());
    let outcome = match (&result, &failure) {
        (Ok(o), _) => Ok(o),
        (Err(_), f) => Err(f.as_deref().unwrap_or("import failed")),
    };
    store.finish_customer_import(tenant, id, outcome).await.map_err(|e| e.to_string())?;
    tracing::info!(%tenant, import = %id, ok = result.is_ok(), rows = rows.len(), "customer import finished");
    Ok(())
}

/// The problems of a rejected import as a spreadsheet table: header and rows.
pub fn report_table(rec: &CustomerImport, labels: [String; 4]) -> (Vec<String>, Vec<Vec<String>>) {
    let rows = rec
        .errors
        .iter()
        .map(|e| vec![e.row.to_string(), e.column.clone(), e.code.clone(), e.message.clone()])
        .collect();
    (labels.to_vec(), rows)
}

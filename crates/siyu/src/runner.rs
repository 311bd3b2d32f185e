//! The jobs runner: claims due jobs from the store, runs their handlers, keeps their leases
//! alive, and records success, retry (with backoff) or death.
//!
//! Delivery is at least once, so handlers must be idempotent: a job whose process is killed
//! mid-run is claimed again after its lease expires and runs again from the start. A handler
//! whose lease is lost while it runs (another process took the job) is cancelled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use rand::Rng;
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use siyu_core::jobs::Backoff;
use siyu_store::jobs::Job;
use siyu_store::Store;

/// What a handler gets: the job and the store.
#[derive(Clone)]
pub struct JobCtx {
    pub job: Job,
    pub store: Store,
    pub worker: String,
}

pub type Handler = Arc<dyn Fn(JobCtx) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Clone, Default)]
pub struct Registry(HashMap<String, Handler>);

impl Registry {
    pub fn register<F, Fut>(&mut self, kind: &str, f: F)
    where
        F: Fn(JobCtx) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.0.insert(kind.to_string(), Arc::new(move |c| Box::pin(f(c))));
    }
}

pub struct Runner {
    pub store: Store,
    pub registry: Registry,
    pub worker: String,
    pub workers: usize,
    pub lease: Duration,
    pub poll: Duration,
    pub backoff: Backoff,
}

impl Runner {
    /// Runs until `shutdown` turns true, then waits for the jobs in flight.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.workers.max(1)));
        let this = Arc::new(self);
        tracing::info!(worker = %this.worker, workers = this.workers, "jobs runner started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = slots.available_permits();
            let mut claimed = 0;
            if free > 0 {
                match this.store.claim_jobs(&this.worker, free as u32, this.lease).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            let permit = slots.clone().acquire_owned().await.expect("semaphore is never closed");
                            let me = this.clone();
                            tokio::spawn(async move {
                                me.run_one(job).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming jobs failed"),
                }
            }
            // A full batch means more may be due: look again at once.
            if claimed == 0 || claimed < free {
                tokio::select! {
                    _ = tokio::time::sleep(this.poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        // Let running jobs finish; their leases keep others off them meanwhile.
        let _ = slots.acquire_many(this.workers.max(1) as u32).await;
        tracing::info!(worker = %this.worker, "jobs runner stopped");
    }

    async fn run_one(&self, job: Job) {
        let span = tracing::info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempts);
        let request_id = format!("job-{}", job.id);
        let fut = async {
            if job.attempts > job.max_attempts {
                // Claimed again after dying mid-run too often: give up rather than loop.
                let _ = self
                    .store
                    .fail_job(job.id, &self.worker, job.attempts, "attempts exhausted (worker died repeatedly)", None)
                    .await;
                return;
            }
            let Some(handler) = self.registry.0.get(&job.kind).cloned() else {
                self.finish(&job, Err(format!("no handler for job kind {}", job.kind))).await;
                return;
            };
            let ctx = JobCtx { job: job.clone(), store: self.store.clone(), worker: self.worker.clone() };
            let (lost_tx, mut lost_rx) = watch::channel(false);
            // Aborted when dropped, so the heartbeat stops however the handler ends (a panic
            // included) and the lease can expire.
            let _hb = AbortOnDrop(tokio::spawn(heartbeat(
                self.store.clone(),
                self.worker.clone(),
                job.id,
                job.attempts,
                self.lease,
                lost_tx,
            )));
            // A panicking handler is a failed attempt, not a job stuck "running".
            let run = std::panic::AssertUnwindSafe(handler(ctx)).catch_unwind();
            let result = tokio::select! {
                r = run => Some(r.unwrap_or_else(|p| Err(format!("the handler panicked: {}", panic_text(&*p))))),
                _ = lost_rx.wait_for(|lost| *lost) => None,
            };
            match result {
                Some(r) => self.finish(&job, r).await,
                None => tracing::warn!("lease lost while running; the handler was cancelled"),
            }
        };
        siyu_store::audit::REQUEST_ID.scope(request_id, fut).instrument(span).await
    }

    async fn finish(&self, job: &Job, result: Result<(), String>) {
        let outcome = match result {
            Ok(()) => self.store.complete_job(job.id, &self.worker, job.attempts).await,
            Err(err) => {
                let retry_at = self
                    .backoff
                    .next_delay(job.attempts.min(job.max_attempts), rand::thread_rng().gen::<f64>())
                    .filter(|_| job.attempts < job.max_attempts)
                    .map(|d| self.store.now().plus(d));
                if retry_at.is_none() {
                    tracing::error!(error = %err, "job failed for the last time; moved to dead letters");
                } else {
                    tracing::warn!(error = %err, "job failed; will retry");
                }
                self.store.fail_job(job.id, &self.worker, job.attempts, &err, retry_at).await
            }
        };
        match outcome {
            Ok(true) => {}
            Ok(false) => tracing::warn!("job outcome not recorded: lease was lost"),
            Err(e) => tracing::error!(error = %e, "recording job outcome failed"),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Keeps a lease alive. Reports `lost` when the lease was taken over, or when heartbeats have
/// failed for long enough that the lease may have expired: past that point another worker may
/// hold the job, so this one must stop.
async fn heartbeat(
    store: Store,
    worker: String,
    id: siyu_core::JobId,
    attempt: u32,
    lease: Duration,
    lost: watch::Sender<bool>,
) {
    let mut last_ok = std::time::Instant::now();
    loop {
        tokio::time::sleep(lease / 3).await;
        match store.heartbeat_job(id, &worker, attempt, lease).await {
            Ok(true) => last_ok = std::time::Instant::now(),
            Ok(false) => {
                let _ = lost.send(true);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                if last_ok.elapsed() > lease * 2 / 3 {
                    let _ = lost.send(true);
                    return;
                }
            }
        }
    }
}

/// The handlers built into siyu itself.
pub fn builtin_registry() -> Registry {
    let mut r = Registry::default();
    r.register(siyu_web::PROBE_JOB, probe);
    r.register(HOUSEKEEPING_JOB, housekeeping);
    r.register(siyu_store::wecom::INBOX_JOB, wecom_inbox);
    r.register(siyu_web::wecom::gateway::RECONCILE_JOB, wecom_reconcile);
    r.register(CUSTOMER_METRICS_JOB, customer_metrics);
    r.register(siyu_web::imports::IMPORT_JOB, customer_import);
    r.register(REMINDERS_JOB, follow_up_reminders);
    r.register(siyu_web::pay::SWEEP_JOB, commerce_sweep);
    r.register(siyu_web::pay::RECONCILE_JOB, commerce_reconcile);
    r
}

/// The commerce sweep runs every minute.
const SWEEP_PERIOD_SECS: i64 = 60;

/// Schedules the commerce sweep for the minute after `now` (`next`) or this one; the slot in
/// the dedupe key makes any number of processes schedule it once.
pub async fn schedule_commerce_sweep(store: &Store, next: bool) -> Result<(), siyu_store::StoreError> {
    let slot = store.now().unix_secs() / SWEEP_PERIOD_SECS + i64::from(next);
    let job = siyu_store::jobs::NewJob::new(siyu_web::pay::SWEEP_JOB, serde_json::json!({}))
        .at(siyu_core::Timestamp::from_unix_secs(slot * SWEEP_PERIOD_SECS))
        .dedupe(format!("commerce.sweep:{slot}"));
    store.enqueue(job).await.map(|_| ())
}

/// Times out unpaid orders (closing their prepays first), submits and follows refunds, and
/// moves shipped orders on; gives back live-code reservations whose add never came; then
/// schedules the next run.
async fn commerce_sweep(ctx: JobCtx) -> Result<(), String> {
    schedule_commerce_sweep(&ctx.store, true).await.map_err(|e| e.to_string())?;
    let lapsed = ctx.store.lapse_live_code_reservations().await.map_err(|e| e.to_string())?;
    if lapsed > 0 {
        tracing::info!(lapsed, "live-code reservations lapsed");
    }
    let rep = siyu_web::pay::PayGateway::new(ctx.store.clone()).sweep().await.map_err(|e| format!("{e:?}"))?;
    if rep != Default::default() {
        tracing::info!(
            timed_out = rep.timed_out,
            found_paid = rep.found_paid,
            refunds = rep.refunds,
            advanced = rep.advanced,
            "commerce sweep"
        );
    }
    Ok(())
}

/// The bill reconciliation looks every hour (a day's bill is fetched once, after 10:30).
const RECONCILE_PERIOD_SECS: i64 = 3600;

/// Schedules the reconciliation for the hour after `now` (`next`) or this one, once however
/// many processes ask.
pub async fn schedule_reconciliation(store: &Store, next: bool) -> Result<(), siyu_store::StoreError> {
    let slot = store.now().unix_secs() / RECONCILE_PERIOD_SECS + i64::from(next);
    let job = siyu_store::jobs::NewJob::new(siyu_web::pay::RECONCILE_JOB, serde_json::json!({}))
        .at(siyu_core::Timestamp::from_unix_secs(slot * RECONCILE_PERIOD_SECS))
        .dedupe(format!("commerce.reconcile:{slot}"));
    store.enqueue(job).await.map(|_| ())
}

/// Reconciles yesterday's WeChat Pay bill of every tenant once it is out; then schedules the
/// next look.
async fn commerce_reconcile(ctx: JobCtx) -> Result<(), String> {
    schedule_reconciliation(&ctx.store, true).await.map_err(|e| e.to_string())?;
    let ran = siyu_web::pay::PayGateway::new(ctx.store.clone()).reconcile_due().await.map_err(|e| format!("{e:?}"))?;
    if ran > 0 {
        tracing::info!(ran, "WeChat Pay bills reconciled");
    }
    Ok(())
}

/// Kind of the follow-up reminder run of one tenant, every five minutes.
pub const REMINDERS_JOB: &str = "customers.reminders";
const REMINDER_PERIOD_SECS: i64 = 300;

/// Schedules a tenant's reminder run for the five-minute slot after `now` (`next`) or this
/// one; the slot in the dedupe key makes any number of callers schedule it once.
pub async fn schedule_reminders(
    store: &Store,
    tenant: siyu_core::TenantId,
    next: bool,
) -> Result<(), siyu_store::StoreError> {
    let slot = store.now().unix_secs() / REMINDER_PERIOD_SECS + i64::from(next);
    let job = siyu_store::jobs::NewJob::new(REMINDERS_JOB, serde_json::json!({}))
        .tenant(tenant)
        .at(siyu_core::Timestamp::from_unix_secs(slot * REMINDER_PERIOD_SECS))
        .dedupe(format!("customers.reminders:{tenant}:{slot}"));
    store.enqueue(job).await.map(|_| ())
}

/// Sends a tenant's due follow-up reminders and escalations, then schedules the next run.
async fn follow_up_reminders(ctx: JobCtx) -> Result<(), String> {
    let tenant = ctx.job.tenant_id.ok_or("customers.reminders job without a tenant")?;
    schedule_reminders(&ctx.store, tenant, true).await.map_err(|e| e.to_string())?;
    let sent = siyu_web::wecom::Gateway::new(ctx.store.clone())
        .send_follow_up_reminders(tenant)
        .await
        .map_err(|e| e.to_string())?;
    if sent.reminded + sent.escalated > 0 {
        tracing::info!(%tenant, reminded = sent.reminded, escalated = sent.escalated, "follow-up reminders sent");
    }
    Ok(())
}

/// Imports one queued customer file (all rows in one transaction; see `siyu_web::imports`).
async fn customer_import(ctx: JobCtx) -> Result<(), String> {
    let tenant = ctx.job.tenant_id.ok_or("customers.import job without a tenant")?;
    let id = ctx
        .job
        .payload
        .get("import_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or("customers.import job without an import_id")?;
    siyu_web::imports::run(&ctx.store, tenant, id).await
}

/// Kind of the daily recomputation of one tenant's purchase metrics, stages and RFM.
pub const CUSTOMER_METRICS_JOB: &str = "customers.metrics";

/// Recomputes a tenant's customer metrics and RFM with its settings, as of its local today,
/// then re-evaluates its rule tags and lets go of expired campaign tags.
/// Idempotent: the same inputs write the same values (rows that do not change are not written).
async fn customer_metrics(ctx: JobCtx) -> Result<(), String> {
    let tenant = ctx.job.tenant_id.ok_or("customers.metrics job without a tenant")?;
    let t = ctx.store.tenant(tenant).await.map_err(|e| e.to_string())?;
    let off = t.offset_hours();
    let settings = ctx.store.rfm_settings(tenant).await.map_err(|e| e.to_string())?;
    let params = settings.params(ctx.store.now().local_day(off));
    let sum = ctx
        .store
        .recompute_customer_metrics(&siyu_core::auth::Actor::system(tenant), off, params)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(%tenant, buyers = sum.buyers, scored = sum.scored, "customer metrics recomputed");
    // Rule tags may test metrics and RFM, so they follow the fresh figures.
    let rules = ctx.store.refresh_rule_tags(tenant, ctx.store.now().local_day(off)).await;
    let rules = rules.map_err(|e| e.to_string())?;
    tracing::info!(%tenant, tags = rules.tags, added = rules.added, removed = rules.removed, "rule tags refreshed");
    let ended = ctx.store.expire_campaign_tags(tenant, ctx.store.now().local_day(off)).await;
    tracing::info!(%tenant, ended = ended.map_err(|e| e.to_string())?, "campaign tags expired");
    Ok(())
}

/// Schedules each tenant's daily metrics run once per local day (the dedupe key names the
/// day, so any number of processes and hourly calls schedule it once).
pub async fn schedule_customer_metrics(store: &Store) -> Result<u64, siyu_store::StoreError> {
    let mut n = 0;
    for t in store.list_tenants().await? {
        let off = t.offset_hours();
        let day = store.now().local_day(off);
        let job = siyu_store::jobs::NewJob::new(CUSTOMER_METRICS_JOB, serde_json::json!({}))
            .tenant(t.id)
            .dedupe(format!("customers.metrics:{}:{day}", t.id));
        store.enqueue(job).await?;
        n += 1;
    }
    Ok(n)
}

/// Reconciles one WeCom app, then schedules the next hour's pass.
async fn wecom_reconcile(ctx: JobCtx) -> Result<(), String> {
    let tenant = ctx.job.tenant_id.ok_or("wecom.reconcile job without a tenant")?;
    let app = ctx
        .job
        .payload
        .get("app_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or("wecom.reconcile job without an app_id")?;
    let gw = siyu_web::wecom::Gateway::new(ctx.store.clone());
    let app = siyu_core::WecomAppId(app);
    // The next pass is scheduled first, so a failing pass does not stop the schedule.
    gw.schedule_reconcile(tenant, app, false).await.map_err(|e| e.to_string())?;
    match gw.reconcile(tenant, app).await {
        Err(siyu_web::wecom::gateway::SyncError::Store(siyu_store::StoreError::NotFound)) => Ok(()),
        r => r.map_err(|e| e.to_string()),
    }
}

/// Turns one stored WeCom callback into its typed domain event (idempotent per inbox row).
async fn wecom_inbox(ctx: JobCtx) -> Result<(), String> {
    let tenant = ctx.job.tenant_id.ok_or("wecom.inbox job without a tenant")?;
    let id = ctx
        .job
        .payload
        .get("inbox_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or("wecom.inbox job without an inbox_id")?;
    let result = siyu_web::wecom::Gateway::new(ctx.store.clone()).process_inbox(tenant, siyu_core::InboxId(id)).await;
    // Waiting for an earlier event is not a failure: come back shortly as a fresh job.
    if let Err(siyu_web::wecom::gateway::SyncError::OutOfOrder(_)) = &result {
        return ctx
            .store
            .defer_inbox_item(tenant, siyu_core::InboxId(id), Duration::from_secs(2))
            .await
            .map_err(|e| e.to_string());
    }
    if let Err(e) = &result {
        let dead = ctx.job.attempts >= ctx.job.max_attempts;
        if let Err(fe) = ctx.store.fail_inbox_item(tenant, siyu_core::InboxId(id), &e.to_string(), dead).await {
            tracing::error!(error = %fe, "could not record the inbox failure");
        }
    }
    result.map_err(|e| e.to_string())
}

pub const HOUSEKEEPING_JOB: &str = "system.housekeeping";

/// Holds its lease for `hold_ms`, then records that it ran, once per job id: the effect of a
/// job re-run after a crash is applied exactly once.
async fn probe(ctx: JobCtx) -> Result<(), String> {
    let hold = ctx.job.payload.get("hold_ms").and_then(|v| v.as_u64()).unwrap_or(0).min(60_000);
    tokio::time::sleep(Duration::from_millis(hold)).await;
    ctx.store.record_probe(ctx.job.id, &ctx.worker).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Purges expired idempotency keys and old finished jobs, then schedules its next run.
async fn housekeeping(ctx: JobCtx) -> Result<(), String> {
    let keys = ctx.store.purge_idempotency_keys().await.map_err(|e| e.to_string())?;
    let jobs = ctx.store.purge_finished_jobs(Duration::from_secs(7 * 86_400)).await.map_err(|e| e.to_string())?;
    // Nonces must outlive the replay window the callback endpoint enforces.
    let window = ctx
        .job
        .payload
        .get("callback_window_secs")
        .and_then(|v| v.as_u64())
        .unwrap_or(siyu_web::DEFAULT_CALLBACK_WINDOW_SECS);
    let nonces = ctx.store.purge_wecom_nonces(Duration::from_secs(window)).await.map_err(|e| e.to_string())?;
    let inbox = ctx.store.purge_wecom_inbox(Duration::from_secs(30 * 86_400)).await.map_err(|e| e.to_string())?;
    let metrics = schedule_customer_metrics(&ctx.store).await.map_err(|e| e.to_string())?;
    // The sweep reschedules itself; this restarts one that stopped.
    schedule_commerce_sweep(&ctx.store, false).await.map_err(|e| e.to_string())?;
    schedule_reconciliation(&ctx.store, false).await.map_err(|e| e.to_string())?;
    // Each tenant's reminder run reschedules itself; this restarts one that stopped.
    for t in ctx.store.list_tenants().await.map_err(|e| e.to_string())? {
        schedule_reminders(&ctx.store, t.id, false).await.map_err(|e| e.to_string())?;
    }
    tracing::info!(keys, jobs, nonces, inbox, metrics, "housekeeping done");
    schedule_housekeeping(&ctx.store, window).await.map_err(|e| e.to_string())
}

/// Ensures one housekeeping run is scheduled for the next hour. The dedupe key names the hour,
/// so any number of processes calling this schedule it once.
pub async fn schedule_housekeeping(store: &Store, callback_window_secs: u64) -> Result<(), siyu_store::StoreError> {
    let hour = store.now().unix_secs() / 3600 + 1;
    let at = siyu_core::Timestamp::from_unix_secs(hour * 3600);
    store
        .enqueue(
            siyu_store::jobs::NewJob::new(
                HOUSEKEEPING_JOB,
                serde_json::json!({"callback_window_secs": callback_window_secs}),
            )
            .at(at)
            .dedupe(format!("housekeeping:{hour}")),
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use siyu_store::jobs::NewJob;
    use siyu_store::testing::TestStore;
    use siyu_store::Backend;

    async fn panicking_handler_fails_the_attempt(backend: Backend) {
        let store = TestStore::new(backend).await;
        let mut registry = Registry::default();
        registry.register("test.panic", |_ctx: JobCtx| async { panic!("boom") });
        let id = store.enqueue(NewJob::new("test.panic", serde_json::json!({}))).await.unwrap();
        let runner = Runner {
            store: store.store.clone(),
            registry,
            worker: "w".into(),
            workers: 1,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(20),
            backoff: Backoff { base: Duration::from_secs(60), ..Default::default() },
        };
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(runner.run(rx));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let job = loop {
            let j = store.job(id).await.unwrap();
            if j.status == siyu_core::jobs::JobStatus::Queued && j.attempts == 1 {
                break j;
            }
            assert!(std::time::Instant::now() < deadline, "the panicked attempt was never recorded: {j:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(job.last_error.unwrap().contains("panicked: boom"));
        assert!(job.locked_by.is_none(), "the lease is released, not kept alive by a leftover heartbeat");
        let _ = stop.send(true);
        task.await.unwrap();
    }

    async fn daily_metrics_run_once_per_tenant_and_day(backend: Backend) {
        use siyu_store::customers::metrics::Purchase;
        let store = TestStore::new(backend).await;
        let t = store.create_tenant("m", "M", "Asia/Shanghai").await.unwrap();
        let sys = siyu_core::auth::Actor::system(t.id);
        let stages = vec!["new".to_string(), "deal".to_string()];
        let input = siyu_core::customers::profile::CustomerInput::validate(
            "甲",
            None,
            None,
            None,
            None,
            None,
            &Default::default(),
            &stages,
            &[],
        )
        .unwrap();
        let c = store.create_customer(&sys, &input, "manual").await.unwrap();
        let p = Purchase {
            order_ref: "o1".into(),
            customer_id: c.id,
            paid_at: siyu_core::Timestamp(store.now().0 - 3 * 86_400_000_000),
            paid_fen: 1234,
            refunded_fen: 0,
        };
        store.record_purchases(&sys, "test", &[p]).await.unwrap();
        // Hourly housekeeping calls this again and again: one job per tenant and day.
        schedule_customer_metrics(&store).await.unwrap();
        schedule_customer_metrics(&store).await.unwrap();
        let page = siyu_core::paging::PageRequest { limit: 50, before: None };
        let jobs = store.list_jobs(t.id, &Default::default(), &page).await.unwrap();
        let ours: Vec<_> = jobs.items.iter().filter(|j| j.kind == CUSTOMER_METRICS_JOB).collect();
        assert_eq!(ours.len(), 1);
        let runner = Runner {
            store: store.store.clone(),
            registry: builtin_registry(),
            worker: "w".into(),
            workers: 1,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(20),
            backoff: Backoff::default(),
        };
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(runner.run(rx));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = store.customer(t.id, siyu_core::auth::DataScope::Tenant, c.id).await.unwrap();
            if now.orders_count == 1 {
                assert_eq!(now.spend_fen, 1234);
                assert_eq!(now.lifecycle, "deal");
                assert!(now.rfm.is_some(), "scored within the default 365-day window");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the metrics job never ran");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(true);
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn daily_metrics_sqlite() {
        daily_metrics_run_once_per_tenant_and_day(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn daily_metrics_postgres() {
        daily_metrics_run_once_per_tenant_and_day(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn panicking_handler_fails_the_attempt_sqlite() {
        panicking_handler_fails_the_attempt(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn panicking_handler_fails_the_attempt_postgres() {
        panicking_handler_fails_the_attempt(Backend::Postgres).await;
    }
}

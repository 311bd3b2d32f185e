//! Durable jobs across real `siyu serve` processes, on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use siyu_core::jobs::JobStatus;
use siyu_store::jobs::NewJob;
use siyu_store::testing::{fresh_config, url_for_child};
use siyu_store::{Backend, Store};

use common::{eventually, Server};

const FAST: &[(&str, &str)] = &[("SIYU_JOBS__LEASE_SECS", "2"), ("SIYU_JOBS__POLL_MS", "50")];

async fn killed_job_completes_exactly_once(backend: Backend) {
    let (cfg, _cleanup) = fresh_config(backend).await;
    let store = Store::connect(&cfg).await.unwrap();
    store.migrate().await.unwrap();
    let url = url_for_child(&cfg);
    let t = store.create_tenant("jobs", "Jobs", "Asia/Shanghai").await.unwrap();
    let id =
        store.enqueue(NewJob::new("system.probe", serde_json::json!({"hold_ms": 4000})).tenant(t.id)).await.unwrap();

    let mut a = Server::start(&url, &[], FAST);
    let pid = a.child.id().to_string();
    eventually(Duration::from_secs(30), "process A to lease the job", || async {
        let j = store.job(id).await.unwrap();
        (j.status == JobStatus::Running && j.locked_by.as_deref().is_some_and(|w| w.ends_with(&pid))).then_some(())
    })
    .await;
    a.kill();
    assert_eq!(store.probe_results(id).await.unwrap(), 0, "the killed process never finished the job");

    let _b = Server::start(&url, &[], FAST);
    let j = eventually(Duration::from_secs(60), "process B to finish the job", || async {
        let j = store.job(id).await.unwrap();
        (j.status == JobStatus::Done).then_some(j)
    })
    .await;
    assert_eq!(j.attempts, 2, "claimed once by A, once by B after A's lease expired");
    assert_eq!(store.probe_results(id).await.unwrap(), 1, "the effect is applied exactly once");
}

async fn two_processes_never_share_a_job(backend: Backend) {
    let (cfg, _cleanup) = fresh_config(backend).await;
    let store = Store::connect(&cfg).await.unwrap();
    store.migrate().await.unwrap();
    let url = url_for_child(&cfg);
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(store.enqueue(NewJob::new("system.probe", serde_json::json!({"hold_ms": 30}))).await.unwrap());
    }
    let a = Server::start(&url, &[], FAST);
    let b = Server::start(&url, &[], FAST);
    for id in &ids {
        eventually(Duration::from_secs(60), "all jobs to finish", || async {
            (store.job(*id).await.unwrap().status == JobStatus::Done).then_some(())
        })
        .await;
    }
    for id in &ids {
        let j = store.job(*id).await.unwrap();
        assert_eq!(j.attempts, 1, "job {id} ran more than once");
        assert_eq!(store.probe_results(*id).await.unwrap(), 1);
    }
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_job_completes_exactly_once_sqlite() {
    killed_job_completes_exactly_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_job_completes_exactly_once_postgres() {
    killed_job_completes_exactly_once(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_share_a_job_sqlite() {
    two_processes_never_share_a_job(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_share_a_job_postgres() {
    two_processes_never_share_a_job(Backend::Postgres).await;
}

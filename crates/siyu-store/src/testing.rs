//! Test support: a fresh, isolated store on either backend.
//!
//! SQLite tests get a database file in their own temporary directory. PostgreSQL tests get a
//! schema of their own on the server named by `SIYU_TEST_DATABASE_URL` (default: the local
//! server at `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the test ends. If
//! that server cannot be reached the test fails and says how to provide one: PostgreSQL tests
//! are never skipped silently.

use std::path::PathBuf;
use std::sync::Arc;

use siyu_core::time::{Clock, SystemClock};

use crate::{Backend, Store, StoreConfig};

pub const DEFAULT_TEST_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn test_pg_url() -> String {
    std::env::var("SIYU_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_PG.to_string())
}

/// An isolated, migrated store that cleans up after itself when dropped.
pub struct TestStore {
    pub store: Store,
    pub config: StoreConfig,
    _cleanup: Cleanup,
}

/// Removes a test database when dropped.
pub enum Cleanup {
    Dir(PathBuf),
    Schema(String, String),
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    pub async fn new(backend: Backend) -> TestStore {
        Self::with_clock(backend, Arc::new(SystemClock)).await
    }

    pub async fn with_clock(backend: Backend, clock: Arc<dyn Clock>) -> TestStore {
        let (config, cleanup) = fresh_config(backend).await;
        let store = Store::connect_with_clock(&config, clock).await.expect("connect to test database");
        store.migrate().await.expect("migrate test database");
        TestStore { store, config, _cleanup: cleanup }
    }
}

/// Settings for a fresh, empty database on `backend` (used by tests that start `siyu serve`
/// as a separate process and need a URL rather than a store).
pub async fn fresh_config(backend: Backend) -> (StoreConfig, Cleanup) {
    fresh_config_at(backend, &test_pg_url()).await
}

/// Like [`fresh_config`], with PostgreSQL schemas created on the server at `pg_url`.
pub async fn fresh_config_at(backend: Backend, pg_url: &str) -> (StoreConfig, Cleanup) {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("siyu-test-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let cfg = StoreConfig::new(format!("sqlite://{}", dir.join("siyu.db").display()));
            (cfg, Cleanup::Dir(dir))
        }
        Backend::Postgres => {
            let url = pg_url.to_string();
            let schema = format!("siyu_t_{}", uuid::Uuid::now_v7().simple());
            let admin = sqlx::PgPool::connect(&url).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL tests need a reachable server: set SIYU_TEST_DATABASE_URL=postgres://USER@HOST:PORT/DB \
                     (tried {}): {e}",
                    crate::redact_url(&url)
                )
            });
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.expect("create test schema");
            admin.close().await;
            let mut cfg = StoreConfig::new(url.clone());
            cfg.pg_schema = Some(schema.clone());
            cfg.max_connections = 8;
            (cfg, Cleanup::Schema(schema, url))
        }
    }
}

/// The URL to hand to a child process; PostgreSQL carries the schema in `options`.
pub fn url_for_child(cfg: &StoreConfig) -> String {
    match &cfg.pg_schema {
        Some(s) => {
            let sep = if cfg.url.contains('?') { '&' } else { '?' };
            format!("{}{sep}options=-c%20search_path%3D{s}", cfg.url)
        }
        None => cfg.url.clone(),
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::Schema(s, url) => {
                let (schema, url) = (s.clone(), url.clone());
                // Drop runs inside the test's runtime, which cannot block on itself: use a
                // short-lived runtime on a plain thread.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    rt.block_on(async {
                        let admin = sqlx::PgPool::connect(&url).await.ok()?;
                        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&admin).await.ok()?;
                        admin.close().await;
                        Some(())
                    })
                })
                .join();
            }
        }
    }
}

/// Declares one async test per backend: `both_backends!(name, |store| async move { ... });`
/// expands to `mod name { sqlite(), postgres() }`, each with a fresh [`TestStore`].
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$s:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $s = $crate::testing::TestStore::new($crate::Backend::Sqlite).await;
                $body.await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $s = $crate::testing::TestStore::new($crate::Backend::Postgres).await;
                $body.await
            }
        }
    };
}

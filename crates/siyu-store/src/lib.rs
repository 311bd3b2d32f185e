//! siyu's storage adapter: one [`Store`] over two backends.
//!
//! SQLite is the embedded default (WAL, one writer connection plus a pool of readers, so
//! writers queue in the pool instead of failing with `SQLITE_BUSY`); PostgreSQL is the
//! production store. SQL is written once wherever the dialects agree — `$N` placeholders,
//! `ON CONFLICT`, `RETURNING` — and the `on_read!`/`on_write!`/`in_tx!` macros expand each
//! query against the concrete pool of either backend, so there is no `Any` driver and no
//! lossy type mapping. Backend-specific SQL exists only where the engines truly differ (the
//! job claim's `FOR UPDATE SKIP LOCKED`, bulk loading).
//!
//! Every function that reads or writes tenant data takes the tenant id (usually inside an
//! [`Actor`](siyu_core::auth::Actor)) and puts it in the `WHERE` clause; functions returning
//! staff-owned rows also take a [`DataScope`](siyu_core::auth::DataScope). Changes write their
//! audit row in the same transaction as the change. This crate never speaks HTTP.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use siyu_core::time::{Clock, SystemClock};
use siyu_core::Timestamp;

pub mod acquisition;
pub mod audit;
pub mod auth;
pub mod bulk;
pub mod commerce;
pub mod customers;
pub mod idempotency;
pub mod jobs;
pub mod org;
pub mod secrets;
pub mod testing;
pub mod wecom;
pub mod wecom_sync;

/// Runs `$body` with `$p` bound to a pool suitable for reads.
#[macro_export]
#[doc(hidden)]
macro_rules! on_read {
    ($store:expr, |$p:ident| $body:expr) => {
        match $store.db() {
            $crate::Db::Sqlite { read: $p, .. } => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` with `$p` bound to the pool that takes writes.
#[macro_export]
#[doc(hidden)]
macro_rules! on_write {
    ($store:expr, |$p:ident| $body:expr) => {
        match $store.db() {
            $crate::Db::Sqlite { write: $p, .. } => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` inside one transaction, with `$t` bound to it; commits when `$body` finishes
/// without returning early. An early `?` drops the transaction, which rolls it back.
#[macro_export]
#[doc(hidden)]
macro_rules! in_tx {
    ($store:expr, |$t:ident| $body:expr) => {
        match $store.db() {
            $crate::Db::Sqlite { write, .. } => {
                let mut $t = write.begin().await?;
                let out = $body;
                $t.commit().await?;
                out
            }
            $crate::Db::Postgres(pool) => {
                let mut $t = pool.begin().await?;
                let out = $body;
                $t.commit().await?;
                out
            }
        }
    };
}

#[derive(Clone)]
pub enum Db {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Storage errors that callers branch on. Database details stay inside `Db` and are logged,
/// never shown to users.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; names the input field that collided.
    #[error("duplicate value for {0}")]
    Duplicate(&'static str),
    /// A referenced row (named by input field) does not exist in this tenant.
    #[error("unknown reference in {0}")]
    BadReference(&'static str),
    /// The row is not in a state that allows the change.
    #[error("{0}")]
    Conflict(String),
    /// A business rule refused the change (sold out, wrong state, limit reached): nothing was
    /// written. `code` is stable for clients; `field` names the input at fault, if one is.
    #[error("{message}")]
    Rejected { code: &'static str, field: Option<String>, message: String },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The store is misconfigured (for example a malformed master key).
    #[error("configuration: {0}")]
    Config(String),
    /// A sealed value could not be opened (damaged, or sealed under another master key).
    #[error("a stored secret could not be decrypted: {0}")]
    Seal(#[from] secrets::SealError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Maps constraint violations to domain errors naming `field`; other errors pass through.
    pub fn constraint(e: sqlx::Error, field: &'static str) -> StoreError {
        if let sqlx::Error::Database(d) = &e {
            if d.is_unique_violation() {
                return StoreError::Duplicate(field);
            }
            if d.is_foreign_key_violation() {
                return StoreError::BadReference(field);
            }
        }
        StoreError::Db(e)
    }
}

/// Escapes `%`, `_` and backslash so user input matches literally inside a
/// `LIKE … ESCAPE '\'` pattern (the same escape syntax works on both backends).
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Connection settings. `Debug` never prints the URL, which may hold a password.
#[derive(Clone)]
pub struct StoreConfig {
    pub url: String,
    pub max_connections: u32,
    /// PostgreSQL only: run in this schema (tests isolate themselves this way).
    pub pg_schema: Option<String>,
    /// Base64 master key sealing secrets and personal data at rest. `None` uses a throwaway
    /// key, which only tests and benchmarks may do: sealed values then die with the process.
    pub secret_key: Option<String>,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("pg_schema", &self.pg_schema)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .finish()
    }
}

/// `postgres://u:secret@h/db` → `postgres://u:***@h/db`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.split_once('@') {
            let user = creds.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:***@{host}");
        }
    }
    url.to_string()
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        StoreConfig { url: url.into(), max_connections: 16, pg_schema: None, secret_key: None }
    }
    pub fn backend(&self) -> Backend {
        if self.url.starts_with("postgres://") || self.url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sealer: secrets::Sealer,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.backend().as_str())
    }
}

impl Store {
    pub async fn connect(cfg: &StoreConfig) -> Result<Store> {
        Self::connect_with_clock(cfg, Arc::new(SystemClock)).await
    }

    pub async fn connect_with_clock(cfg: &StoreConfig, clock: Arc<dyn Clock>) -> Result<Store> {
        let sealer = match &cfg.secret_key {
            Some(k) => secrets::Sealer::from_base64(k).map_err(|e| StoreError::Config(e.to_string()))?,
            None => secrets::Sealer::from_base64(&secrets::Sealer::generate_key()).expect("a generated key is valid"),
        };
        let db = match cfg.backend() {
            Backend::Postgres => {
                let mut opts = PgConnectOptions::from_str(&cfg.url)?;
                if let Some(schema) = &cfg.pg_schema {
                    opts = opts.options([("search_path", schema.as_str())]);
                }
                let pool = PgPoolOptions::new()
                    .max_connections(cfg.max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?;
                Db::Postgres(pool)
            }
            Backend::Sqlite => {
                let path =
                    cfg.url.strip_prefix("sqlite://").or_else(|| cfg.url.strip_prefix("sqlite:")).unwrap_or(&cfg.url);
                if let Some(parent) = std::path::Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
                    }
                }
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                // One writer: SQLite admits one write transaction at a time, and queueing in
                // the pool is cheaper and fairer than retrying on SQLITE_BUSY.
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts.clone())
                    .await?;
                // Readers are a separate pool so reads never queue behind the writer (WAL lets
                // them proceed while a write transaction is open).
                let read = SqlitePoolOptions::new()
                    .max_connections(cfg.max_connections.clamp(2, 8))
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await?;
                Db::Sqlite { read, write }
            }
        };
        Ok(Store { db, clock, sealer })
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn sealer(&self) -> &secrets::Sealer {
        &self.sealer
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Applies pending migrations. Safe to run from several processes at once (PostgreSQL
    /// serialises them with an advisory lock; SQLite with its write lock).
    pub async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite { write, .. } => sqlx::migrate!("migrations/sqlite").run(write).await?,
            Db::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// Versions of the migrations embedded in this binary for this backend.
    pub fn known_migrations(&self) -> Vec<i64> {
        let m = match &self.db {
            Db::Sqlite { .. } => sqlx::migrate!("migrations/sqlite"),
            Db::Postgres(_) => sqlx::migrate!("migrations/postgres"),
        };
        m.iter().map(|x| x.version).collect()
    }

    /// Applied migration versions, for `siyu migrate --status`.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let sql = "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version";
        let v: Vec<i64> = on_read!(self, |p| sqlx::query_scalar(sql).fetch_all(p).await?);
        Ok(v)
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        on_read!(self, |p| sqlx::query("SELECT 1").execute(p).await?.rows_affected());
        Ok(())
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://siyu:hunter2@db:5432/siyu"), "postgres://siyu:***@db:5432/siyu");
        assert_eq!(redact_url("sqlite://siyu-data/siyu.db"), "sqlite://siyu-data/siyu.db");
        let dbg = format!("{:?}", StoreConfig::new("postgres://a:pw@h/d"));
        assert!(!dbg.contains("pw"), "{dbg}");
    }
}

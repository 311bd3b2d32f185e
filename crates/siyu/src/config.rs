//! Configuration: built-in defaults, then a TOML file (`siyu.toml` in the working directory,
//! or `--config FILE` / `SIYU_CONFIG`), then `SIYU_*` environment variables (nested keys with
//! `__`, e.g. `SIYU_JOBS__WORKERS=8`), then command-line flags. Secrets (the database URL's
//! password) never reach logs: `Debug` redacts them.

use std::fmt;
use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://siyu-data/siyu.db";

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// `sqlite://PATH` (embedded default) or `postgres://USER:PASSWORD@HOST:PORT/DB`.
    pub database_url: String,
    pub database_max_connections: u32,
    /// `text` for people, `json` for log pipelines.
    pub log_format: String,
    /// A tracing filter such as `info` or `siyu=debug,sqlx=warn`.
    pub log_level: String,
    /// Mark cookies `Secure`; set when serving over HTTPS (directly or behind a proxy).
    pub secure_cookies: bool,
    /// Trust `X-Forwarded-For` for the client address (only behind your own reverse proxy).
    pub trust_proxy: bool,
    /// Base64 master key (32 bytes) sealing secrets and personal data at rest. Every process
    /// sharing a database needs the same key. When unset, `secret_key_file` is used, created
    /// with a fresh key on first start.
    pub secret_key: Option<String>,
    pub secret_key_file: String,
    /// WeCom callbacks whose timestamp differs from now by more than this are rejected.
    pub wecom_callback_window_secs: u64,
    /// `serve --demo` only: the UCI Online Retail file (`online_retail.csv.gz`) whose customers
    /// and purchases populate the demo tenant. Unset: the conventional dataset folders.
    pub demo_dataset: Option<String>,
    /// `serve --demo` only: seconds between the demo's simulated customers scanning its live
    /// code (most then add the member they were shown); 0 stops the stream.
    pub demo_activity_secs: u64,
    /// `redis://[:PASSWORD@]HOST:PORT[/DB]`: flash sales admit buyers in Redis first (Lua
    /// pre-deduction, reconciled with the database). Unset: the database alone.
    pub redis_url: Option<String>,
    /// Flash-sale attempts each buyer may make per sale per second, per process; 0 is no limit.
    pub flash_attempts_per_sec: u32,
    pub jobs: JobsConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run background jobs in this process.
    pub enabled: bool,
    /// Jobs run at once by this process.
    pub workers: usize,
    /// Seconds a claimed job stays leased without a heartbeat before another process may
    /// take it over.
    pub lease_secs: u64,
    /// How often an idle worker looks for due jobs, in milliseconds.
    pub poll_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig { enabled: true, workers: 4, lease_secs: 30, poll_ms: 500 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: DEFAULT_DATABASE_URL.into(),
            database_max_connections: 16,
            log_format: "text".into(),
            log_level: "info".into(),
            secure_cookies: false,
            trust_proxy: false,
            secret_key: None,
            secret_key_file: "siyu-data/secret.key".into(),
            wecom_callback_window_secs: siyu_web::DEFAULT_CALLBACK_WINDOW_SECS,
            demo_dataset: None,
            demo_activity_secs: 30,
            redis_url: None,
            flash_attempts_per_sec: siyu_web::DEFAULT_FLASH_ATTEMPTS_PER_SEC,
            jobs: JobsConfig::default(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &siyu_store::redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("secure_cookies", &self.secure_cookies)
            .field("trust_proxy", &self.trust_proxy)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("secret_key_file", &self.secret_key_file)
            .field("wecom_callback_window_secs", &self.wecom_callback_window_secs)
            .field("demo_dataset", &self.demo_dataset)
            .field("demo_activity_secs", &self.demo_activity_secs)
            .field("redis_url", &self.redis_url.as_deref().map(siyu_store::redact_url))
            .field("flash_attempts_per_sec", &self.flash_attempts_per_sec)
            .field("jobs", &self.jobs)
            .finish()
    }
}

impl Config {
    /// Loads the layered configuration. `file` is an explicit config file, which must exist.
    pub fn load(file: Option<PathBuf>) -> Result<Config, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                if !f.exists() {
                    return Err(format!("config file {} does not exist", f.display()));
                }
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file("siyu.toml")),
        }
        fig = fig.merge(Env::prefixed("SIYU_").split("__").ignore(&[
            "config",
            "test_database_url",
            "bench_database_url",
        ]));
        fig.extract().map_err(|e| format!("invalid configuration: {e}"))
    }

    /// Store settings, with the master key from `secret_key` or the key file (created with a
    /// fresh key, readable by the owner only, when it does not exist yet).
    pub fn store(&self) -> Result<siyu_store::StoreConfig, String> {
        let mut c = siyu_store::StoreConfig::new(&self.database_url);
        c.max_connections = self.database_max_connections;
        c.secret_key = Some(match &self.secret_key {
            Some(k) => k.clone(),
            None => read_or_create_key(std::path::Path::new(&self.secret_key_file))?,
        });
        Ok(c)
    }
}

fn read_or_create_key(path: &std::path::Path) -> Result<String, String> {
    if let Ok(k) = std::fs::read_to_string(path) {
        return Ok(k.trim().to_string());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let key = siyu_store::secrets::Sealer::generate_key();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    use std::io::Write;
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(key.as_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))?;
            tracing::warn!(file = %path.display(), "created a new master key; back it up, and give every siyu process sharing this database the same key (SIYU_SECRET_KEY)");
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).map(|k| k.trim().to_string()).map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("creating {}: {e}", path.display())),
    }
}

#[cfg(test)]
// figment's test jail returns its own (large) error type; boxing it is not ours to choose.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_database_password() {
        let c = Config {
            database_url: "postgres://siyu:s3cret@db/siyu".into(),
            redis_url: Some("redis://:r3dis@cache:6379".into()),
            ..Config::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("s3cret") && !s.contains("r3dis"), "{s}");
        assert!(s.contains("siyu:***@db"));
    }

    #[test]
    fn files_and_environment_layer_over_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("siyu.toml", "listen = \"0.0.0.0:9000\"\n[jobs]\nworkers = 2\n")?;
            jail.set_env("SIYU_JOBS__LEASE_SECS", "7");
            jail.set_env("SIYU_DATABASE_URL", "postgres://u@h/d");
            jail.set_env("SIYU_REDIS_URL", "redis://127.0.0.1:6379");
            jail.set_env("SIYU_FLASH_ATTEMPTS_PER_SEC", "0");
            let c = Config::load(None).map_err(figment::Error::from)?;
            assert_eq!((c.redis_url.as_deref(), c.flash_attempts_per_sec), (Some("redis://127.0.0.1:6379"), 0));
            assert_eq!(c.listen, "0.0.0.0:9000");
            assert_eq!((c.jobs.workers, c.jobs.lease_secs), (2, 7));
            assert_eq!(c.database_url, "postgres://u@h/d");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("siyu.toml", "lisen = \"typo\"\n")?;
            assert!(Config::load(None).unwrap_err().contains("lisen"));
            Ok(())
        });
    }
}

//! The WeCom API client.
//!
//! One [`Client`] per (corp, app secret): tokens are per secret. It caches the access_token and
//! refreshes it ahead of expiry under a single-flight lock (concurrent callers wait for one
//! `gettoken`, never stampede it); on 40014/42001 it drops the token and retries the call
//! once; on -1 it retries with jitter; on 45009/45033 it pauses that API for the block
//! period and fails fast meanwhile; it also keeps its own per-API budget under WeCom's
//! documented limits. The base URL is configuration: the real WeCom and the sandbox are the
//! same to it.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use siyu_core::time::Clock;
use siyu_core::Timestamp;

use crate::errcode::{lookup, Action};

pub const WECOM_BASE_URL: &str = "https://qyapi.weixin.qq.com";

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub base_url: String,
    pub corp_id: String,
    pub secret: Secret,
    /// Calls per API per minute the client allows itself (WeCom's older, lower figure by
    /// default; protocols.md §4).
    pub per_minute: u32,
    pub timeout: Duration,
}

impl Config {
    pub fn new(base_url: &str, corp_id: &str, secret: &str) -> Config {
        Config {
            base_url: base_url.trim_end_matches('/').to_string(),
            corp_id: corp_id.to_string(),
            secret: Secret(secret.to_string()),
            per_minute: 2000,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum WecomError {
    #[error("WeCom errcode {code}: {meaning} (errmsg: {errmsg})")]
    Api { code: i64, errmsg: String, meaning: &'static str, action: Action },
    #[error("{api} is paused for {} s after WeCom's frequency limit", retry_after.as_secs())]
    Paused { api: String, retry_after: Duration },
    #[error("cannot reach WeCom: {0}")]
    Transport(String),
    #[error("WeCom's answer could not be read: {0}")]
    Decode(String),
}

impl WecomError {
    pub fn code(&self) -> Option<i64> {
        match self {
            WecomError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type Result<T, E = WecomError> = std::result::Result<T, E>;

#[derive(Clone)]
struct Token {
    value: String,
    refresh_at: Timestamp,
}

pub struct Client {
    http: reqwest::Client,
    cfg: Config,
    clock: Arc<dyn Clock>,
    /// Held across `gettoken`, so refreshes are single-flight.
    token: tokio::sync::Mutex<Option<Token>>,
    paused: Mutex<HashMap<String, Timestamp>>,
    budget: Mutex<HashMap<String, (i64, u32)>>,
    gettoken_calls: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.cfg.base_url)
            .field("corp_id", &self.cfg.corp_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(cfg: Config, clock: Arc<dyn Clock>) -> Client {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .expect("a client with only a timeout always builds");
        Client {
            http,
            cfg,
            clock,
            token: tokio::sync::Mutex::new(None),
            paused: Mutex::new(HashMap::new()),
            budget: Mutex::new(HashMap::new()),
            gettoken_calls: AtomicU64::new(0),
        }
    }

    pub fn corp_id(&self) -> &str {
        &self.cfg.corp_id
    }

    /// How many times this client called `gettoken` (for tests and metrics).
    pub fn gettoken_calls(&self) -> u64 {
        self.gettoken_calls.load(Ordering::SeqCst)
    }

    /// A valid access_token, fetched at most once at a time.
    pub async fn access_token(&self) -> Result<String> {
        let mut slot = self.token.lock().await;
        let now = self.clock.now();
        if let Some(t) = slot.as_ref().filter(|t| now < t.refresh_at) {
            return Ok(t.value.clone());
        }
        self.gettoken_calls.fetch_add(1, Ordering::SeqCst);
        let url = format!("{}/cgi-bin/gettoken", self.cfg.base_url);
        let v = self
            .send_raw(
                self.http
                    .get(url)
                    .query(&[("corpid", self.cfg.corp_id.as_str()), ("corpsecret", self.cfg.secret.0.as_str())]),
            )
            .await?;
        check(&v)?;
        let value = v["access_token"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| WecomError::Decode("gettoken without access_token".into()))?;
        let ttl = v["expires_in"].as_u64().unwrap_or(7200);
        // Refresh at 80 % of the lifetime so no call carries a token about to die.
        let refresh_at = now.plus(Duration::from_secs(ttl * 4 / 5));
        *slot = Some(Token { value: value.to_string(), refresh_at });
        Ok(value.to_string())
    }

    /// Drops `used` if it is still the cached token (another caller may have refreshed it).
    async fn invalidate(&self, used: &str) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.value == used) {
            *slot = None;
        }
    }

    async fn send_raw(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let res = req.send().await.map_err(|e| WecomError::Transport(e.without_url().to_string()))?;
        let bytes = res.bytes().await.map_err(|e| WecomError::Transport(e.without_url().to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| WecomError::Decode(e.to_string()))
    }

    fn check_paused(&self, api: &str) -> Result<()> {
        let now = self.clock.now();
        let mut p = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = p.get(api).copied() {
            if now < until {
                return Err(WecomError::Paused {
                    api: api.into(),
                    retry_after: Duration::from_micros((until.0 - now.0) as u64),
                });
            }
            p.remove(api);
        }
        // Our own budget: at most `per_minute` calls per API per clock minute.
        let minute = now.unix_secs() / 60;
        let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        let e = b.entry(api.to_string()).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        if e.1 >= self.cfg.per_minute {
            let retry_after = Duration::from_secs((60 - now.unix_secs() % 60) as u64);
            return Err(WecomError::Paused { api: api.into(), retry_after });
        }
        e.1 += 1;
        Ok(())
    }

    fn pause(&self, api: &str, d: Duration) {
        let until = self.clock.now().plus(d);
        self.paused.lock().unwrap_or_else(|e| e.into_inner()).insert(api.to_string(), until);
        tracing::warn!(api, seconds = d.as_secs(), "WeCom frequency limit: pausing this API");
    }

    /// Calls `path` (e.g. `/cgi-bin/externalcontact/get`) with the access_token added.
    /// `body` makes it a POST; `query` holds the other query parameters.
    pub async fn call(&self, path: &str, query: &[(&str, &str)], body: Option<&Value>) -> Result<Value> {
        let mut refreshed = false;
        let mut busy = 0;
        loop {
            self.check_paused(path)?;
            let token = self.access_token().await?;
            let url = format!("{}{}", self.cfg.base_url, path);
            let mut req = match body {
                Some(b) => self.http.post(&url).json(b),
                None => self.http.get(&url),
            };
            req = req.query(&[("access_token", token.as_str())]).query(query);
            let v = self.send_raw(req).await?;
            let Err(e) = check(&v) else { return Ok(v) };
            let WecomError::Api { action, .. } = &e else { return Err(e) };
            match *action {
                Action::RefreshToken if !refreshed => {
                    refreshed = true;
                    self.invalidate(&token).await;
                }
                Action::RetryBusy if busy < 3 => {
                    busy += 1;
                    let ms = rand::thread_rng().gen_range(100..300) * busy;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Action::Pause(d) => {
                    self.pause(path, d);
                    return Err(e);
                }
                _ => return Err(e),
            }
        }
    }

    /// POSTs a typed request and reads a typed answer.
    pub async fn post<Req: Serialize, Resp: DeserializeOwned>(&self, path: &str, req: &Req) -> Result<Resp> {
        let body = serde_json::to_value(req).map_err(|e| WecomError::Decode(e.to_string()))?;
        let v = self.call(path, &[], Some(&body)).await?;
        serde_json::from_value(v).map_err(|e| WecomError::Decode(format!("{path}: {e}")))
    }

    /// GETs with query parameters and reads a typed answer.
    pub async fn get<Resp: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Resp> {
        let v = self.call(path, query, None).await?;
        serde_json::from_value(v).map_err(|e| WecomError::Decode(format!("{path}: {e}")))
    }
}

/// `Ok` for errcode 0 (or absent); the typed error otherwise.
fn check(v: &Value) -> Result<()> {
    let code = v["errcode"].as_i64().unwrap_or(0);
    if code == 0 {
        return Ok(());
    }
    let e = lookup(code);
    Err(WecomError::Api {
        code,
        errmsg: v["errmsg"].as_str().unwrap_or("").to_string(),
        meaning: e.meaning,
        action: e.action,
    })
}

//! siyu's HTTP edge: the JSON API under `/api/v1`, the server-rendered console under
//! `/console`, and operations endpoints (`/healthz`, `/readyz`, `/metrics`,
//! `/api/openapi.json`).
//!
//! Handlers are thin: parse, authorise, call the store (and, as capabilities arrive, the pure
//! core), respond. Each capability exports its router; [`app`] composes them. This crate
//! holds no SQL and no business rule that the console and the API could disagree on.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use siyu_store::Store;

pub mod api;
pub mod console;
pub mod customers;
pub mod error;
pub mod extract;
pub mod i18n;
pub mod imports;
pub mod landing;
pub mod mall;
pub mod middleware;
pub mod ops;
pub mod pay;
pub mod qr;
pub mod sheets;
pub mod wecom;

/// Settings of the HTTP edge. Holds no secrets.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Mark cookies `Secure` (set when siyu is served over HTTPS, directly or via a proxy).
    pub secure_cookies: bool,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted reverse proxy).
    pub trust_proxy: bool,
    /// Shown on the login page when running the demo.
    pub demo_login: Option<DemoLogin>,
    /// WeCom callbacks whose timestamp is further than this from now are rejected as replays.
    pub callback_window_secs: u64,
    /// Demo mode: the WeChat Pay sandbox's cashier page, where the H5 mall sends buyers to pay.
    pub pay_cashier: Option<String>,
    /// Flash-sale attempts each buyer may make per sale per second in this process; 0 is no limit.
    pub flash_attempts_per_sec: u32,
}

/// Default replay window for WeCom callbacks: wide enough for WeCom's retries of a callback
/// we failed to store, narrow enough to bound replays.
pub const DEFAULT_CALLBACK_WINDOW_SECS: u64 = 3600;

/// Enough for a person tapping fast, far below a script.
pub const DEFAULT_FLASH_ATTEMPTS_PER_SEC: u32 = 5;

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            secure_cookies: false,
            trust_proxy: false,
            demo_login: None,
            callback_window_secs: DEFAULT_CALLBACK_WINDOW_SECS,
            pay_cashier: None,
            flash_attempts_per_sec: DEFAULT_FLASH_ATTEMPTS_PER_SEC,
        }
    }
}

#[derive(Clone, Debug)]
pub struct DemoLogin {
    pub tenant: String,
    pub login: String,
    pub password: String,
}

pub struct Inner {
    pub store: Store,
    pub config: WebConfig,
    pub ip_throttle: api::auth::IpThrottle,
    pub gateway: wecom::Gateway,
    /// The demo's simulated WeCom corp, when running `serve --demo`.
    pub sandbox: Option<Arc<siyu_wecom::sandbox::Sandbox>>,
    /// Per-tenant segment indexes, caught up with the database before each use.
    pub segments: siyu_store::customers::index::SegmentIndexes,
    /// WeChat Pay: prepay, payment queries, timeouts and refunds.
    pub pay: pay::PayGateway,
    /// Redis pre-deduction for flash sales, when siyu is given a Redis (`SIYU_REDIS_URL`).
    pub flash_gate: Option<siyu_store::commerce::flash_gate::FlashGate>,
    /// Per-buyer attempts per flash sale per second (FS-8.4).
    pub flash_throttle: mall::FlashThrottle,
}

/// The one state every handler gets.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Store, config: WebConfig) -> AppState {
        Self::build(store, config, None)
    }

    /// The same state, with a sandbox corp whose actions the console offers (demo mode).
    pub fn with_sandbox(store: Store, config: WebConfig, sandbox: Arc<siyu_wecom::sandbox::Sandbox>) -> AppState {
        Self::build(store, config, Some(sandbox))
    }

    fn build(store: Store, config: WebConfig, sandbox: Option<Arc<siyu_wecom::sandbox::Sandbox>>) -> AppState {
        let gateway = wecom::Gateway::new(store.clone());
        let segments = siyu_store::customers::index::SegmentIndexes::new(store.clone());
        let pay = pay::PayGateway::new(store.clone());
        let flash_throttle = mall::FlashThrottle::new(config.flash_attempts_per_sec);
        AppState(Arc::new(Inner {
            store,
            config,
            ip_throttle: Default::default(),
            gateway,
            sandbox,
            segments,
            pay,
            flash_gate: None,
            flash_throttle,
        }))
    }

    /// Puts flash sales behind Redis (FS-8.3). Call on a state no request has seen yet.
    pub fn with_flash_gate(mut self, gate: siyu_store::commerce::flash_gate::FlashGate) -> AppState {
        Arc::get_mut(&mut self.0).expect("with_flash_gate on a fresh state").flash_gate = Some(gate);
        self
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api::router().split_for_parts();
    let openapi = Arc::new(openapi);
    Router::new()
        // A panicking handler answers 500 problem+json inside the idempotency layer, which then
        // releases the key so a retry runs again.
        .merge(
            api.layer(CatchPanicLayer::custom(panic_response))
                .layer(from_fn_with_state(state.clone(), middleware::idempotency)),
        )
        .merge(ops::router(openapi))
        .merge(console::router())
        .merge(wecom::callback::router())
        .merge(pay::notify::router())
        .merge(mall::router())
        .merge(landing::router())
        .route_layer(from_fn(ops::record_metrics))
        .fallback(ops::fallback)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(middleware::MAX_BODY))
        .layer(from_fn(middleware::request_context))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    error::ApiError::Internal("a request handler panicked".into()).into_response()
}

/// The OpenAPI document, for tooling that wants it without starting a server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router().split_for_parts().1
}

/// Kind of the built-in diagnostic job: holds its lease for `hold_ms`, then records that it
/// ran, once per job id.
pub const PROBE_JOB: &str = "system.probe";

//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document, and
//! the fallback for unknown paths.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;
use crate::AppState;

/// The process-wide Prometheus recorder (metrics macros need exactly one).
pub fn prometheus() -> PrometheusHandle {
    static H: OnceLock<PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
            .expect("static buckets are valid")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
    .clone()
}

pub fn router(openapi: Arc<utoipa::openapi::OpenApi>) -> Router<AppState> {
    // Install the recorder when the app is built, so the first request is already counted.
    let _ = prometheus();
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(move || async move { axum::Json(openapi.as_ref().clone()) }))
}

/// Ready when the database answers; load balancers stop sending traffic otherwise.
async fn readyz(State(s): State<AppState>) -> Response {
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            let mut r = ApiError::Internal(format!("database unavailable: {e}")).into_response();
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r
        }
    }
}

async fn metrics() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus().render()).into_response()
}

/// Counts requests by route template (not raw path, which would explode label cardinality).
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let labels = [("method", method), ("route", route), ("status", res.status().as_u16().to_string())];
    metrics::counter!("siyu_http_requests_total", &labels).increment(1);
    metrics::histogram!("siyu_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    res
}

pub async fn fallback(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiError::NotFound.into_response()
    } else {
        (StatusCode::NOT_FOUND, axum::response::Html(crate::console::not_found_page())).into_response()
    }
}

//! The one HTTP error type. Every failure leaves the API as RFC 9457
//! `application/problem+json` with a stable `code` and, for input problems, the offending
//! field. Internal details are logged with the request id and never returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use siyu_core::auth::Scope;
use siyu_core::paging::PagingError;
use siyu_core::validate::Violation;
use siyu_store::StoreError;

#[derive(Debug)]
pub enum ApiError {
    /// No or invalid credentials.
    Unauthenticated,
    /// A login attempt with a wrong tenant, login or password.
    InvalidCredentials,
    /// Authenticated, but the actor lacks a scope.
    Forbidden(Scope),
    /// Authenticated, but the action is not allowed for another reason.
    ForbiddenField {
        field: String,
        message: String,
    },
    NotFound,
    /// The body is not JSON at all.
    MalformedJson(String),
    /// The request is syntactically wrong in a named place (query parameter, header).
    BadRequest {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    /// Fields failed validation (missing, wrong type, out of range).
    Validation(Vec<Violation>),
    Conflict {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    CsrfFailed,
    IdempotencyInProgress,
    IdempotencyMismatch,
    TooManyRequests {
        retry_after_secs: u64,
    },
    PayloadTooLarge,
    /// WeCom refused or could not be reached; the message says which and why.
    Upstream(String),
    Internal(String),
}

/// RFC 9457 problem details, plus siyu's stable `code` and the fields at fault.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable error code. Branch on this, never on `title` or `detail`.
    pub code: String,
    /// The first offending input field, when one is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every invalid field, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            Unauthenticated | InvalidCredentials => StatusCode::UNAUTHORIZED,
            Forbidden(_) | ForbiddenField { .. } | CsrfFailed => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MalformedJson(_) | BadRequest { .. } => StatusCode::BAD_REQUEST,
            Validation(_) | IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Conflict { .. } | IdempotencyInProgress => StatusCode::CONFLICT,
            TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Upstream(_) => StatusCode::BAD_GATEWAY,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            Unauthenticated => "unauthenticated",
            InvalidCredentials => "invalid_credentials",
            Forbidden(_) => "forbidden",
            ForbiddenField { .. } => "forbidden_field",
            NotFound => "not_found",
            MalformedJson(_) => "malformed_json",
            BadRequest { code, .. } => code,
            Validation(_) => "validation_failed",
            Conflict { code, .. } => code,
            CsrfFailed => "csrf_failed",
            IdempotencyInProgress => "idempotency_in_progress",
            IdempotencyMismatch => "idempotency_key_reused",
            TooManyRequests { .. } => "too_many_requests",
            PayloadTooLarge => "payload_too_large",
            Upstream(_) => "wecom_error",
            Internal(_) => "internal",
        }
    }

    pub fn problem(&self, request_id: Option<String>) -> Problem {
        use ApiError::*;
        let status = self.status();
        let (detail, field, errors) = match self {
            Unauthenticated => {
                ("Log in, or send a valid API token as `Authorization: Bearer …`.".to_string(), None, vec![])
            }
            InvalidCredentials => {
                ("The tenant, login or password is wrong.".to_string(), Some("password".to_string()), vec![])
            }
            Forbidden(s) => (format!("This action needs the `{}` permission.", s.as_str()), None, vec![]),
            ForbiddenField { field, message } => (message.clone(), Some(field.clone()), vec![]),
            NotFound => ("No such resource in this tenant.".to_string(), None, vec![]),
            MalformedJson(m) => (format!("The request body is not valid JSON: {m}"), None, vec![]),
            BadRequest { field, message, .. } => (message.clone(), field.clone(), vec![]),
            Validation(v) => {
                let detail = v.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ");
                let errs = v
                    .iter()
                    .map(|e| FieldError {
                        field: e.field.clone(),
                        code: e.code.to_string(),
                        message: e.message.clone(),
                    })
                    .collect();
                (detail, v.first().map(|e| e.field.clone()), errs)
            }
            Conflict { field, message, .. } => (message.clone(), field.clone(), vec![]),
            CsrfFailed => ("Missing or wrong CSRF token; reload the page and try again.".to_string(), None, vec![]),
            IdempotencyInProgress => (
                "A request with this Idempotency-Key is still being processed; retry shortly.".to_string(),
                None,
                vec![],
            ),
            IdempotencyMismatch => (
                "This Idempotency-Key was already used for a different request.".to_string(),
                Some("Idempotency-Key".to_string()),
                vec![],
            ),
            TooManyRequests { retry_after_secs } => {
                (format!("Too many attempts; try again in {retry_after_secs} s."), None, vec![])
            }
            PayloadTooLarge => ("The request body is too large.".to_string(), None, vec![]),
            Upstream(m) => (m.clone(), None, vec![]),
            Internal(_) => {
                ("Something went wrong on our side. Quote the request id when reporting it.".to_string(), None, vec![])
            }
        };
        Problem {
            type_: format!("https://siyu.dev/problems/{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            code: self.code().to_string(),
            field,
            errors,
            request_id,
        }
    }

    pub fn validation(field: &str, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![Violation { field: field.into(), code, message: message.into() }])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(m) = &self {
            tracing::error!(error = %m, "internal error");
        }
        let rid = siyu_store::audit::current_request_id();
        let problem = self.problem(rid);
        let mut res = (self.status(), axum::Json(problem)).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Duplicate(field) => ApiError::Conflict {
                code: "duplicate",
                field: Some(field.into()),
                message: format!("{field} is already in use"),
            },
            StoreError::BadReference(field) => {
                ApiError::validation(field, "unknown_reference", format!("{field} does not exist"))
            }
            StoreError::Conflict(m) => ApiError::Conflict { code: "conflict", field: None, message: m },
            StoreError::Rejected { code: "too_many_requests", .. } => ApiError::TooManyRequests { retry_after_secs: 1 },
            StoreError::Rejected { code, field, message } => ApiError::Conflict { code, field, message },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::wecom::gateway::SyncError> for ApiError {
    fn from(e: crate::wecom::gateway::SyncError) -> Self {
        use crate::wecom::gateway::SyncError;
        match e {
            SyncError::Store(s) => s.into(),
            SyncError::Wecom(w) => ApiError::Upstream(w.to_string()),
            SyncError::OutOfOrder(m) => ApiError::Conflict { code: "conflict", field: None, message: m },
        }
    }
}

impl From<Vec<Violation>> for ApiError {
    fn from(v: Vec<Violation>) -> Self {
        ApiError::Validation(v)
    }
}

impl From<PagingError> for ApiError {
    fn from(e: PagingError) -> Self {
        let field = match e {
            PagingError::BadLimit => "limit",
            PagingError::BadCursor => "cursor",
        };
        ApiError::BadRequest { code: "invalid_paging", field: Some(field.into()), message: e.to_string() }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

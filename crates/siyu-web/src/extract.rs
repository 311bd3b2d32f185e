//! Request extractors that fail as problem+json: JSON bodies and query strings whose errors
//! name the offending field, and the authenticated [`Auth`] actor.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use siyu_core::auth::{Actor, Scope};
use siyu_core::paging::PageRequest;

use crate::error::ApiError;
use crate::AppState;

pub const SESSION_COOKIE: &str = "siyu_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A JSON body. Malformed JSON is a 400 `malformed_json`; a missing field or a value of the
/// wrong type is a 422 naming the field by its dotted path.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        if !is_json {
            return Err(ApiError::BadRequest {
                code: "unsupported_media_type",
                field: Some("Content-Type".into()),
                message: "send the body as application/json".into(),
            });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| ApiError::PayloadTooLarge)?;
        parse_json(&bytes).map(Json)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Syntax
                | serde_json::error::Category::Eof
                | serde_json::error::Category::Io => Err(ApiError::MalformedJson(inner.to_string())),
                serde_json::error::Category::Data => Err(data_error(&path, &inner.to_string())),
            }
        }
    }
}

/// Turns a serde data error into a violation on the right field. serde reports a missing
/// field at its parent's path and names it in the message, so that case is rebuilt.
fn data_error(path: &str, msg: &str) -> ApiError {
    let base = if path == "." { String::new() } else { path.to_string() };
    let msg = msg.split(" at line ").next().unwrap_or(msg).to_string();
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        let field = if base.is_empty() { name.to_string() } else { format!("{base}.{name}") };
        return ApiError::validation(&field, "required", format!("{field} is required"));
    }
    let field = if base.is_empty() { "body".to_string() } else { base };
    let code = if msg.starts_with("unknown variant") {
        "invalid_value"
    } else if msg.starts_with("unknown field") {
        "unknown_field"
    } else {
        "invalid_type"
    };
    ApiError::validation(&field, code, format!("{field}: {msg}"))
}

/// A query string, parsed with field-naming errors.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de).map(Query).map_err(|e| {
            let field = e.path().to_string();
            ApiError::BadRequest {
                code: "invalid_query",
                field: Some(field.clone()),
                message: format!("query parameter {field}: {}", e.into_inner()),
            }
        })
    }
}

/// Paging parameters shared by every list endpoint.
#[derive(serde::Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::parse(self.limit, self.cursor.as_deref())?)
    }
}

/// The socket peer's address, when the server was started with connect info.
pub struct PeerIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// How the actor proved who they are.
#[derive(Clone, Debug)]
pub enum Via {
    Token,
    Session { csrf: String },
}

/// The authenticated actor of an API request.
#[derive(Clone, Debug)]
pub struct Auth(pub Actor);

impl Auth {
    pub fn require(&self, s: Scope) -> Result<(), ApiError> {
        if self.0.can(s) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(s))
        }
    }
}

impl std::ops::Deref for Auth {
    type Target = Actor;
    fn deref(&self) -> &Actor {
        &self.0
    }
}

pub fn cookie<'a>(parts: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    parts.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Resolves credentials to an actor: a bearer token first, else the session cookie.
pub async fn resolve(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Option<(Actor, Via)>, ApiError> {
    if let Some(h) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let Some(bearer) = h.strip_prefix("Bearer ") else { return Err(ApiError::Unauthenticated) };
        return match state.store.token_by_secret(bearer.trim()).await? {
            Some((tenant, tok)) => Ok(Some((Actor::token(tenant, tok.id, tok.name, tok.scopes), Via::Token))),
            None => Err(ApiError::Unauthenticated),
        };
    }
    if let Some(c) = cookie(headers, SESSION_COOKIE) {
        if let Some(s) = state.store.session(c).await? {
            let u = s.user;
            let actor = Actor::user(u.tenant_id, u.id, u.role, u.display_name, u.staff_id);
            return Ok(Some((actor, Via::Session { csrf: s.csrf_token })));
        }
    }
    Ok(None)
}

/// Cookie-authenticated requests that change state must echo the session's CSRF token in the
/// `X-CSRF-Token` header; bearer tokens are not sent ambiently by browsers and need none.
pub fn check_csrf(method: &Method, via: &Via, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if let Via::Session { csrf } = via {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !bool::from(sent.as_bytes().ct_eq(csrf.as_bytes())) || sent.is_empty() {
            return Err(ApiError::CsrfFailed);
        }
    }
    Ok(())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(a) = parts.extensions.get::<Auth>() {
            return Ok(a.clone());
        }
        let (actor, via) = resolve(state, &parts.headers).await?.ok_or(ApiError::Unauthenticated)?;
        check_csrf(&parts.method, &via, &parts.headers)?;
        let auth = Auth(actor);
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        qty: u32,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Inner>,
    }

    fn field_of(e: ApiError) -> (u16, Option<String>) {
        let p = e.problem(None);
        (p.status, p.field)
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(
            field_of(parse_json::<Body>(b"{\"name\": 1, \"items\": []}").unwrap_err()),
            (422, Some("name".into()))
        );
        assert_eq!(field_of(parse_json::<Body>(b"{\"items\": []}").unwrap_err()), (422, Some("name".into())));
        assert_eq!(
            field_of(parse_json::<Body>(b"{\"name\": \"a\", \"items\": [{\"qty\": 1}, {\"qty\": -1}]}").unwrap_err()),
            (422, Some("items[1].qty".into()))
        );
        assert_eq!(
            field_of(parse_json::<Body>(b"{\"name\": \"a\", \"items\": [{}]}").unwrap_err()),
            (422, Some("items[0].qty".into()))
        );
        assert_eq!(parse_json::<Body>(b"{\"name\": ").unwrap_err().problem(None).status, 400);
        assert_eq!(parse_json::<Body>(b"not json").unwrap_err().problem(None).code, "malformed_json");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(header::COOKIE, "a=1; siyu_session=abc.def; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie(&h, "c"), None);
    }
}

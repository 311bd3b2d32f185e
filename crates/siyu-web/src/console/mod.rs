//! The console: server-rendered pages from templates embedded in the binary, with a small
//! hand-written script for progressive enhancement (every page works without it).
//!
//! Console handlers call the same store functions and the same validation as the API, so the
//! two can never disagree about what is allowed. Forms post back to the page that shows them;
//! invalid input re-renders the form with a message beside each bad field.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use minijinja::value::Kwargs;
use minijinja::{Environment, State as TplState, Value};
use serde_json::{json, Map};
use subtle::ConstantTimeEq;

use siyu_core::auth::{Actor, Role, Scope};
use siyu_core::org::{Tenant, User};
use siyu_core::validate::Violation;
use siyu_core::Timestamp;

use crate::error::ApiError;
use crate::extract::{cookie, SESSION_COOKIE};
use crate::i18n::{self, Lang};
use crate::AppState;

mod admin;
mod auth;
mod catalogue;
mod coupons;
mod customers;
mod discounts;
mod flash;
mod imports;
mod live_codes;
mod orders;
mod org;
mod plays;
mod presales;
mod promotions;
mod sandbox;
mod transfers;
mod wecom;

pub const LANG_COOKIE: &str = "siyu_lang";

macro_rules! embed {
    ($($name:literal),* $(,)?) => { &[$(($name, include_str!(concat!("../../assets/templates/", $name)))),*] };
}

const TEMPLATES: &[(&str, &str)] = embed!(
    "base.html",
    "macros.html",
    "login.html",
    "error.html",
    "home.html",
    "area.html",
    "settings.html",
    "stores.html",
    "store_form.html",
    "staff.html",
    "staff_form.html",
    "users.html",
    "user_form.html",
    "tokens.html",
    "audit.html",
    "jobs.html",
    "wecom.html",
    "wecom_form.html",
    "sandbox.html",
    "customers.html",
    "customer_form.html",
    "customer.html",
    "tags.html",
    "segments.html",
    "segment_form.html",
    "transfers.html",
    "transfer.html",
    "imports.html",
    "import.html",
    "products.html",
    "product_form.html",
    "catalogue.html",
    "orders.html",
    "order.html",
    "refunds.html",
    "pay.html",
    "coupons.html",
    "promotions.html",
    "presales.html",
    "discounts.html",
    "flash.html",
    "group_buys.html",
    "bargains.html",
    "mall_base.html",
    "mall_quote.html",
    "mall_home.html",
    "mall_product.html",
    "mall_cart.html",
    "mall_checkout.html",
    "mall_orders.html",
    "mall_order.html",
    "mall_login.html",
    "mall_pay.html",
    "mall_coupons.html",
    "mall_flash.html",
    "mall_countdown.html",
    "mall_groups.html",
    "mall_group.html",
    "mall_bargains.html",
    "mall_bargain.html",
    "landing.html",
    "live_codes.html",
    "short_links.html",
);

const CSS: &str = include_str!("../../assets/static/console.css");
const JS: &str = include_str!("../../assets/static/console.js");
const MALL_CSS: &str = include_str!("../../assets/static/mall.css");

pub struct Templates(Environment<'static>);

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// The process-wide template set, parsed once.
pub fn templates() -> &'static Templates {
    static T: std::sync::OnceLock<Templates> = std::sync::OnceLock::new();
    T.get_or_init(Templates::new)
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src).unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        env.add_function("t", |state: &TplState, key: &str| i18n::t(lang_of(state), key));
        env.add_function("tf", |state: &TplState, key: &str, kw: Kwargs| {
            let mut s = i18n::t(lang_of(state), key);
            for k in kw.args() {
                let v: Value = kw.get(k).unwrap_or_default();
                s = s.replace(&format!("{{{k}}}"), &v.to_string());
            }
            let _ = kw.assert_all_used();
            s
        });
        Templates(env)
    }

    pub fn render(&self, name: &str, ctx: &serde_json::Value) -> Result<String, ApiError> {
        let tpl = self.0.get_template(name).map_err(|e| ApiError::Internal(format!("template {name}: {e}")))?;
        tpl.render(ctx).map_err(|e| ApiError::Internal(format!("render {name}: {e:#}")))
    }
}

fn lang_of(state: &TplState) -> Lang {
    state.lookup("lang").and_then(|v| v.as_str().and_then(Lang::parse)).unwrap_or(Lang::Zh)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/console.css", get(|| async { static_asset(CSS, "text/css; charset=utf-8") }))
        .route("/static/console.js", get(|| async { static_asset(JS, "text/javascript; charset=utf-8") }))
        .route("/static/mall.css", get(|| async { static_asset(MALL_CSS, "text/css; charset=utf-8") }))
        .merge(auth::router())
        .merge(org::router())
        .merge(customers::router())
        .merge(transfers::router())
        .merge(imports::router())
        .merge(catalogue::router())
        .merge(coupons::router())
        .merge(promotions::router())
        .merge(presales::router())
        .merge(discounts::router())
        .merge(flash::router())
        .merge(live_codes::router())
        .merge(plays::router())
        .merge(orders::router())
        .merge(admin::router())
        .merge(wecom::router())
        .merge(sandbox::router())
}

fn static_asset(body: &'static str, ct: &'static str) -> Response {
    ([(header::CONTENT_TYPE, ct), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

/// The signed-in console user, resolved from the session cookie. Without a live session the
/// request is redirected to the login page, remembering where it wanted to go.
pub struct Ctx {
    pub actor: Actor,
    pub user: User,
    pub tenant: Tenant,
    pub csrf: String,
    pub lang: Lang,
    pub path: String,
    /// `http://host:port` as the browser addressed us, for copy-paste examples.
    pub origin: String,
    /// Demo mode: the console offers the WeCom sandbox's actions.
    pub sandbox: bool,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/console".into());
        let to_login = || Redirect::to(&format!("/console/login?next={}", urlencode(&path))).into_response();
        let Some(c) = cookie(&parts.headers, SESSION_COOKIE) else { return Err(to_login()) };
        let sess = match state.store.session(c).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        let tenant = state.store.tenant(sess.user.tenant_id).await.map_err(|e| ApiError::from(e).into_response())?;
        let lang = lang_from(&parts.headers).unwrap_or_else(|| Lang::parse(&tenant.default_locale).unwrap_or(Lang::Zh));
        let u = &sess.user;
        let actor = Actor::user(u.tenant_id, u.id, u.role, u.display_name.clone(), u.staff_id);
        let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let scheme = if state.config.secure_cookies { "https" } else { "http" };
        let origin = format!("{scheme}://{host}");
        let sandbox = state.sandbox.is_some();
        Ok(Ctx { actor, user: sess.user, tenant, csrf: sess.csrf_token, lang, path, origin, sandbox })
    }
}

pub fn lang_from(h: &HeaderMap) -> Option<Lang> {
    cookie(h, LANG_COOKIE).and_then(Lang::parse)
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Only local paths are followed after login, never another site (no open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/console".to_string(),
    }
}

impl Ctx {
    pub fn t(&self, key: &str) -> String {
        i18n::t(self.lang, key)
    }

    pub fn offset(&self) -> i8 {
        self.tenant.offset_hours()
    }

    pub fn when(&self, t: Timestamp) -> String {
        t.display_local(self.offset())
    }

    pub fn can(&self, s: Scope) -> bool {
        self.actor.can(s)
    }

    /// `Some(403 page)` when the user lacks `s`.
    pub fn require(&self, s: Scope) -> Option<Response> {
        (!self.can(s))
            .then(|| error_page(self.lang, StatusCode::FORBIDDEN, "error.forbidden", "error.forbidden.desc", None))
    }

    /// Guards a form submission: `Some(response)` when its CSRF token is wrong or the user
    /// lacks `s`; the handler returns that response unchanged.
    pub fn deny(&self, f: &FormData, s: Scope) -> Option<Response> {
        f.csrf_error(self).or_else(|| self.require(s))
    }

    /// The context every logged-in page shares: user, tenant, navigation, language.
    pub fn base(&self, active: &str, title_key: &str) -> Map<String, serde_json::Value> {
        let mut m = Map::new();
        m.insert("lang".into(), json!(self.lang.code()));
        m.insert("other_lang".into(), json!(self.lang.other().code()));
        m.insert("csrf".into(), json!(self.csrf));
        m.insert("active".into(), json!(active));
        m.insert("title".into(), json!(self.t(title_key)));
        m.insert("path".into(), json!(self.path));
        m.insert("origin".into(), json!(self.origin));
        m.insert(
            "me".into(),
            json!({
                "name": self.user.display_name,
                "initial": self.user.display_name.chars().next().map(String::from).unwrap_or_default(),
                "role": self.user.role.as_str(),
                "role_label": self.t(&format!("role.{}", self.user.role.as_str())),
                "login": self.user.login,
            }),
        );
        m.insert("tenant".into(), json!({"name": self.tenant.name, "slug": self.tenant.slug}));
        m.insert("nav".into(), nav(self));
        m
    }

    pub fn render(&self, tpl: &str, ctx: Map<String, serde_json::Value>) -> Response {
        match templates().render(tpl, &serde_json::Value::Object(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                let rid = siyu_store::audit::current_request_id();
                tracing::error!(error = ?e, "console render failed");
                error_page(self.lang, StatusCode::INTERNAL_SERVER_ERROR, "error.internal", "error.internal", rid)
            }
        }
    }

    /// Renders with `status` (a form re-shown with errors is 422), unless rendering itself
    /// failed: then the 500 error page keeps its own status.
    pub fn render_with(&self, status: StatusCode, tpl: &str, ctx: Map<String, serde_json::Value>) -> Response {
        let r = self.render(tpl, ctx);
        if r.status().is_success() {
            (status, r).into_response()
        } else {
            r
        }
    }

    /// The response for an error outside any form.
    pub fn fail(&self, e: impl Into<ApiError>) -> Response {
        match self.form_error(e.into()) {
            Err(r) => *r,
            Ok((fields, msg)) => {
                let first = fields.values().next().and_then(|v| v.as_str()).map(str::to_string);
                let text = msg.or(first).unwrap_or_default();
                error_page(self.lang, StatusCode::CONFLICT, "error.conflict", &text, None)
            }
        }
    }

    /// Translates store and validation errors for a form: field → message.
    pub fn field_errors(&self, violations: &[Violation]) -> Map<String, serde_json::Value> {
        let mut m = Map::new();
        for v in violations {
            let label = field_label(self.lang, &v.field);
            let key = format!("v.{}", v.code);
            let msg = if i18n::has(&key) { i18n::tf(self.lang, &key, &[("field", &label)]) } else { v.message.clone() };
            m.entry(v.field.clone()).or_insert(json!(msg));
        }
        m
    }

    /// Maps an [`ApiError`] from a form submission to inline field errors where it names a
    /// field, or to a page-level message otherwise.
    pub fn form_error(&self, e: ApiError) -> Result<FormErrors, Box<Response>> {
        match e {
            ApiError::Validation(v) => Ok((self.field_errors(&v), None)),
            ApiError::Conflict { code, field: Some(f), message } => {
                Ok((self.field_errors(&[Violation { field: f, code, message }]), None))
            }
            ApiError::Conflict { code, message, .. } => {
                let key = format!("v.{code}");
                Ok((Map::new(), Some(if i18n::has(&key) { self.t(&key) } else { message })))
            }
            // WeCom's refusal or absence, in its own words: the operator can act on it.
            ApiError::Upstream(message) => Ok((Map::new(), Some(message))),
            ApiError::ForbiddenField { field, message } => {
                let _ = message;
                Ok((self.field_errors(&[Violation { field, code: "forbidden_field", message: String::new() }]), None))
            }
            ApiError::NotFound => Err(Box::new(error_page(
                self.lang,
                StatusCode::NOT_FOUND,
                "error.not_found",
                "error.not_found.desc",
                None,
            ))),
            ApiError::Forbidden(_) => Err(Box::new(error_page(
                self.lang,
                StatusCode::FORBIDDEN,
                "error.forbidden",
                "error.forbidden.desc",
                None,
            ))),
            other => {
                let rid = siyu_store::audit::current_request_id();
                tracing::error!(error = ?other, "console action failed");
                Err(Box::new(error_page(
                    self.lang,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "error.internal",
                    "error.internal",
                    rid,
                )))
            }
        }
    }
}

/// Label of a form field in the user's language, for error messages.
fn field_label(lang: Lang, field: &str) -> String {
    // `skus.2.price_fen` is labelled like `skus.price_fen`.
    let plain: Vec<&str> = field.split('.').filter(|p| p.parse::<usize>().is_err()).collect();
    let candidates = [
        format!("field.{field}"),
        format!("field.{}", field.trim_end_matches("_id")),
        format!("field.{}", plain.join(".")),
    ];
    for k in candidates {
        if i18n::has(&k) {
            return i18n::t(lang, &k);
        }
    }
    field.to_string()
}

/// What a failed form shows: messages beside fields, and maybe one for the whole form.
pub type FormErrors = (Map<String, serde_json::Value>, Option<String>);

/// A posted form: repeated keys are kept (checkbox groups).
pub struct FormData(Vec<(String, String)>);

impl FormData {
    /// Fields read some other way (a multipart upload's text parts).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> FormData {
        FormData(pairs)
    }
    pub fn parse(body: &Bytes) -> FormData {
        FormData(form_urlencoded::parse(body).into_owned().collect())
    }
    pub fn get(&self, k: &str) -> &str {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("")
    }
    pub fn opt(&self, k: &str) -> Option<&str> {
        Some(self.get(k)).filter(|v| !v.trim().is_empty())
    }
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0.iter().filter(|(key, _)| key == k).map(|(_, v)| v.as_str()).collect()
    }
    pub fn checked(&self, k: &str) -> bool {
        !self.get(k).is_empty()
    }
    /// The form as a JSON object, to refill inputs after a failed submit.
    pub fn values(&self) -> serde_json::Value {
        let mut m = Map::new();
        for (k, v) in &self.0 {
            if k != "_csrf" && !k.contains("password") {
                m.insert(k.clone(), json!(v));
            }
        }
        serde_json::Value::Object(m)
    }
    /// `Some(403 page)` unless the form's `_csrf` field matches the session's token.
    pub fn csrf_error(&self, ctx: &Ctx) -> Option<Response> {
        let sent = self.get("_csrf");
        let ok = !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(ctx.csrf.as_bytes()));
        (!ok).then(|| error_page(ctx.lang, StatusCode::FORBIDDEN, "error.forbidden", "error.csrf", None))
    }
}

struct NavItem {
    key: &'static str,
    href: &'static str,
    id: &'static str,
    scope: Option<Scope>,
    built: bool,
}

const fn item(key: &'static str, href: &'static str, id: &'static str, scope: Option<Scope>) -> NavItem {
    NavItem { key, href, id, scope, built: true }
}

const fn soon(area: &'static str, href: &'static str) -> NavItem {
    NavItem { key: area, href, id: area, scope: None, built: false }
}

/// Navigation for every area of the domain. Areas not built yet are listed and say so.
fn nav(ctx: &Ctx) -> serde_json::Value {
    let groups: [(&str, Vec<NavItem>); 6] = [
        ("", vec![item("nav.overview", "/console", "home", None)]),
        (
            "area.customers",
            vec![
                item("customers.title", "/console/customers", "customers", Some(Scope::CustomersRead)),
                item("tags.title", "/console/tags", "tags", Some(Scope::CustomersRead)),
                item("segments.title", "/console/segments", "segments", Some(Scope::CustomersRead)),
                item("transfers.title", "/console/transfers", "transfers", Some(Scope::CustomersTransfer)),
            ],
        ),
        (
            "area.acquisition",
            vec![
                item("live_codes.title", "/console/live-codes", "live_codes", Some(Scope::CustomersRead)),
                item("short_links.title", "/console/short-links", "short_links", Some(Scope::CustomersRead)),
            ],
        ),
        (
            "area.commerce",
            vec![
                item("products.title", "/console/products", "products", Some(Scope::CommerceRead)),
                item("orders.title", "/console/orders", "orders", Some(Scope::CommerceRead)),
                item("coupons.title", "/console/coupons", "coupons", Some(Scope::CommerceRead)),
                item("promotions.title", "/console/promotions", "promotions", Some(Scope::CommerceRead)),
                item("discounts.title", "/console/discounts", "discounts", Some(Scope::CommerceRead)),
                item("presales.title", "/console/presales", "presales", Some(Scope::CommerceRead)),
                item("flash.title", "/console/flash-sales", "flash", Some(Scope::CommerceRead)),
                item("groups.title", "/console/group-buys", "group_buys", Some(Scope::CommerceRead)),
                item("bargains.title", "/console/bargains", "bargains", Some(Scope::CommerceRead)),
                item("refunds.title", "/console/refunds", "refunds", Some(Scope::CommerceRead)),
                item("pay.title", "/console/pay", "pay", Some(Scope::SettingsRead)),
            ],
        ),
        (
            "",
            vec![
                soon("area.engagement", "/console/areas/engagement"),
                soon("area.fission", "/console/areas/fission"),
                soon("area.loyalty", "/console/areas/loyalty"),
                soon("area.analytics", "/console/areas/analytics"),
                item("wecom.title", "/console/wecom", "wecom", Some(Scope::SettingsRead)),
                item("sandbox.title", "/console/sandbox", "sandbox", Some(Scope::SettingsRead)),
            ],
        ),
        (
            "area.org",
            vec![
                item("stores.title", "/console/stores", "stores", Some(Scope::StoresRead)),
                item("staff.title", "/console/staff", "staff", Some(Scope::StaffRead)),
                item("users.title", "/console/users", "users", Some(Scope::UsersRead)),
                item("tokens.title", "/console/tokens", "tokens", Some(Scope::TokensManage)),
                item("audit.title", "/console/audit", "audit", Some(Scope::AuditRead)),
                item("jobs.title", "/console/jobs", "jobs", Some(Scope::JobsRead)),
                item("settings.title", "/console/settings", "settings", Some(Scope::SettingsRead)),
            ],
        ),
    ];
    let out: Vec<serde_json::Value> = groups
        .iter()
        .map(|(title, items)| {
            let items: Vec<_> = items
                .iter()
                .filter(|i| i.scope.is_none_or(|s| ctx.can(s)))
                .filter(|i| i.id != "sandbox" || ctx.sandbox)
                .map(|i| json!({"label": ctx.t(i.key), "href": i.href, "id": i.id, "built": i.built}))
                .collect();
            json!({"title": if title.is_empty() { String::new() } else { ctx.t(title) }, "items": items})
        })
        .collect();
    json!(out)
}

/// A stand-alone error page (no navigation: the user may not be logged in).
pub fn error_page(lang: Lang, status: StatusCode, title: &str, desc: &str, request_id: Option<String>) -> Response {
    let html = templates()
        .render(
            "error.html",
            &json!({
                "lang": lang.code(),
                "status": status.as_u16(),
                "heading": i18n::t(lang, title),
                "desc": i18n::t(lang, desc),
                "request_id": request_id,
            }),
        )
        .unwrap_or_else(|_| "error".into());
    (status, Html(html)).into_response()
}

pub fn not_found_page() -> String {
    templates()
        .render(
            "error.html",
            &json!({"lang": "zh-CN", "status": 404, "heading": i18n::t(Lang::Zh, "error.not_found"), "desc": i18n::t(Lang::Zh, "error.not_found.desc")}),
        )
        .unwrap_or_else(|_| "not found".into())
}

/// Rows per page in console lists.
pub const PAGE_SIZE: u32 = 20;

/// A non-empty query parameter.
pub fn qget<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

/// Page request from `?cursor=`; a bad cursor quietly restarts at the first page.
pub fn page_req(q: &HashMap<String, String>) -> siyu_core::paging::PageRequest {
    siyu_core::paging::PageRequest::parse(Some(PAGE_SIZE), qget(q, "cursor"))
        .unwrap_or(siyu_core::paging::PageRequest { limit: PAGE_SIZE, before: None })
}

/// The pager under a list: rows shown, a link back to the first page, and the next page.
pub fn pager(
    ctx: &Ctx,
    n: usize,
    next: Option<String>,
    filters: &[(&str, Option<&str>)],
    on_first: bool,
) -> serde_json::Value {
    let mut with_cursor = filters.to_vec();
    with_cursor.push(("cursor", next.as_deref()));
    json!({
        "showing": i18n::tf(ctx.lang, "pager.showing", &[("n", &n.to_string())]),
        "first": if on_first { None } else { Some(query_with(filters)) },
        "next": next.as_ref().map(|_| query_with(&with_cursor)),
    })
}

/// Builds `?k=v&…` for pager links, keeping the current filters.
pub fn query_with(params: &[(&str, Option<&str>)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            ser.append_pair(k, v);
        }
    }
    let s = ser.finish();
    if s.is_empty() {
        "?".into()
    } else {
        format!("?{s}")
    }
}

/// Role options a user may assign, for select boxes.
pub fn role_options(ctx: &Ctx) -> Vec<serde_json::Value> {
    Role::ALL
        .iter()
        .filter(|r| crate::api::admin::may_grant(&ctx.actor, **r))
        .map(|r| json!({"value": r.as_str(), "label": ctx.t(&format!("role.{}", r.as_str())), "desc": ctx.t(&format!("role.{}.desc", r.as_str()))}))
        .collect()
}

/// The listed products (the first 200), for a page's choice of product.
pub async fn listed_products(
    s: &AppState,
    tenant: siyu_core::TenantId,
) -> Vec<siyu_store::commerce::catalogue::Product> {
    let filter = siyu_store::commerce::catalogue::ProductFilter {
        status: Some(siyu_core::commerce::catalogue::ProductStatus::Listed),
        ..Default::default()
    };
    let page = siyu_core::paging::PageRequest { limit: 200, before: None };
    s.store.products(tenant, &filter, &page).await.map(|p| p.items).unwrap_or_default()
}

/// Products as a select's options.
pub fn product_options<'a>(
    ps: impl IntoIterator<Item = &'a siyu_store::commerce::catalogue::Product>,
) -> Vec<serde_json::Value> {
    ps.into_iter().map(|p| json!({"value": p.id, "label": p.title})).collect()
}

/// The product a form names in `product_id`, or the field's error.
pub async fn form_product(
    s: &AppState,
    tenant: siyu_core::TenantId,
    f: &FormData,
) -> Result<siyu_store::commerce::catalogue::Product, ApiError> {
    let id = f
        .get("product_id")
        .parse::<uuid::Uuid>()
        .map_err(|_| ApiError::validation("product_id", "required", "choose a product"))?;
    s.store
        .product(tenant, siyu_core::ProductId(id))
        .await
        .map_err(|_| ApiError::validation("product_id", "unknown_reference", "no such product"))
}

/// An amount in fen as the console and the mall show it (`¥12.34`).
/// A console form as it is shown again: the values typed, the errors beside each field, and
/// the message above the form.
pub struct FormState {
    pub values: serde_json::Value,
    pub errors: Map<String, serde_json::Value>,
    pub msg: Option<String>,
}

/// The frame of a marketing play's page (预售, 限时折扣, 秒杀, 拼团, 砍价): its rows, the listed
/// products its form offers, the form's state, and whether the user may create one.
pub(super) async fn play_frame(
    s: &AppState,
    ctx: &Ctx,
    nav: &str,
    title: &str,
    rows: Vec<serde_json::Value>,
    form: FormState,
) -> Map<String, serde_json::Value> {
    let products = product_options(&listed_products(s, ctx.tenant.id).await);
    let mut m = ctx.base(nav, title);
    m.insert("rows".into(), json!(rows));
    m.insert("products".into(), json!(products));
    m.insert("values".into(), form.values);
    m.insert("errors".into(), json!(form.errors));
    m.insert("error".into(), json!(form.msg));
    m.insert("can_write".into(), json!(ctx.can(Scope::CommerceWrite)));
    m
}

pub fn yuan(fen: i64) -> String {
    siyu_core::Fen(fen).to_string()
}

/// Small helper for pages that just want `?saved=1`-style flags.
/// Moves validation errors (and a refusal's field) from API field names to the form's (`from`, `to` pairs), where a
/// form names its fields apart from the API's.
pub fn rename_fields(e: ApiError, pairs: &[(&str, &str)]) -> ApiError {
    match e {
        ApiError::Validation(v) => ApiError::Validation(
            v.into_iter()
                .map(|mut x| {
                    if let Some((_, to)) = pairs.iter().find(|(from, _)| x.field == *from) {
                        x.field = (*to).into();
                    }
                    x
                })
                .collect(),
        ),
        ApiError::Conflict { code, field: Some(f), message } => {
            let field = pairs.iter().find(|(from, _)| f == *from).map_or(f, |(_, to)| (*to).to_string());
            ApiError::Conflict { code, field: Some(field), message }
        }
        other => other,
    }
}

pub fn flag(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| !v.is_empty())
}

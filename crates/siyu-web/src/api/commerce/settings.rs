//! WeChat Pay settings (merchant id, keys, platform key) and the notification log.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use siyu_core::auth::Scope;
use siyu_core::validate::Violations;
use siyu_store::commerce::payments::PaySettingsInput;

use super::dto::{PayNotificationOut, PaySettingsIn, PaySettingsOut};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, Json};
use crate::pay::WECHATPAY_BASE_URL;
use crate::AppState;

/// The WeChat Pay settings; secrets are never returned.
#[utoipa::path(get, path = "/api/v1/pay/settings", tag = "orders", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PaySettingsOut), (status = 404, description = "Not set up yet", body = Problem)))]
async fn get_settings(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<PaySettingsOut>> {
    auth.require(Scope::SettingsRead)?;
    let st = s.store.pay_settings(auth.tenant_id).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(PaySettingsOut::new(st, auth.tenant_id)))
}

fn pem_ok(pem: &str, kind: &str) -> bool {
    pem.contains(&format!("-----BEGIN {kind}-----")) && pem.contains(&format!("-----END {kind}-----"))
}

/// Validates the settings and checks every key can be used before anything is stored.
pub fn validate(b: PaySettingsIn) -> ApiResult<PaySettingsInput> {
    let mut v = Violations::new();
    let appid = v.text("appid", &b.appid, 32);
    let mchid = v.text("mchid", &b.mchid, 32);
    let serial = v.text("merchant_serial", &b.merchant_serial, 64);
    let notify_base = v.text("notify_base", &b.notify_base, 200);
    if !(notify_base.starts_with("https://") || notify_base.starts_with("http://")) || notify_base.contains('?') {
        v.push(
            "notify_base",
            "invalid_format",
            "notify_base is an origin such as https://mall.example.com, without a query",
        );
    }
    let base_url =
        b.base_url.as_deref().map(str::trim).filter(|u| !u.is_empty()).unwrap_or(WECHATPAY_BASE_URL).to_string();
    let key = b.merchant_key_pem.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    if let Some(k) = &key {
        if siyu_pay::notify::Signer::from_pkcs8_pem(k).is_err() {
            v.push(
                "merchant_key_pem",
                "invalid_format",
                "the merchant key must be a PKCS#8 PEM private key (apiclient_key.pem)",
            );
        }
    }
    let apiv3 = b.apiv3_key.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    if let Some(k) = &apiv3 {
        if siyu_pay::notify::check_apiv3_key(k).is_err() {
            v.push("apiv3_key", "invalid_format", "the APIv3 key is exactly 32 characters");
        }
    }
    let key_id = b.platform_key_id.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    let pub_pem = b.platform_public_key_pem.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    let mut probe = siyu_pay::notify::Verifier::default();
    match (&key_id, &pub_pem) {
        (Some(_), Some(p)) if !pem_ok(p, "PUBLIC KEY") || probe.add_public_key_pem(key_id.as_deref(), p).is_err() => {
            v.push("platform_public_key_pem", "invalid_format", "the WeChat Pay public key must be a PEM public key")
        }
        (Some(_), None) => {
            v.push("platform_public_key_pem", "required", "give the public key that goes with platform_key_id")
        }
        (None, Some(_)) => v.push("platform_key_id", "required", "give the id (PUB_KEY_ID_…) of the public key"),
        _ => {}
    }
    let certs: Vec<String> = b.platform_certs.iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
    for (i, c) in certs.iter().enumerate() {
        if probe.add_certificate_pem(c).is_err() {
            v.push(
                &format!("platform_certs.{i}"),
                "invalid_format",
                "a platform certificate must be a PEM certificate",
            );
        }
    }
    if key_id.is_none() && certs.is_empty() {
        v.push("platform_key_id", "required", "give the WeChat Pay public key, or platform certificates");
    }
    let app_secret = b.app_secret.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    if app_secret.as_ref().is_some_and(|k| k.len() > 64 || k.contains(char::is_whitespace)) {
        v.push("app_secret", "invalid_format", "the AppSecret is up to 64 characters without spaces");
    }
    let login_base_url = b
        .login_base_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or(siyu_store::commerce::payments::WECHAT_API_BASE)
        .to_string();
    let minutes = b.order_timeout_minutes.unwrap_or(30);
    if !(5..=1440).contains(&minutes) {
        v.push("order_timeout_minutes", "out_of_range", "an unpaid order waits 5 to 1440 minutes");
    }
    v.into_result()?;
    Ok(PaySettingsInput {
        appid,
        mchid,
        merchant_serial: serial,
        merchant_key_pem: key,
        apiv3_key: apiv3,
        platform_key_id: key_id,
        platform_public_key_pem: pub_pem,
        platform_certs: certs,
        base_url,
        notify_base,
        order_timeout_secs: minutes * 60,
        app_secret,
        login_base_url,
    })
}

/// Save the WeChat Pay settings. Keys are checked, then sealed; absent keys keep the stored ones.
#[utoipa::path(put, path = "/api/v1/pay/settings", tag = "orders", request_body = PaySettingsIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PaySettingsOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn put_settings(
    State(s): State<AppState>,
    auth: Auth,
    Json(b): Json<PaySettingsIn>,
) -> ApiResult<axum::Json<PaySettingsOut>> {
    auth.require(Scope::SettingsWrite)?;
    let input = validate(b)?;
    let st = s.store.save_pay_settings(&auth, &input).await?;
    Ok(axum::Json(PaySettingsOut::new(st, auth.tenant_id)))
}

/// The latest payment and refund notifications and what siyu did with each.
#[utoipa::path(get, path = "/api/v1/pay/notifications", tag = "orders", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<PayNotificationOut>), (status = 403, body = Problem)))]
async fn notifications(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<PayNotificationOut>>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.pay_notifications(auth.tenant_id, 200).await?.into_iter().map(Into::into).collect()))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MismatchOut {
    /// unknown_payment, payment_amount, unknown_refund, refund_amount, refund_not_final,
    /// duplicate_line or missing_in_bill.
    pub code: String,
    pub reference: String,
    pub detail: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ReconciliationOut {
    /// The Beijing day of the bill (yyyy-MM-DD).
    pub bill_date: String,
    /// running, matched, unmatched or failed.
    pub status: String,
    pub lines: i64,
    pub matched: i64,
    pub problems: Vec<MismatchOut>,
    pub detail: Option<String>,
    pub updated_at: String,
}

impl From<siyu_store::commerce::reconcile::Reconciliation> for ReconciliationOut {
    fn from(r: siyu_store::commerce::reconcile::Reconciliation) -> Self {
        ReconciliationOut {
            bill_date: r.bill_date,
            status: r.status,
            lines: r.lines,
            matched: r.matched,
            problems: r
                .problems
                .into_iter()
                .map(|m| MismatchOut { code: m.code, reference: m.reference, detail: m.detail })
                .collect(),
            detail: r.detail,
            updated_at: crate::api::dto::ts(r.updated_at),
        }
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"bill_date": "2026-11-22"}))]
pub struct ReconcileIn {
    /// The Beijing day to reconcile, yyyy-MM-DD (WeChat Pay keeps three months of bills).
    pub bill_date: String,
}

/// Checks a bill date: a real day, before today in Beijing.
pub fn bill_date(s: &AppState, v: &str) -> ApiResult<String> {
    let v = v.trim();
    let today = s.store.now().to_rfc3339(8)[..10].to_string();
    match siyu_core::time::parse_day(v) {
        Some(_) if v.len() == 10 && v < today.as_str() => Ok(v.to_string()),
        Some(_) => Err(ApiError::validation("bill_date", "out_of_range", "a day's bill exists from the next day on")),
        None => Err(ApiError::validation("bill_date", "invalid_format", "bill_date is yyyy-MM-DD")),
    }
}

/// The latest bill reconciliations, newest day first, with what did not match.
#[utoipa::path(get, path = "/api/v1/pay/reconciliations", tag = "orders", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<ReconciliationOut>), (status = 403, body = Problem)))]
async fn reconciliations(State(s): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<ReconciliationOut>>> {
    auth.require(Scope::CommerceRead)?;
    Ok(axum::Json(s.store.reconciliations(auth.tenant_id, 90).await?.into_iter().map(Into::into).collect()))
}

/// Reconcile one day's WeChat Pay bill now (again, if it ran before).
#[utoipa::path(post, path = "/api/v1/pay/reconciliations", tag = "orders", request_body = ReconcileIn, security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = ReconciliationOut), (status = 409, description = "Running, or payments not set up", body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)))]
async fn reconcile(
    State(s): State<AppState>,
    auth: Auth,
    Json(b): Json<ReconcileIn>,
) -> ApiResult<axum::Json<ReconciliationOut>> {
    auth.require(Scope::CommerceWrite)?;
    let day = bill_date(&s, &b.bill_date)?;
    match s.pay.reconcile(auth.tenant_id, &day, true).await? {
        Some(r) => Ok(axum::Json(r.into())),
        None => Err(ApiError::Conflict {
            code: "reconciliation_running",
            field: None,
            message: "this day's bill is being reconciled right now".into(),
        }),
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(notifications))
        .routes(routes!(reconciliations, reconcile))
}

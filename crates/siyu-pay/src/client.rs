//! The merchant client for WeChat Pay API v3 (protocols.md §7.7–7.8): JSAPI prepay, order
//! query and close, refunds, and the `wx.requestPayment` parameters.
//!
//! Every request is signed with the merchant key and every 2xx response is verified with the
//! platform keys exactly like a notification: a response that does not verify may come from
//! anyone between us and WeChat Pay, so it is an error, never data. The client holds no state
//! beyond its configuration; retries and reconciliation belong to the caller, which knows
//! which calls are safe to repeat.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::distributions::{Alphanumeric, DistString};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use siyu_core::time::{Clock, Timestamp};

use crate::notify::{self, check_apiv3_key, Headers, Notification, NotifyError, Signer, Verifier, SIGNATURE_TYPE};
use crate::resource::{parse_notice, Notice, RefundInfo, Transaction};

/// WeChat Pay's production API host.
pub const PRODUCTION_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// How long one API call may take before it counts as a transport failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A merchant's credentials and the platform keys it trusts.
#[derive(Clone)]
pub struct MerchantConfig {
    /// `https://api.mch.weixin.qq.com`, or the sandbox's address.
    pub base_url: String,
    pub mchid: String,
    /// The app (mini program or official account) the payer pays in.
    pub appid: String,
    /// The merchant API certificate's serial number, sent as `serial_no`.
    pub merchant_serial: String,
    /// The merchant API private key (from its PKCS#8 PEM).
    pub merchant_key: Signer,
    /// The 32-byte APIv3 key that encrypts notification resources.
    pub apiv3_key: String,
    /// WeChat Pay's public key or platform certificates.
    pub verifier: Verifier,
}

/// The APIv3 key and the private key are secrets: `Debug` names them and no more.
impl fmt::Debug for MerchantConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantConfig")
            .field("base_url", &self.base_url)
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("merchant_serial", &self.merchant_serial)
            .field("merchant_key", &self.merchant_key)
            .field("apiv3_key", &"<redacted>")
            .field("platform_serials", &self.verifier.serials())
            .finish()
    }
}

/// Why a WeChat Pay call failed.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// WeChat Pay refused the call (HTTP 4xx/5xx with `{code, message}`).
    #[error("WeChat Pay refused the call: HTTP {status} {code}: {message}")]
    Api { status: u16, code: String, message: String },
    /// The call did not complete: connection, timeout, or an unreadable body. Whether it took
    /// effect is unknown, so the caller queries before repeating anything with side effects.
    #[error("WeChat Pay could not be reached: {0}")]
    Transport(String),
    /// A 2xx response whose `Wechatpay-*` signature does not verify: treated as forged.
    #[error("WeChat Pay's response failed verification and was discarded: {0}")]
    Signature(NotifyError),
    /// A verified response that is not what the API documents.
    #[error("WeChat Pay's response could not be read: {0}")]
    Decode(String),
    /// The client's configuration is unusable.
    #[error("WeChat Pay configuration: {0}")]
    Config(String),
}

impl PayError {
    /// Whether WeChat Pay answered with this error code (`ORDERPAID`, `SIGN_ERROR`, …).
    pub fn is(&self, code: &str) -> bool {
        matches!(self, PayError::Api { code: c, .. } if c == code)
    }

    /// Whether repeating the same call may succeed: transport failures, `SYSTEM_ERROR` and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            PayError::Transport(_) => true,
            PayError::Api { status, code, .. } => *status >= 500 || code == "SYSTEM_ERROR",
            _ => false,
        }
    }
}

/// A JSAPI (mini program / official account) order to prepay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsapiOrder {
    /// Shown to the payer; at most 127 characters.
    pub description: String,
    /// Our order number: at most 32 of `[0-9A-Za-z_*-]`, unique per merchant.
    pub out_trade_no: String,
    /// After this the order can no longer be paid; sent as RFC 3339 at +08:00, whole seconds.
    pub time_expire: Option<Timestamp>,
    /// Echoed back in queries and notifications; at most 128 characters.
    pub attach: Option<String>,
    /// HTTPS, publicly reachable, without a query string.
    pub notify_url: String,
    pub total_fen: i64,
    /// The payer's openid under `appid`.
    pub openid: String,
}

/// A refund of (part of) a paid order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOrder {
    pub out_trade_no: String,
    /// Refund this transaction rather than the order's: a second payment of one order (a
    /// double payment) is refunded by its own transaction id.
    pub transaction_id: Option<String>,
    /// Our refund number: the same number refunds only once, so a retry cannot refund twice.
    pub out_refund_no: String,
    pub reason: Option<String>,
    pub notify_url: String,
    pub refund_fen: i64,
    /// The original order's total, which WeChat Pay checks.
    pub total_fen: i64,
}

/// What `wx.requestPayment` takes; serialises with the mini program's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayParams {
    pub app_id: String,
    pub time_stamp: String,
    pub nonce_str: String,
    /// `prepay_id=…`
    pub package: String,
    /// Always `RSA`; it is not part of the signed message.
    pub sign_type: String,
    pub pay_sign: String,
}

/// The string a merchant signs for a request (§7.7): `METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n`,
/// with the body's exact bytes (empty for GET; the final newline stays).
pub fn request_message(method: &str, canonical_url: &str, timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{method}\n{canonical_url}\n{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// The `Authorization` header value for a signed request.
pub fn authorization(mchid: &str, nonce: &str, timestamp: i64, serial_no: &str, signature: &str) -> String {
    format!(
        "{SIGNATURE_TYPE} mchid=\"{mchid}\",nonce_str=\"{nonce}\",timestamp=\"{timestamp}\",serial_no=\"{serial_no}\",signature=\"{signature}\""
    )
}

/// The fields of an `Authorization` header, as the receiving side reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub mchid: String,
    pub nonce_str: String,
    pub timestamp: String,
    pub serial_no: String,
    pub signature: String,
}

/// Parses `WECHATPAY2-SHA256-RSA2048 k="v",…`; `None` when the scheme is another or a field
/// is missing.
pub fn parse_authorization(header: &str) -> Option<Authorization> {
    let rest = header.trim().strip_prefix(SIGNATURE_TYPE)?.trim_start();
    let mut fields = std::collections::HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part.split_once('=')?;
        let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
        fields.insert(k.trim(), v.to_string());
    }
    let mut take = |k: &str| fields.remove(k);
    Some(Authorization {
        mchid: take("mchid")?,
        nonce_str: take("nonce_str")?,
        timestamp: take("timestamp")?,
        serial_no: take("serial_no")?,
        signature: take("signature")?,
    })
}

/// The string `paySign` signs: `appId\ntimeStamp\nnonceStr\npackage\n` (`signType` is not signed).
pub fn pay_sign_message(app_id: &str, time_stamp: &str, nonce_str: &str, package: &str) -> String {
    format!("{app_id}\n{time_stamp}\n{nonce_str}\n{package}\n")
}

/// A 32-character alphanumeric nonce, as the SDKs send.
pub(crate) fn nonce32() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// Percent-encodes an id for one path segment, so that an id can never change the path.
pub(crate) fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'*' | b'|' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An RFC 3339 time at +08:00 in whole seconds, the form WeChat Pay writes and accepts.
pub(crate) fn rfc3339_cst(t: Timestamp) -> String {
    Timestamp::from_unix_secs(t.unix_secs()).to_rfc3339(8)
}

#[derive(Deserialize)]
struct ApiErrorBody {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    detail: Option<Value>,
}

/// The merchant's WeChat Pay API v3 client.
#[derive(Clone)]
pub struct PayClient {
    cfg: Arc<MerchantConfig>,
    base: reqwest::Url,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
}

impl fmt::Debug for PayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayClient").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl PayClient {
    /// Checks the configuration (the APIv3 key's length, the base URL) before any call, so a
    /// misconfigured merchant fails at start-up rather than at the first payment.
    pub fn new(cfg: MerchantConfig, clock: Arc<dyn Clock>) -> Result<PayClient, PayError> {
        check_apiv3_key(&cfg.apiv3_key).map_err(|e| PayError::Config(e.to_string()))?;
        let base = reqwest::Url::parse(cfg.base_url.trim_end_matches('/'))
            .map_err(|e| PayError::Config(format!("base_url {:?} is not a URL: {e}", cfg.base_url)))?;
        if cfg.verifier.serials().is_empty() {
            tracing::warn!("WeChat Pay client: the platform key has no serial or id; any Wechatpay-Serial selects it");
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| PayError::Config(format!("HTTP client: {e}")))?;
        Ok(PayClient { cfg: Arc::new(cfg), base, clock, http })
    }

    pub fn config(&self) -> &MerchantConfig {
        &self.cfg
    }

    /// `POST /v3/pay/transactions/jsapi`: returns the `prepay_id`.
    pub async fn jsapi_prepay(&self, order: &JsapiOrder) -> Result<String, PayError> {
        let mut body = json!({
            "appid": self.cfg.appid,
            "mchid": self.cfg.mchid,
            "description": order.description,
            "out_trade_no": order.out_trade_no,
            "notify_url": order.notify_url,
            "amount": {"total": order.total_fen, "currency": "CNY"},
            "payer": {"openid": order.openid},
        });
        if let Some(t) = order.time_expire {
            body["time_expire"] = json!(rfc3339_cst(t));
        }
        if let Some(a) = &order.attach {
            body["attach"] = json!(a);
        }
        #[derive(Deserialize)]
        struct Prepay {
            prepay_id: String,
        }
        let p: Prepay = decode(&self.call(Method::POST, "/v3/pay/transactions/jsapi", Some(&body)).await?)?;
        Ok(p.prepay_id)
    }

    /// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…`
    pub async fn query_order(&self, out_trade_no: &str) -> Result<Transaction, PayError> {
        let path = format!("/v3/pay/transactions/out-trade-no/{}?mchid={}", path_segment(out_trade_no), self.cfg.mchid);
        decode(&self.call(Method::GET, &path, None).await?)
    }

    /// `GET /v3/pay/transactions/id/{transaction_id}?mchid=…`
    pub async fn query_transaction(&self, transaction_id: &str) -> Result<Transaction, PayError> {
        let path = format!("/v3/pay/transactions/id/{}?mchid={}", path_segment(transaction_id), self.cfg.mchid);
        decode(&self.call(Method::GET, &path, None).await?)
    }

    /// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` (204). A paid order
    /// answers `ORDERPAID`: the caller then has a payment to honour or refund.
    pub async fn close_order(&self, out_trade_no: &str) -> Result<(), PayError> {
        let path = format!("/v3/pay/transactions/out-trade-no/{}/close", path_segment(out_trade_no));
        self.call(Method::POST, &path, Some(&json!({"mchid": self.cfg.mchid}))).await?;
        Ok(())
    }

    /// `POST /v3/refund/domestic/refunds`. The answer is usually `PROCESSING`; the outcome
    /// arrives as a `REFUND.*` notification or through [`PayClient::query_refund`].
    pub async fn refund(&self, refund: &RefundOrder) -> Result<RefundInfo, PayError> {
        let mut body = json!({
            "out_refund_no": refund.out_refund_no,
            "notify_url": refund.notify_url,
            "amount": {"refund": refund.refund_fen, "total": refund.total_fen, "currency": "CNY"},
        });
        match &refund.transaction_id {
            Some(t) => body["transaction_id"] = json!(t),
            None => body["out_trade_no"] = json!(refund.out_trade_no),
        }
        if let Some(r) = &refund.reason {
            body["reason"] = json!(r);
        }
        decode(&self.call(Method::POST, "/v3/refund/domestic/refunds", Some(&body)).await?)
    }

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}`
    pub async fn query_refund(&self, out_refund_no: &str) -> Result<RefundInfo, PayError> {
        let path = format!("/v3/refund/domestic/refunds/{}", path_segment(out_refund_no));
        decode(&self.call(Method::GET, &path, None).await?)
    }

    /// The parameters for `wx.requestPayment`, signed with the merchant key now.
    pub fn jsapi_pay_params(&self, prepay_id: &str) -> PayParams {
        let time_stamp = self.clock.now().unix_secs().to_string();
        let nonce_str = nonce32();
        let package = format!("prepay_id={prepay_id}");
        let pay_sign =
            self.cfg.merchant_key.sign(pay_sign_message(&self.cfg.appid, &time_stamp, &nonce_str, &package).as_bytes());
        PayParams { app_id: self.cfg.appid.clone(), time_stamp, nonce_str, package, sign_type: "RSA".into(), pay_sign }
    }

    /// Verifies and decrypts a notification (§7.2–7.3) on the client's clock and reads its
    /// resource. Checking the resource against our order (§7.4) remains the caller's job.
    pub fn open_notification(&self, headers: &Headers, body: &[u8]) -> Result<(Notification, Notice), PayError> {
        let now = self.clock.now().unix_secs();
        let (n, plain) =
            notify::open(&self.cfg.verifier, &self.cfg.apiv3_key, headers, body, now).map_err(PayError::Signature)?;
        let notice = parse_notice(&n, &plain).map_err(PayError::Decode)?;
        Ok((n, notice))
    }

    /// Signs and sends one request; returns the body of a verified 2xx response.
    async fn call(&self, method: Method, path_and_query: &str, body: Option<&Value>) -> Result<Vec<u8>, PayError> {
        let url = self
            .base
            .join(&format!("{}{}", self.base.path().trim_end_matches('/'), path_and_query))
            .map_err(|e| PayError::Config(format!("bad request path {path_and_query:?}: {e}")))?;
        self.send(method, url, body, true).await
    }

    /// Signs and sends one request; `verify` checks the answer's signature (a bill download
    /// is not signed: its hash is checked instead).
    async fn send(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<&Value>,
        verify: bool,
    ) -> Result<Vec<u8>, PayError> {
        // The signature covers the path as the server receives it, so it is read back from the
        // parsed URL rather than from our own string.
        let canonical = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let bytes = match body {
            Some(v) => serde_json::to_vec(v).map_err(|e| PayError::Decode(e.to_string()))?,
            None => Vec::new(),
        };
        let timestamp = self.clock.now().unix_secs();
        let nonce = nonce32();
        let message = request_message(method.as_str(), &canonical, &timestamp.to_string(), &nonce, &bytes);
        let signature = self.cfg.merchant_key.sign(&message);
        let auth = authorization(&self.cfg.mchid, &nonce, timestamp, &self.cfg.merchant_serial, &signature);
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::USER_AGENT, concat!("siyu-pay/", env!("CARGO_PKG_VERSION")));
        if body.is_some() {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes);
        }
        let resp = req.send().await.map_err(|e| PayError::Transport(transport_error(&e)))?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = resp.bytes().await.map_err(|e| PayError::Transport(transport_error(&e)))?.to_vec();
        if !(200..300).contains(&status) {
            return Err(api_error(status, &body, &method, &canonical));
        }
        if verify {
            let h = Headers::from_pairs(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(PayError::Signature)?;
            self.cfg.verifier.verify(&h, &body, self.clock.now().unix_secs()).map_err(PayError::Signature)?;
        }
        Ok(body)
    }

    /// `GET /v3/bill/tradebill?bill_date=…&bill_type=ALL`, then the file at its
    /// `download_url`, whose SHA1 must be the announced one; returns the bill's text.
    pub async fn trade_bill(&self, bill_date: &str) -> Result<String, PayError> {
        #[derive(serde::Deserialize)]
        struct Link {
            hash_type: String,
            hash_value: String,
            download_url: String,
        }
        let path = format!("/v3/bill/tradebill?bill_date={}&bill_type=ALL", path_segment(bill_date));
        let link: Link = decode(&self.call(Method::GET, &path, None).await?)?;
        let url = reqwest::Url::parse(&link.download_url)
            .map_err(|e| PayError::Decode(format!("bad download_url {:?}: {e}", link.download_url)))?;
        let file = self.send(Method::GET, url, None, false).await?;
        use sha1::Digest as _;
        let got = hex::encode(sha1::Sha1::digest(&file));
        if !link.hash_type.eq_ignore_ascii_case("SHA1") || !got.eq_ignore_ascii_case(&link.hash_value) {
            return Err(PayError::Decode(format!(
                "the bill's {} hash is {got}, not the announced {}",
                link.hash_type, link.hash_value
            )));
        }
        String::from_utf8(file).map_err(|e| PayError::Decode(format!("the bill is not UTF-8: {e}")))
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    // reqwest's Display stops at the outermost cause; the useful part ("connection refused")
    // is usually further down.
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn api_error(status: u16, body: &[u8], method: &Method, path: &str) -> PayError {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(e) => {
            if let Some(detail) = &e.detail {
                tracing::debug!(%method, path, status, code = %e.code, %detail, "WeChat Pay error detail");
            }
            PayError::Api { status, code: e.code, message: e.message }
        }
        // A proxy or load balancer in the way answers in its own words: keep a readable excerpt.
        Err(_) => PayError::Api {
            status,
            code: format!("HTTP_{status}"),
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
        },
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, PayError> {
    serde_json::from_slice(body).map_err(|e| PayError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{MERCHANT_KEY_PEM, MERCHANT_PUBLIC_PEM};
    use crate::notify::{public_key_from_pem, verify_rsa};

    #[test]
    fn the_request_message_keeps_the_final_newline_for_an_empty_body() {
        let get = request_message("GET", "/v3/refund/domestic/refunds/R1", "1700000000", "abc", b"");
        assert_eq!(get, b"GET\n/v3/refund/domestic/refunds/R1\n1700000000\nabc\n\n");
        let post = request_message("POST", "/v3/pay/transactions/jsapi", "1", "n", br#"{"a":1}"#);
        assert_eq!(post, b"POST\n/v3/pay/transactions/jsapi\n1\nn\n{\"a\":1}\n");
    }

    #[test]
    fn the_authorization_header_round_trips() {
        let h = authorization("1900000001", "NONCE", 1_554_208_460, "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB", "c2ln");
        assert_eq!(
            h,
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000001\",nonce_str=\"NONCE\",timestamp=\"1554208460\",\
             serial_no=\"408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB\",signature=\"c2ln\""
        );
        let a = parse_authorization(&h).unwrap();
        assert_eq!(
            (a.mchid.as_str(), a.timestamp.as_str(), a.signature.as_str()),
            ("1900000001", "1554208460", "c2ln")
        );
        assert_eq!(parse_authorization("Bearer x"), None);
        assert_eq!(parse_authorization("WECHATPAY2-SHA256-RSA2048 mchid=\"1\""), None, "fields missing");
    }

    #[test]
    fn pay_sign_covers_app_time_nonce_and_package_but_not_sign_type() {
        let signer = Signer::from_pkcs8_pem(MERCHANT_KEY_PEM).unwrap();
        let cfg = MerchantConfig {
            base_url: "http://127.0.0.1:9".into(),
            mchid: "1900000001".into(),
            appid: "wxd678efh567hg6787".into(),
            merchant_serial: "SERIAL".into(),
            merchant_key: signer,
            apiv3_key: crate::fixtures::APIV3_KEY.into(),
            verifier: Verifier::default(),
        };
        let clock = siyu_core::time::ManualClock::at(Timestamp::from_unix_secs(1_414_561_699));
        let client = PayClient::new(cfg, Arc::new(clock)).unwrap();
        let p = client.jsapi_pay_params("wx201410272009395522657a690389285100");
        assert_eq!(
            (p.app_id.as_str(), p.time_stamp.as_str(), p.package.as_str(), p.sign_type.as_str()),
            ("wxd678efh567hg6787", "1414561699", "prepay_id=wx201410272009395522657a690389285100", "RSA")
        );
        assert_eq!(p.nonce_str.len(), 32);
        let key = public_key_from_pem(MERCHANT_PUBLIC_PEM).unwrap();
        let message = format!("wxd678efh567hg6787\n1414561699\n{}\n{}\n", p.nonce_str, p.package);
        assert_eq!(pay_sign_message(&p.app_id, &p.time_stamp, &p.nonce_str, &p.package), message);
        assert_eq!(verify_rsa(&key, message.as_bytes(), &p.pay_sign), Ok(()));
        let with_sign_type = format!("{message}RSA\n");
        assert!(verify_rsa(&key, with_sign_type.as_bytes(), &p.pay_sign).is_err());
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["paySign"], p.pay_sign.as_str());
        assert_eq!(json["signType"], "RSA");
        assert_eq!(json["timeStamp"], "1414561699");
    }

    #[test]
    fn configuration_is_checked_up_front() {
        let cfg = MerchantConfig {
            base_url: "http://127.0.0.1:9".into(),
            mchid: "1".into(),
            appid: "wx".into(),
            merchant_serial: "S".into(),
            merchant_key: Signer::from_pkcs8_pem(MERCHANT_KEY_PEM).unwrap(),
            apiv3_key: "short".into(),
            verifier: Verifier::default(),
        };
        let clock: Arc<dyn Clock> = Arc::new(siyu_core::time::SystemClock);
        let err = PayClient::new(cfg.clone(), clock.clone()).unwrap_err();
        assert!(matches!(err, PayError::Config(_)), "{err}");
        let err = PayClient::new(
            MerchantConfig { apiv3_key: crate::fixtures::APIV3_KEY.into(), base_url: "not a url".into(), ..cfg },
            clock,
        )
        .unwrap_err();
        assert!(err.to_string().contains("base_url"), "{err}");
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        assert_eq!(path_segment("R_1-a*b|c@d"), "R_1-a*b|c@d");
        assert_eq!(path_segment("../x?y#z"), "..%2Fx%3Fy%23z");
        assert_eq!(rfc3339_cst(Timestamp(1_700_000_000_123_456)), "2023-11-15T06:13:20+08:00");
    }

    #[test]
    fn errors_read_well_and_classify() {
        let e = api_error(400, r#"{"code":"ORDERPAID","message":"该订单已支付"}"#.as_bytes(), &Method::POST, "/x");
        assert!(e.is("ORDERPAID") && !e.is_retryable());
        assert_eq!(e.to_string(), "WeChat Pay refused the call: HTTP 400 ORDERPAID: 该订单已支付");
        let e = api_error(502, b"<html>Bad Gateway</html>", &Method::GET, "/x");
        assert!(e.is("HTTP_502") && e.is_retryable());
    }
}

//! The WeChat Pay sandbox: a simulated WeChat Pay that speaks the §7.8 endpoints with real
//! state, for tests and demo mode (protocols.md §9 item 9).
//!
//! It verifies the merchant's request signatures (401 `SIGN_ERROR` otherwise), signs every API
//! response and notification with its own platform key under a public-key id, encrypts
//! notification resources with the APIv3 key, and retries failed deliveries on WeChat Pay's
//! schedule compressed to seconds. Orders move `NOTPAY → SUCCESS` when a test or the cashier
//! page pays them and `NOTPAY → CLOSED` when closed or past `time_expire` on the sandbox clock;
//! refunds move `PROCESSING → SUCCESS` when settled.
//!
//! It must never be mounted in production: anyone who can reach it can "pay" any order. The
//! control methods ([`PaySandbox::pay`], [`PaySandbox::settle_refunds`], …) are what the real
//! service's payer and bank would do; they exist for tests and for the demo console.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use rsa::RsaPublicKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use siyu_core::time::{Clock, Timestamp};

use crate::bill;
use crate::client::{nonce32, parse_authorization, request_message, rfc3339_cst};
use crate::notify::{
    self, public_key_from_pem, verify_rsa, Notification, Resource, Signer, Verifier, SIGNTEST_PREFIX,
    TIMESTAMP_WINDOW_SECS,
};
use crate::resource::{Payer, RefundAmount, RefundInfo, RefundStatus, TradeState, Transaction, TransactionAmount};

/// WeChat Pay's notification retry schedule as commonly quoted (§7.6; **uncertain**, so
/// nothing in siyu may depend on it): the delays before the 2nd, 3rd, … attempts, in seconds.
pub const WECHAT_RETRY_SCHEDULE_SECS: [u64; 15] =
    [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600];

/// How the sandbox retries a notification the merchant did not accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retry at all; when off, only the first attempt is made (tests then call
    /// [`PaySandbox::deliver`] themselves).
    pub enabled: bool,
    /// The real schedule is divided by this. The default, 20 000, runs the whole day-long
    /// schedule in about four seconds, with the first retry after under a millisecond.
    pub compression: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { enabled: true, compression: 20_000 }
    }
}

impl RetryPolicy {
    pub fn disabled() -> Self {
        RetryPolicy { enabled: false, ..RetryPolicy::default() }
    }

    /// The compressed delays before each retry.
    pub fn delays(&self) -> Vec<Duration> {
        if !self.enabled {
            return Vec::new();
        }
        let factor = self.compression.max(1);
        WECHAT_RETRY_SCHEDULE_SECS.iter().map(|s| Duration::from_secs(*s) / factor).collect()
    }
}

/// The simulated merchant account and the sandbox's own key.
#[derive(Clone)]
pub struct SandboxConfig {
    pub mchid: String,
    /// The only appid bound to `mchid`; others get `APPID_MCHID_NOT_MATCH`.
    pub appid: String,
    /// Encrypts notification resources; 32 bytes.
    pub apiv3_key: String,
    /// Verifies the merchant's `Authorization` signatures; if it is wrong or does not parse,
    /// every API call is refused with 401 `SIGN_ERROR`, as WeChat Pay would.
    pub merchant_public_key_pem: String,
    /// The sandbox's platform key: it signs responses and notifications.
    pub platform_key: Signer,
    /// Sent as `Wechatpay-Serial`, e.g. `PUB_KEY_ID_0114232134912410000000000000`.
    pub public_key_id: String,
    /// Shown on the cashier page.
    pub merchant_name: String,
    pub retry: RetryPolicy,
    /// A delivery not answered within this counts as failed (WeChat Pay waits 5 s).
    pub delivery_timeout: Duration,
}

impl SandboxConfig {
    pub fn new(
        mchid: &str,
        appid: &str,
        apiv3_key: &str,
        merchant_public_key_pem: &str,
        platform_key: Signer,
    ) -> SandboxConfig {
        SandboxConfig {
            mchid: mchid.into(),
            appid: appid.into(),
            apiv3_key: apiv3_key.into(),
            merchant_public_key_pem: merchant_public_key_pem.into(),
            platform_key,
            public_key_id: crate::fixtures::PUBLIC_KEY_ID.into(),
            merchant_name: "思域演示商户".into(),
            retry: RetryPolicy::default(),
            delivery_timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("apiv3_key", &"<redacted>")
            .field("platform_key", &self.platform_key)
            .field("public_key_id", &self.public_key_id)
            .field("merchant_name", &self.merchant_name)
            .field("retry", &self.retry)
            .field("delivery_timeout", &self.delivery_timeout)
            .finish_non_exhaustive()
    }
}

/// A notification exactly as sent: its HTTP headers (name, value) and body bytes.
pub type RawNotification = (Vec<(String, String)>, Vec<u8>);

/// One attempt to deliver a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub notification_id: String,
    pub event_type: String,
    pub out_trade_no: String,
    pub out_refund_no: Option<String>,
    pub url: String,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// A `WECHATPAY/SIGNTEST/` probe, which the merchant must refuse.
    pub probe: bool,
    pub at: Timestamp,
    /// The merchant's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why there was no answer (connection refused, timeout, …).
    pub error: Option<String>,
}

impl Delivery {
    /// Whether the merchant accepted it: only the status counts (§7.6).
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// An order as the sandbox holds it, for tests and the demo console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SandboxOrder {
    pub prepay_id: String,
    pub description: String,
    pub notify_url: String,
    pub time_expire: Option<Timestamp>,
    pub transaction: Transaction,
    /// Further successful payments of the same order ([`PaySandbox::pay_again`]).
    pub duplicates: Vec<Transaction>,
}

/// What a prepay request asked for; a repeat must match it exactly to get the same prepay_id.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PrepayRequest {
    description: String,
    time_expire: Option<Timestamp>,
    attach: Option<String>,
    notify_url: String,
    total: i64,
    openid: String,
}

struct OrderRec {
    prepay_id: String,
    request: PrepayRequest,
    tx: Transaction,
    duplicates: Vec<Transaction>,
}

struct RefundRec {
    info: RefundInfo,
    notify_url: Option<String>,
}

#[derive(Default)]
struct Books {
    orders: Vec<OrderRec>,
    by_trade_no: HashMap<String, usize>,
    by_prepay: HashMap<String, usize>,
    by_transaction: HashMap<String, usize>,
    refunds: Vec<RefundRec>,
    by_refund_no: HashMap<String, usize>,
    /// Bill files by download token.
    bills: HashMap<String, String>,
}

impl Books {
    /// The order, with `time_expire` applied first: an unpaid order past it is closed.
    fn order_mut(&mut self, out_trade_no: &str, now: Timestamp) -> Option<&mut OrderRec> {
        let i = *self.by_trade_no.get(out_trade_no)?;
        let o = &mut self.orders[i];
        if o.tx.trade_state == TradeState::NotPay && o.request.time_expire.is_some_and(|t| now >= t) {
            o.tx.trade_state = TradeState::Closed;
            o.tx.trade_state_desc = "订单已关闭".into();
        }
        Some(o)
    }

    /// The transaction with this id: an order's payment or one of its duplicates.
    fn transaction(&self, transaction_id: &str) -> Option<&Transaction> {
        let o = &self.orders[*self.by_transaction.get(transaction_id)?];
        std::iter::once(&o.tx).chain(&o.duplicates).find(|t| t.transaction_id.as_deref() == Some(transaction_id))
    }
}

/// A signed notification as last sent: exactly the bytes and headers a replay needs.
#[derive(Clone, Debug)]
struct Signed {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A notification waiting to be (re)delivered.
#[derive(Clone, Debug)]
struct Outgoing {
    /// `trade:{out_trade_no}` or `refund:{out_refund_no}`: which "last notification" it updates.
    key: String,
    id: String,
    event_type: String,
    out_trade_no: String,
    out_refund_no: Option<String>,
    url: String,
    body: Vec<u8>,
    probe: bool,
}

/// Sends notifications and keeps the delivery log; shared with the retry tasks.
struct Courier {
    http: reqwest::Client,
    signer: Signer,
    serial: String,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    log: Mutex<Vec<Delivery>>,
    last: Mutex<HashMap<String, Signed>>,
}

impl Courier {
    /// One attempt. Each attempt is signed afresh on the sandbox clock, as WeChat Pay signs
    /// each delivery, so a retry long after the first is not refused as expired.
    async fn attempt(&self, n: &Outgoing, attempt: u32) -> Delivery {
        let now = self.clock.now();
        let mut h = self.signer.headers(&self.serial, now.unix_secs(), &nonce32(), &n.body);
        if n.probe {
            h.signature = format!("{SIGNTEST_PREFIX}{}", Alphanumeric.sample_string(&mut rand::thread_rng(), 64));
        }
        let headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Wechatpay-Timestamp".to_string(), h.timestamp),
            ("Wechatpay-Nonce".to_string(), h.nonce),
            ("Wechatpay-Signature".to_string(), h.signature),
            ("Wechatpay-Serial".to_string(), h.serial),
            ("Wechatpay-Signature-Type".to_string(), h.signature_type.unwrap_or_default()),
        ];
        if !n.probe {
            lock(&self.last).insert(n.key.clone(), Signed { headers: headers.clone(), body: n.body.clone() });
        }
        let mut req = self.http.post(&n.url).body(n.body.clone());
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let (status, error) = match req.send().await {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let d = Delivery {
            notification_id: n.id.clone(),
            event_type: n.event_type.clone(),
            out_trade_no: n.out_trade_no.clone(),
            out_refund_no: n.out_refund_no.clone(),
            url: n.url.clone(),
            attempt,
            probe: n.probe,
            at: now,
            status,
            error,
        };
        if !d.accepted() {
            tracing::debug!(id = %n.id, url = %n.url, attempt, ?status, error = ?d.error, "sandbox notification not accepted");
        }
        lock(&self.log).push(d.clone());
        d
    }

    /// The first attempt now; on failure, the retries in a background task.
    async fn send(self: &Arc<Self>, n: Outgoing) -> Delivery {
        let first = self.attempt(&n, 1).await;
        let delays = self.retry.delays();
        if !first.accepted() && !n.probe && !delays.is_empty() {
            let courier = Arc::clone(self);
            tokio::spawn(async move {
                for (i, delay) in delays.into_iter().enumerate() {
                    tokio::time::sleep(delay).await;
                    if courier.attempt(&n, i as u32 + 2).await.accepted() {
                        break;
                    }
                }
            });
        }
        first
    }
}

/// A poisoned lock only means a panic elsewhere mid-update; the sandbox's books are still the
/// best record there is, so it keeps serving rather than cascading the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A refusal in WeChat Pay's shape: HTTP status and `{code, message, detail?}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Option<Value>,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message: message.into(),
            detail: None,
        }
    }

    fn param(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            detail: Some(json!({"field": format!("/{field}"), "location": "body"})),
            ..ApiError::new(400, "PARAM_ERROR", message)
        }
    }

    fn body(&self) -> Value {
        let mut v = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.detail {
            v["detail"] = d.clone();
        }
        v
    }
}

enum Reply {
    Json(StatusCode, Value),
    NoContent,
}

type ApiResult = Result<Reply, ApiError>;

/// The simulated WeChat Pay.
pub struct PaySandbox {
    cfg: SandboxConfig,
    merchant_key: Option<RsaPublicKey>,
    clock: Arc<dyn Clock>,
    books: Mutex<Books>,
    courier: Arc<Courier>,
}

impl fmt::Debug for PaySandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaySandbox").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl PaySandbox {
    /// A sandbox with no orders. A merchant key that does not parse or an APIv3 key of the
    /// wrong length is logged, not refused: the sandbox then fails the way WeChat Pay would
    /// (401 on every call, no notifications), which is what a demo operator needs to see.
    pub fn new(cfg: SandboxConfig, clock: Arc<dyn Clock>) -> Arc<PaySandbox> {
        let merchant_key = match public_key_from_pem(&cfg.merchant_public_key_pem) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!("pay sandbox: merchant public key unusable ({e}); every API call will get SIGN_ERROR");
                None
            }
        };
        if let Err(e) = notify::check_apiv3_key(&cfg.apiv3_key) {
            tracing::warn!("pay sandbox: {e}; notifications cannot be encrypted");
        }
        // Notifications go to the merchant's own server; a proxy from the environment would
        // only get in the way.
        let http = reqwest::Client::builder().timeout(cfg.delivery_timeout).no_proxy().build().unwrap_or_default();
        let courier = Arc::new(Courier {
            http,
            signer: cfg.platform_key.clone(),
            serial: cfg.public_key_id.clone(),
            clock: clock.clone(),
            retry: cfg.retry.clone(),
            log: Mutex::new(Vec::new()),
            last: Mutex::new(HashMap::new()),
        });
        Arc::new(PaySandbox { cfg, merchant_key, clock, books: Mutex::new(Books::default()), courier })
    }

    /// A fresh RSA-2048 platform key and its public key (PEM), for demo mode. Generating takes
    /// seconds in a debug build: tests use [`crate::fixtures`] instead.
    pub fn generate_platform_key() -> (Signer, String) {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        // Generating and encoding a 2048-bit key with the OS RNG fails only if the RNG does,
        // and then nothing cryptographic could work anyway.
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA-2048 key generation");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("an RSA private key encodes as PKCS#8");
        let signer = Signer::from_pkcs8_pem(&pem).expect("a freshly encoded key parses");
        let public = signer.public_key_pem();
        (signer, public)
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.cfg
    }

    /// What a merchant configures to verify this sandbox: its public key under its id.
    pub fn platform_verifier(&self) -> Verifier {
        let mut v = Verifier::default();
        v.add_public_key_pem(Some(&self.cfg.public_key_id), &self.cfg.platform_key.public_key_pem())
            .expect("the sandbox's own key is RSA-2048");
        v
    }

    /// The WeChat Pay API (§7.8) and the cashier page (`/sandbox/cashier`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v3/pay/transactions/jsapi", post(api_prepay))
            .route("/v3/pay/transactions/out-trade-no/{out_trade_no}", get(api_query_by_out_trade_no))
            .route("/v3/pay/transactions/id/{transaction_id}", get(api_query_by_id))
            .route("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", post(api_close))
            .route("/v3/refund/domestic/refunds", post(api_refund))
            .route("/v3/refund/domestic/refunds/{out_refund_no}", get(api_query_refund))
            .route("/v3/bill/tradebill", get(api_trade_bill))
            .route("/v3/billdownload/file", get(api_bill_file))
            .route("/sandbox/cashier", get(cashier_page))
            .route("/sandbox/cashier/pay", post(cashier_pay))
            .with_state(Arc::clone(self))
    }

    /// JSON endpoints for the control methods, to nest wherever a demo console wants them:
    /// `POST /pay/{out_trade_no}`, `/pay-again/{out_trade_no}`, `/deliver/{out_trade_no}`,
    /// `/signtest/{out_trade_no}`, `/settle-refunds`; `GET /orders`, `/refunds`, `/notifications`.
    pub fn control_router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/pay/{out_trade_no}", post(control_pay))
            .route("/pay-again/{out_trade_no}", post(control_pay_again))
            .route("/deliver/{out_trade_no}", post(control_deliver))
            .route("/signtest/{out_trade_no}", post(control_signtest))
            .route("/settle-refunds", post(control_settle_refunds))
            .route("/orders", get(control_orders))
            .route("/refunds", get(|State(sb): State<Arc<PaySandbox>>| async move { Json(sb.refunds()) }))
            .route(
                "/notifications",
                get(|State(sb): State<Arc<PaySandbox>>| async move { Json(sb.notifications_sent()) }),
            )
            .with_state(Arc::clone(self))
    }

    // ---- control methods: what the payer and the bank would do ----

    /// The payer pays: `NOTPAY → SUCCESS` with a fresh transaction id, then the
    /// `TRANSACTION.SUCCESS` notification. Returns after the first delivery attempt, whose
    /// outcome is in [`PaySandbox::notifications_sent`]; retries continue in the background.
    pub async fn pay(&self, out_trade_no: &str) -> Result<Transaction, String> {
        let (tx, outgoing) = {
            let now = self.clock.now();
            let mut books = lock(&self.books);
            let order = books
                .order_mut(out_trade_no, now)
                .ok_or_else(|| format!("ORDER_NOT_EXIST: 订单 {out_trade_no} 不存在"))?;
            match &order.tx.trade_state {
                TradeState::NotPay => {}
                TradeState::Closed => return Err("ORDER_CLOSED: 订单已关闭，不能支付".into()),
                TradeState::Success | TradeState::Refund => return Err("ORDERPAID: 订单已支付".into()),
                other => return Err(format!("INVALID_REQUEST: 订单状态 {other} 不能支付")),
            }
            let tx = self.paid(&order.tx, now);
            let outgoing = self.transaction_notice(&tx, &order.request.notify_url, now)?;
            order.tx = tx.clone();
            let i = books.by_trade_no[out_trade_no];
            books.by_transaction.insert(tx.transaction_id.clone().unwrap_or_default(), i);
            (tx, outgoing)
        };
        self.courier.send(outgoing).await;
        Ok(tx)
    }

    /// [`PaySandbox::pay`] for the order a prepay_id belongs to (the cashier page's path).
    pub async fn pay_by_prepay_id(&self, prepay_id: &str) -> Result<Transaction, String> {
        let out_trade_no = {
            let books = lock(&self.books);
            let i = *books
                .by_prepay
                .get(prepay_id)
                .ok_or_else(|| format!("PREPAY_NOT_EXIST: 预支付交易 {prepay_id} 不存在"))?;
            books.orders[i].tx.out_trade_no.clone()
        };
        self.pay(&out_trade_no).await
    }

    /// A second, distinct successful payment of an already paid order (a double payment, as
    /// when the payer pays twice through two cashier sessions): another transaction id and
    /// another `TRANSACTION.SUCCESS`. The order's own transaction is unchanged; the duplicate
    /// can be queried and refunded by its transaction id.
    pub async fn pay_again(&self, out_trade_no: &str) -> Result<Transaction, String> {
        let (tx, outgoing) = {
            let now = self.clock.now();
            let mut books = lock(&self.books);
            let order = books
                .order_mut(out_trade_no, now)
                .ok_or_else(|| format!("ORDER_NOT_EXIST: 订单 {out_trade_no} 不存在"))?;
            if !matches!(order.tx.trade_state, TradeState::Success | TradeState::Refund) {
                return Err(format!("INVALID_REQUEST: 订单 {out_trade_no} 尚未支付，无法重复支付"));
            }
            let mut unpaid = order.tx.clone();
            unpaid.trade_state = TradeState::NotPay;
            let tx = self.paid(&unpaid, now);
            let outgoing = self.transaction_notice(&tx, &order.request.notify_url, now)?;
            order.duplicates.push(tx.clone());
            let i = books.by_trade_no[out_trade_no];
            books.by_transaction.insert(tx.transaction_id.clone().unwrap_or_default(), i);
            (tx, outgoing)
        };
        self.courier.send(outgoing).await;
        Ok(tx)
    }

    /// The last notification signed for an order (headers and exact body bytes), so a test
    /// can replay it as often as it likes.
    pub fn notification(&self, out_trade_no: &str) -> Option<RawNotification> {
        lock(&self.courier.last).get(&format!("trade:{out_trade_no}")).map(|s| (s.headers.clone(), s.body.clone()))
    }

    /// The last notification signed for a refund.
    pub fn refund_notification(&self, out_refund_no: &str) -> Option<RawNotification> {
        lock(&self.courier.last).get(&format!("refund:{out_refund_no}")).map(|s| (s.headers.clone(), s.body.clone()))
    }

    /// Sends the order's last notification once more (same id and body, signed anew), without
    /// retries.
    pub async fn deliver(&self, out_trade_no: &str) -> Result<Delivery, String> {
        let outgoing = self.last_outgoing(out_trade_no)?;
        let attempt = self.attempts_of(&outgoing.id) + 1;
        Ok(self.courier.attempt(&outgoing, attempt).await)
    }

    /// Sends a `WECHATPAY/SIGNTEST/` probe carrying the order's current transaction; the
    /// merchant must refuse it.
    pub async fn signtest_probe(&self, out_trade_no: &str) -> Result<Delivery, String> {
        let outgoing = {
            let now = self.clock.now();
            let mut books = lock(&self.books);
            let order = books
                .order_mut(out_trade_no, now)
                .ok_or_else(|| format!("ORDER_NOT_EXIST: 订单 {out_trade_no} 不存在"))?;
            let mut o = self.transaction_notice(&order.tx, &order.request.notify_url, now)?;
            o.probe = true;
            o
        };
        Ok(self.courier.attempt(&outgoing, 1).await)
    }

    /// The bank completes one refund: `PROCESSING → SUCCESS` and a `REFUND.SUCCESS`
    /// notification if the refund named a notify_url.
    pub async fn settle_refund(&self, out_refund_no: &str) -> Result<RefundInfo, String> {
        let (info, outgoing) = {
            let now = self.clock.now();
            let mut books = lock(&self.books);
            let i = *books
                .by_refund_no
                .get(out_refund_no)
                .ok_or_else(|| format!("RESOURCE_NOT_EXISTS: 退款单 {out_refund_no} 不存在"))?;
            let rec = &mut books.refunds[i];
            if rec.info.status != RefundStatus::Processing {
                return Err(format!("INVALID_REQUEST: 退款单状态为 {}，不是 PROCESSING", rec.info.status));
            }
            let mut info = rec.info.clone();
            info.status = RefundStatus::Success;
            info.success_time = Some(rfc3339_cst(now));
            let outgoing = match &rec.notify_url {
                Some(url) => Some(self.refund_notice(&info, url, now)?),
                None => None,
            };
            rec.info = info.clone();
            (info, outgoing)
        };
        if let Some(o) = outgoing {
            self.courier.send(o).await;
        }
        Ok(info)
    }

    /// Settles every `PROCESSING` refund; returns them as settled.
    pub async fn settle_refunds(&self) -> Vec<RefundInfo> {
        let pending: Vec<String> = lock(&self.books)
            .refunds
            .iter()
            .filter(|r| r.info.status == RefundStatus::Processing)
            .map(|r| r.info.out_refund_no.clone())
            .collect();
        let mut settled = Vec::with_capacity(pending.len());
        for no in pending {
            if let Ok(info) = self.settle_refund(&no).await {
                settled.push(info);
            }
        }
        settled
    }

    // ---- inspection ----

    /// Every transaction: each order's, then its duplicates, in order of creation.
    pub fn transactions(&self) -> Vec<Transaction> {
        let now = self.clock.now();
        let mut books = lock(&self.books);
        let nos: Vec<String> = books.orders.iter().map(|o| o.tx.out_trade_no.clone()).collect();
        let mut out = Vec::new();
        for no in nos {
            if let Some(o) = books.order_mut(&no, now) {
                out.push(o.tx.clone());
                out.extend(o.duplicates.iter().cloned());
            }
        }
        out
    }

    pub fn order(&self, out_trade_no: &str) -> Option<SandboxOrder> {
        let now = self.clock.now();
        let mut books = lock(&self.books);
        books.order_mut(out_trade_no, now).map(|o| SandboxOrder {
            prepay_id: o.prepay_id.clone(),
            description: o.request.description.clone(),
            notify_url: o.request.notify_url.clone(),
            time_expire: o.request.time_expire,
            transaction: o.tx.clone(),
            duplicates: o.duplicates.clone(),
        })
    }

    pub fn orders(&self) -> Vec<SandboxOrder> {
        let nos: Vec<String> = lock(&self.books).orders.iter().map(|o| o.tx.out_trade_no.clone()).collect();
        nos.iter().filter_map(|no| self.order(no)).collect()
    }

    pub fn refunds(&self) -> Vec<RefundInfo> {
        lock(&self.books).refunds.iter().map(|r| r.info.clone()).collect()
    }

    /// Every delivery attempt so far, in order, with the status the merchant answered.
    pub fn notifications_sent(&self) -> Vec<Delivery> {
        lock(&self.courier.log).clone()
    }

    // ---- internals ----

    fn attempts_of(&self, notification_id: &str) -> u32 {
        lock(&self.courier.log).iter().filter(|d| d.notification_id == notification_id && !d.probe).count() as u32
    }

    /// Rebuilds the outgoing form of an order's last notification from its stored body.
    fn last_outgoing(&self, out_trade_no: &str) -> Result<Outgoing, String> {
        let key = format!("trade:{out_trade_no}");
        let body = lock(&self.courier.last).get(&key).map(|s| s.body.clone());
        let body = body.ok_or_else(|| format!("订单 {out_trade_no} 还没有发出过通知"))?;
        let n: Notification = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let url = self.order(out_trade_no).map(|o| o.notify_url).unwrap_or_default();
        Ok(Outgoing {
            key,
            id: n.id,
            event_type: n.event_type,
            out_trade_no: out_trade_no.into(),
            out_refund_no: None,
            url,
            body,
            probe: false,
        })
    }

    /// A NOTPAY transaction, paid now.
    fn paid(&self, unpaid: &Transaction, now: Timestamp) -> Transaction {
        let mut tx = unpaid.clone();
        tx.transaction_id = Some(format!("4200{}{}", local_digits(now, 8), random_digits(16)));
        tx.trade_type = Some("JSAPI".into());
        tx.trade_state = TradeState::Success;
        tx.trade_state_desc = "支付成功".into();
        tx.bank_type = Some("OTHERS".into());
        tx.success_time = Some(rfc3339_cst(now));
        tx.amount.payer_total = Some(tx.amount.total);
        tx.amount.payer_currency = Some("CNY".into());
        tx
    }

    fn transaction_notice(&self, tx: &Transaction, url: &str, now: Timestamp) -> Result<Outgoing, String> {
        let plain = serde_json::to_vec(tx).map_err(|e| e.to_string())?;
        let body = self.notification_body("TRANSACTION.SUCCESS", "支付成功", "transaction", &plain, now)?;
        Ok(Outgoing {
            key: format!("trade:{}", tx.out_trade_no),
            id: body.0,
            event_type: "TRANSACTION.SUCCESS".into(),
            out_trade_no: tx.out_trade_no.clone(),
            out_refund_no: None,
            url: url.into(),
            body: body.1,
            probe: false,
        })
    }

    fn refund_notice(&self, r: &RefundInfo, url: &str, now: Timestamp) -> Result<Outgoing, String> {
        // The notification resource (§7.5) differs from the query answer: `refund_status`, and
        // the merchant id.
        let plain = json!({
            "mchid": self.cfg.mchid,
            "out_trade_no": r.out_trade_no,
            "transaction_id": r.transaction_id,
            "out_refund_no": r.out_refund_no,
            "refund_id": r.refund_id,
            "refund_status": r.status.as_str(),
            "success_time": r.success_time,
            "user_received_account": r.user_received_account,
            "amount": {
                "total": r.amount.total,
                "refund": r.amount.refund,
                "payer_total": r.amount.payer_total,
                "payer_refund": r.amount.payer_refund,
            },
        });
        let plain = serde_json::to_vec(&plain).map_err(|e| e.to_string())?;
        let event = format!("REFUND.{}", r.status);
        let summary = if r.status == RefundStatus::Success { "退款成功" } else { "退款异常" };
        let body = self.notification_body(&event, summary, "refund", &plain, now)?;
        Ok(Outgoing {
            key: format!("refund:{}", r.out_refund_no),
            id: body.0,
            event_type: event,
            out_trade_no: r.out_trade_no.clone(),
            out_refund_no: Some(r.out_refund_no.clone()),
            url: url.into(),
            body: body.1,
            probe: false,
        })
    }

    /// The §7.3 notification body around an encrypted resource; returns (id, bytes).
    fn notification_body(
        &self,
        event_type: &str,
        summary: &str,
        original_type: &str,
        plaintext: &[u8],
        now: Timestamp,
    ) -> Result<(String, Vec<u8>), String> {
        let nonce = Alphanumeric.sample_string(&mut rand::thread_rng(), 12);
        let ciphertext = notify::encrypt(&self.cfg.apiv3_key, &nonce, original_type, plaintext)
            .map_err(|e| format!("SYSTEM_ERROR: 通知加密失败：{e}"))?;
        let n = Notification {
            id: format!("EV-{}", random_digits(19)),
            create_time: rfc3339_cst(now),
            resource_type: "encrypt-resource".into(),
            event_type: event_type.into(),
            summary: summary.into(),
            resource: Resource {
                original_type: original_type.into(),
                algorithm: "AEAD_AES_256_GCM".into(),
                ciphertext,
                associated_data: Some(original_type.into()),
                nonce,
            },
        };
        let body = serde_json::to_vec(&n).map_err(|e| e.to_string())?;
        Ok((n.id, body))
    }

    /// Verifies the merchant's `Authorization` (§7.7) over the request exactly as received.
    fn authenticate(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
        let refuse = |m: &str| ApiError::new(401, "SIGN_ERROR", m);
        let key = self.merchant_key.as_ref().ok_or_else(|| refuse("商户公钥未配置，无法验证签名"))?;
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_authorization)
            .ok_or_else(|| refuse("Authorization 头缺失或格式错误"))?;
        if auth.mchid != self.cfg.mchid {
            return Err(refuse("Authorization 中的商户号与证书不匹配"));
        }
        let ts: i64 = auth.timestamp.parse().map_err(|_| refuse("timestamp 不是 Unix 秒"))?;
        if (self.clock.now().unix_secs() - ts).abs() >= TIMESTAMP_WINDOW_SECS {
            return Err(refuse("请求时间戳与当前时间相差过大"));
        }
        let canonical = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let message = request_message(method.as_str(), canonical, &auth.timestamp, &auth.nonce_str, body);
        verify_rsa(key, &message, &auth.signature).map_err(|_| refuse("签名错误，请检查后再试"))
    }

    /// Signs a reply as WeChat Pay does: `Wechatpay-*` headers over the exact body bytes, on
    /// errors as well as successes.
    fn respond(&self, result: ApiResult) -> Response {
        let (status, body) = match result {
            Ok(Reply::Json(status, v)) => (status, serde_json::to_vec(&v).unwrap_or_default()),
            Ok(Reply::NoContent) => (StatusCode::NO_CONTENT, Vec::new()),
            Err(e) => (e.status, serde_json::to_vec(&e.body()).unwrap_or_default()),
        };
        let h = self.cfg.platform_key.headers(&self.cfg.public_key_id, self.clock.now().unix_secs(), &nonce32(), &body);
        let mut resp = (status, body.clone()).into_response();
        let hs = resp.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                hs.insert(name, v);
            }
        };
        set("wechatpay-timestamp", &h.timestamp);
        set("wechatpay-nonce", &h.nonce);
        set("wechatpay-signature", &h.signature);
        set("wechatpay-serial", &h.serial);
        set("wechatpay-signature-type", h.signature_type.as_deref().unwrap_or_default());
        set("request-id", &format!("SANDBOX-{}", random_digits(20)));
        if !body.is_empty() {
            set("content-type", "application/json");
        }
        resp
    }

    fn check_query_mchid(&self, q: &MchidQuery) -> Result<(), ApiError> {
        match q.mchid.as_deref() {
            None | Some("") => Err(ApiError::new(400, "PARAM_ERROR", "缺少参数 mchid")),
            Some(m) if m != self.cfg.mchid => Err(ApiError::new(400, "PARAM_ERROR", "mchid 与请求商户不一致")),
            Some(_) => Ok(()),
        }
    }

    fn prepay(&self, body: &[u8]) -> ApiResult {
        let req: PrepayBody = parse_body(body)?;
        let appid = required("appid", req.appid)?;
        let mchid = required("mchid", req.mchid)?;
        let description = required("description", req.description)?;
        let out_trade_no = required("out_trade_no", req.out_trade_no)?;
        let notify_url = required("notify_url", req.notify_url)?;
        let amount = req.amount.ok_or_else(|| ApiError::param("amount", "缺少必填字段 amount"))?;
        let total = amount.total.ok_or_else(|| ApiError::param("amount/total", "缺少必填字段 amount.total"))?;
        let openid = required("payer/openid", req.payer.and_then(|p| p.openid))?;
        if mchid != self.cfg.mchid {
            return Err(ApiError::new(400, "PARAM_ERROR", "mchid 与 Authorization 中的商户号不一致"));
        }
        if appid != self.cfg.appid {
            return Err(ApiError::new(400, "APPID_MCHID_NOT_MATCH", "appid 和 mchid 不匹配"));
        }
        if description.chars().count() > 127 {
            return Err(ApiError::param("description", "description 超过 127 个字符"));
        }
        if out_trade_no.len() > 32 || !out_trade_no.bytes().all(|b| b.is_ascii_alphanumeric() || b"_*-".contains(&b)) {
            return Err(ApiError::param("out_trade_no", "out_trade_no 须为不超过 32 位的数字、字母、_、-、*"));
        }
        if req.attach.as_ref().is_some_and(|a| a.chars().count() > 128) {
            return Err(ApiError::param("attach", "attach 超过 128 个字符"));
        }
        if !(notify_url.starts_with("https://") || notify_url.starts_with("http://")) || notify_url.contains('?') {
            return Err(ApiError::param("notify_url", "notify_url 须为不带查询参数的 http(s) 地址"));
        }
        if total < 1 {
            return Err(ApiError::param("amount/total", "amount.total 须至少为 1 分"));
        }
        if amount.currency.as_deref().is_some_and(|c| c != "CNY") {
            return Err(ApiError::param("amount/currency", "仅支持 CNY"));
        }
        let time_expire = match req.time_expire.as_deref() {
            None => None,
            Some(s) => Some(
                Timestamp::parse_rfc3339(s)
                    .ok_or_else(|| ApiError::param("time_expire", "time_expire 须为 RFC 3339 时间"))?,
            ),
        };
        let request = PrepayRequest { description, time_expire, attach: req.attach, notify_url, total, openid };

        let now = self.clock.now();
        let mut books = lock(&self.books);
        if let Some(o) = books.order_mut(&out_trade_no, now) {
            return match o.tx.trade_state {
                TradeState::Success | TradeState::Refund => Err(ApiError::new(400, "ORDERPAID", "该订单已支付")),
                TradeState::Closed => Err(ApiError::new(400, "ORDER_CLOSED", "该订单已关闭")),
                _ if o.request != request => {
                    Err(ApiError::new(400, "OUT_TRADE_NO_USED", "商户订单号重复：同一订单号的请求参数不一致"))
                }
                _ => Ok(Reply::Json(StatusCode::OK, json!({"prepay_id": o.prepay_id}))),
            };
        }
        let prepay_id = format!("wx{}{}", local_digits(now, 14), random_hex(20));
        let tx = Transaction {
            appid: self.cfg.appid.clone(),
            mchid: self.cfg.mchid.clone(),
            out_trade_no: out_trade_no.clone(),
            transaction_id: None,
            trade_type: None,
            trade_state: TradeState::NotPay,
            trade_state_desc: "订单未支付".into(),
            bank_type: None,
            attach: request.attach.clone(),
            success_time: None,
            payer: Some(Payer { openid: request.openid.clone() }),
            amount: TransactionAmount { total, payer_total: None, currency: "CNY".into(), payer_currency: None },
            scene_info: None,
            promotion_detail: Vec::new(),
        };
        let i = books.orders.len();
        books.orders.push(OrderRec { prepay_id: prepay_id.clone(), request, tx, duplicates: Vec::new() });
        books.by_trade_no.insert(out_trade_no, i);
        books.by_prepay.insert(prepay_id.clone(), i);
        Ok(Reply::Json(StatusCode::OK, json!({ "prepay_id": prepay_id })))
    }

    fn query_by_out_trade_no(&self, out_trade_no: &str) -> ApiResult {
        let now = self.clock.now();
        let mut books = lock(&self.books);
        let o =
            books.order_mut(out_trade_no, now).ok_or_else(|| ApiError::new(404, "ORDER_NOT_EXIST", "订单不存在"))?;
        Ok(Reply::Json(StatusCode::OK, serde_json::to_value(&o.tx).unwrap_or_default()))
    }

    fn query_by_id(&self, transaction_id: &str) -> ApiResult {
        let books = lock(&self.books);
        let tx =
            books.transaction(transaction_id).ok_or_else(|| ApiError::new(404, "ORDER_NOT_EXIST", "订单不存在"))?;
        Ok(Reply::Json(StatusCode::OK, serde_json::to_value(tx).unwrap_or_default()))
    }

    fn close(&self, out_trade_no: &str, body: &[u8]) -> ApiResult {
        let req: MchidQuery = parse_body(body)?;
        self.check_query_mchid(&req)?;
        let now = self.clock.now();
        let mut books = lock(&self.books);
        let o =
            books.order_mut(out_trade_no, now).ok_or_else(|| ApiError::new(404, "ORDER_NOT_EXIST", "订单不存在"))?;
        match o.tx.trade_state {
            TradeState::Success | TradeState::Refund => Err(ApiError::new(400, "ORDERPAID", "订单已支付，不能关闭")),
            _ => {
                o.tx.trade_state = TradeState::Closed;
                o.tx.trade_state_desc = "订单已关闭".into();
                Ok(Reply::NoContent)
            }
        }
    }

    fn refund(&self, body: &[u8]) -> ApiResult {
        let req: RefundBody = parse_body(body)?;
        let out_refund_no = required("out_refund_no", req.out_refund_no)?;
        if out_refund_no.len() > 64
            || !out_refund_no.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
        {
            return Err(ApiError::param("out_refund_no", "out_refund_no 须为不超过 64 位的数字、字母、_-|*@"));
        }
        let amount = req.amount.ok_or_else(|| ApiError::param("amount", "缺少必填字段 amount"))?;
        let refund = amount.refund.ok_or_else(|| ApiError::param("amount/refund", "缺少必填字段 amount.refund"))?;
        let total = amount.total.ok_or_else(|| ApiError::param("amount/total", "缺少必填字段 amount.total"))?;
        if amount.currency.as_deref().is_some_and(|c| c != "CNY") {
            return Err(ApiError::param("amount/currency", "仅支持 CNY"));
        }
        if req.reason.as_ref().is_some_and(|r| r.chars().count() > 80) {
            return Err(ApiError::param("reason", "reason 超过 80 个字符"));
        }
        let now = self.clock.now();
        let mut books = lock(&self.books);
        // The same out_refund_no refunds once: a repeat gets the refund it already made.
        if let Some(&i) = books.by_refund_no.get(&out_refund_no) {
            let info = &books.refunds[i].info;
            return Ok(Reply::Json(StatusCode::OK, serde_json::to_value(info).unwrap_or_default()));
        }
        let tx = match (&req.transaction_id, &req.out_trade_no) {
            (Some(id), _) => books.transaction(id).cloned(),
            (None, Some(no)) => books.order_mut(no, now).map(|o| o.tx.clone()),
            (None, None) => return Err(ApiError::param("out_trade_no", "transaction_id 与 out_trade_no 须填其一")),
        }
        .ok_or_else(|| ApiError::new(404, "RESOURCE_NOT_EXISTS", "订单不存在"))?;
        let transaction_id = match (&tx.trade_state, &tx.transaction_id) {
            (TradeState::Success | TradeState::Refund, Some(id)) => id.clone(),
            _ => return Err(ApiError::new(400, "INVALID_REQUEST", "订单未支付，不能退款")),
        };
        if total != tx.amount.total {
            return Err(ApiError::param("amount/total", "amount.total 与原订单金额不一致"));
        }
        if refund < 1 {
            return Err(ApiError::param("amount/refund", "amount.refund 须至少为 1 分"));
        }
        let refunded: i64 = books
            .refunds
            .iter()
            .filter(|r| r.info.transaction_id == transaction_id)
            .filter(|r| !matches!(r.info.status, RefundStatus::Closed | RefundStatus::Abnormal))
            .map(|r| r.info.amount.refund)
            .sum();
        if refunded + refund > total {
            return Err(ApiError::param(
                "amount/refund",
                format!("申请退款金额超过订单可退金额：已退 {refunded} 分，可退 {} 分", total - refunded),
            ));
        }
        let info = RefundInfo {
            refund_id: format!("50{}", random_digits(27)),
            out_refund_no: out_refund_no.clone(),
            transaction_id: transaction_id.clone(),
            out_trade_no: tx.out_trade_no.clone(),
            mchid: None,
            channel: Some("ORIGINAL".into()),
            user_received_account: Some("支付用户零钱".into()),
            success_time: None,
            create_time: Some(rfc3339_cst(now)),
            status: RefundStatus::Processing,
            amount: RefundAmount {
                total,
                refund,
                payer_total: tx.amount.payer_total.unwrap_or(total),
                payer_refund: refund,
                currency: Some("CNY".into()),
            },
        };
        let i = books.refunds.len();
        books.refunds.push(RefundRec { info: info.clone(), notify_url: req.notify_url });
        books.by_refund_no.insert(out_refund_no, i);
        // WeChat Pay shows a refunded order as REFUND ("转入退款") from the first refund on.
        if let Some(o) = books.order_mut(&tx.out_trade_no, now) {
            if o.tx.transaction_id.as_deref() == Some(transaction_id.as_str()) {
                o.tx.trade_state = TradeState::Refund;
                o.tx.trade_state_desc = "转入退款".into();
            }
        }
        Ok(Reply::Json(StatusCode::OK, serde_json::to_value(&info).unwrap_or_default()))
    }

    fn query_refund(&self, out_refund_no: &str) -> ApiResult {
        let books = lock(&self.books);
        let i = *books
            .by_refund_no
            .get(out_refund_no)
            .ok_or_else(|| ApiError::new(404, "RESOURCE_NOT_EXISTS", "退款单不存在"))?;
        Ok(Reply::Json(StatusCode::OK, serde_json::to_value(&books.refunds[i].info).unwrap_or_default()))
    }
}

// ---- request bodies ----

#[derive(Deserialize, Default)]
struct MchidQuery {
    mchid: Option<String>,
}

#[derive(Deserialize)]
struct PrepayBody {
    appid: Option<String>,
    mchid: Option<String>,
    description: Option<String>,
    out_trade_no: Option<String>,
    time_expire: Option<String>,
    attach: Option<String>,
    notify_url: Option<String>,
    amount: Option<AmountIn>,
    payer: Option<PayerIn>,
}

#[derive(Deserialize)]
struct AmountIn {
    total: Option<i64>,
    refund: Option<i64>,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct PayerIn {
    openid: Option<String>,
}

#[derive(Deserialize)]
struct RefundBody {
    transaction_id: Option<String>,
    out_trade_no: Option<String>,
    out_refund_no: Option<String>,
    reason: Option<String>,
    notify_url: Option<String>,
    amount: Option<AmountIn>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(400, "PARAM_ERROR", format!("请求体不是合法的 JSON：{e}")))
}

fn required(field: &str, value: Option<String>) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::param(field, format!("缺少必填字段 {}", field.replace('/', "."))))
}

// ---- ids ----

fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

fn random_hex(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0')).collect()
}

/// The first `n` digits of `YYYYMMDDHHMMSS` at +08:00, as WeChat Pay's ids begin.
fn local_digits(t: Timestamp, n: usize) -> String {
    t.display_local(8).chars().filter(char::is_ascii_digit).take(n).collect()
}

// ---- API handlers: authenticate first, then act, then sign whatever the answer is ----

async fn api_prepay(
    State(sb): State<Arc<PaySandbox>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sb.respond(sb.authenticate(&method, &uri, &headers, &body).and_then(|()| sb.prepay(&body)))
}

async fn api_query_by_out_trade_no(
    State(sb): State<Arc<PaySandbox>>,
    Path(out_trade_no): Path<String>,
    Query(q): Query<MchidQuery>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = sb
        .authenticate(&method, &uri, &headers, &body)
        .and_then(|()| sb.check_query_mchid(&q))
        .and_then(|()| sb.query_by_out_trade_no(&out_trade_no));
    sb.respond(r)
}

async fn api_query_by_id(
    State(sb): State<Arc<PaySandbox>>,
    Path(transaction_id): Path<String>,
    Query(q): Query<MchidQuery>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = sb
        .authenticate(&method, &uri, &headers, &body)
        .and_then(|()| sb.check_query_mchid(&q))
        .and_then(|()| sb.query_by_id(&transaction_id));
    sb.respond(r)
}

async fn api_close(
    State(sb): State<Arc<PaySandbox>>,
    Path(out_trade_no): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sb.respond(sb.authenticate(&method, &uri, &headers, &body).and_then(|()| sb.close(&out_trade_no, &body)))
}

async fn api_refund(
    State(sb): State<Arc<PaySandbox>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sb.respond(sb.authenticate(&method, &uri, &headers, &body).and_then(|()| sb.refund(&body)))
}

async fn api_query_refund(
    State(sb): State<Arc<PaySandbox>>,
    Path(out_refund_no): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sb.respond(sb.authenticate(&method, &uri, &headers, &body).and_then(|()| sb.query_refund(&out_refund_no)))
}

#[derive(Deserialize)]
struct BillQuery {
    bill_date: String,
    #[serde(default)]
    bill_type: Option<String>,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: String,
}

impl PaySandbox {
    /// The ALL bill of one Beijing day: every successful payment (duplicates included) and
    /// every successful refund whose success time falls on it.
    pub fn bill(&self, bill_date: &str) -> String {
        let books = lock(&self.books);
        let on_day = |t: &Option<String>| t.as_deref().is_some_and(|t| t.get(..10) == Some(bill_date));
        let time =
            |t: &Option<String>| t.as_deref().unwrap_or_default().replacen('T', " ", 1).chars().take(19).collect();
        let mut lines = Vec::new();
        for o in &books.orders {
            for tx in std::iter::once(&o.tx).chain(&o.duplicates) {
                if tx.transaction_id.is_some() && on_day(&tx.success_time) {
                    lines.push(bill::BillLine {
                        kind: bill::BillKind::Payment,
                        time: time(&tx.success_time),
                        appid: tx.appid.clone(),
                        mchid: tx.mchid.clone(),
                        transaction_id: tx.transaction_id.clone().unwrap_or_default(),
                        out_trade_no: tx.out_trade_no.clone(),
                        openid: tx.payer.as_ref().map(|p| p.openid.clone()).unwrap_or_default(),
                        amount_fen: tx.amount.total,
                        refund_id: String::new(),
                        out_refund_no: String::new(),
                        refund_fen: 0,
                        description: o.request.description.clone(),
                    });
                }
            }
        }
        for r in &books.refunds {
            let i = &r.info;
            if i.status == RefundStatus::Success && on_day(&i.success_time) {
                lines.push(bill::BillLine {
                    kind: bill::BillKind::Refund,
                    time: time(&i.success_time),
                    appid: self.cfg.appid.clone(),
                    mchid: self.cfg.mchid.clone(),
                    transaction_id: i.transaction_id.clone(),
                    out_trade_no: i.out_trade_no.clone(),
                    openid: String::new(),
                    amount_fen: i.amount.total,
                    refund_id: i.refund_id.clone(),
                    out_refund_no: i.out_refund_no.clone(),
                    refund_fen: i.amount.refund,
                    description: String::new(),
                });
            }
        }
        lines.sort_by(|a, b| a.time.cmp(&b.time));
        bill::render(&lines)
    }

    fn trade_bill(&self, q: &BillQuery, uri: &Uri, headers: &HeaderMap) -> ApiResult {
        let valid = q.bill_date.len() == 10
            && q.bill_date
                .bytes()
                .enumerate()
                .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        if !valid {
            return Err(ApiError::new(400, "PARAM_ERROR", "bill_date 格式应为 yyyy-MM-DD"));
        }
        if q.bill_type.as_deref().is_some_and(|t| t != "ALL") {
            return Err(ApiError::new(400, "PARAM_ERROR", "沙箱仅支持 bill_type=ALL"));
        }
        let text = self.bill(&q.bill_date);
        use sha1::Digest as _;
        let hash = hex::encode(sha1::Sha1::digest(text.as_bytes()));
        let token = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
        lock(&self.books).bills.insert(token.clone(), text);
        // The file is served beside this endpoint, wherever the sandbox is mounted.
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
        let prefix = uri.path().strip_suffix("/v3/bill/tradebill").unwrap_or("");
        Ok(Reply::Json(
            StatusCode::OK,
            json!({"hash_type": "SHA1", "hash_value": hash,
                "download_url": format!("http://{host}{prefix}/v3/billdownload/file?token={token}")}),
        ))
    }
}

async fn api_trade_bill(
    State(sb): State<Arc<PaySandbox>>,
    Query(q): Query<BillQuery>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sb.respond(sb.authenticate(&method, &uri, &headers, &body).and_then(|()| sb.trade_bill(&q, &uri, &headers)))
}

/// The bill file: plain bytes, unsigned (the client checks the announced hash).
async fn api_bill_file(
    State(sb): State<Arc<PaySandbox>>,
    Query(q): Query<TokenQuery>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = sb.authenticate(&method, &uri, &headers, &body) {
        return sb.respond(Err(e));
    }
    match lock(&sb.books).bills.get(&q.token) {
        Some(text) => ([(header::CONTENT_TYPE, "application/octet-stream")], text.clone()).into_response(),
        None => sb.respond(Err(ApiError::new(404, "RESOURCE_NOT_EXISTS", "账单文件不存在或已过期"))),
    }
}

// ---- the cashier page (H5 flow) ----

#[derive(Deserialize)]
struct CashierQuery {
    prepay_id: String,
    #[serde(default)]
    return_url: String,
}

/// Escapes text for HTML content and double-quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fen as yuan, `¥12.34`, in integers only.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}¥{}.{:02}", abs / 100, abs % 100)
}

/// Only a relative path or a URL on the host that served the page: anything else would turn
/// the cashier into an open redirect.
fn safe_return_url(url: &str, host: Option<&str>) -> Option<String> {
    let url = url.trim();
    if url.is_empty() || url.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    if url.starts_with('/') && !url.starts_with("//") {
        return Some(url.to_string());
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let authority = match parsed.port() {
        Some(p) => format!("{}:{p}", parsed.host_str()?),
        None => parsed.host_str()?.to_string(),
    };
    host.filter(|h| h.eq_ignore_ascii_case(&authority)).map(|_| url.to_string())
}

fn page(title: &str, inner: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, maximum-scale=1">
<title>{title}</title>
<style>
body{{margin:0;font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f2f2f2;color:#111}}
.bar{{background:#ededed;padding:12px;text-align:center;font-size:16px}}
.tag{{display:inline-block;margin-left:6px;padding:0 6px;border:1px solid #fa9d3b;color:#fa9d3b;font-size:12px;border-radius:3px}}
.card{{background:#fff;margin:16px;padding:24px 16px;border-radius:8px;text-align:center}}
.merchant{{color:#666;font-size:15px}}
.amount{{font-size:40px;font-weight:600;margin:12px 0}}
.desc{{color:#333;font-size:15px;word-break:break-all}}
dl{{text-align:left;font-size:13px;color:#888;margin:20px 0 0}}
dt{{float:left}} dd{{text-align:right;margin:0 0 6px;word-break:break-all}}
button{{width:100%;background:#07c160;color:#fff;border:0;border-radius:6px;font-size:17px;padding:12px;margin-top:20px}}
.msg{{font-size:18px;margin:8px 0}} a{{color:#576b95}}
</style>
</head>
<body>
<div class="bar">微信支付<span class="tag">沙箱</span></div>
{inner}
</body>
</html>
"#,
        title = esc(title),
    )
}

fn result_page(status: StatusCode, message: &str, return_url: Option<&str>) -> Response {
    let back = return_url.map(|u| format!(r#"<p><a href="{}">返回商户</a></p>"#, esc(u))).unwrap_or_default();
    let inner = format!(r#"<div class="card"><p class="msg">{}</p>{back}</div>"#, esc(message));
    (status, Html(page("微信支付", &inner))).into_response()
}

async fn cashier_page(
    State(sb): State<Arc<PaySandbox>>,
    headers: HeaderMap,
    Query(q): Query<CashierQuery>,
) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let back = safe_return_url(&q.return_url, host);
    let out_trade_no = {
        let books = lock(&sb.books);
        books.by_prepay.get(&q.prepay_id).map(|&i| books.orders[i].tx.out_trade_no.clone())
    };
    let Some(order) = out_trade_no.and_then(|no| sb.order(&no)) else {
        return result_page(StatusCode::NOT_FOUND, "支付单不存在或已失效", back.as_deref());
    };
    let tx = &order.transaction;
    let action = if tx.trade_state == TradeState::NotPay {
        format!(
            r#"<form method="post" action="cashier/pay">
<input type="hidden" name="prepay_id" value="{}">
<input type="hidden" name="return_url" value="{}">
<button type="submit">确认支付</button>
</form>"#,
            esc(&q.prepay_id),
            esc(&q.return_url),
        )
    } else {
        let back = back.map(|u| format!(r#"<p><a href="{}">返回商户</a></p>"#, esc(&u))).unwrap_or_default();
        format!(r#"<p class="msg">{}</p>{back}"#, esc(&tx.trade_state_desc))
    };
    let inner = format!(
        r#"<div class="card">
<div class="merchant">{merchant}</div>
<div class="amount">{amount}</div>
<div class="desc">{description}</div>
<dl><dt>商户订单号</dt><dd>{no}</dd><dt>订单状态</dt><dd>{state}</dd></dl>
{action}
</div>"#,
        merchant = esc(&sb.cfg.merchant_name),
        amount = esc(&yuan(tx.amount.total)),
        description = esc(&order.description),
        no = esc(&tx.out_trade_no),
        state = esc(tx.trade_state.as_str()),
    );
    Html(page("确认支付", &inner)).into_response()
}

#[derive(Deserialize)]
struct CashierPay {
    prepay_id: String,
    #[serde(default)]
    return_url: String,
}

async fn cashier_pay(State(sb): State<Arc<PaySandbox>>, headers: HeaderMap, Form(f): Form<CashierPay>) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let back = safe_return_url(&f.return_url, host);
    match sb.pay_by_prepay_id(&f.prepay_id).await {
        Ok(tx) => match back {
            Some(url) => Redirect::to(&url).into_response(),
            None => result_page(StatusCode::OK, &format!("支付成功 {}", yuan(tx.amount.total)), None),
        },
        Err(e) => result_page(StatusCode::BAD_REQUEST, &format!("支付失败：{e}"), back.as_deref()),
    }
}

// ---- control endpoints ----

fn control_result<T: Serialize>(r: Result<T, String>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::CONFLICT, Json(json!({"error": e}))).into_response(),
    }
}

async fn control_pay(State(sb): State<Arc<PaySandbox>>, Path(no): Path<String>) -> Response {
    control_result(sb.pay(&no).await)
}

async fn control_pay_again(State(sb): State<Arc<PaySandbox>>, Path(no): Path<String>) -> Response {
    control_result(sb.pay_again(&no).await)
}

async fn control_deliver(State(sb): State<Arc<PaySandbox>>, Path(no): Path<String>) -> Response {
    control_result(sb.deliver(&no).await)
}

async fn control_signtest(State(sb): State<Arc<PaySandbox>>, Path(no): Path<String>) -> Response {
    control_result(sb.signtest_probe(&no).await)
}

async fn control_settle_refunds(State(sb): State<Arc<PaySandbox>>) -> Response {
    Json(sb.settle_refunds().await).into_response()
}

async fn control_orders(State(sb): State<Arc<PaySandbox>>) -> Response {
    Json(sb.orders()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_schedule_compresses_to_seconds() {
        let d = RetryPolicy::default().delays();
        assert_eq!(d.len(), 15);
        assert_eq!(d[0], Duration::from_micros(750));
        let total: Duration = d.iter().sum();
        assert!(total > Duration::from_secs(3) && total < Duration::from_secs(6), "{total:?}");
        assert!(RetryPolicy::disabled().delays().is_empty());
    }

    #[test]
    fn money_and_html_are_rendered_safely() {
        assert_eq!(yuan(1), "¥0.01");
        assert_eq!(yuan(123_456), "¥1234.56");
        assert_eq!(yuan(-5), "-¥0.05");
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn return_urls_stay_on_this_host() {
        let host = Some("shop.example:8080");
        assert_eq!(safe_return_url("/orders/1?paid=1", host).as_deref(), Some("/orders/1?paid=1"));
        assert_eq!(safe_return_url("http://shop.example:8080/o", host).as_deref(), Some("http://shop.example:8080/o"));
        assert_eq!(safe_return_url("//evil.example/x", host), None);
        assert_eq!(safe_return_url("/\\evil.example", host), None);
        assert_eq!(safe_return_url("https://evil.example/o", host), None);
        assert_eq!(safe_return_url("javascript:alert(1)", host), None);
        assert_eq!(safe_return_url("http://shop.example:8080/o", None), None);
        assert_eq!(safe_return_url("", host), None);
    }

    #[test]
    fn ids_look_like_wechat_pays() {
        let t = Timestamp::parse_rfc3339("2026-11-22T18:05:09+08:00").unwrap();
        assert_eq!(local_digits(t, 14), "20261122180509");
        assert_eq!(random_digits(27).len(), 27);
        assert!(random_hex(20).chars().all(|c| c.is_ascii_hexdigit()));
    }
}

//! The real merchant client against the real sandbox, over loopback HTTP: every request signed
//! and verified, every notification encrypted, signed, delivered, verified and decrypted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use siyu_core::time::{Clock, ManualClock, Timestamp};
use siyu_pay::fixtures::{
    APIV3_KEY, MERCHANT_KEY_PEM, MERCHANT_PUBLIC_PEM, PLATFORM_KEY_PEM, PLATFORM_PUBLIC_PEM, PUBLIC_KEY_ID,
};
use siyu_pay::notify::{self, Headers, NotifyError, Signer, Verifier};
use siyu_pay::resource::parse_notice;
use siyu_pay::sandbox::{PaySandbox, RetryPolicy, SandboxConfig};
use siyu_pay::{JsapiOrder, MerchantConfig, Notice, PayClient, PayError, RefundOrder, RefundStatus, TradeState};

const MCHID: &str = "1900000109";
const APPID: &str = "wxd678efh567hg6787";

/// What the merchant's notify endpoint saw: the decrypted resource, or why it was refused.
type Received = Result<(String, Notice), NotifyError>;

/// A merchant notify endpoint: verifies and decrypts with the public API, answers 401 on
/// failure and otherwise the next scripted status (200 when the script is empty).
#[derive(Clone)]
struct Receiver {
    clock: ManualClock,
    verifier: Verifier,
    script: Arc<Mutex<VecDeque<u16>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let pairs = headers.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let opened = Headers::from_pairs(pairs)
        .and_then(|h| notify::open(&r.verifier, APIV3_KEY, &h, &body, r.clock.now().unix_secs()));
    let (status, entry) = match opened {
        Ok((n, plain)) => {
            let notice = parse_notice(&n, &plain).expect("the resource parses");
            let status = r.script.lock().unwrap().pop_front().unwrap_or(200);
            (status, Ok((n.event_type, notice)))
        }
        Err(e) => (401, Err(e)),
    };
    r.got.lock().unwrap().push(entry);
    StatusCode::from_u16(status).unwrap()
}

struct Env {
    clock: ManualClock,
    sandbox: Arc<PaySandbox>,
    base_url: String,
    notify_url: String,
    receiver: Receiver,
    client: PayClient,
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn platform_verifier() -> Verifier {
    let mut v = Verifier::default();
    v.add_public_key_pem(Some(PUBLIC_KEY_ID), PLATFORM_PUBLIC_PEM).unwrap();
    v
}

fn merchant_config(base_url: &str) -> MerchantConfig {
    MerchantConfig {
        base_url: base_url.into(),
        mchid: MCHID.into(),
        appid: APPID.into(),
        merchant_serial: "3775B6A45ACD588826D15E583A95F5DD********".into(),
        merchant_key: Signer::from_pkcs8_pem(MERCHANT_KEY_PEM).unwrap(),
        apiv3_key: APIV3_KEY.into(),
        verifier: platform_verifier(),
    }
}

async fn env_with(retry: RetryPolicy) -> Env {
    let clock = ManualClock::at(Timestamp::parse_rfc3339("2026-11-22T10:00:00+08:00").unwrap());
    let mut cfg = SandboxConfig::new(
        MCHID,
        APPID,
        APIV3_KEY,
        MERCHANT_PUBLIC_PEM,
        Signer::from_pkcs8_pem(PLATFORM_KEY_PEM).unwrap(),
    );
    cfg.retry = retry;
    let sandbox = PaySandbox::new(cfg, Arc::new(clock.clone()));
    let base_url = serve(sandbox.router()).await;
    let receiver =
        Receiver { clock: clock.clone(), verifier: platform_verifier(), script: Arc::default(), got: Arc::default() };
    let notify_url = format!(
        "{}/pay/notify",
        serve(Router::new().route("/pay/notify", post(receive)).with_state(receiver.clone())).await
    );
    let client = PayClient::new(merchant_config(&base_url), Arc::new(clock.clone())).unwrap();
    Env { clock, sandbox, base_url, notify_url, receiver, client }
}

async fn env() -> Env {
    env_with(RetryPolicy::default()).await
}

impl Env {
    fn order(&self, out_trade_no: &str, total_fen: i64) -> JsapiOrder {
        JsapiOrder {
            description: "思域旗舰店-精华液 30ml".into(),
            out_trade_no: out_trade_no.into(),
            time_expire: Some(self.clock.now().plus(Duration::from_secs(30 * 60))),
            attach: Some("tenant=1".into()),
            notify_url: self.notify_url.clone(),
            total_fen,
            openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
        }
    }

    fn refund(&self, out_trade_no: &str, out_refund_no: &str, refund_fen: i64, total_fen: i64) -> RefundOrder {
        RefundOrder {
            out_trade_no: out_trade_no.into(),
            transaction_id: None,
            out_refund_no: out_refund_no.into(),
            reason: Some("商品已售完".into()),
            notify_url: self.notify_url.clone(),
            refund_fen,
            total_fen,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.receiver.got.lock().unwrap().clone()
    }
}

/// Polls until `f` holds, failing after five seconds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn prepay_query_pay_and_the_notification_arrives_verified() {
    let e = env().await;
    let prepay_id = e.client.jsapi_prepay(&e.order("SY20261122000001", 12_345)).await.unwrap();
    assert!(prepay_id.starts_with("wx20261122100000"), "{prepay_id}");
    let tx = e.client.query_order("SY20261122000001").await.unwrap();
    assert_eq!((tx.trade_state, tx.amount.total, tx.transaction_id), (TradeState::NotPay, 12_345, None));

    let paid = e.sandbox.pay("SY20261122000001").await.unwrap();
    let sent = e.sandbox.notifications_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].status, sent[0].attempt, sent[0].event_type.as_str()), (Some(200), 1, "TRANSACTION.SUCCESS"));

    let got = e.received();
    let Ok((event, Notice::Transaction(t))) = &got[0] else { panic!("{got:?}") };
    assert_eq!(event, "TRANSACTION.SUCCESS");
    assert_eq!((t.mchid.as_str(), t.appid.as_str(), t.out_trade_no.as_str()), (MCHID, APPID, "SY20261122000001"));
    assert_eq!((&t.trade_state, t.amount.total, t.amount.payer_total), (&TradeState::Success, 12_345, Some(12_345)));
    assert_eq!(t.attach.as_deref(), Some("tenant=1"));
    assert_eq!(t.success_time.as_deref(), Some("2026-11-22T10:00:00+08:00"));
    assert_eq!(t, &paid, "the notified resource is the paid transaction");

    let queried = e.client.query_order("SY20261122000001").await.unwrap();
    assert_eq!(queried, paid);
    let by_id = e.client.query_transaction(paid.transaction_id.as_deref().unwrap()).await.unwrap();
    assert_eq!(by_id, paid);

    // The stored notification replays byte for byte, concurrently, and verifies every time.
    let (headers, body) = e.sandbox.notification("SY20261122000001").unwrap();
    let http = reqwest::Client::new();
    let replays = (0..50).map(|_| {
        let mut req = http.post(&e.notify_url).body(body.clone());
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        req.send()
    });
    for r in futures_join_all(replays).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    assert_eq!(e.received().iter().filter(|r| r.is_ok()).count(), 51);

    // The payment parameters for wx.requestPayment sign the prepay id.
    let p = e.client.jsapi_pay_params(&prepay_id);
    assert_eq!(p.package, format!("prepay_id={prepay_id}"));
}

/// `futures::future::join_all` without the dependency: spawn and await each.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn prepay_is_idempotent_and_a_changed_order_is_refused() {
    let e = env().await;
    let order = e.order("SY-IDEM_1*", 100);
    let first = e.client.jsapi_prepay(&order).await.unwrap();
    assert_eq!(e.client.jsapi_prepay(&order).await.unwrap(), first, "same content, same prepay_id");
    let changed = JsapiOrder { total_fen: 101, ..order.clone() };
    let err = e.client.jsapi_prepay(&changed).await.unwrap_err();
    assert!(err.is("OUT_TRADE_NO_USED"), "{err}");
    assert!(matches!(err, PayError::Api { status: 400, .. }));

    // Field rules.
    let long = JsapiOrder { description: "长".repeat(128), ..e.order("SY2", 1) };
    assert!(e.client.jsapi_prepay(&long).await.unwrap_err().is("PARAM_ERROR"));
    let just_fits = JsapiOrder { description: "长".repeat(127), ..e.order("SY3", 1) };
    e.client.jsapi_prepay(&just_fits).await.unwrap();
    for bad in ["SY/1", "订单1", "123456789012345678901234567890123"] {
        let err = e.client.jsapi_prepay(&e.order(bad, 1)).await.unwrap_err();
        assert!(err.is("PARAM_ERROR"), "{bad}: {err}");
    }
    assert!(e.client.jsapi_prepay(&e.order("SY4", 0)).await.unwrap_err().is("PARAM_ERROR"));
    let with_query = JsapiOrder { notify_url: format!("{}?x=1", e.notify_url), ..e.order("SY5", 1) };
    assert!(e.client.jsapi_prepay(&with_query).await.unwrap_err().is("PARAM_ERROR"));

    // Another app is not bound to this merchant.
    let other_app = PayClient::new(
        MerchantConfig { appid: "wxOTHERAPP".into(), ..merchant_config(&e.base_url) },
        Arc::new(e.clock.clone()),
    )
    .unwrap();
    assert!(other_app.jsapi_prepay(&e.order("SY6", 1)).await.unwrap_err().is("APPID_MCHID_NOT_MATCH"));

    let err = e.client.query_order("NOPE").await.unwrap_err();
    assert!(err.is("ORDER_NOT_EXIST") && matches!(err, PayError::Api { status: 404, .. }), "{err}");
}

#[tokio::test]
async fn closed_and_expired_orders_cannot_be_paid_and_paid_orders_cannot_close() {
    let e = env().await;
    let order = e.order("SYCLOSE1", 500);
    e.client.jsapi_prepay(&order).await.unwrap();
    e.client.close_order("SYCLOSE1").await.unwrap();
    assert_eq!(e.client.query_order("SYCLOSE1").await.unwrap().trade_state, TradeState::Closed);
    assert!(e.sandbox.pay("SYCLOSE1").await.unwrap_err().starts_with("ORDER_CLOSED"));
    assert!(e.client.jsapi_prepay(&order).await.unwrap_err().is("ORDER_CLOSED"));
    assert!(e.received().is_empty(), "nothing was paid, nothing notified");

    // time_expire passing on the sandbox clock closes an unpaid order.
    e.client.jsapi_prepay(&e.order("SYEXPIRE1", 500)).await.unwrap();
    e.clock.advance(Duration::from_secs(30 * 60));
    assert_eq!(e.client.query_order("SYEXPIRE1").await.unwrap().trade_state, TradeState::Closed);
    assert!(e.sandbox.pay("SYEXPIRE1").await.unwrap_err().starts_with("ORDER_CLOSED"));

    let paid = e.order("SYPAID1", 500);
    e.client.jsapi_prepay(&paid).await.unwrap();
    e.sandbox.pay("SYPAID1").await.unwrap();
    assert!(e.client.close_order("SYPAID1").await.unwrap_err().is("ORDERPAID"));
    assert!(e.client.jsapi_prepay(&paid).await.unwrap_err().is("ORDERPAID"));
    assert!(e.sandbox.pay("SYPAID1").await.unwrap_err().starts_with("ORDERPAID"));
}

#[tokio::test]
async fn refunds_process_settle_notify_and_never_exceed_the_total() {
    let e = env().await;
    e.client.jsapi_prepay(&e.order("SYREF1", 100)).await.unwrap();
    let paid = e.sandbox.pay("SYREF1").await.unwrap();

    let r1 = e.client.refund(&e.refund("SYREF1", "R1", 30, 100)).await.unwrap();
    assert_eq!((r1.status.clone(), r1.amount.refund, r1.amount.total), (RefundStatus::Processing, 30, 100));
    assert_eq!(r1.transaction_id, paid.transaction_id.clone().unwrap());
    let again = e.client.refund(&e.refund("SYREF1", "R1", 30, 100)).await.unwrap();
    assert_eq!(again, r1, "the same out_refund_no refunds once");
    assert_eq!(e.sandbox.refunds().len(), 1);

    let over = e.client.refund(&e.refund("SYREF1", "R2", 71, 100)).await.unwrap_err();
    assert!(over.is("PARAM_ERROR"), "{over}");
    assert!(e.client.refund(&e.refund("SYREF1", "R2", 70, 99)).await.unwrap_err().is("PARAM_ERROR"), "wrong total");
    let r2 = e.client.refund(&e.refund("SYREF1", "R2", 70, 100)).await.unwrap();
    assert!(e.client.refund(&e.refund("SYREF1", "R3", 1, 100)).await.unwrap_err().is("PARAM_ERROR"), "fully refunded");
    assert_eq!(e.client.query_order("SYREF1").await.unwrap().trade_state, TradeState::Refund);
    assert_eq!(e.client.query_refund("R2").await.unwrap(), r2);
    assert!(e.client.query_refund("R404").await.unwrap_err().is("RESOURCE_NOT_EXISTS"));

    let settled = e.sandbox.settle_refunds().await;
    assert_eq!(settled.len(), 2);
    let r1 = e.client.query_refund("R1").await.unwrap();
    assert_eq!(r1.status, RefundStatus::Success);
    assert_eq!(r1.success_time.as_deref(), Some("2026-11-22T10:00:00+08:00"));

    let refunds: Vec<_> = e
        .received()
        .into_iter()
        .filter_map(|r| match r {
            Ok((event, Notice::Refund(info))) => Some((event, info)),
            _ => None,
        })
        .collect();
    assert_eq!(refunds.len(), 2);
    let (event, info) = &refunds[0];
    assert_eq!(event, "REFUND.SUCCESS");
    assert_eq!(
        (info.out_refund_no.as_str(), info.status.clone(), info.mchid.as_deref()),
        ("R1", RefundStatus::Success, Some(MCHID))
    );
    assert_eq!((info.amount.refund, info.amount.payer_refund, info.amount.total), (30, 30, 100));
    assert!(e.sandbox.refund_notification("R2").is_some());
    assert!(e.sandbox.settle_refunds().await.is_empty(), "nothing left to settle");

    let unpaid = e.client.jsapi_prepay(&e.order("SYREF2", 100)).await.map(|_| ());
    unpaid.unwrap();
    assert!(e.client.refund(&e.refund("SYREF2", "R4", 1, 100)).await.unwrap_err().is("INVALID_REQUEST"));
}

#[tokio::test]
async fn a_request_signed_with_the_wrong_merchant_key_gets_sign_error() {
    let e = env().await;
    let forger = PayClient::new(
        MerchantConfig {
            merchant_key: Signer::from_pkcs8_pem(PLATFORM_KEY_PEM).unwrap(),
            ..merchant_config(&e.base_url)
        },
        Arc::new(e.clock.clone()),
    )
    .unwrap();
    let err = forger.jsapi_prepay(&e.order("SYSIGN1", 1)).await.unwrap_err();
    assert!(matches!(&err, PayError::Api { status: 401, code, .. } if code == "SIGN_ERROR"), "{err}");
    assert!(forger.query_order("SYSIGN1").await.unwrap_err().is("SIGN_ERROR"));

    // A missing Authorization header, too.
    let r = reqwest::Client::new().get(format!("{}/v3/refund/domestic/refunds/R1", e.base_url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "SIGN_ERROR");

    // A request whose timestamp is five minutes off is refused even when correctly signed.
    let late = ManualClock::at(e.clock.now().plus(Duration::from_secs(300)));
    let late_client = PayClient::new(merchant_config(&e.base_url), Arc::new(late)).unwrap();
    assert!(late_client.query_order("SYSIGN1").await.unwrap_err().is("SIGN_ERROR"));
}

#[tokio::test]
async fn a_response_that_does_not_verify_is_rejected() {
    let e = env().await;
    e.client.jsapi_prepay(&e.order("SYVERIFY1", 1)).await.unwrap();

    // The right id, the wrong key: as if someone in between re-signed the answer.
    let mut wrong_key = Verifier::default();
    wrong_key.add_public_key_pem(Some(PUBLIC_KEY_ID), MERCHANT_PUBLIC_PEM).unwrap();
    let fooled = PayClient::new(
        MerchantConfig { verifier: wrong_key, ..merchant_config(&e.base_url) },
        Arc::new(e.clock.clone()),
    )
    .unwrap();
    let err = fooled.query_order("SYVERIFY1").await.unwrap_err();
    assert!(matches!(err, PayError::Signature(NotifyError::SignatureMismatch)), "{err}");
    assert!(matches!(fooled.close_order("SYVERIFY1").await, Err(PayError::Signature(_))), "a 204 is verified too");

    let mut other_id = Verifier::default();
    other_id.add_public_key_pem(Some("PUB_KEY_ID_0000000000000000000000000001"), PLATFORM_PUBLIC_PEM).unwrap();
    let lost = PayClient::new(
        MerchantConfig { verifier: other_id, ..merchant_config(&e.base_url) },
        Arc::new(e.clock.clone()),
    )
    .unwrap();
    assert!(matches!(lost.query_order("SYVERIFY1").await, Err(PayError::Signature(NotifyError::UnknownSerial(_)))));

    // An error answer needs no verification to be read.
    assert!(fooled.query_order("NOPE").await.unwrap_err().is("ORDER_NOT_EXIST"));
}

#[tokio::test]
async fn a_signtest_probe_fails_verification() {
    let e = env().await;
    e.client.jsapi_prepay(&e.order("SYPROBE1", 1)).await.unwrap();
    let d = e.sandbox.signtest_probe("SYPROBE1").await.unwrap();
    assert!(d.probe);
    assert_eq!(d.status, Some(401), "the receiver refused it");
    assert_eq!(e.received(), vec![Err(NotifyError::SignTest)]);
    assert!(e.sandbox.notification("SYPROBE1").is_none(), "a probe is not a notification to replay");
}

#[tokio::test]
async fn a_refused_notification_is_retried_until_accepted() {
    let e = env().await;
    e.receiver.script.lock().unwrap().extend([500, 503]);
    e.client.jsapi_prepay(&e.order("SYRETRY1", 1)).await.unwrap();
    e.sandbox.pay("SYRETRY1").await.unwrap();
    eventually("the third attempt", || e.sandbox.notifications_sent().len() == 3).await;
    let sent = e.sandbox.notifications_sent();
    let statuses: Vec<_> = sent.iter().map(|d| (d.attempt, d.status)).collect();
    assert_eq!(statuses, vec![(1, Some(500)), (2, Some(503)), (3, Some(200))]);
    assert!(sent.iter().all(|d| d.notification_id == sent[0].notification_id), "one notification, three attempts");
    assert_eq!(e.received().len(), 3);
}

#[tokio::test]
async fn without_retries_a_test_redelivers_by_hand_and_an_unreachable_url_is_logged() {
    let e = env_with(RetryPolicy::disabled()).await;
    e.receiver.script.lock().unwrap().push_back(500);
    e.client.jsapi_prepay(&e.order("SYMANUAL1", 1)).await.unwrap();
    e.sandbox.pay("SYMANUAL1").await.unwrap();
    assert_eq!(e.sandbox.notifications_sent().len(), 1);
    let d = e.sandbox.deliver("SYMANUAL1").await.unwrap();
    assert_eq!((d.attempt, d.status), (2, Some(200)));

    // Nothing listens on port 9 of loopback: the attempt records why, and pay still succeeds.
    let nowhere = JsapiOrder { notify_url: "http://127.0.0.1:9/notify".into(), ..e.order("SYMANUAL2", 1) };
    e.client.jsapi_prepay(&nowhere).await.unwrap();
    e.sandbox.pay("SYMANUAL2").await.unwrap();
    let last = e.sandbox.notifications_sent().pop().unwrap();
    assert_eq!((last.status, last.error.is_some()), (None, true));
}

#[tokio::test]
async fn a_double_payment_notifies_a_second_transaction() {
    let e = env().await;
    e.client.jsapi_prepay(&e.order("SYDOUBLE1", 990)).await.unwrap();
    let first = e.sandbox.pay("SYDOUBLE1").await.unwrap();
    let second = e.sandbox.pay_again("SYDOUBLE1").await.unwrap();
    assert_ne!(first.transaction_id, second.transaction_id);
    let ids: Vec<_> = e
        .received()
        .into_iter()
        .filter_map(|r| match r {
            Ok((_, Notice::Transaction(t))) => t.transaction_id,
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![first.transaction_id.clone().unwrap(), second.transaction_id.clone().unwrap()]);
    assert_eq!(e.client.query_order("SYDOUBLE1").await.unwrap(), first, "the order keeps its first payment");
    assert_eq!(e.client.query_transaction(second.transaction_id.as_deref().unwrap()).await.unwrap(), second);
    assert_eq!(e.sandbox.transactions().len(), 2);
}

#[tokio::test]
async fn the_cashier_page_pays_and_returns_to_the_shop() {
    let e = env().await;
    let order = JsapiOrder { description: "<b>礼盒</b> & 贺卡".into(), ..e.order("SYH5PAY1", 12_300) };
    let prepay_id = e.client.jsapi_prepay(&order).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let page = http
        .get(format!("{}/sandbox/cashier?prepay_id={prepay_id}&return_url=%2Forders%2F1", e.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("¥123.00") && html.contains("确认支付") && html.contains("思域演示商户"), "{html}");
    assert!(html.contains("&lt;b&gt;礼盒&lt;/b&gt; &amp; 贺卡") && !html.contains("<b>礼盒"), "escaped: {html}");
    assert!(html.contains(r#"name="viewport""#));

    let form = |return_url: &str| format!("prepay_id={prepay_id}&return_url={return_url}");
    let paid = http
        .post(format!("{}/sandbox/cashier/pay", e.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("%2Forders%2F1"))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    assert_eq!(paid.headers()["location"], "/orders/1");
    assert_eq!(e.client.query_order("SYH5PAY1").await.unwrap().trade_state, TradeState::Success);
    assert_eq!(e.received().len(), 1);

    // Paying again shows the failure instead of redirecting; another host is never a target.
    let twice = http
        .post(format!("{}/sandbox/cashier/pay", e.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    let html = twice.text().await.unwrap();
    assert!(html.contains("ORDERPAID") && !html.contains("evil.example"), "{html}");

    let missing = http.get(format!("{}/sandbox/cashier?prepay_id=wxNOPE", e.base_url)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_control_router_drives_the_sandbox_over_http() {
    let e = env().await;
    let control = serve(e.sandbox.control_router()).await;
    e.client.jsapi_prepay(&e.order("SYCTL1", 1)).await.unwrap();
    let http = reqwest::Client::new();
    let r = http.post(format!("{control}/pay/SYCTL1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["trade_state"], "SUCCESS");
    let r = http.post(format!("{control}/pay/SYCTL1")).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let sent: serde_json::Value =
        http.get(format!("{control}/notifications")).send().await.unwrap().json().await.unwrap();
    assert_eq!(sent[0]["status"], 200);
}

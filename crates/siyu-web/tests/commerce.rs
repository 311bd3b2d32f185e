//! The mall end to end over HTTP, on SQLite and on PostgreSQL: the catalogue API, orders from
//! 200 concurrent buyers against scarce stock, and payments through siyu's real WeChat Pay
//! client against the pay sandbox — signed, encrypted notifications to the real endpoint,
//! redelivered 50 times at once, a payment after a cancel, a double payment, the timeout
//! sweep closing the prepay first, and refunds exact to the fen.

mod common;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use siyu_core::time::ManualClock;
use siyu_core::{Clock, OrderId, Timestamp};
use siyu_pay::fixtures;
use siyu_pay::notify::Signer;
use siyu_pay::sandbox::{PaySandbox, RetryPolicy, SandboxConfig};
use siyu_store::Backend;

use common::{bearer, problem, App};

const MCHID: &str = "1900000109";
const APPID: &str = "wxmall0000000001";

struct World {
    app: App,
    clock: Arc<ManualClock>,
    sb: Arc<PaySandbox>,
    sb_url: String,
    seed: common::Seed,
    /// The Redis of this world's own, when flash sales go through one.
    redis: Option<tokio::sync::Mutex<common::RedisServer>>,
}

impl World {
    async fn start(backend: Backend) -> World {
        Self::start_with(backend, None).await
    }

    /// A world whose flash sales are admitted by a Redis server of its own.
    async fn start_with_redis(backend: Backend) -> World {
        Self::start_with(backend, Some(common::RedisServer::start().await)).await
    }

    async fn start_with(backend: Backend, redis: Option<common::RedisServer>) -> World {
        let _ = tracing_subscriber::fmt().with_env_filter("error").try_init();
        let clock =
            Arc::new(ManualClock::at(Timestamp::from_unix_secs(siyu_core::time::SystemClock.now().unix_secs())));
        let url = redis.as_ref().map(|r| r.url());
        let app = App::start_with_redis(backend, clock.clone(), url.as_deref()).await;
        let seed = app.seed("mall").await;
        let mut cfg = SandboxConfig::new(
            MCHID,
            APPID,
            fixtures::APIV3_KEY,
            fixtures::MERCHANT_PUBLIC_PEM,
            Signer::from_pkcs8_pem(fixtures::PLATFORM_KEY_PEM).unwrap(),
        );
        cfg.retry = RetryPolicy::disabled();
        let sb = PaySandbox::new(cfg, clock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sb_url = format!("http://{}", listener.local_addr().unwrap());
        let router = sb.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let redis = redis.map(tokio::sync::Mutex::new);
        let w = World { app, clock, sb, sb_url: sb_url.clone(), seed, redis };
        let settings = json!({
            "appid": APPID, "mchid": MCHID, "merchant_serial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            "merchant_key_pem": fixtures::MERCHANT_KEY_PEM, "apiv3_key": fixtures::APIV3_KEY,
            "platform_key_id": fixtures::PUBLIC_KEY_ID, "platform_public_key_pem": fixtures::PLATFORM_PUBLIC_PEM,
            "base_url": sb_url, "notify_base": w.app.url(""), "order_timeout_minutes": 30
        });
        w.json(Method::PUT, "/api/v1/pay/settings", Some(&settings)).await;
        w
    }
    async fn api(&self, method: Method, path: &str, body: Option<&Value>) -> reqwest::Response {
        bearer(&self.app, &self.seed.token, method, path, body).await
    }
    async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let r = self.api(method, path, body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }
    /// A listed product with one SKU per (spec, price, stock); returns the product.
    async fn product(&self, title: &str, skus: &[(&str, i64, i64)], template: Option<&str>) -> Value {
        let skus: Vec<Value> =
            skus.iter().map(|(s, p, n)| json!({"spec": [s], "price_fen": p, "on_hand": n})).collect();
        let body = json!({"title": title, "status": "listed", "spec_names": ["规格"], "skus": skus,
            "shipping_template_id": template});
        let r = self.api(Method::POST, "/api/v1/products", Some(&body)).await;
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }
    /// A signed-in buyer's bearer secret.
    async fn buyer(&self, openid: &str) -> String {
        let s = &self.app.store;
        let b = s.buyer_for_openid(self.seed.tenant, openid, None).await.unwrap();
        s.create_mall_session(self.seed.tenant, b.id).await.unwrap()
    }
    async fn mall(&self, buyer: &str, method: Method, path: &str, body: Option<&Value>) -> reqwest::Response {
        let mut r =
            reqwest::Client::new().request(method, self.app.url(&format!("/mall/mall/api{path}"))).bearer_auth(buyer);
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.unwrap()
    }
    async fn order(&self, buyer: &str, sku: &Value, qty: u32) -> Value {
        let r = self.mall(buyer, Method::POST, "/orders", Some(&json!({"items": [{"sku_id": sku, "qty": qty}]}))).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{v}");
        v
    }
    async fn order_with(&self, buyer: &str, body: &Value) -> Value {
        let r = self.mall(buyer, Method::POST, "/orders", Some(body)).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{v}");
        v
    }
    async fn coupon_status(&self, buyer: &str, coupon: &Value) -> String {
        let m: Value = self.mall(buyer, Method::GET, "/coupons", None).await.json().await.unwrap();
        let c = m["mine"].as_array().unwrap().iter().find(|x| &x["id"] == coupon).cloned().unwrap();
        c["status"].as_str().unwrap().to_string()
    }
    async fn sku(&self, id: &Value) -> siyu_store::commerce::catalogue::Sku {
        self.app.store.sku(self.seed.tenant, siyu_core::SkuId(id.as_str().unwrap().parse().unwrap())).await.unwrap()
    }
    async fn detail(&self, order: &Value) -> Value {
        self.json(Method::GET, &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()), None).await
    }
    /// Pays an order: prepay through the mall, then the sandbox "pays" and notifies siyu.
    async fn pay(&self, buyer: &str, order: &Value) -> String {
        let r = self.mall(buyer, Method::POST, &format!("/orders/{}/pay", order["id"].as_str().unwrap()), None).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["pay_params"]["package"], format!("prepay_id={}", v["prepay_id"].as_str().unwrap()));
        let no = v["out_trade_no"].as_str().unwrap().to_string();
        self.sb.pay(&no).await.unwrap();
        no
    }
    fn order_id(o: &Value) -> OrderId {
        OrderId(o["id"].as_str().unwrap().parse().unwrap())
    }
}

macro_rules! both {
    ($name:ident, |$w:ident| $body:expr) => {
        both!($name, start, |$w| $body);
    };
    ($name:ident, $start:ident, |$w:ident| $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $w = World::$start(Backend::Sqlite).await;
                $body.await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $w = World::$start(Backend::Postgres).await;
                $body.await
            }
        }
    };
}

both!(catalogue_validation_and_stock, |w| async move {
    let t = w
        .json(
            Method::POST,
            "/api/v1/shipping-templates",
            Some(&json!({"name": "满99包邮", "fee_fen": 1000, "free_from_fen": 9900})),
        )
        .await;
    let c = w.json(Method::POST, "/api/v1/categories", Some(&json!({"name": "围巾"}))).await;
    // Every field problem at once, named.
    let bad = json!({"title": "", "status": "sold", "spec_names": ["颜色"],
        "skus": [{"spec": ["红"], "price_fen": 0}, {"spec": ["红"], "price_fen": 100}]});
    let v = problem(w.api(Method::POST, "/api/v1/products", Some(&bad)).await, 422).await;
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["title", "status", "skus.0.price_fen", "skus.1.spec"], "{v}");
    let stranger = json!({"title": "x", "skus": [{"price_fen": 1}], "category_id": uuid::Uuid::now_v7()});
    let v = problem(w.api(Method::POST, "/api/v1/products", Some(&stranger)).await, 422).await;
    assert_eq!(v["errors"][0]["field"], "category_id");
    // A product may belong to one of the brand's stores (门店), and only one of its own.
    let elsewhere = json!({"title": "x", "skus": [{"price_fen": 1}], "store_id": uuid::Uuid::now_v7()});
    let v = problem(w.api(Method::POST, "/api/v1/products", Some(&elsewhere)).await, 422).await;
    assert_eq!(v["errors"][0]["field"], "store_id");
    let local = json!({"title": "门店自提蛋糕", "status": "listed", "store_id": w.seed.store_id, "skus": [{"price_fen": 8800}]});
    let cake = w.json(Method::POST, "/api/v1/products", Some(&local)).await;
    assert_eq!(cake["store_id"], json!(w.seed.store_id));
    assert!(cake["store_name"].as_str().is_some_and(|n| !n.is_empty()), "{cake}");
    let page = reqwest::get(w.app.url(&format!("/m/mall/p/{}", cake["id"].as_str().unwrap()))).await.unwrap();
    assert!(page.text().await.unwrap().contains("product-store"));
    let p = w
        .json(
            Method::POST,
            "/api/v1/products",
            Some(&json!({"title": "羊毛围巾", "status": "listed", "category_id": c["id"], "shipping_template_id": t["id"],
                "spec_names": ["颜色"], "skus": [{"spec": ["红"], "code": "SC-R", "price_fen": 12900, "on_hand": 5},
                {"spec": ["灰"], "code": "SC-G", "price_fen": 11900, "on_hand": 0}]})),
        )
        .await;
    assert_eq!(
        (p["price_min_fen"].as_i64(), p["price_max_fen"].as_i64(), p["available"].as_i64()),
        (Some(11900), Some(12900), Some(5))
    );
    let red = &p["skus"][0]["id"];
    // An order holds 3; stock cannot be counted below them.
    let buyer = w.buyer("o-catalogue").await;
    w.order(&buyer, red, 3).await;
    let path = format!("/api/v1/skus/{}/stock", red.as_str().unwrap());
    let v = problem(w.api(Method::POST, &path, Some(&json!({"on_hand": 2}))).await, 409).await;
    assert_eq!(v["code"], "stock_below_reserved");
    let v = problem(w.api(Method::POST, &path, Some(&json!({"delta": -3}))).await, 409).await;
    assert_eq!(v["code"], "stock_below_reserved");
    let s = w.json(Method::POST, &path, Some(&json!({"delta": 10, "note": "到货"}))).await;
    assert_eq!((s["on_hand"].as_i64(), s["reserved"].as_i64(), s["available"].as_i64()), (Some(15), Some(3), Some(12)));
    // A SKU left out of an edit stops selling but keeps its history; codes may swap.
    let edit = json!({"title": "羊毛围巾", "status": "listed", "spec_names": ["颜色"], "category_id": c["id"],
        "skus": [{"id": red, "spec": ["红"], "code": "SC-G", "price_fen": 13900}]});
    let e = w.json(Method::PUT, &format!("/api/v1/products/{}", p["id"].as_str().unwrap()), Some(&edit)).await;
    assert_eq!(e["skus"][0]["price_fen"], 13900);
    assert_eq!(e["skus"][0]["on_hand"], 15, "an edit never touches stock");
    assert_eq!(e["skus"][1]["active"], false);
    // The category holds a product, so it stays.
    let v =
        problem(w.api(Method::DELETE, &format!("/api/v1/categories/{}", c["id"].as_str().unwrap()), None).await, 409)
            .await;
    assert_eq!(v["code"], "category_in_use");
    // Buyers see listed products only, with the SKUs on sale.
    let listed: Value = w.mall(&buyer, Method::GET, "/products", None).await.json().await.unwrap();
    assert_eq!(listed["items"][0]["skus"].as_array().unwrap().len(), 1);
    w.json(
        Method::POST,
        &format!("/api/v1/products/{}/status", p["id"].as_str().unwrap()),
        Some(&json!({"status": "delisted"})),
    )
    .await;
    let r = w.mall(&buyer, Method::GET, &format!("/products/{}", p["id"].as_str().unwrap()), None).await;
    assert_eq!(r.status(), 404);
    let r = w.mall(&buyer, Method::POST, "/orders", Some(&json!({"items": [{"sku_id": red, "qty": 1}]}))).await;
    assert_eq!(problem(r, 409).await["code"], "sku_unavailable");
});

both!(two_hundred_buyers_never_oversell, |w| async move {
    let p = w.product("限量礼盒", &[("标准", 9900, 50)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let mut buyers = Vec::new();
    for i in 0..200 {
        buyers.push(w.buyer(&format!("o-rush-{i}")).await);
    }
    let w = &w;
    let results = futures::future::join_all(buyers.iter().map(|b| {
        let sku = sku.clone();
        async move {
            let r = w.mall(b, Method::POST, "/orders", Some(&json!({"items": [{"sku_id": sku, "qty": 1}]}))).await;
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (status, v)
        }
    }))
    .await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let sold_out = results.iter().filter(|(s, v)| *s == 409 && v["code"] == "out_of_stock").count();
    assert_eq!((created, sold_out), (50, 150), "{:?}", results.iter().find(|(s, _)| *s != 201 && *s != 409));
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.reserved), (50, 50));
    // Cancelling gives stock back once, however often it is asked.
    let first = results.iter().find(|(s, _)| *s == 201).unwrap().1.clone();
    let owner = &buyers[results.iter().position(|(s, _)| *s == 201).unwrap()];
    let cancel_path = format!("/orders/{}/cancel", first["id"].as_str().unwrap());
    let cancels = futures::future::join_all((0..5).map(|_| w.mall(owner, Method::POST, &cancel_path, None))).await;
    assert!(cancels.iter().all(|r| r.status() == 200));
    assert_eq!(w.sku(&sku).await.reserved, 49);
    // Another buyer cannot see or cancel it.
    let r = w.mall(&buyers[199], Method::GET, &format!("/orders/{}", first["id"].as_str().unwrap()), None).await;
    assert_eq!(r.status(), 404);
    // Idempotent submit: the same key returns the same order and reserves nothing more.
    let again = || {
        reqwest::Client::new()
            .post(w.app.url("/mall/mall/api/orders"))
            .bearer_auth(&buyers[0])
            .header("idempotency-key", "cart-42")
            .json(&json!({"items": [{"sku_id": sku, "qty": 1}]}))
            .send()
    };
    let (a, b) = tokio::join!(again(), again());
    let (a, b): (Value, Value) = (a.unwrap().json().await.unwrap(), b.unwrap().json().await.unwrap());
    assert_eq!(a["id"], b["id"]);
    assert_eq!(w.sku(&sku).await.reserved, 50);
});

both!(payment_is_applied_once_however_often_it_is_notified, |w| async move {
    let tpl = w
        .json(
            Method::POST,
            "/api/v1/shipping-templates",
            Some(&json!({"name": "快递", "fee_fen": 800, "free_from_fen": 30000})),
        )
        .await;
    let p = w.product("手冲壶", &[("600ml", 10000, 10)], tpl["id"].as_str()).await;
    let sku = p["skus"][0]["id"].clone();
    let buyer = w.buyer("o-payer").await;
    let quote: Value = w
        .mall(&buyer, Method::POST, "/quote", Some(&json!({"items": [{"sku_id": sku, "qty": 2}]})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (quote["goods_fen"].as_i64(), quote["shipping_fen"].as_i64(), quote["payable_fen"].as_i64()),
        (Some(20000), Some(800), Some(20800))
    );
    // The shown amount is only an expectation: a stale one refuses the submit.
    let stale = json!({"items": [{"sku_id": sku, "qty": 2}], "expected_payable_fen": 20000});
    assert_eq!(
        problem(w.mall(&buyer, Method::POST, "/orders", Some(&stale)).await, 409).await["code"],
        "price_changed"
    );
    let body = json!({"items": [{"sku_id": sku, "qty": 2}], "expected_payable_fen": 20800,
        "address": {"name": "张三", "phone": "13800138000", "region": "上海市 浦东新区", "detail": "世纪大道 1 号"}});
    let r = w.mall(&buyer, Method::POST, "/orders", Some(&body)).await;
    assert_eq!(r.status(), 201);
    let order: Value = r.json().await.unwrap();
    let no = w.pay(&buyer, &order).await;
    let d = w.detail(&order).await;
    assert_eq!(d["order"]["status"], "paid", "{d}");
    assert_eq!(d["order"]["paid_fen"], 20800);
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.reserved, s.sold), (8, 0, 2));
    // The same notification, 50 times at once: one payment, one paid transition.
    let (headers, raw) = w.sb.notification(&no).unwrap();
    let url = w.app.url(&format!("/pay/notify/{}", w.seed.tenant));
    let sends = futures::future::join_all((0..50).map(|_| {
        let mut r = reqwest::Client::new().post(&url).body(raw.clone());
        for (k, v) in &headers {
            r = r.header(k.as_str(), v.as_str());
        }
        r.send()
    }))
    .await;
    assert!(sends.into_iter().all(|r| r.unwrap().status() == 200));
    let d = w.detail(&order).await;
    assert_eq!(d["payments"].as_array().unwrap().len(), 1);
    assert_eq!(w.sku(&sku).await.sold, 2);
    // A tampered body or a SIGNTEST probe is refused and changes nothing.
    let mut forged = raw.clone();
    forged[10] ^= 1;
    let mut r = reqwest::Client::new().post(&url).body(forged);
    for (k, v) in &headers {
        r = r.header(k.as_str(), v.as_str());
    }
    assert_eq!(r.send().await.unwrap().status(), 401);
    assert!(!w.sb.signtest_probe(&no).await.unwrap().accepted());
    let log = w.json(Method::GET, "/api/v1/pay/notifications", None).await;
    assert_eq!(log.as_array().unwrap().iter().filter(|n| n["outcome"] == "paid").count(), 1, "{log}");
    // Paying again is refused: the order is no longer payable.
    let r = w.mall(&buyer, Method::POST, &format!("/orders/{}/pay", order["id"].as_str().unwrap()), None).await;
    assert_eq!(problem(r, 409).await["code"], "order_not_payable");
    // A paid order cannot be cancelled; it ships instead.
    let r = w
        .api(Method::POST, &format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap()), Some(&json!({})))
        .await;
    assert_eq!(problem(r, 409).await["code"], "order_not_cancellable");
    let shipped = w
        .json(
            Method::POST,
            &format!("/api/v1/orders/{}/ship", order["id"].as_str().unwrap()),
            Some(&json!({"carrier": "顺丰", "tracking_no": "SF1"})),
        )
        .await;
    assert_eq!(shipped["order"]["status"], "shipped");
});

both!(late_and_double_payments_are_refunded_in_full, |w| async move {
    let p = w.product("茶具", &[("套", 5000, 3)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let buyer = w.buyer("o-late").await;
    let order = w.order(&buyer, &sku, 1).await;
    let r = w.mall(&buyer, Method::POST, &format!("/orders/{}/pay", order["id"].as_str().unwrap()), None).await;
    let pay: Value = r.json().await.unwrap();
    let no = pay["out_trade_no"].as_str().unwrap().to_string();
    // The cancel commits just before the payment lands (the race INV-6 is about).
    w.app.store.cancel_order(w.seed.tenant, World::order_id(&order), "timeout", None).await.unwrap();
    w.sb.pay(&no).await.unwrap();
    let d = w.detail(&order).await;
    assert_eq!(d["order"]["status"], "cancelled");
    assert_eq!(d["payments"][0]["disposition"], "late");
    assert_eq!(d["refunds"][0]["kind"], "system_late");
    assert_eq!(d["refunds"][0]["amount_fen"], 5000);
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.reserved, s.sold), (3, 0, 0), "no stock is committed for a refunded payment");
    // The sweep sends the refund; the sandbox settles it and notifies.
    let gw = siyu_web::pay::PayGateway::new(w.app.store.store.clone());
    gw.push_refunds(10).await.unwrap();
    w.sb.settle_refunds().await;
    let d = w.detail(&order).await;
    assert_eq!(d["refunds"][0]["status"], "succeeded", "{d}");

    // A second, distinct payment of a paid order is refunded too (PAY-5).
    let order = w.order(&buyer, &sku, 1).await;
    let no = w.pay(&buyer, &order).await;
    w.sb.pay_again(&no).await.unwrap();
    let d = w.detail(&order).await;
    assert_eq!(d["order"]["status"], "paid");
    let disp: Vec<&str> =
        d["payments"].as_array().unwrap().iter().map(|p| p["disposition"].as_str().unwrap()).collect();
    assert_eq!(disp, vec!["applied", "double"]);
    assert_eq!(d["refunds"][0]["kind"], "system_double");
    gw.push_refunds(10).await.unwrap();
    w.sb.settle_refunds().await;
    let d = w.detail(&order).await;
    assert_eq!(d["refunds"][0]["status"], "succeeded");
    assert_eq!(d["order"]["refunded_fen"], 0, "the order's own payment stays whole");
});

both!(the_timeout_sweep_closes_the_prepay_and_gives_stock_back, |w| async move {
    let p = w.product("香薰", &[("大", 8800, 4)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let buyer = w.buyer("o-slow").await;
    let unpaid = w.order(&buyer, &sku, 2).await;
    let r = w.mall(&buyer, Method::POST, &format!("/orders/{}/pay", unpaid["id"].as_str().unwrap()), None).await;
    let no = r.json::<Value>().await.unwrap()["out_trade_no"].as_str().unwrap().to_string();
    // Paid at the last moment, but its notification never arrives: the sweep's query finds it.
    let paid_quietly = w.order(&buyer, &sku, 1).await;
    let settings = |base: String| {
        json!({"appid": APPID, "mchid": MCHID, "merchant_serial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "platform_key_id": fixtures::PUBLIC_KEY_ID, "platform_public_key_pem": fixtures::PLATFORM_PUBLIC_PEM,
        "base_url": w.sb_url, "notify_base": base})
    };
    // Its notifications go nowhere (a closed port), as when the merchant's server is down.
    w.json(Method::PUT, "/api/v1/pay/settings", Some(&settings("http://127.0.0.1:9".into()))).await;
    let r = w.mall(&buyer, Method::POST, &format!("/orders/{}/pay", paid_quietly["id"].as_str().unwrap()), None).await;
    let quiet_no = r.json::<Value>().await.unwrap()["out_trade_no"].as_str().unwrap().to_string();
    w.json(Method::PUT, "/api/v1/pay/settings", Some(&settings(w.app.url("")))).await;
    w.sb.pay(&quiet_no).await.unwrap();
    assert_eq!(w.detail(&paid_quietly).await["order"]["status"], "pending_payment");
    let gw = siyu_web::pay::PayGateway::new(w.app.store.store.clone());
    assert_eq!(gw.sweep().await.unwrap(), Default::default(), "nothing is due yet");
    // Ten quiet minutes later the sweep asks WeChat Pay and finds the payment (PAY-7).
    w.clock.advance(Duration::from_secs(11 * 60));
    let rep = gw.sweep().await.unwrap();
    assert_eq!((rep.found_paid, rep.timed_out), (1, 0));
    assert_eq!(w.detail(&paid_quietly).await["order"]["status"], "paid");
    w.clock.advance(Duration::from_secs(20 * 60));
    let rep = gw.sweep().await.unwrap();
    assert_eq!(rep.timed_out, 1);
    assert_eq!(w.detail(&unpaid).await["order"]["status"], "cancelled");
    assert_eq!(w.sb.order(&no).unwrap().transaction.trade_state, siyu_pay::TradeState::Closed);
    assert_eq!(w.detail(&paid_quietly).await["order"]["status"], "paid");
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.reserved, s.sold), (3, 0, 1));
    assert_eq!(gw.sweep().await.unwrap().timed_out, 0, "a second sweep finds nothing");
});

both!(refunds_return_exactly_what_each_unit_paid, |w| async move {
    let tpl = w.json(Method::POST, "/api/v1/shipping-templates", Some(&json!({"name": "运费", "fee_fen": 1000}))).await;
    let p = w.product("杯子", &[("白", 3333, 10)], tpl["id"].as_str()).await;
    let sku = p["skus"][0]["id"].clone();
    let buyer = w.buyer("o-refund").await;
    let order = w.order(&buyer, &sku, 3).await;
    w.pay(&buyer, &order).await;
    let oid = order["id"].as_str().unwrap();
    // Shipping only with every item.
    let r = w
        .api(
            Method::POST,
            &format!("/api/v1/orders/{oid}/refunds"),
            Some(&json!({"lines": [{"line_no": 0, "qty": 1}], "shipping": true})),
        )
        .await;
    assert_eq!(problem(r, 409).await["code"], "shipping_not_refundable");
    // The buyer asks for one unit; the operator rejects, the buyer asks again, it is approved.
    let req = json!({"lines": [{"line_no": 0, "qty": 1}], "reason": "破损"});
    let r = w.mall(&buyer, Method::POST, &format!("/orders/{oid}/refunds"), Some(&req)).await;
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    assert_eq!((first["status"].as_str(), first["amount_fen"].as_i64()), (Some("requested"), Some(3333)));
    w.json(
        Method::POST,
        &format!("/api/v1/refunds/{}/reject", first["id"].as_str().unwrap()),
        Some(&json!({"note": "无破损"})),
    )
    .await;
    let again: Value =
        w.mall(&buyer, Method::POST, &format!("/orders/{oid}/refunds"), Some(&req)).await.json().await.unwrap();
    w.json(Method::POST, &format!("/api/v1/refunds/{}/approve", again["id"].as_str().unwrap()), Some(&json!({}))).await;
    // Too many units, then the rest with shipping.
    let r = w
        .api(
            Method::POST,
            &format!("/api/v1/orders/{oid}/refunds"),
            Some(&json!({"lines": [{"line_no": 0, "qty": 3}]})),
        )
        .await;
    assert_eq!(problem(r, 409).await["code"], "refund_exceeds_line");
    let rest = w
        .api(
            Method::POST,
            &format!("/api/v1/orders/{oid}/refunds"),
            Some(&json!({"lines": [{"line_no": 0, "qty": 2}], "shipping": true})),
        )
        .await;
    let rest: Value = rest.json().await.unwrap();
    assert_eq!(rest["amount_fen"], 3333 * 2 + 1000);
    let gw = siyu_web::pay::PayGateway::new(w.app.store.store.clone());
    gw.push_refunds(10).await.unwrap();
    w.sb.settle_refunds().await;
    let d = w.detail(&order).await;
    assert_eq!(d["order"]["refunded_fen"], d["order"]["paid_fen"], "{d}");
    let ok = d["refunds"].as_array().unwrap().iter().filter(|r| r["status"] == "succeeded").count();
    assert_eq!(ok, 2);
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.sold), (10, 0), "units refunded before shipment go back on the shelf");
});

both!(the_console_runs_the_mall, |w| async move {
    let owner = w.app.session("mall", "owner").await;
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        let (owner, w) = (&owner, &w);
        let path = path.to_string();
        async move {
            let mut f = vec![("_csrf", owner.csrf.clone())];
            f.extend(form);
            let r = owner.client.post(w.app.url(&path)).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let get = |path: &str| {
        let (owner, w) = (&owner, &w);
        let path = path.to_string();
        async move {
            let r = owner.send(&w.app, Method::GET, &path, None).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // Categories and templates, with amounts typed in yuan.
    let (code, page) =
        post("/console/catalogue/templates", vec![("template_name", "满99包邮".into()), ("fee", "abc".into())]).await;
    assert_eq!(code, 422);
    assert!(page.contains("运费（元）超出允许范围"), "{page}");
    let (code, _) = post(
        "/console/catalogue/templates",
        vec![("template_name", "满99包邮".into()), ("fee", "8".into()), ("free_from", "99".into())],
    )
    .await;
    assert_eq!(code, 200);
    let (code, page) = post("/console/catalogue/categories", vec![("name", "茶叶".into())]).await;
    assert_eq!(code, 200);
    assert!(page.contains("茶叶") && page.contains("¥8.00") && page.contains("¥99.00"), "{page}");
    // A product form with a bad row names the row's field in Chinese.
    let form = |price: &str| -> Vec<(&'static str, String)> {
        vec![
            ("product_title", "明前龙井".to_string()),
            ("status", "listed".into()),
            ("spec_names", "规格".into()),
            ("sku_id", "".into()),
            ("sku_spec", "50g".into()),
            ("sku_code", "LJ-50".into()),
            ("sku_price", price.into()),
            ("sku_stock", "20".into()),
            ("sku_id", "".into()),
            ("sku_spec", "".into()),
            ("sku_code", "".into()),
            ("sku_price", "".into()),
            ("sku_stock", "".into()),
        ]
    };
    let (code, page) = get("/console/products/new").await;
    assert!(code == 200 && page.contains("name=\"store_id\"") && page.contains("品牌商城（不属于门店）"), "{page}");
    let (code, page) = post("/console/products/new", form("1.234")).await;
    assert_eq!(code, 422);
    assert!(page.contains("价格超出允许范围"), "{page}");
    let (code, page) = post("/console/products/new", form("128.80")).await;
    assert_eq!(code, 200, "{page}");
    let list = w.json(Method::GET, "/api/v1/products?q=%E9%BE%99%E4%BA%95", None).await;
    let product = &list["items"][0];
    assert_eq!(product["skus"][0]["price_fen"], 12880, "yuan typed, fen stored");
    let sku = product["skus"][0]["id"].as_str().unwrap().to_string();
    let (_, page) = get("/console/products").await;
    assert!(page.contains("明前龙井") && page.contains("¥128.80"), "{page}");
    // Stock below what orders hold is refused with the reason.
    let buyer = w.buyer("o-console").await;
    let order = w.order(&buyer, &product["skus"][0]["id"], 2).await;
    let (code, page) = post(&format!("/console/skus/{sku}/stock"), vec![("on_hand", "1".into())]).await;
    assert_eq!(code, 409);
    assert!(page.contains("库存不能低于待支付订单占用的数量"), "{page}");
    let (code, page) = post(&format!("/console/skus/{sku}/stock"), vec![("delta", "+5".into())]).await;
    assert_eq!(code, 200);
    assert!(page.contains("库存已调整"), "{page}");
    // The order page explains the price; the operator ships it after payment and refunds a unit.
    w.pay(&buyer, &order).await;
    let oid = order["id"].as_str().unwrap();
    let (_, page) = get("/console/orders").await;
    assert!(page.contains(order["no"].as_str().unwrap()) && page.contains("待发货"), "{page}");
    let (code, page) =
        post(&format!("/console/orders/{oid}/ship"), vec![("carrier", "".into()), ("tracking_no", "".into())]).await;
    assert_eq!(code, 422);
    assert!(page.contains("物流公司不能为空"), "{page}");
    let (code, page) = post(
        &format!("/console/orders/{oid}/refund"),
        vec![("line_no", "0".into()), ("qty", "1".into()), ("reason", "缺货".into())],
    )
    .await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("退款已提交微信支付") && page.contains("¥128.80"), "{page}");
    let (code, page) =
        post(&format!("/console/orders/{oid}/ship"), vec![("carrier", "顺丰".into()), ("tracking_no", "SF100".into())])
            .await;
    assert_eq!(code, 200);
    assert!(page.contains("SF100"), "{page}");
    let (_, csv) = get("/console/orders/export").await;
    assert!(csv.contains("order_no,status") && csv.contains("明前龙井") && csv.contains("25760"), "{csv}");
    let (_, page) = get("/console/refunds").await;
    assert!(page.contains("商家退款"), "{page}");
    // Coupons in yuan and 折.
    let coupon = |face: &str| -> Vec<(&'static str, String)> {
        vec![
            ("name", "满100减20".into()),
            ("kind", "amount".into()),
            ("face", face.into()),
            ("threshold", "100".into()),
            ("valid_days", "7".into()),
            ("total", "100".into()),
            ("per_user", "1".into()),
        ]
    };
    let (code, page) = post("/console/coupons", coupon("100")).await;
    assert_eq!(code, 422);
    assert!(page.contains("面额超出允许范围"), "{page}");
    let (code, page) = post("/console/coupons", coupon("20")).await;
    assert_eq!(code, 200);
    assert!(page.contains("满 ¥100.00 减 ¥20.00") && page.contains("0 / 100"), "{page}");
    let (code, page) = post(
        "/console/coupons",
        vec![
            ("name", "九折".into()),
            ("kind", "percent".into()),
            ("zhe", "8.5".into()),
            ("valid_days", "3".into()),
            ("total", "10".into()),
        ],
    )
    .await;
    assert_eq!(code, 200);
    assert!(page.contains("8.5 折"), "{page}");
    let (_, page) = get("/console/pay").await;
    assert!(page.contains(MCHID) && !page.contains("PRIVATE KEY-----\n"), "secrets are never shown");
});

both!(coupon_limits_hold_and_a_coupon_is_used_once, |w| async move {
    let p = w.product("咖啡豆", &[("250g", 6000, 100)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let bad = json!({"name": "坏券", "kind": "amount", "face_fen": 5000, "threshold_fen": 5000, "total": 0});
    let v = problem(w.api(Method::POST, "/api/v1/coupon-templates", Some(&bad)).await, 422).await;
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["face_fen", "valid_days", "total"], "{v}");
    let scarce = w
        .json(
            Method::POST,
            "/api/v1/coupon-templates",
            Some(&json!({"name": "满100减20", "kind": "amount", "face_fen": 2000,
            "threshold_fen": 10000, "valid_days": 7, "total": 50, "per_user": 1})),
        )
        .await;
    let mut buyers = Vec::new();
    for i in 0..200 {
        buyers.push(w.buyer(&format!("o-coupon-{i}")).await);
    }
    let w = &w;
    let claim = format!("/coupons/{}/claim", scarce["id"].as_str().unwrap());
    let results = futures::future::join_all(buyers.iter().map(|b| w.mall(b, Method::POST, &claim, None))).await;
    let mut codes = std::collections::BTreeMap::new();
    for r in results {
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        *codes.entry((status, v["code"].as_str().unwrap_or("").to_string())).or_insert(0) += 1;
    }
    assert_eq!(codes.get(&(201, String::new())), Some(&50), "{codes:?}");
    assert_eq!(codes.get(&(409, "coupon_sold_out".into())), Some(&150), "{codes:?}");
    let d = w.json(Method::GET, &format!("/api/v1/coupon-templates/{}", scarce["id"].as_str().unwrap()), None).await;
    assert_eq!((d["template"]["issued"].as_i64(), d["usage"]["unused"].as_i64()), (Some(50), Some(50)));

    // One customer, 50 claims at once, a limit of 2.
    let twice = w
        .json(
            Method::POST,
            "/api/v1/coupon-templates",
            Some(&json!({"name": "无门槛5元", "kind": "amount", "face_fen": 500,
            "valid_days": 1, "total": 1000, "per_user": 2})),
        )
        .await;
    let claim = format!("/coupons/{}/claim", twice["id"].as_str().unwrap());
    let one = &buyers[199];
    let results = futures::future::join_all((0..50).map(|_| w.mall(one, Method::POST, &claim, None))).await;
    assert_eq!(results.iter().filter(|r| r.status() == 201).count(), 2);
    let mine: Value = w.mall(one, Method::GET, "/coupons", None).await.json().await.unwrap();
    let of_twice = mine["mine"].as_array().unwrap().iter().filter(|c| c["template_id"] == twice["id"]).count();
    assert_eq!(of_twice, 2);

    // The owner of a 满100减20 coupon sends two orders with it at once: one gets it.
    let mut holder = None;
    for b in &buyers {
        let m: Value = w.mall(b, Method::GET, "/coupons", None).await.json().await.unwrap();
        if let Some(c) = m["mine"].as_array().unwrap().iter().find(|c| c["template_id"] == scarce["id"]) {
            holder = Some((b.clone(), c["id"].clone()));
            break;
        }
    }
    let (holder, coupon) = holder.unwrap();
    let q: Value = w
        .mall(
            &holder,
            Method::POST,
            "/quote",
            Some(&json!({"items": [{"sku_id": sku, "qty": 2}], "coupon_id": coupon})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(q["payable_fen"], 10000, "12000 − 2000: {q}");
    let submit = json!({"items": [{"sku_id": sku, "qty": 2}], "coupon_id": coupon});
    let both = futures::future::join_all((0..2).map(|_| w.mall(&holder, Method::POST, "/orders", Some(&submit)))).await;
    let mut orders = Vec::new();
    let mut refused = 0;
    for r in both {
        match r.status().as_u16() {
            201 => orders.push(r.json::<Value>().await.unwrap()),
            409 => {
                assert_eq!(r.json::<Value>().await.unwrap()["code"], "coupon_unavailable");
                refused += 1
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!((orders.len(), refused), (1, 1));
    let order = &orders[0];
    assert_eq!(order["payable_fen"], 10000);
    // Each line records the coupon's share.
    assert_eq!(order["lines"][0]["shares"][0]["kind"], "coupon");
    // Cancelling returns the coupon; it is then used by a paid order, and a full refund
    // returns it again while it is valid.
    let oid = order["id"].as_str().unwrap();
    w.mall(&holder, Method::POST, &format!("/orders/{oid}/cancel"), None).await;
    let order = w.order_with(&holder, &submit).await;
    w.pay(&holder, &order).await;
    assert_eq!(w.coupon_status(&holder, &coupon).await, "used");
    let oid = order["id"].as_str().unwrap();
    w.json(Method::POST, &format!("/api/v1/orders/{oid}/refunds"), Some(&json!({"lines": [{"line_no": 0, "qty": 2}]})))
        .await;
    let gw = siyu_web::pay::PayGateway::new(w.app.store.store.clone());
    gw.push_refunds(10).await.unwrap();
    w.sb.settle_refunds().await;
    assert_eq!(w.coupon_status(&holder, &coupon).await, "unused", "a full refund gives the coupon back");

    // A promo code, and a stopped template.
    let coded = w
        .json(
            Method::POST,
            "/api/v1/coupon-templates",
            Some(&json!({"name": "九折", "kind": "percent", "off_bp": 1000,
            "cap_fen": 3000, "valid_days": 3, "total": 10, "code": "vip10"})),
        )
        .await;
    assert_eq!(coded["code"], "VIP10");
    let r = w.mall(&buyers[0], Method::POST, "/coupons/claim", Some(&json!({"code": "Vip10"}))).await;
    assert_eq!(r.status(), 201);
    let r = w.mall(&buyers[0], Method::POST, "/coupons/claim", Some(&json!({"code": "NOPE"}))).await;
    assert_eq!(problem(r, 409).await["code"], "unknown_code");
    w.json(Method::POST, &format!("/api/v1/coupon-templates/{}/stop", twice["id"].as_str().unwrap()), None).await;
    let r = w.mall(&buyers[5], Method::POST, &claim, None).await;
    assert_eq!(problem(r, 409).await["code"], "coupon_not_claimable");
});

both!(customers_sign_in_from_the_mini_program, |w| async move {
    // Before the AppSecret is set, the mall says it cannot sign anyone in.
    let url = w.app.url("/mall/mall/api/session");
    let r = reqwest::Client::new().post(&url).json(&json!({"code": "x"})).send().await.unwrap();
    assert_eq!(problem(r, 409).await["code"], "login_not_configured");
    // WeChat's code2Session, played by the sandbox.
    let mut cfg =
        siyu_wecom::sandbox::SandboxConfig::new("wwMALL", "s", "token", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C");
    cfg.miniprogram_appid = APPID.into();
    cfg.miniprogram_secret = "mini-secret".into();
    let wx = siyu_wecom::sandbox::Sandbox::new(cfg, w.clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wx_url = format!("http://{}", listener.local_addr().unwrap());
    let router = wx.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let settings = json!({"appid": APPID, "mchid": MCHID, "merchant_serial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "platform_key_id": fixtures::PUBLIC_KEY_ID, "platform_public_key_pem": fixtures::PLATFORM_PUBLIC_PEM,
        "base_url": w.sb_url, "notify_base": w.app.url(""), "app_secret": "mini-secret", "login_base_url": wx_url});
    let saved = w.json(Method::PUT, "/api/v1/pay/settings", Some(&settings)).await;
    assert_eq!(saved["has_app_secret"], true);
    // A customer profile already known by this unionid (from WeCom): the buyer joins it.
    let customer = w.json(Method::POST, "/api/v1/customers", Some(&json!({"name": "小程序老客"}))).await;
    let cid: uuid::Uuid = customer["id"].as_str().unwrap().parse().unwrap();
    let (t, store) = (w.seed.tenant, &w.app.store.store);
    siyu_store::on_write!(store, |p| {
        sqlx::query(
        "INSERT INTO customer_identities (tenant_id, kind, namespace, value, customer_id, source, strength, observed_at, actor) \
         VALUES ($1, 'unionid', '', 'u-1', $2, 'wecom', 'strong', 0, 'test')"
    )
    .bind(t.0)
    .bind(cid)
    .execute(p)
    .await
    .unwrap()
    .rows_affected()
    });
    let code = wx.issue_login_code("o-mini-1", Some("u-1"));
    let r = reqwest::Client::new().post(&url).json(&json!({"code": code})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let session: Value = r.json().await.unwrap();
    let token = session["token"].as_str().unwrap();
    let mine: Value = w.mall(token, Method::GET, "/orders", None).await.json().await.unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 0);
    let p = w.product("会员礼", &[("标准", 100, 5)], None).await;
    let order = w.order(token, &p["skus"][0]["id"], 1).await;
    assert_eq!(order["customer_id"], customer["id"], "the order joins the customer's profile");
    // 定向发券: a segment of tagged customers; only members with a mall account can hold one.
    let group = w.json(Method::POST, "/api/v1/tag-groups", Some(&json!({"name": "会员"}))).await;
    let tag = w.json(Method::POST, "/api/v1/tags", Some(&json!({"group_id": group["id"], "name": "老客"}))).await;
    let other = w.json(Method::POST, "/api/v1/customers", Some(&json!({"name": "没有商城账号"}))).await;
    for c in [&customer, &other] {
        let path = format!("/api/v1/customers/{}/tags/{}", c["id"].as_str().unwrap(), tag["id"].as_str().unwrap());
        assert!(w.api(Method::PUT, &path, None).await.status().is_success());
    }
    let segment =
        w.json(Method::POST, "/api/v1/segments", Some(&json!({"name": "老客", "expr": {"tag": tag["id"]}}))).await;
    let tpl = w
        .json(
            Method::POST,
            "/api/v1/coupon-templates",
            Some(&json!({"name": "老客回馈", "kind": "amount", "face_fen": 500,
            "valid_days": 30, "total": 10, "per_user": 1})),
        )
        .await;
    let path = format!("/api/v1/coupon-templates/{}/issue", tpl["id"].as_str().unwrap());
    let out = w.json(Method::POST, &path, Some(&json!({"segment_id": segment["id"]}))).await;
    assert_eq!(
        (out["issued"].as_u64(), out["refused"].as_u64(), out["without_mall_account"].as_u64()),
        (Some(1), Some(0), Some(1))
    );
    let again = w.json(Method::POST, &path, Some(&json!({"segment_id": segment["id"]}))).await;
    assert_eq!(again["refused"], 1, "the per-customer limit holds for issued coupons too");
    let mine: Value = w.mall(token, Method::GET, "/coupons", None).await.json().await.unwrap();
    assert!(mine["mine"].as_array().unwrap().iter().any(|c| c["template_id"] == tpl["id"]));
    let owner = w.app.session("mall", "owner").await;
    let form = [("_csrf", owner.csrf.as_str()), ("segment_id", segment["id"].as_str().unwrap())];
    let r = owner
        .client
        .post(w.app.url(&format!("/console/coupons/{}/issue", tpl["id"].as_str().unwrap())))
        .form(&form)
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("已发放 0 张；1 人因限领或已领完未发；1 人尚无商城账号"), "{page}");
    // The same openid is the same buyer; a used code is refused with WeChat's reason.
    let again = wx.issue_login_code("o-mini-1", None);
    let r: Value =
        reqwest::Client::new().post(&url).json(&json!({"code": again})).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["buyer_id"], session["buyer_id"]);
    let r = reqwest::Client::new().post(&url).json(&json!({"code": code})).send().await.unwrap();
    let v = problem(r, 409).await;
    assert_eq!(v["code"], "login_failed");
    assert!(v["detail"].as_str().unwrap().contains("40029"), "{v}");
});

both!(promotions_price_orders_while_they_run, |w| async move {
    let p = w.product("茶杯", &[("白", 5000, 100)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let buyer = w.buyer("o-promo").await;
    let now = w.clock.now();
    let at = |d: i64| Timestamp(now.0 + d * 3_600_000_000).to_rfc3339(8);
    let tiers = json!({"name": "满100减10，满200减30", "kind": "tiers",
        "tiers": [{"threshold_fen": 20000, "off_fen": 3000}, {"threshold_fen": 10000, "off_fen": 1000}],
        "starts_at": at(-1), "ends_at": at(24)});
    let promo = w.json(Method::POST, "/api/v1/promotions", Some(&tiers)).await;
    let clash = json!({"name": "重叠", "kind": "percent", "threshold_fen": 100, "off_bp": 1000, "starts_at": at(12), "ends_at": at(48)});
    assert_eq!(
        problem(w.api(Method::POST, "/api/v1/promotions", Some(&clash)).await, 409).await["code"],
        "promotion_overlaps"
    );
    let quote = |qty: u32| {
        let (w, buyer, sku) = (&w, &buyer, &sku);
        async move {
            let body = json!({"items": [{"sku_id": sku, "qty": qty}]});
            w.mall(buyer, Method::POST, "/quote", Some(&body)).await.json::<Value>().await.unwrap()["payable_fen"]
                .as_i64()
                .unwrap()
        }
    };
    // Thresholds are ≥ in fen: exactly 100 yuan meets 满100; the highest tier met applies.
    assert_eq!(quote(1).await, 5000);
    assert_eq!(quote(2).await, 9000);
    assert_eq!(quote(3).await, 14000);
    assert_eq!(quote(4).await, 17000);
    let order = w.order(&buyer, &sku, 3).await;
    assert_eq!(order["payable_fen"], 14000);
    let shares: Vec<i64> = order["lines"][0]["units"].as_array().unwrap().iter().map(|u| u.as_i64().unwrap()).collect();
    assert_eq!(shares, vec![4666, 4667, 4667], "1000 off three units: 334 + 333 + 333, the tie to the first");
    assert_eq!(order["lines"][0]["shares"][0]["kind"], "full_reduction");
    // Once it ends (or is stopped), prices are whole again.
    w.clock.advance(Duration::from_secs(25 * 3600));
    assert_eq!(quote(2).await, 10000);
    w.clock.set(now);
    w.json(Method::POST, &format!("/api/v1/promotions/{}/stop", promo["id"].as_str().unwrap()), None).await;
    assert_eq!(quote(2).await, 10000);
    // The console sets one up by days, in yuan.
    let owner = w.app.session("mall", "owner").await;
    let today = siyu_core::time::format_day(now.local_day(8));
    let form = [
        ("_csrf", owner.csrf.as_str()),
        ("name", "每满50减5"),
        ("kind", "every"),
        ("step", "50"),
        ("off", "5"),
        ("from", today.as_str()),
        ("to", today.as_str()),
    ];
    let r = owner.client.post(w.app.url("/console/promotions")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("每满 ¥50.00 减 ¥5.00") && page.contains("进行中"), "{page}");
    assert_eq!(quote(3).await, 15000 - 1500);
});

both!(a_presale_takes_a_deposit_then_its_balance, |w| async move {
    const H: i64 = 3600;
    let tpl = w.json(Method::POST, "/api/v1/shipping-templates", Some(&json!({"name": "运费", "fee_fen": 1000}))).await;
    let phone = w.product("新款手机", &[("黑", 30000, 10)], tpl["id"].as_str()).await;
    let sku = phone["skus"][0]["id"].clone();
    let watch = w.product("手表", &[("银", 9900, 5)], None).await;
    let watch_sku = watch["skus"][0]["id"].clone();
    let t0 = w.clock.now();
    let at = |secs: i64| Timestamp(t0.0 + secs * 1_000_000).to_rfc3339(8);
    let presale = |name: &str, sku: &Value, forfeit: bool, quota: i64| {
        json!({"name": name, "deposit_start": at(-1), "deposit_end": at(2 * H), "final_start": at(3 * H),
            "final_end": at(5 * H), "ship_from": at(6 * H), "deposit_forfeit": forfeit,
            "skus": [{"sku_id": sku, "price_fen": 30000, "deposit_fen": 5000, "deposit_value_fen": 10000, "quota": quota}]})
    };
    // Windows out of order, and a deposit worth so much that no balance is left.
    let mut bad = presale("坏", &sku, true, 3);
    bad["final_start"] = json!(at(H));
    let r = w.api(Method::POST, "/api/v1/presales", Some(&bad)).await;
    assert_eq!(problem(r, 422).await["errors"][0]["field"], "final_start");
    let mut bad = presale("坏", &sku, true, 3);
    bad["skus"][0]["deposit_value_fen"] = json!(30000);
    let r = w.api(Method::POST, "/api/v1/presales", Some(&bad)).await;
    assert_eq!(problem(r, 422).await["errors"][0]["field"], "skus.0.price_fen");
    let ps = w.json(Method::POST, "/api/v1/presales", Some(&presale("双11 预售", &sku, true, 3))).await;
    assert_eq!((ps["phase"].as_str(), ps["skus"][0]["balance_fen"].as_i64()), (Some("deposit"), Some(20000)));
    // STK-1: the SKU is in one presale at a time.
    let r = w.api(Method::POST, "/api/v1/presales", Some(&presale("又一个", &sku, false, 3))).await;
    assert_eq!(problem(r, 409).await["code"], "presale_overlaps");
    let ps2 = w.json(Method::POST, "/api/v1/presales", Some(&presale("手表预售", &watch_sku, false, 10))).await;
    let buy = |s: &Value, qty: u32, p: &Value| json!({"items": [{"sku_id": s, "qty": qty}], "presale_id": p["id"]});

    // A presale SKU does not sell at its normal price meanwhile, and a presale order takes no coupon.
    let a = w.buyer("o-presale-a").await;
    let r = w.mall(&a, Method::POST, "/orders", Some(&json!({"items": [{"sku_id": sku, "qty": 1}]}))).await;
    assert_eq!(problem(r, 409).await["code"], "sku_in_presale");
    // Two units: each costs its 5,000 deposit and its 20,000 balance (the deposit is worth 10,000).
    let oa = w.order_with(&a, &buy(&sku, 2, &ps)).await;
    assert_eq!((oa["payable_fen"].as_i64(), oa["deposit_fen"].as_i64()), (Some(51000), Some(10000)));
    assert_eq!((oa["balance_fen"].as_i64(), oa["kind"].as_str()), (Some(41000), Some("presale")));
    let b = w.buyer("o-presale-b").await;
    let r = w.mall(&b, Method::POST, "/orders", Some(&buy(&sku, 2, &ps))).await;
    assert_eq!(problem(r, 409).await["code"], "presale_sold_out", "the quota is 3");
    let ob = w.order_with(&b, &buy(&sku, 1, &ps)).await;
    let deposit_no = w.pay(&a, &oa).await;
    w.pay(&b, &ob).await;
    assert_eq!(w.sb.order(&deposit_no).unwrap().transaction.amount.total, 10000, "the deposit alone is charged");
    let d = w.detail(&oa).await;
    assert_eq!(
        (d["order"]["status"].as_str(), d["order"]["paid_fen"].as_i64()),
        (Some("awaiting_balance"), Some(10000))
    );
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.reserved, s.sold), (7, 0, 3), "stock is committed at the deposit");
    // Before the balance window: no balance, no refund, no shipping.
    let oid = oa["id"].as_str().unwrap();
    let r = w.mall(&a, Method::POST, &format!("/orders/{oid}/pay"), None).await;
    assert_eq!(problem(r, 409).await["code"], "balance_not_open");
    let one = json!({"lines": [{"line_no": 0, "qty": 1}]});
    let r = w.mall(&a, Method::POST, &format!("/orders/{oid}/refunds"), Some(&one)).await;
    assert_eq!(problem(r, 409).await["code"], "presale_awaiting_balance");

    // The watch presale is cancelled: the unpaid order is cancelled and the paid deposit
    // refunded, although its terms would have kept a lapsed one.
    let c = w.buyer("o-presale-c").await;
    let oc = w.order_with(&c, &buy(&watch_sku, 1, &ps2)).await;
    w.pay(&c, &oc).await;
    let od = w.order_with(&w.buyer("o-presale-d").await, &buy(&watch_sku, 2, &ps2)).await;
    let out = w.json(Method::POST, &format!("/api/v1/presales/{}/cancel", ps2["id"].as_str().unwrap()), None).await;
    assert_eq!(
        (out["cancelled"].as_i64(), out["closed"].as_i64(), out["failed"].as_i64()),
        (Some(1), Some(1), Some(0))
    );
    assert_eq!(w.detail(&od).await["order"]["status"], "cancelled");
    let dc = w.detail(&oc).await;
    assert_eq!(dc["order"]["status"], "cancelled");
    assert_eq!(dc["refunds"][0]["kind"], "presale_deposit");
    assert_eq!(dc["refunds"][0]["amount_fen"], 5000);
    let s = w.sku(&watch_sku).await;
    assert_eq!((s.on_hand, s.reserved, s.sold), (5, 0, 0));

    // The balance window: A pays the rest.
    w.clock.advance(Duration::from_secs(3 * H as u64));
    let balance_no = w.pay(&a, &oa).await;
    assert_ne!(balance_no, deposit_no);
    assert_eq!(w.sb.order(&balance_no).unwrap().transaction.amount.total, 41000);
    let d = w.detail(&oa).await;
    assert_eq!((d["order"]["status"].as_str(), d["order"]["paid_fen"].as_i64()), (Some("paid"), Some(51000)));
    let ship = json!({"carrier": "顺丰", "tracking_no": "SF1"});
    let r = w.api(Method::POST, &format!("/api/v1/orders/{oid}/ship"), Some(&ship)).await;
    assert_eq!(problem(r, 409).await["code"], "ship_too_early");
    // A full refund spreads over both payments: the balance's first, then the deposit's.
    let full = json!({"lines": [{"line_no": 0, "qty": 2}], "shipping": true});
    let r: Value = w.json(Method::POST, &format!("/api/v1/orders/{oid}/refunds"), Some(&full)).await;
    assert_eq!(r["amount_fen"], 41000);
    let d = w.detail(&oa).await;
    let mut parts: Vec<i64> =
        d["refunds"].as_array().unwrap().iter().map(|r| r["amount_fen"].as_i64().unwrap()).collect();
    parts.sort();
    assert_eq!(parts, [10000, 41000]);

    // B never pays the balance: the sweep closes the order, its unit returns, and "定金不退" keeps the deposit.
    w.clock.advance(Duration::from_secs(2 * H as u64 + 60));
    let gw = siyu_web::pay::PayGateway::new(w.app.store.store.clone());
    assert_eq!(gw.sweep().await.unwrap().timed_out, 1);
    let db = w.detail(&ob).await;
    assert_eq!((db["order"]["status"].as_str(), db["order"]["refunded_fen"].as_i64()), (Some("cancelled"), Some(0)));
    assert!(db["refunds"].as_array().unwrap().is_empty());
    gw.push_refunds(10).await.unwrap();
    w.sb.settle_refunds().await;
    let d = w.detail(&oa).await;
    assert_eq!(d["order"]["refunded_fen"], 51000, "{d}");
    assert!(d["refunds"].as_array().unwrap().iter().all(|r| r["status"] == "succeeded"), "{d}");
    assert_eq!(w.detail(&oc).await["refunds"][0]["status"], "succeeded");
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.reserved, s.sold), (10, 0, 0), "refunded and lapsed units are back");
    let ps = w.json(Method::GET, &format!("/api/v1/presales/{}", ps["id"].as_str().unwrap()), None).await;
    assert_eq!((ps["skus"][0]["taken"].as_i64(), ps["stats"]["paid"].as_i64()), (Some(2), Some(1)));
    assert_eq!(ps["stats"]["cancelled"], 1);
});

both!(the_console_runs_presales, |w| async move {
    let owner = w.app.session("mall", "owner").await;
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        let (owner, w) = (&owner, &w);
        let path = path.to_string();
        async move {
            let mut f = vec![("_csrf", owner.csrf.clone())];
            f.extend(form);
            let r = owner.client.post(w.app.url(&path)).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let p = w.product("蓝牙耳机", &[("白", 59900, 100), ("黑", 62900, 100)], None).await;
    let local = |secs: i64| {
        let t = Timestamp(w.clock.now().0 + secs * 1_000_000).to_rfc3339(8);
        t[..16].to_string()
    };
    let form = |value: &str| -> Vec<(&'static str, String)> {
        vec![
            ("name", "耳机预售".into()),
            ("product_id", p["id"].as_str().unwrap().into()),
            ("deposit_start", local(-3600)),
            ("deposit_end", local(86_400)),
            ("final_start", local(2 * 86_400)),
            ("final_end", local(3 * 86_400)),
            ("deposit", "50".into()),
            ("deposit_value", value.into()),
            ("quota", "20".into()),
            ("deposit_forfeit", "1".into()),
        ]
    };
    let (code, page) = post("/console/presales", form("600")).await;
    assert_eq!(code, 422);
    assert!(page.contains("尾款"), "a deposit worth the whole price leaves no balance: {page}");
    let (code, page) = post("/console/presales", form("100")).await;
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("耳机预售") && page.contains("付定金中") && page.contains("定金 ¥50.00 抵 ¥100.00"),
        "{page}"
    );
    assert!(page.contains("预售价 ¥599.00") && page.contains("预售价 ¥629.00"), "each SKU keeps its price: {page}");
    let (code, page) = post("/console/presales", form("100")).await;
    assert_eq!(code, 422, "{page}");
    assert!(page.contains("该规格同一时间已在另一个预售中"), "{page}");
    // A buyer pays a deposit; cancelling the presale refunds it.
    let ps = &w.json(Method::GET, "/api/v1/presales", None).await[0];
    let buyer = w.buyer("o-console-presale").await;
    let o = w
        .order_with(&buyer, &json!({"items": [{"sku_id": p["skus"][0]["id"], "qty": 1}], "presale_id": ps["id"]}))
        .await;
    w.pay(&buyer, &o).await;
    let (code, page) = post(&format!("/console/presales/{}/cancel", ps["id"].as_str().unwrap()), vec![]).await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("退定金 1 单") && page.contains("已取消"), "{page}");
    let r = owner.send(&w.app, Method::GET, &format!("/console/orders/{}", o["id"].as_str().unwrap()), None).await;
    let page = r.text().await.unwrap();
    assert!(page.contains("presale-deposit") && page.contains("¥50.00"), "{page}");
    let d = w.detail(&o).await;
    assert_eq!(
        (d["order"]["status"].as_str(), d["refunds"][0]["amount_fen"].as_i64()),
        (Some("cancelled"), Some(5000))
    );
});

both!(past_orders_are_imported_once, |w| async move {
    use siyu_store::commerce::orders::{PastLine, PastOrder};
    let p = w.product("陶瓷杯", &[("白", 1250, 10)], None).await;
    let sku = siyu_core::SkuId(p["skus"][0]["id"].as_str().unwrap().parse().unwrap());
    let product = siyu_core::ProductId(p["id"].as_str().unwrap().parse().unwrap());
    let at = Timestamp::parse_rfc3339("2011-03-01T10:00:00+08:00").unwrap();
    let line = |qty, unit_fen| PastLine { sku, product, title: "陶瓷杯".into(), qty, unit_fen };
    let past = vec![
        PastOrder {
            no: "OR536365".into(),
            openid: "online-retail-17850".into(),
            customer: None,
            at,
            lines: vec![line(6, 255), line(2, 339)],
        },
        PastOrder {
            no: "OR536366".into(),
            openid: "online-retail-17850".into(),
            customer: None,
            at,
            lines: vec![line(1, 185)],
        },
    ];
    let store = &w.app.store;
    assert_eq!(store.import_past_orders(w.seed.tenant, &past).await.unwrap(), 2);
    assert_eq!(store.import_past_orders(w.seed.tenant, &past).await.unwrap(), 0, "by number, once");
    let list = w.json(Method::GET, "/api/v1/orders?q=OR5363", None).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let first = items.iter().find(|o| o["no"] == "OR536365").unwrap();
    assert_eq!((first["kind"].as_str(), first["status"].as_str()), (Some("import"), Some("completed")));
    assert_eq!((first["payable_fen"].as_i64(), first["paid_fen"].as_i64()), (Some(6 * 255 + 2 * 339), Some(2208)));
    assert_eq!(first["lines"][1]["paid_fen"], 678);
    assert_eq!(first["buyer_id"], items[1]["buyer_id"], "one buyer per source customer");
    let s = w.sku(&p["skus"][0]["id"]).await;
    assert_eq!((s.on_hand, s.sold), (10, 9), "history counts as sold, not as stock taken");
    // Money paid elsewhere is not refunded through WeChat Pay.
    let r = w
        .api(
            Method::POST,
            &format!("/api/v1/orders/{}/refunds", first["id"].as_str().unwrap()),
            Some(&json!({"lines": [{"line_no": 0, "qty": 1}]})),
        )
        .await;
    assert_eq!(problem(r, 409).await["code"], "order_not_paid");
});

both!(item_discounts_price_checkout_while_they_run, |w| async move {
    let p = w.product("香薰蜡烛", &[("大", 12900, 20), ("小", 6900, 20)], None).await;
    let (big, small) = (p["skus"][0]["id"].clone(), p["skus"][1]["id"].clone());
    let t0 = w.clock.now();
    let at = |secs: i64| Timestamp(t0.0 + secs * 1_000_000).to_rfc3339(8);
    let limited = |name: &str, price: i64| {
        json!({"name": name, "kind": "limited_price", "starts_at": at(-60), "ends_at": at(600),
            "skus": [{"sku_id": big, "price_fen": price}]})
    };
    let r = w.api(Method::POST, "/api/v1/discounts", Some(&limited("不是折扣", 12900))).await;
    assert_eq!(problem(r, 409).await["code"], "not_a_discount");
    let d = w.json(Method::POST, "/api/v1/discounts", Some(&limited("限时折扣", 9900))).await;
    assert_eq!(d["items"][0]["list_fen"], 12900);
    // STK-1: one 限时折扣 per SKU at a time.
    let r = w.api(Method::POST, "/api/v1/discounts", Some(&limited("又一个", 9000))).await;
    assert_eq!(problem(r, 409).await["code"], "discount_overlaps");
    let half = json!({"name": "第二件半价", "kind": "second_half", "starts_at": at(-60), "ends_at": at(600),
        "product_ids": [p["id"]]});
    w.json(Method::POST, "/api/v1/discounts", Some(&half)).await;
    let buyer = w.buyer("o-discounts").await;
    let quote = |items: Value| {
        let (w, buyer) = (&w, &buyer);
        async move {
            let r = w.mall(buyer, Method::POST, "/quote", Some(&json!({"items": items}))).await;
            r.json::<Value>().await.unwrap()
        }
    };
    // The big one at its limited price, which takes no item promotion besides; the two small
    // ones pair up, and the second is half price.
    let q = quote(json!([{"sku_id": big, "qty": 1}, {"sku_id": small, "qty": 2}])).await;
    assert_eq!(q["payable_fen"], 9900 + 6900 + 3450, "{q}");
    let kinds: Vec<&str> =
        q["quote"]["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["activity_price", "second_half"]);
    // The order keeps the price it was quoted at, even paid after the discount ends (LD-1).
    let o = w.order_with(&buyer, &json!({"items": [{"sku_id": big, "qty": 1}]})).await;
    assert_eq!(o["payable_fen"], 9900);
    w.clock.advance(Duration::from_secs(900));
    w.pay(&buyer, &o).await;
    assert_eq!(w.detail(&o).await["order"]["paid_fen"], 9900);
    let q = quote(json!([{"sku_id": big, "qty": 1}, {"sku_id": small, "qty": 2}])).await;
    assert_eq!(q["payable_fen"], 12900 + 6900 * 2, "both ended");
    // Stopping one early ends it at once.
    let mut later = limited("下一个", 9000);
    later["starts_at"] = json!(at(1200));
    later["ends_at"] = json!(at(3000));
    let d2 = w.json(Method::POST, "/api/v1/discounts", Some(&later)).await;
    assert_eq!(quote(json!([{"sku_id": big, "qty": 1}])).await["payable_fen"], 12900, "not started yet");
    let mut now_on = limited("现在", 9000);
    now_on["starts_at"] = json!(at(800));
    now_on["ends_at"] = json!(at(7200));
    let r = w.api(Method::POST, "/api/v1/discounts", Some(&now_on)).await;
    assert_eq!(problem(r, 409).await["code"], "discount_overlaps");
    w.json(Method::POST, &format!("/api/v1/discounts/{}/stop", d2["id"].as_str().unwrap()), None).await;
    w.json(Method::POST, "/api/v1/discounts", Some(&now_on)).await;
    assert_eq!(quote(json!([{"sku_id": big, "qty": 2}])).await["payable_fen"], 18000);

    // The console sets a 8.5 折 limited price on every SKU of a product.
    let owner = w.app.session("mall", "owner").await;
    let other = w.product("茶具", &[("青", 10000, 5), ("白", 999, 5)], None).await;
    let post = |form: Vec<(&'static str, String)>| {
        let (owner, w) = (&owner, &w);
        async move {
            let mut f = vec![("_csrf", owner.csrf.clone())];
            f.extend(form);
            let r = owner.client.post(w.app.url("/console/discounts")).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let today = Timestamp(w.clock.now().0).to_rfc3339(8)[..10].to_string();
    let form = |zhe: &str| {
        vec![
            ("name", "茶具特惠".into()),
            ("kind", "limited_price".into()),
            ("product_id", other["id"].as_str().unwrap().to_string()),
            ("zhe", zhe.to_string()),
            ("from", today.clone()),
            ("to", today.clone()),
        ]
    };
    let (code, page) = post(form("10")).await;
    assert_eq!(code, 422, "{page}");
    assert!(page.contains("0.1 to 9.9") || page.contains("折扣"), "{page}");
    let (code, page) = post(form("8.5")).await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("¥100.00 → ¥85.00") && page.contains("¥9.99 → ¥8.49"), "{page}");
    let r = reqwest::get(w.app.url(&format!("/m/mall/p/{}", other["id"].as_str().unwrap()))).await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("限时折扣 ¥85.00"), "{page}");
});

both!(the_daily_bill_is_reconciled, |w| async move {
    let p = w.product("花瓶", &[("蓝", 4500, 10)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let buyer = w.buyer("o-bill").await;
    let kept = w.order(&buyer, &sku, 1).await;
    w.pay(&buyer, &kept).await;
    let back = w.order(&buyer, &sku, 2).await;
    w.pay(&buyer, &back).await;
    let full = json!({"lines": [{"line_no": 0, "qty": 2}]});
    w.json(Method::POST, &format!("/api/v1/orders/{}/refunds", back["id"].as_str().unwrap()), Some(&full)).await;
    let gw = siyu_web::pay::PayGateway::new(w.app.store.store.clone());
    gw.push_refunds(10).await.unwrap();
    w.sb.settle_refunds().await;
    // A payment siyu never heard of: its notification went nowhere and nothing here asked.
    let store = &w.app.store;
    let creds = store.pay_credentials(w.seed.tenant).await.unwrap();
    let client = siyu_web::pay::client(store, &creds).unwrap();
    let stray = siyu_pay::JsapiOrder {
        description: "别处的订单".into(),
        out_trade_no: "ELSEWHERE1".into(),
        time_expire: None,
        attach: None,
        notify_url: "http://127.0.0.1:9/pay/notify".into(),
        total_fen: 777,
        openid: "o-bill".into(),
    };
    client.jsapi_prepay(&stray).await.unwrap();
    w.sb.pay("ELSEWHERE1").await.unwrap();
    let day = w.clock.now().to_rfc3339(8)[..10].to_string();
    // Today's bill does not exist yet.
    let r = w.api(Method::POST, "/api/v1/pay/reconciliations", Some(&json!({"bill_date": day}))).await;
    assert_eq!(problem(r, 422).await["errors"][0]["field"], "bill_date");
    // The next Beijing day at 11:00 the job reconciles yesterday's bill, once.
    let now = w.clock.now().unix_secs();
    let next_11 = ((now + 8 * 3600) / 86_400 + 1) * 86_400 + 11 * 3600 - 8 * 3600;
    w.clock.advance(Duration::from_secs((next_11 - now) as u64));
    assert_eq!(gw.reconcile_due().await.unwrap(), 1);
    assert_eq!(gw.reconcile_due().await.unwrap(), 0, "a day runs once");
    let runs = w.json(Method::GET, "/api/v1/pay/reconciliations", None).await;
    let run = &runs[0];
    assert_eq!((run["bill_date"].as_str(), run["status"].as_str()), (Some(day.as_str()), Some("unmatched")));
    assert_eq!((run["lines"].as_i64(), run["matched"].as_i64()), (Some(4), Some(3)), "{run}");
    assert_eq!(run["problems"][0]["code"], "unknown_payment");
    assert!(run["problems"][0]["detail"].as_str().unwrap().contains("ELSEWHERE1"));
    // Run again by hand: the same answer; the console lists the difference.
    let again = w.json(Method::POST, "/api/v1/pay/reconciliations", Some(&json!({"bill_date": day}))).await;
    assert_eq!((again["matched"].as_i64(), again["problems"].as_array().map(Vec::len)), (Some(3), Some(1)));
    let owner = w.app.session("mall", "owner").await;
    let page = owner.send(&w.app, Method::GET, "/console/pay", None).await.text().await.unwrap();
    assert!(page.contains("账单有、系统无的支付") && page.contains("3 / 4"), "{page}");
    // A day without trade reconciles clean.
    let before = Timestamp(w.clock.now().0 - 5 * 86_400_000_000).to_rfc3339(8)[..10].to_string();
    let quiet = w.json(Method::POST, "/api/v1/pay/reconciliations", Some(&json!({"bill_date": before}))).await;
    assert_eq!((quiet["status"].as_str(), quiet["lines"].as_i64()), (Some("matched"), Some(0)));
});

both!(bundles_price_their_products_together, |w| async move {
    let tea = w.product("龙井", &[("50g", 12800, 20)], None).await;
    let cup = w.product("茶杯", &[("白", 3900, 20)], None).await;
    let t0 = w.clock.now();
    let at = |secs: i64| Timestamp(t0.0 + secs * 1_000_000).to_rfc3339(8);
    let bundle = |price: i64| {
        json!({"name": "一茶两杯", "kind": "bundle", "starts_at": at(-60), "ends_at": at(3600),
            "components": [{"product_id": tea["id"], "qty": 1}, {"product_id": cup["id"], "qty": 2}],
            "bundle_price_fen": price})
    };
    // BD-1: the bundle must cost less than its parts (128 + 2 × 39 = 206 yuan).
    let r = w.api(Method::POST, "/api/v1/discounts", Some(&bundle(20600))).await;
    assert_eq!(problem(r, 409).await["code"], "not_a_discount");
    let r = w.api(Method::POST, "/api/v1/discounts", Some(&json!({"name": "x", "kind": "bundle",
        "starts_at": at(0), "ends_at": at(60), "components": [{"product_id": tea["id"], "qty": 1}], "bundle_price_fen": 1}))).await;
    assert_eq!(problem(r, 422).await["errors"][0]["field"], "components");
    let d = w.json(Method::POST, "/api/v1/discounts", Some(&bundle(18000))).await;
    assert_eq!((d["bundle_price_fen"].as_i64(), d["items"].as_array().map(Vec::len)), (Some(18000), Some(2)));
    let buyer = w.buyer("o-bundle").await;
    let quote = |items: Value| {
        let (w, buyer) = (&w, &buyer);
        async move {
            w.mall(buyer, Method::POST, "/quote", Some(&json!({"items": items}))).await.json::<Value>().await.unwrap()
        }
    };
    let (tea_sku, cup_sku) = (tea["skus"][0]["id"].clone(), cup["skus"][0]["id"].clone());
    // Only the tea and one cup: not the whole bundle, no discount.
    let q = quote(json!([{"sku_id": tea_sku, "qty": 1}, {"sku_id": cup_sku, "qty": 1}])).await;
    assert_eq!(q["payable_fen"], 12800 + 3900);
    // The whole bundle and one cup more: 180 yuan for the bundle, the third cup at its price,
    // and the discount split over the bundle's units pro rata.
    let q = quote(json!([{"sku_id": tea_sku, "qty": 1}, {"sku_id": cup_sku, "qty": 3}])).await;
    assert_eq!(q["payable_fen"], 18000 + 3900, "{q}");
    let step = &q["quote"]["steps"][0];
    assert_eq!((step["kind"].as_str(), step["discount"].as_i64()), (Some("bundle"), Some(2600)));
    let o =
        w.order_with(&buyer, &json!({"items": [{"sku_id": tea_sku, "qty": 1}, {"sku_id": cup_sku, "qty": 3}]})).await;
    let paid: i64 = o["lines"].as_array().unwrap().iter().map(|l| l["paid_fen"].as_i64().unwrap()).sum();
    assert_eq!((o["payable_fen"].as_i64(), paid), (Some(21900), 21900));
    let page = reqwest::get(w.app.url(&format!("/m/mall/p/{}", cup["id"].as_str().unwrap()))).await.unwrap();
    assert!(page.text().await.unwrap().contains("组合套餐 · 一茶两杯 ¥180.00"));
    // The console makes one of a product and a second one.
    let owner = w.app.session("mall", "owner").await;
    let today = Timestamp(w.clock.now().0).to_rfc3339(8)[..10].to_string();
    let form = |price: &str| {
        vec![
            ("_csrf", owner.csrf.clone()),
            ("name", "茶配杯".to_string()),
            ("kind", "bundle".into()),
            ("product_id", tea["id"].as_str().unwrap().to_string()),
            ("product2_id", cup["id"].as_str().unwrap().to_string()),
            ("q2", "1".into()),
            ("bundle_price", price.into()),
            ("from", today.clone()),
            ("to", today.clone()),
        ]
    };
    let r = owner.client.post(w.app.url("/console/discounts")).form(&form("200")).send().await.unwrap();
    let (code, page) = (r.status().as_u16(), r.text().await.unwrap());
    assert_eq!(code, 422, "{page}");
    assert!(page.contains("a bundle must cost less") || page.contains("折扣价必须低于原价"), "{page}");
    let r = owner.client.post(w.app.url("/console/discounts")).form(&form("150")).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("茶配杯") && page.contains("套餐价 ¥150.00") && page.contains("茶杯 ×1"), "{page}");
});

both!(a_gift_comes_with_the_order_while_in_stock, |w| async move {
    let vase = w.product("花瓶", &[("大", 6000, 20)], None).await;
    let gift = w.product("干花", &[("一束", 1500, 1)], None).await;
    let (vase_sku, gift_sku) = (vase["skus"][0]["id"].clone(), gift["skus"][0]["id"].clone());
    let t0 = w.clock.now();
    let at = |secs: i64| Timestamp(t0.0 + secs * 1_000_000).to_rfc3339(8);
    let r = w
        .api(
            Method::POST,
            "/api/v1/promotions",
            Some(&json!({"name": "满100送干花", "kind": "gift", "threshold_fen": 10000, "gift_qty": 1,
                "gift_sku_id": "0194f8e0-0000-7000-8000-000000000001", "starts_at": at(-60), "ends_at": at(3600)})),
        )
        .await;
    assert_eq!(problem(r, 422).await["errors"][0]["field"], "gift_sku_id");
    w.json(
        Method::POST,
        "/api/v1/promotions",
        Some(&json!({"name": "满100送干花", "kind": "gift", "threshold_fen": 10000, "gift_qty": 1,
            "gift_sku_id": gift_sku, "starts_at": at(-60), "ends_at": at(3600)})),
    )
    .await;
    let buyer = w.buyer("o-gift").await;
    let quote = |qty: u32| {
        let (w, buyer, vase_sku) = (&w, &buyer, &vase_sku);
        async move {
            let body = json!({"items": [{"sku_id": vase_sku, "qty": qty}]});
            w.mall(buyer, Method::POST, "/quote", Some(&body)).await.json::<Value>().await.unwrap()
        }
    };
    // Below the threshold: no gift; at exactly ¥120 ≥ ¥100: the gift, free.
    assert!(quote(1).await["gifts"].as_array().unwrap().is_empty());
    let q = quote(2).await;
    assert_eq!((q["gifts"][0]["title"].as_str(), q["payable_fen"].as_i64()), (Some("干花"), Some(12000)));
    let first = w.order(&buyer, &vase_sku, 2).await;
    let lines = first["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[1]["gift"].as_bool(), lines[1]["paid_fen"].as_i64()), (Some(true), Some(0)));
    assert_eq!(first["payable_fen"], 12000);
    let g = w.sku(&gift_sku).await;
    assert_eq!((g.on_hand, g.reserved), (1, 1), "the gift is reserved with the order");
    // The only gift is held: the next order qualifies but goes without.
    assert!(quote(2).await["gifts"].as_array().unwrap().is_empty());
    let second = w.order(&buyer, &vase_sku, 2).await;
    assert_eq!(second["lines"].as_array().unwrap().len(), 1);
    // Cancelled, the first order gives the gift back; paid, the other one's is taken.
    w.mall(&buyer, Method::POST, &format!("/orders/{}/cancel", first["id"].as_str().unwrap()), None).await;
    assert_eq!(w.sku(&gift_sku).await.reserved, 0);
    let third = w.order(&buyer, &vase_sku, 2).await;
    w.pay(&buyer, &third).await;
    let g = w.sku(&gift_sku).await;
    assert_eq!((g.on_hand, g.reserved, g.sold), (0, 0, 1));
    // The console sets one up for later days, naming the gift by its product.
    let owner = w.app.session("mall", "owner").await;
    let day = |d: i64| Timestamp(w.clock.now().0 + d * 86_400_000_000).to_rfc3339(8)[..10].to_string();
    let form = vec![
        ("_csrf", owner.csrf.clone()),
        ("name", "周末满送".to_string()),
        ("kind", "gift".into()),
        ("threshold", "80".into()),
        ("gift_product", gift["id"].as_str().unwrap().to_string()),
        ("gift_qty", "2".into()),
        ("from", day(3)),
        ("to", day(4)),
    ];
    let r = owner.client.post(w.app.url("/console/promotions")).form(&form).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("满 ¥80.00 送 干花 ×2"), "{page}");
});

both!(a_flash_sale_never_oversells, |w| async move {
    let p = w.product("秒杀耳机", &[("黑", 19900, 300)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let t0 = w.clock.now();
    let at = |secs: i64| Timestamp(t0.0 + secs * 1_000_000).to_rfc3339(8);
    let sale = |quota: i64| {
        json!({"name": "整点秒杀", "starts_at": at(-1), "ends_at": at(1800), "per_order": 1, "per_user": 1,
            "timeout_minutes": 5, "skus": [{"sku_id": sku, "price_fen": 990, "quota": quota}]})
    };
    let r = w.api(Method::POST, "/api/v1/flash-sales", Some(&sale(301))).await;
    assert_eq!(problem(r, 409).await["code"], "flash_short_of_stock");
    let fs = w.json(Method::POST, "/api/v1/flash-sales", Some(&sale(50))).await;
    let r = w.api(Method::POST, "/api/v1/flash-sales", Some(&sale(10))).await;
    assert_eq!(problem(r, 409).await["code"], "activity_overlaps");
    // STK-1 holds the other way too: no presale over a SKU in a running flash sale.
    let presale = json!({"name": "预售", "deposit_start": at(0), "deposit_end": at(600), "final_start": at(600),
        "final_end": at(1200), "skus": [{"sku_id": sku, "price_fen": 19900, "deposit_fen": 1000,
        "deposit_value_fen": 1000, "quota": 5}]});
    let r = w.api(Method::POST, "/api/v1/presales", Some(&presale)).await;
    assert_eq!(problem(r, 409).await["code"], "presale_overlaps");
    assert_eq!((w.sku(&sku).await.reserved, w.sku(&sku).await.available), (50, 250), "the quota left the shelf");
    let path = format!("/flash-sales/{}/orders", fs["id"].as_str().unwrap());
    // 200 buyers at once for 50 units: exactly 50 orders at the sale's price.
    let mut buyers = Vec::new();
    for i in 0..200 {
        buyers.push(w.buyer(&format!("o-flash-{i}")).await);
    }
    let w = &w;
    let results = futures::future::join_all(buyers.iter().map(|b| {
        let path = path.clone();
        let sku = sku.clone();
        async move {
            let r = w.mall(b, Method::POST, &path, Some(&json!({"sku_id": sku, "qty": 1}))).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let ok: Vec<&Value> = results.iter().filter(|r| r.0 == 201).map(|r| &r.1).collect();
    assert_eq!(ok.len(), 50);
    assert!(
        results.iter().filter(|r| r.0 != 201).all(|r| r.1["code"] == "sold_out"),
        "{:?}",
        results.iter().find(|r| r.0 != 201)
    );
    assert!(ok.iter().all(|o| o["payable_fen"] == 990 && o["kind"] == "flash"));
    let got = w.json(Method::GET, &format!("/api/v1/flash-sales/{}", fs["id"].as_str().unwrap()), None).await;
    assert_eq!(got["skus"][0]["remaining"], 0);
    // One buyer, one unit: a winner's second order is refused.
    let winner = results.iter().position(|r| r.0 == 201).unwrap();
    let r = w.mall(&buyers[winner], Method::POST, &path, Some(&json!({"sku_id": sku}))).await;
    assert!(matches!(problem(r, 409).await["code"].as_str(), Some("over_user_limit") | Some("sold_out")));
    // An unpaid order cancelled gives its unit back to the pool, and the buyer's allowance.
    let o = ok[0];
    let owner_of = results.iter().position(|r| r.0 == 201 && &r.1 == o).unwrap();
    w.mall(&buyers[owner_of], Method::POST, &format!("/orders/{}/cancel", o["id"].as_str().unwrap()), None).await;
    let got = w.json(Method::GET, &format!("/api/v1/flash-sales/{}", fs["id"].as_str().unwrap()), None).await;
    assert_eq!(got["skus"][0]["remaining"], 1);
    let again = w.mall(&buyers[owner_of], Method::POST, &path, Some(&json!({"sku_id": sku}))).await;
    assert_eq!(again.status(), 201, "the allowance came back with the unit");
    // Paid orders take their units off the shelf; when the sale ends, what is left returns.
    let paid = ok[1];
    let payer = results.iter().position(|r| r.0 == 201 && &r.1 == paid).unwrap();
    w.pay(&buyers[payer], paid).await;
    w.clock.advance(Duration::from_secs(1800));
    let gw = siyu_web::pay::PayGateway::new(w.app.store.store.clone());
    let rep = gw.sweep().await.unwrap();
    assert_eq!(rep.sales_ended, 1);
    assert_eq!(rep.timed_out, 49, "the other unpaid orders time out");
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.reserved, s.sold), (299, 0, 1), "one sold; the rest is back on the shelf");
    assert_eq!(gw.sweep().await.unwrap().sales_ended, 0);
    // The console starts one on another product; the mall lists it with a countdown.
    let other = w.product("秒杀茶具", &[("青", 8800, 30)], None).await;
    let owner = w.app.session("mall", "owner").await;
    let local = Timestamp(w.clock.now().0 - 60_000_000).to_rfc3339(8)[..16].to_string();
    let form = |quota: &str| {
        vec![
            ("_csrf", owner.csrf.clone()),
            ("name", "茶具秒杀".to_string()),
            ("product_id", other["id"].as_str().unwrap().to_string()),
            ("starts_at", local.clone()),
            ("minutes", "30".into()),
            ("price", "9.90".into()),
            ("quota", quota.into()),
            ("per_user", "2".into()),
        ]
    };
    let r = owner.client.post(w.app.url("/console/flash-sales")).form(&form("31")).send().await.unwrap();
    let (code, page) = (r.status().as_u16(), r.text().await.unwrap());
    assert_eq!(code, 422);
    assert!(page.contains("库存不足以划出该名额"), "{page}");
    let r = owner.client.post(w.app.url("/console/flash-sales")).form(&form("20")).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("茶具秒杀") && page.contains("剩余 20&#x2f;20") && page.contains("每人 2 件"), "{page}");
    let page = reqwest::get(w.app.url("/m/mall/flash")).await.unwrap().text().await.unwrap();
    assert!(page.contains("茶具秒杀") && page.contains("¥9.90") && page.contains("m-countdown"), "{page}");
    let home = reqwest::get(w.app.url("/m/mall")).await.unwrap().text().await.unwrap();
    assert!(home.contains("flash-banner"));
});

/// The refunds of an order, as the operator API lists them.
async fn refunds_of(w: &World, order: &Value) -> Vec<Value> {
    let d = w.detail(order).await;
    d["refunds"].as_array().cloned().unwrap_or_default()
}

both!(a_group_fills_exactly_and_fails_with_full_refunds, |w| async move {
    let p = w.product("拼团锅具", &[("28cm", 19900, 100)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let t0 = w.clock.now();
    let at = |secs: i64| Timestamp(t0.0 + secs * 1_000_000).to_rfc3339(8);
    let gb = w
        .json(
            Method::POST,
            "/api/v1/group-buys",
            Some(&json!({"name": "3人团", "starts_at": at(-1), "ends_at": at(86_400), "capacity": 3, "valid_hours": 2,
                "skus": [{"sku_id": sku, "price_fen": 9900, "quota": 50}]})),
        )
        .await;
    // STK-1: the SKU is in the group-buy now, so no flash sale or bargain over it.
    let flash = json!({"name": "秒杀", "starts_at": at(0), "ends_at": at(600),
        "skus": [{"sku_id": sku, "price_fen": 990, "quota": 1}]});
    assert_eq!(
        problem(w.api(Method::POST, "/api/v1/flash-sales", Some(&flash)).await, 409).await["code"],
        "activity_overlaps"
    );
    let bad = json!({"name": "", "starts_at": at(0), "ends_at": at(60), "capacity": 1, "skus": []});
    let v = problem(w.api(Method::POST, "/api/v1/group-buys", Some(&bad)).await, 422).await;
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["name", "capacity", "skus"], "{v}");
    let path = format!("/group-buys/{}/orders", gb["id"].as_str().unwrap());
    // The leader opens a group; nobody joins before they pay.
    let leader = w.buyer("o-gb-leader").await;
    let lo: Value = w.mall(&leader, Method::POST, &path, Some(&json!({"sku_id": sku}))).await.json().await.unwrap();
    assert_eq!((lo["kind"].as_str(), lo["payable_fen"].as_i64()), (Some("group"), Some(9900)), "{lo}");
    let group = lo["group_id"].clone();
    let early = w.buyer("o-gb-early").await;
    let r = w.mall(&early, Method::POST, &path, Some(&json!({"sku_id": sku, "group_id": group}))).await;
    assert_eq!(problem(r, 409).await["code"], "group_not_ready");
    w.pay(&leader, &lo).await;
    assert_eq!(w.detail(&lo).await["order"]["status"], "awaiting_group");
    // GB-10: a member's refund before the group fills is leaving it.
    let r = w
        .mall(
            &leader,
            Method::POST,
            &format!("/orders/{}/refunds", lo["id"].as_str().unwrap()),
            Some(&json!({"lines": [{"line_no": 0, "qty": 1}]})),
        )
        .await;
    assert_eq!(problem(r, 409).await["code"], "group_filling");
    // GB-3: 200 buyers at once for the 2 seats left.
    let mut buyers = Vec::new();
    for i in 0..200 {
        buyers.push(w.buyer(&format!("o-gb-{i}")).await);
    }
    let w = &w;
    let results = futures::future::join_all(buyers.iter().map(|b| {
        let (path, sku, group) = (path.clone(), sku.clone(), group.clone());
        async move {
            let r = w.mall(b, Method::POST, &path, Some(&json!({"sku_id": sku, "group_id": group}))).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let joined: Vec<usize> = (0..200).filter(|i| results[*i].0 == 201).collect();
    assert_eq!(joined.len(), 2, "{:?}", results.iter().find(|r| r.0 != 201 && r.1["code"] != "group_full"));
    assert!(results.iter().filter(|r| r.0 != 201).all(|r| r.1["code"] == "group_full"));
    let g: Value =
        w.mall(&leader, Method::GET, &format!("/groups/{}", group.as_str().unwrap()), None).await.json().await.unwrap();
    assert_eq!((g["seats"].as_i64(), g["paid"].as_i64(), g["capacity"].as_i64()), (Some(3), Some(1), Some(3)));
    // GB-9: a member cannot take a second seat of the same group.
    let r = w.mall(&buyers[joined[0]], Method::POST, &path, Some(&json!({"sku_id": sku, "group_id": group}))).await;
    assert!(matches!(problem(r, 409).await["code"].as_str(), Some("group_full") | Some("already_in_group")));
    // Both pay at once: the 3rd paid member completes the group, and every order ships (GB-5).
    let (a, b) = (&results[joined[0]].1, &results[joined[1]].1);
    tokio::join!(w.pay(&buyers[joined[0]], a), w.pay(&buyers[joined[1]], b));
    for o in [&lo, a, b] {
        assert_eq!(w.detail(o).await["order"]["status"], "to_ship");
    }
    let g: Value =
        w.mall(&leader, Method::GET, &format!("/groups/{}", group.as_str().unwrap()), None).await.json().await.unwrap();
    assert_eq!((g["status"].as_str(), g["paid"].as_i64()), (Some("succeeded"), Some(3)));

    // A second group: the leader leaves and hands over (GB-11); a late joiner pays after the
    // deadline and is refunded (GB-4); the group fails and refunds its member in full (GB-6).
    let (c, d, e) = (w.buyer("o-gb-c").await, w.buyer("o-gb-d").await, w.buyer("o-gb-e").await);
    let co: Value = w.mall(&c, Method::POST, &path, Some(&json!({"sku_id": sku}))).await.json().await.unwrap();
    w.pay(&c, &co).await;
    let g2 = co["group_id"].clone();
    let join = json!({"sku_id": sku, "group_id": g2});
    let d_order: Value = w.mall(&d, Method::POST, &path, Some(&join)).await.json().await.unwrap();
    w.pay(&d, &d_order).await;
    let left: Value = w
        .mall(&c, Method::POST, &format!("/orders/{}/leave-group", co["id"].as_str().unwrap()), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(left["status"], "cancelled", "{left}");
    let rs = refunds_of(w, &co).await;
    assert_eq!((rs.len(), rs[0]["amount_fen"].as_i64(), rs[0]["kind"].as_str()), (1, Some(9900), Some("group_left")));
    let g: Value =
        w.mall(&c, Method::GET, &format!("/groups/{}", g2.as_str().unwrap()), None).await.json().await.unwrap();
    let d_id = w.app.store.buyer_for_openid(w.seed.tenant, "o-gb-d", None).await.unwrap().id;
    assert_eq!(g["leader_id"], json!(d_id.0), "the earliest paid member leads now");
    assert_eq!((g["seats"].as_i64(), g["paid"].as_i64(), g["status"].as_str()), (Some(1), Some(1), Some("open")));
    w.clock.advance(Duration::from_secs(2 * 3600 - 300));
    let e_order: Value = w.mall(&e, Method::POST, &path, Some(&join)).await.json().await.unwrap();
    let before = w.sku(&sku).await;
    w.clock.advance(Duration::from_secs(301));
    w.pay(&e, &e_order).await;
    let ed = w.detail(&e_order).await;
    assert_eq!(ed["order"]["status"], "cancelled", "{ed}");
    assert_eq!(ed["payments"][0]["disposition"], "late", "the late joiner's money goes back");
    let gw = siyu_web::pay::PayGateway::new(w.app.store.store.clone());
    let rep = gw.sweep().await.unwrap();
    assert_eq!(rep.groups_settled, 1);
    assert_eq!(gw.sweep().await.unwrap().groups_settled, 0, "settling twice changes nothing");
    let g: Value =
        w.mall(&c, Method::GET, &format!("/groups/{}", g2.as_str().unwrap()), None).await.json().await.unwrap();
    assert_eq!(g["status"], "failed");
    // GB-8: the refunded orders are exactly the paid members' orders, each in full.
    assert_eq!(w.detail(&d_order).await["order"]["status"], "cancelled");
    let rs = refunds_of(w, &d_order).await;
    assert_eq!((rs.len(), rs[0]["amount_fen"].as_i64(), rs[0]["kind"].as_str()), (1, Some(9900), Some("group_failed")));
    let failed_refunds: Vec<Value> = w.json(Method::GET, "/api/v1/refunds?limit=100", None).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "group_failed")
        .map(|r| r["order_id"].clone())
        .collect();
    assert_eq!(failed_refunds, vec![d_order["id"].clone()]);
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.sold), (before.on_hand + 1, before.sold - 1), "the failed member's unit is back");
    let a = w.json(Method::GET, &format!("/api/v1/group-buys/{}", gb["id"].as_str().unwrap()), None).await;
    assert_eq!(
        (a["groups_succeeded"].as_i64(), a["groups_failed"].as_i64(), a["skus"][0]["taken"].as_i64()),
        (Some(1), Some(1), Some(3))
    );
});

both!(a_group_short_of_members_succeeds_virtually, |w| async move {
    let p = w.product("模拟成团", &[("标准", 5000, 20)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let t0 = w.clock.now();
    let at = |secs: i64| Timestamp(t0.0 + secs * 1_000_000).to_rfc3339(8);
    let gb = w
        .json(
            Method::POST,
            "/api/v1/group-buys",
            Some(&json!({"name": "4人团", "starts_at": at(-1), "ends_at": at(3600), "capacity": 4, "valid_hours": 24,
                "virtual_bp": 5000, "skus": [{"sku_id": sku, "price_fen": 3000, "quota": 20}]})),
        )
        .await;
    let path = format!("/group-buys/{}/orders", gb["id"].as_str().unwrap());
    let (f, g, h) = (w.buyer("o-v-f").await, w.buyer("o-v-g").await, w.buyer("o-v-h").await);
    let fo: Value = w.mall(&f, Method::POST, &path, Some(&json!({"sku_id": sku}))).await.json().await.unwrap();
    w.pay(&f, &fo).await;
    let join = json!({"sku_id": sku, "group_id": fo["group_id"]});
    let go: Value = w.mall(&g, Method::POST, &path, Some(&join)).await.json().await.unwrap();
    w.pay(&g, &go).await;
    let ho: Value = w.mall(&h, Method::POST, &path, Some(&join)).await.json().await.unwrap();
    // The group's deadline is the activity's end, not 24 h on (GB-2).
    let grp: Value = w
        .mall(&f, Method::GET, &format!("/groups/{}", fo["group_id"].as_str().unwrap()), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(grp["expires_at"], json!(Timestamp(t0.0 + 3600 * 1_000_000).to_rfc3339(0)));
    w.clock.advance(Duration::from_secs(3600));
    let gw = siyu_web::pay::PayGateway::new(w.app.store.store.clone());
    assert_eq!(gw.sweep().await.unwrap().groups_settled, 1);
    let grp: Value = w
        .mall(&f, Method::GET, &format!("/groups/{}", fo["group_id"].as_str().unwrap()), None)
        .await
        .json()
        .await
        .unwrap();
    // 2 of 4 paid = 5,000 bp: it succeeds with 2 virtual members, who have no order (GB-7).
    assert_eq!((grp["status"].as_str(), grp["virtual_members"].as_i64()), (Some("succeeded"), Some(2)));
    for o in [&fo, &go] {
        assert_eq!(w.detail(o).await["order"]["status"], "to_ship");
    }
    assert_eq!(w.detail(&ho).await["order"]["status"], "cancelled", "an unpaid seat closes with the group");
    let s = w.sku(&sku).await;
    assert_eq!((s.on_hand, s.reserved, s.sold), (18, 0, 2));
});

both!(a_bargain_lands_on_its_floor_with_the_last_helper, |w| async move {
    let p = w.product("砍价台灯", &[("白", 9900, 50)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let t0 = w.clock.now();
    let at = |secs: i64| Timestamp(t0.0 + secs * 1_000_000).to_rfc3339(8);
    let body = |helpers: i64| {
        json!({"name": "砍到1元", "sku_id": sku, "price_fen": 9900, "floor_fen": 100, "helpers": helpers,
            "quota": 10, "starts_at": at(-1), "ends_at": at(86_400)})
    };
    // BG-1: more helpers than fen to cut is refused.
    let v = problem(w.api(Method::POST, "/api/v1/bargains", Some(&body(9801))).await, 422).await;
    assert_eq!(v["errors"][0]["field"], "helpers");
    let bg = w.json(Method::POST, "/api/v1/bargains", Some(&body(5))).await;
    assert_eq!(
        problem(w.api(Method::POST, "/api/v1/bargains", Some(&body(5))).await, 409).await["code"],
        "activity_overlaps"
    );
    let owner = w.buyer("o-bg-owner").await;
    let start = format!("/bargains/{}/start", bg["id"].as_str().unwrap());
    let rec: Value = w.mall(&owner, Method::POST, &start, None).await.json().await.unwrap();
    assert_eq!((rec["current_fen"].as_i64(), rec["required"].as_i64()), (Some(9900), Some(5)));
    let again: Value = w.mall(&owner, Method::POST, &start, None).await.json().await.unwrap();
    assert_eq!(again["id"], rec["id"], "one bargain per buyer and activity");
    let help = format!("/bargain-records/{}/help", rec["id"].as_str().unwrap());
    assert_eq!(problem(w.mall(&owner, Method::POST, &help, None).await, 409).await["code"], "own_bargain");
    let early = format!("/bargain-records/{}/orders", rec["id"].as_str().unwrap());
    assert_eq!(problem(w.mall(&owner, Method::POST, &early, None).await, 409).await["code"], "bargain_not_done");
    // BG-6: 200 helpers at once; exactly 5 cut, landing exactly on the floor (BG-2).
    let mut helpers = Vec::new();
    for i in 0..200 {
        helpers.push(w.buyer(&format!("o-bg-{i}")).await);
    }
    let w = &w;
    let results = futures::future::join_all(helpers.iter().map(|b| {
        let help = help.clone();
        async move {
            let r = w.mall(b, Method::POST, &help, None).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let cuts: Vec<i64> = results.iter().filter(|r| r.0 == 200).map(|r| r.1["cut_fen"].as_i64().unwrap()).collect();
    assert_eq!(cuts.len(), 5, "{:?}", results.iter().find(|r| r.0 != 200 && r.1["code"] != "bargain_complete"));
    assert!(cuts.iter().all(|c| *c >= 1));
    assert_eq!(cuts.iter().sum::<i64>(), 9800);
    assert!(results.iter().filter(|r| r.0 != 200).all(|r| r.1["code"] == "bargain_complete"));
    let got: Value = w
        .mall(&owner, Method::GET, &format!("/bargain-records/{}", rec["id"].as_str().unwrap()), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (got["current_fen"].as_i64(), got["helpers"].as_i64(), got["helps"].as_array().map(Vec::len)),
        (Some(100), Some(5), Some(5))
    );
    // BG-5: a helper helps one bargain per activity (help_limit 1), and each bargain once.
    let helper = &helpers[results.iter().position(|r| r.0 == 200).unwrap()];
    let other = w.buyer("o-bg-other").await;
    let rec2: Value = w.mall(&other, Method::POST, &start, None).await.json().await.unwrap();
    let help2 = format!("/bargain-records/{}/help", rec2["id"].as_str().unwrap());
    assert_eq!(problem(w.mall(helper, Method::POST, &help2, None).await, 409).await["code"], "help_limit_reached");
    let fresh = &helpers[results.iter().position(|r| r.0 != 200).unwrap()];
    assert_eq!(w.mall(fresh, Method::POST, &help2, None).await.status(), 200);
    assert_eq!(problem(w.mall(fresh, Method::POST, &help2, None).await, 409).await["code"], "already_helped");
    // BG-7: bought at the floor, once; a cancelled order gives the bargain back.
    let buy = || w.mall(&owner, Method::POST, &early, None);
    let o: Value = buy().await.json().await.unwrap();
    assert_eq!((o["kind"].as_str(), o["payable_fen"].as_i64()), (Some("bargain"), Some(100)), "{o}");
    assert_eq!(problem(buy().await, 409).await["code"], "bargain_ordered");
    w.mall(&owner, Method::POST, &format!("/orders/{}/cancel", o["id"].as_str().unwrap()), None).await;
    let o2: Value = buy().await.json().await.unwrap();
    assert_eq!(o2["payable_fen"], 100);
    w.pay(&owner, &o2).await;
    assert_eq!(w.detail(&o2).await["order"]["status"], "paid");
    let a = w.json(Method::GET, &format!("/api/v1/bargains/{}", bg["id"].as_str().unwrap()), None).await;
    assert_eq!((a["started"].as_i64(), a["completed"].as_i64(), a["taken"].as_i64()), (Some(2), Some(1), Some(1)));
    // No help at or after the end (BG-7).
    w.clock.advance(Duration::from_secs(86_400));
    let late = w.buyer("o-bg-late").await;
    assert_eq!(problem(w.mall(&late, Method::POST, &help2, None).await, 409).await["code"], "bargain_closed");
});

both!(the_console_and_the_mall_run_group_buys_and_bargains, |w| async move {
    let p = w.product("拼团茶叶", &[("250g", 12800, 40)], None).await;
    let lamp = w.product("砍价香薰", &[("100ml", 6900, 40)], None).await;
    let owner = w.app.session("mall", "owner").await;
    let local = Timestamp(w.clock.now().0 - 60_000_000).to_rfc3339(8)[..16].to_string();
    let group_form = |capacity: &str| {
        vec![
            ("_csrf", owner.csrf.clone()),
            ("name", "茶叶3人团".to_string()),
            ("product_id", p["id"].as_str().unwrap().to_string()),
            ("starts_at", local.clone()),
            ("hours", "48".into()),
            ("price", "88.00".into()),
            ("quota", "30".into()),
            ("capacity", capacity.into()),
            ("valid_hours", "24".into()),
            ("per_user", "1".into()),
            ("virtual_pct", "60".into()),
        ]
    };
    let r = owner.client.post(w.app.url("/console/group-buys")).form(&group_form("1")).send().await.unwrap();
    let (code, page) = (r.status().as_u16(), r.text().await.unwrap());
    assert_eq!(code, 422);
    assert!(page.contains("成团人数超出允许范围"), "{page}");
    let r = owner.client.post(w.app.url("/console/group-buys")).form(&group_form("3")).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("茶叶3人团") && page.contains("3 人团，24 小时内成团") && page.contains("60.00%"), "{page}");
    let bargain_form = |helpers: &str| {
        vec![
            ("_csrf", owner.csrf.clone()),
            ("name", "香薰砍价".to_string()),
            ("product_id", lamp["id"].as_str().unwrap().to_string()),
            ("starts_at", local.clone()),
            ("hours", "72".into()),
            ("floor", "68.99".into()),
            ("helpers", helpers.into()),
            ("help_limit", "2".into()),
            ("quota", "10".into()),
        ]
    };
    let r = owner.client.post(w.app.url("/console/bargains")).form(&bargain_form("2")).send().await.unwrap();
    let (code, page) = (r.status().as_u16(), r.text().await.unwrap());
    assert_eq!(code, 422, "1 fen of room cannot take 2 helpers");
    assert!(
        page.contains("帮砍人数不能超过差价的分数") || page.contains("too_many_helpers") || page.contains("f-helpers"),
        "{page}"
    );
    let r = owner.client.post(w.app.url("/console/bargains")).form(&bargain_form("1")).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("香薰砍价") && page.contains("¥69.00 砍到 ¥68.99，需 1 人帮砍"), "{page}");
    // The mall: a group opened and paid shows on the list and its share page; a bargain
    // started and helped shows its progress.
    let gb = &w.json(Method::GET, "/api/v1/group-buys", None).await[0];
    let sku = gb["skus"][0]["sku_id"].clone();
    let leader = w.buyer("o-h5-leader").await;
    let o: Value = w
        .mall(
            &leader,
            Method::POST,
            &format!("/group-buys/{}/orders", gb["id"].as_str().unwrap()),
            Some(&json!({"sku_id": sku})),
        )
        .await
        .json()
        .await
        .unwrap();
    w.pay(&leader, &o).await;
    let list = reqwest::get(w.app.url("/m/mall/groups")).await.unwrap().text().await.unwrap();
    assert!(list.contains("茶叶3人团") && list.contains("¥88.00") && list.contains("m-countdown"), "{list}");
    let share = reqwest::get(w.app.url(&format!("/m/mall/group/{}", o["group_id"].as_str().unwrap()))).await.unwrap();
    let share = share.text().await.unwrap();
    assert!(share.contains("拼团中") && share.contains("id=\"group-missing\">2<") && share.contains("参团"), "{share}");
    let bg = &w.json(Method::GET, "/api/v1/bargains", None).await[0];
    let me = w.buyer("o-h5-bargain").await;
    let rec: Value = w
        .mall(&me, Method::POST, &format!("/bargains/{}/start", bg["id"].as_str().unwrap()), None)
        .await
        .json()
        .await
        .unwrap();
    let friend = w.buyer("o-h5-friend").await;
    w.mall(&friend, Method::POST, &format!("/bargain-records/{}/help", rec["id"].as_str().unwrap()), None).await;
    let page = reqwest::get(w.app.url(&format!("/m/mall/bargain/{}", rec["id"].as_str().unwrap()))).await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("已砍到底价") && page.contains("-¥0.01"), "{page}");
    let list = reqwest::get(w.app.url("/m/mall/bargains")).await.unwrap().text().await.unwrap();
    assert!(list.contains("香薰砍价") && list.contains("¥68.99"), "{list}");
    let home = reqwest::get(w.app.url("/m/mall")).await.unwrap().text().await.unwrap();
    assert!(home.contains("id=\"plays\""));
    // The operator stops the group-buy: no new groups.
    let r = owner
        .client
        .post(w.app.url(&format!("/console/group-buys/{}/stop", gb["id"].as_str().unwrap())))
        .form(&[("_csrf", owner.csrf.clone())])
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("已停止"));
    let late = w.buyer("o-h5-late").await;
    let r = w
        .mall(
            &late,
            Method::POST,
            &format!("/group-buys/{}/orders", gb["id"].as_str().unwrap()),
            Some(&json!({"sku_id": sku})),
        )
        .await;
    assert_eq!(problem(r, 409).await["code"], "activity_not_open");
});

both!(a_flash_sale_through_redis_survives_a_restart, start_with_redis, |w| async move {
    use siyu_core::{BuyerId, FlashSaleId, SkuId};
    use siyu_store::commerce::flash_gate::Admission;
    use siyu_store::commerce::orders::CartItem;
    let gate = w.app.gate.clone().unwrap();
    let p = w.product("秒杀音箱", &[("白", 19900, 400)], None).await;
    let sku = p["skus"][0]["id"].clone();
    let sku_id = SkuId(sku.as_str().unwrap().parse().unwrap());
    let t0 = w.clock.now();
    let at = |secs: i64| Timestamp(t0.0 + secs * 1_000_000).to_rfc3339(8);
    let body = |sku: &Value, quota: i64| {
        json!({"name": "整点秒杀", "starts_at": at(-1), "ends_at": at(1800), "per_order": 1, "per_user": 1,
            "timeout_minutes": 5, "skus": [{"sku_id": sku, "price_fen": 990, "quota": quota}]})
    };
    let fs = w.json(Method::POST, "/api/v1/flash-sales", Some(&body(&sku, 180))).await;
    let sale = FlashSaleId(fs["id"].as_str().unwrap().parse().unwrap());
    let path = format!("/flash-sales/{}/orders", sale.0);
    let mut buyers = Vec::new();
    for i in 0..301 {
        buyers.push(w.buyer(&format!("o-redis-{i}")).await);
    }
    let w = &w;
    let grab = |b: &String, key: Option<&str>| {
        let (path, sku, b, key) = (path.clone(), sku.clone(), b.clone(), key.map(str::to_string));
        async move {
            let mut r = reqwest::Client::new()
                .post(w.app.url(&format!("/mall/mall/api{path}")))
                .bearer_auth(&b)
                .json(&json!({"sku_id": sku, "qty": 1}));
            if let Some(k) = key {
                r = r.header("Idempotency-Key", k);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let remaining = || async {
        let got = w.json(Method::GET, &format!("/api/v1/flash-sales/{}", sale.0), None).await;
        got["skus"][0]["remaining"].as_i64().unwrap()
    };

    // 100 buyers at once: the first request loads the sale into Redis, the rest wait for it.
    let first = futures::future::join_all(buyers[..100].iter().map(|b| grab(b, None))).await;
    assert!(first.iter().all(|r| r.0 == 201), "{:?}", first.iter().find(|r| r.0 != 201));
    gate.reconcile().await.unwrap();
    assert_eq!(gate.cached_stock(sale, sku_id).await.unwrap(), Some(80));
    assert_eq!(remaining().await, 80);
    // FS-4 through Redis: the same key twice is one order and one unit.
    let a = grab(&buyers[100], Some("again")).await;
    let b = grab(&buyers[100], Some("again")).await;
    assert_eq!((a.0, b.0), (201, 201));
    assert_eq!(a.1["id"], b.1["id"]);
    assert_eq!(gate.cached_stock(sale, sku_id).await.unwrap(), Some(79));

    // Redis dies while 50 more buyers are at it and comes back empty; then 150 more come for
    // the last units, through the Redis rebuilt from the database.
    let redis = w.redis.as_ref().unwrap();
    let (second, ()) = tokio::join!(futures::future::join_all(buyers[101..151].iter().map(|b| grab(b, None))), async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let mut r = redis.lock().await;
        r.kill();
        tokio::time::sleep(Duration::from_millis(150)).await;
        r.restart().await;
    });
    let third = futures::future::join_all(buyers[151..301].iter().map(|b| grab(b, None))).await;
    let all: Vec<&(u16, Value)> = first.iter().chain(&second).chain(&third).chain([&a]).collect();
    for r in &all {
        assert!(
            r.0 == 201 || (r.0 == 409 && r.1["code"] == "sold_out"),
            "every attempt is an order or sold out, whatever Redis did: {r:?}"
        );
    }
    let orders: std::collections::HashSet<&str> =
        all.iter().filter(|r| r.0 == 201).map(|r| r.1["id"].as_str().unwrap()).collect();
    assert_eq!(orders.len(), 180, "exactly the quota, none lost and none oversold");
    for id in &orders {
        let o = w.json(Method::GET, &format!("/api/v1/orders/{id}"), None).await;
        assert_eq!(
            (o["order"]["kind"].as_str(), o["order"]["status"].as_str()),
            (Some("flash"), Some("pending_payment"))
        );
    }
    assert_eq!(remaining().await, 0);
    w.app.gate.as_ref().unwrap().reconcile().await.unwrap();
    assert_eq!(gate.cached_stock(sale, sku_id).await.unwrap(), Some(0), "Redis agrees with the database");

    // FS-7: a cancelled order's unit goes back to the database's bucket, which Redis does not
    // see; the next buyer hears "sold out" until reconciliation repairs the gap.
    let winner = first[0].1["id"].as_str().unwrap();
    w.mall(&buyers[0], Method::POST, &format!("/orders/{winner}/cancel"), None).await;
    assert_eq!(remaining().await, 1);
    let late = third.iter().position(|r| r.0 == 409).map(|i| &buyers[151 + i]).unwrap();
    assert_eq!(grab(late, None).await.1["code"], "sold_out");
    let rep = gate.reconcile().await.unwrap();
    assert_eq!((rep.repaired_units, rep.recovered), (1, 0));
    assert_eq!(gate.cached_stock(sale, sku_id).await.unwrap(), Some(1));
    let got = w.json(Method::GET, &format!("/api/v1/flash-sales/{}", sale.0), None).await;
    assert_eq!((got["skus"][0]["remaining"].as_i64(), got["skus"][0]["redis_remaining"].as_i64()), (Some(1), Some(1)));
    let owner = w.app.session("mall", "owner").await;
    let page = owner.client.get(w.app.url("/console/flash-sales")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"flash-redis\"") && page.contains("Redis 可抢 1"), "{page}");
    assert_eq!(grab(late, None).await.0, 201);
    assert_eq!(gate.reconcile().await.unwrap().repaired_units, 0, "nothing left to repair");

    // A process dying between pre-deduction and its order: the consumer writes the order...
    let p2 = w.product("秒杀台灯", &[("黑", 9900, 20)], None).await;
    let sku2 = p2["skus"][0]["id"].clone();
    let sku2_id = SkuId(sku2.as_str().unwrap().parse().unwrap());
    let fs2 = w.json(Method::POST, "/api/v1/flash-sales", Some(&body(&sku2, 5))).await;
    let sale2 = FlashSaleId(fs2["id"].as_str().unwrap().parse().unwrap());
    let path2 = format!("/flash-sales/{}/orders", sale2.0);
    let r = w.mall(&buyers[0], Method::POST, &path2, Some(&json!({"sku_id": sku2}))).await;
    assert_eq!(r.status(), 201);
    let buyer_id = |openid: &str| {
        let openid = openid.to_string();
        async move { w.app.store.buyer_for_openid(w.seed.tenant, &openid, None).await.unwrap().id }
    };
    let (crashed, lost): (BuyerId, BuyerId) = (buyer_id("o-redis-1").await, buyer_id("o-redis-2").await);
    let item = CartItem { sku_id: sku2_id, qty: 1 };
    let adm = gate.admit(crashed, sale2, item, "crashed-1").await.unwrap();
    assert!(matches!(adm, Admission::Admitted { .. }), "{adm:?}");
    assert_eq!(gate.cached_stock(sale2, sku2_id).await.unwrap(), Some(3));
    let rep = gate.reconcile().await.unwrap();
    assert_eq!((rep.recovered, rep.repaired_units), (0, 0), "a request in flight is not a gap");
    w.clock.advance(Duration::from_secs(6));
    assert_eq!(gate.reconcile().await.unwrap().recovered, 1);
    let stock2 = w.json(Method::GET, &format!("/api/v1/flash-sales/{}", sale2.0), None).await;
    assert_eq!(stock2["skus"][0]["remaining"], 3, "the order was written");
    let r = reqwest::Client::new()
        .post(w.app.url(&format!("/mall/mall/api{path2}")))
        .bearer_auth(&buyers[1])
        .header("Idempotency-Key", "crashed-1")
        .json(&json!({"sku_id": sku2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the buyer's retry finds the order the consumer wrote");
    assert_eq!(gate.cached_stock(sale2, sku2_id).await.unwrap(), Some(3));
    // ...or gives the units back when the order can no longer be written.
    let adm = gate.admit(lost, sale2, item, "crashed-2").await.unwrap();
    assert!(matches!(adm, Admission::Admitted { .. }), "{adm:?}");
    assert_eq!(gate.cached_stock(sale2, sku2_id).await.unwrap(), Some(2));
    w.clock.advance(Duration::from_secs(1800));
    assert_eq!(gate.reconcile().await.unwrap().recovered, 1);
    assert_eq!(gate.cached_stock(sale2, sku2_id).await.unwrap(), Some(3), "released: the sale had ended");
    let r = w.mall(&buyers[3], Method::POST, &path2, Some(&json!({"sku_id": sku2}))).await;
    assert_eq!(problem(r, 409).await["code"], "sale_not_open");
});

//! HTTP acceptance tests of the platform foundation, each on SQLite and on PostgreSQL.

mod common;

use std::collections::HashMap;

use reqwest::{Client, Method};
use serde_json::{json, Value};

use common::{bearer, problem, App};

/// Every operation in the OpenAPI document: (method, path template, operation).
async fn operations(app: &App) -> Vec<(Method, String, Value)> {
    let doc: Value = Client::new().get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let mut op = op.clone();
            op["__example"] = example_body(&doc, &op);
            ops.push((method, path.clone(), op));
        }
    }
    assert!(ops.len() >= 20, "the document lists the API ({} operations)", ops.len());
    ops
}

/// The request body example of an operation, from its schema (`example` or `examples[0]`).
fn example_body(doc: &Value, op: &Value) -> Value {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_null() {
        return Value::Null;
    }
    let resolved = match schema["$ref"].as_str() {
        Some(r) => doc.pointer(&r.trim_start_matches('#').replace("~1", "/")).cloned().unwrap_or(Value::Null),
        None => schema.clone(),
    };
    let ex = if !resolved["example"].is_null() { resolved["example"].clone() } else { resolved["examples"][0].clone() };
    assert!(
        !ex.is_null(),
        "request body of {} needs a schema example so the isolation walk can send a valid body",
        op["operationId"]
    );
    ex
}

fn is_public(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|s| s.iter().any(|x| x.as_object().is_some_and(|o| o.is_empty())))
}

both!(every_tenant_path_is_404_with_another_tenants_credentials, |app| async move {
    let a = app.seed("tenant-a").await;
    let _b = app.seed("tenant-b").await;
    let sa = app.session("tenant-a", "owner").await;
    let sb = app.session("tenant-b", "owner").await;
    // Fixtures in tenant A for every kind of path parameter. A new endpoint with a new kind
    // of parameter fails here until it gets a fixture, so new endpoints are covered.
    let user: Value = sa.send(&app, Method::GET, "/api/v1/me", None).await.json().await.unwrap();
    let job: Value =
        sa.send(&app, Method::POST, "/api/v1/jobs/probe", Some(&json!({"hold_ms": 0}))).await.json().await.unwrap();
    let tok: Value = sa
        .send(&app, Method::POST, "/api/v1/tokens", Some(&json!({"name": "x", "scopes": ["stores:read"]})))
        .await
        .json()
        .await
        .unwrap();
    let wa: Value = sa
        .send(
            &app,
            Method::POST,
            "/api/v1/wecom/apps",
            Some(&json!({"name": "A", "corp_id": "wwAAAAAAAA01", "agent_id": "1", "secret": "a-secret-value"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let app_id = siyu_core::WecomAppId(wa["id"].as_str().unwrap().parse().unwrap());
    let accepted = app
        .store
        .accept_callback(
            a.tenant,
            &siyu_store::wecom::IncomingCallback {
                app_id,
                timestamp: 1,
                nonce: "n",
                dedupe_key: "k",
                envelope: "<xml/>",
                payload: "<xml/>",
                event_kind: "unparsed",
                entity: "unparsed",
            },
        )
        .await
        .unwrap();
    let siyu_store::wecom::Accepted::New(inbox_id) = accepted else { panic!("fresh callback") };
    let post = |path: &'static str, body: Value| {
        let sa = &sa;
        let app = &app;
        async move {
            let r = sa.send(app, Method::POST, path, Some(&body)).await;
            assert_eq!(r.status(), 201, "POST {path}");
            r.json::<Value>().await.unwrap()
        }
    };
    let customer = post("/api/v1/customers", json!({"name": "甲客户"})).await;
    let group = post("/api/v1/tag-groups", json!({"name": "组"})).await;
    let tag = post("/api/v1/tags", json!({"group_id": group["id"], "name": "标签"})).await;
    let segment = post("/api/v1/segments", json!({"name": "人群", "expr": {"tag": tag["id"]}})).await;
    app.store.record_loss(a.tenant, "wmEXT", "someone", "deleted_by_customer", "event").await.unwrap();
    let alert = app.store.loss_alerts(a.tenant, siyu_core::auth::DataScope::Tenant, true, 1).await.unwrap()[0].id;
    let assignment = siyu_core::customers::transfer::Assignment {
        external_userid: "wmEXT".into(),
        handover: "someone".into(),
        takeover: Ok("other".into()),
    };
    let transfer = app
        .store
        .create_transfer(
            &siyu_core::auth::Actor::system(a.tenant),
            &siyu_store::customers::transfers::NewTransfer {
                app_id,
                subject: siyu_core::customers::transfer::Subject::Customers,
                kind: siyu_core::customers::transfer::Kind::Onjob,
                origin: "manual",
                handover: "someone",
                message: None,
                assignments: &[assignment],
            },
        )
        .await
        .unwrap();
    let item = app.store.transfer_items(a.tenant, transfer.id).await.unwrap()[0].id;
    let import = app
        .store
        .create_customer_import(&siyu_core::auth::Actor::system(a.tenant), "a.csv", "csv", Err((&[], 0)))
        .await
        .unwrap();
    let twin = post("/api/v1/customers", json!({"name": "乙客户"})).await;
    let merge = app
        .store
        .merge_customers(
            &siyu_core::auth::Actor::system(a.tenant),
            siyu_core::CustomerId(customer["id"].as_str().unwrap().parse().unwrap()),
            siyu_core::CustomerId(twin["id"].as_str().unwrap().parse().unwrap()),
        )
        .await
        .unwrap();
    let category = post("/api/v1/categories", json!({"name": "类目"})).await;
    let template = post("/api/v1/shipping-templates", json!({"name": "运费", "fee_fen": 0})).await;
    let product = post(
        "/api/v1/products",
        json!({"title": "商品", "status": "listed", "skus": [{"price_fen": 100, "on_hand": 5}]}),
    )
    .await;
    let sku = siyu_core::SkuId(product["skus"][0]["id"].as_str().unwrap().parse().unwrap());
    let buyer = app.store.buyer_for_openid(a.tenant, "o-walk", None).await.unwrap();
    let order = app
        .store
        .create_order(
            a.tenant,
            &siyu_store::commerce::orders::NewOrder {
                buyer: buyer.id,
                items: vec![siyu_store::commerce::orders::CartItem { sku_id: sku, qty: 2 }],
                address: None,
                note: None,
                client_key: None,
                expected_payable: None,
                coupon: None,
                presale: None,
            },
        )
        .await
        .unwrap();
    let (prepay, _) = app.store.claim_prepay(a.tenant, order.id).await.unwrap();
    let paid = siyu_store::commerce::payments::PaidNotice {
        out_trade_no: prepay.out_trade_no,
        transaction_id: "4200000001".into(),
        amount_fen: 200,
        payer_openid: None,
        success_time: None,
    };
    app.store.apply_payment(a.tenant, &paid).await.unwrap();
    let refund = app
        .store
        .create_refund(
            a.tenant,
            order.id,
            &siyu_store::commerce::payments::NewRefund {
                lines: vec![(0, 1)],
                shipping: false,
                reason: None,
                kind: siyu_store::commerce::payments::RefundKind::Customer,
            },
            None,
        )
        .await
        .unwrap();
    let coupon = post(
        "/api/v1/coupon-templates",
        json!({"name": "券", "kind": "amount", "face_fen": 100, "valid_days": 1, "total": 5}),
    )
    .await;
    let promotion = post(
        "/api/v1/promotions",
        json!({"name": "满减", "kind": "tiers", "tiers": [{"threshold_fen": 1000, "off_fen": 100}],
            "starts_at": "2026-01-01T00:00:00+08:00", "ends_at": "2026-01-02T00:00:00+08:00"}),
    )
    .await;
    let later = post(
        "/api/v1/products",
        json!({"title": "预售商品", "status": "listed", "skus": [{"price_fen": 1000, "on_hand": 5}]}),
    )
    .await;
    let presale = post(
        "/api/v1/presales",
        json!({"name": "预售", "deposit_start": "2026-01-01T00:00:00+08:00", "deposit_end": "2026-01-02T00:00:00+08:00",
            "final_start": "2026-01-03T00:00:00+08:00", "final_end": "2026-01-04T00:00:00+08:00",
            "skus": [{"sku_id": later["skus"][0]["id"], "price_fen": 1000, "deposit_fen": 100, "deposit_value_fen": 200, "quota": 5}]}),
    )
    .await;
    let discount = post(
        "/api/v1/discounts",
        json!({"name": "第二件半价", "kind": "second_half", "starts_at": "2026-01-01T00:00:00+08:00",
            "ends_at": "2026-01-02T00:00:00+08:00", "product_ids": [product["id"]]}),
    )
    .await;
    let flash = post(
        "/api/v1/flash-sales",
        json!({"name": "秒杀", "starts_at": "2026-02-01T00:00:00+08:00", "ends_at": "2026-02-01T01:00:00+08:00",
            "skus": [{"sku_id": later["skus"][0]["id"], "price_fen": 100, "quota": 1}]}),
    )
    .await;
    let group_buy = post(
        "/api/v1/group-buys",
        json!({"name": "拼团", "starts_at": "2026-03-01T00:00:00+08:00", "ends_at": "2026-03-02T00:00:00+08:00",
            "capacity": 2, "skus": [{"sku_id": sku.to_string(), "price_fen": 50, "quota": 1}]}),
    )
    .await;
    let bargain = post(
        "/api/v1/bargains",
        json!({"name": "砍价", "sku_id": sku.to_string(), "price_fen": 100, "floor_fen": 1, "helpers": 2, "quota": 1,
            "starts_at": "2026-04-01T00:00:00+08:00", "ends_at": "2026-04-02T00:00:00+08:00"}),
    )
    .await;
    // A live code made in the store (the walk has no WeCom to create contact ways in).
    let live_code = {
        let input = siyu_core::acquisition::live_code::LiveCodeDraft {
            name: "海报".into(),
            staff: vec!["someone".into()],
            fallback: Some("someone".into()),
            ..Default::default()
        }
        .validate(app.store.now())
        .unwrap();
        let sys = siyu_core::auth::Actor::system(a.tenant);
        let c = app.store.create_live_code(&sys, app_id, &input).await.unwrap();
        app.store.attach_live_code_members(a.tenant, c.id, &[], "active").await.unwrap().id
    };
    let short_link: Value =
        post("/api/v1/short-links", json!({"name": "短信", "target": format!("/l/tenant-a/{live_code}")})).await;
    let fixtures: HashMap<&str, String> = HashMap::from([
        ("short_link_id", short_link["id"].as_str().unwrap().to_string()),
        ("live_code_id", live_code.to_string()),
        ("group_buy_id", group_buy["id"].as_str().unwrap().to_string()),
        ("bargain_id", bargain["id"].as_str().unwrap().to_string()),
        ("flash_sale_id", flash["id"].as_str().unwrap().to_string()),
        ("discount_id", discount["id"].as_str().unwrap().to_string()),
        ("presale_id", presale["id"].as_str().unwrap().to_string()),
        ("promotion_id", promotion["id"].as_str().unwrap().to_string()),
        ("coupon_template_id", coupon["id"].as_str().unwrap().to_string()),
        ("category_id", category["id"].as_str().unwrap().to_string()),
        ("template_id", template["id"].as_str().unwrap().to_string()),
        ("product_id", product["id"].as_str().unwrap().to_string()),
        ("sku_id", sku.to_string()),
        ("order_id", order.id.to_string()),
        ("refund_id", refund.id.to_string()),
        ("merge_id", merge.to_string()),
        ("import_id", import.id.to_string()),
        ("transfer_id", transfer.id.to_string()),
        ("item_id", item.to_string()),
        ("alert_id", alert.to_string()),
        ("customer_id", customer["id"].as_str().unwrap().to_string()),
        ("tag_id", tag["id"].as_str().unwrap().to_string()),
        ("segment_id", segment["id"].as_str().unwrap().to_string()),
        ("app_id", app_id.to_string()),
        ("inbox_id", inbox_id.to_string()),
        ("store_id", a.store_id.to_string()),
        ("staff_id", a.other_staff.to_string()),
        ("user_id", user["user"]["id"].as_str().unwrap().to_string()),
        ("token_id", tok["token"]["id"].as_str().unwrap().to_string()),
        ("job_id", job["job_id"].as_str().unwrap().to_string()),
    ]);
    let audit_before: Value = sa.send(&app, Method::GET, "/api/v1/audit?limit=200", None).await.json().await.unwrap();
    let mut walked = 0;
    for (method, path, op) in operations(&app).await {
        if is_public(&op) {
            continue;
        }
        let params: Vec<&str> =
            path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        let body = Some(&op["__example"]).filter(|b| !b.is_null());
        if params.is_empty() {
            if method == Method::GET {
                // A tenant's listings never show another tenant's rows.
                let text = sb.send(&app, method, &path, None).await.text().await.unwrap();
                for id in fixtures.values() {
                    assert!(!text.contains(id.as_str()), "GET {path} shows tenant A's {id}");
                }
            }
            continue;
        }
        let mut concrete = path.clone();
        for p in &params {
            let id = fixtures
                .get(p)
                .unwrap_or_else(|| panic!("no tenant-A fixture for path parameter {{{p}}} in {path}: add one"));
            concrete = concrete.replace(&format!("{{{p}}}"), id);
        }
        let r = sb.send(&app, method.clone(), &concrete, body).await;
        let v = problem(r, 404).await;
        assert_eq!(v["code"], "not_found", "{method} {path}");
        walked += 1;
    }
    assert!(walked >= 32, "walked {walked} id-addressed operations");
    // Nothing of tenant A changed.
    let audit_after: Value = sa.send(&app, Method::GET, "/api/v1/audit?limit=200", None).await.json().await.unwrap();
    assert_eq!(audit_before["items"].as_array().unwrap().len(), audit_after["items"].as_array().unwrap().len());
});

both!(every_operation_without_credentials_is_401, |app| async move {
    let _ = app.seed("t").await;
    for (method, path, op) in operations(&app).await {
        if is_public(&op) {
            continue;
        }
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "01a20000-0000-7000-8000-000000000000" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let mut req = Client::new().request(method.clone(), app.url(&concrete));
        if !op["__example"].is_null() {
            req = req.json(&op["__example"]);
        }
        let v = problem(req.send().await.unwrap(), 401).await;
        assert_eq!(v["code"], "unauthenticated", "{method} {path}");
    }
    // A bearer token that does not exist is 401 too, never a hint about tenants.
    let bogus = format!("siyu_{}_{}", uuid::Uuid::nil().simple(), "0".repeat(64));
    problem(bearer(&app, &bogus, Method::GET, "/api/v1/stores", None).await, 401).await;
});

both!(guides_see_and_change_only_their_own_data, |app| async move {
    let a = app.seed("g").await;
    let g = app.session("g", "guide").await;
    let list: Value = g.send(&app, Method::GET, "/api/v1/staff", None).await.json().await.unwrap();
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![a.guide_staff.to_string()]);
    let other = format!("/api/v1/staff/{}", a.other_staff);
    problem(g.send(&app, Method::GET, &other, None).await, 404).await;
    let body = json!({"name": "改名", "wecom_userid": "g-g2", "store_id": a.store_id});
    problem(g.send(&app, Method::PUT, &other, Some(&body)).await, 404).await;
    // Own record: name and mobile yes, store no.
    let own = format!("/api/v1/staff/{}", a.guide_staff);
    let ok = json!({"name": "导购甲（新）", "wecom_userid": "g-g1", "store_id": a.store_id, "mobile": "13900139000"});
    let r = g.send(&app, Method::PUT, &own, Some(&ok)).await;
    assert_eq!(r.status(), 200);
    let moved = json!({"name": "导购甲", "wecom_userid": "g-g1", "store_id": null});
    let v = problem(g.send(&app, Method::PUT, &own, Some(&moved)).await, 403).await;
    assert_eq!(v["field"], "store_id");
    for path in ["/api/v1/users", "/api/v1/audit", "/api/v1/tokens", "/api/v1/tenant"] {
        let v = problem(g.send(&app, Method::GET, path, None).await, 403).await;
        assert_eq!(v["code"], "forbidden", "{path}");
    }
    problem(g.send(&app, Method::POST, "/api/v1/stores", Some(&json!({"code": "x1", "name": "X"}))).await, 403).await;
    // The other guide's record is untouched.
    let owner = app.session("g", "owner").await;
    let o: Value = owner.send(&app, Method::GET, &other, None).await.json().await.unwrap();
    assert_eq!(o["name"], "导购乙");
});

both!(bad_input_is_refused_naming_the_field_and_changes_nothing, |app| async move {
    let a = app.seed("bad").await;
    let send_raw = |body: &'static str, ct: Option<&'static str>| {
        let mut r = Client::new().post(app.url("/api/v1/stores")).bearer_auth(&a.token).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let v = problem(send_raw("{\"code\": ", Some("application/json")).await.unwrap(), 400).await;
    assert_eq!(v["code"], "malformed_json");
    let v = problem(send_raw("{\"code\": \"ok-1\"}", Some("application/json")).await.unwrap(), 422).await;
    assert_eq!(v["field"], "name");
    let v = problem(send_raw("{\"code\": 5, \"name\": \"x\"}", Some("application/json")).await.unwrap(), 422).await;
    assert_eq!(v["field"], "code");
    let v = problem(
        send_raw("{\"code\": \"ok-1\", \"name\": \"x\", \"status\": \"gone\"}", Some("application/json"))
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(v["field"], "status");
    let v = problem(send_raw("{\"code\": \"Bad Code\", \"name\": \"\"}", Some("application/json")).await.unwrap(), 422)
        .await;
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["code", "name"]);
    let v = problem(send_raw("code=x", Some("application/x-www-form-urlencoded")).await.unwrap(), 400).await;
    assert_eq!(v["field"], "Content-Type");
    let v = problem(bearer(&app, &a.token, Method::GET, "/api/v1/stores?limit=abc", None).await, 400).await;
    assert_eq!(v["field"], "limit");
    let v = problem(bearer(&app, &a.token, Method::GET, "/api/v1/stores?limit=0", None).await, 400).await;
    assert_eq!(v["field"], "limit");
    let v = problem(bearer(&app, &a.token, Method::GET, "/api/v1/stores?cursor=nope", None).await, 400).await;
    assert_eq!(v["field"], "cursor");
    let v = problem(bearer(&app, &a.token, Method::GET, "/api/v1/staff?status=gone", None).await, 400).await;
    assert_eq!(v["field"], "status");
    let v = problem(
        bearer(
            &app,
            &a.token,
            Method::POST,
            "/api/v1/users",
            Some(&json!({"login": "x", "display_name": "X", "role": "operator", "password": "short"})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(v["field"], "password");
    let v = problem(
        bearer(
            &app,
            &a.token,
            Method::POST,
            "/api/v1/users",
            Some(&json!({"login": "x", "display_name": "X", "role": "king", "password": "long-enough-1"})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(v["field"], "role");
    // Nothing was written: still only the seeded store and users.
    let stores: Value = bearer(&app, &a.token, Method::GET, "/api/v1/stores", None).await.json().await.unwrap();
    assert_eq!(stores["items"].as_array().unwrap().len(), 1);
    let users: Value = bearer(&app, &a.token, Method::GET, "/api/v1/users", None).await.json().await.unwrap();
    assert_eq!(users["items"].as_array().unwrap().len(), 2);
    // Duplicates are a 409 naming the field.
    let v = problem(
        bearer(&app, &a.token, Method::POST, "/api/v1/stores", Some(&json!({"code": "main", "name": "重复"}))).await,
        409,
    )
    .await;
    assert_eq!((v["code"].as_str(), v["field"].as_str()), (Some("duplicate"), Some("code")));
});

both!(a_repeated_idempotency_key_returns_the_first_response, |app| async move {
    let a = app.seed("idem").await;
    let post = |key: &'static str, body: Value| {
        Client::new()
            .post(app.url("/api/v1/stores"))
            .bearer_auth(&a.token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let r1 = post("k-1", json!({"code": "sz-01", "name": "深圳店"})).await.unwrap();
    assert_eq!(r1.status(), 201);
    let b1: Value = r1.json().await.unwrap();
    let r2 = post("k-1", json!({"code": "sz-01", "name": "深圳店"})).await.unwrap();
    assert_eq!(r2.status(), 201);
    assert_eq!(r2.headers()["idempotent-replayed"], "true");
    let b2: Value = r2.json().await.unwrap();
    assert_eq!(b1, b2);
    let v = problem(post("k-1", json!({"code": "sz-02", "name": "另一家"})).await.unwrap(), 422).await;
    assert_eq!(v["code"], "idempotency_key_reused");
    // Ten concurrent retries of a new key create one store.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (url, tok) = (app.url("/api/v1/stores"), a.token.clone());
        tasks.push(tokio::spawn(async move {
            Client::new()
                .post(url)
                .bearer_auth(tok)
                .header("idempotency-key", "k-2")
                .json(&json!({"code": "gz-01", "name": "广州店"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert!(statuses.contains(&201));
    let stores: Value = bearer(&app, &a.token, Method::GET, "/api/v1/stores?q=gz-01", None).await.json().await.unwrap();
    assert_eq!(stores["items"].as_array().unwrap().len(), 1);
    let all: Value = bearer(&app, &a.token, Method::GET, "/api/v1/stores", None).await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 3, "main, sz-01, gz-01");
});

both!(cookie_sessions_need_the_csrf_token_on_writes, |app| async move {
    let _ = app.seed("csrf").await;
    let s = app.session("csrf", "owner").await;
    let r = s.client.post(app.url("/api/v1/stores")).json(&json!({"code": "c-1", "name": "C"})).send().await.unwrap();
    assert_eq!(problem(r, 403).await["code"], "csrf_failed");
    let r = s
        .client
        .post(app.url("/api/v1/stores"))
        .header("x-csrf-token", "0".repeat(64))
        .json(&json!({"code": "c-1", "name": "C"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r, 403).await["code"], "csrf_failed");
    assert_eq!(
        s.send(&app, Method::POST, "/api/v1/stores", Some(&json!({"code": "c-1", "name": "C"}))).await.status(),
        201
    );
    // Logging out ends the session.
    assert_eq!(s.send(&app, Method::POST, "/api/v1/auth/logout", None).await.status(), 204);
    problem(s.send(&app, Method::GET, "/api/v1/stores", None).await, 401).await;
});

both!(logins_are_throttled_after_repeated_failures, |app| async move {
    let _ = app.seed("thr").await;
    let login = |pw: &'static str| {
        Client::new()
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"tenant": "thr", "login": "owner", "password": pw}))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(problem(login("wrong-pass-1").await.unwrap(), 401).await["code"], "invalid_credentials");
    }
    let r = login(common::PASSWORD).await.unwrap();
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(problem(r, 429).await["code"], "too_many_requests");
    // Unknown tenants fail the same way as wrong passwords.
    let r = Client::new()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"tenant": "nope", "login": "owner", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r, 401).await["code"], "invalid_credentials");
});

both!(tokens_are_scoped_and_revocable, |app| async move {
    let _ = app.seed("tok").await;
    let s = app.session("tok", "owner").await;
    let r: Value = s
        .send(
            &app,
            Method::POST,
            "/api/v1/tokens",
            Some(&json!({"name": "ERP", "scopes": ["stores:read"], "expires_in_days": 30})),
        )
        .await
        .json()
        .await
        .unwrap();
    let secret = r["secret"].as_str().unwrap().to_string();
    assert_eq!(bearer(&app, &secret, Method::GET, "/api/v1/stores", None).await.status(), 200);
    let v = problem(
        bearer(&app, &secret, Method::POST, "/api/v1/stores", Some(&json!({"code": "t-1", "name": "T"}))).await,
        403,
    )
    .await;
    assert_eq!(v["code"], "forbidden");
    // A token cannot mint tokens, and nobody can grant token management to one.
    problem(bearer(&app, &secret, Method::GET, "/api/v1/tokens", None).await, 403).await;
    let v = problem(
        s.send(&app, Method::POST, "/api/v1/tokens", Some(&json!({"name": "x", "scopes": ["tokens:manage"]}))).await,
        422,
    )
    .await;
    assert_eq!(v["field"], "scopes");
    let id = r["token"]["id"].as_str().unwrap();
    assert_eq!(s.send(&app, Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await.status(), 200);
    problem(bearer(&app, &secret, Method::GET, "/api/v1/stores", None).await, 401).await;
    // The list never shows secrets.
    let list = s.send(&app, Method::GET, "/api/v1/tokens", None).await.text().await.unwrap();
    assert!(!list.contains(&secret[20..]));
});

both!(changes_are_audited_with_actor_and_request_id, |app| async move {
    let a = app.seed("aud").await;
    let r = Client::new()
        .put(app.url(&format!("/api/v1/stores/{}", a.store_id)))
        .bearer_auth(&a.token)
        .header("x-request-id", "req-audit-1")
        .json(&json!({"code": "main", "name": "总店（新址）", "city": "上海"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "req-audit-1");
    let log: Value = bearer(&app, &a.token, Method::GET, &format!("/api/v1/audit?entity_id={}", a.store_id), None)
        .await
        .json()
        .await
        .unwrap();
    let e = &log["items"][0];
    assert_eq!(e["action"], "store.update");
    assert_eq!(e["actor_kind"], "token");
    assert_eq!(e["actor_name"], "all");
    assert_eq!(e["request_id"], "req-audit-1");
    assert_eq!(e["before"]["name"], "总店");
    assert_eq!(e["after"]["name"], "总店（新址）");
});

both!(lists_page_with_cursors, |app| async move {
    let a = app.seed("page").await;
    for i in 0..7 {
        let r = bearer(
            &app,
            &a.token,
            Method::POST,
            "/api/v1/stores",
            Some(&json!({"code": format!("p-{i}"), "name": format!("店{i}")})),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let mut seen = Vec::new();
    let mut url = "/api/v1/stores?limit=3".to_string();
    loop {
        let v: Value = bearer(&app, &a.token, Method::GET, &url, None).await.json().await.unwrap();
        seen.extend(v["items"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap().to_string()));
        match v["next_cursor"].as_str() {
            Some(c) => url = format!("/api/v1/stores?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 8);
});

both!(operations_endpoints_answer, |app| async move {
    let c = Client::new();
    assert_eq!(c.get(app.url("/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    assert_eq!(c.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    let _ = c.get(app.url("/api/v1/stores")).send().await.unwrap();
    let m = c.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("siyu_http_requests_total"), "{m}");
    assert!(m.contains("route=\"/api/v1/stores\""));
    let r = c.get(app.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(problem(r, 404).await["code"], "not_found");
    let r = c.get(app.url("/healthz")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
});

both!(parallel_guesses_cannot_outrun_the_throttle, |app| async move {
    let _ = app.seed("par").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let url = app.url("/api/v1/auth/login");
        tasks.push(tokio::spawn(async move {
            Client::new()
                .post(url)
                .json(&json!({"tenant": "par", "login": "owner", "password": "wrong-guess-1"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 5, "at most five guesses reach the password check, got {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20 - checked);
    let r = Client::new()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"tenant": "par", "login": "owner", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
});

both!(tokens_die_with_their_creators_authority, |app| async move {
    let _ = app.seed("tc").await;
    let owner = app.session("tc", "owner").await;
    let r = owner
        .send(
            &app,
            Method::POST,
            "/api/v1/users",
            Some(&json!({"login": "adm", "display_name": "Adm", "role": "admin", "password": common::PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let adm_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let adm = app.session("tc", "adm").await;
    let tok: Value = adm
        .send(
            &app,
            Method::POST,
            "/api/v1/tokens",
            Some(&json!({"name": "mine", "scopes": ["users:write", "users:read"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let secret = tok["secret"].as_str().unwrap().to_string();
    assert_eq!(bearer(&app, &secret, Method::GET, "/api/v1/users", None).await.status(), 200);
    // Demoted to guide: the token no longer works.
    assert_eq!(
        owner
            .send(&app, Method::PATCH, &format!("/api/v1/users/{adm_id}"), Some(&json!({"role": "guide"})))
            .await
            .status(),
        200
    );
    problem(bearer(&app, &secret, Method::GET, "/api/v1/users", None).await, 401).await;
    let log: Value =
        owner.send(&app, Method::GET, "/api/v1/audit?action=api_token.revoke_all", None).await.json().await.unwrap();
    assert_eq!(log["items"][0]["after"]["revoked_tokens"], 1);
});

both!(the_console_login_form_refuses_cross_site_posts, |app| async move {
    let _ = app.seed("lc").await;
    // A cross-site form post carries no token cookie: refused, and no session is set.
    let r = Client::new()
        .post(app.url("/console/login"))
        .form(&[("tenant", "lc"), ("login", "owner"), ("password", common::PASSWORD), ("_csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("siyu_session=")));
    // The same post from the login page itself (cookie and field match) logs in.
    let c = Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = c.get(app.url("/console/login")).send().await.unwrap().text().await.unwrap();
    let token = page.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = c
        .post(app.url("/console/login"))
        .form(&[("tenant", "lc"), ("login", "owner"), ("password", common::PASSWORD), ("_csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("siyu_session=")));
});

//! The WeCom gateway end to end: settings over the API, the sandbox posting real signed and
//! encrypted callbacks to siyu's callback URL, the durable inbox, typed events, and the
//! connection check — on SQLite and on PostgreSQL.

mod common;

use std::sync::Arc;

use reqwest::{Client, Method};
use serde_json::{json, Value};

use siyu_core::time::SystemClock;
use siyu_core::TenantId;
use siyu_wecom::api::ContactWay;
use siyu_wecom::sandbox::{Sandbox, SandboxConfig};
use siyu_wecom::MsgCrypt;

use common::{bearer, problem, App};

const CORP: &str = "wwSANDBOX0001";
const SECRET: &str = "sandbox-app-secret";

struct Setup {
    seed: common::Seed,
    sb: Arc<Sandbox>,
    app_id: String,
    sandbox_url: String,
    callback_url: String,
    token: String,
    key: String,
}

async fn setup(app: &App) -> Setup {
    let seed = app.seed("wc").await;
    // A sandbox corp on its own port; its callbacks go to siyu's callback URL.
    let sb = Sandbox::new(SandboxConfig::new(CORP, SECRET, "x", "x"), Arc::new(SystemClock));
    sb.add_member("wangfang", "王芳", 1);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb_url = format!("http://{}", l.local_addr().unwrap());
    let router = sb.router();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    let r = bearer(
        app,
        &seed.token,
        Method::POST,
        "/api/v1/wecom/apps",
        Some(
            &json!({"name": "客户联系", "corp_id": CORP, "agent_id": "1000002", "secret": SECRET, "base_url": sb_url}),
        ),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let app_id = created["id"].as_str().unwrap().to_string();
    let cb: Value = bearer(app, &seed.token, Method::GET, &format!("/api/v1/wecom/apps/{app_id}/callback"), None)
        .await
        .json()
        .await
        .unwrap();
    let (token, key) =
        (cb["token"].as_str().unwrap().to_string(), cb["encoding_aes_key"].as_str().unwrap().to_string());
    assert_eq!(key.len(), 43);
    let callback_url = app.url(cb["callback_path"].as_str().unwrap());
    let mut cfg = SandboxConfig::new(CORP, SECRET, &token, &key);
    cfg.callback_url = Some(callback_url.clone());
    let sb2 = Sandbox::new(cfg, Arc::new(SystemClock));
    sb2.add_member("wangfang", "王芳", 1);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb2_url = format!("http://{}", l.local_addr().unwrap());
    let router = sb2.router();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    let r = bearer(
        app,
        &seed.token,
        Method::PUT,
        &format!("/api/v1/wecom/apps/{app_id}"),
        Some(
            &json!({"name": "客户联系", "corp_id": CORP, "agent_id": "1000002", "base_url": sb2_url, "secret": SECRET}),
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Keeping the address, the Secret may be omitted; changing it, the Secret is required.
    let same = json!({"name": "客户联系（改名）", "corp_id": CORP, "agent_id": "1000002", "base_url": sb2_url});
    assert_eq!(
        bearer(app, &seed.token, Method::PUT, &format!("/api/v1/wecom/apps/{app_id}"), Some(&same)).await.status(),
        200
    );
    let moved =
        json!({"name": "客户联系", "corp_id": CORP, "agent_id": "1000002", "base_url": "https://attacker.example.com"});
    let v = problem(
        bearer(app, &seed.token, Method::PUT, &format!("/api/v1/wecom/apps/{app_id}"), Some(&moved)).await,
        422,
    )
    .await;
    assert_eq!(v["field"], "secret");
    drop(sb);
    Setup { seed, sb: sb2, app_id, sandbox_url: sb2_url, callback_url, token, key }
}

/// A single-member channel code for `wangfang`, created through siyu's own client; returns
/// its config_id for the sandbox to scan.
async fn contact_way(app: &App, s: &Setup, state: Option<&str>) -> String {
    let gw = siyu_web::wecom::Gateway::new(app.store.store.clone());
    let client = gw.client(s.seed.tenant, s.app_id.parse::<uuid::Uuid>().unwrap().into()).await.unwrap();
    let way = ContactWay {
        kind: 1,
        scene: 2,
        user: vec!["wangfang".into()],
        state: state.map(str::to_string),
        ..Default::default()
    };
    client.add_contact_way(&way).await.unwrap().config_id
}

async fn process_all(app: &App, tenant: TenantId) {
    let gw = siyu_web::wecom::Gateway::new(app.store.store.clone());
    let page = app.store.list_inbox(tenant, &Default::default(), &Default::default()).await.unwrap();
    // Oldest first, as the job runner's retries eventually order them.
    for item in page.items.into_iter().rev() {
        gw.process_inbox(tenant, item.id).await.unwrap();
    }
}

both!(a_scan_reaches_the_inbox_and_becomes_one_typed_event, |app| async move {
    let s = setup(&app).await;
    // Create a contact way through siyu's own client and let a customer scan it.
    let way = contact_way(&app, &s, Some("c:demo")).await;
    let ext = s.sb.add_external_user("李雷", None);
    s.sb.scan_contact_way(&way, &ext).await.unwrap();
    let inbox: Value =
        bearer(&app, &s.seed.token, Method::GET, "/api/v1/wecom/inbox", None).await.json().await.unwrap();
    let items = inbox["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "pending");
    assert_eq!(items[0]["event_kind"], "change_external_contact.add");
    process_all(&app, s.seed.tenant).await;
    process_all(&app, s.seed.tenant).await; // a re-delivered job changes nothing
    let events: Value =
        bearer(&app, &s.seed.token, Method::GET, "/api/v1/wecom/events", None).await.json().await.unwrap();
    let ev = events["items"].as_array().unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["kind"], "change_external_contact.add");
    assert_eq!(ev[0]["payload"]["state"], "c:demo");
    assert_eq!(ev[0]["payload"]["external_user_id"], ext.as_str());
    let inbox: Value = bearer(&app, &s.seed.token, Method::GET, "/api/v1/wecom/inbox?status=processed", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1);
});

both!(a_callback_delivered_ten_times_concurrently_is_stored_once, |app| async move {
    let s = setup(&app).await;
    let crypt = MsgCrypt::new(&s.token, &s.key, CORP).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let xml = format!("<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[del_follow_user]]></ChangeType><UserID><![CDATA[wangfang]]></UserID><ExternalUserID><![CDATA[wmX]]></ExternalUserID></xml>");
    // Ten identical deliveries, and three WeCom-style retries with fresh nonces.
    let mut bodies = Vec::new();
    let body = crypt.seal(&xml, &now, "nonce-1", b"0123456789abcdef", siyu_wecom::Format::Xml);
    for _ in 0..10 {
        bodies.push(("nonce-1".to_string(), body.clone()));
    }
    for n in 2..5 {
        let nonce = format!("nonce-{n}");
        bodies.push((nonce.clone(), crypt.seal(&xml, &now, &nonce, b"0123456789abcdef", siyu_wecom::Format::Xml)));
    }
    let mut tasks = Vec::new();
    for (nonce, b) in bodies {
        let env = siyu_wecom::crypto::parse_envelope(&b).unwrap();
        let sig = crypt.sign(&now, &nonce, &env.encrypt);
        let (url, ts) = (s.callback_url.clone(), now.clone());
        tasks.push(tokio::spawn(async move {
            Client::new()
                .post(url)
                .query(&[("msg_signature", sig), ("timestamp", ts), ("nonce", nonce)])
                .body(b)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200, "every delivery is acknowledged");
    }
    let inbox: Value =
        bearer(&app, &s.seed.token, Method::GET, "/api/v1/wecom/inbox", None).await.json().await.unwrap();
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1);
    process_all(&app, s.seed.tenant).await;
    let events: Value = bearer(&app, &s.seed.token, Method::GET, "/api/v1/wecom/events?entity=contact:wmX", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
    assert_eq!(events["items"][0]["kind"], "change_external_contact.del_follow_user");
});

both!(bad_signatures_and_stale_timestamps_store_nothing, |app| async move {
    let s = setup(&app).await;
    let crypt = MsgCrypt::new(&s.token, &s.key, CORP).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let xml = format!("<xml><ToUserName>{CORP}</ToUserName><CreateTime>{now}</CreateTime><Event>change_external_tag</Event><ChangeType>create</ChangeType><Id>et1</Id></xml>");
    let post = |ts: String, nonce: &'static str, sig: Option<String>| {
        let body = crypt.seal(&xml, &ts, nonce, b"0123456789abcdef", siyu_wecom::Format::Xml);
        let env = siyu_wecom::crypto::parse_envelope(&body).unwrap();
        let sig = sig.unwrap_or_else(|| crypt.sign(&ts, nonce, &env.encrypt));
        Client::new()
            .post(s.callback_url.clone())
            .query(&[("msg_signature", sig), ("timestamp", ts), ("nonce", nonce.to_string())])
            .body(body)
            .send()
    };
    assert_eq!(post(now.to_string(), "n1", Some("0".repeat(40))).await.unwrap().status(), 401);
    assert_eq!(post((now - 7200).to_string(), "n2", None).await.unwrap().status(), 403, "outside the replay window");
    let wrong_key = MsgCrypt::new(&s.token, "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", CORP).unwrap();
    let body = wrong_key.seal(&xml, &now.to_string(), "n3", b"0123456789abcdef", siyu_wecom::Format::Xml);
    let env = siyu_wecom::crypto::parse_envelope(&body).unwrap();
    let sig = crypt.sign(&now.to_string(), "n3", &env.encrypt);
    let r = Client::new()
        .post(s.callback_url.clone())
        .query(&[("msg_signature", sig), ("timestamp", now.to_string()), ("nonce", "n3".into())])
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a body sealed with another key fails to decrypt");
    let inbox: Value =
        bearer(&app, &s.seed.token, Method::GET, "/api/v1/wecom/inbox", None).await.json().await.unwrap();
    assert!(inbox["items"].as_array().unwrap().is_empty(), "nothing stored");
    assert_eq!(post(now.to_string(), "n4", None).await.unwrap().status(), 200);
});

both!(url_verification_and_the_connection_check, |app| async move {
    let s = setup(&app).await;
    let path = format!("/api/v1/wecom/apps/{}/check", s.app_id);
    let items: Value = bearer(&app, &s.seed.token, Method::POST, &path, None).await.json().await.unwrap();
    let status = |items: &Value, key: &str| {
        items.as_array().unwrap().iter().find(|i| i["key"] == key).map(|i| i["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status(&items, "secret").as_deref(), Some("ok"));
    assert_eq!(status(&items, "customer_contact").as_deref(), Some("ok"));
    assert_eq!(status(&items, "callback").as_deref(), Some("pending"));
    // WeCom verifies the URL when the admin saves it.
    let crypt = MsgCrypt::new(&s.token, &s.key, CORP).unwrap();
    let echostr = crypt.encrypt("echo-4242", b"0123456789abcdef");
    let sig = crypt.sign("1700000000", "v1", &echostr);
    let r = Client::new()
        .get(&s.callback_url)
        .query(&[
            ("msg_signature", sig.as_str()),
            ("timestamp", "1700000000"),
            ("nonce", "v1"),
            ("echostr", echostr.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "echo-4242", "exactly the message, nothing else");
    let r = Client::new()
        .get(&s.callback_url)
        .query(&[
            ("msg_signature", "0".repeat(40).as_str()),
            ("timestamp", "1"),
            ("nonce", "v1"),
            ("echostr", echostr.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let items: Value = bearer(&app, &s.seed.token, Method::POST, &path, None).await.json().await.unwrap();
    assert_eq!(status(&items, "callback").as_deref(), Some("ok"));
    let app_now: Value = bearer(&app, &s.seed.token, Method::GET, &format!("/api/v1/wecom/apps/{}", s.app_id), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(app_now["last_check"].is_array(), "the last check is kept for the setup page");
    // A wrong secret is explained in words, with the fix.
    let body = json!({"name": "客户联系", "corp_id": CORP, "agent_id": "1000002", "secret": "a-wrong-secret", "base_url": s.sandbox_url});
    assert_eq!(
        bearer(&app, &s.seed.token, Method::PUT, &format!("/api/v1/wecom/apps/{}", s.app_id), Some(&body))
            .await
            .status(),
        200
    );
    let items: Value = bearer(&app, &s.seed.token, Method::POST, &path, None).await.json().await.unwrap();
    let secret = items.as_array().unwrap().iter().find(|i| i["key"] == "secret").unwrap();
    assert_eq!(secret["status"], "failed");
    assert!(
        secret["message"].as_str().unwrap().contains("40001") && secret["message"].as_str().unwrap().contains("Secret"),
        "{secret}"
    );
});

both!(settings_are_validated_and_secrets_never_returned, |app| async move {
    let seed = app.seed("ws").await;
    let v = problem(
        bearer(
            &app,
            &seed.token,
            Method::POST,
            "/api/v1/wecom/apps",
            Some(&json!({"name": "x", "corp_id": "nope", "agent_id": "abc", "secret": "s"})),
        )
        .await,
        422,
    )
    .await;
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["corp_id", "agent_id"]);
    let v = problem(
        bearer(
            &app,
            &seed.token,
            Method::POST,
            "/api/v1/wecom/apps",
            Some(&json!({"name": "x", "corp_id": CORP, "agent_id": "1", "secret": "s"})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(v["field"], "secret");
    let r = bearer(
        &app,
        &seed.token,
        Method::POST,
        "/api/v1/wecom/apps",
        Some(&json!({"name": "x", "corp_id": CORP, "agent_id": "1", "secret": "super-secret-value"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let list = bearer(&app, &seed.token, Method::GET, "/api/v1/wecom/apps", None).await.text().await.unwrap();
    assert!(!list.contains("super-secret-value"));
    let audit =
        bearer(&app, &seed.token, Method::GET, "/api/v1/audit?entity_type=wecom_app", None).await.text().await.unwrap();
    assert!(!audit.contains("super-secret-value"), "the audit log never holds the secret");
    // Nor does the database, in clear.
    let store = &app.store.store;
    let raw: Vec<(String,)> = siyu_store::on_read!(store, |p| sqlx::query_as("SELECT secret_sealed FROM wecom_apps")
        .fetch_all(p)
        .await
        .unwrap());
    assert!(raw.iter().all(|(s,)| s.starts_with("v1:") && !s.contains("super-secret")));
    // A guide may not see WeCom settings.
    let g = app.session("ws", "guide").await;
    problem(g.send(&app, Method::GET, "/api/v1/wecom/apps", None).await, 403).await;
});

both!(callbacks_keep_relationships_current, |app| async move {
    let s = setup(&app).await;
    let way = contact_way(&app, &s, Some("c:pkg")).await;
    let ext = s.sb.add_external_user("韩梅梅", Some("u-han"));
    s.sb.scan_contact_way(&way, &ext).await.unwrap();
    process_all(&app, s.seed.tenant).await;
    let rels: Value =
        bearer(&app, &s.seed.token, Method::GET, &format!("/api/v1/wecom/relationships?external_userid={ext}"), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(rels[0]["status"], "active");
    assert_eq!(rels[0]["state"], "c:pkg");
    assert_eq!(rels[0]["last_source"], "event");
    // The customer deletes the member: the callback marks the relationship.
    s.sb.customer_deletes(&ext, "wangfang").await.unwrap();
    process_all(&app, s.seed.tenant).await;
    let rels: Value =
        bearer(&app, &s.seed.token, Method::GET, &format!("/api/v1/wecom/relationships?external_userid={ext}"), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(rels[0]["status"], "deleted_by_customer");
});

both!(a_dropped_callback_is_repaired_by_the_next_reconciliation, |app| async move {
    let s = setup(&app).await;
    let way = contact_way(&app, &s, Some("c:lost")).await;
    let gw = siyu_web::wecom::Gateway::new(app.store.store.clone());
    let app_id: siyu_core::WecomAppId = s.app_id.parse::<uuid::Uuid>().unwrap().into();
    s.sb.add_group_chat("wangfang", "新品体验群");
    // Callbacks are dropped on purpose: WeCom sends nothing siyu receives.
    s.sb.set_callback_url(None);
    let ext = s.sb.add_external_user("林涛", None);
    s.sb.scan_contact_way(&way, &ext).await.unwrap();
    let inbox: Value =
        bearer(&app, &s.seed.token, Method::GET, "/api/v1/wecom/inbox", None).await.json().await.unwrap();
    assert!(inbox["items"].as_array().unwrap().is_empty(), "nothing arrived");
    let r =
        bearer(&app, &s.seed.token, Method::POST, &format!("/api/v1/wecom/apps/{}/reconcile", s.app_id), None).await;
    assert_eq!(r.status(), 202, "reconciliation can be started by hand");
    gw.reconcile(s.seed.tenant, app_id).await.unwrap();
    let rels: Value =
        bearer(&app, &s.seed.token, Method::GET, &format!("/api/v1/wecom/relationships?external_userid={ext}"), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(rels[0]["status"], "active");
    assert_eq!(rels[0]["state"], "c:lost");
    assert_eq!(rels[0]["last_source"], "reconcile");
    let sync: Value = bearer(&app, &s.seed.token, Method::GET, "/api/v1/wecom/sync", None).await.json().await.unwrap();
    let entity = |name: &str| sync.as_array().unwrap().iter().find(|x| x["entity"] == name).cloned().unwrap();
    assert!(entity("relationships")["drift"].as_i64().unwrap() >= 1);
    assert_eq!(entity("groups")["seen"], 1);
    assert!(entity("staff")["last_ok_at"].is_string());
    // The member was synced into staff.
    let staff: Value =
        bearer(&app, &s.seed.token, Method::GET, "/api/v1/staff?q=wangfang", None).await.json().await.unwrap();
    assert_eq!(staff["items"][0]["name"], "王芳");
    // A deletion whose callback was lost is found by the next pass too.
    s.sb.member_deletes(&ext, "wangfang").await.unwrap();
    gw.reconcile(s.seed.tenant, app_id).await.unwrap();
    let rels: Value =
        bearer(&app, &s.seed.token, Method::GET, &format!("/api/v1/wecom/relationships?external_userid={ext}"), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(rels[0]["status"], "removed");
    assert_eq!(rels[0]["status_reason"], "reconcile");
    // A second pass finds nothing left to repair.
    gw.reconcile(s.seed.tenant, app_id).await.unwrap();
    let sync: Value = bearer(&app, &s.seed.token, Method::GET, "/api/v1/wecom/sync", None).await.json().await.unwrap();
    let rel = sync.as_array().unwrap().iter().find(|x| x["entity"] == "relationships").unwrap();
    assert_eq!(rel["drift"], 0, "{rel}");
});

both!(one_customers_events_apply_in_order, |app| async move {
    let s = setup(&app).await;
    let way = contact_way(&app, &s, None).await;
    let gw = siyu_web::wecom::Gateway::new(app.store.store.clone());
    let ext = s.sb.add_external_user("顺序", None);
    s.sb.scan_contact_way(&way, &ext).await.unwrap();
    s.sb.customer_deletes(&ext, "wangfang").await.unwrap();
    let page = app.store.list_inbox(s.seed.tenant, &Default::default(), &Default::default()).await.unwrap();
    let (later, earlier) = (page.items[0].id, page.items[1].id);
    match gw.process_inbox(s.seed.tenant, later).await {
        Err(siyu_web::wecom::gateway::SyncError::OutOfOrder(entity)) => assert_eq!(entity, format!("contact:{ext}")),
        other => panic!("the later event must wait: {other:?}"),
    }
    gw.process_inbox(s.seed.tenant, earlier).await.unwrap();
    gw.process_inbox(s.seed.tenant, later).await.unwrap();
    let rels: Value =
        bearer(&app, &s.seed.token, Method::GET, &format!("/api/v1/wecom/relationships?external_userid={ext}"), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(rels[0]["status"], "deleted_by_customer");
    let events: Value =
        bearer(&app, &s.seed.token, Method::GET, &format!("/api/v1/wecom/events?entity=contact:{ext}"), None)
            .await
            .json()
            .await
            .unwrap();
    let kinds: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["change_external_contact.del_follow_user", "change_external_contact.add"], "newest first");
});

both!(wecom_contacts_become_customers_with_channels_stages_and_loss_alerts, |app| async move {
    let s = setup(&app).await;
    let staff = bearer(
        &app,
        &s.seed.token,
        Method::POST,
        "/api/v1/staff",
        Some(&json!({"name": "王芳", "wecom_userid": "wangfang"})),
    )
    .await;
    assert_eq!(staff.status(), 201);
    let staff: Value = staff.json().await.unwrap();
    let way = contact_way(&app, &s, Some("c:pkg")).await;
    let ext = s.sb.add_external_user("韩梅梅", Some("u-han"));
    s.sb.scan_contact_way(&way, &ext).await.unwrap();
    process_all(&app, s.seed.tenant).await;
    // One person, owned by the member the customer added, attributed to the channel.
    let list: Value =
        bearer(&app, &s.seed.token, Method::GET, "/api/v1/customers?q=韩梅梅", None).await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["source"], "wecom");
    assert_eq!(items[0]["owner_staff_id"], staff["id"]);
    let count = |expr: Value| {
        let app = &app;
        let token = s.seed.token.clone();
        async move {
            let v: Value = bearer(app, &token, Method::POST, "/api/v1/segments/count", Some(&json!({"expr": expr})))
                .await
                .json()
                .await
                .unwrap();
            v["count"].as_u64().unwrap()
        }
    };
    assert_eq!(count(json!({"channel": "c:pkg"})).await, 1);
    // Processing the same callbacks again changes nothing: still one person.
    process_all(&app, s.seed.tenant).await;
    assert_eq!(count(json!("all")).await, 1);

    // The customer deletes the member: the person is lost, with one alert and a timeline entry.
    s.sb.customer_deletes(&ext, "wangfang").await.unwrap();
    process_all(&app, s.seed.tenant).await;
    process_all(&app, s.seed.tenant).await;
    let id = items[0]["id"].as_str().unwrap();
    let c: Value =
        bearer(&app, &s.seed.token, Method::GET, &format!("/api/v1/customers/{id}"), None).await.json().await.unwrap();
    assert_eq!(c["lifecycle"], "lost");
    let alerts: Value =
        bearer(&app, &s.seed.token, Method::GET, "/api/v1/customer-alerts", None).await.json().await.unwrap();
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "deduplicated per relationship and kind");
    assert_eq!(alerts[0]["kind"], "deleted_by_customer");
    assert_eq!(alerts[0]["customer_id"], items[0]["id"]);
    let tl: Value = bearer(&app, &s.seed.token, Method::GET, &format!("/api/v1/customers/{id}/timeline"), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(tl.as_array().unwrap().iter().any(|e| e["kind"] == "loss"), "{tl}");
    let path = format!("/api/v1/customer-alerts/{}/resolve", alerts[0]["id"].as_str().unwrap());
    assert_eq!(bearer(&app, &s.seed.token, Method::POST, &path, None).await.status(), 204);
    problem(bearer(&app, &s.seed.token, Method::POST, &path, None).await, 404).await;
    let open: Value =
        bearer(&app, &s.seed.token, Method::GET, "/api/v1/customer-alerts", None).await.json().await.unwrap();
    assert!(open.as_array().unwrap().is_empty());
});

both!(corp_tags_written_from_siyu_and_from_wecom_converge, |app| async move {
    let s = setup(&app).await;
    let t = s.seed.token.clone();
    let way = contact_way(&app, &s, None).await;
    let ext = s.sb.add_external_user("李雷", None);
    s.sb.scan_contact_way(&way, &ext).await.unwrap();
    process_all(&app, s.seed.tenant).await;
    // A corp tag group made in WeCom's admin console reaches siyu by reconciliation.
    let gw = siyu_web::wecom::Gateway::new(app.store.store.clone());
    let app_id: siyu_core::WecomAppId = s.app_id.parse::<uuid::Uuid>().unwrap().into();
    let client = gw.client(s.seed.tenant, app_id).await.unwrap();
    let seeded = siyu_wecom::api::AddCorpTag {
        group_name: Some("会员等级".into()),
        tag: vec![siyu_wecom::api::NewTag { name: "金卡".into(), order: None }],
        ..Default::default()
    };
    client.add_corp_tag(&seeded).await.unwrap();
    gw.reconcile(s.seed.tenant, app_id).await.unwrap();
    let groups: Value = bearer(&app, &t, Method::GET, "/api/v1/tag-groups", None).await.json().await.unwrap();
    let corp = groups.as_array().unwrap().iter().find(|g| g["kind"] == "corp").expect("the corp group").clone();

    // Created from siyu: in WeCom first, then mirrored. Over-long names never reach WeCom.
    let long = "长".repeat(31);
    let r = bearer(&app, &t, Method::POST, "/api/v1/tags", Some(&json!({"group_id": corp["id"], "name": long}))).await;
    assert_eq!(problem(r, 422).await["field"], "name");
    let r =
        bearer(&app, &t, Method::POST, "/api/v1/tags", Some(&json!({"group_id": corp["id"], "name": "银卡"}))).await;
    assert_eq!(r.status(), 201);
    let silver: Value = r.json().await.unwrap();
    assert_eq!(silver["kind"], "corp");
    let wecom_id = silver["wecom_tag_id"].as_str().expect("mirrored with its WeCom id").to_string();
    let in_wecom = client.corp_tags(&[], &[]).await.unwrap();
    assert!(in_wecom.iter().flat_map(|g| &g.tag).any(|x| x.id == wecom_id && x.name == "银卡"));

    // Tagging a customer writes mark_tag on the relationship, and the tag shows once re-read.
    let list: Value = bearer(&app, &t, Method::GET, "/api/v1/customers?q=李雷", None).await.json().await.unwrap();
    let cid = list["items"][0]["id"].as_str().unwrap().to_string();
    let tag_path = format!("/api/v1/customers/{cid}/tags/{}", silver["id"].as_str().unwrap());
    assert_eq!(bearer(&app, &t, Method::PUT, &tag_path, None).await.status(), 204);
    assert_eq!(s.sb.relationship_tags(&ext, "wangfang"), vec![wecom_id.clone()]);
    let c: Value = bearer(&app, &t, Method::GET, &format!("/api/v1/customers/{cid}"), None).await.json().await.unwrap();
    assert!(c["tags"].as_array().unwrap().iter().any(|x| x["name"] == "银卡"), "{c}");
    assert_eq!(bearer(&app, &t, Method::DELETE, &tag_path, None).await.status(), 204);
    assert!(s.sb.relationship_tags(&ext, "wangfang").is_empty());

    // Renamed in siyu, then renamed again in WeCom: both converge on WeCom's name.
    let p = format!("/api/v1/tags/{}", silver["id"].as_str().unwrap());
    let r = bearer(&app, &t, Method::PUT, &p, Some(&json!({"name": "铂金卡"}))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "铂金卡");
    client.edit_corp_tag(&wecom_id, Some("黑金卡"), None).await.unwrap();
    gw.reconcile(s.seed.tenant, app_id).await.unwrap();
    let renamed: Value = bearer(&app, &t, Method::GET, "/api/v1/tag-groups", None).await.json().await.unwrap();
    assert!(renamed.to_string().contains("黑金卡") && !renamed.to_string().contains("铂金卡"), "{renamed}");

    // Deleted from siyu: gone in WeCom and here.
    assert_eq!(bearer(&app, &t, Method::DELETE, &p, None).await.status(), 204);
    let in_wecom = client.corp_tags(&[], &[]).await.unwrap();
    assert!(!in_wecom.iter().flat_map(|g| &g.tag).any(|x| x.id == wecom_id));
    let left: Value = bearer(&app, &t, Method::GET, "/api/v1/tag-groups", None).await.json().await.unwrap();
    assert!(!left.to_string().contains("黑金卡"), "{left}");

    // A new corp tag group from siyu: refused without tags or with bad ones, then created in
    // WeCom with its first tags and mirrored as a corp group.
    let path = "/api/v1/tag-groups";
    for (body, field) in [
        (json!({"name": "渠道来源", "corp": true}), "tags"),
        (json!({"name": "渠道来源", "corp": true, "tags": ["抖音", "抖音"]}), "tags"),
        (json!({"name": "渠道来源", "corp": true, "tags": ["长".repeat(31)]}), "tags"),
        (json!({"name": "渠道来源", "tags": ["抖音"]}), "tags"),
    ] {
        let r = bearer(&app, &t, Method::POST, path, Some(&body)).await;
        assert_eq!(problem(r, 422).await["field"], field, "{body}");
    }
    let before = client.corp_tags(&[], &[]).await.unwrap().len();
    let r = bearer(
        &app,
        &t,
        Method::POST,
        path,
        Some(&json!({"name": "渠道来源", "corp": true, "tags": ["抖音", "小红书"]})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["kind"], "corp");
    let mut names: Vec<&str> = g["tags"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["小红书", "抖音"]);
    let in_wecom = client.corp_tags(&[], &[]).await.unwrap();
    assert_eq!(in_wecom.len(), before + 1);
    assert!(in_wecom.iter().any(|x| x.group_name == "渠道来源" && x.tag.len() == 2));
    // The console does the same from the tags page.
    let owner = app.session("wc", "owner").await;
    let form =
        [("_csrf", owner.csrf.as_str()), ("op", "group"), ("name", "会员活动"), ("corp", "1"), ("group_tags", "")];
    let r = owner.client.post(app.url("/console/tags")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("组内标签不能为空"));
    let form = [
        ("_csrf", owner.csrf.as_str()),
        ("op", "group"),
        ("name", "会员活动"),
        ("corp", "1"),
        ("group_tags", "双十一、年货节"),
    ];
    let r = owner.client.post(app.url("/console/tags")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(client.corp_tags(&[], &[]).await.unwrap().iter().any(|x| x.group_name == "会员活动" && x.tag.len() == 2));

    // The audit log names each write made in WeCom for the operator.
    let audit: Value = bearer(&app, &t, Method::GET, "/api/v1/audit?limit=200", None).await.json().await.unwrap();
    for action in [
        "corp_tag.create",
        "corp_tag.mark",
        "corp_tag.unmark",
        "corp_tag.rename",
        "corp_tag.delete",
        "corp_tag_group.create",
    ] {
        assert!(audit.to_string().contains(action), "{action} audited");
    }
});

both!(merge_suggestions_from_remark_mobiles_and_strong_ids_never_merge, |app| async move {
    let s = setup(&app).await;
    let t = s.seed.token.clone();
    let way = contact_way(&app, &s, None).await;
    let (e1, e2) = (s.sb.add_external_user("李雷", Some("u-1")), s.sb.add_external_user("李雷2", Some("u-2")));
    for e in [&e1, &e2] {
        s.sb.scan_contact_way(&way, e).await.unwrap();
    }
    process_all(&app, s.seed.tenant).await;
    // A customer known by phone only (an import, say).
    let phone: Value =
        bearer(&app, &t, Method::POST, "/api/v1/customers", Some(&json!({"name": "李先生", "phone": "13912345678"})))
            .await
            .json()
            .await
            .unwrap();
    // The member notes that phone on the WeCom contact: a suggestion, never a merge.
    s.sb.set_remark_mobiles(&e1, "wangfang", &["13912345678"]).unwrap();
    let gw = siyu_web::wecom::Gateway::new(app.store.store.clone());
    gw.reconcile(s.seed.tenant, s.app_id.parse::<uuid::Uuid>().unwrap().into()).await.unwrap();
    let sug: Value = bearer(&app, &t, Method::GET, "/api/v1/merge-suggestions", None).await.json().await.unwrap();
    let sug = sug.as_array().unwrap();
    assert_eq!(sug.len(), 1, "{sug:?}");
    assert_eq!(sug[0]["phone_customer_id"], phone["id"]);
    assert_eq!(sug[0]["phone_masked"], "+86 139****5678");
    let wecom_person = sug[0]["wecom_customer_id"].as_str().unwrap().to_string();
    let owner = app.session("wc", "owner").await;
    let page = owner.send(&app, Method::GET, "/console/customers", None).await.text().await.unwrap();
    assert!(page.contains("疑似同一人") && page.contains("+86 139****5678"), "the console lists the suggestion");
    // Two WeCom persons with different unionids are two people.
    let list: Value = bearer(&app, &t, Method::GET, "/api/v1/customers?q=李雷2", None).await.json().await.unwrap();
    let other = list["items"][0]["id"].as_str().unwrap().to_string();
    let r = bearer(
        &app,
        &t,
        Method::POST,
        &format!("/api/v1/customers/{wecom_person}/merge"),
        Some(&json!({"absorbed_id": other})),
    )
    .await;
    assert!(problem(r, 409).await["detail"].as_str().unwrap().contains("strong"));
    // Accepting the suggestion merges the phone profile into the WeCom one; it is gone from the list.
    let r = bearer(
        &app,
        &t,
        Method::POST,
        &format!("/api/v1/customers/{wecom_person}/merge"),
        Some(&json!({"absorbed_id": phone["id"]})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let sug: Value = bearer(&app, &t, Method::GET, "/api/v1/merge-suggestions", None).await.json().await.unwrap();
    assert!(sug.as_array().unwrap().is_empty(), "{sug}");
});

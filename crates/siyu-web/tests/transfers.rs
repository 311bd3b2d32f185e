//! Customer transfers end to end: siyu's real WeCom client against the sandbox over HTTP, on
//! one controllable clock — plan, send, refusal and receiver-at-limit callbacks, re-route,
//! completion after 24 hours, the 2-in-90-days preflight, and a departed member's customers
//! planned by themselves; customer groups moved at once with their own limits (300 a day per
//! member pair, 2 in 90 days) — and follow-up reminders sent as WeCom app messages and escalated
//! after 24 hours, on SQLite and on PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use siyu_core::time::ManualClock;
use siyu_core::{Clock, TenantId, Timestamp, WecomAppId};
use siyu_store::Backend;
use siyu_wecom::api::ContactWay;
use siyu_wecom::sandbox::{Sandbox, SandboxConfig};

use common::{bearer, problem, App};

const CORP: &str = "wwTRANSFER001";
const SECRET: &str = "transfer-app-secret";

struct World {
    app: App,
    clock: Arc<ManualClock>,
    sb: Arc<Sandbox>,
    seed: common::Seed,
    app_id: WecomAppId,
    /// WeCom userids of the three members: g1 (handover), g2 and g3 (receivers, same store).
    g: [String; 3],
    g3_staff: String,
    /// The five customers' external_userids.
    ext: Vec<String>,
}

impl World {
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
    fn gateway(&self) -> siyu_web::wecom::Gateway {
        siyu_web::wecom::Gateway::new(self.app.store.store.clone())
    }
    /// Processes every stored callback, oldest first, as the jobs runner would.
    async fn process_inbox(&self) {
        let gw = self.gateway();
        let page = self.app.store.list_inbox(self.seed.tenant, &Default::default(), &Default::default()).await.unwrap();
        for item in page.items.into_iter().rev() {
            gw.process_inbox(self.seed.tenant, item.id).await.unwrap();
        }
    }
    async fn plan(&self, body: Value) -> Value {
        let r = self.api(Method::POST, "/api/v1/transfers", Some(&body)).await;
        assert_eq!(r.status(), 201, "plan {body}");
        r.json().await.unwrap()
    }
    fn item<'a>(&self, t: &'a Value, external: &str) -> &'a Value {
        t["items"].as_array().unwrap().iter().rev().find(|i| i["external_userid"] == external).unwrap()
    }
    async fn customer_of(&self, external: &str) -> String {
        let p = self.app.store.store.clone();
        let id: Vec<_> = p
            .list_customers(
                self.seed.tenant,
                siyu_core::auth::DataScope::Tenant,
                &Default::default(),
                &siyu_core::paging::PageRequest { limit: 200, before: None },
            )
            .await
            .unwrap()
            .items;
        let name = self.sb.external_name(external).unwrap();
        id.into_iter().find(|c| c.name == name).unwrap().id.to_string()
    }
}

async fn world(backend: Backend) -> World {
    let clock = Arc::new(ManualClock::at(Timestamp::from_unix_secs(1_790_000_000)));
    let app = App::start_with_clock(backend, clock.clone()).await;
    let seed = app.seed("tr").await;
    // The sandbox's port first: siyu needs its address, the sandbox needs siyu's callback keys.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let created: Value = bearer(
        &app,
        &seed.token,
        Method::POST,
        "/api/v1/wecom/apps",
        Some(&json!({"name": "客户联系", "corp_id": CORP, "agent_id": "1000002", "secret": SECRET, "base_url": base})),
    )
    .await
    .json()
    .await
    .unwrap();
    let app_id: WecomAppId = created["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap().into();
    let cb: Value = bearer(&app, &seed.token, Method::GET, &format!("/api/v1/wecom/apps/{}/callback", app_id.0), None)
        .await
        .json()
        .await
        .unwrap();
    let mut cfg =
        SandboxConfig::new(CORP, SECRET, cb["token"].as_str().unwrap(), cb["encoding_aes_key"].as_str().unwrap());
    cfg.callback_url = Some(app.url(cb["callback_path"].as_str().unwrap()));
    let sb = Sandbox::new(cfg, clock.clone());
    let router = sb.router();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    let g = ["tr-g1".to_string(), "tr-g2".to_string(), "tr-g3".to_string()];
    for (u, n) in g.iter().zip(["导购甲", "导购乙", "导购丙"]) {
        sb.add_member(u, n, 1);
    }
    // A third staff member in the same store as the other two.
    let g3: Value = bearer(
        &app,
        &seed.token,
        Method::POST,
        "/api/v1/staff",
        Some(&json!({"name": "导购丙", "wecom_userid": "tr-g3", "store_id": seed.store_id})),
    )
    .await
    .json()
    .await
    .unwrap();
    let mut w =
        World { app, clock, sb, seed, app_id, g, g3_staff: g3["id"].as_str().unwrap().to_string(), ext: vec![] };
    // Five customers add g1 through a channel code; reconciliation makes them siyu customers.
    let gw = w.gateway();
    let client = gw.client(w.seed.tenant, w.app_id).await.unwrap();
    let way = ContactWay { kind: 1, scene: 2, user: vec![w.g[0].clone()], ..Default::default() };
    let config_id = client.add_contact_way(&way).await.unwrap().config_id;
    for i in 1..=5 {
        let e = w.sb.add_external_user(&format!("客户{i}"), None);
        w.sb.scan_contact_way(&config_id, &e).await.unwrap();
        w.ext.push(e);
    }
    w.process_inbox().await;
    gw.reconcile(w.seed.tenant, w.app_id).await.unwrap();
    w
}

async fn transfers_story(backend: Backend) {
    let w = world(backend).await;
    let (g1, g2, g3) = (&w.g[0], &w.g[1], &w.g[2]);
    let tenant: TenantId = w.seed.tenant;

    // Bad requests change nothing and name the field.
    let v = problem(
        w.api(
            Method::POST,
            "/api/v1/transfers",
            Some(&json!({"kind": "bogus", "handover_staff_id": w.seed.guide_staff})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(v["field"], "kind");
    let long = "字".repeat(201);
    let v = problem(
        w.api(
            Method::POST,
            "/api/v1/transfers",
            Some(&json!({"kind": "onjob", "handover_staff_id": w.seed.guide_staff, "message": long})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(v["field"], "message");
    let v = problem(
        w.api(
            Method::POST,
            "/api/v1/transfers",
            Some(&json!({"kind": "resigned", "handover_staff_id": w.seed.guide_staff})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(v["field"], "kind", "an employed member is not inherited");
    let v = problem(
        w.api(
            Method::POST,
            "/api/v1/transfers",
            Some(&json!({"kind": "onjob", "handover_staff_id": uuid::Uuid::now_v7()})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(v["field"], "handover_staff_id");
    let listed: Value = w.json(Method::GET, "/api/v1/transfers", None).await;
    assert!(listed["items"].as_array().unwrap().is_empty(), "nothing was planned");
    // Guides do not move customers.
    let guide = w.app.session("tr", "guide").await;
    problem(guide.send(&w.app, Method::GET, "/api/v1/transfers", None).await, 403).await;

    // Plan: five customers over two equally loaded receivers of g1's store.
    let plan = w
        .plan(json!({"kind": "onjob", "handover_staff_id": w.seed.guide_staff,
                     "receiver_staff_ids": [w.seed.other_staff, w.g3_staff], "message": "您好，之后由我为您服务"}))
        .await;
    let takeovers: Vec<&str> =
        plan["items"].as_array().unwrap().iter().map(|i| i["takeover_userid"].as_str().unwrap()).collect();
    assert_eq!(takeovers.iter().filter(|t| **t == g2.as_str()).count(), 3, "{takeovers:?}");
    assert_eq!(takeovers.iter().filter(|t| **t == g3.as_str()).count(), 2, "{takeovers:?}");
    assert!(plan["items"].as_array().unwrap().iter().all(|i| i["status"] == "planned"));
    let id = plan["id"].as_str().unwrap().to_string();
    // A second plan for the same customers finds them all under way.
    let r = w
        .api(
            Method::POST,
            "/api/v1/transfers",
            Some(&json!({"kind": "onjob", "handover_staff_id": w.seed.guide_staff, "receiver_staff_ids": [w.seed.other_staff]})),
        )
        .await;
    assert_eq!(problem(r, 409).await["code"], "conflict");

    // Execute: WeCom accepts; every customer waits 24 h. Executing again sends nothing more.
    let sent = w.json(Method::POST, &format!("/api/v1/transfers/{id}/execute"), None).await;
    assert!(sent["items"].as_array().unwrap().iter().all(|i| i["status"] == "waiting"), "{sent}");
    assert!(sent["items"][0]["expected_at"].is_string());
    let again = w.json(Method::POST, &format!("/api/v1/transfers/{id}/execute"), None).await;
    assert_eq!(again["counts"]["waiting"], 5);

    // The customer behind e2 refuses; e3's receiver is at its limit (transfer_fail callbacks).
    w.sb.fail_transfer(&w.ext[1], "customer_refused").await.unwrap();
    w.sb.fail_transfer(&w.ext[2], "customer_limit_exceed").await.unwrap();
    w.process_inbox().await;
    let t = w.json(Method::GET, &format!("/api/v1/transfers/{id}"), None).await;
    let (e2, e3) = (w.item(&t, &w.ext[1]), w.item(&t, &w.ext[2]));
    assert_eq!(
        (e2["status"].as_str(), e2["can_retry"].as_bool(), e2["can_reroute"].as_bool()),
        (Some("refused"), Some(false), Some(false))
    );
    assert_eq!((e3["status"].as_str(), e3["can_reroute"].as_bool()), (Some("limit"), Some(true)));
    // A refusal is final: it cannot be retried.
    let r = w.api(Method::POST, &format!("/api/v1/transfer-items/{}/retry", e2["id"].as_str().unwrap()), None).await;
    problem(r, 409).await;
    // Re-route e3 to the other receiver, then send it.
    let other = if e3["takeover_userid"] == g2.as_str() { w.g3_staff.clone() } else { w.seed.other_staff.to_string() };
    let r = w
        .api(
            Method::POST,
            &format!("/api/v1/transfer-items/{}/reroute", e3["id"].as_str().unwrap()),
            Some(&json!({"takeover_staff_id": w.seed.guide_staff})),
        )
        .await;
    assert_eq!(problem(r, 409).await["code"], "conflict", "never back to the handover member");
    let moved = w
        .json(
            Method::POST,
            &format!("/api/v1/transfer-items/{}/reroute", e3["id"].as_str().unwrap()),
            Some(&json!({"takeover_staff_id": other})),
        )
        .await;
    assert_eq!(moved["status"], "planned");
    w.json(Method::POST, &format!("/api/v1/transfers/{id}/execute"), None).await;

    // Before 24 h nothing completes; after, every waiting customer belongs to its receiver.
    assert_eq!(w.json(Method::POST, "/api/v1/transfers/poll", None).await["changed"], 0);
    w.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let polled = w.json(Method::POST, "/api/v1/transfers/poll", None).await;
    assert_eq!(polled["changed"], 4, "e1, e3 (re-routed), e4 and e5 complete");
    assert_eq!(w.json(Method::POST, "/api/v1/transfers/poll", None).await["changed"], 0, "polling is idempotent");
    let t = w.json(Method::GET, &format!("/api/v1/transfers/{id}"), None).await;
    assert_eq!(t["counts"]["done"], 4, "{t}");
    assert_eq!(t["counts"]["refused"], 1);
    assert_eq!(t["counts"]["rerouted"], 1);
    let e1 = w.item(&t, &w.ext[0]);
    let receiver = e1["takeover_userid"].as_str().unwrap().to_string();
    let c1 = w.customer_of(&w.ext[0]).await;
    let detail = w.json(Method::GET, &format!("/api/v1/customers/{c1}"), None).await;
    let owner_staff = w.app.store.staff_by_wecom_userid(tenant, &receiver).await.unwrap().unwrap().id.to_string();
    assert_eq!(detail["owner_staff_id"], owner_staff.as_str(), "the receiver owns the customer");
    let rels = w.app.store.customer_relationships(tenant, c1.parse::<uuid::Uuid>().unwrap().into()).await.unwrap();
    let old = rels.iter().find(|r| &r.userid == g1).unwrap();
    assert_eq!(old.status, "transferred_out");
    let timeline = w.json(Method::GET, &format!("/api/v1/customers/{c1}/timeline"), None).await;
    assert!(timeline.to_string().contains("transferred from"), "{timeline}");
    // A transfer is not churn: no loss alerts.
    let alerts = w.json(Method::GET, "/api/v1/customer-alerts", None).await;
    assert!(alerts.as_array().unwrap().is_empty(), "{alerts}");
    // The refusing customer stays with g1.
    let c2 = w.customer_of(&w.ext[1]).await;
    let d2 = w.json(Method::GET, &format!("/api/v1/customers/{c2}"), None).await;
    assert_eq!(d2["owner_staff_id"], w.seed.guide_staff.to_string().as_str());

    // The transfer centre shows the batch, each outcome explained, and offers no retry for a refusal.
    let owner = w.app.session("tr", "owner").await;
    let page = owner.send(&w.app, Method::GET, "/console/transfers", None).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("导购甲"));
    let page = owner.send(&w.app, Method::GET, &format!("/console/transfers/{id}"), None).await.text().await.unwrap();
    assert!(page.contains("客户拒绝了转接") && page.contains("已改派") && page.contains("已接替"), "{page}");
    let form =
        [("_csrf", owner.csrf.as_str()), ("kind", "resigned"), ("handover_staff_id", &w.seed.guide_staff.to_string())];
    let r = owner.client.post(w.app.url("/console/transfers")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("该员工仍在职"), "the console explains the wrong kind");

    // Back to g1, then a third move inside 90 days is excluded by the preflight.
    let receiver_staff = owner_staff.clone();
    let back = w
        .plan(json!({"kind": "onjob", "handover_staff_id": receiver_staff, "customer_ids": [c1],
                     "receiver_staff_ids": [w.seed.guide_staff]}))
        .await;
    assert_eq!(back["items"].as_array().unwrap().len(), 1);
    let bid = back["id"].as_str().unwrap().to_string();
    w.json(Method::POST, &format!("/api/v1/transfers/{bid}/execute"), None).await;
    w.clock.advance(Duration::from_secs(24 * 3600 + 1));
    w.json(Method::POST, "/api/v1/transfers/poll", None).await;
    let back = w.json(Method::GET, &format!("/api/v1/transfers/{bid}"), None).await;
    assert_eq!(back["counts"]["done"], 1, "{back}");
    let third = w
        .plan(json!({"kind": "onjob", "handover_staff_id": w.seed.guide_staff, "customer_ids": [c1],
                     "receiver_staff_ids": [w.seed.other_staff]}))
        .await;
    let item = &third["items"][0];
    assert_eq!((item["status"].as_str(), item["reason"].as_str()), (Some("excluded"), Some("window")), "{third}");
    assert_eq!(item["can_reroute"], false);

    // Settings: validated, then saved.
    let r = w.api(Method::PUT, "/api/v1/transfer-settings", Some(&json!({"auto_mode": "always"}))).await;
    assert_eq!(problem(r, 422).await["field"], "auto_mode");
    let saved =
        w.json(Method::PUT, "/api/v1/transfer-settings", Some(&json!({"auto_mode": "plan", "message": "您好"}))).await;
    assert_eq!(saved["auto_mode"], "plan");

    // g3 leaves: reconciliation sees it, and the customers WeCom lists as unassigned are
    // planned automatically to the remaining members, once.
    let g3_customers = w.app.store.live_externals_of(tenant, g3).await.unwrap();
    assert!(!g3_customers.is_empty());
    w.sb.resign_member(g3);
    let gw = w.gateway();
    gw.reconcile(tenant, w.app_id).await.unwrap();
    gw.reconcile(tenant, w.app_id).await.unwrap();
    let list = w.json(Method::GET, "/api/v1/transfers", None).await;
    let auto: Vec<&Value> = list["items"].as_array().unwrap().iter().filter(|t| t["origin"] == "auto").collect();
    assert_eq!(auto.len(), 1, "one plan per departed member: {list}");
    assert_eq!((auto[0]["kind"].as_str(), auto[0]["handover_userid"].as_str()), (Some("resigned"), Some(g3.as_str())));
    let aid = auto[0]["id"].as_str().unwrap().to_string();
    // g3 holds e3 (whose refused-at-limit attempt and re-route already make two moves in 90
    // days, so it is left out) and e4.
    let planned = w.json(Method::GET, &format!("/api/v1/transfers/{aid}"), None).await;
    assert_eq!(g3_customers.len(), 2);
    assert_eq!(planned["items"].as_array().unwrap().len(), 2);
    assert_eq!(w.item(&planned, &w.ext[2])["reason"], "window", "{planned}");
    let e4 = w.item(&planned, &w.ext[3]);
    assert!(e4["status"] == "planned" && e4["takeover_userid"] != g3.as_str(), "{planned}");
    w.json(Method::POST, &format!("/api/v1/transfers/{aid}/execute"), None).await;
    w.clock.advance(Duration::from_secs(24 * 3600 + 1));
    w.json(Method::POST, "/api/v1/transfers/poll", None).await;
    let done = w.json(Method::GET, &format!("/api/v1/transfers/{aid}"), None).await;
    assert_eq!(done["counts"]["done"], 1, "{done}");
    assert_eq!(w.app.store.live_externals_of(tenant, g3).await.unwrap(), vec![w.ext[2].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_sqlite() {
    transfers_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_postgres() {
    transfers_story(Backend::Postgres).await;
}

/// The owner siyu has on record for a group.
async fn owner_in_siyu(w: &World, chat: &str) -> String {
    w.app.store.wecom_group(w.seed.tenant, chat).await.unwrap().unwrap().owner
}

async fn group_transfers_story(backend: Backend) {
    let w = world(backend).await;
    let (g1, g2, g3) = (&w.g[0], &w.g[1], &w.g[2]);
    let tenant: TenantId = w.seed.tenant;
    // g1 owns five groups, g2 one; reconciliation brings them into siyu.
    let chats: Vec<String> = (1..=5).map(|i| w.sb.add_group_chat(g1, &format!("会员群{i}"))).collect();
    w.sb.add_group_chat(g2, "g2 的群");
    w.gateway().reconcile(tenant, w.app_id).await.unwrap();

    // Bad requests name the field and plan nothing.
    let bad = [
        (json!({"kind": "onjob", "subject": "tags", "handover_staff_id": w.seed.guide_staff}), "subject"),
        (json!({"kind": "onjob", "handover_staff_id": w.seed.guide_staff, "chat_ids": [chats[0]]}), "chat_ids"),
        (json!({"kind": "onjob", "subject": "groups", "handover_staff_id": w.g3_staff}), "handover_staff_id"),
        (
            json!({"kind": "onjob", "subject": "groups", "handover_staff_id": w.seed.guide_staff, "chat_ids": ["wrNONE"]}),
            "chat_ids",
        ),
    ];
    for (body, field) in bad {
        let r = w.api(Method::POST, "/api/v1/transfers", Some(&body)).await;
        assert_eq!(problem(r, 422).await["field"], field, "{body}");
    }
    assert!(w.json(Method::GET, "/api/v1/transfers", None).await["items"].as_array().unwrap().is_empty());

    // Four of g1's groups over g2 (owns one) and g3 (owns none): the fewest groups first.
    let plan = w
        .plan(json!({"kind": "onjob", "subject": "groups", "handover_staff_id": w.seed.guide_staff,
                     "chat_ids": &chats[..4], "receiver_staff_ids": [w.seed.other_staff, w.g3_staff]}))
        .await;
    assert_eq!(plan["subject"], "groups");
    assert!(plan["items"].as_array().unwrap().is_empty());
    let items = plan["group_items"].as_array().unwrap();
    let to: Vec<&str> = items.iter().map(|i| i["takeover_userid"].as_str().unwrap()).collect();
    assert_eq!(to, [g3.as_str(), g2.as_str(), g3.as_str(), g2.as_str()], "{plan}");
    assert_eq!(items[0]["chat_name"], "会员群1");
    let id = plan["id"].as_str().unwrap().to_string();
    // The same groups cannot be planned twice while open.
    let r = w
        .api(
            Method::POST,
            "/api/v1/transfers",
            Some(&json!({"kind": "onjob", "subject": "groups", "handover_staff_id": w.seed.guide_staff,
                         "chat_ids": &chats[..4]})),
        )
        .await;
    assert_eq!(problem(r, 409).await["code"], "conflict");

    // One group is dismissed before the batch goes out: WeCom lists it as failed (90501).
    w.sb.dismiss_group_chat(&chats[3]);
    let sent = w.json(Method::POST, &format!("/api/v1/transfers/{id}/execute"), None).await;
    assert_eq!(sent["counts"]["done"], 3, "{sent}");
    let gone = &sent["group_items"][3];
    assert_eq!((gone["status"].as_str(), gone["reason"].as_str()), (Some("failed"), Some("not_a_group")), "{sent}");
    assert_eq!(gone["errcode"], 90501);
    assert!(gone["explanation"].as_str().unwrap().contains("not an external group chat"));
    assert_eq!((gone["can_retry"].as_bool(), gone["can_reroute"].as_bool()), (Some(false), Some(false)));
    // The move is final at once, in WeCom and in siyu's copy.
    for (chat, owner) in chats.iter().zip([g3, g2, g3]) {
        assert_eq!(w.sb.group_chat_owner(chat).as_deref(), Some(owner.as_str()));
        assert_eq!(&owner_in_siyu(&w, chat).await, owner);
    }
    let again = w.json(Method::POST, &format!("/api/v1/transfers/{id}/execute"), None).await;
    assert_eq!(again["counts"], sent["counts"], "executing again sends nothing");
    let gone_id = gone["id"].as_str().unwrap();
    let r = w.api(Method::POST, &format!("/api/v1/group-transfer-items/{gone_id}/retry"), None).await;
    assert_eq!(problem(r, 409).await["code"], "conflict");
    let r = w.api(Method::POST, &format!("/api/v1/group-transfer-items/{}/cancel", uuid::Uuid::now_v7()), None).await;
    problem(r, 404).await;

    // 会员群1 moves g3 → g2 (its second move in 90 days); a third is excluded by the preflight.
    let second = w
        .plan(json!({"kind": "onjob", "subject": "groups", "handover_staff_id": w.g3_staff,
                     "chat_ids": [chats[0]], "receiver_staff_ids": [w.seed.other_staff]}))
        .await;
    let sid = second["id"].as_str().unwrap().to_string();
    assert_eq!(w.json(Method::POST, &format!("/api/v1/transfers/{sid}/execute"), None).await["counts"]["done"], 1);
    let third = w
        .plan(json!({"kind": "onjob", "subject": "groups", "handover_staff_id": w.seed.other_staff,
                     "chat_ids": [chats[0]], "receiver_staff_ids": [w.g3_staff]}))
        .await;
    let item = &third["group_items"][0];
    assert_eq!((item["status"].as_str(), item["reason"].as_str()), (Some("excluded"), Some("window")), "{third}");
    assert_eq!(item["can_reroute"], false);
    // A planned group can be withdrawn; then it can be planned again.
    let p = w
        .plan(json!({"kind": "onjob", "subject": "groups", "handover_staff_id": w.seed.other_staff,
                     "chat_ids": [chats[1]], "receiver_staff_ids": [w.g3_staff]}))
        .await;
    let pid = p["group_items"][0]["id"].as_str().unwrap().to_string();
    let r = w.api(Method::POST, &format!("/api/v1/group-transfer-items/{pid}/cancel"), None).await;
    assert_eq!(r.status(), 204);
    let p = w.json(Method::GET, &format!("/api/v1/transfers/{}", p["id"].as_str().unwrap()), None).await;
    assert_eq!(p["counts"]["cancelled"], 1);

    // The console shows the groups, their owners and why one failed.
    let owner = w.app.session("tr", "owner").await;
    let page = owner.send(&w.app, Method::GET, &format!("/console/transfers/{id}"), None).await.text().await.unwrap();
    assert!(page.contains("会员群2") && page.contains("该群已解散或不是客户群") && page.contains("客户群"), "{page}");
    // …and plans a group transfer from its form.
    let form = [
        ("_csrf", owner.csrf.as_str()),
        ("kind", "onjob"),
        ("subject", "groups"),
        ("handover_staff_id", &w.seed.other_staff.to_string()),
        ("receivers", w.g3_staff.as_str()),
    ];
    let r = owner.client.post(w.app.url("/console/transfers")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200, "redirected to the new batch");
    let page = r.text().await.unwrap();
    assert!(page.contains("group-items-table") && page.contains("待发送"), "{page}");
    // Items are withdrawn and retried from the batch page as well, groups and customers alike.
    let newest = w.json(Method::GET, "/api/v1/transfers", None).await["items"][0]["id"].as_str().unwrap().to_string();
    let detail = w.json(Method::GET, &format!("/api/v1/transfers/{newest}"), None).await;
    let planned = detail["group_items"].as_array().unwrap().iter().find(|i| i["status"] == "planned").unwrap();
    let console = |path: String| {
        let (owner, w) = (&owner, &w);
        async move {
            let r = owner.client.post(w.app.url(&path)).form(&[("_csrf", owner.csrf.as_str())]).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (code, page) =
        console(format!("/console/group-transfer-items/{}/cancel", planned["id"].as_str().unwrap())).await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("已取消"));
    let (code, page) = console(format!("/console/group-transfer-items/{gone_id}/retry")).await;
    assert_eq!(code, 422);
    assert!(page.contains("cannot be retried"), "{page}");
    assert_eq!(console(format!("/console/group-transfer-items/{gone_id}/explode")).await.0, 404);
    let customer = w.customer_of(&w.ext[0]).await;
    let one = w
        .plan(json!({"kind": "onjob", "handover_staff_id": w.seed.guide_staff, "customer_ids": [customer],
                     "receiver_staff_ids": [w.seed.other_staff]}))
        .await;
    let (code, page) =
        console(format!("/console/transfer-items/{}/cancel", one["items"][0]["id"].as_str().unwrap())).await;
    assert_eq!(code, 200, "{page}");
    let one = w.json(Method::GET, &format!("/api/v1/transfers/{}", one["id"].as_str().unwrap()), None).await;
    assert_eq!(one["counts"]["cancelled"], 1, "{one}");

    // g1 leaves still owning 会员群5: it is planned automatically with groupchat/transfer, once.
    w.sb.resign_member(g1);
    let gw = w.gateway();
    gw.reconcile(tenant, w.app_id).await.unwrap();
    gw.reconcile(tenant, w.app_id).await.unwrap();
    let list = w.json(Method::GET, "/api/v1/transfers", None).await;
    let auto: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["origin"] == "auto" && t["subject"] == "groups")
        .collect();
    assert_eq!(auto.len(), 1, "{list}");
    assert_eq!((auto[0]["kind"].as_str(), auto[0]["handover_userid"].as_str()), (Some("resigned"), Some(g1.as_str())));
    let aid = auto[0]["id"].as_str().unwrap().to_string();
    let done = w.json(Method::POST, &format!("/api/v1/transfers/{aid}/execute"), None).await;
    assert_eq!(done["counts"]["done"], 1, "{done}");
    let heir = done["group_items"][0]["takeover_userid"].as_str().unwrap().to_string();
    assert_ne!(&heir, g1);
    assert_eq!(w.sb.group_chat_owner(&chats[4]), Some(heir.clone()));
    assert_eq!(owner_in_siyu(&w, &chats[4]).await, heir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_transfers_sqlite() {
    group_transfers_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_transfers_postgres() {
    group_transfers_story(Backend::Postgres).await;
}

/// WeCom's 300-groups-a-day limit per member pair: the 301st group waits and goes out by
/// itself once 24 hours have passed.
async fn group_daily_limit_story(backend: Backend) {
    let w = world(backend).await;
    let tenant = w.seed.tenant;
    let chats: Vec<String> = (0..301).map(|i| w.sb.add_group_chat(&w.g[0], &format!("群{i}"))).collect();
    w.gateway().reconcile(tenant, w.app_id).await.unwrap();
    let plan = w
        .plan(json!({"kind": "onjob", "subject": "groups", "handover_staff_id": w.seed.guide_staff,
                     "receiver_staff_ids": [w.seed.other_staff]}))
        .await;
    let id = plan["id"].as_str().unwrap().to_string();
    let sent = w.json(Method::POST, &format!("/api/v1/transfers/{id}/execute"), None).await;
    assert_eq!((sent["counts"]["done"].as_i64(), sent["counts"]["planned"].as_i64()), (Some(300), Some(1)));
    let held = sent["group_items"].as_array().unwrap().iter().find(|i| i["status"] == "planned").unwrap();
    assert_eq!(held["reason"], "daily_limit");
    let held_chat = held["chat_id"].as_str().unwrap().to_string();
    assert_eq!(w.sb.group_chat_owner(&held_chat).as_deref(), Some(w.g[0].as_str()));
    // Polling within the 24 hours sends nothing; after them, the held group goes out.
    w.clock.advance(Duration::from_secs(23 * 3600));
    w.json(Method::POST, "/api/v1/transfers/poll", None).await;
    assert_eq!(w.json(Method::GET, &format!("/api/v1/transfers/{id}"), None).await["counts"]["planned"], 1);
    w.clock.advance(Duration::from_secs(3600 + 1));
    assert!(w.json(Method::POST, "/api/v1/transfers/poll", None).await["changed"].as_u64().unwrap() >= 1);
    let after = w.json(Method::GET, &format!("/api/v1/transfers/{id}"), None).await;
    assert_eq!(after["counts"]["done"], 301, "{}", after["counts"]);
    assert_eq!(w.sb.group_chat_owner(&held_chat).as_deref(), Some(w.g[1].as_str()));
    assert_eq!(chats.len(), 301);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_daily_limit_sqlite() {
    group_daily_limit_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_daily_limit_postgres() {
    group_daily_limit_story(Backend::Postgres).await;
}

async fn reminders_story(backend: Backend) {
    let w = world(backend).await;
    let tenant = w.seed.tenant;
    // A manager with a WeCom account receives escalations.
    let sys = siyu_core::auth::Actor::system(tenant);
    w.app
        .store
        .create_user(
            &sys,
            siyu_store::org::NewUser {
                login: "lead".into(),
                display_name: "店长".into(),
                role: siyu_core::auth::Role::Operator,
                staff_id: Some(w.seed.other_staff),
                password_hash: siyu_store::secrets::hash_password(common::PASSWORD),
            },
        )
        .await
        .unwrap();
    let c1 = w.customer_of(&w.ext[0]).await;
    let due = Timestamp(w.clock.now().0 + 3_600 * 1_000_000).to_rfc3339(8);
    let r = w
        .api(
            Method::POST,
            &format!("/api/v1/customers/{c1}/follow-ups"),
            Some(&json!({"kind": "call", "content": "回访新品试用", "next_at": due})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let gw = w.gateway();
    // Not due yet: nothing sent.
    assert_eq!(gw.send_follow_up_reminders(tenant).await.unwrap().reminded, 0);
    w.clock.advance(Duration::from_secs(3_601));
    let sent = gw.send_follow_up_reminders(tenant).await.unwrap();
    assert_eq!((sent.reminded, sent.escalated), (1, 0));
    assert_eq!(gw.send_follow_up_reminders(tenant).await.unwrap().reminded, 0, "a reminder is sent once");
    let msgs = w.sb.app_messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0, w.g[0], "the customer's owner is reminded");
    assert!(msgs[0].1.contains("回访新品试用") && msgs[0].1.contains("客户1"), "{}", msgs[0].1);
    // Still open 24 hours later: the manager hears of it, once.
    w.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let sent = gw.send_follow_up_reminders(tenant).await.unwrap();
    assert_eq!((sent.reminded, sent.escalated), (0, 1));
    assert_eq!(gw.send_follow_up_reminders(tenant).await.unwrap().escalated, 0);
    let msgs = w.sb.app_messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].0, w.g[1]);
    assert!(msgs[1].1.contains("跟进超时"), "{}", msgs[1].1);
    // A failed send is not lost: WeCom busy once, the next run delivers it.
    let due = Timestamp(w.clock.now().0 - 1).to_rfc3339(8);
    let r = w
        .api(
            Method::POST,
            &format!("/api/v1/customers/{c1}/follow-ups"),
            Some(&json!({"kind": "note", "content": "二次回访", "next_at": due})),
        )
        .await;
    assert_eq!(r.status(), 201);
    w.sb.fail_next_call(40058);
    assert!(gw.send_follow_up_reminders(tenant).await.is_err());
    assert_eq!(gw.send_follow_up_reminders(tenant).await.unwrap().reminded, 1);
    assert_eq!(w.sb.app_messages().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_sqlite() {
    reminders_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_postgres() {
    reminders_story(Backend::Postgres).await;
}

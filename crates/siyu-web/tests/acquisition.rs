//! Channel live codes end to end against the WeCom sandbox, on SQLite and PostgreSQL: opening a
//! code creates its members' contact ways with its state; 200 concurrent scans of the landing
//! page are given out exactly to the caps (primary, then backup, then the fallback); an add
//! through a member's code makes a customer with the channel, gets the code's tag and its
//! welcome inside WeCom's 20 s, and moves the statistics; reservations lapse on the clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use siyu_core::time::ManualClock;
use siyu_core::{Clock, TenantId, Timestamp};
use siyu_wecom::api::{AddCorpTag, NewTag};
use siyu_wecom::sandbox::{Sandbox, SandboxConfig};

use common::{bearer, problem, App};

const CORP: &str = "wwLIVECODE001";
const SECRET: &str = "sandbox-app-secret";

struct World {
    app: App,
    clock: Arc<ManualClock>,
    seed: common::Seed,
    sb: Arc<Sandbox>,
}

macro_rules! both {
    ($name:ident, |$w:ident| $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $w = World::start(siyu_store::Backend::Sqlite).await;
                $body.await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $w = World::start(siyu_store::Backend::Postgres).await;
                $body.await
            }
        }
    };
}

impl World {
    async fn start(backend: siyu_store::Backend) -> World {
        let _ = tracing_subscriber::fmt().with_env_filter("error").try_init();
        let clock =
            Arc::new(ManualClock::at(Timestamp::from_unix_secs(siyu_core::time::SystemClock.now().unix_secs())));
        let app = App::start_with_clock(backend, clock.clone()).await;
        let seed = app.seed("lc").await;
        // siyu's app first (for its callback token and key), then the sandbox that calls back.
        let r = bearer(
            &app,
            &seed.token,
            Method::POST,
            "/api/v1/wecom/apps",
            Some(&json!({"name": "客户联系", "corp_id": CORP, "agent_id": "1000002", "secret": SECRET,
                "base_url": "http://127.0.0.1:9"})),
        )
        .await;
        assert_eq!(r.status(), 201);
        let app_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let cb: Value = bearer(&app, &seed.token, Method::GET, &format!("/api/v1/wecom/apps/{app_id}/callback"), None)
            .await
            .json()
            .await
            .unwrap();
        let mut cfg =
            SandboxConfig::new(CORP, SECRET, cb["token"].as_str().unwrap(), cb["encoding_aes_key"].as_str().unwrap());
        cfg.callback_url = Some(app.url(cb["callback_path"].as_str().unwrap()));
        let sb = Sandbox::new(cfg, clock.clone());
        for (u, n) in [("zhangsan", "张三"), ("lisi", "李四"), ("wangwu", "王五"), ("boss", "店长")] {
            sb.add_member(u, n, 1);
            let r =
                bearer(&app, &seed.token, Method::POST, "/api/v1/staff", Some(&json!({"name": n, "wecom_userid": u})))
                    .await;
            assert_eq!(r.status(), 201);
        }
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sb_url = format!("http://{}", l.local_addr().unwrap());
        let router = sb.router();
        tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
        let r = bearer(
            &app,
            &seed.token,
            Method::PUT,
            &format!("/api/v1/wecom/apps/{app_id}"),
            Some(&json!({"name": "客户联系", "corp_id": CORP, "agent_id": "1000002", "base_url": sb_url, "secret": SECRET})),
        )
        .await;
        assert_eq!(r.status(), 200);
        World { app, clock, seed, sb }
    }

    async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let r = bearer(&self.app, &self.seed.token, method, path, body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Turns every stored callback into its effects, oldest first.
    async fn process_all(&self, tenant: TenantId) {
        let gw = siyu_web::wecom::Gateway::new(self.app.store.store.clone());
        let page = self.app.store.list_inbox(tenant, &Default::default(), &Default::default()).await.unwrap();
        for item in page.items.into_iter().rev() {
            gw.process_inbox(tenant, item.id).await.unwrap();
        }
    }
}

fn member<'a>(code: &'a Value, userid: &str) -> &'a Value {
    code["today"].as_array().unwrap().iter().find(|m| m["userid"] == userid).unwrap_or(&Value::Null)
}

both!(a_live_code_gives_scans_out_exactly_and_welcomes_each_add, |w| async move {
    // A corp tag for the code to apply.
    let gw = siyu_web::wecom::Gateway::new(w.app.store.store.clone());
    let app_id = w.app.store.list_wecom_apps(w.seed.tenant).await.unwrap()[0].id;
    let client = gw.client(w.seed.tenant, app_id).await.unwrap();
    let group = client
        .add_corp_tag(&AddCorpTag {
            group_name: Some("渠道".into()),
            tag: vec![NewTag { name: "门店海报".into(), order: None }],
            ..Default::default()
        })
        .await
        .unwrap();
    let tag_id = group.tag[0].id.clone();

    let bad = json!({"name": "", "staff": [], "fallback": "", "daily_cap": 0,
        "schedule": [{"weekdays": [9], "from": "18:00", "to": "09:00"}]});
    let r = bearer(&w.app, &w.seed.token, Method::POST, "/api/v1/live-codes", Some(&bad)).await;
    let v = problem(r, 422).await;
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    for f in ["name", "staff", "fallback", "daily_cap", "schedule.0.weekdays", "schedule.0.to"] {
        assert!(fields.contains(&f), "{f} in {v}");
    }
    let body = json!({"name": "门店海报", "staff": ["zhangsan", "lisi"], "backup": ["wangwu"], "fallback": "boss",
        "daily_cap": 50, "tag_ids": [tag_id], "welcome": "{customer_name}您好，我是{staff_name}"});
    let code = w.json(Method::POST, "/api/v1/live-codes", Some(&body)).await;
    assert_eq!(code["status"], "active");
    let state = code["state"].as_str().unwrap().to_string();
    assert!(state.starts_with("lc:") && state.len() <= 30);
    assert_eq!(code["members"].as_array().unwrap().len(), 4);
    let ways: Vec<siyu_wecom::api::ContactWay> = {
        let rows = w.app.store.live_code(w.seed.tenant, code["id"].as_str().unwrap().parse().unwrap()).await.unwrap();
        rows.members.iter().map(|m| w.sb.contact_way(&m.config_id).unwrap()).collect()
    };
    assert!(ways.iter().all(|c| c.kind == 1 && c.user.len() == 1 && c.state.as_deref() == Some(state.as_str())));

    // 200 scans at once: 50 each to the two primaries, 50 to the backup, the rest to the fallback.
    let landing = w.app.url(code["landing_path"].as_str().unwrap());
    let pages = futures::future::join_all((0..200).map(|i| {
        let url = format!("{landing}?src=poster&n={i}");
        async move {
            let r = reqwest::Client::new()
                .get(&url)
                .header("user-agent", "Mozilla/5.0 MicroMessenger/8.0")
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    }))
    .await;
    assert!(pages.iter().all(|(s, p)| *s == 200 && p.contains("id=\"landing-qr\"")));
    let id = code["id"].as_str().unwrap();
    let got = w.json(Method::GET, &format!("/api/v1/live-codes/{id}"), None).await;
    for (u, n) in [("zhangsan", 50), ("lisi", 50), ("wangwu", 50), ("boss", 50)] {
        assert_eq!(member(&got, u)["used"], n, "{u}: {got}");
    }
    assert_eq!(member(&got, "zhangsan")["left"], 0);
    assert_eq!(got["overflow"], true, "the fallback took scans today");
    let owner = w.app.session("lc", "owner").await;
    let page = owner.client.get(w.app.url("/console/live-codes")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("id=\"overflow-{id}\"")), "the console flags the overflow");
    assert_eq!(got["days"].as_array().unwrap().last().unwrap()["scans"], 200);

    // The customer adds the member whose QR they were shown: one customer, with the channel,
    // the code's tag on the relationship and the welcome delivered, within WeCom's 20 s.
    let zhang = code["members"].as_array().unwrap().iter().find(|m| m["userid"] == "zhangsan").unwrap();
    let zhang_way = ways.iter().find(|c| c.user[0] == "zhangsan").unwrap().config_id.clone();
    assert!(!zhang["qr_code"].as_str().unwrap().is_empty());
    let ext = w.sb.add_external_user("韩梅梅", Some("u-han"));
    w.sb.scan_contact_way(&zhang_way, &ext).await.unwrap();
    w.process_all(w.seed.tenant).await;
    let welcomes = w.sb.welcomes();
    assert_eq!(welcomes.len(), 1);
    assert_eq!(welcomes[0].text.as_deref(), Some("韩梅梅您好，我是张三"));
    assert_eq!(w.sb.relationship_tags(&ext, "zhangsan"), vec![tag_id.clone()]);
    let notes = w.sb.app_messages();
    assert_eq!(notes.len(), 1, "the member is told once: {notes:?}");
    assert!(
        notes[0].0.contains("zhangsan") && notes[0].1.contains("韩梅梅") && notes[0].1.contains("门店海报"),
        "{notes:?}"
    );
    let count = w.json(Method::POST, "/api/v1/segments/count", Some(&json!({"expr": {"channel": state}}))).await;
    assert_eq!(count["count"], 1);
    let got = w.json(Method::GET, &format!("/api/v1/live-codes/{id}"), None).await;
    assert_eq!(
        (member(&got, "zhangsan")["used"].as_i64(), member(&got, "zhangsan")["adds"].as_i64()),
        (Some(50), Some(1))
    );
    assert_eq!(got["days"].as_array().unwrap().last().unwrap()["adds"], 1);
    // The same callbacks again change nothing and send nothing (A-5, idempotent).
    w.process_all(w.seed.tenant).await;
    assert_eq!(w.sb.welcomes().len(), 1);
    assert_eq!(w.sb.app_messages().len(), 1);
    let again = w.json(Method::GET, &format!("/api/v1/live-codes/{id}"), None).await;
    assert_eq!(member(&again, "zhangsan")["adds"], 1);

    // Unused reservations lapse after 10 minutes and give their capacity back.
    w.clock.advance(Duration::from_secs(11 * 60));
    assert_eq!(w.app.store.lapse_live_code_reservations().await.unwrap(), 199);
    assert_eq!(w.app.store.lapse_live_code_reservations().await.unwrap(), 0, "once each");
    let got = w.json(Method::GET, &format!("/api/v1/live-codes/{id}"), None).await;
    assert_eq!(member(&got, "zhangsan")["used"], 1);
    assert_eq!(member(&got, "lisi")["used"], 0);

    // A welcome the pipeline reaches after WeCom's 20 s is skipped and recorded, not sent late.
    let late = w.sb.add_external_user("李雷", None);
    w.sb.scan_contact_way(&zhang_way, &late).await.unwrap();
    w.clock.advance(Duration::from_secs(21));
    w.process_all(w.seed.tenant).await;
    assert_eq!(w.sb.welcomes().len(), 1);
    let day = w.clock.now().local_day(8);
    let outcome = w
        .app
        .store
        .live_code_welcome(w.seed.tenant, code["id"].as_str().unwrap().parse().unwrap(), "zhangsan", &late, day)
        .await
        .unwrap();
    assert_eq!(outcome.as_deref(), Some("expired"));

    // Net adds: a customer who deletes the member no longer counts as kept.
    w.sb.customer_deletes(&ext, "zhangsan").await.unwrap();
    w.process_all(w.seed.tenant).await;
    let got = w.json(Method::GET, &format!("/api/v1/live-codes/{id}"), None).await;
    let today = got["days"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((today["adds"].as_i64(), today["net_adds"].as_i64()), (Some(2), Some(1)), "{today}");

    // Paused, the page says so and gives nobody out; resumed, it works again.
    w.json(Method::POST, &format!("/api/v1/live-codes/{id}/pause"), None).await;
    let page = reqwest::get(&landing).await.unwrap().text().await.unwrap();
    assert!(page.contains("landing-notice") && page.contains("暂停"), "{page}");
    w.json(Method::POST, &format!("/api/v1/live-codes/{id}/resume"), None).await;
    let r = reqwest::Client::new().get(&landing).header("user-agent", "curl/8").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("landing-outside"), "outside WeChat the page says how to open it");
    let missing = reqwest::get(w.app.url(&format!("/l/lc/{}", uuid::Uuid::now_v7()))).await.unwrap();
    assert_eq!(missing.status(), 404);
});

both!(a_code_cap_exhausts_the_code_and_a_late_add_is_marked_over_cap, |w| async move {
    let body = json!({"name": "快递卡", "staff": ["zhangsan"], "fallback": "boss", "daily_cap": 2, "code_cap": 3});
    let code = w.json(Method::POST, "/api/v1/live-codes", Some(&body)).await;
    let id = code["id"].as_str().unwrap();
    let landing = w.app.url(code["landing_path"].as_str().unwrap());
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = reqwest::get(&landing).await.unwrap();
        seen.push(r.text().await.unwrap());
    }
    assert!(seen[..3].iter().all(|p| p.contains("landing-qr")));
    assert!(seen[3].contains("今日添加名额已满"), "the code's own cap: {}", seen[3]);
    let got = w.json(Method::GET, &format!("/api/v1/live-codes/{id}"), None).await;
    assert_eq!((member(&got, "zhangsan")["used"].as_i64(), member(&got, "boss")["used"].as_i64()), (Some(2), Some(1)));
    // Two adds to zhangsan consume the reservations; a third (a direct scan of the member's
    // code) is still a friend, counted and marked over the cap.
    let row = w.app.store.live_code(w.seed.tenant, id.parse().unwrap()).await.unwrap();
    let way = row.members.iter().find(|m| m.userid == "zhangsan").unwrap().config_id.clone();
    for name in ["甲", "乙", "丙"] {
        let ext = w.sb.add_external_user(name, None);
        w.sb.scan_contact_way(&way, &ext).await.unwrap();
    }
    w.process_all(w.seed.tenant).await;
    let got = w.json(Method::GET, &format!("/api/v1/live-codes/{id}"), None).await;
    let z = member(&got, "zhangsan");
    assert_eq!((z["used"].as_i64(), z["adds"].as_i64(), z["over_cap"].as_i64()), (Some(3), Some(3), Some(1)));
    let notes = w.sb.app_messages();
    assert_eq!(notes.len(), 3);
    assert_eq!(notes.iter().filter(|n| n.1.contains("超上限")).count(), 1, "{notes:?}");
    // Expired codes answer 410.
    let expiring = json!({"name": "限时", "staff": ["lisi"], "fallback": "boss",
        "expires_at": Timestamp(w.clock.now().0 + 60_000_000).to_rfc3339(8)});
    let code = w.json(Method::POST, "/api/v1/live-codes", Some(&expiring)).await;
    w.clock.advance(Duration::from_secs(61));
    let r = reqwest::get(w.app.url(code["landing_path"].as_str().unwrap())).await.unwrap();
    assert_eq!(r.status(), 410);
});

both!(the_console_opens_pauses_and_prints_live_codes, |w| async move {
    let owner = w.app.session("lc", "owner").await;
    let post = |path: &str, form: Vec<(&str, &str)>| {
        let mut f: Vec<(String, String)> = vec![("_csrf".into(), owner.csrf.clone())];
        f.extend(form.into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
        owner.client.post(w.app.url(path)).form(&f).send()
    };
    // Nothing chosen: the form comes back with an error beside each field.
    let r = post("/console/live-codes", vec![("name", ""), ("daily_cap", "0")]).await.unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(page.contains("has-error") && page.contains("id=\"f-staff\""), "{page}");
    let r = post(
        "/console/live-codes",
        vec![
            ("name", "夜班"),
            ("staff", "zhangsan"),
            ("fallback", "boss"),
            ("daily_cap", "10"),
            ("weekdays", "1"),
            ("from", "18:00"),
            ("to", "09:00"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422, "a window that ends before it starts");
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"f-schedule\"") && page.contains("value=\"1\" checked"), "the choices stay: {page}");
    let r = post(
        "/console/live-codes",
        vec![
            ("name", "门店海报"),
            ("staff", "zhangsan"),
            ("staff", "lisi"),
            ("backup", "wangwu"),
            ("fallback", "boss"),
            ("daily_cap", "30"),
            ("welcome", "你好，我是{staff_name}"),
            ("skip_verify", "1"),
            ("weekdays", "6"),
            ("weekdays", "7"),
            ("from", "00:00"),
            ("to", "24:00"),
        ],
    )
    .await
    .unwrap();
    let page = r.text().await.unwrap();
    assert!(
        page.contains("门店海报") && page.contains("张三（主接待）已分配 0") && page.contains("店长（兜底）"),
        "{page}"
    );
    let code = &w.app.store.live_codes(w.seed.tenant).await.unwrap()[0];
    assert_eq!((code.config.daily_cap, code.members.len()), (30, 4));
    let slot = &code.config.schedule[0];
    assert_eq!((slot.weekdays.clone(), slot.from_minute, slot.to_minute), (vec![6, 7], 0, 1440));
    // The landing page's QR, to print.
    let svg = owner.client.get(w.app.url(&format!("/console/live-codes/{}/qr.svg", code.id))).send().await.unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let png = owner.client.get(w.app.url(&format!("/console/live-codes/{}/qr.png", code.id))).send().await.unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));
    // A scan shows up in today's counts; pausing and resuming from the list.
    reqwest::get(w.app.url(&format!("/l/lc/{}", code.id))).await.unwrap();
    let r = post(&format!("/console/live-codes/{}/pause", code.id), vec![]).await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("已暂停") && page.contains("扫码 1 · 添加 0 · 净增 0"), "{page}");
    assert!(!page.contains("id=\"overflow-"), "a backup took the scan, not the fallback");
    assert!(
        page.contains("class=\"live-code-chart\"") && page.contains("扫码 1，添加 0，净增 0"),
        "the day's bar: {page}"
    );
    let r = post(&format!("/console/live-codes/{}/resume", code.id), vec![]).await.unwrap();
    assert!(r.text().await.unwrap().contains("使用中"));
    let nav = owner.client.get(w.app.url("/console")).send().await.unwrap().text().await.unwrap();
    assert!(nav.contains("data-nav=\"live_codes\""), "the console's navigation leads to live codes");
});

both!(short_links_count_visits_and_carry_their_source_into_the_scan, |w| async move {
    let code = w
        .json(
            Method::POST,
            "/api/v1/live-codes",
            Some(&json!({"name": "包裹卡", "staff": ["zhangsan"], "fallback": "boss"})),
        )
        .await;
    let landing = code["landing_path"].as_str().unwrap().to_string();
    // Anything but this tenant's own pages is refused: no open redirect.
    for target in ["https://evil.example.com/", "//evil.example.com", "/l/other/x", "/console"] {
        let r = bearer(
            &w.app,
            &w.seed.token,
            Method::POST,
            "/api/v1/short-links",
            Some(&json!({"name": "坏", "target": target})),
        )
        .await;
        assert_eq!(problem(r, 422).await["errors"][0]["field"], "target", "{target}");
    }
    let link = w
        .json(
            Method::POST,
            "/api/v1/short-links",
            Some(&json!({"name": "双11短信", "target": landing, "params": [["utm_source", "sms"]]})),
        )
        .await;
    let code_str = link["code"].as_str().unwrap().to_string();
    assert!(code_str.len() >= 6 && code_str.chars().all(|c| c.is_ascii_alphanumeric()));
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let hit = |ua: &'static str| {
        let (c, url) = (no_redirect.clone(), w.app.url(link["path"].as_str().unwrap()));
        async move { c.get(url).header("user-agent", ua).send().await.unwrap() }
    };
    let r = hit("Mozilla/5.0 MicroMessenger/8.0").await;
    assert_eq!(r.status(), 302);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, format!("{landing}?sl={code_str}&utm_source=sms"));
    hit("Mozilla/5.0 MicroMessenger/8.0").await;
    hit("curl/8").await;
    let got = w.json(Method::GET, &format!("/api/v1/short-links/{}", link["id"].as_str().unwrap()), None).await;
    assert_eq!((got["pv"].as_i64(), got["uv"].as_i64()), (Some(3), Some(2)), "{got}");
    assert_eq!(got["days"].as_array().unwrap().last().unwrap()["uv"], 2);
    // Following the link, the scan records where it came from.
    let page = reqwest::get(w.app.url(&to)).await.unwrap().text().await.unwrap();
    assert!(page.contains("landing-qr"));
    let source: Option<String> = {
        let sql = "SELECT source FROM live_code_scans ORDER BY at DESC LIMIT 1";
        match w.app.store.store.db() {
            siyu_store::Db::Sqlite { read, .. } => sqlx::query_scalar(sql).fetch_one(read).await.unwrap(),
            siyu_store::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        }
    };
    assert_eq!(source.as_deref(), Some(format!("sl={code_str}&utm_source=sms").as_str()));
    // Disabled: 410 and nothing recorded.
    w.json(Method::POST, &format!("/api/v1/short-links/{}/disable", link["id"].as_str().unwrap()), None).await;
    assert_eq!(hit("curl/8").await.status(), 410);
    assert_eq!(no_redirect.get(w.app.url("/s/nope!!")).send().await.unwrap().status(), 404);
    let got = w.json(Method::GET, "/api/v1/short-links", None).await;
    assert_eq!((got[0]["pv"].as_i64(), got[0]["status"].as_str()), (Some(3), Some("disabled")));
    // The console lists it and makes another.
    let owner = w.app.session("lc", "owner").await;
    let form = [("_csrf", owner.csrf.as_str()), ("name", "包裹卡"), ("target", "/m/lc"), ("utm_source", "card")];
    let page =
        owner.client.post(w.app.url("/console/short-links")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("双11短信") && page.contains("3 / 2") && page.contains("utm_source=card"), "{page}");
    let bad = [("_csrf", owner.csrf.as_str()), ("name", "x"), ("target", "https://evil.example.com")];
    let r = owner.client.post(w.app.url("/console/short-links")).form(&bad).send().await.unwrap();
    assert_eq!(r.status(), 422);
});

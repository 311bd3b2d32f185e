//! The console in headless Chromium, driven over WebDriver: a person logs in, walks every page
//! of the organisation area, fills forms (with mistakes first), switches language, and a guide
//! finds only their own data. Needs Debian's `chromium` and `chromium-driver` (`.ci/run`
//! installs them); without them the test fails and says so. Screenshots of each page land in
//! `target/screenshots/` for review.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use siyu_core::Clock as _;
use siyu_store::testing::{fresh_config, url_for_child};
use siyu_store::Backend;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn which(cands: &[&str]) -> Option<PathBuf> {
    cands.iter().map(PathBuf::from).find(|p| p.exists())
}

async fn browser() -> (Client, Driver) {
    let driver = std::env::var("SIYU_CHROMEDRIVER").map(PathBuf::from).ok().or_else(|| which(&["/usr/bin/chromedriver"])).unwrap_or_else(|| {
        panic!("browser tests need chromedriver: `apt-get install chromium chromium-driver` (or set SIYU_CHROMEDRIVER)")
    });
    let chrome = std::env::var("SIYU_CHROMIUM")
        .map(PathBuf::from)
        .ok()
        .or_else(|| which(&["/usr/bin/chromium"]))
        .unwrap_or_else(|| {
            panic!("browser tests need chromium: `apt-get install chromium chromium-driver` (or set SIYU_CHROMIUM)")
        });
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let guard = Driver(child);
    let profile = std::env::temp_dir().join(format!("siyu-chrome-{}", uuid::Uuid::now_v7().simple()));
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chrome,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1366,900", format!("--user-data-dir={}", profile.display())]
        }
    });
    let caps = caps.as_object().unwrap().clone().into_iter().collect();
    let wd = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps_clone(&caps))
            .connect(&wd)
            .await
        {
            Ok(c) => return (c, guard),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not start a Chromium session: {last:?}");
}

fn caps_clone(c: &serde_json::Map<String, serde_json::Value>) -> serde_json::Map<String, serde_json::Value> {
    c.clone()
}

struct Walk {
    c: Client,
    base: String,
    shots: PathBuf,
    tag: &'static str,
}

impl Walk {
    async fn go(&self, path: &str) {
        self.c.goto(&format!("{}{}", self.base, path)).await.unwrap();
    }
    async fn text(&self, css: &str) -> String {
        self.c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }
    async fn body(&self) -> String {
        self.text("body").await
    }
    async fn fill(&self, name: &str, value: &str) {
        let el = self
            .c
            .find(Locator::Css(&format!("[name='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("field {name}: {e}"));
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }
    /// Submits a form that the page's own script stops (client-side validation).
    async fn submit_blocked(&self, form_css: &str) {
        self.c.execute("window.__siyuOld = true;", vec![]).await.unwrap();
        self.c.find(Locator::Css(&format!("{form_css} button[type=submit]"))).await.unwrap().click().await.unwrap();
        assert!(self.is_same_document().await, "the form was expected not to leave the page");
    }
    /// Submits a form and waits for the next page, even when its URL is the same.
    async fn submit(&self, form_css: &str) {
        self.click_nav(&format!("{form_css} button[type=submit]")).await;
    }
    /// Clicks something that navigates, and waits until a new document has loaded: the old
    /// one is marked, so a page that re-renders at the same URL is still told apart.
    async fn click_nav(&self, css: &str) {
        self.c.execute("window.__siyuOld = true;", vec![]).await.unwrap();
        let el = self.c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        // As a person would: scroll it to the middle, clear of fixed bars.
        let arg = serde_json::to_value(&el).unwrap();
        self.c.execute("arguments[0].scrollIntoView({block: 'center'});", vec![arg]).await.unwrap();
        el.click().await.unwrap();
        for _ in 0..200 {
            if !self.is_same_document().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("clicking {css} did not load a new page");
    }
    async fn is_same_document(&self) -> bool {
        let v = self.c.execute("return window.__siyuOld === true || document.readyState !== 'complete';", vec![]).await;
        v.map(|v| v.as_bool().unwrap_or(true)).unwrap_or(true)
    }
    async fn path(&self) -> String {
        let u = self.c.current_url().await.unwrap();
        format!("{}{}", u.path(), u.query().map(|q| format!("?{q}")).unwrap_or_default())
    }
    async fn wait_path(&self, prefix: &str) {
        for _ in 0..100 {
            if self.path().await.starts_with(prefix) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected to reach {prefix}, at {}", self.path().await);
    }
    async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{}-{name}.png", self.tag)), png).unwrap();
    }
    async fn count(&self, css: &str) -> usize {
        self.c.find_all(Locator::Css(css)).await.unwrap().len()
    }
}

async fn console_walk(backend: Backend) {
    let (cfg, _cleanup) = fresh_config(backend).await;
    // The demo's stream of simulated customers would add callbacks the steps below count.
    let server = common::Server::start(&url_for_child(&cfg), &["--demo"], &[("SIYU_DEMO_ACTIVITY_SECS", "0")]);
    let (c, _driver) = browser().await;
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let w = Walk { c: c.clone(), base: server.base.clone(), shots, tag: backend.as_str() };

    // Not logged in: the console sends us to the login page, which offers the demo login.
    w.go("/console/stores").await;
    w.wait_path("/console/login").await;
    assert!(w.body().await.contains("siyu-demo-2026"));
    w.shot("login").await;
    // The browser's own checks stop an empty password before it leaves the page.
    w.fill("password", "").await;
    w.submit_blocked("form.login-card").await;
    assert!(w.count(".field.has-error").await >= 1, "inline validation marks the empty password");
    w.fill("password", "wrong-password-1").await;
    w.submit("form.login-card").await;
    assert!(w.text(".alert-error").await.contains("不正确"));
    w.fill("password", "siyu-demo-2026").await;
    w.submit("form.login-card").await;
    w.wait_path("/console/stores").await;

    // Overview.
    w.go("/console").await;
    assert_eq!(w.text("#stat-stores").await, "4");
    w.shot("home").await;

    // Stores: create with mistakes, then correctly.
    w.go("/console/stores").await;
    assert_eq!(w.count("#stores-table tbody tr").await, 4);
    w.shot("stores").await;
    w.click_nav("#new-store").await;
    w.wait_path("/console/stores/new").await;
    w.submit_blocked("form.form").await;
    assert!(w.count(".field.has-error").await >= 2, "required fields flagged before submit");
    w.fill("code", "online").await;
    w.fill("name", "重复编码的店").await;
    w.submit("form.form").await;
    assert!(
        w.text(".field.has-error .error-text").await.contains("已被使用"),
        "server says the code is taken, beside the field"
    );
    w.shot("store-form-error").await;
    w.fill("code", "sz-futian").await;
    w.fill("name", "深圳福田店").await;
    w.fill("city", "深圳").await;
    w.submit("form.form").await;
    w.wait_path("/console/stores?saved=1").await;
    assert!(w.text("#stores-table").await.contains("深圳福田店"));
    w.fill("q", "深圳").await;
    w.submit("form.filters").await;
    assert_eq!(w.count("#stores-table tbody tr").await, 1);

    // Staff.
    w.go("/console/staff").await;
    assert!(w.text("#staff-table").await.contains("王芳"));
    w.shot("staff").await;

    // Users: a weak password is refused, then a guide is created.
    w.go("/console/users/new").await;
    w.fill("login", "newguide").await;
    w.fill("display_name", "新导购").await;
    w.fill("password", "weakpassword").await;
    w.c.find(Locator::Css("select[name=role] option[value=guide]")).await.unwrap().click().await.unwrap();
    w.submit("form.form").await;
    assert!(w.text(".field.has-error").await.contains("8"), "password rule explained");
    w.fill("password", "Strong-pass-2026").await;
    w.submit("form.form").await;
    w.wait_path("/console/users?saved=1").await;
    assert!(w.text("#users-table").await.contains("newguide"));
    w.shot("users").await;

    // Tokens: created, shown once, revoked.
    w.go("/console/tokens").await;
    w.fill("name", "ERP").await;
    w.c.find(Locator::Css("input[name=scopes][value='stores:read']")).await.unwrap().click().await.unwrap();
    w.submit("#token-form").await;
    let secret = w.text("#new-secret").await;
    assert!(secret.starts_with("siyu_"), "{secret}");
    w.shot("tokens").await;
    w.go("/console/tokens").await;
    assert!(!w.body().await.contains(&secret), "the secret is never shown again");

    // Audit log shows what we did, with the change.
    w.go("/console/audit?entity_type=store").await;
    let audit = w.text("#audit-table").await;
    assert!(audit.contains("store.create"));
    w.shot("audit").await;

    // WeCom: the demo's sandbox corp already sent three callbacks; check the connection.
    for _ in 0..100 {
        w.go("/console/wecom?status=processed").await;
        if w.count("#inbox-table tbody tr").await == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(w.count("#inbox-table tbody tr").await, 3, "three processed callbacks");
    // The demo's first sync has run: relationships and groups are listed with their drift.
    for _ in 0..100 {
        w.go("/console/wecom").await;
        if w.count("#sync-table tbody tr").await == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sync = w.text("#sync-table").await;
    assert!(sync.contains("客户关系") && sync.contains("客户群"), "{sync}");
    w.click_nav("button[id^=check-]").await;
    let check = w.text("#check-table").await;
    assert!(check.contains("应用 Secret") && check.contains("正常"), "{check}");
    assert!(!check.contains("失败"), "{check}");
    w.shot("wecom").await;

    // Demo mode: act as a customer in the sandbox; the scan arrives as a fourth callback.
    w.go("/console/sandbox").await;
    w.submit("form[action='/console/sandbox/scan']").await;
    assert!(w.text("#sandbox-result").await.contains("回调已发出"));
    w.shot("sandbox").await;
    for _ in 0..100 {
        w.go("/console/wecom?status=processed").await;
        if w.count("#inbox-table tbody tr").await == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(w.count("#inbox-table tbody tr").await, 4);

    // Acquisition: the demo's channel live code, opened against the sandbox with a contact
    // way per member, with its landing page and QR downloads.
    for _ in 0..100 {
        w.go("/console/live-codes").await;
        if w.count("#live-codes-table tbody tr").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let codes = w.text("#live-codes-table").await;
    assert!(codes.contains("门店海报活码") && codes.contains("王芳（主接待）") && codes.contains("使用中"), "{codes}");
    w.shot("live-codes").await;

    // Jobs: a probe runs in the serve process's runner.
    w.go("/console/jobs").await;
    w.click_nav("#probe").await;
    w.wait_path("/console/jobs?probed=1").await;
    for _ in 0..100 {
        w.go("/console/jobs?status=done").await;
        if w.body().await.contains("system.probe") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(w.text("#jobs-table").await.contains("system.probe"));
    w.shot("jobs").await;

    // Customers: the demo's Online Retail customers arrive in the background.
    for _ in 0..600 {
        w.go("/console/customers").await;
        if w.count("#customers-table tbody tr").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(w.count("#customers-table tbody tr").await, 20, "a full first page of demo customers");
    assert!(w.text("#customers-table").await.contains("Customer "));
    w.shot("customers").await;
    // A new customer: a bad phone is refused beside the field, then accepted.
    w.click_nav("#new-customer").await;
    w.fill("name", "王小明").await;
    w.fill("phone", "12345").await;
    w.submit("#customer-form").await;
    assert!(w.text(".field.has-error").await.contains("手机号"), "phone error beside the field");
    w.fill("phone", "13812345678").await;
    w.submit("#customer-form").await;
    w.wait_path("/console/customers/").await;
    assert!(w.text(".page-desc").await.contains("+8613812345678"), "the owner sees the full number");
    let ids = w.text("#identities").await;
    assert!(ids.contains("手机号") && ids.contains("已加密") && !ids.contains("13812345678"), "{ids}");

    // Tags: a group and a tag, then the tag on the new customer.
    let customer_page = w.path().await;
    let customer_page = customer_page.split('?').next().unwrap().to_string();
    w.go("/console/tags").await;
    w.fill("name", "会员等级").await;
    w.submit("#group-form").await;
    w.wait_path("/console/tags?saved=1").await;
    w.c.find(Locator::Css("#tag-form select[name=group_id] option:nth-child(2)")).await.unwrap().click().await.unwrap();
    w.fill("tag_name", "金卡").await;
    w.submit("#tag-form").await;
    w.wait_path("/console/tags?saved=1").await;
    assert!(w.body().await.contains("金卡"));
    w.shot("tags").await;
    w.go(&customer_page).await;
    let gold = w.c.find(Locator::XPath("//form[@id='add-tag-form']//option[contains(., '金卡')]")).await.unwrap();
    gold.click().await.unwrap();
    w.submit("#add-tag-form").await;
    assert!(w.text("#customer-tags").await.contains("金卡"));
    // A follow-up without content is refused, then recorded on the timeline.
    w.submit_blocked("#follow-up-form").await;
    assert!(w.count("#follow-up-form .field.has-error").await >= 1);
    w.fill("content", "电话回访，周末到店").await;
    w.submit("#follow-up-form").await;
    assert!(w.text("#follow-ups").await.contains("周末到店"));
    assert!(w.text("#timeline").await.contains("金卡"));
    w.shot("customer").await;

    // Import: a file with a bad row is refused with the row explained; a clean one is
    // imported by the serve process's job while the page follows its progress.
    let dir = std::env::temp_dir().join(format!("siyu-browser-{}-{}", w.tag, std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "姓名,手机号\n周杰,13700000001\n吴磊,12345\n").unwrap();
    let good = dir.join("good.csv");
    std::fs::write(&good, "姓名,手机号,外部编号\n周杰,13700000001,B1\n吴磊,13700000002,B2\n").unwrap();
    w.go("/console/customers").await;
    w.click_nav("#import-customers").await;
    w.c.find(Locator::Css("input[name=file]")).await.unwrap().send_keys(bad.to_str().unwrap()).await.unwrap();
    w.submit("#import-form").await;
    w.wait_path("/console/customers/imports/").await;
    let probs = w.text("#problems-table").await;
    assert!(probs.contains("3") && probs.contains("手机号格式不正确"), "{probs}");
    w.shot("import-rejected").await;
    w.go("/console/customers/import").await;
    w.c.find(Locator::Css("input[name=file]")).await.unwrap().send_keys(good.to_str().unwrap()).await.unwrap();
    w.submit("#import-form").await;
    w.wait_path("/console/customers/imports/").await;
    let mut status = String::new();
    for _ in 0..300 {
        // The page reloads itself every second: read the status in one script call, and take a
        // read that met the page mid-reload as "not yet".
        let read = "const e = document.querySelector('#import-status'); return e ? e.dataset.status : '';";
        let got = w.c.execute(read, vec![]).await.ok();
        status = got.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        if status == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, "done", "the page followed the import to its end");
    // A finished import's page no longer reloads, so it is read like any other.
    w.go(&w.path().await).await;
    assert!(w.text("#import-done").await.contains('2'));
    w.shot("import-done").await;
    w.go("/console/customers?q=13700000002").await;
    assert_eq!(w.count("#customers-table tbody tr").await, 1, "the imported customer is found by phone");

    // Segments: the RFM overview of the demo data, then the builder's live count. The demo
    // saves its segments after its customers, purchases and RFM, still in the background.
    for _ in 0..600 {
        w.go("/console/segments").await;
        if w.count("#segments-table tbody tr").await >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rfm = w.text("#rfm").await;
    assert!(rfm.contains("重要价值客户"), "{rfm}");
    assert!(w.count("#segments-table tbody tr").await >= 3, "the demo's saved segments");
    w.shot("segments").await;
    // RFM settings: fixed thresholds without values are refused; the demo's own settings save.
    w.c.find(Locator::Css("#rfm-settings summary")).await.unwrap().click().await.unwrap();
    w.c.find(Locator::Css("#rfm-settings select[name=centre] option[value=fixed]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    w.fill("r_days", "").await;
    w.click_nav("#save-rfm-settings").await;
    assert!(w.body().await.contains("R 阈值（天）不能为空"), "thresholds are required");
    w.go("/console/segments").await;
    w.c.find(Locator::Css("#rfm-settings summary")).await.unwrap().click().await.unwrap();
    w.click_nav("#save-rfm-settings").await;
    w.wait_path("/console/segments?saved=1").await;
    w.click_nav("#new-segment").await;
    w.c.find(Locator::Css("select[name=c0_kind] option[value=tag]")).await.unwrap().click().await.unwrap();
    let gold = w.c.find(Locator::XPath("//select[@name='c0_value']/option[contains(., '金卡')]")).await.unwrap();
    gold.click().await.unwrap();
    let mut live = String::new();
    for _ in 0..100 {
        live = w.text("#live-count").await;
        if live.contains("符合条件 1 人") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(live.contains("符合条件 1 人"), "live count: {live}");
    w.c.find(Locator::Css("#save-segment")).await.unwrap().click().await.unwrap();
    assert!(w.is_same_document().await || w.count("#segment-form .field.has-error").await >= 1);
    assert!(w.count("#segment-form .field.has-error").await >= 1, "the name is required");
    w.fill("name", "金卡会员").await;
    w.click_nav("#save-segment").await;
    w.wait_path("/console/segments/").await;
    w.shot("segment-builder").await;
    w.go("/console/segments").await;
    assert!(w.text("#segments-table").await.contains("金卡会员"));

    // Transfers: a wrong kind is explained beside the field; then 王芳's WeCom customers are
    // planned for 李娜, sent through the sandbox, and wait for WeCom's 24 hours.
    w.go("/console/transfers").await;
    let pick = |xpath: &'static str| {
        let c = w.c.clone();
        async move { c.find(Locator::XPath(xpath)).await.unwrap_or_else(|e| panic!("{xpath}: {e}")).click().await.unwrap() }
    };
    pick("//select[@name='handover_staff_id']/option[contains(., 'wangfang')]").await;
    pick("//select[@name='kind']/option[@value='resigned']").await;
    w.submit("#transfer-form").await;
    assert!(w.text("#transfer-form .field.has-error").await.contains("仍在职"), "the kind error is explained");
    pick("//select[@name='handover_staff_id']/option[contains(., 'wangfang')]").await;
    pick("//select[@name='kind']/option[@value='onjob']").await;
    pick("//fieldset[@id='receivers']//label[contains(., 'lina')]/input").await;
    w.submit("#transfer-form").await;
    w.wait_path("/console/transfers/").await;
    assert!(w.count("#items-table tbody tr[data-status=planned]").await >= 1, "王芳's customers are planned");
    assert!(w.text("#items-table").await.contains("李娜"));
    w.c.execute("window.confirm = () => true;", vec![]).await.unwrap();
    w.click_nav("#execute-transfer").await;
    assert!(w.text("#sent").await.contains("24"));
    assert!(w.count("#items-table tbody tr[data-status=waiting]").await >= 1, "accepted by WeCom, waiting");
    w.shot("transfer").await;
    w.go("/console/transfers").await;
    assert_eq!(w.count("#transfers-table tbody tr").await, 1);

    // Settings, then English.
    w.go("/console/settings").await;
    w.fill("name", "鹿野咖啡").await;
    w.submit("form.form").await;
    w.wait_path("/console/settings?saved=1").await;
    w.click_nav("a.lang-switch").await;
    w.wait_path("/console/settings").await;
    let nav = w.text("nav.nav").await;
    assert!(nav.contains("Stores") && nav.contains("Acquisition"), "{nav}");
    w.shot("settings-en").await;
    w.go("/console/areas/commerce").await;
    assert!(w.body().await.contains("not built yet"));
    w.shot("area").await;
    w.click_nav("a.lang-switch").await;

    // Log out, then a guide sees only their own data.
    w.click_nav("#logout").await;
    w.wait_path("/console/login").await;
    w.fill("login", "wangfang").await;
    w.fill("password", "siyu-demo-2026").await;
    w.submit("form.login-card").await;
    w.wait_path("/console").await;
    let nav = w.text("nav.nav").await;
    assert!(!nav.contains("用户与角色") && !nav.contains("审计日志"), "{nav}");
    w.go("/console/staff").await;
    assert_eq!(w.count("#staff-table tbody tr").await, 1);
    assert!(w.text("#staff-table").await.contains("王芳"));
    w.shot("guide-staff").await;
    w.go("/console/users").await;
    assert!(w.body().await.contains("没有权限"));
    // The guide's customers are their own, with phone numbers masked.
    w.go("/console/customers").await;
    let mine = w.text("#customers-table").await;
    assert!(mine.contains("王芳") && !mine.contains("张伟"), "only the guide's own customers");
    w.go("/console/customers?q=13812345678").await;
    assert_eq!(w.count("#customers-table tbody tr").await, 0, "another guide's customer cannot be found by phone");
    w.go("/console/tags").await;
    assert_eq!(w.count("#group-form").await, 0, "guides do not define tags");
    w.shot("guide-customers").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_walk_sqlite() {
    console_walk(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_walk_postgres() {
    console_walk(Backend::Postgres).await;
}

/// A customer's whole visit to the H5 mall on a phone-sized window: an operator lists a product
/// in the console, the customer finds it, buys it with a wrong then right address, pays at the
/// WeChat Pay sandbox's cashier, sees the order paid, and asks for a refund the operator
/// approves.
async fn mall_walk(backend: Backend) {
    let (cfg, _cleanup) = fresh_config(backend).await;
    let server = common::Server::start(&url_for_child(&cfg), &["--demo"], &[]);
    let (c, _driver) = browser().await;
    c.set_window_size(390, 844).await.unwrap();
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let w = Walk { c: c.clone(), base: server.base.clone(), shots, tag: backend.as_str() };

    // The operator lists a product with two specifications.
    w.go("/console/login").await;
    w.fill("tenant", "demo").await;
    w.fill("login", "owner").await;
    w.fill("password", "siyu-demo-2026").await;
    w.submit("form.login-card").await;
    w.go("/console/products/new").await;
    w.fill("product_title", "手冲咖啡壶").await;
    w.fill("spec_names", "容量").await;
    let specs = w.c.find_all(Locator::Css("[name='sku_spec']")).await.unwrap();
    let prices = w.c.find_all(Locator::Css("[name='sku_price']")).await.unwrap();
    let stocks = w.c.find_all(Locator::Css("[name='sku_stock']")).await.unwrap();
    for (i, (spec, price)) in [("600ml", "129.00"), ("1L", "159.50")].iter().enumerate() {
        specs[i].send_keys(spec).await.unwrap();
        prices[i].send_keys(price).await.unwrap();
        stocks[i].send_keys("5").await.unwrap();
    }
    w.c.find(Locator::Css("#f-status")).await.unwrap().select_by_value("listed").await.unwrap();
    w.submit("#product-form").await;
    assert!(w.path().await.starts_with("/console/products/"), "saved: {}", w.path().await);
    w.shot("console-product").await;
    // … and a coupon anyone may claim.
    w.go("/console/coupons").await;
    w.fill("name", "无门槛10元").await;
    w.fill("face", "10").await;
    w.fill("total", "100").await;
    w.submit("#coupon-form").await;
    assert!(w.text("#coupons-table").await.contains("无门槛减 ¥10.00"));

    // The customer browses the mall. The demo lists its own products in the background, maybe
    // after this one, so the customer searches for it.
    w.go("/m/demo?q=%E6%89%8B%E5%86%B2%E5%92%96%E5%95%A1%E5%A3%B6").await;
    assert!(w.text("#products").await.contains("手冲咖啡壶"));
    w.shot("mall-home").await;
    w.click_nav("#products a.m-card").await;
    assert!(w.text("#price").await.contains("¥129.00"));
    w.shot("mall-product").await;
    w.c.find(Locator::Css("label.m-spec:nth-of-type(2)")).await.unwrap().click().await.unwrap();
    w.click_nav("#buy-now").await;
    // Checkout asks the customer to sign in first (the demo offers a demo customer).
    w.wait_path("/m/demo/login").await;
    w.click_nav("#demo-login").await;
    w.wait_path("/m/demo/checkout").await;
    assert!(w.text("#payable").await.contains("¥159.50"), "shipping is free above ¥99");
    // Claim the coupon, come back, and use it.
    let checkout = w.path().await;
    w.go("/m/demo/coupons").await;
    w.click_nav(".m-coupon button").await;
    assert!(w.text("#mall-msg").await.contains("领取成功"));
    w.shot("mall-coupons").await;
    w.go(&checkout).await;
    w.c.find(Locator::Css("#coupon-choice select")).await.unwrap().select_by_index(1).await.unwrap();
    w.submit("#coupon-choice").await;
    assert!(w.text("#payable").await.contains("¥149.50"), "the coupon takes ¥10 off");
    assert!(w.text("#quote").await.contains("优惠券"));
    w.fill("name", "张三").await;
    w.fill("phone", "12345").await;
    w.fill("region", "上海市 浦东新区").await;
    w.fill("detail", "世纪大道 1 号").await;
    w.submit("#checkout-form").await;
    assert!(w.text("#mall-error").await.contains("手机号"), "the wrong phone is named");
    w.fill("phone", "13800138000").await;
    w.submit("#checkout-form").await;
    assert!(w.text("#order-status").await.contains("待支付"));
    w.shot("mall-order-unpaid").await;
    // Paying goes through the sandbox's cashier and comes back paid.
    w.click_nav("#pay").await;
    assert!(w.body().await.contains("149.50"), "the cashier shows the amount");
    w.shot("mall-cashier").await;
    w.click_nav("button[type=submit]").await;
    w.wait_path("/m/demo/orders/").await;
    assert!(w.text("#order-status").await.contains("待发货"), "paid");
    assert!(w.text("#mall-msg").await.contains("支付完成"));
    w.shot("mall-order-paid").await;
    // A refund request waits for the operator.
    w.c.find(Locator::Css("#refund-box summary")).await.unwrap().click().await.unwrap();
    w.fill("reason", "买错了").await;
    w.submit("#refund-form").await;
    assert!(w.text("#mall-msg").await.contains("退款申请已提交"));
    w.go("/console/refunds").await;
    assert!(w.body().await.contains("顾客申请"));
    w.click_nav("#refunds-table form[action$='/approve'] button").await;
    assert!(
        w.body().await.contains("已保存") || w.body().await.contains("退款中") || w.body().await.contains("已退款")
    );
    w.shot("console-refunds").await;

    // The operator puts the kettle on presale: a ¥20 deposit worth ¥50, "定金不退".
    w.go("/console/presales").await;
    w.fill("name", "咖啡壶预售").await;
    w.c.find(Locator::Css("#f-product_id")).await.unwrap().select_by_label("手冲咖啡壶").await.unwrap();
    let local = |hours: i64| {
        let now = siyu_core::time::SystemClock.now();
        siyu_core::Timestamp(now.0 + hours * 3_600_000_000).to_rfc3339(8)[..16].to_string()
    };
    // A datetime-local input takes its value from script (typing into it depends on the locale).
    for (name, hours) in [("deposit_start", -1), ("deposit_end", 24), ("final_start", 48), ("final_end", 72)] {
        let js = format!("document.querySelector(\"[name='{name}']\").value = '{}';", local(hours));
        w.c.execute(&js, vec![]).await.unwrap();
    }
    w.fill("deposit", "20").await;
    w.fill("deposit_value", "50").await;
    w.fill("quota", "3").await;
    w.c.find(Locator::Css("[name='deposit_forfeit']")).await.unwrap().click().await.unwrap();
    w.submit("#presale-form").await;
    assert!(w.text("#presales-table").await.contains("定金 ¥20.00 抵 ¥50.00"), "{}", w.body().await);
    w.shot("console-presales").await;
    // The customer pays the deposit, told up front that it is not refundable.
    w.go("/m/demo?q=%E6%89%8B%E5%86%B2%E5%92%96%E5%95%A1%E5%A3%B6").await;
    w.click_nav("#products a.m-card").await;
    assert!(w.text("#presale").await.contains("定金不退"));
    w.shot("mall-presale").await;
    w.click_nav("#pay-deposit").await;
    w.wait_path("/m/demo/checkout").await;
    assert!(w.text("#presale-terms").await.contains("¥20.00"), "the deposit is due now");
    w.fill("name", "张三").await;
    w.fill("phone", "13800138000").await;
    w.fill("region", "上海市 浦东新区").await;
    w.fill("detail", "世纪大道 1 号").await;
    w.submit("#checkout-form").await;
    assert!(w.text("#presale-order").await.contains("尾款"));
    w.click_nav("#pay").await;
    assert!(w.body().await.contains("20.00"), "the cashier charges the deposit alone");
    w.click_nav("button[type=submit]").await;
    w.wait_path("/m/demo/orders/").await;
    assert!(w.text("#order-status").await.contains("待付尾款"), "{}", w.body().await);
    w.shot("mall-presale-deposit-paid").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mall_walk_sqlite() {
    mall_walk(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mall_walk_postgres() {
    mall_walk(Backend::Postgres).await;
}

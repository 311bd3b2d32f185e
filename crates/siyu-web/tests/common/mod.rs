//! A real siyu server on a loopback port over a fresh store, plus seeded tenants.

#![allow(dead_code)]

use std::net::SocketAddr;

use reqwest::{Client, Method, Response};
use serde_json::{json, Value};

use siyu_core::auth::{Actor, Role, Scope};
use siyu_core::org::{StaffInput, StoreInput};
use siyu_core::{StaffId, TenantId};
use siyu_store::commerce::flash_gate::FlashGate;
use siyu_store::org::NewUser;
use siyu_store::secrets::hash_password;
use siyu_store::testing::TestStore;
use siyu_store::Backend;

pub const PASSWORD: &str = "test-pass-2026";

pub struct App {
    pub addr: SocketAddr,
    pub store: TestStore,
    /// Flash sales' Redis gate, when the server was started with one.
    pub gate: Option<FlashGate>,
}

impl App {
    pub async fn start(backend: Backend) -> App {
        Self::start_with_clock(backend, std::sync::Arc::new(siyu_core::time::SystemClock)).await
    }

    /// A server whose store (and so every timestamp, token and WeCom client) reads `clock`.
    pub async fn start_with_clock(backend: Backend, clock: std::sync::Arc<dyn siyu_core::Clock>) -> App {
        Self::start_with_redis(backend, clock, None).await
    }

    /// The same, with flash sales admitted through the Redis at `redis`: keys under a
    /// namespace of this server's own, and requests left in flight taken over after 5 s.
    pub async fn start_with_redis(
        backend: Backend,
        clock: std::sync::Arc<dyn siyu_core::Clock>,
        redis: Option<&str>,
    ) -> App {
        let store = TestStore::with_clock(backend, clock).await;
        let mut state = siyu_web::AppState::new(store.store.clone(), Default::default());
        let mut gate = None;
        if let Some(url) = redis {
            let ns = format!("t{}", uuid::Uuid::now_v7().simple());
            let g = FlashGate::connect(url, store.store.clone(), &ns).await.expect("connect to the test Redis");
            let g = g.with_stale_after(std::time::Duration::from_secs(5));
            state = state.with_flash_gate(g.clone());
            gate = Some(g);
        }
        let app = siyu_web::app(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        App { addr, store, gate }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A tenant with an owner, a guide linked to a staff member, a second staff member and
    /// a store.
    pub async fn seed(&self, slug: &str) -> Seed {
        let s = &self.store;
        let t = s.create_tenant(slug, &format!("品牌 {slug}"), "Asia/Shanghai").await.unwrap();
        let sys = Actor::system(t.id);
        let store = s
            .create_store(&sys, &StoreInput::validate("main", "总店", Some("上海"), None, None, None).unwrap())
            .await
            .unwrap();
        let me = s
            .create_staff(
                &sys,
                &StaffInput::validate("导购甲", Some(&format!("{slug}-g1")), None, Some(store.id), None, None).unwrap(),
            )
            .await
            .unwrap();
        let other = s
            .create_staff(
                &sys,
                &StaffInput::validate("导购乙", Some(&format!("{slug}-g2")), None, Some(store.id), None, None).unwrap(),
            )
            .await
            .unwrap();
        let hash = hash_password(PASSWORD);
        for (login, role, staff) in [("owner", Role::Owner, None), ("guide", Role::Guide, Some(me.id))] {
            s.create_user(
                &sys,
                NewUser {
                    login: login.into(),
                    display_name: login.into(),
                    role,
                    staff_id: staff,
                    password_hash: hash.clone(),
                },
            )
            .await
            .unwrap();
        }
        let scopes: Vec<Scope> = Scope::ALL.into_iter().filter(|x| x.grantable_to_token()).collect();
        let (_, token) = s.create_token(&sys, "all", &scopes, None).await.unwrap();
        Seed { tenant: t.id, slug: slug.into(), token, store_id: store.id.0, guide_staff: me.id, other_staff: other.id }
    }

    /// Logs in over the API; returns a cookie-carrying client and the CSRF token.
    pub async fn session(&self, slug: &str, login: &str) -> Session {
        let client = Client::builder().cookie_store(true).build().unwrap();
        let r = client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"tenant": slug, "login": login, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login {slug}/{login}");
        let body: Value = r.json().await.unwrap();
        Session { client, csrf: body["csrf_token"].as_str().unwrap().to_string() }
    }
}

pub struct Seed {
    pub tenant: TenantId,
    pub slug: String,
    pub token: String,
    pub store_id: uuid::Uuid,
    pub guide_staff: StaffId,
    pub other_staff: StaffId,
}

pub struct Session {
    pub client: Client,
    pub csrf: String,
}

impl Session {
    pub async fn send(&self, app: &App, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut r = self.client.request(method, app.url(path)).header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.unwrap()
    }
}

pub async fn bearer(app: &App, token: &str, method: Method, path: &str, body: Option<&Value>) -> Response {
    let mut r = Client::new().request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(b);
    }
    r.send().await.unwrap()
}

/// Asserts a problem+json response and returns its body.
pub async fn problem(r: Response, status: u16) -> Value {
    assert_eq!(r.status(), status, "status");
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(ct, "application/problem+json", "content type");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], status);
    assert!(v["code"].is_string(), "stable code present: {v}");
    v
}

/// Declares one test per backend: `both!(name, |app| async move { … })`.
#[macro_export]
macro_rules! both {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::common::App::start(siyu_store::Backend::Sqlite).await;
                $body.await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $crate::common::App::start(siyu_store::Backend::Postgres).await;
                $body.await
            }
        }
    };
}

/// A Redis server of the test's own on a free loopback port, which the test may kill and
/// start again; it keeps nothing on disk, so a restart loses everything, as a failover may.
pub struct RedisServer {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = RedisServer { port, child: None };
        r.launch().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the Redis tests need redis-server (Debian's redis-server package); scripts/test installs it");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server outright (no shutdown, no save).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

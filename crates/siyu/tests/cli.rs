//! The command line, as an operator uses it.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use siyu_store::testing::{fresh_config, url_for_child};
use siyu_store::{Backend, Store};

fn siyu(url: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_siyu"));
    c.args(args)
        .env("SIYU_DATABASE_URL", url)
        .env_remove("SIYU_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("siyu-cli-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn help_documents_every_command() {
    let (ok, out, _) = siyu("sqlite://unused.db", &["--help"], None);
    assert!(ok);
    for cmd in ["serve", "migrate", "tenant", "user", "customers", "openapi", "bench"] {
        assert!(out.contains(cmd), "--help lists {cmd}:\n{out}");
    }
    let (ok, out, _) = siyu("sqlite://unused.db", &["serve", "--help"], None);
    assert!(ok && out.contains("--listen") && out.contains("--demo"), "{out}");
    let (ok, out, _) = siyu("sqlite://unused.db", &["user", "--help"], None);
    assert!(ok && out.contains("create") && out.contains("reset-password"), "{out}");
}

async fn operator_story(backend: Backend) {
    let (cfg, _cleanup) = fresh_config(backend).await;
    let url = url_for_child(&cfg);
    let (ok, out, err) = siyu(&url, &["migrate"], None);
    assert!(ok, "{err}");
    let known = Store::connect(&cfg).await.unwrap().known_migrations();
    assert!(out.contains(&format!("{} migration(s) applied", known.len())), "{out}");
    let (ok, _, err) = siyu(&url, &["tenant", "create", "--slug", "acme", "--name", "Acme 品牌"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = siyu(&url, &["tenant", "create", "--slug", "Bad Slug", "--name", "x"], None);
    assert!(!ok && err.contains("slug"), "{err}");
    let (ok, out, err) =
        siyu(&url, &["user", "create", "--tenant", "acme", "--login", "boss", "--role", "owner"], None);
    assert!(ok, "{err}");
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("generated password (shown only now): "))
        .expect("a generated password")
        .to_string();
    let (ok, _, err) =
        siyu(&url, &["user", "create", "--tenant", "acme", "--login", "weak", "--password", "short"], None);
    assert!(!ok && err.contains("password"), "{err}");
    let (ok, _, err) = siyu(&url, &["user", "create", "--tenant", "nope", "--login", "x"], None);
    assert!(!ok && err.contains("no tenant"), "{err}");

    // Customer import: a bad file is refused with its problems and exit code 2, a good one lands.
    let dir = tempfile_dir();
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "姓名,手机号\n李雷,13812345678\n韩梅梅,12345\n").unwrap();
    let (ok, out, err) = siyu(&url, &["customers", "import", "--tenant", "acme", bad.to_str().unwrap()], None);
    assert!(!ok && out.contains("row 3") && out.contains("invalid_format"), "{out} {err}");
    let good = dir.join("good.csv");
    std::fs::write(&good, "姓名,手机号,外部编号\n李雷,13812345678,A1\n韩梅梅,13912345678,A2\n").unwrap();
    let (ok, out, err) = siyu(&url, &["customers", "import", "--tenant", "acme", good.to_str().unwrap()], None);
    assert!(ok && out.contains("2 created"), "{out} {err}");
    let (ok, out, err) = siyu(&url, &["customers", "import", "--tenant", "acme", good.to_str().unwrap()], None);
    assert!(ok && out.contains("0 created, 2 already known"), "a second import duplicates nothing: {out} {err}");

    let store = Store::connect(&cfg).await.unwrap();
    let t = store.tenant_by_slug("acme").await.unwrap().unwrap();
    assert_eq!(store.count_customers(t.id).await.unwrap(), 2);
    let (_, hash) = store.user_for_login(t.id, "boss").await.unwrap().unwrap();
    assert!(siyu_store::secrets::verify_password(&generated, &hash));

    let (ok, _, err) = siyu(
        &url,
        &["user", "reset-password", "--tenant", "acme", "--login", "boss", "--password-stdin"],
        Some("Brand-new-pass-1\n"),
    );
    assert!(ok, "{err}");
    let (_, hash) = store.user_for_login(t.id, "boss").await.unwrap().unwrap();
    assert!(siyu_store::secrets::verify_password("Brand-new-pass-1", &hash));
    assert!(!siyu_store::secrets::verify_password(&generated, &hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_story_sqlite() {
    operator_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_story_postgres() {
    operator_story(Backend::Postgres).await;
}

async fn demo_is_idempotent_and_logs_in(backend: Backend) {
    let (cfg, _cleanup) = fresh_config(backend).await;
    let url = url_for_child(&cfg);
    for _ in 0..2 {
        let s = common::Server::start(&url, &["--demo"], &[]);
        let c = reqwest::Client::new();
        let r = c
            .post(format!("{}/api/v1/auth/login", s.base))
            .json(&serde_json::json!({"tenant": "demo", "login": "owner", "password": "siyu-demo-2026"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page = c.get(format!("{}/console/login", s.base)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("siyu-demo-2026"), "the login page shows the demo login");
    }
    let store = Store::connect(&cfg).await.unwrap();
    let t = store.tenant_by_slug("demo").await.unwrap().unwrap();
    let c = store.org_counts(t.id).await.unwrap();
    assert_eq!((c.stores, c.users), (4, 5), "a second start created nothing new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_is_idempotent_and_logs_in_sqlite() {
    demo_is_idempotent_and_logs_in(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_is_idempotent_and_logs_in_postgres() {
    demo_is_idempotent_and_logs_in(Backend::Postgres).await;
}

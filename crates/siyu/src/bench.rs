//! The benchmark harness. Every figure is printed beside a baseline measured in the same run
//! on the same machine, and the ratio between them is the number to compare across runs:
//! absolute timings on a shared 2-core machine are noise, ratios are signal.
//!
//! Scenarios:
//! - `http-get`: authenticated `GET /api/v1/stores?limit=20` over loopback HTTP against a
//!   tenant of `--tenant-stores` stores, beside `GET /healthz` (a static 200 from the same
//!   server, same client, same concurrency).
//! - `bulk-insert`: `--rows` staff rows through siyu's bulk path (COPY on PostgreSQL,
//!   multi-row INSERT on SQLite), beside the database generating the same rows by itself.
//! - `wecom-callbacks`: `--callbacks` distinct signed, encrypted WeCom callbacks POSTed to
//!   siyu's callback endpoint (verified, decrypted, stored in the inbox with their jobs),
//!   beside bare AES-CBC decryption of the same payloads.
//! - `segment-count`: a tenant of `--segment-sizes` customers (lifecycle, purchase metrics,
//!   RFM, 3 of 200 tags each) generated in the database; the count of a five-predicate
//!   segment from siyu's bitmap index (including its catch-up probe), beside the same count
//!   in SQL on the same backend and in DuckDB (in memory, on the same data exported as CSV;
//!   `scripts/bench` installs DuckDB from PyPI). Also the index build time and the process's
//!   resident memory beside DuckDB's for the same data.
//! - `order-create`: `--orders` mall orders submitted over HTTP by `--order-clients` buyers at
//!   once, all for one hot SKU (priced by the pipeline, reserved in the order's transaction),
//!   beside the same number of bare conditional stock UPDATEs (`reserved + 1 WHERE on_hand −
//!   reserved >= 1`) from as many concurrent tasks on the same backend. Both end by checking
//!   that the SKU holds exactly as many units as orders were made.
//! - `bargain-help`: `--flash-attempts / --order-clients` bargains of 10 helpers each, and every
//!   one of `--order-clients` helpers helping every bargain at once over HTTP (each bargain's
//!   row contended by all of them in turn); it must end with every bargain exactly at its floor.
//!   Beside it, as many bare conditional UPDATEs on one row from as many tasks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use siyu_core::auth::{Actor, Scope};
use siyu_core::org::StoreInput;
use siyu_store::bulk::StaffSeed;
use siyu_store::testing::{fresh_config_at, test_pg_url};
use siyu_store::{Backend, Store};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Scenarios to run, comma-separated: http-get, bulk-insert, wecom-callbacks, segment-count,
    /// transfer-plan, group-transfer, customer-import, rule-tags, order-create [default: http-get, bulk-insert].
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Backends, comma-separated: sqlite, postgres [default: both].
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// PostgreSQL server for the postgres backend; each measurement gets a fresh schema that
    /// is dropped afterwards. Env: SIYU_BENCH_DATABASE_URL [default: SIYU_TEST_DATABASE_URL or
    /// the local server].
    #[arg(long, env = "SIYU_BENCH_DATABASE_URL")]
    pg_url: Option<String>,
    /// Stores in the tenant the HTTP scenario reads from.
    #[arg(long, default_value_t = 1000)]
    tenant_stores: usize,
    /// Requests per HTTP measurement (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Callbacks for the wecom-callbacks scenario.
    #[arg(long, default_value_t = 5000)]
    callbacks: usize,
    /// Rows for the bulk-insert scenario.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Customers in the segment-count tenants, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000_000usize, 10_000_000])]
    segment_sizes: Vec<usize>,
    /// Customers of the departing member in the transfer-plan scenario.
    #[arg(long, default_value_t = 20_000)]
    transfer_customers: usize,
    /// Customers of the rule-tags scenario's tenant.
    #[arg(long, default_value_t = 1_000_000)]
    rule_customers: usize,
    /// Groups of the departing member in the group-transfer scenario.
    #[arg(long, default_value_t = 3_000)]
    transfer_groups: usize,
    /// Rows of the customer-import scenario's file.
    #[arg(long, default_value_t = 20_000)]
    import_rows: usize,
    /// Orders of the order-create scenario.
    #[arg(long, default_value_t = 5_000)]
    orders: usize,
    /// Concurrent buyers of the order-create scenario.
    #[arg(long, default_value_t = 200)]
    order_clients: usize,
    /// Purchase attempts of the flash-sale scenario (its quota is a twentieth of them).
    #[arg(long, default_value_t = 20_000)]
    flash_attempts: usize,
    /// Redis for the flash-sale scenario's Redis runs and its DECR baseline; unreachable, they
    /// are skipped. Env: SIYU_BENCH_REDIS_URL.
    #[arg(long, env = "SIYU_BENCH_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Python with the `duckdb` package (scripts/bench sets it) [default: python3].
    #[arg(long, env = "SIYU_BENCH_PYTHON", default_value = "python3")]
    python: String,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results/latest.json")]
    json: PathBuf,
}

#[derive(Serialize, Clone)]
struct Figure {
    value: f64,
    unit: &'static str,
}

#[derive(Serialize)]
struct Row {
    scenario: String,
    backend: String,
    metric: String,
    siyu: Figure,
    baseline_name: String,
    baseline: Figure,
    /// siyu ÷ baseline. For throughput higher is better; for latency lower is better.
    ratio: f64,
}

#[derive(Serialize)]
struct Report {
    started_at: String,
    machine: Machine,
    rows: Vec<Row>,
}

#[derive(Serialize)]
struct Machine {
    cpus: usize,
    os: String,
}

pub async fn run(a: BenchArgs) -> Result<()> {
    let scenarios =
        if a.scenarios.is_empty() { vec!["http-get".into(), "bulk-insert".into()] } else { a.scenarios.clone() };
    let backends = if a.backends.is_empty() { vec!["sqlite".into(), "postgres".into()] } else { a.backends.clone() };
    let pg_url = a.pg_url.clone().unwrap_or_else(test_pg_url);
    let mut rows = Vec::new();
    for b in &backends {
        let backend = match b.as_str() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => bail!("unknown backend {other}: use sqlite or postgres"),
        };
        for s in &scenarios {
            eprintln!("== {s} on {b}");
            match s.as_str() {
                "http-get" => {
                    rows.extend(http_get(&a, backend, &pg_url).await.with_context(|| format!("http-get on {b}"))?)
                }
                "bulk-insert" => {
                    rows.extend(bulk_insert(&a, backend, &pg_url).await.with_context(|| format!("bulk-insert on {b}"))?)
                }
                "wecom-callbacks" => rows.extend(
                    wecom_callbacks(&a, backend, &pg_url).await.with_context(|| format!("wecom-callbacks on {b}"))?,
                ),
                "segment-count" => rows.extend(
                    segment_count(&a, backend, &pg_url).await.with_context(|| format!("segment-count on {b}"))?,
                ),
                "rule-tags" => {
                    rows.extend(rule_tags(&a, backend, &pg_url).await.with_context(|| format!("rule-tags on {b}"))?)
                }
                "customer-import" => rows.extend(
                    customer_import(&a, backend, &pg_url).await.with_context(|| format!("customer-import on {b}"))?,
                ),
                "transfer-plan" => rows.extend(
                    transfer_plan(&a, backend, &pg_url).await.with_context(|| format!("transfer-plan on {b}"))?,
                ),
                "group-transfer" => rows.extend(
                    group_transfer(&a, backend, &pg_url).await.with_context(|| format!("group-transfer on {b}"))?,
                ),
                "order-create" => rows.extend(
                    order_create(&a, backend, &pg_url).await.with_context(|| format!("order-create on {b}"))?,
                ),
                "flash-sale" => rows.extend(
                    flash_sale(&a, backend, &pg_url).await.with_context(|| format!("flash-sale on {b}"))?,
                ),
                "bargain-help" => rows.extend(
                    bargain_help(&a, backend, &pg_url).await.with_context(|| format!("bargain-help on {b}"))?,
                ),
                "scan-landing" => rows.extend(
                    scan_landing(&a, backend, &pg_url).await.with_context(|| format!("scan-landing on {b}"))?,
                ),
                "bill-reconcile" => rows.extend(
                    bill_reconcile(&a, backend, &pg_url).await.with_context(|| format!("bill-reconcile on {b}"))?,
                ),
                other => bail!(
                    "unknown scenario {other}: use http-get, bulk-insert, wecom-callbacks, segment-count, transfer-plan, group-transfer, customer-import, rule-tags, order-create, flash-sale, bargain-help, scan-landing or bill-reconcile"
                ),
            }
        }
    }
    print_table(&rows);
    let report = Report {
        started_at: siyu_core::time::SystemClock.now_rfc3339(),
        machine: Machine {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            os: std::env::consts::OS.into(),
        },
        rows,
    };
    if let Some(dir) = a.json.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&a.json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", a.json.display()))?;
    println!("\nJSON written to {}", a.json.display());
    Ok(())
}

trait NowRfc3339 {
    fn now_rfc3339(&self) -> String;
}

impl NowRfc3339 for siyu_core::time::SystemClock {
    fn now_rfc3339(&self) -> String {
        use siyu_core::Clock;
        self.now().to_rfc3339(0)
    }
}

fn print_table(rows: &[Row]) {
    // Columns fit the longest entry, so every scenario's rows line up.
    let w = |f: &dyn Fn(&Row) -> usize, min: usize| rows.iter().map(f).max().unwrap_or(0).max(min);
    let (ws, wm, wb) = (
        w(&|r| r.scenario.chars().count(), 8),
        w(&|r| r.metric.chars().count(), 6),
        w(&|r| r.baseline_name.chars().count(), 8),
    );
    println!(
        "\n{:<ws$} {:<9} {:<wm$} {:>14} {:<wb$} {:>14} {:>8}",
        "scenario", "backend", "metric", "siyu", "baseline", "value", "ratio"
    );
    println!("{}", "-".repeat(ws + wm + wb + 51));
    for r in rows {
        println!(
            "{:<ws$} {:<9} {:<wm$} {:>10.1} {:<3} {:<wb$} {:>10.1} {:<3} {:>8.3}",
            r.scenario,
            r.backend,
            r.metric,
            r.siyu.value,
            r.siyu.unit,
            r.baseline_name,
            r.baseline.value,
            r.baseline.unit,
            r.ratio
        );
    }
}

struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Sends `n` GETs from `c` concurrent keep-alive clients and measures throughput and latency.
async fn load(client: &reqwest::Client, url: &str, token: Option<&str>, n: usize, c: usize) -> Result<Load> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (client, url, next) = (client.clone(), url.to_string(), next.clone());
        let token = token.map(str::to_string);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t = Instant::now();
                let mut req = client.get(&url);
                if let Some(tok) = &token {
                    req = req.bearer_auth(tok);
                }
                let res = req.send().await?;
                let status = res.status();
                let _ = res.bytes().await?;
                // A redirect is an answer too (the nginx baseline of scan-landing is a 302).
                if !status.is_success() && !status.is_redirection() {
                    anyhow::bail!("{url} answered {status}");
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    Ok(Load { rps: all.len() as f64 / secs, p50_ms: pct(0.50), p99_ms: pct(0.99) })
}

async fn http_get(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let tenant = store.create_tenant("bench", "Bench", "Asia/Shanghai").await?;
    let actor = Actor::system(tenant.id);
    for i in 0..a.tenant_stores {
        let input = StoreInput::validate(&format!("s-{i:06}"), &format!("门店 {i}"), Some("上海"), None, None, None)
            .map_err(|v| anyhow::anyhow!("{v:?}"))?;
        store.create_store(&actor, &input).await?;
    }
    let (_, token) = store.create_token(&actor, "bench", &[Scope::StoresRead], None).await?;
    let (base, server) = serve_in_process(siyu_web::AppState::new(store.clone(), Default::default())).await?;
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).timeout(Duration::from_secs(30)).build()?;
    let api = format!("{base}/api/v1/stores?limit=20");
    let stat = format!("{base}/healthz");
    let warm = (a.requests / 10).max(100);
    load(&client, &api, Some(&token), warm, a.concurrency).await?;
    load(&client, &stat, None, warm, a.concurrency).await?;
    // Interleave the two measurements so drift in machine load hits both alike.
    let half = a.requests / 2;
    let s1 = load(&client, &stat, None, half, a.concurrency).await?;
    let g1 = load(&client, &api, Some(&token), half, a.concurrency).await?;
    let g2 = load(&client, &api, Some(&token), half, a.concurrency).await?;
    let s2 = load(&client, &stat, None, half, a.concurrency).await?;
    server.abort();
    store.close().await;
    let avg = |x: &Load, y: &Load, f: fn(&Load) -> f64| (f(x) + f(y)) / 2.0;
    let b = backend.as_str().to_string();
    let mk = |metric: &str, unit: &'static str, siyu: f64, base: f64| Row {
        scenario: "http-get".into(),
        backend: b.clone(),
        metric: metric.into(),
        siyu: Figure { value: siyu, unit },
        baseline_name: "static 200 (/healthz)".into(),
        baseline: Figure { value: base, unit },
        ratio: if base > 0.0 { siyu / base } else { f64::NAN },
    };
    Ok(vec![
        mk("throughput", "r/s", avg(&g1, &g2, |l| l.rps), avg(&s1, &s2, |l| l.rps)),
        mk("p50 latency", "ms", avg(&g1, &g2, |l| l.p50_ms), avg(&s1, &s2, |l| l.p50_ms)),
        mk("p99 latency", "ms", avg(&g1, &g2, |l| l.p99_ms), avg(&s1, &s2, |l| l.p99_ms)),
    ])
}

async fn bulk_insert(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    let seeds: Vec<StaffSeed> =
        (0..a.rows).map(|i| StaffSeed { name: format!("员工 {i}"), wecom_userid: format!("u{i:08}") }).collect();
    // Each measurement gets a fresh database so neither pays for the other's index growth.
    let siyu_secs = {
        let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
        let store = Store::connect(&cfg).await?;
        store.migrate().await?;
        let t = store.create_tenant("bulk", "Bulk", "Asia/Shanghai").await?;
        let started = Instant::now();
        let mut n = 0;
        for chunk in seeds.chunks(100_000) {
            n += store.bulk_insert_staff(t.id, chunk).await?;
        }
        let secs = started.elapsed().as_secs_f64();
        if n as usize != a.rows {
            bail!("bulk path inserted {n} rows, expected {}", a.rows);
        }
        store.close().await;
        secs
    };
    let base_secs = {
        let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
        let store = Store::connect(&cfg).await?;
        store.migrate().await?;
        let t = store.create_tenant("bulk", "Bulk", "Asia/Shanghai").await?;
        let started = Instant::now();
        let n = store.generate_staff_in_db(t.id, a.rows as i64, "g").await?;
        let secs = started.elapsed().as_secs_f64();
        if n as usize != a.rows {
            bail!("baseline inserted {n} rows, expected {}", a.rows);
        }
        store.close().await;
        secs
    };
    let (siyu, base) = (a.rows as f64 / siyu_secs, a.rows as f64 / base_secs);
    Ok(vec![Row {
        scenario: "bulk-insert".into(),
        backend: backend.as_str().into(),
        metric: format!("{} rows", a.rows),
        siyu: Figure { value: siyu, unit: "r/s" },
        baseline_name: "in-database generation".into(),
        baseline: Figure { value: base, unit: "r/s" },
        ratio: siyu / base,
    }])
}

async fn wecom_callbacks(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    use siyu_wecom::{Format, MsgCrypt};
    let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let tenant = store.create_tenant("cb", "Callbacks", "Asia/Shanghai").await?;
    let actor = Actor::system(tenant.id);
    let corp = "wwBENCH000000001";
    let (token, key) = siyu_web::wecom::api::new_callback_keys();
    let input = siyu_core::wecom::AppInput::validate("bench", corp, "1", "http://127.0.0.1:1")
        .map_err(|v| anyhow::anyhow!("{v:?}"))?;
    let app = store.create_wecom_app(&actor, &input, "bench-secret-value", &token, &key).await?;
    let crypt = MsgCrypt::new(&token, &key, corp)?;
    let now = {
        use siyu_core::Clock;
        siyu_core::time::SystemClock.now().unix_secs()
    };
    // Distinct events (a distinct customer each), as a busy corp would send them.
    let bodies: Vec<(String, String, String)> = (0..a.callbacks)
        .map(|i| {
            let xml = format!(
                "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[wangfang]]></UserID><ExternalUserID><![CDATA[wmBENCH{i:08}]]></ExternalUserID><State><![CDATA[c:bench]]></State><WelcomeCode><![CDATA[W{i}]]></WelcomeCode></xml>"
            );
            let nonce = format!("n{i}");
            let body = crypt.seal(&xml, &now.to_string(), &nonce, b"0123456789abcdef", Format::Xml);
            let enc = siyu_wecom::crypto::parse_envelope(&body).expect("sealed body parses").encrypt;
            let sig = crypt.sign(&now.to_string(), &nonce, &enc);
            (body, nonce, sig)
        })
        .collect();
    // Baseline: decrypting the same Encrypt values, nothing else.
    let encs: Vec<String> =
        bodies.iter().map(|(b, _, _)| siyu_wecom::crypto::parse_envelope(b).expect("parses").encrypt).collect();
    let started = Instant::now();
    for e in &encs {
        std::hint::black_box(crypt.decrypt(e)?);
    }
    let bare = encs.len() as f64 / started.elapsed().as_secs_f64();

    let (base, server) = serve_in_process(siyu_web::AppState::new(store.clone(), Default::default())).await?;
    let url = format!("{base}/wecom/callback/{}/{}", tenant.id, app.id);
    let client = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build()?;
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (client, url, bodies, next) = (client.clone(), url.clone(), bodies.clone(), next.clone());
        let ts = now.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, nonce, sig)) = bodies.get(i) else { return Ok::<_, anyhow::Error>(()) };
                let r = client
                    .post(&url)
                    .query(&[("msg_signature", sig.as_str()), ("timestamp", ts.as_str()), ("nonce", nonce.as_str())])
                    .body(body.clone())
                    .send()
                    .await?;
                if r.status() != 200 {
                    bail!("callback answered {}", r.status());
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    server.abort();
    let stored = store
        .list_inbox(tenant.id, &Default::default(), &siyu_core::paging::PageRequest { limit: 1, before: None })
        .await?;
    if stored.items.is_empty() {
        bail!("no callback was stored");
    }
    store.close().await;
    let siyu = a.callbacks as f64 / secs;
    Ok(vec![Row {
        scenario: "wecom-callbacks".into(),
        backend: backend.as_str().into(),
        metric: format!("{} callbacks", a.callbacks),
        siyu: Figure { value: siyu, unit: "c/s" },
        baseline_name: "bare AES-CBC decrypt".into(),
        baseline: Figure { value: bare, unit: "c/s" },
        ratio: siyu / bare,
    }])
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[derive(serde::Deserialize)]
struct DuckOut {
    count: u64,
    median_ms: f64,
    p95_ms: f64,
    load_s: f64,
    rss_mib: f64,
    duckdb: String,
}

async fn segment_count(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    use siyu_core::auth::DataScope;
    use siyu_core::customers::bitmap::SegmentIndex;
    use siyu_core::customers::rfm::Segment;
    use siyu_core::customers::segment::{Expr, Metric};
    use siyu_store::customers::index::SegmentIndexes;

    const TAGS: i64 = 200;
    const SPEND_MIN: i64 = 100_000;
    const TODAY: i64 = 16_000;
    let mut out = Vec::new();
    for &n in &a.segment_sizes {
        let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
        let store = Store::connect(&cfg).await?;
        store.migrate().await?;
        let t = store.create_tenant("seg", "Segments", "Asia/Shanghai").await?;
        let sys = Actor::system(t.id);
        let group = store.create_tag_group(&sys, "bench").await?;
        let mut tag_ids = Vec::new();
        for i in 0..TAGS {
            tag_ids.push(store.create_tag(&sys, group.id, &format!("t{i}")).await?.id);
        }
        let started = Instant::now();
        store.generate_segment_tenant(t.id, group.id, n as i64, TAGS).await?;
        eprintln!("   generated {n} customers in {:.1} s", started.elapsed().as_secs_f64());

        let rss_before = rss_mib();
        let indexes = SegmentIndexes::new(store.clone());
        let started = Instant::now();
        indexes.sync(t.id).await?;
        let build_s = started.elapsed().as_secs_f64();
        let rss_after = rss_mib();
        let info = indexes.info(t.id).await?;
        eprintln!(
            "   index: {} customers, {:.0} MiB of bitmaps, built in {build_s:.1} s; RSS {rss_before:.0} → {rss_after:.0} MiB",
            info.customers,
            info.bytes as f64 / 1_048_576.0
        );

        let (tag_a, tag_b) = (7usize, 11usize);
        let expr = Expr::And(vec![
            Expr::Tag(tag_ids[tag_a]),
            Expr::Lifecycle("deal".into()),
            Expr::RfmSegment(Segment::ImportantValue),
            Expr::Range { metric: Metric::SpendFen, min: Some(SPEND_MIN), max: None },
            Expr::Not(Box::new(Expr::Tag(tag_ids[tag_b]))),
        ]);
        // siyu: the served path (catch-up probe + bitmap count).
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..31 {
            let t0 = Instant::now();
            count = indexes.count(t.id, DataScope::Tenant, &expr, TODAY).await?;
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let (med, p95) = (percentile(&times, 0.5), percentile(&times, 0.95));
        // The bitmap work alone.
        let eval_ms = indexes
            .with(t.id, |i: &SegmentIndex| {
                let mut v: Vec<f64> = (0..31)
                    .map(|_| {
                        let t0 = Instant::now();
                        std::hint::black_box(i.count(&expr, TODAY));
                        t0.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect();
                v.sort_by(f64::total_cmp);
                percentile(&v, 0.5)
            })
            .await?;
        // SQL on the same backend.
        let sql_count = store.count_segment_sql(t.id, DataScope::Tenant, &expr, TODAY).await? as u64;
        let mut sql_times = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            std::hint::black_box(store.count_segment_sql(t.id, DataScope::Tenant, &expr, TODAY).await?);
            sql_times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        sql_times.sort_by(f64::total_cmp);
        let sql_med = percentile(&sql_times, 0.5);
        if sql_count != count {
            bail!("index counted {count}, SQL counted {sql_count}");
        }
        eprintln!("   count {count}: index median {med:.2} ms (p95 {p95:.2}, bitmaps alone {eval_ms:.2}); SQL median {sql_med:.1} ms");
        let metric = format!("5-predicate count, {n} customers");
        out.push(Row {
            scenario: "segment-count".into(),
            backend: backend.as_str().into(),
            metric: metric.clone(),
            siyu: Figure { value: med, unit: "ms" },
            baseline_name: "same count in SQL".into(),
            baseline: Figure { value: sql_med, unit: "ms" },
            ratio: med / sql_med,
        });
        out.push(Row {
            scenario: "segment-count".into(),
            backend: backend.as_str().into(),
            metric: format!("p95 of {metric}"),
            siyu: Figure { value: p95, unit: "ms" },
            baseline_name: "target".into(),
            baseline: Figure { value: 50.0, unit: "ms" },
            ratio: p95 / 50.0,
        });

        // DuckDB on the same data.
        let dir = std::env::temp_dir().join(format!("siyu-bench-segments-{n}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        store.export_segment_facts(t.id, &dir).await?;
        let py = tokio::process::Command::new(&a.python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/bench_duckdb.py"))
            .arg(&dir)
            .arg(format!("t{tag_a}"))
            .arg(format!("t{tag_b}"))
            .arg(SPEND_MIN.to_string())
            .arg("11")
            .output()
            .await
            .with_context(|| format!("running {} (use scripts/bench, which installs DuckDB)", a.python))?;
        std::fs::remove_dir_all(&dir).ok();
        if !py.status.success() {
            bail!(
                "the DuckDB baseline failed (use scripts/bench, which installs DuckDB): {}",
                String::from_utf8_lossy(&py.stderr)
            );
        }
        let duck: DuckOut = serde_json::from_slice(&py.stdout).context("reading the DuckDB baseline's output")?;
        if duck.count != count {
            bail!("index counted {count}, DuckDB counted {}", duck.count);
        }
        eprintln!(
            "   DuckDB {}: median {:.2} ms (p95 {:.2}), loaded in {:.1} s, RSS {:.0} MiB",
            duck.duckdb, duck.median_ms, duck.p95_ms, duck.load_s, duck.rss_mib
        );
        out.push(Row {
            scenario: "segment-count".into(),
            backend: backend.as_str().into(),
            metric: metric.clone(),
            siyu: Figure { value: med, unit: "ms" },
            baseline_name: format!("DuckDB {} in memory", duck.duckdb),
            baseline: Figure { value: duck.median_ms, unit: "ms" },
            ratio: med / duck.median_ms,
        });
        out.push(Row {
            scenario: "segment-count".into(),
            backend: backend.as_str().into(),
            metric: format!("resident memory, index of {n} customers"),
            siyu: Figure { value: rss_after, unit: "MiB" },
            baseline_name: "DuckDB holding the same data".into(),
            baseline: Figure { value: duck.rss_mib, unit: "MiB" },
            ratio: rss_after / duck.rss_mib,
        });
        out.push(Row {
            scenario: "segment-count".into(),
            backend: backend.as_str().into(),
            metric: format!("index build, {n} customers"),
            siyu: Figure { value: build_s, unit: "s" },
            baseline_name: "DuckDB CSV load".into(),
            baseline: Figure { value: duck.load_s, unit: "s" },
            ratio: build_s / duck.load_s,
        });
        drop(indexes);
        store.close().await;
    }
    Ok(out)
}

/// A fresh store with a tenant and `receivers` active members (`r000`, `r001`, …) for the
/// transfer scenarios to hand a departing member's customers or groups to.
async fn transfer_tenant(
    backend: Backend,
    pg_url: &str,
    receivers: usize,
) -> Result<(Store, siyu_store::testing::Cleanup, siyu_core::TenantId, Vec<String>)> {
    let (cfg, cleanup) = fresh_config_at(backend, pg_url).await;
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let t = store.create_tenant("transfer", "Transfers", "Asia/Shanghai").await?;
    let sys = Actor::system(t.id);
    let mut userids = Vec::new();
    for i in 0..receivers {
        let u = format!("r{i:03}");
        let input = siyu_core::org::StaffInput::validate(&format!("接替 {i}"), Some(&u), None, None, None, None)
            .map_err(|v| anyhow::anyhow!("{v:?}"))?;
        store.create_staff(&sys, &input).await?;
        userids.push(u);
    }
    Ok((store, cleanup, t.id, userids))
}

/// 离职继承 of a member with many customers (WeCom allows tens of thousands): reading the
/// 90-day log, the receivers' loads, planning over 50 receivers and recording every item,
/// beside inserting the same item rows plainly in one transaction.
async fn transfer_plan(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    use siyu_core::customers::transfer::{self, Kind};
    use siyu_store::customers::transfers::NewTransfer;

    const RECEIVERS: usize = 50;
    let n = a.transfer_customers;
    let setup = || async {
        let (store, cleanup, tenant, receivers) = transfer_tenant(backend, pg_url, RECEIVERS).await?;
        store.generate_relationships(tenant, "leaver", n as i64, "wmB").await?;
        anyhow::Ok((store, cleanup, tenant, receivers))
    };
    let app = siyu_core::WecomAppId::new();
    let siyu_secs = {
        let (store, _cleanup, tenant, receivers) = setup().await?;
        let sys = Actor::system(tenant);
        let started = Instant::now();
        let externals = store.live_externals_of(tenant, "leaver").await?;
        let candidates = store.transfer_candidates(tenant, "leaver", &externals).await?;
        let pool = store.transfer_receivers(tenant, &receivers).await?;
        let plan = transfer::plan(&candidates, &pool);
        let batch = NewTransfer {
            app_id: app,
            subject: siyu_core::customers::transfer::Subject::Customers,
            kind: Kind::Resigned,
            origin: "auto",
            handover: "leaver",
            message: None,
            assignments: &plan,
        };
        let t = store.create_transfer(&sys, &batch).await?;
        let secs = started.elapsed().as_secs_f64();
        let planned = t.counts.get("planned").copied().unwrap_or(0);
        if planned as usize != n {
            bail!("planned {planned} of {n} customers");
        }
        store.close().await;
        secs
    };
    let base_secs = {
        let (store, _cleanup, tenant, receivers) = setup().await?;
        let one = [transfer::Assignment {
            external_userid: "seed".into(),
            handover: "leaver".into(),
            takeover: Ok(receivers[0].clone()),
        }];
        let batch = NewTransfer {
            app_id: app,
            subject: siyu_core::customers::transfer::Subject::Customers,
            kind: Kind::Resigned,
            origin: "auto",
            handover: "leaver",
            message: None,
            assignments: &one,
        };
        let t = store.create_transfer(&Actor::system(tenant), &batch).await?;
        let rows: Vec<(String, String)> =
            (1..=n).map(|i| (format!("wmB{i}"), receivers[i % RECEIVERS].clone())).collect();
        let started = Instant::now();
        let inserted = store.insert_plain_transfer_items(tenant, t.id, "leaver", &rows, false).await?;
        let secs = started.elapsed().as_secs_f64();
        if inserted as usize != n {
            bail!("baseline inserted {inserted} of {n}");
        }
        store.close().await;
        secs
    };
    let (siyu, base) = (n as f64 / siyu_secs, n as f64 / base_secs);
    Ok(vec![Row {
        scenario: "transfer-plan".into(),
        backend: backend.as_str().into(),
        metric: format!("{n} customers, {RECEIVERS} receivers"),
        siyu: Figure { value: siyu, unit: "customers/s" },
        baseline_name: "plain item INSERTs, one tx".into(),
        baseline: Figure { value: base, unit: "rows/s" },
        ratio: siyu / base,
    }])
}

/// A departed member's groups (C-62): reading them and their 90-day moves, planning over 50
/// receivers by the groups they own, recording the items, then claiming them for sending under
/// the 300-a-day pair limit — beside inserting the same item rows plainly in one transaction.
async fn group_transfer(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    use siyu_core::customers::transfer::{self, Kind, Subject};
    use siyu_store::customers::transfers::NewTransfer;

    const RECEIVERS: usize = 50;
    let n = a.transfer_groups;
    let setup = || async {
        let (store, cleanup, tenant, receivers) = transfer_tenant(backend, pg_url, RECEIVERS).await?;
        store.generate_groups(tenant, "leaver", n as i64, "wrB").await?;
        anyhow::Ok((store, cleanup, tenant, receivers))
    };
    fn batch(plan: &[transfer::Assignment]) -> NewTransfer<'_> {
        NewTransfer {
            app_id: siyu_core::WecomAppId::new(),
            kind: Kind::Resigned,
            subject: Subject::Groups,
            origin: "auto",
            handover: "leaver",
            message: None,
            assignments: plan,
        }
    }
    let siyu_secs = {
        let (store, _cleanup, tenant, receivers) = setup().await?;
        let sys = Actor::system(tenant);
        let started = Instant::now();
        let chats = store.groups_owned_by(tenant, "leaver").await?;
        let candidates = store.group_transfer_candidates(tenant, "leaver", &chats).await?;
        let pool = store.group_transfer_receivers(tenant, &receivers).await?;
        let plan = transfer::plan(&candidates, &pool);
        let t = store.create_transfer(&sys, &batch(&plan)).await?;
        let claimed = store.claim_group_transfer_items(&sys, t.id).await?;
        let secs = started.elapsed().as_secs_f64();
        if claimed.len() != n {
            bail!("claimed {} of {n} groups", claimed.len());
        }
        store.close().await;
        secs
    };
    let base_secs = {
        let (store, _cleanup, tenant, receivers) = setup().await?;
        let one = [transfer::Assignment {
            external_userid: "seed".into(),
            handover: "leaver".into(),
            takeover: Ok("r000".into()),
        }];
        let t = store.create_transfer(&Actor::system(tenant), &batch(&one)).await?;
        let rows: Vec<(String, String)> =
            (1..=n).map(|i| (format!("wrB{i}"), receivers[i % RECEIVERS].clone())).collect();
        let started = Instant::now();
        let inserted = store.insert_plain_transfer_items(tenant, t.id, "leaver", &rows, true).await?;
        let secs = started.elapsed().as_secs_f64();
        if inserted as usize != n {
            bail!("baseline inserted {inserted} of {n}");
        }
        store.close().await;
        secs
    };
    let (siyu, base) = (n as f64 / siyu_secs, n as f64 / base_secs);
    Ok(vec![Row {
        scenario: "group-transfer".into(),
        backend: backend.as_str().into(),
        metric: format!("{n} groups, {RECEIVERS} receivers, planned and claimed"),
        siyu: Figure { value: siyu, unit: "groups/s" },
        baseline_name: "plain item INSERTs, one tx".into(),
        baseline: Figure { value: base, unit: "rows/s" },
        ratio: siyu / base,
    }])
}

/// A customer file through the whole import path — decode, check every row, seal and queue,
/// then one transaction with sealed phones, blind indexes and identities — beside the
/// database generating as many customer rows by itself.
async fn customer_import(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    let n = a.import_rows;
    let mut csv = String::from("姓名,手机号,外部编号\n");
    for i in 0..n {
        csv.push_str(&format!("客户{i},+86139{i:08},R{i}\n"));
    }
    let open = || async {
        let (cfg, cleanup) = fresh_config_at(backend, pg_url).await;
        let store = Store::connect(&cfg).await?;
        store.migrate().await?;
        let t = store.create_tenant("import", "Import", "Asia/Shanghai").await?;
        anyhow::Ok((store, cleanup, t.id))
    };
    let siyu_secs = {
        let (store, _cleanup, tenant) = open().await?;
        let started = Instant::now();
        let rec = siyu_web::imports::accept(&store, &Actor::system(tenant), "bench.csv", csv.as_bytes()).await?;
        if rec.status != "queued" {
            bail!("the bench file was {}: {:?}", rec.status, rec.errors.first());
        }
        siyu_web::imports::run(&store, tenant, rec.id).await.map_err(|e| anyhow::anyhow!(e))?;
        let secs = started.elapsed().as_secs_f64();
        let got = store.count_customers(tenant).await?;
        if got as usize != n {
            bail!("imported {got} of {n}");
        }
        store.close().await;
        secs
    };
    let base_secs = {
        let (store, _cleanup, tenant) = open().await?;
        let group = store.create_tag_group(&Actor::system(tenant), "bench").await?;
        let started = Instant::now();
        store.generate_segment_tenant(tenant, group.id, n as i64, 1).await?;
        let secs = started.elapsed().as_secs_f64();
        store.close().await;
        secs
    };
    let (siyu, base) = (n as f64 / siyu_secs, n as f64 / base_secs);
    Ok(vec![Row {
        scenario: "customer-import".into(),
        backend: backend.as_str().into(),
        metric: format!("{n} rows"),
        siyu: Figure { value: siyu, unit: "rows/s" },
        baseline_name: "in-database generation".into(),
        baseline: Figure { value: base, unit: "rows/s" },
        ratio: siyu / base,
    }])
}

/// Rule tags on a generated tenant: the first refresh (every match becomes a holder) and a
/// second one (nothing changes), beside counting the same five-predicate rule in SQL — the
/// least any refresh must do.
async fn rule_tags(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    use siyu_core::auth::DataScope;
    use siyu_core::customers::rfm::Segment;
    use siyu_core::customers::segment::{Expr, Metric};

    const TAGS: i64 = 20;
    const TODAY: i64 = 16_000;
    let n = a.rule_customers;
    let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let t = store.create_tenant("rules", "Rules", "Asia/Shanghai").await?;
    let sys = Actor::system(t.id);
    let group = store.create_tag_group(&sys, "bench").await?;
    let mut tag_ids = Vec::new();
    for i in 0..TAGS {
        tag_ids.push(store.create_tag(&sys, group.id, &format!("t{i}")).await?.id);
    }
    store.generate_segment_tenant(t.id, group.id, n as i64, TAGS).await?;
    let rule = Expr::And(vec![
        Expr::Or(vec![
            Expr::And(vec![Expr::Lifecycle("deal".into()), Expr::Tag(tag_ids[3])]),
            Expr::RfmSegment(Segment::ImportantValue),
            Expr::Range { metric: Metric::SpendFen, min: Some(150_000), max: None },
        ]),
        Expr::Not(Box::new(Expr::Tag(tag_ids[5]))),
    ]);
    let rules = store.create_tag_group(&sys, "rules").await?;
    let tag = store.create_rule_tag(&sys, rules.id, "bench-rule", &rule).await?;
    let t0 = Instant::now();
    let first = store.refresh_rule_tags(t.id, TODAY).await?;
    let first_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let second = store.refresh_rule_tags(t.id, TODAY).await?;
    let second_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let matched = store.count_segment_sql(t.id, DataScope::Tenant, &rule, TODAY).await?;
    let count_s = t2.elapsed().as_secs_f64();
    if first.added as i64 != matched || second.added + second.removed != 0 {
        bail!(
            "rule tag {tag:?}: first refresh added {}, SQL matched {matched}, second changed {}",
            first.added,
            second.added + second.removed
        );
    }
    store.close().await;
    let row = |metric: &str, v: f64| Row {
        scenario: "rule-tags".into(),
        backend: backend.as_str().into(),
        metric: format!("{metric}, {n} customers, {matched} match"),
        siyu: Figure { value: v * 1000.0, unit: "ms" },
        baseline_name: "SQL count of the rule".into(),
        baseline: Figure { value: count_s * 1000.0, unit: "ms" },
        ratio: v / count_s,
    };
    Ok(vec![row("first refresh", first_s), row("unchanged refresh", second_s)])
}

/// Mall orders for one hot SKU from many buyers at once, beside bare conditional UPDATEs.
async fn order_create(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    use siyu_core::commerce::catalogue::{ProductDraft, SkuInput};

    let (n, c) = (a.orders, a.order_clients.max(1));
    let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let tenant = store.create_tenant("bench", "Bench", "Asia/Shanghai").await?;
    let actor = Actor::system(tenant.id);
    let product = |stock: usize| ProductDraft {
        title: "热卖单品".into(),
        status: Some("listed".into()),
        skus: vec![SkuInput { id: None, spec: Vec::new(), code: None, price_fen: 9_900, on_hand: stock as i64 }],
        ..Default::default()
    };
    let hot = store.create_product(&actor, &product(n).validate().map_err(|v| anyhow::anyhow!("{v:?}"))?).await?;
    let bare = store.create_product(&actor, &product(n).validate().map_err(|v| anyhow::anyhow!("{v:?}"))?).await?;
    let (hot_sku, bare_sku) = (hot.skus[0].id, bare.skus[0].id);
    let mut sessions = Vec::with_capacity(c);
    for i in 0..c {
        let b = store.buyer_for_openid(tenant.id, &format!("o-bench-{i}"), None).await?;
        sessions.push(store.create_mall_session(tenant.id, b.id).await?);
    }
    let (base, server) = serve_in_process(siyu_web::AppState::new(store.clone(), Default::default())).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(c).timeout(Duration::from_secs(60)).build()?;
    let url = format!("{base}/mall/bench/api/orders");
    let body = serde_json::json!({"items": [{"sku_id": hot_sku, "qty": 1}]});

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for secret in sessions {
        let (client, url, body, next) = (client.clone(), url.clone(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t = Instant::now();
                let r = client.post(&url).bearer_auth(&secret).json(&body).send().await?;
                let status = r.status();
                let _ = r.bytes().await?;
                if status != 201 {
                    anyhow::bail!("order submit answered {status}");
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        lat.extend(t.await??);
    }
    let siyu_secs = started.elapsed().as_secs_f64();
    server.abort();
    let held = store.sku(tenant.id, hot_sku).await?.reserved;
    if held as usize != n {
        bail!("{n} orders but {held} units reserved");
    }
    lat.sort_by(|x, y| x.total_cmp(y));

    // The baseline: the one statement an order cannot do without, from as many tasks.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (store, next, t) = (store.clone(), next.clone(), tenant.id);
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let done = siyu_store::on_write!(store, |p| sqlx::query(
                    "UPDATE skus SET reserved = reserved + 1 WHERE tenant_id = $1 AND id = $2 AND on_hand - reserved >= 1"
                )
                .bind(t.0)
                .bind(bare_sku.0)
                .execute(p)
                .await?
                .rows_affected());
                if done != 1 {
                    anyhow::bail!("the bare update sold out early");
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let bare_secs = started.elapsed().as_secs_f64();
    store.close().await;
    let b = backend.as_str().to_string();
    Ok(vec![
        Row {
            scenario: "order-create".into(),
            backend: b.clone(),
            metric: format!("orders/s, {c} clients"),
            siyu: Figure { value: n as f64 / siyu_secs, unit: "o/s" },
            baseline_name: "conditional stock UPDATE".into(),
            baseline: Figure { value: n as f64 / bare_secs, unit: "u/s" },
            ratio: bare_secs / siyu_secs,
        },
        Row {
            scenario: "order-create".into(),
            backend: b,
            metric: "p99 submit latency".into(),
            siyu: Figure { value: percentile(&lat, 0.99), unit: "ms" },
            baseline_name: "p50 submit latency".into(),
            baseline: Figure { value: percentile(&lat, 0.50), unit: "ms" },
            ratio: percentile(&lat, 0.99) / percentile(&lat, 0.50).max(f64::MIN_POSITIVE),
        },
    ])
}

/// A day's WeChat Pay bill of `orders` payments (one in ten refunded) read and reconciled,
/// beside the same number of bare point lookups by transaction id in the same run.
async fn bill_reconcile(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    use siyu_pay::bill::{self, BillKind, BillLine};

    let n = a.orders;
    let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let tenant = store.create_tenant("bench", "Bench", "Asia/Shanghai").await?;
    let day = "2026-11-22";
    let mut lines = Vec::with_capacity(n + n / 10);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        siyu_store::on_write!(store, |p| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO payments (tenant_id, id, order_id, out_trade_no, transaction_id, amount_fen, disposition, \
                 success_time, created_at) ",
            );
            qb.push_values(chunk, |mut b, i| {
                b.push_bind(tenant.id.0)
                    .push_bind(uuid::Uuid::now_v7())
                    .push_bind(uuid::Uuid::now_v7())
                    .push_bind(format!("B{i}P1"))
                    .push_bind(format!("42000{i:010}"))
                    .push_bind(1_000 + *i as i64)
                    .push_bind("applied")
                    .push_bind(format!("{day}T10:00:00+08:00"))
                    .push_bind(0_i64);
            });
            qb.build().execute(p).await?.rows_affected()
        });
    }
    for i in 0..n {
        let line = |kind, refund_fen| BillLine {
            kind,
            time: format!("{day} 10:00:00"),
            appid: "wxbench".into(),
            mchid: "1900000109".into(),
            transaction_id: format!("42000{i:010}"),
            out_trade_no: format!("B{i}P1"),
            openid: String::new(),
            amount_fen: 1_000 + i as i64,
            refund_id: String::new(),
            out_refund_no: if kind == BillKind::Refund { format!("R{i}") } else { String::new() },
            refund_fen,
            description: "热卖单品".into(),
        };
        lines.push(line(BillKind::Payment, 0));
        // A refund here is unknown to the store: the run also builds its list of differences.
        if i % 10 == 0 {
            lines.push(line(BillKind::Refund, 500));
        }
    }
    let text = bill::render(&lines);
    let started = Instant::now();
    let parsed = bill::parse(&text)?;
    let provider: Vec<_> = parsed
        .into_iter()
        .map(|l| siyu_store::commerce::reconcile::ProviderLine {
            refund: l.kind == BillKind::Refund,
            amount_fen: if l.kind == BillKind::Refund { l.refund_fen } else { l.amount_fen },
            transaction_id: l.transaction_id,
            out_trade_no: l.out_trade_no,
            out_refund_no: l.out_refund_no,
        })
        .collect();
    store.claim_reconciliation(tenant.id, day, true).await?;
    let run = store.reconcile(tenant.id, day, &provider).await?;
    let siyu_secs = started.elapsed().as_secs_f64();
    if run.matched as usize != n {
        bail!("{} of {n} payments matched", run.matched);
    }
    let started = Instant::now();
    for i in 0..provider.len() {
        let tx = format!("42000{:010}", i % n);
        let _: Option<i64> = siyu_store::on_read!(store, |p| sqlx::query_scalar(
            "SELECT amount_fen FROM payments WHERE tenant_id = $1 AND transaction_id = $2"
        )
        .bind(tenant.id.0)
        .bind(&tx)
        .fetch_optional(p)
        .await?);
    }
    let bare_secs = started.elapsed().as_secs_f64();
    store.close().await;
    Ok(vec![Row {
        scenario: "bill-reconcile".into(),
        backend: backend.as_str().to_string(),
        metric: format!("bill lines/s, {} lines", provider.len()),
        siyu: Figure { value: provider.len() as f64 / siyu_secs, unit: "l/s" },
        baseline_name: "point SELECT by transaction id".into(),
        baseline: Figure { value: provider.len() as f64 / bare_secs, unit: "q/s" },
        ratio: bare_secs / siyu_secs,
    }])
}

/// A flash sale of `flash_attempts / 20` units under `flash_attempts` purchase attempts from
/// `order_clients` buyers over HTTP; it must end with exactly the quota in orders. Beside it,
/// as many bare conditional UPDATEs on one row holding the same units, from as many tasks.
/// 秒杀 over HTTP: `flash_attempts` purchase attempts from `order_clients` buyers for a
/// twentieth as many units, each run on a fresh sale and checked to end with exactly that many
/// orders and an empty pool. Runs: one process on the database alone, beside bare conditional
/// UPDATEs; one process through Redis (`--redis-url`), beside a bare Redis DECR loop; and on
/// PostgreSQL, two `siyu serve` processes sharing the database, with and without Redis.
async fn flash_sale(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    let (n, c) = (a.flash_attempts, a.order_clients.max(1));
    let units = (n / 20).max(1) as i64;
    let (mut cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
    // The child processes must open what this one sealed.
    let key = siyu_store::secrets::Sealer::generate_key();
    cfg.secret_key = Some(key.clone());
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let tenant = store.create_tenant("bench", "Bench", "Asia/Shanghai").await?;
    let mut sessions = Vec::with_capacity(c);
    for i in 0..c {
        let b = store.buyer_for_openid(tenant.id, &format!("o-flash-{i}"), None).await?;
        sessions.push(store.create_mall_session(tenant.id, b.id).await?);
    }
    // Admission control would refuse a load generator's pace; it is not what is measured.
    let web = || siyu_web::WebConfig { flash_attempts_per_sec: 0, ..Default::default() };
    let metric = |how: &str| format!("attempts/s, {n} for {units} units, {c} clients, {how}");
    let row = |how: &str, secs: f64, base_name: &str, base_secs: f64| Row {
        scenario: "flash-sale".into(),
        backend: backend.as_str().to_string(),
        metric: metric(how),
        siyu: Figure { value: n as f64 / secs, unit: "a/s" },
        baseline_name: base_name.into(),
        baseline: Figure { value: n as f64 / base_secs, unit: "a/s" },
        ratio: base_secs / secs,
    };
    let mut rows = Vec::new();

    let (url, server) = serve_in_process(siyu_web::AppState::new(store.clone(), web())).await?;
    let db_secs = flash_round(&store, tenant.id, &sessions, &[url], n, units).await?;
    server.abort();
    let bare_secs = bare_updates(&store, tenant.id, units, n, c).await?;
    rows.push(row("1 process, database", db_secs, "bare conditional UPDATE", bare_secs));

    let ns = format!("bench{}", uuid::Uuid::now_v7().simple());
    let redis = match siyu_store::commerce::flash_gate::FlashGate::connect(&a.redis_url, store.clone(), &ns).await {
        Ok(gate) => Some(gate),
        Err(e) => {
            eprintln!(
                "flash-sale: no Redis at {} ({e}); the Redis runs are skipped",
                siyu_store::redact_url(&a.redis_url)
            );
            None
        }
    };
    let mut decr_secs = None;
    if let Some(gate) = redis.clone() {
        let state = siyu_web::AppState::new(store.clone(), web()).with_flash_gate(gate);
        let (url, server) = serve_in_process(state).await?;
        let secs = flash_round(&store, tenant.id, &sessions, &[url], n, units).await?;
        server.abort();
        let decr = redis_decrs(&a.redis_url, &ns, units, n, c).await?;
        rows.push(row("1 process, Redis", secs, "bare Redis DECR", decr));
        decr_secs = Some(decr);
    }
    if backend == Backend::Postgres {
        let child_url = siyu_store::testing::url_for_child(&cfg);
        let mut runs = vec![(None, "2 processes, database", "bare conditional UPDATE", bare_secs)];
        if let Some(decr) = decr_secs {
            runs.push((Some(a.redis_url.as_str()), "2 processes, Redis", "bare Redis DECR", decr));
        }
        for (redis_url, how, base_name, base_secs) in runs {
            let procs =
                [ServeProcess::start(&child_url, &key, redis_url)?, ServeProcess::start(&child_url, &key, redis_url)?];
            for p in &procs {
                p.ready().await?;
            }
            let urls: Vec<String> = procs.iter().map(|p| p.url.clone()).collect();
            let secs = flash_round(&store, tenant.id, &sessions, &urls, n, units).await?;
            drop(procs);
            rows.push(row(how, secs, base_name, base_secs));
        }
    }
    store.close().await;
    Ok(rows)
}

/// Serves `state` on a loopback port in this process; returns its base URL.
async fn serve_in_process(state: siyu_web::AppState) -> Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let app = siyu_web::app(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((format!("http://{addr}"), tokio::spawn(async move { axum::serve(listener, app).await })))
}

/// One flash sale, fresh: a product with twice `units` in stock, a sale of `units`, and `n`
/// attempts spread over `sessions` (one client each) and over the servers at `bases` in turn.
/// Fails unless exactly `units` orders are placed and the pool ends empty. Returns seconds.
async fn flash_round(
    store: &Store,
    tenant: siyu_core::TenantId,
    sessions: &[String],
    bases: &[String],
    n: usize,
    units: i64,
) -> Result<f64> {
    use siyu_core::commerce::catalogue::{ProductDraft, SkuInput};
    use siyu_core::commerce::flash::{FlashDraft, FlashSkuInput};
    let actor = Actor::system(tenant);
    let product = ProductDraft {
        title: "秒杀单品".into(),
        status: Some("listed".into()),
        skus: vec![SkuInput { id: None, spec: Vec::new(), code: None, price_fen: 19_900, on_hand: units * 2 }],
        ..Default::default()
    };
    let p = store.create_product(&actor, &product.validate().map_err(|v| anyhow::anyhow!("{v:?}"))?).await?;
    let sku = p.skus[0].id;
    let now = store.now();
    let draft = FlashDraft {
        name: "整点秒杀".into(),
        starts_at: Some(siyu_core::Timestamp(now.0 - 1_000_000)),
        ends_at: Some(siyu_core::Timestamp(now.0 + 3_600_000_000)),
        per_order: Some(1),
        per_user: Some(999),
        timeout_secs: None,
        buckets: None,
        skus: vec![FlashSkuInput { sku_id: sku.to_string(), price_fen: 990, quota: units }],
    };
    let sale = store.create_flash_sale(&actor, &draft.validate().map_err(|v| anyhow::anyhow!("{v:?}"))?).await?;
    let c = sessions.len();
    let client = reqwest::Client::builder().pool_max_idle_per_host(c).timeout(Duration::from_secs(60)).build()?;
    let body = serde_json::json!({"sku_id": sku, "qty": 1});
    let next = Arc::new(AtomicUsize::new(0));
    let won = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, secret) in sessions.iter().cloned().enumerate() {
        let url = format!("{}/mall/bench/api/flash-sales/{}/orders", bases[i % bases.len()], sale.id);
        let (client, body, next, won) = (client.clone(), body.clone(), next.clone(), won.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let r = client.post(&url).bearer_auth(&secret).json(&body).send().await?;
                let status = r.status();
                let _ = r.bytes().await?;
                match status.as_u16() {
                    201 => {
                        won.fetch_add(1, Ordering::Relaxed);
                    }
                    409 => {}
                    other => anyhow::bail!("flash order answered {other}"),
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let won = won.load(Ordering::Relaxed) as i64;
    let left = store.flash_sale(tenant, sale.id).await?.skus[0].remaining;
    if won != units || left != 0 {
        bail!("{won} orders for {units} units, {left} left in the pool");
    }
    Ok(secs)
}

/// The Redis baseline: `n` bare DECRs from `c` tasks on one key holding `units`, a DECR that
/// stays at or above zero winning a unit; exactly `units` must win. Returns seconds.
async fn redis_decrs(url: &str, ns: &str, units: i64, n: usize, c: usize) -> Result<f64> {
    let client = redis::Client::open(url)?;
    let conn = client.get_connection_manager().await?;
    let key = format!("{ns}:decr-baseline");
    let _: () = redis::cmd("SET").arg(&key).arg(units).query_async(&mut conn.clone()).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (mut conn, next, key) = (conn.clone(), next.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = 0_i64;
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let left: i64 = redis::cmd("DECR").arg(&key).query_async(&mut conn).await?;
                got += i64::from(left >= 0);
            }
            Ok::<_, anyhow::Error>(got)
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn.clone()).await?;
    if won != units {
        bail!("the DECR loop took {won} of {units}");
    }
    Ok(secs)
}

/// A `siyu serve` child process on a free loopback port, killed when dropped.
struct ServeProcess {
    url: String,
    child: std::process::Child,
    _dir: tempdir::Dir,
}

impl ServeProcess {
    fn start(database_url: &str, secret_key: &str, redis_url: Option<&str>) -> Result<ServeProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempdir::Dir::new()?;
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(&dir.0)
            .env_remove("SIYU_CONFIG")
            .env("SIYU_DATABASE_URL", database_url)
            .env("SIYU_SECRET_KEY", secret_key)
            .env("SIYU_JOBS__ENABLED", "false")
            .env("SIYU_FLASH_ATTEMPTS_PER_SEC", "0")
            .env("SIYU_LOG_LEVEL", "warn")
            .stdout(std::process::Stdio::null());
        match redis_url {
            Some(r) => cmd.env("SIYU_REDIS_URL", r),
            None => cmd.env_remove("SIYU_REDIS_URL"),
        };
        let child = cmd.spawn().context("starting siyu serve")?;
        Ok(ServeProcess { url: format!("http://127.0.0.1:{port}"), child, _dir: dir })
    }

    /// Waits until the process answers HTTP.
    async fn ready(&self) -> Result<()> {
        for _ in 0..300 {
            if reqwest::get(format!("{}/console/login", self.url)).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("siyu serve at {} did not start", self.url)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod tempdir {
    /// A scratch directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> std::io::Result<Dir> {
            let p = std::env::temp_dir().join(format!("siyu-bench-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&p)?;
            Ok(Dir(p))
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// 渠道活码 landing: every GET of a code's landing page picks a member under the caps,
/// reserves a unit of their day and records the scan, beside nginx answering a static 302 on
/// the same machine in the same run (`--requests` each, `--concurrency` clients). Then 200
/// scanners at once on a code with caps of 50: the run fails unless no member exceeds the cap.
async fn scan_landing(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    use siyu_core::acquisition::live_code::LiveCodeDraft;
    use siyu_store::acquisition::LiveCodeMember;
    let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let tenant = store.create_tenant("bench", "Bench", "Asia/Shanghai").await?;
    let actor = Actor::system(tenant.id);
    let users = ["zhang", "li", "wang", "boss"];
    for u in users {
        let s = siyu_core::org::StaffInput::validate(u, Some(u), None, None, None, None)
            .map_err(|v| anyhow::anyhow!("{v:?}"))?;
        store.create_staff(&actor, &s).await?;
    }
    let open = |cap: i64| {
        let (store, actor) = (store.clone(), actor.clone());
        async move {
            let input = LiveCodeDraft {
                name: "门店海报".into(),
                staff: vec!["zhang".into(), "li".into()],
                backup: vec!["wang".into()],
                fallback: Some("boss".into()),
                daily_cap: Some(cap),
                ..Default::default()
            }
            .validate(store.now())
            .map_err(|v| anyhow::anyhow!("{v:?}"))?;
            let code = store.create_live_code(&actor, siyu_core::WecomAppId::new(), &input).await?;
            let members: Vec<LiveCodeMember> = users
                .iter()
                .map(|u| LiveCodeMember {
                    userid: u.to_string(),
                    config_id: format!("cfg-{u}"),
                    qr_code: format!("https://wework.qpic.cn/wwpic/bench-{u}/0"),
                })
                .collect();
            Ok::<_, anyhow::Error>(store.attach_live_code_members(tenant.id, code.id, &members, "active").await?.id)
        }
    };
    let roomy = open(siyu_core::acquisition::live_code::MAX_DAILY_CAP).await?;
    let nginx = Nginx::start()?;
    let (base, server) = serve_in_process(siyu_web::AppState::new(store.clone(), Default::default())).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    nginx.ready(&client).await?;
    let landing = format!("{base}/l/bench/{roomy}?src=bench");
    let warm = (a.requests / 10).max(100);
    load(&client, &landing, None, warm, a.concurrency).await?;
    load(&client, &nginx.url, None, warm, a.concurrency).await?;
    // Interleaved, so drift in the machine's load hits both alike.
    let half = a.requests / 2;
    let n1 = load(&client, &nginx.url, None, half, a.concurrency).await?;
    let s1 = load(&client, &landing, None, half, a.concurrency).await?;
    let s2 = load(&client, &landing, None, half, a.concurrency).await?;
    let n2 = load(&client, &nginx.url, None, half, a.concurrency).await?;

    // Exact caps under 200 concurrent scanners.
    let tight = open(50).await?;
    let url = format!("{base}/l/bench/{tight}");
    let scans = futures::future::join_all((0..200).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        async move { client.get(&url).send().await.map(|r| r.status().as_u16()) }
    }))
    .await;
    if let Some(bad) = scans.iter().find(|r| !matches!(r, Ok(200))) {
        bail!("a scan answered {bad:?}");
    }
    let day = store.now().local_day(8);
    let counts = store.live_code_day(tenant.id, tight, day).await?;
    let over: Vec<_> = counts.iter().filter(|m| m.userid != "boss" && m.used > 50).collect();
    let total: i64 = counts.iter().map(|m| m.used).sum();
    if !over.is_empty() || total != 200 {
        bail!("caps broken under 200 concurrent scanners: {counts:?}");
    }
    server.abort();
    store.close().await;
    let avg = |x: &Load, y: &Load, f: fn(&Load) -> f64| (f(x) + f(y)) / 2.0;
    let mk = |metric: &str, unit: &'static str, siyu: f64, base: f64| Row {
        scenario: "scan-landing".into(),
        backend: backend.as_str().to_string(),
        metric: metric.into(),
        siyu: Figure { value: siyu, unit },
        baseline_name: "nginx static 302".into(),
        baseline: Figure { value: base, unit },
        ratio: if base > 0.0 { siyu / base } else { f64::NAN },
    };
    Ok(vec![
        mk(
            &format!("throughput, {} clients", a.concurrency),
            "r/s",
            avg(&s1, &s2, |l| l.rps),
            avg(&n1, &n2, |l| l.rps),
        ),
        mk("p99 latency", "ms", avg(&s1, &s2, |l| l.p99_ms), avg(&n1, &n2, |l| l.p99_ms)),
    ])
}

/// nginx answering every request with a static 302, on a free loopback port, killed on drop.
struct Nginx {
    url: String,
    child: std::process::Child,
    _dir: tempdir::Dir,
}

impl Nginx {
    fn start() -> Result<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .context("nginx is not installed: scripts/bench installs it (apt-get install nginx-light)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempdir::Dir::new()?;
        let d = dir.0.display();
        let conf = format!(
            "worker_processes auto;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; \
             uwsgi_temp_path {d}; scgi_temp_path {d}; \
             server {{ listen 127.0.0.1:{port}; location / {{ return 302 https://work.weixin.qq.com/; }} }} }}\n"
        );
        std::fs::write(dir.0.join("nginx.conf"), conf)?;
        let child = std::process::Command::new(bin)
            .args(["-p", &dir.0.display().to_string(), "-c", &dir.0.join("nginx.conf").display().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting nginx")?;
        Ok(Nginx { url: format!("http://127.0.0.1:{port}/l/bench/x"), child, _dir: dir })
    }

    async fn ready(&self, client: &reqwest::Client) -> Result<()> {
        for _ in 0..100 {
            if let Ok(r) = client.get(&self.url).send().await {
                if r.status() == reqwest::StatusCode::FOUND {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("nginx did not answer at {}", self.url)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The baseline of the contended scenarios: `n` bare conditional UPDATEs from `c` tasks on one
/// row holding `units`, which must take exactly `units`. Returns the seconds they took.
async fn bare_updates(store: &Store, tenant: siyu_core::TenantId, units: i64, n: usize, c: usize) -> Result<f64> {
    use siyu_core::commerce::catalogue::{ProductDraft, SkuInput};
    let actor = Actor::system(tenant);
    let bare = store
        .create_product(
            &actor,
            &ProductDraft {
                title: "基线".into(),
                status: Some("listed".into()),
                skus: vec![SkuInput { id: None, spec: Vec::new(), code: None, price_fen: 100, on_hand: units }],
                ..Default::default()
            }
            .validate()
            .map_err(|v| anyhow::anyhow!("{v:?}"))?,
        )
        .await?;
    let bare_sku = bare.skus[0].id;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (store, next) = (store.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = 0_i64;
            while next.fetch_add(1, Ordering::Relaxed) < n {
                got += siyu_store::on_write!(store, |p| sqlx::query(
                    "UPDATE skus SET reserved = reserved + 1 WHERE tenant_id = $1 AND id = $2 AND on_hand - reserved >= 1"
                )
                .bind(tenant.0)
                .bind(bare_sku.0)
                .execute(p)
                .await?
                .rows_affected()) as i64;
            }
            Ok::<_, anyhow::Error>(got)
        }));
    }
    let mut bare_won = 0;
    for t in tasks {
        bare_won += t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    if bare_won != units {
        bail!("the bare loop took {bare_won} of {units}");
    }
    Ok(secs)
}

/// Bargain helps (砍价) over HTTP: `flash_attempts / order_clients` bargains needing 10 helpers
/// each, and every one of `order_clients` helpers trying to help every bargain at once, so each
/// bargain's row is contended by all clients in turn. It must end with every bargain exactly
/// at its floor after exactly 10 helps. Beside it, as many bare conditional UPDATEs.
async fn bargain_help(a: &BenchArgs, backend: Backend, pg_url: &str) -> Result<Vec<Row>> {
    use siyu_core::commerce::bargain::BargainDraft;
    use siyu_core::commerce::catalogue::{ProductDraft, SkuInput};

    let c = a.order_clients.max(1);
    let records = (a.flash_attempts / c).max(1);
    let n = records * c;
    let required = 10_i64;
    let (cfg, _cleanup) = fresh_config_at(backend, pg_url).await;
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let tenant = store.create_tenant("bench", "Bench", "Asia/Shanghai").await?;
    let actor = Actor::system(tenant.id);
    let product = ProductDraft {
        title: "砍价单品".into(),
        status: Some("listed".into()),
        skus: vec![SkuInput { id: None, spec: Vec::new(), code: None, price_fen: 19_900, on_hand: 10 }],
        ..Default::default()
    };
    let p = store.create_product(&actor, &product.validate().map_err(|v| anyhow::anyhow!("{v:?}"))?).await?;
    let now = store.now();
    let draft = BargainDraft {
        name: "好友帮砍".into(),
        sku_id: p.skus[0].id.to_string(),
        price_fen: 19_900,
        floor_fen: 100,
        helpers: required,
        help_limit: Some(99),
        quota: 10,
        starts_at: Some(siyu_core::Timestamp(now.0 - 1_000_000)),
        ends_at: Some(siyu_core::Timestamp(now.0 + 3_600_000_000)),
        ..Default::default()
    };
    let bargain = store.create_bargain(&actor, &draft.validate().map_err(|v| anyhow::anyhow!("{v:?}"))?).await?;
    let mut ids = Vec::with_capacity(records);
    for i in 0..records {
        let b = store.buyer_for_openid(tenant.id, &format!("o-owner-{i}"), None).await?;
        ids.push(store.start_bargain(tenant.id, b.id, bargain.id).await?.id);
    }
    let mut sessions = Vec::with_capacity(c);
    for i in 0..c {
        let b = store.buyer_for_openid(tenant.id, &format!("o-helper-{i}"), None).await?;
        sessions.push(store.create_mall_session(tenant.id, b.id).await?);
    }
    let (base, server) = serve_in_process(siyu_web::AppState::new(store.clone(), Default::default())).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(c).timeout(Duration::from_secs(60)).build()?;
    let urls: Arc<Vec<String>> =
        Arc::new(ids.iter().map(|r| format!("{base}/mall/bench/api/bargain-records/{r}/help")).collect());
    let helped = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for secret in sessions {
        let (client, urls, helped) = (client.clone(), urls.clone(), helped.clone());
        tasks.push(tokio::spawn(async move {
            for url in urls.iter() {
                let r = client.post(url).bearer_auth(&secret).send().await?;
                let status = r.status();
                let _ = r.bytes().await?;
                match status.as_u16() {
                    200 => {
                        helped.fetch_add(1, Ordering::Relaxed);
                    }
                    409 => {}
                    other => anyhow::bail!("help answered {other}"),
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let siyu_secs = started.elapsed().as_secs_f64();
    server.abort();
    let want = records * (required as usize).min(c);
    if helped.load(Ordering::Relaxed) != want {
        bail!("{} helps, expected {want}", helped.load(Ordering::Relaxed));
    }
    for r in &ids {
        let rec = store.bargain_record(tenant.id, *r).await?;
        let cut: i64 = rec.helps.iter().map(|h| h.cut_fen).sum();
        if c >= required as usize && (rec.current_fen != 100 || cut != 19_800) {
            bail!("bargain {r} ended at {} after cuts of {cut}", rec.current_fen);
        }
    }
    let bare_secs = bare_updates(&store, tenant.id, want as i64, n, c).await?;
    store.close().await;
    Ok(vec![Row {
        scenario: "bargain-help".into(),
        backend: backend.as_str().to_string(),
        metric: format!("help attempts/s, {n} on {records} bargains, {c} clients"),
        siyu: Figure { value: n as f64 / siyu_secs, unit: "a/s" },
        baseline_name: "bare conditional UPDATE".into(),
        baseline: Figure { value: n as f64 / bare_secs, unit: "a/s" },
        ratio: bare_secs / siyu_secs,
    }])
}

//! The `siyu` binary: command line, configuration, composition root, jobs runner and the
//! benchmark harness.

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use tokio::sync::watch;

use siyu_core::auth::{check_password_policy, Actor, Role};
use siyu_core::org::validate_tenant;
use siyu_store::org::NewUser;
use siyu_store::secrets::{hash_password, random_secret};
use siyu_store::Store;

mod bench;
mod config;
mod demo;
mod pay_cli;
mod runner;
mod wecom_cli;

use config::Config;

/// siyu (私域): private-domain traffic operations — WeCom acquisition, customer operations,
/// engagement, commerce, fission, loyalty and analytics — in one binary.
#[derive(Parser)]
#[command(name = "siyu", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Default: ./siyu.toml when present. Env: SIYU_CONFIG.
    #[arg(long, global = true, env = "SIYU_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (API, console) and the background jobs runner.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]. Env: SIYU_LISTEN.
        #[arg(long)]
        listen: Option<String>,
        /// Create the demo tenant (once) and show its login on the console's login page.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations (also done by `serve` at start).
    Migrate {
        /// Only list the applied migrations.
        #[arg(long)]
        status: bool,
    },
    /// Manage tenants (brands).
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage console users.
    #[command(subcommand)]
    User(UserCmd),
    /// Customer tools: import a CSV or XLSX file.
    #[command(subcommand)]
    Customers(CustomersCmd),
    /// Print the OpenAPI document.
    Openapi,
    /// Run the WeCom sandbox on its own, so another siyu (or anything else) can use it as
    /// its WeCom: the same API, and signed, encrypted callbacks.
    Sandbox(SandboxArgs),
    /// WeCom tools: verify and decrypt callbacks, build signed callback bodies.
    #[command(subcommand)]
    Wecom(wecom_cli::WecomCmd),
    /// WeChat Pay tools: verify and decrypt payment and refund notifications.
    #[command(subcommand)]
    Pay(pay_cli::PayCmd),
    /// Run the benchmark harness: builds tenants, runs scenarios beside same-run baselines,
    /// prints a table and writes JSON.
    Bench(bench::BenchArgs),
}

#[derive(clap::Args)]
struct SandboxArgs {
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    #[arg(long, default_value = "wwSIYUSANDBOX001")]
    corp_id: String,
    /// The app Secret the sandbox accepts at gettoken.
    #[arg(long)]
    secret: String,
    /// Callback Token and EncodingAESKey, as you would enter them in WeCom's admin console.
    #[arg(long)]
    callback_token: String,
    #[arg(long)]
    encoding_aes_key: String,
    /// The siyu callback URL to send events to (`…/wecom/callback/{tenant}/{app}`).
    #[arg(long)]
    callback_url: Option<String>,
    /// Members of the simulated corp, as userid:name pairs.
    #[arg(long, value_delimiter = ',', default_value = "wangfang:王芳,zhangwei:张伟")]
    members: Vec<String>,
}

#[derive(Subcommand)]
enum CustomersCmd {
    /// Import customers from a CSV (UTF-8 or GB18030) or XLSX file, header row first. Every
    /// row is checked before anything is written; with any problem the file is rejected,
    /// the problems are printed and the exit code is 2. Progress goes to stderr.
    Import {
        #[arg(long)]
        tenant: String,
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum TenantCmd {
    /// Create a tenant.
    Create {
        /// Short name used at login: 2-32 lower-case letters, digits, '-' or '_'.
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "Asia/Shanghai")]
        timezone: String,
    },
    /// List tenants.
    List,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a console user. Without --password or --password-stdin a random password is
    /// generated and printed once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        login: String,
        /// Display name [default: the login].
        #[arg(long)]
        name: Option<String>,
        /// owner, admin, operator or guide.
        #[arg(long, default_value = "owner")]
        role: String,
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from standard input (keeps it out of shell history).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password for a user and end their sessions.
    ResetPassword {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        login: String,
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Wecom(cmd) = cli.command {
        // Offline tools: no configuration, no database, nothing but the answer on stdout.
        return wecom_cli::run(cmd);
    }
    if let Command::Pay(cmd) = cli.command {
        return pay_cli::run(cmd);
    }
    if let Command::Sandbox(a) = cli.command {
        init_logging("info", "text");
        return sandbox(a).await;
    }
    if let Command::Bench(args) = cli.command {
        init_logging("warn,sqlx=error", "text");
        return bench::run(args).await;
    }
    let mut cfg = Config::load(cli.config).map_err(|e| anyhow!(e))?;
    if let Command::Serve { listen: Some(l), .. } = &cli.command {
        cfg.listen = l.clone();
    }
    init_logging(&cfg.log_level, &cfg.log_format);
    match cli.command {
        Command::Serve { demo, .. } => serve(cfg, demo).await,
        Command::Migrate { status } => {
            let store = open(&cfg).await?;
            if !status {
                store.migrate().await.context("applying migrations")?;
            }
            let v = store.applied_migrations().await.unwrap_or_default();
            println!("{} migration(s) applied on {}: {:?}", v.len(), store.backend().as_str(), v);
            Ok(())
        }
        Command::Tenant(cmd) => tenant_cmd(cfg, cmd).await,
        Command::User(cmd) => user_cmd(cfg, cmd).await,
        Command::Customers(cmd) => customers_cmd(cfg, cmd).await,
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&siyu_web::openapi())?);
            Ok(())
        }
        Command::Bench(_) | Command::Wecom(_) | Command::Pay(_) | Command::Sandbox(_) => unreachable!("handled above"),
    }
}

fn init_logging(level: &str, format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(format!("sqlx=warn,hyper=warn,{level}")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
}

async fn open(cfg: &Config) -> Result<Store> {
    let sc = cfg.store().map_err(|e| anyhow!(e))?;
    Store::connect(&sc).await.with_context(|| format!("connecting to {}", siyu_store::redact_url(&sc.url)))
}

async fn serve(cfg: Config, demo: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let store = open(&cfg).await?;
    store.migrate().await.context("applying migrations")?;
    let addr: SocketAddr =
        cfg.listen.parse().with_context(|| format!("--listen {} is not an address like 127.0.0.1:8080", cfg.listen))?;
    let mut web = siyu_web::WebConfig {
        secure_cookies: cfg.secure_cookies,
        trust_proxy: cfg.trust_proxy,
        callback_window_secs: cfg.wecom_callback_window_secs,
        flash_attempts_per_sec: cfg.flash_attempts_per_sec,
        ..Default::default()
    };
    let flash_gate = match &cfg.redis_url {
        Some(url) => Some(
            siyu_store::commerce::flash_gate::FlashGate::connect(url, store.clone(), "siyu")
                .await
                .with_context(|| format!("connecting to Redis at {}", siyu_store::redact_url(url)))?,
        ),
        None => None,
    };
    if demo {
        demo::ensure(&store).await.context("creating the demo tenant")?;
        let st = store.clone();
        let dataset = cfg.demo_dataset.clone();
        tokio::spawn(async move {
            if let Err(e) = demo::customers::ensure(st, dataset).await {
                tracing::warn!(error = %e, "demo: loading customers failed");
            }
        });
        web.demo_login = Some(siyu_web::DemoLogin {
            tenant: demo::TENANT.into(),
            login: demo::OWNER.into(),
            password: demo::PASSWORD.into(),
        });
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let gated = |state: siyu_web::AppState| match &flash_gate {
        Some(g) => state.with_flash_gate(g.clone()),
        None => state,
    };
    let app = if demo {
        // The demo's WeCom corp is a sandbox served by this same process.
        let sb = demo::wecom::wire(&store, &format!("http://{local}")).await.context("wiring the WeCom sandbox")?;
        let pay = demo::pay::wire(&store, &format!("http://{local}")).await.context("wiring the WeChat Pay sandbox")?;
        web.pay_cashier = Some(demo::pay::CASHIER.into());
        let app = siyu_web::app(gated(siyu_web::AppState::with_sandbox(store.clone(), web, sb.clone())))
            .nest(demo::wecom::MOUNT, sb.router())
            .nest(demo::pay::MOUNT, pay.router());
        tokio::spawn(demo::wecom::simulate(store.clone(), sb, cfg.demo_activity_secs));
        app
    } else {
        siyu_web::app(gated(siyu_web::AppState::new(store.clone(), web)))
    };
    if let Some(g) = flash_gate {
        // Every process reconciles; each step is idempotent, so they need not agree who does.
        tokio::spawn(g.run(stop_rx.clone(), Duration::from_secs(2)));
    }
    let jobs = if cfg.jobs.enabled {
        runner::schedule_housekeeping(&store, cfg.wecom_callback_window_secs)
            .await
            .context("scheduling housekeeping")?;
        runner::schedule_commerce_sweep(&store, false).await.context("scheduling the commerce sweep")?;
        runner::schedule_reconciliation(&store, false).await.context("scheduling the bill reconciliation")?;
        let r = runner::Runner {
            store: store.clone(),
            registry: runner::builtin_registry(),
            worker: format!("{}-{}", hostname(), std::process::id()),
            workers: cfg.jobs.workers,
            lease: Duration::from_secs(cfg.jobs.lease_secs.max(1)),
            poll: Duration::from_millis(cfg.jobs.poll_ms.max(10)),
            backoff: Default::default(),
        };
        Some(tokio::spawn(r.run(stop_rx)))
    } else {
        None
    };

    tracing::info!(%local, backend = store.backend().as_str(), elapsed_ms = started.elapsed().as_millis() as u64, "siyu is ready");
    println!("siyu is serving the console at http://{local}/console");
    if demo {
        println!("demo login: tenant `{}`, login `{}`, password `{}`", demo::TENANT, demo::OWNER, demo::PASSWORD);
    }
    let shutdown = async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                s.recv().await;
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    };
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    if let Some(j) = jobs {
        let _ = tokio::time::timeout(Duration::from_secs(30), j).await;
    }
    store.close().await;
    Ok(())
}

async fn sandbox(a: SandboxArgs) -> Result<()> {
    siyu_wecom::crypto::decode_aes_key(&a.encoding_aes_key).map_err(|e| anyhow!("--encoding-aes-key: {e}"))?;
    let mut cfg =
        siyu_wecom::sandbox::SandboxConfig::new(&a.corp_id, &a.secret, &a.callback_token, &a.encoding_aes_key);
    cfg.callback_url = a.callback_url.clone();
    let sb = siyu_wecom::sandbox::Sandbox::new(cfg, std::sync::Arc::new(siyu_core::time::SystemClock));
    for m in &a.members {
        let (id, name) = m.split_once(':').unwrap_or((m.as_str(), m.as_str()));
        sb.add_member(id, name, 1);
    }
    let listener = tokio::net::TcpListener::bind(&a.listen).await.with_context(|| format!("binding {}", a.listen))?;
    println!("WeCom sandbox for corp {} serving at http://{}", a.corp_id, listener.local_addr()?);
    axum::serve(listener, sb.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "siyu".into())
}

async fn tenant_cmd(cfg: Config, cmd: TenantCmd) -> Result<()> {
    let store = open(&cfg).await?;
    store.migrate().await?;
    match cmd {
        TenantCmd::Create { slug, name, timezone } => {
            let (slug, name, tz) = validate_tenant(&slug, &name, &timezone).map_err(violations)?;
            let t = store
                .create_tenant(&slug, &name, &tz)
                .await
                .map_err(|e| anyhow!("cannot create tenant {slug}: {e}"))?;
            println!("created tenant {} ({}) id {}", t.slug, t.name, t.id);
        }
        TenantCmd::List => {
            for t in store.list_tenants().await? {
                println!("{}\t{}\t{}\t{}", t.slug, t.name, t.timezone, t.id);
            }
        }
    }
    Ok(())
}

async fn customers_cmd(cfg: Config, cmd: CustomersCmd) -> Result<()> {
    let store = open(&cfg).await?;
    store.migrate().await?;
    let CustomersCmd::Import { tenant, file } = cmd;
    let t = store.tenant_by_slug(&tenant).await?.ok_or_else(|| anyhow!("no tenant {tenant}"))?;
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let actor = siyu_core::auth::Actor::system(t.id);
    let rec = siyu_web::imports::accept(&store, &actor, &name, &bytes).await?;
    if rec.status == "rejected" {
        eprintln!("{name}: {} problem(s); nothing was imported", rec.error_count);
        for p in &rec.errors {
            println!("row {}\t{}\t{}\t{}", p.row, p.column, p.code, p.message);
        }
        std::process::exit(2);
    }
    eprintln!("{name}: {} rows checked; importing", rec.total);
    let id = rec.id;
    let total = rec.total;
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if let Some(n) = siyu_web::imports::progress(id) {
                eprintln!("  {n} / {total}");
            }
        }
    });
    let run = siyu_web::imports::run(&store, t.id, id).await;
    ticker.abort();
    run.map_err(|e| anyhow!(e))?;
    let done = store.customer_import(t.id, id).await?;
    match done.status.as_str() {
        "done" => {
            println!("imported {}: {} created, {} already known", name, done.created, done.existing);
            Ok(())
        }
        _ => bail!("the import failed and wrote nothing: {}", done.failure.unwrap_or_default()),
    }
}

fn violations(v: Vec<siyu_core::validate::Violation>) -> anyhow::Error {
    anyhow!(v.iter().map(|x| format!("{}: {}", x.field, x.message)).collect::<Vec<_>>().join("; "))
}

/// The password from a flag, stdin, or (for creation) a fresh random one to print once.
fn password_from(flag: Option<String>, stdin: bool, generate: bool) -> Result<(String, bool)> {
    if let Some(p) = flag {
        return Ok((p, false));
    }
    if stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        return Ok((s.trim_end_matches(['\r', '\n']).to_string(), false));
    }
    if generate {
        return Ok((format!("Sy{}", &random_secret()[..14]), true));
    }
    bail!("give the new password with --password or --password-stdin")
}

async fn user_cmd(cfg: Config, cmd: UserCmd) -> Result<()> {
    let store = open(&cfg).await?;
    store.migrate().await?;
    let tenant_of = |slug: String| {
        let store = store.clone();
        async move {
            store
                .tenant_by_slug(&slug)
                .await?
                .ok_or_else(|| anyhow!("no tenant with slug {slug}; see `siyu tenant list`"))
        }
    };
    match cmd {
        UserCmd::Create { tenant, login, name, role, password, password_stdin } => {
            let t = tenant_of(tenant).await?;
            let role = Role::parse(&role).ok_or_else(|| anyhow!("--role must be owner, admin, operator or guide"))?;
            let mut v = siyu_core::validate::Violations::new();
            let login = v.login("login", &login);
            let name = v.text("name", name.as_deref().unwrap_or(&login), 64);
            v.into_result().map_err(violations)?;
            let (pw, generated) = password_from(password, password_stdin, true)?;
            check_password_policy(&pw).map_err(|p| anyhow!("password: {p}"))?;
            let pw2 = pw.clone();
            let hash = tokio::task::spawn_blocking(move || hash_password(&pw2)).await?;
            let u = store
                .create_user(
                    &Actor::system(t.id),
                    NewUser { login: login.clone(), display_name: name, role, staff_id: None, password_hash: hash },
                )
                .await
                .map_err(|e| anyhow!("cannot create user {login}: {e}"))?;
            println!("created {} user {} in tenant {} (id {})", role.as_str(), u.login, t.slug, u.id);
            if generated {
                println!("generated password (shown only now): {pw}");
            }
        }
        UserCmd::ResetPassword { tenant, login, password, password_stdin } => {
            let t = tenant_of(tenant).await?;
            let (user, _) = store
                .user_for_login(t.id, &login)
                .await?
                .ok_or_else(|| anyhow!("no user {login} in tenant {}", t.slug))?;
            let (pw, _) = password_from(password, password_stdin, false)?;
            check_password_policy(&pw).map_err(|p| anyhow!("password: {p}"))?;
            let hash = tokio::task::spawn_blocking(move || hash_password(&pw)).await?;
            store.set_password(&Actor::system(t.id), user.id, &hash).await?;
            println!("password of {} in tenant {} changed; their sessions have ended", user.login, t.slug);
        }
    }
    Ok(())
}

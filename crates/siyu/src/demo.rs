//! The demo tenant: a brand with stores, staff and users of every role, created once and left
//! alone afterwards (running `siyu serve --demo` again changes nothing). Later capabilities add
//! their own demo data here.

use siyu_core::auth::{Actor, Role};
use siyu_core::org::{StaffInput, StoreInput};
use siyu_store::org::NewUser;
use siyu_store::secrets::hash_password;
use siyu_store::{Store, StoreError};

pub const TENANT: &str = "demo";
pub const PASSWORD: &str = "siyu-demo-2026";
pub const OWNER: &str = "owner";

/// Creates the demo tenant unless it exists. Returns whether it was created now.
pub async fn ensure(store: &Store) -> Result<bool, StoreError> {
    if store.tenant_by_slug(TENANT).await?.is_some() {
        return Ok(false);
    }
    let tenant = match store.create_tenant(TENANT, "鹿野咖啡 · 演示品牌", "Asia/Shanghai").await {
        Ok(t) => t,
        // Another process seeded it at the same moment.
        Err(StoreError::Duplicate(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let sys = Actor::system(tenant.id);
    let stores = [
        ("sh-jingan", "上海静安店", Some("上海"), Some("静安区南京西路 1601 号"), Some("021-62880001")),
        ("bj-sanlitun", "北京三里屯店", Some("北京"), Some("朝阳区三里屯路 19 号"), Some("010-64160002")),
        ("hz-hubin", "杭州湖滨店", Some("杭州"), Some("上城区湖滨路 28 号"), Some("0571-87000003")),
        ("online", "线上商城", None, None, None),
    ];
    let mut ids = Vec::new();
    for (code, name, city, address, phone) in stores {
        let input = StoreInput::validate(code, name, city, address, phone, None)
            .map_err(|v| StoreError::Conflict(format!("{v:?}")))?;
        ids.push(store.create_store(&sys, &input).await?.id);
    }
    let staff = [
        ("王芳", "wangfang", "13800138001", 0, "导购", "active"),
        ("李娜", "lina", "13800138002", 0, "店长", "active"),
        ("张伟", "zhangwei", "13800138003", 1, "导购", "active"),
        ("刘洋", "liuyang", "13800138004", 2, "导购", "active"),
        ("陈静", "chenjing", "13800138005", 3, "运营", "active"),
        ("赵磊", "zhaolei", "13800138006", 1, "导购", "departed"),
    ];
    let mut staff_ids = Vec::new();
    for (name, userid, mobile, store_ix, title, status) in staff {
        let input =
            StaffInput::validate(name, Some(userid), Some(mobile), Some(ids[store_ix]), Some(title), Some(status))
                .map_err(|v| StoreError::Conflict(format!("{v:?}")))?;
        staff_ids.push(store.create_staff(&sys, &input).await?.id);
    }
    let hash = tokio::task::spawn_blocking(|| hash_password(PASSWORD))
        .await
        .map_err(|e| StoreError::Conflict(e.to_string()))?;
    let users = [
        (OWNER, "周总", Role::Owner, None),
        ("admin", "系统管理员", Role::Admin, None),
        ("chenjing", "陈静", Role::Operator, Some(staff_ids[4])),
        ("wangfang", "王芳", Role::Guide, Some(staff_ids[0])),
        ("zhangwei", "张伟", Role::Guide, Some(staff_ids[2])),
    ];
    for (login, name, role, staff_id) in users {
        store
            .create_user(
                &sys,
                NewUser { login: login.into(), display_name: name.into(), role, staff_id, password_hash: hash.clone() },
            )
            .await?;
    }
    Ok(true)
}

/// The demo's WeCom corp: an in-process sandbox whose members are the demo staff.
pub mod wecom {
    use std::sync::Arc;

    use siyu_core::auth::Actor;
    use siyu_core::time::SystemClock;
    use siyu_core::wecom::AppInput;
    use siyu_store::{Store, StoreError};
    use siyu_wecom::api::ContactWay;
    use siyu_wecom::sandbox::{Sandbox, SandboxConfig};

    pub const CORP_ID: &str = "wwSIYUDEMO000001";
    /// The demo mini program's AppSecret (its AppID is the demo's payment AppID).
    pub const MINIPROGRAM_SECRET: &str = "siyu-demo-miniprogram-secret";
    const SECRET: &str = "siyu-demo-sandbox-secret";
    /// Where the sandbox is mounted in the demo server.
    pub const MOUNT: &str = "/wecom-sandbox";

    /// Points the demo tenant's WeCom app at the sandbox served at `base` (creating the app on
    /// first start), and returns the sandbox, configured to call back into this server.
    pub async fn wire(store: &Store, base: &str) -> Result<Arc<Sandbox>, StoreError> {
        let tenant = store.tenant_by_slug(super::TENANT).await?.ok_or(StoreError::NotFound)?;
        let actor = Actor::system(tenant.id);
        let input = AppInput::validate("客户联系（沙箱）", CORP_ID, "1000002", &format!("{base}{MOUNT}"))
            .map_err(|v| StoreError::Conflict(format!("{v:?}")))?;
        let app = match store.list_wecom_apps(tenant.id).await?.into_iter().find(|a| a.corp_id == CORP_ID) {
            Some(a) => store.update_wecom_app(&actor, a.id, &input, None).await?,
            None => {
                let (token, key) = siyu_web::wecom::api::new_callback_keys();
                store.create_wecom_app(&actor, &input, SECRET, &token, &key).await?
            }
        };
        let cred = store.wecom_credentials(tenant.id, app.id).await?;
        let mut cfg = SandboxConfig::new(CORP_ID, SECRET, &cred.callback_token, &cred.encoding_aes_key);
        cfg.callback_url = Some(format!("{base}{}", siyu_web::wecom::api::callback_path(&app)));
        cfg.miniprogram_appid = super::pay::APPID.into();
        cfg.miniprogram_secret = MINIPROGRAM_SECRET.into();
        let sb = Sandbox::new(cfg, Arc::new(SystemClock));
        for (userid, name) in
            [("wangfang", "王芳"), ("lina", "李娜"), ("zhangwei", "张伟"), ("liuyang", "刘洋"), ("chenjing", "陈静")]
        {
            sb.add_member(userid, name, 1);
        }
        Ok(sb)
    }

    /// What WeCom would do once the app is connected: verify the callback URL, then a few
    /// customers scan a channel code, producing callbacks the inbox processes.
    pub async fn simulate(store: Store, sb: Arc<Sandbox>, every_secs: u64) {
        if let Err(e) = sb.verify_callback_url().await {
            tracing::warn!(error = %e, "demo: the sandbox could not verify the callback URL");
            return;
        }
        let Ok(Some(tenant)) = store.tenant_by_slug(super::TENANT).await else { return };
        let Ok(apps) = store.list_wecom_apps(tenant.id).await else { return };
        let Some(app) = apps.into_iter().find(|a| a.corp_id == CORP_ID) else { return };
        let gw = siyu_web::wecom::Gateway::new(store.clone());
        let Ok(client) = gw.client(tenant.id, app.id).await else { return };
        let way = ContactWay {
            kind: 2,
            scene: 2,
            state: Some("c:demo".into()),
            user: vec!["wangfang".into(), "zhangwei".into()],
            skip_verify: true,
            ..Default::default()
        };
        let Ok(added) = client.add_contact_way(&way).await else { return };
        for name in ["李雷", "韩梅梅", "林涛"] {
            let ext = sb.add_external_user(name, None);
            if let Err(e) = sb.scan_contact_way(&added.config_id, &ext).await {
                tracing::warn!(error = %e, "demo: a simulated scan failed");
            }
        }
        sb.add_group_chat("wangfang", "鹿野咖啡 VIP 1 群");
        if let Err(e) = gw.schedule_reconcile(tenant.id, app.id, true).await {
            tracing::warn!(error = %e, "demo: could not schedule the first sync");
        }
        match live_code(&store, &gw, &client, tenant.id).await {
            Ok(code) if every_secs > 0 => scans(store, sb, tenant, code, every_secs).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "demo: the live code could not be opened"),
        }
    }

    const LIVE_CODE: &str = "门店海报活码";

    /// The demo's channel live code: opened on first start; on later starts its members'
    /// contact ways are made again, since the sandbox forgets them with the process.
    async fn live_code(
        store: &Store,
        gw: &siyu_web::wecom::Gateway,
        client: &siyu_wecom::Client,
        tenant: siyu_core::TenantId,
    ) -> Result<siyu_core::LiveCodeId, String> {
        use siyu_core::acquisition::live_code::{LiveCodeDraft, SlotDraft};
        use siyu_store::acquisition::LiveCodeMember;
        let existing =
            store.live_codes(tenant).await.map_err(|e| e.to_string())?.into_iter().find(|c| c.name == LIVE_CODE);
        if let Some(code) = existing {
            let mut members = Vec::new();
            for userid in code.config.members() {
                let way = ContactWay {
                    kind: 1,
                    scene: 2,
                    skip_verify: code.config.skip_verify,
                    state: Some(code.state.clone()),
                    user: vec![userid.clone()],
                    ..Default::default()
                };
                let w = client.add_contact_way(&way).await.map_err(|e| e.to_string())?;
                members.push(LiveCodeMember { userid, config_id: w.config_id, qr_code: w.qr_code });
            }
            let status = if code.status == "paused" { "paused" } else { "active" };
            store.attach_live_code_members(tenant, code.id, &members, status).await.map_err(|e| e.to_string())?;
            return Ok(code.id);
        }
        let input = LiveCodeDraft {
            name: LIVE_CODE.into(),
            staff: vec!["wangfang".into(), "zhangwei".into()],
            backup: vec!["liuyang".into()],
            fallback: Some("lina".into()),
            daily_cap: Some(40),
            schedule: vec![SlotDraft {
                weekdays: (1..=7).collect(),
                from: "08:00".into(),
                to: "22:00".into(),
                staff: vec![],
            }],
            welcome: Some(
                "{customer_name}您好，我是鹿野咖啡的{staff_name}，新人专享券已放入您的账户，有任何问题随时找我～"
                    .into(),
            ),
            skip_verify: Some(true),
            ..Default::default()
        }
        .validate(store.now())
        .map_err(|v| format!("{v:?}"))?;
        let code = gw.open_live_code(&Actor::system(tenant), &input).await.map_err(|e| e.to_string())?;
        Ok(code.id)
    }

    /// A stream of customers scanning the poster: most add the member they were shown, within
    /// seconds, so the console's counts, welcomes and channel statistics move.
    async fn scans(
        store: Store,
        sb: Arc<Sandbox>,
        tenant: siyu_core::org::Tenant,
        code: siyu_core::LiveCodeId,
        every_secs: u64,
    ) {
        const NAMES: [&str; 12] =
            ["周杰", "吴敏", "郑爽", "孙悦", "马超", "朱丽", "胡军", "郭静", "何炅", "高圆", "罗琳", "梁晨"];
        let offset = tenant.offset_hours();
        let mut n = 0usize;
        loop {
            let pause = every_secs / 2 + rand::random::<u64>() % every_secs;
            tokio::time::sleep(std::time::Duration::from_secs(pause)).await;
            let scan = store
                .scan_live_code(
                    tenant.id,
                    code,
                    offset,
                    Some("src=demo-poster"),
                    Some("MicroMessenger"),
                    rand::random(),
                )
                .await;
            let Ok(siyu_store::acquisition::Scan::Assigned { userid, .. }) = scan else { continue };
            if rand::random::<u8>() % 10 >= 7 {
                continue;
            }
            let Ok(c) = store.live_code(tenant.id, code).await else { continue };
            let Some(m) = c.members.iter().find(|m| m.userid == userid) else { continue };
            let ext = sb.add_external_user(NAMES[n % NAMES.len()], None);
            n += 1;
            if let Err(e) = sb.scan_contact_way(&m.config_id, &ext).await {
                tracing::warn!(error = %e, "demo: a simulated add failed");
            }
        }
    }
}

/// The demo's WeChat Pay: a sandbox served by this same process, with a platform key made at
/// start (protocols.md §9) and the published test merchant key, and the demo tenant's payment
/// settings pointed at it. The H5 mall sends buyers to the sandbox's cashier to pay.
pub mod pay {
    use std::sync::Arc;

    use siyu_core::auth::Actor;
    use siyu_core::time::SystemClock;
    use siyu_pay::fixtures;
    use siyu_pay::sandbox::{PaySandbox, SandboxConfig};
    use siyu_store::commerce::payments::PaySettingsInput;
    use siyu_store::{Store, StoreError};

    pub const MCHID: &str = "1900009191";
    pub const APPID: &str = "wxd0e1a2b3c4d5e6f7";
    /// Where the sandbox is mounted in the demo server.
    pub const MOUNT: &str = "/wechatpay-sandbox";
    /// The cashier page, relative to the demo server.
    pub const CASHIER: &str = "/wechatpay-sandbox/sandbox/cashier";

    pub async fn wire(store: &Store, base: &str) -> Result<Arc<PaySandbox>, StoreError> {
        let tenant = store.tenant_by_slug(super::TENANT).await?.ok_or(StoreError::NotFound)?;
        let (key, public_pem) = tokio::task::spawn_blocking(PaySandbox::generate_platform_key)
            .await
            .map_err(|e| StoreError::Config(format!("generating the sandbox key: {e}")))?;
        let cfg = SandboxConfig::new(MCHID, APPID, fixtures::APIV3_KEY, fixtures::MERCHANT_PUBLIC_PEM, key);
        let settings = PaySettingsInput {
            appid: APPID.into(),
            mchid: MCHID.into(),
            merchant_serial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1".into(),
            merchant_key_pem: Some(fixtures::MERCHANT_KEY_PEM.into()),
            apiv3_key: Some(fixtures::APIV3_KEY.into()),
            platform_key_id: Some(cfg.public_key_id.clone()),
            platform_public_key_pem: Some(public_pem),
            platform_certs: Vec::new(),
            base_url: format!("{base}{MOUNT}"),
            notify_base: base.into(),
            order_timeout_secs: 30 * 60,
            // The mini program signs customers in at the WeCom sandbox, which also plays WeChat.
            app_secret: Some(super::wecom::MINIPROGRAM_SECRET.into()),
            login_base_url: format!("{base}{}", super::wecom::MOUNT),
        };
        store.save_pay_settings(&Actor::system(tenant.id), &settings).await?;
        Ok(PaySandbox::new(cfg, Arc::new(SystemClock)))
    }
}

/// The demo mall: the best sellers of the Online Retail dataset as listed products (prices
/// read as yuan, one store, one shipping template), so the H5 mall and the console have
/// something real to sell.
pub mod mall {
    use siyu_core::auth::Actor;
    use siyu_core::commerce::catalogue::{CategoryInput, ProductDraft, ShippingTemplateInput, SkuInput};
    use std::collections::BTreeMap;

    use siyu_core::commerce::pricing::MAX_QTY;
    use siyu_core::customers::retail::{Invoice, RetailProduct};
    use siyu_core::CustomerId;
    use siyu_store::commerce::catalogue::Product;
    use siyu_store::commerce::orders::{PastLine, PastOrder};
    use siyu_store::Store;

    /// How many of the best sellers the demo lists.
    pub const PRODUCTS: usize = 48;

    /// Lists the best sellers; returns them by stock code (nothing when the mall has a
    /// catalogue already).
    pub async fn ensure(
        store: &Store,
        tenant: siyu_core::TenantId,
        products: &[RetailProduct],
    ) -> anyhow::Result<BTreeMap<String, Product>> {
        let sys = Actor::system(tenant);
        let mut listed = BTreeMap::new();
        if !store.categories(tenant).await?.is_empty() {
            return Ok(listed);
        }
        let cat = store
            .create_category(
                &sys,
                &CategoryInput::validate("家居好物", None, Some(1)).map_err(|v| anyhow::anyhow!("{v:?}"))?,
            )
            .await?;
        let tpl = store
            .create_shipping_template(
                &sys,
                &ShippingTemplateInput::validate("满99包邮", 800, Some(9900)).map_err(|v| anyhow::anyhow!("{v:?}"))?,
            )
            .await?;
        for p in products.iter().take(PRODUCTS) {
            let title: String = p.description.chars().take(60).collect();
            let draft = ProductDraft {
                title,
                subtitle: Some(format!("Online Retail {} · 已售 {}", p.code, p.units_sold)),
                category_id: Some(cat.id.0),
                shipping_template_id: Some(tpl.id.0),
                status: Some("listed".into()),
                skus: vec![SkuInput {
                    id: None,
                    spec: Vec::new(),
                    code: Some(p.code.clone()),
                    price_fen: p.unit_fen,
                    on_hand: 200,
                }],
                ..Default::default()
            };
            match draft.validate() {
                Ok(input) => {
                    listed.insert(p.code.clone(), store.create_product(&sys, &input).await?);
                }
                Err(v) => tracing::warn!(code = %p.code, problems = ?v, "demo: product skipped"),
            }
        }
        Ok(listed)
    }

    /// One of each marketing play on the demo's best sellers, running for the next 30 days, so
    /// the H5 mall shows a flash sale, a group-buy and a bargain from the start.
    pub async fn plays(
        store: &Store,
        tenant: siyu_core::TenantId,
        listed: &BTreeMap<String, Product>,
    ) -> anyhow::Result<()> {
        use siyu_core::commerce::bargain::BargainDraft;
        use siyu_core::commerce::flash::{FlashDraft, FlashSkuInput};
        use siyu_core::commerce::group_buy::{GroupBuyDraft, GroupSkuInput};
        let sys = Actor::system(tenant);
        let picks: Vec<&Product> =
            listed.values().filter(|p| p.skus.first().is_some_and(|k| k.price_fen >= 100)).take(3).collect();
        let [flash, group, bargain] = picks.as_slice() else { return Ok(()) };
        let now = store.now();
        let end = siyu_core::Timestamp(now.0 + 30 * 86_400 * 1_000_000);
        let bad = |v: Vec<siyu_core::validate::Violation>| anyhow::anyhow!("{v:?}");
        let half = |p: &Product| (p.skus[0].price_fen / 2).max(1);
        let f = FlashDraft {
            name: "限时秒杀".into(),
            starts_at: Some(now),
            ends_at: Some(end),
            per_order: Some(1),
            skus: vec![FlashSkuInput { sku_id: flash.skus[0].id.to_string(), price_fen: half(flash), quota: 50 }],
            ..Default::default()
        };
        store.create_flash_sale(&sys, &f.validate().map_err(bad)?).await?;
        let g = GroupBuyDraft {
            name: "3人拼团".into(),
            starts_at: Some(now),
            ends_at: Some(end),
            capacity: Some(3),
            valid_hours: Some(24),
            virtual_bp: Some(6_667),
            skus: vec![GroupSkuInput { sku_id: group.skus[0].id.to_string(), price_fen: half(group), quota: 100 }],
            ..Default::default()
        };
        store.create_group_buy(&sys, &g.validate().map_err(bad)?).await?;
        let price = bargain.skus[0].price_fen;
        let b = BargainDraft {
            name: "好友帮砍".into(),
            sku_id: bargain.skus[0].id.to_string(),
            price_fen: price,
            floor_fen: (price / 10).max(1),
            helpers: 5.min(price - (price / 10).max(1)),
            quota: 50,
            starts_at: Some(now),
            ends_at: Some(end),
            new_user_bp: Some(6_000),
            ..Default::default()
        };
        store.create_bargain(&sys, &b.validate().map_err(bad)?).await?;
        Ok(())
    }

    /// The customers' invoices as completed mall orders: each invoice's lines of listed
    /// products, at the prices they were bought at, so the mall has a real year of history.
    pub fn past_orders(
        invoices: &[Invoice],
        listed: &BTreeMap<String, Product>,
        customer_of: impl Fn(&str) -> Option<CustomerId>,
    ) -> Vec<PastOrder> {
        invoices
            .iter()
            .filter_map(|inv| {
                let lines: Vec<PastLine> = inv
                    .lines
                    .iter()
                    .filter_map(|l| {
                        let p = listed.get(&l.code)?;
                        Some(PastLine {
                            sku: p.skus.first()?.id,
                            product: p.id,
                            title: p.title.clone(),
                            qty: u32::try_from(l.qty).ok().filter(|q| *q <= MAX_QTY)?,
                            unit_fen: l.unit_fen,
                        })
                    })
                    .collect();
                (!lines.is_empty()).then(|| PastOrder {
                    no: format!("OR{}", inv.invoice),
                    openid: format!("online-retail-{}", inv.customer),
                    customer: customer_of(&inv.customer),
                    at: inv.at,
                    lines,
                })
            })
            .collect()
    }
}

/// The demo's customers: one per customer of the UCI Online Retail dataset, with their
/// purchase history feeding lifetime metrics, lifecycle and RFM (reference date the day after
/// the last transaction), spread over the demo guides, plus a few tags and saved segments.
pub mod customers {
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::path::PathBuf;

    use siyu_core::auth::{Actor, DataScope};
    use siyu_core::customers::profile::CustomerInput;
    use siyu_core::customers::rfm::{Centre, Segment};
    use siyu_core::customers::segment::{Expr, Metric};
    use siyu_core::paging::PageRequest;
    use siyu_store::customers::metrics::{Purchase, RfmSettings};
    use siyu_store::customers::ImportRow;
    use siyu_store::org::StaffFilter;
    use siyu_store::Store;

    /// The namespace of the dataset's customer ids.
    pub const SOURCE: &str = "online_retail";
    /// The reference date of the demo's RFM: the day after the last transaction.
    pub const REF_DATE: &str = "2011-12-10";

    /// The configured file (`demo_dataset`, or `SIYU_DEMO_DATASET`), else the copy in the
    /// repository's `datasets/` folder.
    pub fn dataset_path(configured: Option<&str>) -> Option<PathBuf> {
        if let Some(p) = configured {
            return Some(PathBuf::from(p));
        }
        // The repository ships the file; a binary run elsewhere finds it beside its working
        // directory or at the source tree it was built from.
        [
            PathBuf::from("datasets/online_retail/online_retail.csv.gz"),
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets/online_retail/online_retail.csv.gz")),
        ]
        .into_iter()
        .find(|p| p.exists())
    }

    /// Loads the dataset into the demo tenant once (nothing happens when its customers exist).
    pub async fn ensure(store: Store, configured: Option<String>) -> anyhow::Result<()> {
        let Some(tenant) = store.tenant_by_slug(super::TENANT).await? else { return Ok(()) };
        let sys = Actor::system(tenant.id);
        if store.count_customers(tenant.id).await? > 0 {
            return Ok(());
        }
        let Some(path) = dataset_path(configured.as_deref()) else {
            tracing::warn!(
                "demo: the Online Retail dataset was not found; set SIYU_DEMO_DATASET to load demo customers"
            );
            return Ok(());
        };
        let started = std::time::Instant::now();
        let data = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let gz = std::fs::read(&path)?;
            let mut csv = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut csv)?;
            siyu_core::customers::retail::parse(&csv, 8).map_err(anyhow::Error::msg)
        })
        .await??;

        let staff = store
            .list_staff(tenant.id, DataScope::Tenant, &StaffFilter::default(), &PageRequest { limit: 50, before: None })
            .await?;
        let guides: Vec<_> = staff.items.iter().filter(|s| s.status.as_str() == "active").collect();
        store.define_customer_field(&sys, "country", "国家/地区", false).await.ok();
        let stages: Vec<String> = store.lifecycle_stages(tenant.id, true).await?.into_iter().map(|s| s.0).collect();
        let keys: Vec<&String> = data.countries.keys().collect();
        let mut rows = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let g = guides.get(i % guides.len().max(1));
            let fields = BTreeMap::from([("country".to_string(), data.countries[*key].clone())]);
            let input = CustomerInput::validate(
                &format!("Customer {key}"),
                None,
                None,
                None,
                g.map(|s| s.id),
                g.and_then(|s| s.store_id),
                &fields,
                &stages,
                &["country".to_string()],
            )
            .map_err(|v| anyhow::anyhow!("{v:?}"))?;
            rows.push(ImportRow { external_ref: Some((*key).clone()), input });
        }
        let imported = store.import_customers(&sys, SOURCE, &rows).await?;
        let id_of: BTreeMap<&String, _> = keys.iter().copied().zip(imported.ids.iter().copied()).collect();
        let purchases: Vec<Purchase> = data
            .invoices
            .iter()
            .filter_map(|inv| {
                Some(Purchase {
                    order_ref: format!("{SOURCE}:{}", inv.invoice),
                    customer_id: *id_of.get(&inv.customer)?,
                    paid_at: inv.at,
                    paid_fen: inv.paid_fen,
                    refunded_fen: 0,
                })
            })
            .collect();
        store.record_purchases(&sys, SOURCE, &purchases).await?;
        let listed = super::mall::ensure(&store, tenant.id, &data.products).await?;
        if !listed.is_empty() {
            super::mall::plays(&store, tenant.id, &listed).await?;
        }
        let past = super::mall::past_orders(&data.invoices, &listed, |c| id_of.get(&c.to_string()).copied());
        let past_n = store.import_past_orders(tenant.id, &past).await?;
        tracing::info!(listed = listed.len(), orders = past_n, "demo: mall products listed, past orders imported");
        let settings = RfmSettings { window_days: None, centre: Centre::Mean, ref_date: Some(REF_DATE.into()) };
        store.save_rfm_settings(&sys, &settings).await?;
        let today = store.now().local_day(8);
        let sum = store.recompute_customer_metrics(&sys, 8, settings.params(today)).await?;

        // Interest tags on a deterministic share of customers, and segments worth opening.
        let group = store.create_tag_group(&sys, "兴趣偏好").await?;
        let mut tags = Vec::new();
        for name in ["家居装饰", "节日礼品", "厨房餐具", "复古风"] {
            tags.push(store.create_tag(&sys, group.id, name).await?);
        }
        for (t, tag) in tags.iter().enumerate() {
            let who: Vec<_> =
                imported.ids.iter().enumerate().filter(|(i, _)| (i * 7 + t * 3) % 5 == 0).map(|(_, id)| *id).collect();
            store.apply_tag(&sys, tag.id, &who, true, "demo").await?;
        }
        let segments = [
            ("高价值老客", Expr::RfmSegment(Segment::ImportantValue)),
            (
                "沉睡的大客户",
                Expr::And(vec![
                    Expr::RfmSegment(Segment::ImportantRetain),
                    Expr::Range { metric: Metric::SpendFen, min: Some(100_000), max: None },
                ]),
            ),
            (
                "英国以外的礼品客",
                Expr::And(vec![
                    Expr::Tag(tags[1].id),
                    Expr::Not(Box::new(Expr::Field { key: "country".into(), value: "United Kingdom".into() })),
                ]),
            ),
        ];
        for (name, expr) in segments {
            store.save_segment(&sys, None, name, "", &expr).await?;
        }
        tracing::info!(
            customers = imported.created,
            orders = purchases.len(),
            scored = sum.scored,
            ms = started.elapsed().as_millis() as u64,
            "demo: Online Retail customers loaded"
        );
        Ok(())
    }
}

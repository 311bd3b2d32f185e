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
    pub async fn simulate(store: Store, sb: Arc<Sandbox>) {
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
    }
}

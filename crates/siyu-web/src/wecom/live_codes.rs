//! Channel live codes against WeCom: opening a code creates one single-member contact way per
//! member, carrying the code's state (exact mode, A-7); an add carrying the state gets the
//! code's tags and its welcome inside WeCom's 20-second window, and the
//! member gets an app message about the new customer.

use std::time::Duration;

use siyu_core::acquisition::live_code::{render_welcome, LiveCodeInput};
use siyu_core::auth::Actor;
use siyu_core::{TenantId, Timestamp, WecomAppId};
use siyu_store::acquisition::{LiveCode, LiveCodeMember};
use siyu_store::StoreError;
use siyu_wecom::api::ContactWay;
use siyu_wecom::WecomError;

use super::gateway::{Gateway, SyncError};

/// WeCom's welcome code lives this long.
const WELCOME_WINDOW: Duration = Duration::from_secs(20);

impl Gateway {
    /// Records the code, then creates its members' contact ways in WeCom with the code's
    /// state. If WeCom refuses one, the ways already made are deleted and the code is kept as
    /// `failed`, so nothing half-made takes scans.
    pub async fn open_live_code(&self, actor: &Actor, input: &LiveCodeInput) -> Result<LiveCode, SyncError> {
        let tenant = actor.tenant_id;
        let app =
            self.store().list_wecom_apps(tenant).await?.into_iter().next().ok_or_else(|| StoreError::Rejected {
                code: "wecom_not_connected",
                field: None,
                message: "connect a WeCom app first (企业微信 settings)".into(),
            })?;
        let code = self.store().create_live_code(actor, app.id, input).await?;
        let client = self.client(tenant, app.id).await?;
        let mut made: Vec<LiveCodeMember> = Vec::new();
        for userid in input.members() {
            let way = ContactWay {
                kind: 1,
                scene: 2,
                remark: Some(input.name.chars().take(30).collect()),
                skip_verify: input.skip_verify,
                state: Some(code.state.clone()),
                user: vec![userid.clone()],
                ..Default::default()
            };
            match client.add_contact_way(&way).await {
                Ok(w) => made.push(LiveCodeMember { userid, config_id: w.config_id, qr_code: w.qr_code }),
                Err(e) => {
                    for m in &made {
                        if let Err(de) = client.del_contact_way(&m.config_id).await {
                            tracing::warn!(error = %de, config_id = m.config_id, "live code: could not delete a contact way");
                        }
                    }
                    self.store().attach_live_code_members(tenant, code.id, &[], "failed").await?;
                    return Err(e.into());
                }
            }
        }
        Ok(self.store().attach_live_code_members(tenant, code.id, &made, "active").await?)
    }

    /// An add (or half-add) whose state may name a live code: counts it against the member's
    /// day, applies the code's tags, and sends its welcome before WeCom's code expires.
    /// Safe to run twice for one event: tags are idempotent and a welcome is sent at most once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn on_live_code_add(
        &self,
        tenant: TenantId,
        app: WecomAppId,
        state: &str,
        userid: &str,
        external: &str,
        welcome_code: Option<&str>,
        event_at: Timestamp,
    ) -> Result<(), SyncError> {
        let store = self.store();
        let Some(added) = store.live_code_added(tenant, state, userid, external, event_at).await? else {
            tracing::debug!(state, "an add with a state no live code has");
            return Ok(());
        };
        let code = &added.code;
        if added.over_cap {
            tracing::warn!(code = %code.id, userid, "live code: an add landed on a member past the daily cap");
        }
        let client = self.client(tenant, app).await?;
        if !code.config.tag_ids.is_empty() {
            match client.mark_tag(userid, external, &code.config.tag_ids, &[]).await {
                Ok(()) => {}
                // A tag deleted in WeCom since the code was made: skipped, not retried forever.
                Err(WecomError::Api { code: 40068, .. }) => {
                    tracing::warn!(code = %code.id, "live code: a configured tag no longer exists in WeCom");
                }
                Err(e) => return Err(e.into()),
            }
        }
        // The customer's name as the projection just read it, for the welcome and the note.
        let name = store.wecom_contact_name(tenant, external).await?;
        // The welcome first: WeCom's code for it expires 20 s after the event.
        if store.live_code_welcome(tenant, code.id, userid, external, added.day).await?.is_none() {
            let outcome = match (welcome_code, &code.config.welcome) {
                (_, None) => "none".to_string(),
                (None, Some(_)) => "no_welcome_code".to_string(),
                (Some(wc), Some(text)) => {
                    let deadline = event_at.plus(WELCOME_WINDOW);
                    if store.now() >= deadline {
                        "expired".to_string()
                    } else {
                        let staff =
                            store.staff_by_wecom_userid(tenant, userid).await?.map(|s| s.name).unwrap_or_default();
                        let text = render_welcome(text, name.as_deref(), &staff);
                        loop {
                            match client.send_welcome_msg(wc, Some(&text), &[]).await {
                                Ok(()) => break "sent".to_string(),
                                // 41096: not ready yet; worth retrying until the code expires.
                                Err(WecomError::Api { code: 41096, .. }) if store.now() < deadline => {
                                    tokio::time::sleep(Duration::from_millis(500)).await;
                                }
                                Err(e) => {
                                    break format!(
                                        "failed: {}",
                                        e.code().map_or_else(|| e.to_string(), |c| c.to_string())
                                    )
                                }
                            }
                        }
                    }
                }
            };
            store.set_live_code_welcome(tenant, code.id, userid, external, added.day, &outcome).await?;
        }
        if added.counted {
            // The member hears of the new customer in WeCom (best effort: a missed note is
            // logged, not retried, so a retry of the event never notifies twice).
            let agent = store.wecom_app(tenant, app).await?.agent_id;
            let mut text =
                format!("新客户「{}」通过渠道活码「{}」添加了你。", name.as_deref().unwrap_or_default(), code.name);
            if added.over_cap {
                text.push_str("（今日接待已超上限）");
            }
            if let Err(e) = client.send_text(&agent, &[userid.to_string()], &text).await {
                tracing::warn!(error = %e, code = %code.id, userid, "live code: could not notify the member");
            }
        }
        Ok(())
    }
}

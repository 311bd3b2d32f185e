//! Follow-up reminders as WeCom app messages (scrm-rules C-33): when a follow-up's next
//! action falls due its member is messaged; a reminder still open 24 hours later escalates
//! to the tenant's managers (active owners, admins and operators with a WeCom account).
//!
//! Each message is claimed in the store before it is sent and released if WeCom refuses, so
//! a run that repeats never sends a reminder twice, and a failed send is tried again.

use siyu_core::TenantId;
use siyu_store::customers::reminders::{Due, Step};

use super::gateway::{Gateway, SyncError};

/// Reminders handled per run and step; the next run takes the rest.
const BATCH: i64 = 200;

/// What a run sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    pub reminded: u64,
    pub escalated: u64,
}

fn when(d: &Due, off: i8) -> String {
    d.next_at.display_local(off)
}

impl Gateway {
    /// Sends the tenant's due reminders and escalations through its first WeCom app.
    pub async fn send_follow_up_reminders(&self, tenant: TenantId) -> Result<Sent, SyncError> {
        let store = self.store();
        let Some(app) = store.list_wecom_apps(tenant).await?.into_iter().next() else { return Ok(Sent::default()) };
        let client = self.client(tenant, app.id).await?;
        let t = store.tenant(tenant).await?;
        let off = t.offset_hours();
        let now = store.now();
        let mut sent = Sent::default();
        for d in store.follow_ups_due(tenant, Step::Remind, now, BATCH).await? {
            let Some(to) = d.userid.clone() else { continue };
            if !store.claim_follow_up(tenant, d.id, Step::Remind, false).await? {
                continue;
            }
            let text = format!(
                "【跟进提醒】客户 {}（#{}）：{}\n计划时间 {}",
                d.customer_name,
                d.customer_num,
                d.content,
                when(&d, off)
            );
            match client.send_text(&app.agent_id, std::slice::from_ref(&to), &text).await {
                Ok(invalid) if invalid.is_empty() => sent.reminded += 1,
                Ok(_) => tracing::warn!(%tenant, userid = %to, "reminder: WeCom could not reach the member"),
                Err(e) => {
                    store.claim_follow_up(tenant, d.id, Step::Remind, true).await?;
                    return Err(e.into());
                }
            }
        }
        let managers = store.escalation_userids(tenant).await?;
        for d in store.follow_ups_due(tenant, Step::Escalate, now, BATCH).await? {
            let to: Vec<String> = managers.iter().filter(|m| Some(*m) != d.userid.as_ref()).cloned().collect();
            if to.is_empty() || !store.claim_follow_up(tenant, d.id, Step::Escalate, false).await? {
                continue;
            }
            let text = format!(
                "【跟进超时】{} 对客户 {}（#{}）的跟进已超过 24 小时未完成：{}\n计划时间 {}",
                d.staff_name.as_deref().unwrap_or("未指定员工"),
                d.customer_name,
                d.customer_num,
                d.content,
                when(&d, off)
            );
            if let Err(e) = client.send_text(&app.agent_id, &to, &text).await {
                store.claim_follow_up(tenant, d.id, Step::Escalate, true).await?;
                return Err(e.into());
            }
            sent.escalated += 1;
        }
        Ok(sent)
    }
}

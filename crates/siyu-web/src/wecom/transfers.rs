//! Customer transfers through WeCom (在职转接 / 离职继承, scrm-rules C-50..C-62): planning a
//! batch, sending it with `transfer_customer`, polling `transfer_result` until every item is
//! final, consuming `transfer_fail`, and planning departed members' customers on their own.
//!
//! The rules are `siyu_core::customers::transfer`; the records are the store's. This is the
//! part that talks to WeCom and decides when.

use siyu_core::auth::Actor;
use std::collections::BTreeMap;

use siyu_core::customers::group_transfer;
use siyu_core::customers::transfer::{self, reason, AutoMode, Kind, Status, Subject};
use siyu_core::validate::{Violation, Violations};
use siyu_core::{CustomerId, StaffId, TenantId, Timestamp, TransferId, WecomAppId};
use siyu_store::customers::group_transfers::GroupTransferItem;
use siyu_store::customers::transfers::{NewTransfer, Outcome, Transfer};
use siyu_store::StoreError;
use siyu_wecom::WecomError;

use super::gateway::{Gateway, SyncError};
use crate::error::ApiError;

/// A sending that has had no answer for this long is treated as failed (and retryable)
/// when WeCom has no record of it.
const SENDING_STALE_SECS: i64 = 600;

/// What an operator (or the departure watcher) asks for.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// The WeCom app to call; the tenant's first app when absent.
    pub app_id: Option<WecomAppId>,
    pub kind: Kind,
    /// The member's customers, or the customer groups they own.
    pub subject: Subject,
    pub handover: StaffId,
    /// Only these customers (else all of the handover member's).
    pub customers: Option<Vec<CustomerId>>,
    /// Only these groups, by chat id (else all the handover member owns).
    pub chats: Option<Vec<String>>,
    /// Receivers; empty means every active member siyu knows.
    pub receivers: Vec<StaffId>,
    pub message: Option<String>,
    pub origin: &'static str,
}

/// Why a gateway action (a transfer plan, a corp tag write) was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("invalid transfer request")]
    Invalid(Vec<Violation>),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        ActionError::Sync(SyncError::Store(e))
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Invalid(v) => ApiError::Validation(v),
            ActionError::Sync(s) => s.into(),
        }
    }
}

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> ActionError {
    ActionError::Invalid(vec![Violation { field: field.into(), code, message: message.into() }])
}

/// The errcode of a call WeCom refused as a whole, so nothing in it started; `None` when the
/// call may or may not have reached WeCom (its items stay `sending` for the poller).
fn refused_call(e: &WecomError) -> Option<i64> {
    match e {
        WecomError::Api { code, .. } => Some(*code),
        WecomError::Paused { .. } => Some(45009),
        _ => None,
    }
}

/// An automatic plan that places nobody (no active receiver) is not recorded: it would only
/// repeat every hour. An operator's plan is, so its exclusions can be read and re-routed.
fn placed_somewhere(req: &PlanRequest, assignments: &[transfer::Assignment]) -> Result<(), ActionError> {
    if req.origin == "auto" && assignments.iter().all(|a| a.takeover.is_err()) {
        return Err(invalid("receivers", "no_receiver", "no active member can receive them"));
    }
    Ok(())
}

impl Gateway {
    /// The app transfers go through: the one named, else the tenant's first.
    async fn transfer_app(&self, tenant: TenantId, app: Option<WecomAppId>) -> Result<WecomAppId, ActionError> {
        let apps = self.store().list_wecom_apps(tenant).await?;
        match app {
            Some(id) if apps.iter().any(|a| a.id == id) => Ok(id),
            Some(_) => Err(invalid("app_id", "unknown_reference", "no such WeCom app")),
            None => apps
                .first()
                .map(|a| a.id)
                .ok_or_else(|| invalid("app_id", "required", "connect a WeCom app before transferring customers")),
        }
    }

    /// Plans a batch: checks the members, picks the customers, runs the planner and records
    /// the result. Nothing is sent to WeCom yet.
    pub async fn plan_transfer(&self, actor: &Actor, req: &PlanRequest) -> Result<Transfer, ActionError> {
        let tenant = actor.tenant_id;
        let store = self.store();
        let mut v = Violations::new();
        let message = match transfer::message(req.message.as_deref().unwrap_or("")) {
            Ok(m) => m,
            Err(_) => {
                v.push("message", "too_long", format!("at most {} characters", transfer::MESSAGE_MAX_CHARS));
                None
            }
        };
        let handover = match store.staff(tenant, siyu_core::auth::DataScope::Tenant, req.handover).await {
            Ok(s) => Some(s),
            Err(StoreError::NotFound) => {
                v.push("handover_staff_id", "unknown_reference", "no such staff member");
                None
            }
            Err(e) => return Err(e.into()),
        };
        let handover_userid = match &handover {
            Some(s) if s.wecom_userid.is_none() => {
                v.push("handover_staff_id", "no_wecom", "this staff member has no WeCom account");
                None
            }
            Some(s) => {
                let departed = s.status.as_str() == "departed";
                if req.kind == Kind::Onjob && departed {
                    v.push("kind", "departed", "this member has left: use 离职继承 (resigned) instead");
                } else if req.kind == Kind::Resigned && !departed {
                    v.push("kind", "not_departed", "this member is still employed: use 在职转接 (onjob) instead");
                }
                s.wecom_userid.clone()
            }
            None => None,
        };
        let mut receivers = Vec::new();
        for id in &req.receivers {
            match store.staff(tenant, siyu_core::auth::DataScope::Tenant, *id).await {
                Ok(s) => match s.wecom_userid {
                    Some(u) if s.status.as_str() == "active" => receivers.push(u),
                    _ => v.push("receivers", "ineligible", format!("{} is not an active WeCom member", s.name)),
                },
                Err(StoreError::NotFound) => v.push("receivers", "unknown_reference", "no such staff member"),
                Err(e) => return Err(e.into()),
            }
        }
        let app = self.transfer_app(tenant, req.app_id).await;
        v.into_result().map_err(ActionError::Invalid)?;
        let (app, handover) = (app?, handover_userid.expect("checked above"));
        if req.receivers.is_empty() {
            receivers = self.all_active_userids(tenant).await?;
        }
        if req.subject == Subject::Groups {
            return self.plan_group_transfer(actor, req, app, &handover, &receivers).await;
        }
        // The customers: live relationships for 在职; WeCom's unassigned list for 离职.
        let mut externals = match req.kind {
            Kind::Onjob => store.live_externals_of(tenant, &handover).await?,
            Kind::Resigned => {
                let client = self.client(tenant, app).await?;
                client
                    .unassigned()
                    .await
                    .map_err(SyncError::from)?
                    .into_iter()
                    .filter(|u| u.handover_userid == handover)
                    .map(|u| u.external_userid)
                    .collect()
            }
        };
        if let Some(ids) = &req.customers {
            let mut wanted = Vec::new();
            for id in ids {
                wanted.extend(store.customer_external_ids(tenant, *id).await?);
            }
            externals.retain(|e| wanted.contains(e));
        }
        if externals.is_empty() {
            return Err(invalid(
                if req.customers.is_some() { "customer_ids" } else { "handover_staff_id" },
                "nothing_to_transfer",
                "this member has no customers to transfer",
            ));
        }
        let candidates = store.transfer_candidates(tenant, &handover, &externals).await?;
        let pool = store.transfer_receivers(tenant, &receivers).await?;
        let assignments = transfer::plan(&candidates, &pool);
        placed_somewhere(req, &assignments)?;
        let t = NewTransfer {
            app_id: app,
            kind: req.kind,
            subject: Subject::Customers,
            origin: req.origin,
            handover: &handover,
            message: message.as_deref(),
            assignments: &assignments,
        };
        Ok(store.create_transfer(actor, &t).await?)
    }

    /// The groups half of [`Gateway::plan_transfer`]: the handover member's live groups (as
    /// siyu last synced them), balanced over receivers by the groups they own, leaving out
    /// groups moved twice in 90 days (C-54).
    async fn plan_group_transfer(
        &self,
        actor: &Actor,
        req: &PlanRequest,
        app: WecomAppId,
        handover: &str,
        receivers: &[String],
    ) -> Result<Transfer, ActionError> {
        let (tenant, store) = (actor.tenant_id, self.store());
        let mut chats = store.groups_owned_by(tenant, handover).await?;
        if let Some(wanted) = &req.chats {
            chats.retain(|c| wanted.contains(c));
        }
        if chats.is_empty() {
            return Err(invalid(
                if req.chats.is_some() { "chat_ids" } else { "handover_staff_id" },
                "nothing_to_transfer",
                "this member owns no customer groups to transfer",
            ));
        }
        let candidates = store.group_transfer_candidates(tenant, handover, &chats).await?;
        let pool = store.group_transfer_receivers(tenant, receivers).await?;
        let assignments = transfer::plan(&candidates, &pool);
        placed_somewhere(req, &assignments)?;
        let t = NewTransfer {
            app_id: app,
            kind: req.kind,
            subject: Subject::Groups,
            origin: req.origin,
            handover,
            message: None,
            assignments: &assignments,
        };
        Ok(store.create_transfer(actor, &t).await?)
    }

    async fn all_active_userids(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        let staff = self.store().all_staff(tenant).await?;
        Ok(staff.into_iter().filter(|s| s.status.as_str() == "active").filter_map(|s| s.wecom_userid).collect())
    }

    /// Sends a batch's planned items to WeCom, at most 100 per call per member pair, and
    /// records each customer's answer. Safe to call twice: only planned items are claimed.
    pub async fn execute_transfer(&self, actor: &Actor, id: TransferId) -> Result<Transfer, SyncError> {
        let tenant = actor.tenant_id;
        let store = self.store();
        let t = store.transfer(tenant, id).await?;
        if t.subject == Subject::Groups {
            return self.execute_group_transfer(actor, &t).await;
        }
        let items = store.claim_transfer_items(actor, id).await?;
        if items.is_empty() {
            return Ok(t);
        }
        let client = self.client(tenant, t.app_id).await?;
        let message = match (&t.message, t.kind) {
            (Some(m), _) => Some(m.clone()),
            (None, Kind::Onjob) => store.transfer_settings(tenant).await?.message,
            (None, Kind::Resigned) => None,
        };
        let triples: Vec<(&str, &str, &str)> = items
            .iter()
            .filter_map(|i| {
                Some((i.handover_userid.as_str(), i.takeover_userid.as_deref()?, i.external_userid.as_str()))
            })
            .collect();
        let resigned = t.kind == Kind::Resigned;
        for call in transfer::calls(triples) {
            let answer = client
                .transfer_customer(resigned, &call.handover, &call.takeover, &call.externals, message.as_deref())
                .await;
            let now = store.now();
            for item in items.iter().filter(|i| {
                i.handover_userid == call.handover
                    && i.takeover_userid.as_deref() == Some(call.takeover.as_str())
                    && call.externals.contains(&i.external_userid)
            }) {
                let outcome = match &answer {
                    Ok(list) => match list.iter().find(|r| r.external_userid == item.external_userid) {
                        Some(r) => {
                            let (status, why) = transfer::after_send(r.errcode);
                            Outcome {
                                status,
                                reason: why,
                                errcode: Some(r.errcode),
                                expected_at: (status == Status::Waiting)
                                    .then(|| Timestamp(now.0 + transfer::TAKEOVER_SECS * 1_000_000)),
                            }
                        }
                        // WeCom did not mention it: the poller will find out from transfer_result.
                        None => continue,
                    },
                    Err(e) => match refused_call(e) {
                        Some(code) => Outcome {
                            status: Status::Failed,
                            reason: Some(reason::CALL_FAILED),
                            errcode: Some(code),
                            expected_at: None,
                        },
                        // The call may or may not have reached WeCom: stay `sending` for the poller.
                        None => continue,
                    },
                };
                store.record_transfer_sent(tenant, item.id, &outcome).await?;
            }
            if let Err(e) = &answer {
                tracing::warn!(%tenant, transfer = %id, error = %e, "transfer call failed");
            }
        }
        Ok(store.transfer(tenant, id).await?)
    }

    /// Asks WeCom about every open item (C-51, hourly and on demand) and applies the
    /// answers: a completed takeover makes the receiver the owner and marks the old
    /// relationship `transferred_out`. Returns how many items changed.
    pub async fn poll_transfers(&self, tenant: TenantId) -> Result<u64, SyncError> {
        let store = self.store();
        let mut changed = 0;
        for (app, kind, handover, takeover) in store.open_transfer_pairs(tenant).await? {
            let client = self.client(tenant, app).await?;
            let mut cursor = String::new();
            let mut reported = Vec::new();
            loop {
                let page = client.transfer_result(kind == Kind::Resigned, &handover, &takeover, &cursor).await?;
                for r in &page.customer {
                    reported.push(r.external_userid.clone());
                    let (status, why) = transfer::after_poll(r.status);
                    let o = Outcome {
                        status,
                        reason: why,
                        errcode: None,
                        expected_at: (status == Status::Waiting && r.takeover_time > 0)
                            .then(|| Timestamp::from_unix_secs(r.takeover_time)),
                    };
                    if let Some(item) =
                        store.apply_transfer_outcome(tenant, &r.external_userid, Some(&handover), &takeover, &o).await?
                    {
                        changed += 1;
                        self.after_outcome(tenant, app, &item.external_userid, &handover, item.status).await?;
                    }
                }
                if page.next_cursor.is_empty() {
                    break;
                }
                cursor = page.next_cursor;
            }
            changed += self.settle_lost_sends(tenant, &handover, &takeover, &reported).await?;
        }
        changed += self.settle_groups(tenant).await?;
        Ok(changed)
    }

    /// Sends a group batch's planned items: one call per receiver and at most 100 chats,
    /// within each member pair's daily limit (the rest wait for a later run). A chat WeCom
    /// does not list as failed has its new owner, which siyu re-reads at once.
    async fn execute_group_transfer(&self, actor: &Actor, t: &Transfer) -> Result<Transfer, SyncError> {
        let (tenant, store) = (actor.tenant_id, self.store());
        let items = store.claim_group_transfer_items(actor, t.id).await?;
        let mut by_takeover: BTreeMap<&str, Vec<&GroupTransferItem>> = BTreeMap::new();
        for i in &items {
            if let Some(to) = i.takeover_userid.as_deref() {
                by_takeover.entry(to).or_default().push(i);
            }
        }
        if by_takeover.is_empty() {
            return Ok(store.transfer(tenant, t.id).await?);
        }
        let client = self.client(tenant, t.app_id).await?;
        for (to, list) in by_takeover {
            let ids: Vec<String> = list.iter().map(|i| i.chat_id.clone()).collect();
            for call in group_transfer::calls(&ids) {
                let answer = client.transfer_group_chats(t.kind == Kind::Resigned, &call, to).await;
                for item in list.iter().filter(|i| call.contains(&i.chat_id)) {
                    let (status, why, code) = match &answer {
                        Ok(failed) => {
                            let code = failed.iter().find(|f| f.chat_id == item.chat_id).map(|f| f.errcode);
                            let (status, why) = group_transfer::after_send(code);
                            (status, why, code)
                        }
                        Err(e) => match refused_call(e) {
                            Some(code) => (Status::Failed, Some(reason::CALL_FAILED), Some(code)),
                            // The call may have reached WeCom: the poller reads the owner to find out.
                            None => continue,
                        },
                    };
                    let recorded = store.record_group_transfer(tenant, item.id, status, why, code).await?;
                    // A moved group has a new owner; a vanished one is marked dismissed.
                    if recorded && (status == Status::Done || why == Some(group_transfer::NOT_A_GROUP)) {
                        self.reread_group(tenant, t.app_id, &item.chat_id).await;
                    }
                }
                if let Err(e) = &answer {
                    tracing::warn!(%tenant, transfer = %t.id, error = %e, "group transfer call failed");
                }
            }
        }
        Ok(store.transfer(tenant, t.id).await?)
    }

    /// Re-reads a moved group; when WeCom cannot be asked now, hourly reconciliation will.
    async fn reread_group(&self, tenant: TenantId, app: WecomAppId, chat_id: &str) {
        if let Err(e) = self.refresh_group(tenant, app, chat_id, "transfer").await {
            tracing::warn!(%tenant, chat_id, error = %e, "moved group not re-read");
        }
    }

    /// Group sends whose answer was lost: the chat's owner in WeCom says whether the move
    /// happened. Then batches held back by the daily limit send what now fits.
    async fn settle_groups(&self, tenant: TenantId) -> Result<u64, SyncError> {
        let store = self.store();
        let stale = store.now().0 - SENDING_STALE_SECS * 1_000_000;
        let mut n = 0;
        for item in store.stale_group_sends(tenant, stale).await? {
            let t = store.transfer(tenant, item.transfer_id).await?;
            let client = self.client(tenant, t.app_id).await?;
            let (status, why) = match client.group_chat(&item.chat_id).await {
                Ok(g) if Some(g.owner.as_str()) == item.takeover_userid.as_deref() => (Status::Done, None),
                Ok(_) => (Status::Failed, Some(reason::CALL_FAILED)),
                Err(WecomError::Api { code: 90501, .. }) => (Status::Failed, Some(group_transfer::NOT_A_GROUP)),
                Err(e) => return Err(e.into()),
            };
            if store.record_group_transfer(tenant, item.id, status, why, None).await? {
                n += 1;
                if status == Status::Done {
                    self.reread_group(tenant, t.app_id, &item.chat_id).await;
                }
            }
        }
        for id in store.deferred_group_transfers(tenant).await? {
            let t = store.transfer(tenant, id).await?;
            let before = t.counts.get("planned").copied().unwrap_or(0);
            let after = self.execute_group_transfer(&Actor::system(tenant), &t).await?;
            n += (before - after.counts.get("planned").copied().unwrap_or(0)).max(0) as u64;
        }
        Ok(n)
    }

    /// Items still `sending` long after the call that WeCom has no record of never reached
    /// it: they fail, retryably.
    async fn settle_lost_sends(
        &self,
        tenant: TenantId,
        handover: &str,
        takeover: &str,
        reported: &[String],
    ) -> Result<u64, SyncError> {
        let store = self.store();
        let stale = store.now().0 - SENDING_STALE_SECS * 1_000_000;
        let mut n = 0;
        for item in store.sending_transfer_items(tenant, handover, takeover, stale).await? {
            if reported.contains(&item.external_userid) {
                continue;
            }
            let o =
                Outcome { status: Status::Failed, reason: Some(reason::CALL_FAILED), errcode: None, expected_at: None };
            n += u64::from(store.record_transfer_sent(tenant, item.id, &o).await?);
        }
        Ok(n)
    }

    /// Re-reads the contact after a final state, so relationships and the person's owner
    /// follow WeCom.
    async fn after_outcome(
        &self,
        tenant: TenantId,
        app: WecomAppId,
        external: &str,
        handover: &str,
        status: Status,
    ) -> Result<(), SyncError> {
        match status {
            Status::Done => {
                self.store()
                    .set_wecom_relationship_status(
                        tenant,
                        external,
                        handover,
                        "transferred_out",
                        "transfer",
                        "transfer",
                    )
                    .await?;
            }
            Status::Failed => {}
            _ => return Ok(()),
        }
        self.refresh_contact(tenant, app, external, None, "transfer").await?;
        self.store().project_wecom_contact(tenant, external).await?;
        Ok(())
    }

    /// `transfer_fail` (C-51): the customer refused, or the receiver is at its limit.
    pub(super) async fn on_transfer_fail(
        &self,
        tenant: TenantId,
        takeover: &str,
        external: &str,
        fail_reason: &str,
    ) -> Result<(), SyncError> {
        let Some((status, why)) = transfer::after_fail_event(fail_reason) else { return Ok(()) };
        let o = Outcome { status, reason: Some(why), errcode: None, expected_at: None };
        self.store().apply_transfer_outcome(tenant, external, None, takeover, &o).await?;
        Ok(())
    }

    /// Departed members' customers (C-60): reads WeCom's unassigned list and, unless the
    /// tenant turned it off, plans a 离职继承 batch per departed member who has no open
    /// one — executing it too in `execute` mode. Returns the batches planned.
    pub async fn plan_departures(&self, tenant: TenantId, app: WecomAppId) -> Result<Vec<TransferId>, SyncError> {
        let settings = self.store().transfer_settings(tenant).await?;
        if settings.auto_mode == AutoMode::Off {
            return Ok(vec![]);
        }
        let client = self.client(tenant, app).await?;
        let mut handovers: Vec<String> = client.unassigned().await?.into_iter().map(|u| u.handover_userid).collect();
        handovers.sort();
        handovers.dedup();
        let actor = Actor::system(tenant);
        let mut planned = Vec::new();
        for h in handovers {
            if self.store().has_open_transfer(tenant, &h).await? {
                continue;
            }
            let Some(staff) = self.store().staff_by_wecom_userid(tenant, &h).await? else { continue };
            let req = Self::departure(app, Subject::Customers, staff.id);
            planned.extend(self.plan_departure(&actor, &req, settings.auto_mode).await?);
        }
        // Groups owned by departed members move with groupchat/transfer (C-62), planned once.
        for staff in self.store().all_staff(tenant).await? {
            let Some(h) = staff.wecom_userid.as_deref() else { continue };
            if staff.status.as_str() != "departed" {
                continue;
            }
            let planned_before = self.store().groups_planned_on_departure(tenant, h).await?;
            let mut chats = self.store().groups_owned_by(tenant, h).await?;
            chats.retain(|c| !planned_before.contains(c));
            if chats.is_empty() {
                continue;
            }
            let req = PlanRequest { chats: Some(chats), ..Self::departure(app, Subject::Groups, staff.id) };
            planned.extend(self.plan_departure(&actor, &req, settings.auto_mode).await?);
        }
        Ok(planned)
    }

    fn departure(app: WecomAppId, subject: Subject, handover: StaffId) -> PlanRequest {
        PlanRequest {
            app_id: Some(app),
            kind: Kind::Resigned,
            subject,
            handover,
            customers: None,
            chats: None,
            receivers: vec![],
            message: None,
            origin: "auto",
        }
    }

    async fn plan_departure(
        &self,
        actor: &Actor,
        req: &PlanRequest,
        mode: AutoMode,
    ) -> Result<Option<TransferId>, SyncError> {
        match self.plan_transfer(actor, req).await {
            Ok(t) => {
                if mode == AutoMode::Execute {
                    self.execute_transfer(actor, t.id).await?;
                }
                Ok(Some(t.id))
            }
            // A member siyu still sees as active, or nobody to receive: nothing to plan yet.
            Err(ActionError::Invalid(v)) => {
                tracing::info!(tenant = %actor.tenant_id, subject = req.subject.as_str(), problems = ?v,
                    "departed member's transfer not planned");
                Ok(None)
            }
            Err(ActionError::Sync(e)) => Err(e),
        }
    }
}

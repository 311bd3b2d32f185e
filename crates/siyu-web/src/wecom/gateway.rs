//! One place that knows a tenant's WeCom apps: it hands out API clients (one per app, so the
//! access_token cache is per secret, as WeCom requires), processes inbox rows into domain
//! events, and runs the setup checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::json;

use siyu_core::auth::Actor;
use siyu_core::org::StaffInput;
use siyu_core::{InboxId, TenantId, Timestamp, WecomAppId};
use siyu_store::wecom::InboxStatus;
use siyu_store::wecom_sync::{ContactRec, CorpTagRec, GroupRec, RelationshipRec};
use siyu_store::{Store, StoreError};
use siyu_wecom::errcode::Action;
use siyu_wecom::events::{ChatChange, ContactChange, Event};
use siyu_wecom::{Callback, Client, ClientConfig, WecomError};

/// Failures while syncing: the store, or WeCom.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Wecom(#[from] WecomError),
    /// An earlier callback about the same entity has not been processed yet.
    #[error("waiting for an earlier event about {0}")]
    OutOfOrder(String),
}

/// Job kind of the scheduled reconciliation of one app.
pub const RECONCILE_JOB: &str = "wecom.reconcile";

/// API clients by app, shared by every clone of the gateway.
type Clients = Arc<Mutex<HashMap<(TenantId, WecomAppId), Arc<Client>>>>;

#[derive(Clone)]
pub struct Gateway {
    store: Store,
    clients: Clients,
}

/// One item of the setup checklist (scrm-rules K-1..K-6).
#[derive(Clone, Debug, Serialize)]
pub struct CheckItem {
    pub key: &'static str,
    /// `ok`, `failed` or `pending` (not yet verifiable, e.g. no callback has arrived).
    pub status: &'static str,
    pub message: String,
}

impl Gateway {
    pub fn new(store: Store) -> Gateway {
        Gateway { store, clients: Default::default() }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The API client of an app, created on first use and reused so its token cache holds.
    pub async fn client(&self, tenant: TenantId, app: WecomAppId) -> Result<Arc<Client>, StoreError> {
        if let Some(c) = self.clients.lock().unwrap_or_else(|e| e.into_inner()).get(&(tenant, app)) {
            return Ok(c.clone());
        }
        let cred = self.store.wecom_credentials(tenant, app).await?;
        let client =
            Arc::new(Client::new(ClientConfig::new(&cred.base_url, &cred.corp_id, &cred.secret), self.store.clock()));
        Ok(self.clients.lock().unwrap_or_else(|e| e.into_inner()).entry((tenant, app)).or_insert(client).clone())
    }

    /// Forgets an app's client after its settings changed.
    pub fn forget(&self, tenant: TenantId, app: WecomAppId) {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).remove(&(tenant, app));
    }

    /// Turns an inbox row into its typed domain event, after applying it to siyu's copy of
    /// WeCom's state. Idempotent: a processed row, or a second delivery of the job, changes
    /// nothing. A payload that cannot be parsed will not parse on retry either, so it goes
    /// straight to the dead letters with the reason; a WeCom or store failure is returned so
    /// the job retries with backoff.
    pub async fn process_inbox(&self, tenant: TenantId, id: InboxId) -> Result<(), SyncError> {
        let item = self.store.inbox_item(tenant, id).await?;
        if item.status == InboxStatus::Processed {
            return Ok(());
        }
        if self.store.earlier_unprocessed(tenant, &item).await? {
            return Err(SyncError::OutOfOrder(item.entity));
        }
        match Callback::parse(&item.payload) {
            Ok(cb) => {
                self.apply(tenant, item.app_id, &cb.event, Timestamp::from_unix_secs(cb.create_time)).await?;
                let payload = serde_json::to_value(&cb.event).unwrap_or_else(|_| json!({}));
                let kind = event_kind(&cb);
                self.store
                    .record_wecom_event(tenant, &item, &kind, &payload, Timestamp::from_unix_secs(cb.create_time))
                    .await?;
                Ok(())
            }
            Err(e) => Ok(self.store.fail_inbox_item(tenant, id, &format!("cannot parse the event: {e}"), true).await?),
        }
    }

    /// Applies an event to siyu's copy of WeCom state. Events are triggers; the API is the
    /// truth (rule R-2): whatever can be re-read is re-read and upserted, never patched blind.
    async fn apply(&self, tenant: TenantId, app: WecomAppId, ev: &Event, at: Timestamp) -> Result<(), SyncError> {
        match ev {
            Event::ExternalContact { change, user_id, external_user_id, source, state, fail_reason, welcome_code } => {
                match change {
                    ContactChange::Del => {
                        let (status, reason) = if source.as_deref() == Some("DELETE_BY_TRANSFER") {
                            ("transferred_out", "transfer")
                        } else {
                            ("deleted_by_staff", "event")
                        };
                        self.store
                            .set_wecom_relationship_status(tenant, external_user_id, user_id, status, reason, "event")
                            .await?;
                        self.store.project_wecom_contact(tenant, external_user_id).await?;
                        // A member deleting a customer is a staff-risk signal; a transfer is not (C-41).
                        if status == "deleted_by_staff" {
                            self.store.record_loss(tenant, external_user_id, user_id, status, "event").await?;
                        }
                    }
                    ContactChange::DelFollowUser => {
                        self.store
                            .set_wecom_relationship_status(
                                tenant,
                                external_user_id,
                                user_id,
                                "deleted_by_customer",
                                "event",
                                "event",
                            )
                            .await?;
                        self.store.project_wecom_contact(tenant, external_user_id).await?;
                        self.store
                            .record_loss(tenant, external_user_id, user_id, "deleted_by_customer", "event")
                            .await?;
                    }
                    ContactChange::TransferFail => {
                        let why = fail_reason.as_deref().unwrap_or_default();
                        self.on_transfer_fail(tenant, user_id, external_user_id, why).await?;
                    }
                    ContactChange::Add | ContactChange::AddHalf | ContactChange::Edit => {
                        let half = (*change == ContactChange::AddHalf).then_some(user_id.as_str());
                        let found = self.refresh_contact(tenant, app, external_user_id, half, "event").await?;
                        if found.is_none() && *change != ContactChange::Edit {
                            // Gone by the time we asked WeCom: keep the fact that it existed, so
                            // the deletion that follows has a relationship to mark.
                            let rec = RelationshipRec {
                                external_userid: external_user_id.clone(),
                                userid: user_id.clone(),
                                remark: String::new(),
                                description: String::new(),
                                add_time: self.store.now().unix_secs(),
                                add_way: 0,
                                state: state.clone(),
                                status: "removed".into(),
                                corp_tag_ids: vec![],
                                remark_mobiles: vec![],
                            };
                            self.store
                                .upsert_wecom_relationship(tenant, &rec, "event", Some("gone when re-read"))
                                .await?;
                        }
                        self.store.project_wecom_contact(tenant, external_user_id).await?;
                        if let (ContactChange::Add | ContactChange::AddHalf, Some(s)) = (change, state) {
                            let wc = welcome_code.as_deref();
                            self.on_live_code_add(tenant, app, s, user_id, external_user_id, wc, at).await?;
                        }
                    }
                }
            }
            Event::ExternalChat { change: ChatChange::Dismiss, chat_id, .. } => {
                self.store.dismiss_wecom_group(tenant, chat_id).await?;
            }
            Event::ExternalChat { chat_id, .. } => {
                self.refresh_group(tenant, app, chat_id, "event").await?;
            }
            Event::ExternalTag { .. } => {
                self.sync_tags(tenant, app).await?;
            }
            Event::Contact { .. } => {
                let (_, changed) = self.sync_staff(tenant, app).await?;
                // A member may have left: their customers wait in WeCom's unassigned list (C-60).
                if changed > 0 {
                    self.plan_departures(tenant, app).await?;
                }
            }
            Event::Other { .. } => {}
        }
        Ok(())
    }

    /// Re-reads one customer and upserts the contact and every relationship WeCom reports;
    /// `half` names a member whose relationship is still half-added. Returns the drift, or
    /// `None` when WeCom no longer has the contact or any relationship with it.
    pub async fn refresh_contact(
        &self,
        tenant: TenantId,
        app: WecomAppId,
        external: &str,
        half: Option<&str>,
        source: &str,
    ) -> Result<Option<i64>, SyncError> {
        let client = self.client(tenant, app).await?;
        let detail = match client.contact(external).await {
            Ok(d) => d,
            // No relationship left at all (84061) or no such contact (40096): nothing to upsert.
            Err(WecomError::Api { code: 84061 | 40096, .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut drift =
            i64::from(self.store.upsert_wecom_contact(tenant, &contact_rec(&detail.external_contact), source).await?);
        for f in &detail.follow_user {
            let rec = RelationshipRec {
                external_userid: external.to_string(),
                userid: f.userid.clone(),
                remark: f.remark.clone(),
                description: f.description.clone(),
                add_time: f.createtime,
                add_way: f.add_way,
                state: f.state.clone(),
                status: if half == Some(f.userid.as_str()) { "half".into() } else { "active".into() },
                corp_tag_ids: f.tags.iter().filter(|t| t.kind == 1).filter_map(|t| t.tag_id.clone()).collect(),
                remark_mobiles: f.remark_mobiles.clone(),
            };
            drift += i64::from(self.store.upsert_wecom_relationship(tenant, &rec, source, Some(source)).await?);
        }
        // A live relationship WeCom no longer reports is gone, whichever order events came in.
        let listed: Vec<&str> = detail.follow_user.iter().map(|f| f.userid.as_str()).collect();
        let ours = self
            .store
            .list_wecom_relationships(
                tenant,
                &siyu_store::wecom_sync::RelationshipFilter {
                    external_userid: Some(external.into()),
                    ..Default::default()
                },
                &siyu_core::paging::PageRequest { limit: 200, before: None },
            )
            .await?;
        for r in ours
            .items
            .iter()
            .filter(|r| matches!(r.rec.status.as_str(), "active" | "half") && !listed.contains(&r.rec.userid.as_str()))
        {
            drift += i64::from(
                self.store
                    .set_wecom_relationship_status(tenant, external, &r.rec.userid, "removed", source, source)
                    .await?,
            );
        }
        Ok(Some(drift))
    }

    pub(super) async fn refresh_group(
        &self,
        tenant: TenantId,
        app: WecomAppId,
        chat_id: &str,
        source: &str,
    ) -> Result<bool, SyncError> {
        let client = self.client(tenant, app).await?;
        let g = match client.group_chat(chat_id).await {
            Ok(g) => g,
            Err(WecomError::Api { code: 90501, .. }) => {
                return Ok(self.store.dismiss_wecom_group(tenant, chat_id).await?)
            }
            Err(e) => return Err(e.into()),
        };
        let rec = GroupRec {
            chat_id: g.chat_id.clone(),
            name: g.name.clone(),
            owner: g.owner.clone(),
            member_count: g.member_list.len() as i64,
            member_version: g.member_version.clone(),
            created_at: g.create_time,
        };
        Ok(self.store.upsert_wecom_group(tenant, &rec, source).await?)
    }

    /// Members of every visible department into siyu's staff, matched by WeCom userid: new
    /// members become staff, resigned ones (status 5) become departed. Returns (members
    /// seen, staff changed).
    pub async fn sync_staff(&self, tenant: TenantId, app: WecomAppId) -> Result<(i64, i64), SyncError> {
        let members = self.directory(tenant, app).await?;
        self.sync_staff_from(tenant, &members).await
    }

    /// Every member of every visible department, once each.
    async fn directory(&self, tenant: TenantId, app: WecomAppId) -> Result<Vec<siyu_wecom::api::Member>, SyncError> {
        let client = self.client(tenant, app).await?;
        Ok(all_members(&client).await?)
    }

    async fn sync_staff_from(
        &self,
        tenant: TenantId,
        members: &[siyu_wecom::api::Member],
    ) -> Result<(i64, i64), SyncError> {
        let actor = Actor::system(tenant);
        let mut drift = 0;
        for m in members {
            let status = if m.status == 5 { "departed" } else { "active" };
            let invalid = |v: Vec<siyu_core::validate::Violation>| {
                StoreError::Conflict(format!("WeCom member {}: {v:?}", m.userid))
            };
            match self.store.staff_by_wecom_userid(tenant, &m.userid).await? {
                None if status == "active" => {
                    let input = StaffInput::validate(&m.name, Some(&m.userid), None, None, None, Some(status))
                        .map_err(invalid)?;
                    self.store.create_staff(&actor, &input).await?;
                    drift += 1;
                }
                Some(s) if s.status.as_str() != status || s.name != m.name => {
                    let input = StaffInput::validate(
                        &m.name,
                        s.wecom_userid.as_deref(),
                        s.mobile.as_deref(),
                        s.store_id,
                        s.title.as_deref(),
                        Some(status),
                    )
                    .map_err(invalid)?;
                    self.store.update_staff(&actor, s.id, &input).await?;
                    drift += 1;
                }
                _ => {}
            }
        }
        Ok((members.len() as i64, drift))
    }

    /// Re-reads every corp tag from WeCom and mirrors them into siyu's tags.
    pub(crate) async fn sync_tags(&self, tenant: TenantId, app: WecomAppId) -> Result<(i64, i64), SyncError> {
        let client = self.client(tenant, app).await?;
        let groups = client.corp_tags(&[], &[]).await?;
        let tags: Vec<CorpTagRec> = groups
            .iter()
            .flat_map(|g| {
                g.tag.iter().filter(|t| !t.deleted).map(move |t| CorpTagRec {
                    id: t.id.clone(),
                    group_id: g.group_id.clone(),
                    group_name: g.group_name.clone(),
                    name: t.name.clone(),
                    sort_order: t.order,
                })
            })
            .collect();
        let drift = self.store.sync_wecom_corp_tags(tenant, &tags).await?;
        // siyu's tag list mirrors them, so segments and the console can use corp tags.
        self.store.mirror_corp_tags(tenant).await?;
        Ok((tags.len() as i64, drift))
    }

    /// The full reconciliation pass (scrm-rules S-7): staff, relationships, corp tags and
    /// groups are read from WeCom's list APIs and siyu's copy is repaired, so a lost callback
    /// leaves data wrong for at most one period. Each entity's outcome is recorded.
    pub async fn reconcile(&self, tenant: TenantId, app: WecomAppId) -> Result<(), SyncError> {
        let tags = self.sync_tags(tenant, app).await;
        self.record(tenant, app, "corp_tags", &tags).await?;
        // The directory is read once and serves the staff, relationship and group passes: on a
        // large corp each read is many calls against WeCom's rate limits.
        let members = match self.directory(tenant, app).await {
            Ok(m) => m,
            Err(e) => {
                for entity in ["staff", "relationships", "groups"] {
                    self.store.record_wecom_sync(tenant, app, entity, 0, 0, Some(&e.to_string())).await?;
                }
                return Err(e);
            }
        };
        let active: Vec<String> = members.iter().filter(|m| m.status != 5).map(|m| m.userid.clone()).collect();
        let staff = self.sync_staff_from(tenant, &members).await;
        self.record(tenant, app, "staff", &staff).await?;
        let rel = self.reconcile_relationships(tenant, app, &active).await;
        self.record(tenant, app, "relationships", &rel).await?;
        // Every person's owner, channels, corp tags and stage follow the repaired copy.
        if rel.is_ok() {
            self.store.project_all_wecom_contacts(tenant).await?;
        }
        let groups = self.reconcile_groups(tenant, app, &active).await;
        self.record(tenant, app, "groups", &groups).await?;
        // Transfers are polled hourly until final (C-51); departures are planned (C-60).
        let transfers = match self.poll_transfers(tenant).await {
            Ok(n) => self.plan_departures(tenant, app).await.map(|p| (n as i64, p.len() as i64)),
            Err(e) => Err(e),
        };
        self.record(tenant, app, "transfers", &transfers).await?;
        for r in [tags, staff, rel, groups, transfers] {
            r?;
        }
        Ok(())
    }

    async fn record(
        &self,
        tenant: TenantId,
        app: WecomAppId,
        entity: &str,
        r: &Result<(i64, i64), SyncError>,
    ) -> Result<(), StoreError> {
        match r {
            Ok((seen, drift)) => self.store.record_wecom_sync(tenant, app, entity, *seen, *drift, None).await,
            Err(e) => self.store.record_wecom_sync(tenant, app, entity, 0, 0, Some(&e.to_string())).await,
        }
    }

    async fn reconcile_relationships(
        &self,
        tenant: TenantId,
        app: WecomAppId,
        users: &[String],
    ) -> Result<(i64, i64), SyncError> {
        let client = self.client(tenant, app).await?;
        let mut seen = std::collections::HashSet::new();
        let mut drift = 0;
        for batch in users.chunks(100) {
            let mut cursor = String::new();
            loop {
                let page = client.contacts_by_users(batch, &cursor, 100).await?;
                for item in &page.external_contact_list {
                    let (c, f) = (&item.external_contact, &item.follow_info);
                    drift += i64::from(self.store.upsert_wecom_contact(tenant, &contact_rec(c), "reconcile").await?);
                    let rec = RelationshipRec {
                        external_userid: c.external_userid.clone(),
                        userid: f.userid.clone(),
                        remark: f.remark.clone(),
                        description: f.description.clone(),
                        add_time: f.createtime,
                        add_way: f.add_way,
                        state: f.state.clone(),
                        status: "active".into(),
                        corp_tag_ids: f.tag_id.clone(),
                        remark_mobiles: f.remark_mobiles.clone(),
                    };
                    drift += i64::from(
                        self.store.upsert_wecom_relationship(tenant, &rec, "reconcile", Some("reconcile")).await?,
                    );
                    seen.insert((c.external_userid.clone(), f.userid.clone()));
                }
                if page.next_cursor.is_empty() {
                    break;
                }
                cursor = page.next_cursor;
            }
        }
        // Relationships siyu holds as live that WeCom no longer lists are gone (C-42).
        for r in self.store.wecom_relationships_of(tenant, users).await? {
            let live = matches!(r.rec.status.as_str(), "active" | "half");
            if live && !seen.contains(&(r.rec.external_userid.clone(), r.rec.userid.clone())) {
                drift += i64::from(
                    self.store
                        .set_wecom_relationship_status(
                            tenant,
                            &r.rec.external_userid,
                            &r.rec.userid,
                            "removed",
                            "reconcile",
                            "reconcile",
                        )
                        .await?,
                );
            }
        }
        Ok((seen.len() as i64, drift))
    }

    async fn reconcile_groups(
        &self,
        tenant: TenantId,
        app: WecomAppId,
        users: &[String],
    ) -> Result<(i64, i64), SyncError> {
        let client = self.client(tenant, app).await?;
        let (mut seen, mut drift) = (0, 0);
        // Listing by owner batches keeps within groupchat/list's visibility limit (81017).
        for batch in users.chunks(100) {
            let mut cursor = String::new();
            loop {
                let page = client.group_chats(batch, &cursor, 1000).await?;
                for c in &page.group_chat_list {
                    seen += 1;
                    drift += i64::from(self.refresh_group(tenant, app, &c.chat_id, "reconcile").await?);
                }
                if page.next_cursor.is_empty() {
                    break;
                }
                cursor = page.next_cursor;
            }
        }
        Ok((seen, drift))
    }

    /// Schedules a reconciliation of `app` at the top of the hour after `after` (or now with
    /// `now = true`); the hour in the dedupe key makes any number of callers schedule it once.
    pub async fn schedule_reconcile(
        &self,
        tenant: TenantId,
        app: WecomAppId,
        now: bool,
    ) -> Result<siyu_core::JobId, StoreError> {
        let t = self.store.now();
        let (at, key) = if now {
            // Manual runs dedupe per minute, so a double click runs once.
            (t, format!("{RECONCILE_JOB}:{app}:now:{}", t.unix_secs() / 60))
        } else {
            let hour = t.unix_secs() / 3600 + 1;
            (Timestamp::from_unix_secs(hour * 3600), format!("{RECONCILE_JOB}:{app}:{hour}"))
        };
        self.store
            .enqueue(
                siyu_store::jobs::NewJob::new(RECONCILE_JOB, json!({"app_id": app.0}))
                    .tenant(tenant)
                    .at(at)
                    .dedupe(key),
            )
            .await
    }

    /// Runs the connection checklist against the app's API and records the result.
    pub async fn check(&self, tenant: TenantId, app_id: WecomAppId) -> Result<Vec<CheckItem>, StoreError> {
        let app = self.store.wecom_app(tenant, app_id).await?;
        self.forget(tenant, app_id);
        let client = self.client(tenant, app_id).await?;
        let mut items =
            vec![CheckItem { key: "corp_id", status: "ok", message: format!("CorpID {} is well-formed", app.corp_id) }];
        let token = client.access_token().await;
        items.push(match &token {
            Ok(_) => CheckItem {
                key: "secret",
                status: "ok",
                message: "the app Secret works: an access_token was issued".into(),
            },
            Err(e) => failed("secret", e),
        });
        if token.is_ok() {
            items.push(match client.departments().await {
                Ok(d) => CheckItem {
                    key: "visibility",
                    status: "ok",
                    message: format!("the app sees {} department(s)", d.len()),
                },
                Err(e) => failed("visibility", &e),
            });
            items.push(match client.corp_tags(&[], &[]).await {
                Ok(_) => CheckItem {
                    key: "customer_contact",
                    status: "ok",
                    message: "the app may call customer contact (客户联系)".into(),
                },
                Err(e) => failed("customer_contact", &e),
            });
        }
        items.push(match app.callback_verified_at {
            Some(_) => CheckItem { key: "callback", status: "ok", message: "WeCom verified the callback URL".into() },
            None => CheckItem {
                key: "callback",
                status: "pending",
                message: "the callback URL has not been verified yet: save the URL, Token and EncodingAESKey in WeCom's admin console".into(),
            },
        });
        let day_ago = self.store.now().minus(std::time::Duration::from_secs(86_400));
        items.push(match app.last_event_at {
            Some(t) if t > day_ago => {
                CheckItem { key: "receiving", status: "ok", message: "callbacks arrived in the last 24 hours".into() }
            }
            _ => CheckItem { key: "receiving", status: "pending", message: "no callback in the last 24 hours".into() },
        });
        self.store.record_wecom_check(tenant, app_id, &serde_json::to_value(&items).unwrap_or_default()).await?;
        Ok(items)
    }
}

/// Every member of every visible department, once each.
async fn all_members(client: &Client) -> Result<Vec<siyu_wecom::api::Member>, WecomError> {
    let mut out: Vec<siyu_wecom::api::Member> = Vec::new();
    for d in client.departments().await? {
        for m in client.members(d.id).await? {
            if !out.iter().any(|x| x.userid == m.userid) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

fn contact_rec(c: &siyu_wecom::api::ExternalContact) -> ContactRec {
    ContactRec {
        external_userid: c.external_userid.clone(),
        name: c.name.clone(),
        avatar: Some(c.avatar.clone()).filter(|a| !a.is_empty()),
        kind: c.kind,
        gender: c.gender,
        unionid: c.unionid.clone(),
        corp_name: c.corp_name.clone(),
    }
}

fn failed(key: &'static str, e: &WecomError) -> CheckItem {
    let message = match e {
        WecomError::Api { code, meaning, action, .. } => {
            let fix = if *action == Action::Configuration { " — fix this in WeCom's admin console" } else { "" };
            format!("errcode {code}: {meaning}{fix}")
        }
        other => other.to_string(),
    };
    CheckItem { key, status: "failed", message }
}

/// `change_external_contact.add`, `change_external_chat.update`, …
pub fn event_kind(cb: &Callback) -> String {
    use siyu_wecom::events::Event;
    match &cb.event {
        Event::ExternalContact { change, .. } => format!(
            "change_external_contact.{}",
            serde_json::to_value(change).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
        ),
        Event::ExternalChat { change, .. } => format!(
            "change_external_chat.{}",
            serde_json::to_value(change).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
        ),
        Event::ExternalTag { change, .. } => format!("change_external_tag.{change}"),
        Event::Contact { change, .. } => format!("change_contact.{change}"),
        Event::Other { event, change } => format!("{event}.{change}"),
    }
}

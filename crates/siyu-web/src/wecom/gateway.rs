//! One place that knows a tenant's WeCom apps: it hands out API clients (one per app, so the
//! access_token cache is per secret, as WeCom requires), processes inbox rows into domain
//! events, and runs the setup checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::json;

use siyu_core::{InboxId, TenantId, Timestamp, WecomAppId};
use siyu_store::wecom::InboxStatus;
use siyu_store::{Store, StoreError};
use siyu_wecom::errcode::Action;
use siyu_wecom::{Callback, Client, ClientConfig, WecomError};

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

    /// Turns an inbox row into its typed domain event. Idempotent: a processed row, or a second
    /// delivery of the job, records nothing new. A payload that cannot be parsed will not parse
    /// on retry either, so it goes straight to the dead letters with the reason.
    pub async fn process_inbox(&self, tenant: TenantId, id: InboxId) -> Result<(), StoreError> {
        let item = self.store.inbox_item(tenant, id).await?;
        if item.status == InboxStatus::Processed {
            return Ok(());
        }
        match Callback::parse(&item.payload) {
            Ok(cb) => {
                let payload = serde_json::to_value(&cb.event).unwrap_or_else(|_| json!({}));
                let kind = event_kind(&cb);
                self.store
                    .record_wecom_event(tenant, &item, &kind, &payload, Timestamp::from_unix_secs(cb.create_time))
                    .await?;
                Ok(())
            }
            Err(e) => self.store.fail_inbox_item(tenant, id, &format!("cannot parse the event: {e}"), true).await,
        }
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

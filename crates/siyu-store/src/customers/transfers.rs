//! Customer transfers (在职转接 / 离职继承): batches, their items' WeCom state, and the facts
//! the planner needs (recent transfers per customer, receivers' loads and stores).
//!
//! The rules — who goes where, what WeCom's answers mean — are in
//! `siyu_core::customers::transfer`; the gateway calls WeCom. This module only records.
//! An item moves planned → sending → waiting → final; `sending` is written before WeCom is
//! called, so a crash between the call and its answer leaves a trace the poller repairs
//! (WeCom's `transfer_result` knows whether the call landed) instead of sending twice.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::customers::transfer::{self, reason, Assignment, AutoMode, Candidate, Kind, Receiver, Status, Subject};
use siyu_core::paging::{Page, PageRequest};
use siyu_core::{CustomerId, TenantId, Timestamp, TransferId, TransferItemId, WecomAppId};

use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

/// A batch: one handover member's customers on their way to receivers.
#[derive(Clone, Debug, Serialize)]
pub struct Transfer {
    pub id: TransferId,
    pub app_id: WecomAppId,
    pub kind: Kind,
    /// Customers (items in `transfer_items`) or groups (`group_transfer_items`).
    pub subject: Subject,
    /// `manual` (an operator planned it) or `auto` (planned when the member left).
    pub origin: String,
    pub handover_userid: String,
    pub handover_name: Option<String>,
    pub message: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub executed_at: Option<Timestamp>,
    /// Items by status.
    pub counts: BTreeMap<String, i64>,
}

/// One customer's transfer.
#[derive(Clone, Debug, Serialize)]
pub struct TransferItem {
    pub id: TransferItemId,
    pub transfer_id: TransferId,
    pub external_userid: String,
    pub customer_id: Option<CustomerId>,
    pub customer_name: Option<String>,
    pub handover_userid: String,
    pub takeover_userid: Option<String>,
    pub takeover_name: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
    pub errcode: Option<i64>,
    pub sent_at: Option<Timestamp>,
    pub expected_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub rerouted_to: Option<TransferItemId>,
}

/// What happens when a member leaves, and the default message for in-service transfers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransferSettings {
    pub auto_mode: AutoMode,
    pub message: Option<String>,
}

/// A batch to record.
pub struct NewTransfer<'a> {
    pub app_id: WecomAppId,
    pub kind: Kind,
    pub subject: Subject,
    pub origin: &'a str,
    pub handover: &'a str,
    pub message: Option<&'a str>,
    pub assignments: &'a [Assignment],
}

/// An open item's new state, from WeCom.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    pub reason: Option<&'static str>,
    pub errcode: Option<i64>,
    pub expected_at: Option<Timestamp>,
}

type BatchRow = (Uuid, Uuid, String, String, String, Option<String>, Option<String>, String, i64, Option<i64>, String);
const BATCH_COLS: &str = "t.id, t.app_id, t.kind, t.origin, t.handover_userid, s.name, t.message, t.created_by, \
     t.created_at, t.executed_at, t.subject";
const BATCH_FROM: &str =
    "transfers t LEFT JOIN staff s ON s.tenant_id = t.tenant_id AND s.wecom_userid = t.handover_userid";

type ItemRow = (
    Uuid,
    Uuid,
    String,
    Option<Uuid>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<Uuid>,
);
const ITEM_SELECT: &str = "SELECT i.id, i.transfer_id, i.external_userid, i.customer_id, c.name, i.handover_userid, \
     i.takeover_userid, s.name, i.status, i.reason, i.errcode, i.sent_at, i.expected_at, i.finished_at, i.rerouted_to \
     FROM transfer_items i \
     LEFT JOIN customers c ON c.tenant_id = i.tenant_id AND c.id = i.customer_id \
     LEFT JOIN staff s ON s.tenant_id = i.tenant_id AND s.wecom_userid = i.takeover_userid";

fn item_from(r: ItemRow) -> TransferItem {
    TransferItem {
        id: TransferItemId(r.0),
        transfer_id: TransferId(r.1),
        external_userid: r.2,
        customer_id: r.3.map(CustomerId),
        customer_name: r.4,
        handover_userid: r.5,
        takeover_userid: r.6,
        takeover_name: r.7,
        status: Status::parse(&r.8).unwrap_or(Status::Failed),
        reason: r.9,
        errcode: r.10,
        sent_at: r.11.map(Timestamp),
        expected_at: r.12.map(Timestamp),
        finished_at: r.13.map(Timestamp),
        rerouted_to: r.14.map(TransferItemId),
    }
}

/// A group batch's items, inside a transaction; a chat with an open item (in any batch) is
/// left out by the unique open-item index. Returns how many were planned.
macro_rules! insert_group_items {
    ($tx:expr, $tenant:expr, $batch:expr, $now:expr, $assignments:expr) => {{
        let mut planned = 0u64;
        for chunk in $assignments.chunks(500) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO group_transfer_items (tenant_id, id, transfer_id, chat_id, handover_userid, takeover_userid, \
                 status, reason, updated_at) ",
            );
            qb.push_values(chunk, |mut b, a| {
                let (status, takeover, why) = match &a.takeover {
                    Ok(u) => (Status::Planned, Some(u.as_str()), None),
                    Err(r) => (Status::Excluded, None, Some(*r)),
                };
                b.push_bind($tenant.0)
                    .push_bind(Uuid::now_v7())
                    .push_bind($batch.0)
                    .push_bind(&a.external_userid)
                    .push_bind(&a.handover)
                    .push_bind(takeover)
                    .push_bind(status.as_str())
                    .push_bind(why)
                    .push_bind($now.0);
            });
            qb.push(" ON CONFLICT (tenant_id, chat_id) WHERE status IN ('planned', 'sending') DO NOTHING");
            planned += qb.build().execute(&mut *$tx).await?.rows_affected();
        }
        planned
    }};
}

/// The person holding a WeCom external contact, inside a transaction.
macro_rules! person_of {
    ($tx:expr, $tenant:expr, $external:expr) => {{
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = 'external_userid' \
             AND namespace = '' AND value = $2",
        )
        .bind($tenant.0)
        .bind($external)
        .fetch_optional(&mut *$tx)
        .await?;
        id
    }};
}

impl Store {
    /// The planner's view of customers to move from `handover`: how often siyu has sent each
    /// in the trailing 90 days (C-50) and the handover member's store.
    pub async fn transfer_candidates(
        &self,
        tenant: TenantId,
        handover: &str,
        externals: &[String],
    ) -> Result<Vec<Candidate>> {
        let since = self.now().0 - transfer::WINDOW_DAYS * 86_400 * 1_000_000;
        // Every transfer WeCom accepted (errcode 0) counts, whatever became of it afterwards:
        // refused, at the receiver's limit, or re-routed.
        let recent: Vec<(String, i64)> = on_read!(self, |p| sqlx::query_as(
            "SELECT external_userid, COUNT(*) FROM transfer_items WHERE tenant_id = $1 AND sent_at >= $2 \
             AND errcode = 0 GROUP BY external_userid"
        )
        .bind(tenant.0)
        .bind(since)
        .fetch_all(p)
        .await?);
        let recent: BTreeMap<String, i64> = recent.into_iter().collect();
        let group = self.staff_by_wecom_userid(tenant, handover).await?.and_then(|s| s.store_id).map(|s| s.to_string());
        Ok(externals
            .iter()
            .map(|e| Candidate {
                external_userid: e.clone(),
                handover: handover.to_string(),
                handover_group: group.clone(),
                recent_transfers: recent.get(e).copied().unwrap_or(0) as u32,
                avoid: vec![],
            })
            .collect())
    }

    /// Receivers with their load (active relationships) and store, in the order given;
    /// members siyu does not know as active staff are left out.
    pub async fn transfer_receivers(&self, tenant: TenantId, userids: &[String]) -> Result<Vec<Receiver>> {
        let mut out = Vec::new();
        for u in userids {
            let Some(s) = self.staff_by_wecom_userid(tenant, u).await? else { continue };
            if s.status.as_str() != "active" || out.iter().any(|r: &Receiver| &r.userid == u) {
                continue;
            }
            let load: i64 = on_read!(self, |p| {
                sqlx::query_scalar(
                "SELECT COUNT(*) FROM wecom_relationships WHERE tenant_id = $1 AND userid = $2 AND status IN ('active', 'half')"
            )
            .bind(tenant.0)
            .bind(u)
            .fetch_one(p)
            .await?
            });
            out.push(Receiver { userid: u.clone(), group: s.store_id.map(|x| x.to_string()), load: load as u64 });
        }
        Ok(out)
    }

    /// Customers `userid` has live relationships with, as siyu last synced them.
    pub async fn live_externals_of(&self, tenant: TenantId, userid: &str) -> Result<Vec<String>> {
        Ok(on_read!(self, |p| sqlx::query_scalar(
            "SELECT external_userid FROM wecom_relationships WHERE tenant_id = $1 AND userid = $2 \
             AND status IN ('active', 'half') ORDER BY add_time, external_userid"
        )
        .bind(tenant.0)
        .bind(userid)
        .fetch_all(p)
        .await?))
    }

    /// Records a planned batch. A customer with an open transfer from the same member is
    /// left out (the unique open-item index decides, so two planners racing cannot both
    /// plan it); returns the batch, or `Conflict` when nothing was left to plan.
    pub async fn create_transfer(&self, actor: &Actor, t: &NewTransfer<'_>) -> Result<Transfer> {
        let tenant = actor.tenant_id;
        let id = TransferId::new();
        let now = self.now();
        let planned = in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO transfers (tenant_id, id, app_id, kind, origin, handover_userid, message, created_by, created_at, \
                 updated_at, subject) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(t.app_id.0)
            .bind(t.kind.as_str())
            .bind(t.origin)
            .bind(t.handover)
            .bind(t.message)
            .bind(actor.audit_identity().2)
            .bind(now.0)
            .bind(t.subject.as_str())
            .execute(&mut *tx)
            .await?;
            let mut planned = 0u64;
            for a in t.assignments.iter().filter(|_| t.subject == Subject::Customers) {
                let (status, takeover, why) = match &a.takeover {
                    Ok(u) => (Status::Planned, Some(u.as_str()), None),
                    Err(r) => (Status::Excluded, None, Some(*r)),
                };
                let customer = person_of!(tx, tenant, &a.external_userid);
                let sql = if status == Status::Planned {
                    "INSERT INTO transfer_items (tenant_id, id, transfer_id, external_userid, customer_id, handover_userid, \
                     takeover_userid, status, reason, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (tenant_id, external_userid, handover_userid) WHERE status IN ('planned', 'sending', 'waiting') DO NOTHING"
                } else {
                    "INSERT INTO transfer_items (tenant_id, id, transfer_id, external_userid, customer_id, handover_userid, \
                     takeover_userid, status, reason, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                };
                planned += sqlx::query(sql)
                    .bind(tenant.0)
                    .bind(Uuid::now_v7())
                    .bind(id.0)
                    .bind(&a.external_userid)
                    .bind(customer)
                    .bind(&a.handover)
                    .bind(takeover)
                    .bind(status.as_str())
                    .bind(why)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            if t.subject == Subject::Groups {
                planned = insert_group_items!(tx, tenant, id, now, t.assignments);
            }
            if planned == 0 {
                return Err(StoreError::Conflict(format!(
                    "nothing to transfer: every {} already has an open transfer",
                    if t.subject == Subject::Groups { "group" } else { "customer" }
                )));
            }
            audit!(
                tx,
                self,
                actor,
                "transfer.create",
                "transfer",
                id,
                None,
                snapshot(&serde_json::json!({
                    "kind": t.kind.as_str(), "subject": t.subject.as_str(), "origin": t.origin,
                    "handover": t.handover, "items": planned
                }))
            );
            planned
        });
        tracing::info!(%tenant, transfer = %id, planned, "transfer planned");
        self.transfer(tenant, id).await
    }

    pub async fn transfer(&self, tenant: TenantId, id: TransferId) -> Result<Transfer> {
        let sql = format!("SELECT {BATCH_COLS} FROM {BATCH_FROM} WHERE t.tenant_id = $1 AND t.id = $2");
        let row: Option<BatchRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        let row = row.ok_or(StoreError::NotFound)?;
        Ok(self.with_counts(tenant, vec![row]).await?.remove(0))
    }

    /// Batches, newest first.
    pub async fn transfers(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Transfer>> {
        let sql = format!(
            "SELECT {BATCH_COLS} FROM {BATCH_FROM} WHERE t.tenant_id = $1 AND ($2 IS NULL OR t.id < $2) \
             ORDER BY t.id DESC LIMIT $3"
        );
        let rows: Vec<BatchRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        let items = self.with_counts(tenant, rows).await?;
        Ok(Page::from_rows(items, page, |t| t.id.0))
    }

    async fn with_counts(&self, tenant: TenantId, rows: Vec<BatchRow>) -> Result<Vec<Transfer>> {
        let mut counts: BTreeMap<Uuid, BTreeMap<String, i64>> = BTreeMap::new();
        for r in &rows {
            let (id, table) = (r.0, if r.10 == "groups" { "group_transfer_items" } else { "transfer_items" });
            let sql = format!(
                "SELECT status, COUNT(*) FROM {table} WHERE tenant_id = $1 AND transfer_id = $2 GROUP BY status"
            );
            let c: Vec<(String, i64)> =
                on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id).fetch_all(p).await?);
            counts.insert(id, c.into_iter().collect());
        }
        Ok(rows
            .into_iter()
            .map(|r| Transfer {
                id: TransferId(r.0),
                app_id: WecomAppId(r.1),
                kind: Kind::parse(&r.2).unwrap_or(Kind::Onjob),
                subject: Subject::parse(&r.10).unwrap_or_default(),
                origin: r.3,
                handover_userid: r.4,
                handover_name: r.5,
                message: r.6,
                created_by: r.7,
                created_at: Timestamp(r.8),
                executed_at: r.9.map(Timestamp),
                counts: counts.remove(&r.0).unwrap_or_default(),
            })
            .collect())
    }

    /// A batch's items, oldest first (the plan's order).
    pub async fn transfer_items(&self, tenant: TenantId, id: TransferId) -> Result<Vec<TransferItem>> {
        let sql = format!("{ITEM_SELECT} WHERE i.tenant_id = $1 AND i.transfer_id = $2 ORDER BY i.id");
        let rows: Vec<ItemRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_all(p).await?);
        Ok(rows.into_iter().map(item_from).collect())
    }

    pub async fn transfer_item(&self, tenant: TenantId, id: TransferItemId) -> Result<TransferItem> {
        let sql = format!("{ITEM_SELECT} WHERE i.tenant_id = $1 AND i.id = $2");
        let row: Option<ItemRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        row.map(item_from).ok_or(StoreError::NotFound)
    }

    /// A customer's transfers, newest first (for the customer page).
    pub async fn customer_transfers(&self, tenant: TenantId, id: CustomerId) -> Result<Vec<TransferItem>> {
        let sql = format!("{ITEM_SELECT} WHERE i.tenant_id = $1 AND i.customer_id = $2 ORDER BY i.id DESC LIMIT 50");
        let rows: Vec<ItemRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_all(p).await?);
        Ok(rows.into_iter().map(item_from).collect())
    }

    /// Marks a batch's planned items `sending` and returns them; the caller sends them to
    /// WeCom next. Items another process claimed first are not returned twice.
    pub async fn claim_transfer_items(&self, actor: &Actor, id: TransferId) -> Result<Vec<TransferItem>> {
        let tenant = actor.tenant_id;
        let t = self.transfer(tenant, id).await?;
        let now = self.now();
        let claimed: Vec<Uuid> = in_tx!(self, |tx| {
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE transfer_items SET status = 'sending', updated_at = $3 \
                 WHERE tenant_id = $1 AND transfer_id = $2 AND status = 'planned' RETURNING id",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(now.0)
            .fetch_all(&mut *tx)
            .await?;
            if !ids.is_empty() {
                sqlx::query("UPDATE transfers SET executed_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id.0)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                audit!(
                    tx,
                    self,
                    actor,
                    "transfer.execute",
                    "transfer",
                    id,
                    None,
                    snapshot(&serde_json::json!({"kind": t.kind.as_str(), "items": ids.len()}))
                );
            }
            ids
        });
        let mut items = self.transfer_items(tenant, id).await?;
        items.retain(|i| claimed.contains(&i.id.0));
        Ok(items)
    }

    /// Records WeCom's answer for one sent item (only while it is `sending`).
    pub async fn record_transfer_sent(&self, tenant: TenantId, item: TransferItemId, o: &Outcome) -> Result<bool> {
        let now = self.now();
        let sent = (o.status == Status::Waiting).then_some(now.0);
        let n = in_tx!(self, |tx| {
            sqlx::query(
                "UPDATE transfer_items SET status = $3, reason = $4, errcode = $5, sent_at = COALESCE($6, sent_at), \
                 expected_at = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2 AND status = 'sending'",
            )
            .bind(tenant.0)
            .bind(item.0)
            .bind(o.status.as_str())
            .bind(o.reason)
            .bind(o.errcode)
            .bind(sent)
            .bind(o.expected_at.map(|t| t.0))
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Distinct (kind, handover, takeover) pairs with items WeCom still has to finish, with
    /// the app of their batch: what the poller asks `transfer_result` about.
    pub async fn open_transfer_pairs(&self, tenant: TenantId) -> Result<Vec<(WecomAppId, Kind, String, String)>> {
        let rows: Vec<(Uuid, String, String, String)> = on_read!(self, |p| sqlx::query_as(
            "SELECT DISTINCT t.app_id, t.kind, i.handover_userid, i.takeover_userid FROM transfer_items i \
             JOIN transfers t ON t.tenant_id = i.tenant_id AND t.id = i.transfer_id \
             WHERE i.tenant_id = $1 AND i.status IN ('sending', 'waiting') AND i.takeover_userid IS NOT NULL \
             ORDER BY t.app_id, t.kind, i.handover_userid, i.takeover_userid"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().filter_map(|(a, k, h, t)| Some((WecomAppId(a), Kind::parse(&k)?, h, t))).collect())
    }

    /// Applies a final or updated WeCom state to the open item of (external, handover,
    /// takeover). Returns the item when it changed, so the caller can re-read the contact.
    /// Idempotent: a state already recorded, or an item no longer open, changes nothing.
    pub async fn apply_transfer_outcome(
        &self,
        tenant: TenantId,
        external: &str,
        handover: Option<&str>,
        takeover: &str,
        o: &Outcome,
    ) -> Result<Option<TransferItem>> {
        let now = self.now();
        let actor = Actor::system(tenant);
        let changed: Option<Uuid> = in_tx!(self, |tx| {
            type Open = (Uuid, Option<Uuid>, String, String, Option<i64>);
            let found: Option<Open> = sqlx::query_as(
                "SELECT id, customer_id, handover_userid, status, expected_at FROM transfer_items WHERE tenant_id = $1 \
                 AND external_userid = $2 AND ($3 IS NULL OR handover_userid = $3) AND takeover_userid = $4 \
                 AND status IN ('sending', 'waiting') ORDER BY id DESC LIMIT 1",
            )
            .bind(tenant.0)
            .bind(external)
            .bind(handover)
            .bind(takeover)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, customer, handover, status, expected)) = found else { return Ok(None) };
            let expected_at = o.expected_at.map(|t| t.0).or(expected);
            if status == o.status.as_str() && expected == expected_at {
                return Ok(None);
            }
            let finished = (!o.status.is_open()).then_some(now.0);
            // An item found `sending` by the poller did reach WeCom: it counts as sent now.
            sqlx::query(
                "UPDATE transfer_items SET status = $3, reason = $4, expected_at = $5, finished_at = $6, \
                 sent_at = COALESCE(sent_at, $7), errcode = COALESCE(errcode, 0), updated_at = $7 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(o.status.as_str())
            .bind(o.reason)
            .bind(expected_at)
            .bind(finished)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            if let Some(c) = customer.map(CustomerId) {
                let summary = match o.status {
                    Status::Done => Some(format!("transferred from {handover} to {takeover}")),
                    Status::Refused => Some(format!("refused the transfer from {handover} to {takeover}")),
                    Status::Limit => Some(format!("transfer to {takeover} stopped: receiver at its customer limit")),
                    Status::Failed => Some(format!("transfer to {takeover} failed")),
                    _ => None,
                };
                if let Some(s) = summary {
                    timeline!(tx, tenant, c, now, "transfer", "wecom", actor, &s);
                }
                if o.status == Status::Done {
                    // The receiver owns the customer from now on (C-52), even over older relationships.
                    sqlx::query("UPDATE customers SET owner_userid_pref = $3 WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.0)
                        .bind(c.0)
                        .bind(takeover)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            Some(id)
        });
        match changed {
            Some(id) => Ok(Some(self.transfer_item(tenant, TransferItemId(id)).await?)),
            None => Ok(None),
        }
    }

    /// Puts a failed item back to `planned` for the same receiver.
    pub async fn retry_transfer_item(&self, actor: &Actor, id: TransferItemId) -> Result<TransferItem> {
        let item = self.transfer_item(actor.tenant_id, id).await?;
        if !item.status.retryable() {
            return Err(StoreError::Conflict(format!("a {} transfer cannot be retried", item.status.as_str())));
        }
        self.reopen_item(actor, &item, None).await
    }

    /// Sends a customer to another receiver instead (C-52): the old item becomes `rerouted`
    /// and a new planned item joins the same batch. The re-route counts toward the
    /// 2-per-90-days rule once sent, like any transfer.
    pub async fn reroute_transfer_item(
        &self,
        actor: &Actor,
        id: TransferItemId,
        takeover: &str,
    ) -> Result<TransferItem> {
        let item = self.transfer_item(actor.tenant_id, id).await?;
        let excluded_by_window = item.status == Status::Excluded && item.reason.as_deref() == Some(reason::WINDOW);
        if !item.status.reroutable() || excluded_by_window {
            return Err(StoreError::Conflict(format!("a {} transfer cannot be re-routed", item.status.as_str())));
        }
        if takeover == item.handover_userid || item.takeover_userid.as_deref() == Some(takeover) {
            return Err(StoreError::Conflict("choose a receiver other than the current ones".into()));
        }
        self.reopen_item(actor, &item, Some(takeover)).await
    }

    async fn reopen_item(&self, actor: &Actor, item: &TransferItem, takeover: Option<&str>) -> Result<TransferItem> {
        let tenant = actor.tenant_id;
        let now = self.now();
        let was = item.status.as_str();
        let new_id = in_tx!(self, |tx| {
            let new_id = match takeover {
                None => {
                    sqlx::query(
                        "UPDATE transfer_items SET status = 'planned', reason = NULL, errcode = NULL, updated_at = $4 \
                         WHERE tenant_id = $1 AND id = $2 AND status = $3",
                    )
                    .bind(tenant.0)
                    .bind(item.id.0)
                    .bind(was)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::constraint(e, "item"))?;
                    item.id.0
                }
                Some(to) => {
                    let new_id = Uuid::now_v7();
                    let n = sqlx::query(
                        "UPDATE transfer_items SET status = 'rerouted', rerouted_to = $4, finished_at = $5, updated_at = $5 \
                         WHERE tenant_id = $1 AND id = $2 AND status = $3",
                    )
                    .bind(tenant.0)
                    .bind(item.id.0)
                    .bind(was)
                    .bind(new_id)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        return Err(StoreError::Conflict("the transfer changed meanwhile; reload".into()));
                    }
                    sqlx::query(
                        "INSERT INTO transfer_items (tenant_id, id, transfer_id, external_userid, customer_id, handover_userid, \
                         takeover_userid, status, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'planned', $8)",
                    )
                    .bind(tenant.0)
                    .bind(new_id)
                    .bind(item.transfer_id.0)
                    .bind(&item.external_userid)
                    .bind(item.customer_id.map(|c| c.0))
                    .bind(&item.handover_userid)
                    .bind(to)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::constraint(e, "item"))?;
                    new_id
                }
            };
            audit!(
                tx,
                self,
                actor,
                if takeover.is_some() { "transfer.reroute" } else { "transfer.retry" },
                "transfer_item",
                item.id,
                snapshot(&serde_json::json!({"status": was, "takeover": item.takeover_userid})),
                snapshot(
                    &serde_json::json!({"status": "planned", "takeover": takeover.or(item.takeover_userid.as_deref())})
                )
            );
            new_id
        });
        self.transfer_item(tenant, TransferItemId(new_id)).await
    }

    /// Withdraws a planned item.
    pub async fn cancel_transfer_item(&self, actor: &Actor, id: TransferItemId) -> Result<()> {
        self.cancel_planned_item(actor, "transfer_items", "transfer_item", id.0).await
    }

    /// Withdraws a planned item of `table` (customer or group items alike), audited as `entity`.
    pub(crate) async fn cancel_planned_item(
        &self,
        actor: &Actor,
        table: &'static str,
        entity: &'static str,
        id: Uuid,
    ) -> Result<()> {
        let now = self.now();
        let sql = format!(
            "UPDATE {table} SET status = 'cancelled', finished_at = $3, updated_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'planned'"
        );
        in_tx!(self, |tx| {
            let n =
                sqlx::query(&sql).bind(actor.tenant_id.0).bind(id).bind(now.0).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict("only a planned transfer can be cancelled".into()));
            }
            audit!(tx, self, actor, "transfer.cancel", entity, id, None, None);
        });
        Ok(())
    }

    /// Items of a member pair still `sending` since before `stale` (microseconds).
    pub async fn sending_transfer_items(
        &self,
        tenant: TenantId,
        handover: &str,
        takeover: &str,
        stale: i64,
    ) -> Result<Vec<TransferItem>> {
        let sql = format!(
            "{ITEM_SELECT} WHERE i.tenant_id = $1 AND i.handover_userid = $2 AND i.takeover_userid = $3 \
             AND i.status = 'sending' AND i.updated_at < $4 ORDER BY i.id"
        );
        let rows: Vec<ItemRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(handover)
            .bind(takeover)
            .bind(stale)
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(item_from).collect())
    }

    /// The WeCom external contacts linked to a person.
    pub async fn customer_external_ids(&self, tenant: TenantId, id: CustomerId) -> Result<Vec<String>> {
        Ok(on_read!(self, |p| {
            sqlx::query_scalar(
            "SELECT value FROM customer_identities WHERE tenant_id = $1 AND customer_id = $2 AND kind = 'external_userid'"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?
        }))
    }

    /// Handover members with an automatic plan still awaiting approval or running, so a
    /// departed member is planned once.
    pub async fn has_open_transfer(&self, tenant: TenantId, handover: &str) -> Result<bool> {
        let n: i64 = on_read!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM transfer_items WHERE tenant_id = $1 AND handover_userid = $2 \
             AND status IN ('planned', 'sending', 'waiting')"
        )
        .bind(tenant.0)
        .bind(handover)
        .fetch_one(p)
        .await?);
        Ok(n > 0)
    }

    pub async fn transfer_settings(&self, tenant: TenantId) -> Result<TransferSettings> {
        let row: Option<(String, Option<String>)> =
            on_read!(self, |p| sqlx::query_as("SELECT auto_mode, message FROM transfer_settings WHERE tenant_id = $1")
                .bind(tenant.0)
                .fetch_optional(p)
                .await?);
        Ok(row
            .map(|(m, message)| TransferSettings { auto_mode: AutoMode::parse(&m).unwrap_or_default(), message })
            .unwrap_or_default())
    }

    pub async fn save_transfer_settings(&self, actor: &Actor, s: &TransferSettings) -> Result<()> {
        let before = self.transfer_settings(actor.tenant_id).await?;
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO transfer_settings (tenant_id, auto_mode, message, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id) DO UPDATE SET auto_mode = $2, message = $3, updated_at = $4",
            )
            .bind(actor.tenant_id.0)
            .bind(s.auto_mode.as_str())
            .bind(&s.message)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            audit!(tx, self, actor, "transfer.settings", "tenant", actor.tenant_id, snapshot(&before), snapshot(s));
        });
        Ok(())
    }
}

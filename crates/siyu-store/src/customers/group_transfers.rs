//! Customer-group transfers (C-54, C-62): the items of a `groups` batch, the facts the
//! planner needs (each chat's recent moves, receivers' group counts) and the daily limit's
//! count per member pair.
//!
//! The batch itself is a row of `transfers` (see `transfers`). An item is claimed
//! `planned → sending` before WeCom is called; WeCom's answer is final for a group, so the
//! item ends `done` or `failed`. A `sending` item whose answer was lost is settled by reading
//! the chat's owner (the gateway does that), never by sending it again blind.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::customers::group_transfer;
use siyu_core::customers::transfer::{Candidate, Receiver, Status};
use siyu_core::{GroupTransferItemId, TenantId, Timestamp, TransferId};

use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

/// One group's transfer.
#[derive(Clone, Debug, Serialize)]
pub struct GroupTransferItem {
    pub id: GroupTransferItemId,
    pub transfer_id: TransferId,
    pub chat_id: String,
    pub chat_name: Option<String>,
    pub member_count: Option<i64>,
    pub handover_userid: String,
    pub takeover_userid: Option<String>,
    pub takeover_name: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
    pub errcode: Option<i64>,
    pub sent_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub rerouted_to: Option<GroupTransferItemId>,
}

type ItemRow = (
    Uuid,
    Uuid,
    String,
    Option<String>,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<Uuid>,
);
const ITEM_SELECT: &str = "SELECT i.id, i.transfer_id, i.chat_id, g.name, g.member_count, i.handover_userid, \
     i.takeover_userid, s.name, i.status, i.reason, i.errcode, i.sent_at, i.finished_at, i.rerouted_to \
     FROM group_transfer_items i \
     LEFT JOIN wecom_groups g ON g.tenant_id = i.tenant_id AND g.chat_id = i.chat_id \
     LEFT JOIN staff s ON s.tenant_id = i.tenant_id AND s.wecom_userid = i.takeover_userid";

fn item_from(r: ItemRow) -> GroupTransferItem {
    GroupTransferItem {
        id: GroupTransferItemId(r.0),
        transfer_id: TransferId(r.1),
        chat_id: r.2,
        chat_name: r.3,
        member_count: r.4,
        handover_userid: r.5,
        takeover_userid: r.6,
        takeover_name: r.7,
        status: Status::parse(&r.8).unwrap_or(Status::Failed),
        reason: r.9,
        errcode: r.10,
        sent_at: r.11.map(Timestamp),
        finished_at: r.12.map(Timestamp),
        rerouted_to: r.13.map(GroupTransferItemId),
    }
}

const DAY_MICROS: i64 = 86_400 * 1_000_000;

impl Store {
    /// Live (not dismissed) customer groups `owner` owns, as siyu last synced them.
    pub async fn groups_owned_by(&self, tenant: TenantId, owner: &str) -> Result<Vec<String>> {
        Ok(on_read!(self, |p| sqlx::query_scalar(
            "SELECT chat_id FROM wecom_groups WHERE tenant_id = $1 AND owner = $2 AND NOT dismissed \
             ORDER BY created_at, chat_id"
        )
        .bind(tenant.0)
        .bind(owner)
        .fetch_all(p)
        .await?))
    }

    /// The planner's view of chats to move from `handover`: how often each moved in the
    /// trailing 90 days (C-54). Groups carry no store preference: the planner balances owners.
    pub async fn group_transfer_candidates(
        &self,
        tenant: TenantId,
        handover: &str,
        chat_ids: &[String],
    ) -> Result<Vec<Candidate>> {
        let since = self.now().0 - group_transfer::WINDOW_DAYS * DAY_MICROS;
        let recent: Vec<(String, i64)> = on_read!(self, |p| sqlx::query_as(
            "SELECT chat_id, COUNT(*) FROM group_transfer_items WHERE tenant_id = $1 AND status = 'done' \
             AND sent_at >= $2 GROUP BY chat_id"
        )
        .bind(tenant.0)
        .bind(since)
        .fetch_all(p)
        .await?);
        let recent: BTreeMap<String, i64> = recent.into_iter().collect();
        Ok(chat_ids
            .iter()
            .map(|c| Candidate {
                external_userid: c.clone(),
                handover: handover.to_string(),
                handover_group: None,
                recent_transfers: recent.get(c).copied().unwrap_or(0) as u32,
                avoid: vec![],
            })
            .collect())
    }

    /// Receivers of groups with their load (live groups they own), in the order given;
    /// members siyu does not know as active staff are left out.
    pub async fn group_transfer_receivers(&self, tenant: TenantId, userids: &[String]) -> Result<Vec<Receiver>> {
        let mut out: Vec<Receiver> = Vec::new();
        for u in userids {
            let Some(s) = self.staff_by_wecom_userid(tenant, u).await? else { continue };
            if s.status.as_str() != "active" || out.iter().any(|r| &r.userid == u) {
                continue;
            }
            let load: i64 = on_read!(self, |p| sqlx::query_scalar(
                "SELECT COUNT(*) FROM wecom_groups WHERE tenant_id = $1 AND owner = $2 AND NOT dismissed"
            )
            .bind(tenant.0)
            .bind(u)
            .fetch_one(p)
            .await?);
            out.push(Receiver { userid: u.clone(), group: None, load: load as u64 });
        }
        Ok(out)
    }

    /// A batch's group items, in plan order.
    pub async fn group_transfer_items(&self, tenant: TenantId, id: TransferId) -> Result<Vec<GroupTransferItem>> {
        let sql = format!("{ITEM_SELECT} WHERE i.tenant_id = $1 AND i.transfer_id = $2 ORDER BY i.id");
        let rows: Vec<ItemRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_all(p).await?);
        Ok(rows.into_iter().map(item_from).collect())
    }

    pub async fn group_transfer_item(&self, tenant: TenantId, id: GroupTransferItemId) -> Result<GroupTransferItem> {
        let sql = format!("{ITEM_SELECT} WHERE i.tenant_id = $1 AND i.id = $2");
        let row: Option<ItemRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        row.map(item_from).ok_or(StoreError::NotFound)
    }

    /// Claims a batch's planned items for sending, as many per member pair as the pair's daily
    /// limit still allows (C-54: 300 in any 24 hours, counting what is being sent and what
    /// moved). The rest stay planned with the reason `daily_limit` and go out on a later
    /// execution. Items another process claimed first are not returned twice.
    pub async fn claim_group_transfer_items(&self, actor: &Actor, id: TransferId) -> Result<Vec<GroupTransferItem>> {
        let tenant = actor.tenant_id;
        let t = self.transfer(tenant, id).await?;
        let now = self.now();
        let since = now.0 - DAY_MICROS;
        let claimed: Vec<Uuid> = in_tx!(self, |tx| {
            let planned: Vec<(Uuid, String, String)> = sqlx::query_as(
                "SELECT id, handover_userid, takeover_userid FROM group_transfer_items \
                 WHERE tenant_id = $1 AND transfer_id = $2 AND status = 'planned' AND takeover_userid IS NOT NULL ORDER BY id",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_all(&mut *tx)
            .await?;
            let mut sent_today = BTreeMap::new();
            for (_, h, to) in &planned {
                let key = (h.clone(), to.clone());
                if sent_today.contains_key(&key) {
                    continue;
                }
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM group_transfer_items WHERE tenant_id = $1 AND handover_userid = $2 \
                     AND takeover_userid = $3 AND status IN ('sending', 'done') AND sent_at >= $4",
                )
                .bind(tenant.0)
                .bind(h)
                .bind(to)
                .bind(since)
                .fetch_one(&mut *tx)
                .await?;
                sent_today.insert(key, n as usize);
            }
            let pairs: Vec<(&str, &str)> = planned.iter().map(|(_, h, t)| (h.as_str(), t.as_str())).collect();
            let fits = group_transfer::within_daily_limit(&pairs, &sent_today);
            let (go, wait): (Vec<_>, Vec<_>) = planned.iter().zip(fits).partition(|(_, fit)| *fit);
            let mut ids = Vec::new();
            for (list, fit) in [(go, true), (wait, false)] {
                for chunk in list.chunks(500) {
                    let (status, why, sent) = if fit {
                        ("sending", None, Some(now.0))
                    } else {
                        ("planned", Some(group_transfer::DAILY_LIMIT), None)
                    };
                    let mut qb = sqlx::QueryBuilder::new("UPDATE group_transfer_items SET status = ");
                    qb.push_bind(status).push(", reason = ").push_bind(why);
                    qb.push(", sent_at = ").push_bind(sent).push(", updated_at = ").push_bind(now.0);
                    qb.push(" WHERE tenant_id = ").push_bind(tenant.0);
                    qb.push(" AND status = 'planned' AND id IN (");
                    let mut sep = qb.separated(", ");
                    for ((item, _, _), _) in chunk {
                        sep.push_bind(*item);
                    }
                    qb.push(") RETURNING id");
                    let done: Vec<Uuid> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
                    if fit {
                        ids.extend(done);
                    }
                }
            }
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
                    snapshot(&serde_json::json!({"kind": t.kind.as_str(), "subject": "groups", "items": ids.len()}))
                );
            }
            ids
        });
        let mut items = self.group_transfer_items(tenant, id).await?;
        items.retain(|i| claimed.contains(&i.id.0));
        Ok(items)
    }

    /// Records WeCom's answer for one sent group (only while it is `sending`). A failed
    /// move does not count toward the limits, so its `sent_at` is cleared.
    pub async fn record_group_transfer(
        &self,
        tenant: TenantId,
        item: GroupTransferItemId,
        status: Status,
        why: Option<&str>,
        errcode: Option<i64>,
    ) -> Result<bool> {
        let now = self.now();
        let n = in_tx!(self, |tx| {
            sqlx::query(
                "UPDATE group_transfer_items SET status = $3, reason = $4, errcode = $5, \
                 sent_at = CASE WHEN $3 = 'done' THEN sent_at ELSE NULL END, finished_at = $6, updated_at = $6 \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'sending'",
            )
            .bind(tenant.0)
            .bind(item.0)
            .bind(status.as_str())
            .bind(why)
            .bind(errcode)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Group items still `sending` since before `stale` (microseconds), with their batch's
    /// app: calls whose answer was lost.
    pub async fn stale_group_sends(&self, tenant: TenantId, stale: i64) -> Result<Vec<GroupTransferItem>> {
        let sql = format!(
            "{ITEM_SELECT} WHERE i.tenant_id = $1 AND i.status = 'sending' AND i.updated_at < $2 ORDER BY i.id"
        );
        let rows: Vec<ItemRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(stale).fetch_all(p).await?);
        Ok(rows.into_iter().map(item_from).collect())
    }

    /// Executed group batches with items held back by the daily limit: the poller sends them
    /// once the pair has room again.
    pub async fn deferred_group_transfers(&self, tenant: TenantId) -> Result<Vec<TransferId>> {
        let ids: Vec<Uuid> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT DISTINCT i.transfer_id FROM group_transfer_items i \
             JOIN transfers t ON t.tenant_id = i.tenant_id AND t.id = i.transfer_id \
             WHERE i.tenant_id = $1 AND i.status = 'planned' AND i.reason = $2 AND t.executed_at IS NOT NULL \
             ORDER BY i.transfer_id"
        )
        .bind(tenant.0)
        .bind(group_transfer::DAILY_LIMIT)
        .fetch_all(p)
        .await?);
        Ok(ids.into_iter().map(TransferId).collect())
    }

    /// Chats of a departed member already planned for 离职继承 (in any state), so each is
    /// planned automatically once; what fails is the operator's to retry or re-route.
    pub async fn groups_planned_on_departure(&self, tenant: TenantId, handover: &str) -> Result<Vec<String>> {
        Ok(on_read!(self, |p| sqlx::query_scalar(
            "SELECT DISTINCT i.chat_id FROM group_transfer_items i \
             JOIN transfers t ON t.tenant_id = i.tenant_id AND t.id = i.transfer_id \
             WHERE i.tenant_id = $1 AND i.handover_userid = $2 AND t.kind = 'resigned'"
        )
        .bind(tenant.0)
        .bind(handover)
        .fetch_all(p)
        .await?))
    }

    /// Puts a failed group back to `planned` for the same receiver, or (with `takeover`)
    /// sends it to another one instead: the old item becomes `rerouted` and a new planned
    /// item joins the batch.
    pub async fn reopen_group_transfer_item(
        &self,
        actor: &Actor,
        id: GroupTransferItemId,
        takeover: Option<&str>,
    ) -> Result<GroupTransferItem> {
        let tenant = actor.tenant_id;
        let item = self.group_transfer_item(tenant, id).await?;
        let was = item.status.as_str();
        match takeover {
            None if !group_transfer::retryable(item.status, item.reason.as_deref()) => {
                return Err(StoreError::Conflict(format!("this {was} group transfer cannot be retried")));
            }
            Some(_) if !group_transfer::reroutable(item.status, item.reason.as_deref()) => {
                return Err(StoreError::Conflict(format!("this {was} group transfer cannot be re-routed")));
            }
            Some(to) if to == item.handover_userid || item.takeover_userid.as_deref() == Some(to) => {
                return Err(StoreError::Conflict("choose a receiver other than the current ones".into()));
            }
            _ => {}
        }
        let now = self.now();
        let new_id = in_tx!(self, |tx| {
            let new_id = match takeover {
                None => {
                    sqlx::query(
                        "UPDATE group_transfer_items SET status = 'planned', reason = NULL, errcode = NULL, \
                         finished_at = NULL, updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND status = $3",
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
                        "UPDATE group_transfer_items SET status = 'rerouted', rerouted_to = $4, finished_at = $5, \
                         updated_at = $5 WHERE tenant_id = $1 AND id = $2 AND status = $3",
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
                        "INSERT INTO group_transfer_items (tenant_id, id, transfer_id, chat_id, handover_userid, \
                         takeover_userid, status, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7)",
                    )
                    .bind(tenant.0)
                    .bind(new_id)
                    .bind(item.transfer_id.0)
                    .bind(&item.chat_id)
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
                "group_transfer_item",
                item.id,
                snapshot(&serde_json::json!({"status": was, "takeover": item.takeover_userid})),
                snapshot(
                    &serde_json::json!({"status": "planned", "takeover": takeover.or(item.takeover_userid.as_deref())})
                )
            );
            new_id
        });
        self.group_transfer_item(tenant, GroupTransferItemId(new_id)).await
    }

    /// Withdraws a planned group.
    pub async fn cancel_group_transfer_item(&self, actor: &Actor, id: GroupTransferItemId) -> Result<()> {
        self.cancel_planned_item(actor, "group_transfer_items", "group_transfer_item", id.0).await
    }
}

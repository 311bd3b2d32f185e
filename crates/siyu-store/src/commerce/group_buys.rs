//! Group-buy (拼团) on the database (commerce-rules §5.1). An order opens a group or takes a
//! seat in one by a conditional update (`seats < capacity`, open, before its own deadline) in
//! the order's transaction (GB-3); its payment turns the seat paid, and the N-th paid seat
//! releases every member order to shipping in that transaction (GB-5). At a group's deadline
//! the sweep either completes it with virtual members (模拟成团) or fails it and refunds every
//! paid member in full, automatically (GB-6, GB-8). A paid member may leave before the group
//! fills, which refunds them and passes leadership on (GB-10, GB-11).
//!
//! Lock order, everywhere: the group row, then its orders (`lock_group_of!`).

use serde::Serialize;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::group_buy::{at_deadline, expires_at, next_leader, Expiry, GroupBuyInput, Seat};
use siyu_core::commerce::order::OrderStatus;
use siyu_core::commerce::pricing::ActivityKind;
use siyu_core::{BuyerId, GroupBuyId, GroupId, OrderId, ProductId, SkuId, TenantId, Timestamp};

use super::orders::{order_no_for, ActivityTerms, CartItem, OneLine, Order, Play};
use super::payments::RefundKind;
use super::rejected;
use crate::audit::snapshot;
use crate::{
    activity_clash, audit, cancel_from, compensate, in_tx, lock_group_of, on_read, one_line_order, outbox,
    system_refund, Result, Store, StoreError,
};

/// A group fills: it succeeds (with `$virtual` flagged virtual members, GB-6/GB-7) and every
/// member order waiting for it moves to shipping, once (GB-5).
#[macro_export]
#[doc(hidden)]
macro_rules! group_succeeds {
    ($tx:expr, $tenant:expr, $group:expr, $now:expr, $virtual:expr) => {{
        let n = sqlx::query(
            "UPDATE buy_groups SET status = 'succeeded', virtual_members = $4, closed_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'open'",
        )
        .bind($tenant.0)
        .bind($group)
        .bind($now.0)
        .bind($virtual as i64)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if n == 1 {
            sqlx::query(
                "UPDATE orders SET status = 'to_ship', updated_at = $3 WHERE tenant_id = $1 AND group_id = $2 \
                 AND status = 'awaiting_group'",
            )
            .bind($tenant.0)
            .bind($group)
            .bind($now.0)
            .execute(&mut *$tx)
            .await?;
            $crate::outbox!(
                $tx,
                $tenant,
                "group.succeeded",
                $group,
                1,
                serde_json::json!({"group": $group, "virtual_members": $virtual}),
                $now
            );
        }
    }};
}

/// A paid member leaves an unfilled group: the order closes, its committed units go back to
/// the shelf and the activity, the buyer's allowance is freed, and the payment is refunded in
/// full (`pay_price`, shipping included) as an approved system refund. Evaluates to whether
/// the order was still waiting for its group.
macro_rules! unwind_member {
    ($tx:expr, $tenant:expr, $order:expr, $now:expr, $reason:expr, $kind:expr, $member:expr) => {{
        let order: Uuid = $order;
        if cancel_from!($tx, $tenant, OrderId(order), $now, $reason, OrderStatus::AwaitingGroup).is_none() {
            for (sku, qty) in $crate::restock_committed!($tx, $tenant, order, $now) {
                sqlx::query(
                    "UPDATE group_buy_skus SET taken = taken - $4 WHERE tenant_id = $1 AND sku_id = $3 \
                     AND activity_id = (SELECT g.activity_id FROM orders o JOIN buy_groups g \
                     ON g.tenant_id = o.tenant_id AND g.id = o.group_id WHERE o.tenant_id = $1 AND o.id = $2)",
                )
                .bind($tenant.0)
                .bind(order)
                .bind(sku)
                .bind(qty)
                .execute(&mut *$tx)
                .await?;
                sqlx::query(
                    "UPDATE group_buyers SET bought = bought - $3 WHERE tenant_id = $1 \
                     AND (activity_id, buyer_id) = (SELECT g.activity_id, o.buyer_id FROM orders o JOIN buy_groups g \
                     ON g.tenant_id = o.tenant_id AND g.id = o.group_id WHERE o.tenant_id = $1 AND o.id = $2)",
                )
                .bind($tenant.0)
                .bind(order)
                .bind(qty)
                .execute(&mut *$tx)
                .await?;
            }
            let (payment, paid): (Uuid, i64) = sqlx::query_as(
                "SELECT p.id, o.paid_fen FROM payments p JOIN orders o ON o.tenant_id = p.tenant_id AND o.id = p.order_id \
                 WHERE p.tenant_id = $1 AND p.order_id = $2 AND p.disposition = 'applied' ORDER BY p.created_at LIMIT 1",
            )
            .bind($tenant.0)
            .bind(order)
            .fetch_one(&mut *$tx)
            .await?;
            system_refund!($tx, $tenant, order, payment, paid, $kind, $now);
            sqlx::query("UPDATE orders SET refunded_fen = refunded_fen + $3 WHERE tenant_id = $1 AND id = $2")
                .bind($tenant.0)
                .bind(order)
                .bind(paid)
                .execute(&mut *$tx)
                .await?;
            sqlx::query("UPDATE group_members SET status = $3 WHERE tenant_id = $1 AND order_id = $2 AND status = 'paid'")
                .bind($tenant.0)
                .bind(order)
                .bind($member)
                .execute(&mut *$tx)
                .await?;
            outbox!(
                $tx,
                $tenant,
                "order.cancelled",
                order,
                1,
                serde_json::json!({"order": order, "reason": $reason, "refund_fen": paid}),
                $now
            );
            true
        } else {
            false
        }
    }};
}

/// A group fails: every paid member is refunded in full (GB-6, GB-8: exactly the member
/// orders), every unpaid one is cancelled with its seat and stock given back, once.
macro_rules! fail_group {
    ($tx:expr, $tenant:expr, $group:expr, $now:expr) => {{
        let n = sqlx::query(
            "UPDATE buy_groups SET status = 'failed', closed_at = $3 WHERE tenant_id = $1 AND id = $2 AND status = 'open'",
        )
        .bind($tenant.0)
        .bind($group)
        .bind($now.0)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if n == 1 {
            settle_members!($tx, $tenant, $group, $now, true);
            outbox!($tx, $tenant, "group.failed", $group, 1, serde_json::json!({ "group": $group }), $now);
        }
    }};
}

/// Members still holding an unpaid seat when a group closes (either way) are cancelled; with
/// `$refund_paid` (a failed group) paid members are refunded too.
macro_rules! settle_members {
    ($tx:expr, $tenant:expr, $group:expr, $now:expr, $refund_paid:expr) => {{
        let members: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT order_id, status FROM group_members WHERE tenant_id = $1 AND group_id = $2 \
             AND status IN ('held', 'paid') ORDER BY joined_at",
        )
        .bind($tenant.0)
        .bind($group)
        .fetch_all(&mut *$tx)
        .await?;
        for (order, status) in members {
            if status == "paid" {
                if !$refund_paid {
                    continue;
                }
                unwind_member!(
                    $tx,
                    $tenant,
                    order,
                    $now,
                    "the group did not fill",
                    RefundKind::GroupFailed,
                    "refunded"
                );
            } else if cancel_from!($tx, $tenant, OrderId(order), $now, "the group closed", OrderStatus::PendingPayment)
                .is_none()
            {
                compensate!($tx, $tenant, OrderId(order), $now);
            }
        }
    }};
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupSku {
    pub sku_id: SkuId,
    pub label: String,
    /// The SKU's own price, to show beside the group price.
    pub list_fen: i64,
    pub price_fen: i64,
    pub quota: i64,
    /// Units in unpaid and paid orders of the activity.
    pub taken: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupBuy {
    pub id: GroupBuyId,
    pub name: String,
    pub product_id: ProductId,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub capacity: i64,
    pub valid_hours: i64,
    pub per_user: i64,
    pub virtual_bp: Option<i64>,
    pub new_joiners_only: bool,
    pub timeout_secs: i64,
    /// `active` or `stopped`.
    pub status: String,
    pub skus: Vec<GroupSku>,
    /// Groups by status: open, succeeded, failed.
    pub groups_open: i64,
    pub groups_succeeded: i64,
    pub groups_failed: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupMember {
    pub buyer_id: BuyerId,
    pub nickname: Option<String>,
    pub order_id: OrderId,
    /// held, paid, left, refunded or released.
    pub status: String,
    pub joined_at: Timestamp,
    pub leader: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub id: GroupId,
    pub activity_id: GroupBuyId,
    pub leader_id: BuyerId,
    pub capacity: i64,
    pub seats: i64,
    pub paid: i64,
    pub virtual_members: i64,
    /// open, succeeded or failed.
    pub status: String,
    pub opened_at: Timestamp,
    pub expires_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// Members who hold or held a seat, in the order they joined.
    pub members: Vec<GroupMember>,
}

type ActivityRow = (Uuid, String, i64, i64, i64, i64, i64, Option<i64>, bool, i64, String, i64, i64, i64);
type GroupRow = (Uuid, Uuid, Uuid, i64, i64, i64, i64, String, i64, i64, Option<i64>);

const ACTIVITY_SELECT: &str = "SELECT a.id, a.name, a.starts_at, a.ends_at, a.capacity, a.valid_hours, a.per_user, \
     a.virtual_bp, a.new_joiners_only, a.timeout_secs, a.status, \
     CAST((SELECT COUNT(*) FROM buy_groups g WHERE g.tenant_id = a.tenant_id AND g.activity_id = a.id AND g.status = 'open') AS BIGINT), \
     CAST((SELECT COUNT(*) FROM buy_groups g WHERE g.tenant_id = a.tenant_id AND g.activity_id = a.id AND g.status = 'succeeded') AS BIGINT), \
     CAST((SELECT COUNT(*) FROM buy_groups g WHERE g.tenant_id = a.tenant_id AND g.activity_id = a.id AND g.status = 'failed') AS BIGINT) \
     FROM group_buys a";

const GROUP_SELECT: &str = "SELECT id, activity_id, leader_id, capacity, seats, paid, virtual_members, status, \
     opened_at, expires_at, closed_at FROM buy_groups";

impl Store {
    /// Creates a group-buy over SKUs of one product; a SKU in another play over an overlapping
    /// window is refused (STK-1).
    pub async fn create_group_buy(&self, actor: &Actor, g: &GroupBuyInput) -> Result<GroupBuy> {
        let tenant = actor.tenant_id;
        let skus: Vec<SkuId> = self
            .activity_skus(
                tenant,
                g.skus.iter().map(|s| s.sku_id.as_str()),
                Some("a group-buy sells the SKUs of one product"),
            )
            .await?
            .into_iter()
            .map(|(sku, _)| sku)
            .collect();
        let id = GroupBuyId::new();
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tenants SET updated_at = updated_at WHERE id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
            for (i, sku) in skus.iter().enumerate() {
                if let Some(name) = activity_clash!(tx, tenant, sku, g.starts_at, g.ends_at, id) {
                    return Err(rejected(
                        "activity_overlaps",
                        Some(&format!("skus.{i}.sku_id")),
                        format!("this SKU is in “{name}” at the same time; a SKU is in one such activity at a time"),
                    ));
                }
            }
            sqlx::query(
                "INSERT INTO group_buys (tenant_id, id, name, starts_at, ends_at, capacity, valid_hours, per_user, \
                 virtual_bp, new_joiners_only, timeout_secs, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12, $12)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&g.name)
            .bind(g.starts_at.0)
            .bind(g.ends_at.0)
            .bind(g.capacity)
            .bind(g.valid_hours)
            .bind(g.per_user)
            .bind(g.virtual_bp)
            .bind(g.new_joiners_only)
            .bind(g.timeout_secs)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            for (sku, s) in skus.iter().zip(&g.skus) {
                sqlx::query(
                    "INSERT INTO group_buy_skus (tenant_id, activity_id, sku_id, price_fen, quota) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(sku.0)
                .bind(s.price_fen)
                .bind(s.quota)
                .execute(&mut *tx)
                .await?;
            }
            audit!(tx, self, actor, "group_buy.create", "group_buy", id, None, snapshot(g));
        });
        self.group_buy(tenant, id).await
    }

    pub async fn group_buy(&self, tenant: TenantId, id: GroupBuyId) -> Result<GroupBuy> {
        let sql = format!("{ACTIVITY_SELECT} WHERE a.tenant_id = $1 AND a.id = $2");
        let r: Option<ActivityRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        let r = r.ok_or(StoreError::NotFound)?;
        type SkuRow = (Uuid, Uuid, i64, i64, i64, i64, String, sqlx::types::Json<Vec<String>>);
        let skus: Vec<SkuRow> = on_read!(self, |p| sqlx::query_as(
            "SELECT k.sku_id, s.product_id, s.price_fen, k.price_fen, k.quota, k.taken, p.title, s.spec \
             FROM group_buy_skus k JOIN skus s ON s.tenant_id = k.tenant_id AND s.id = k.sku_id \
             JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id \
             WHERE k.tenant_id = $1 AND k.activity_id = $2 ORDER BY k.sku_id"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?);
        Ok(GroupBuy {
            id: GroupBuyId(r.0),
            name: r.1,
            product_id: ProductId(skus.first().map(|k| k.1).unwrap_or_default()),
            starts_at: Timestamp(r.2),
            ends_at: Timestamp(r.3),
            capacity: r.4,
            valid_hours: r.5,
            per_user: r.6,
            virtual_bp: r.7,
            new_joiners_only: r.8,
            timeout_secs: r.9,
            status: r.10,
            groups_open: r.11,
            groups_succeeded: r.12,
            groups_failed: r.13,
            skus: skus
                .into_iter()
                .map(|k| GroupSku {
                    sku_id: SkuId(k.0),
                    label: if k.7 .0.is_empty() { k.6 } else { format!("{} {}", k.6, k.7 .0.join(" / ")) },
                    list_fen: k.2,
                    price_fen: k.3,
                    quota: k.4,
                    taken: k.5,
                })
                .collect(),
        })
    }

    /// Activities, newest first: all, or with `open_at` those running then (for the mall).
    pub async fn group_buys(&self, tenant: TenantId, open_at: Option<Timestamp>) -> Result<Vec<GroupBuy>> {
        let ids: Vec<Uuid> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT id FROM group_buys WHERE tenant_id = $1 AND ($2 IS NULL OR (status = 'active' \
             AND starts_at <= $2 AND $2 < ends_at)) ORDER BY id DESC LIMIT 100"
        )
        .bind(tenant.0)
        .bind(open_at.map(|t| t.0))
        .fetch_all(p)
        .await?);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.group_buy(tenant, GroupBuyId(id)).await?);
        }
        Ok(out)
    }

    /// Stops an activity: no new group opens and no one joins; open groups run to their own
    /// deadline (GB-1: they keep what they opened with).
    pub async fn stop_group_buy(&self, actor: &Actor, id: GroupBuyId) -> Result<GroupBuy> {
        let tenant = actor.tenant_id;
        let now = self.now();
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE group_buys SET status = 'stopped', updated_at = $3 WHERE tenant_id = $1 AND id = $2 \
                 AND status = 'active'",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                audit!(tx, self, actor, "group_buy.stop", "group_buy", id, None, None);
            }
        });
        self.group_buy(tenant, id).await
    }

    pub async fn group(&self, tenant: TenantId, id: GroupId) -> Result<Group> {
        let sql = format!("{GROUP_SELECT} WHERE tenant_id = $1 AND id = $2");
        let r: Option<GroupRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        let mut out = self.with_members(tenant, r.into_iter().collect()).await?;
        out.pop().ok_or(StoreError::NotFound)
    }

    /// An activity's groups, newest first; `open_only` for those still filling (the mall lists
    /// them to join).
    pub async fn groups(&self, tenant: TenantId, activity: GroupBuyId, open_only: bool) -> Result<Vec<Group>> {
        let sql = format!(
            "{GROUP_SELECT} WHERE tenant_id = $1 AND activity_id = $2 AND ($3 = FALSE OR (status = 'open' \
             AND expires_at > $4 AND seats < capacity AND paid >= 1)) ORDER BY opened_at DESC LIMIT 200"
        );
        let now = self.now();
        let rows: Vec<GroupRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(activity.0)
            .bind(open_only)
            .bind(now.0)
            .fetch_all(p)
            .await?);
        self.with_members(tenant, rows).await
    }

    async fn with_members(&self, tenant: TenantId, rows: Vec<GroupRow>) -> Result<Vec<Group>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let members: Vec<(Uuid, Option<String>, Uuid, String, i64)> = on_read!(self, |p| sqlx::query_as(
                "SELECT m.buyer_id, b.nickname, m.order_id, m.status, m.joined_at FROM group_members m \
                 LEFT JOIN mall_buyers b ON b.tenant_id = m.tenant_id AND b.id = m.buyer_id \
                 WHERE m.tenant_id = $1 AND m.group_id = $2 ORDER BY m.joined_at, m.buyer_id"
            )
            .bind(tenant.0)
            .bind(r.0)
            .fetch_all(p)
            .await?);
            out.push(Group {
                id: GroupId(r.0),
                activity_id: GroupBuyId(r.1),
                leader_id: BuyerId(r.2),
                capacity: r.3,
                seats: r.4,
                paid: r.5,
                virtual_members: r.6,
                status: r.7,
                opened_at: Timestamp(r.8),
                expires_at: Timestamp(r.9),
                closed_at: r.10.map(Timestamp),
                members: members
                    .into_iter()
                    .map(|m| GroupMember {
                        leader: m.0 == r.2,
                        buyer_id: BuyerId(m.0),
                        nickname: m.1,
                        order_id: OrderId(m.2),
                        status: m.3,
                        joined_at: Timestamp(m.4),
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Opens a group (`group` = None) or takes a seat in one, with the order that pays for
    /// it. Window, seat, the buyer's place in the group (GB-9), their allowance, the
    /// activity's quota and the stock are taken in one transaction; anything refused changes
    /// nothing. A retry with the same client key returns the first order.
    pub async fn create_group_order(
        &self,
        tenant: TenantId,
        buyer: BuyerId,
        activity: GroupBuyId,
        group: Option<GroupId>,
        item: CartItem,
        client_key: Option<&str>,
    ) -> Result<Order> {
        if let Some(k) = client_key {
            if let Some(id) = self.order_id_by_client_key(tenant, buyer, k).await? {
                return self.order(tenant, id).await;
            }
        }
        let a = self.group_buy(tenant, activity).await?;
        let terms =
            a.skus.iter().find(|k| k.sku_id == item.sku_id).ok_or_else(|| {
                rejected("sku_not_in_sale", Some("items.0.sku_id"), "this item is not in the group-buy")
            })?;
        let qty = i64::from(item.qty);
        if qty < 1 || qty > a.per_user {
            return Err(rejected(
                "over_user_limit",
                Some("items.0.qty"),
                format!("each buyer may take {} in this group-buy", a.per_user),
            ));
        }
        let play = ActivityTerms { kind: ActivityKind::GroupBuy, sku: item.sku_id, price_fen: terms.price_fen };
        let priced = self.price_cart(tenant, &[item], None, Play::Activity(&play)).await?;
        let now = self.now();
        let id = OrderId::new();
        let gid = group.unwrap_or_default();
        let line = OneLine {
            id,
            no: order_no_for(self, tenant, now).await?,
            buyer,
            kind: "group",
            priced: &priced,
            client_key: client_key.map(str::to_string),
            now,
            expires_at: Timestamp(now.0 + a.timeout_secs * 1_000_000),
            group: Some(gid),
            bargain: None,
        };
        let placed: Result<()> = async {
            in_tx!(self, |tx| {
            let live: Option<i64> = sqlx::query_scalar(
                "SELECT ends_at FROM group_buys WHERE tenant_id = $1 AND id = $2 AND status = 'active' \
                 AND starts_at <= $3 AND $3 < ends_at",
            )
            .bind(tenant.0)
            .bind(activity.0)
            .bind(now.0)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(ends_at) = live else {
                return Err(rejected("activity_not_open", None, "the group-buy is not on now"));
            };
            match group {
                None => {
                    // GB-1, GB-2: the group keeps the size and hours it opened with.
                    sqlx::query(
                        "INSERT INTO buy_groups (tenant_id, id, activity_id, leader_id, capacity, seats, paid, status, \
                         opened_at, expires_at) VALUES ($1, $2, $3, $4, $5, 1, 0, 'open', $6, $7)",
                    )
                    .bind(tenant.0)
                    .bind(gid.0)
                    .bind(activity.0)
                    .bind(buyer.0)
                    .bind(a.capacity)
                    .bind(now.0)
                    .bind(expires_at(now, a.valid_hours, Timestamp(ends_at)).0)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(g) => {
                    // GB-3: the seat, only while the group is open, not full, before its
                    // deadline, and once its leader has paid.
                    let seated = sqlx::query(
                        "UPDATE buy_groups SET seats = seats + 1 WHERE tenant_id = $1 AND id = $2 AND activity_id = $3 \
                         AND status = 'open' AND seats < capacity AND paid >= 1 AND $4 < expires_at",
                    )
                    .bind(tenant.0)
                    .bind(g.0)
                    .bind(activity.0)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if seated == 0 {
                        let state: Option<(String, i64, i64, i64, i64)> = sqlx::query_as(
                            "SELECT status, seats, capacity, expires_at, paid FROM buy_groups WHERE tenant_id = $1 \
                             AND id = $2 AND activity_id = $3",
                        )
                        .bind(tenant.0)
                        .bind(g.0)
                        .bind(activity.0)
                        .fetch_optional(&mut *tx)
                        .await?;
                        return Err(match state {
                            None => rejected("bad_reference", Some("group_id"), "no such group in this group-buy"),
                            Some((s, seats, cap, exp, _)) if s == "open" && seats >= cap && now.0 < exp => {
                                rejected("group_full", Some("group_id"), "this group is full: open a new one")
                            }
                            Some((s, _, _, exp, 0)) if s == "open" && now.0 < exp => rejected(
                                "group_not_ready",
                                Some("group_id"),
                                "this group opens to members once its leader has paid",
                            ),
                            _ => rejected("group_closed", Some("group_id"), "this group is no longer taking members"),
                        });
                    }
                    if a.new_joiners_only {
                        let earlier: Option<Uuid> = sqlx::query_scalar(
                            "SELECT id FROM orders WHERE tenant_id = $1 AND buyer_id = $2 AND status NOT IN \
                             ('pending_payment', 'cancelled') LIMIT 1",
                        )
                        .bind(tenant.0)
                        .bind(buyer.0)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if earlier.is_some() {
                            return Err(rejected(
                                "new_customers_only",
                                Some("group_id"),
                                "this group-buy is for new customers: you can open your own group",
                            ));
                        }
                    }
                }
            }
            // GB-9: once per group; a member who was released or left may come back.
            let member = sqlx::query(
                "INSERT INTO group_members (tenant_id, group_id, buyer_id, order_id, status, joined_at) \
                 VALUES ($1, $2, $3, $4, 'held', $5) ON CONFLICT (tenant_id, group_id, buyer_id) DO UPDATE \
                 SET order_id = excluded.order_id, status = 'held', joined_at = excluded.joined_at, paid_at = NULL \
                 WHERE group_members.status IN ('released', 'left', 'refunded')",
            )
            .bind(tenant.0)
            .bind(gid.0)
            .bind(buyer.0)
            .bind(id.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if member == 0 {
                return Err(rejected("already_in_group", Some("group_id"), "you are in this group already"));
            }
            let counted = sqlx::query(
                "INSERT INTO group_buyers (tenant_id, activity_id, buyer_id, bought) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, activity_id, buyer_id) DO UPDATE SET bought = group_buyers.bought + $4 \
                 WHERE group_buyers.bought + $4 <= $5",
            )
            .bind(tenant.0)
            .bind(activity.0)
            .bind(buyer.0)
            .bind(qty)
            .bind(a.per_user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if counted == 0 {
                return Err(rejected(
                    "over_user_limit",
                    Some("items.0.qty"),
                    format!("each buyer may take {} in this group-buy", a.per_user),
                ));
            }
            let quota = sqlx::query(
                "UPDATE group_buy_skus SET taken = taken + $4 WHERE tenant_id = $1 AND activity_id = $2 AND sku_id = $3 \
                 AND taken + $4 <= quota",
            )
            .bind(tenant.0)
            .bind(activity.0)
            .bind(item.sku_id.0)
            .bind(qty)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let stock = if quota == 1 {
                sqlx::query(
                    "UPDATE skus SET reserved = reserved + $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                     AND on_hand - reserved >= $3",
                )
                .bind(tenant.0)
                .bind(item.sku_id.0)
                .bind(qty)
                .bind(now.0)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                0
            };
            if stock == 0 {
                return Err(rejected("sold_out", Some("items.0.sku_id"), "sold out"));
            }
            one_line_order!(tx, tenant, &line);
            });
            Ok(())
        }
        .await;
        self.placed_order(tenant, buyer, id, client_key, placed).await
    }

    /// A paid member leaves a group still filling (GB-10): refunded in full at once; the seat
    /// is free again. A leaving leader hands over to the earliest-joined paid member, and a
    /// group with no paid member left closes as failed (GB-11). Returns the closed order.
    pub async fn leave_group(&self, tenant: TenantId, order: OrderId, by: Option<&Actor>) -> Result<Order> {
        let now = self.now();
        in_tx!(self, |tx| {
            lock_group_of!(tx, tenant, order.0);
            let row: Option<(Uuid, Uuid, Uuid)> = sqlx::query_as(
                "SELECT g.id, g.leader_id, o.buyer_id FROM orders o JOIN buy_groups g ON g.tenant_id = o.tenant_id \
                 AND g.id = o.group_id WHERE o.tenant_id = $1 AND o.id = $2 AND g.status = 'open'",
            )
            .bind(tenant.0)
            .bind(order.0)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((g, leader, buyer)) = row else {
                return Err(rejected(
                    "not_in_open_group",
                    None,
                    "only a paid member of a group still filling can leave it; after it fills, ask for a refund",
                ));
            };
            if !unwind_member!(tx, tenant, order.0, now, "left the group", RefundKind::GroupLeft, "left") {
                return Err(rejected(
                    "not_in_open_group",
                    None,
                    "only a paid member of a group still filling can leave it; an unpaid order is cancelled instead",
                ));
            }
            sqlx::query("UPDATE buy_groups SET seats = seats - 1, paid = paid - 1 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(g)
                .execute(&mut *tx)
                .await?;
            if leader == buyer {
                let seats: Vec<(Uuid, i64, String)> = sqlx::query_as(
                    "SELECT buyer_id, joined_at, status FROM group_members WHERE tenant_id = $1 AND group_id = $2 \
                     AND status IN ('held', 'paid')",
                )
                .bind(tenant.0)
                .bind(g)
                .fetch_all(&mut *tx)
                .await?;
                let seats: Vec<Seat<Uuid>> = seats
                    .into_iter()
                    .map(|(key, at, s)| Seat { key, joined_at: Timestamp(at), paid: s == "paid" })
                    .collect();
                match next_leader(&seats) {
                    Some(next) => {
                        sqlx::query("UPDATE buy_groups SET leader_id = $3 WHERE tenant_id = $1 AND id = $2")
                            .bind(tenant.0)
                            .bind(g)
                            .bind(next)
                            .execute(&mut *tx)
                            .await?;
                    }
                    None => fail_group!(tx, tenant, g, now),
                }
            } else {
                let paid: i64 = sqlx::query_scalar("SELECT paid FROM buy_groups WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(g)
                    .fetch_one(&mut *tx)
                    .await?;
                if paid == 0 {
                    fail_group!(tx, tenant, g, now);
                }
            }
            if let Some(a) = by {
                audit!(tx, self, a, "order.leave_group", "order", order, None, None);
            }
        });
        self.order(tenant, order).await
    }

    /// Settles the groups whose deadline passed while still open (GB-6, GB-12): each in its
    /// own transaction that takes the group row first, so a payment racing it either filled
    /// the group before or finds it closed and is refunded. Running it twice changes nothing.
    pub async fn expire_due_groups(&self) -> Result<usize> {
        let now = self.now();
        let due: Vec<(Uuid, Uuid)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT tenant_id, id FROM buy_groups WHERE status = 'open' AND expires_at <= $1 ORDER BY expires_at LIMIT 200"
        )
        .bind(now.0)
        .fetch_all(p)
        .await?
        });
        let mut settled = 0;
        for (tenant, g) in due {
            let tenant = TenantId(tenant);
            let done = in_tx!(self, |tx| {
                let row: Option<(i64, i64, Uuid)> = sqlx::query_as(
                    "UPDATE buy_groups SET seats = seats WHERE tenant_id = $1 AND id = $2 AND status = 'open' \
                     AND expires_at <= $3 RETURNING paid, capacity, activity_id",
                )
                .bind(tenant.0)
                .bind(g)
                .bind(now.0)
                .fetch_optional(&mut *tx)
                .await?;
                match row {
                    None => false,
                    Some((paid, capacity, activity)) => {
                        let bp: Option<i64> =
                            sqlx::query_scalar("SELECT virtual_bp FROM group_buys WHERE tenant_id = $1 AND id = $2")
                                .bind(tenant.0)
                                .bind(activity)
                                .fetch_one(&mut *tx)
                                .await?;
                        match at_deadline(paid, capacity, bp) {
                            Expiry::Succeeds { virtual_members } => {
                                crate::group_succeeds!(tx, tenant, g, now, virtual_members);
                                settle_members!(tx, tenant, g, now, false);
                            }
                            Expiry::Fails => fail_group!(tx, tenant, g, now),
                        }
                        true
                    }
                }
            });
            settled += usize::from(done);
        }
        Ok(settled)
    }
}

//! Orders: pricing a cart from the catalogue, submitting it with its stock reserved in the same
//! transaction, and every later move of the order and its reservations.
//!
//! Submit (commerce-rules §1.1, ORD-2, ORD-3): the cart is priced by the one pipeline from the
//! catalogue's prices, then one transaction inserts the order and reserves each SKU's summed
//! demand in ascending id order (INV-4) with `UPDATE … WHERE on_hand − reserved >= q AND
//! price_fen = <the price quoted>`. A SKU sold out or repriced in between affects no row, and
//! the whole submit rolls back. A retry with the same client key returns the first order.
//!
//! Cancel and timeout go through [`Store::cancel_order`], which calls the one compensation
//! routine (`compensate`): each reservation is released at most once (INV-3).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::order::{self, Address, OrderEvent, OrderStatus, Outcome};
use siyu_core::commerce::presale::Phase;
use siyu_core::commerce::pricing::{self, Cart, Line, Quote, Shipping, MAX_QTY};
use siyu_core::commerce::pricing::{Activity, ActivityKind};
use siyu_core::paging::{Page, PageRequest};
use siyu_core::{
    BargainRecordId, BuyerId, CustomerId, GroupId, OrderId, PresaleId, ProductId, SkuId, TenantId, Timestamp,
};

use super::presales::Presale;

use super::rejected;
use crate::{audit, in_tx, like_escape, on_read, Result, Store, StoreError};

/// The one compensation routine (commerce-rules §0): gives back everything an unpaid order
/// holds, each at most once: stock (to its flash bucket while the sale runs), an activity's
/// quota and the buyer's allowance, a group seat, a bargain's claim, the coupon; points join
/// it here.
#[macro_export]
#[doc(hidden)]
macro_rules! compensate {
    ($tx:expr, $tenant:expr, $order:expr, $now:expr) => {{
        // The plays an order may hold a place in besides stock: a group seat, a bargain.
        let (group, bargain): (Option<uuid::Uuid>, Option<uuid::Uuid>) =
            sqlx::query_as("SELECT group_id, bargain_record_id FROM orders WHERE tenant_id = $1 AND id = $2")
                .bind($tenant.0)
                .bind($order.0)
                .fetch_one(&mut *$tx)
                .await?;
        let held: Vec<(uuid::Uuid, String, i64)> = sqlx::query_as(
            "SELECT sku_id, pool_id, qty FROM stock_reservations WHERE tenant_id = $1 AND order_id = $2 \
             AND status = 'reserved' ORDER BY sku_id",
        )
        .bind($tenant.0)
        .bind($order.0)
        .fetch_all(&mut *$tx)
        .await?;
        for (sku, pool, qty) in held {
            let n = sqlx::query(
                "UPDATE stock_reservations SET status = 'released', updated_at = $5 WHERE tenant_id = $1 \
                 AND order_id = $2 AND sku_id = $3 AND pool_id = $4 AND status = 'reserved'",
            )
            .bind($tenant.0)
            .bind($order.0)
            .bind(sku)
            .bind(&pool)
            .bind($now.0)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            // A flash sale's units ("{sale}:{bucket}") go back to their bucket while the sale
            // runs (its row taken first, as ending it does), and to the SKU once it has ended;
            // the buyer's allowance comes back with them.
            let flash = pool.split_once(':').and_then(|(s, b)| Some((s.parse::<uuid::Uuid>().ok()?, b.parse::<i64>().ok()?)));
            let mut to_bucket = false;
            if let (1, Some((sale, bucket))) = (n, flash) {
                let status: Option<String> = sqlx::query_scalar(
                    "UPDATE flash_sales SET updated_at = updated_at WHERE tenant_id = $1 AND id = $2 RETURNING status",
                )
                .bind($tenant.0)
                .bind(sale)
                .fetch_optional(&mut *$tx)
                .await?;
                if status.as_deref() == Some("active") {
                    sqlx::query(
                        "UPDATE flash_buckets SET remaining = remaining + $5 WHERE tenant_id = $1 AND sale_id = $2 \
                         AND sku_id = $3 AND bucket = $4",
                    )
                    .bind($tenant.0)
                    .bind(sale)
                    .bind(sku)
                    .bind(bucket)
                    .bind(qty)
                    .execute(&mut *$tx)
                    .await?;
                    to_bucket = true;
                }
                sqlx::query(
                    "UPDATE flash_buyers SET bought = bought - $4 WHERE tenant_id = $1 AND sale_id = $2 AND buyer_id = \
                     (SELECT buyer_id FROM orders WHERE tenant_id = $1 AND id = $3)",
                )
                .bind($tenant.0)
                .bind(sale)
                .bind($order.0)
                .bind(qty)
                .execute(&mut *$tx)
                .await?;
            }
            if n == 1 && !to_bucket {
                sqlx::query(
                    "UPDATE skus SET reserved = reserved - $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
                )
                .bind($tenant.0)
                .bind(sku)
                .bind(qty)
                .bind($now.0)
                .execute(&mut *$tx)
                .await?;
            }
            if n == 1 {
                // A presale's quota gets the units back with the shelf.
                sqlx::query(
                    "UPDATE presale_skus SET taken = taken - $4 WHERE tenant_id = $1 AND sku_id = $3 AND presale_id = \
                     (SELECT presale_id FROM orders WHERE tenant_id = $1 AND id = $2)",
                )
                .bind($tenant.0)
                .bind($order.0)
                .bind(sku)
                .bind(qty)
                .execute(&mut *$tx)
                .await?;
            }
            if let (1, Some(g)) = (n, group) {
                // The group-buy's quota and the buyer's allowance get the units back.
                sqlx::query(
                    "UPDATE group_buy_skus SET taken = taken - $4 WHERE tenant_id = $1 AND sku_id = $3 AND activity_id = \
                     (SELECT activity_id FROM buy_groups WHERE tenant_id = $1 AND id = $2)",
                )
                .bind($tenant.0)
                .bind(g)
                .bind(sku)
                .bind(qty)
                .execute(&mut *$tx)
                .await?;
                sqlx::query(
                    "UPDATE group_buyers SET bought = bought - $4 WHERE tenant_id = $1 AND activity_id = \
                     (SELECT activity_id FROM buy_groups WHERE tenant_id = $1 AND id = $2) AND buyer_id = \
                     (SELECT buyer_id FROM orders WHERE tenant_id = $1 AND id = $3)",
                )
                .bind($tenant.0)
                .bind(g)
                .bind($order.0)
                .bind(qty)
                .execute(&mut *$tx)
                .await?;
            }
            if let (1, Some(r)) = (n, bargain) {
                sqlx::query(
                    "UPDATE bargains SET taken = taken - $3 WHERE tenant_id = $1 AND id = \
                     (SELECT bargain_id FROM bargain_records WHERE tenant_id = $1 AND id = $2)",
                )
                .bind($tenant.0)
                .bind(r)
                .bind(qty)
                .execute(&mut *$tx)
                .await?;
            }
        }
        if let Some(g) = group {
            // An unpaid seat is released (GB-3); a group left with nobody closes.
            let left = sqlx::query(
                "UPDATE group_members SET status = 'released' WHERE tenant_id = $1 AND order_id = $2 AND status = 'held'",
            )
            .bind($tenant.0)
            .bind($order.0)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if left == 1 {
                sqlx::query("UPDATE buy_groups SET seats = seats - 1 WHERE tenant_id = $1 AND id = $2")
                    .bind($tenant.0)
                    .bind(g)
                    .execute(&mut *$tx)
                    .await?;
                sqlx::query(
                    "UPDATE buy_groups SET status = 'failed', closed_at = $3 WHERE tenant_id = $1 AND id = $2 \
                     AND status = 'open' AND seats = 0",
                )
                .bind($tenant.0)
                .bind(g)
                .bind($now.0)
                .execute(&mut *$tx)
                .await?;
            }
        }
        if let Some(r) = bargain {
            // The bargain may be ordered again before its deadline.
            sqlx::query(
                "UPDATE bargain_records SET order_id = NULL, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                 AND order_id = $3",
            )
            .bind($tenant.0)
            .bind(r)
            .bind($order.0)
            .bind($now.0)
            .execute(&mut *$tx)
            .await?;
        }
        // The coupon goes back to the buyer; past its validity it simply cannot be used (CP-3).
        sqlx::query(
            "UPDATE user_coupons SET status = 'unused', order_id = NULL WHERE tenant_id = $1 AND order_id = $2 \
             AND status = 'locked'",
        )
        .bind($tenant.0)
        .bind($order.0)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Puts an order's committed units back on the shelf (§1.1.4: returning them is its own
/// explicit movement, made once: the reservations move `committed → released`
/// conditionally), in the caller's transaction. Evaluates to the `(sku, qty)` it returned, for
/// the caller's quota.
#[macro_export]
#[doc(hidden)]
macro_rules! restock_committed {
    ($tx:expr, $tenant:expr, $order:expr, $now:expr) => {{
        let units: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
            "UPDATE stock_reservations SET status = 'released', updated_at = $3 WHERE tenant_id = $1 \
             AND order_id = $2 AND status = 'committed' RETURNING sku_id, qty",
        )
        .bind($tenant.0)
        .bind($order)
        .bind($now.0)
        .fetch_all(&mut *$tx)
        .await?;
        for (sku, qty) in &units {
            sqlx::query(
                "UPDATE skus SET on_hand = on_hand + $3, sold = sold - $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind($tenant.0)
            .bind(sku)
            .bind(qty)
            .bind($now.0)
            .execute(&mut *$tx)
            .await?;
        }
        units
    }};
}

/// Moves an order from `$from` to cancelled by one conditional update and closes its open
/// prepays, in the caller's transaction. Evaluates to `None` when it moved, or to the order's
/// current status when it was not `$from` (the caller decides what that means).
#[macro_export]
#[doc(hidden)]
macro_rules! cancel_from {
    ($tx:expr, $tenant:expr, $id:expr, $now:expr, $reason:expr, $from:expr) => {{
        let n = sqlx::query(
            "UPDATE orders SET status = 'cancelled', cancelled_at = $3, cancel_reason = $4, updated_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND status = $5",
        )
        .bind($tenant.0)
        .bind($id.0)
        .bind($now.0)
        .bind($reason)
        .bind($from.as_str())
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if n == 0 {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM orders WHERE tenant_id = $1 AND id = $2")
                    .bind($tenant.0)
                    .bind($id.0)
                    .fetch_optional(&mut *$tx)
                    .await?;
            Some(status.ok_or($crate::StoreError::NotFound)?)
        } else {
            sqlx::query(
                "UPDATE pay_prepays SET status = 'closed', updated_at = $3 WHERE tenant_id = $1 AND order_id = $2 \
                 AND status = 'open'",
            )
            .bind($tenant.0)
            .bind($id.0)
            .bind($now.0)
            .execute(&mut *$tx)
            .await?;
            None
        }
    }};
}

/// Inserts a one-line activity order (拼团, 砍价) with its line and stock reservation (pool
/// `''`), in the caller's transaction, for a buyer known to the mall. A client key used
/// already returns `Duplicate("client_key")` from the enclosing function, dropping (so rolling
/// back) the transaction; [`Store::placed_order`] turns that into the first order (FS-4).
#[macro_export]
#[doc(hidden)]
macro_rules! one_line_order {
    ($tx:expr, $tenant:expr, $o:expr) => {{
        let o: &$crate::commerce::orders::OneLine = $o;
        let q = &o.priced.quote;
        let inserted = sqlx::query(
            "INSERT INTO orders (tenant_id, id, no, buyer_id, customer_id, kind, status, list_fen, goods_fen, \
             shipping_fen, payable_fen, quote, client_key, created_at, expires_at, updated_at, group_id, \
             bargain_record_id) SELECT $1, $2, $3, $4, b.customer_id, $5, 'pending_payment', $6, $7, $8, $9, $10, \
             $11, $12, $13, $12, $14, $15 FROM mall_buyers b WHERE b.tenant_id = $1 AND b.id = $4",
        )
        .bind($tenant.0)
        .bind(o.id.0)
        .bind(&o.no)
        .bind(o.buyer.0)
        .bind(o.kind)
        .bind(q.list_total)
        .bind(q.goods)
        .bind(q.shipping_fee - q.shipping_discount)
        .bind(q.payable)
        .bind(sqlx::types::Json(q))
        .bind(o.client_key.as_deref())
        .bind(o.now.0)
        .bind(o.expires_at.0)
        .bind(o.group.map(|g| g.0))
        .bind(o.bargain.map(|b| b.0))
        .execute(&mut *$tx)
        .await;
        match inserted {
            Ok(r) if r.rows_affected() == 1 => {
                let (line, lq) = (&o.priced.items[0], &q.lines[0]);
                sqlx::query(
                    "INSERT INTO order_lines (tenant_id, order_id, line_no, sku_id, product_id, title, spec, qty, \
                     unit_list_fen, unit_price_fen, paid_fen, units, shares) VALUES ($1, $2, 0, $3, $4, $5, $6, $7, \
                     $8, $9, $10, $11, '[]')",
                )
                .bind($tenant.0)
                .bind(o.id.0)
                .bind(line.sku_id.0)
                .bind(line.product_id.0)
                .bind(&line.title)
                .bind(&line.spec)
                .bind(i64::from(line.qty))
                .bind(lq.unit_list)
                .bind(lq.unit_price)
                .bind(lq.paid)
                .bind(sqlx::types::Json(&lq.units))
                .execute(&mut *$tx)
                .await?;
                sqlx::query(
                    "INSERT INTO stock_reservations (tenant_id, order_id, sku_id, pool_id, qty, status, updated_at) \
                     VALUES ($1, $2, $3, '', $4, 'reserved', $5)",
                )
                .bind($tenant.0)
                .bind(o.id.0)
                .bind(line.sku_id.0)
                .bind(i64::from(line.qty))
                .bind(o.now.0)
                .execute(&mut *$tx)
                .await?;
            }
            Ok(_) => return Err($crate::StoreError::NotFound),
            Err(e) => return Err($crate::StoreError::constraint(e, "client_key")),
        }
    }};
}

/// A one-line activity order as [`one_line_order!`] writes it.
pub struct OneLine<'a> {
    pub id: OrderId,
    pub no: String,
    pub buyer: BuyerId,
    pub kind: &'static str,
    pub priced: &'a PricedCart,
    pub client_key: Option<String>,
    pub now: Timestamp,
    pub expires_at: Timestamp,
    pub group: Option<GroupId>,
    pub bargain: Option<BargainRecordId>,
}

/// Takes a group-buy order's group row lock before anything of the order (PostgreSQL), so
/// payment, cancel, leaving and the expiry job all lock group, then order: never a deadlock.
#[macro_export]
#[doc(hidden)]
macro_rules! lock_group_of {
    ($tx:expr, $tenant:expr, $order:expr) => {{
        sqlx::query(
            "UPDATE buy_groups SET seats = seats WHERE tenant_id = $1 AND id = \
             (SELECT group_id FROM orders WHERE tenant_id = $1 AND id = $2)",
        )
        .bind($tenant.0)
        .bind($order)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Writes a side effect to the outbox in the caller's transaction; the unique (kind,
/// aggregate, version) makes a repeat a no-op, so consumers see each event once.
#[macro_export]
#[doc(hidden)]
macro_rules! outbox {
    ($tx:expr, $tenant:expr, $kind:expr, $aggregate:expr, $version:expr, $payload:expr, $now:expr) => {{
        sqlx::query(
            "INSERT INTO commerce_outbox (tenant_id, id, kind, aggregate_id, version, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, kind, aggregate_id, version) DO NOTHING",
        )
        .bind($tenant.0)
        .bind(uuid::Uuid::now_v7())
        .bind($kind)
        .bind($aggregate)
        .bind($version as i64)
        .bind(sqlx::types::Json($payload))
        .bind($now.0)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Unpaid orders cancel after this long unless the tenant's payment settings say otherwise.
pub const DEFAULT_ORDER_TIMEOUT_SECS: i64 = 30 * 60;
/// A cart holds at most this many lines.
pub const MAX_LINES: usize = 50;

#[derive(Clone, Copy, Debug, serde::Deserialize, Serialize)]
pub struct CartItem {
    pub sku_id: SkuId,
    pub qty: u32,
}

/// A cart line with what the buyer sees beside it.
#[derive(Clone, Debug, Serialize)]
pub struct PricedItem {
    pub sku_id: SkuId,
    pub product_id: ProductId,
    pub title: String,
    pub spec: String,
    pub image: Option<String>,
    pub qty: u32,
    pub unit_list_fen: i64,
    pub available: i64,
}

/// Which play prices a cart: none, a presale's deposit order, or a one-SKU activity's order
/// (秒杀, 拼团, 砍价).
#[derive(Clone, Copy, Debug)]
pub enum Play<'a> {
    Plain,
    Presale(&'a Presale),
    Activity(&'a ActivityTerms),
}

/// A one-SKU activity's price for its SKU.
#[derive(Clone, Copy, Debug)]
pub struct ActivityTerms {
    pub kind: ActivityKind,
    pub sku: SkuId,
    pub price_fen: i64,
}

impl ActivityTerms {
    /// What a refusal calls the activity.
    fn noun(&self) -> &'static str {
        match self.kind {
            ActivityKind::GroupBuy => "group-buy",
            ActivityKind::Bargain => "bargain",
            _ => "flash-sale",
        }
    }
}

/// A priced cart: the quote and its lines, in the cart's order.
#[derive(Clone, Debug, Serialize)]
pub struct PricedCart {
    pub items: Vec<PricedItem>,
    pub quote: Quote,
    /// 满送 gifts the order gets (MS-1): only those in stock now; each is reserved with it.
    pub gifts: Vec<PricedGift>,
}

/// A gift line: a SKU at no charge.
#[derive(Clone, Debug, Serialize)]
pub struct PricedGift {
    pub sku_id: SkuId,
    pub product_id: ProductId,
    pub title: String,
    pub spec: String,
    pub qty: u32,
    /// The SKU's own price: its reservation is taken at it, like any line's.
    pub unit_list_fen: i64,
    /// The promotion that gives it.
    pub promo: String,
}

/// One step's share of a line.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LineShare {
    pub kind: String,
    pub source: Option<String>,
    pub fen: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OrderLine {
    pub line_no: i64,
    pub sku_id: SkuId,
    pub product_id: ProductId,
    pub title: String,
    pub spec: String,
    pub qty: i64,
    pub unit_list_fen: i64,
    pub unit_price_fen: i64,
    /// What the line's goods cost after every step (shipping is the order's).
    pub paid_fen: i64,
    /// The same, per unit (AL-3): refunds and commissions read these.
    pub units: Vec<i64>,
    pub shares: Vec<LineShare>,
    pub gift: bool,
    pub refunded_qty: i64,
    pub refunded_fen: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Order {
    pub id: OrderId,
    pub no: String,
    pub buyer_id: BuyerId,
    pub buyer_openid: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub kind: String,
    pub status: OrderStatus,
    pub list_fen: i64,
    pub goods_fen: i64,
    pub shipping_fen: i64,
    pub payable_fen: i64,
    pub paid_fen: i64,
    pub refunded_fen: i64,
    pub points_used: i64,
    /// The pricing steps as quoted at submit: why the price is what it is.
    pub quote: serde_json::Value,
    pub address: Option<Address>,
    pub note: Option<String>,
    pub transaction_id: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    pub cancel_reason: Option<String>,
    pub shipped_at: Option<Timestamp>,
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    pub received_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    /// For a presale order: its presale, the deposit due (or paid), and when it was paid.
    pub presale_id: Option<PresaleId>,
    pub deposit_fen: i64,
    pub deposit_paid_at: Option<Timestamp>,
    /// For a group-buy order: the group it holds a seat in.
    pub group_id: Option<GroupId>,
    /// For a bargain order: the bargain it buys at its price.
    pub bargain_record_id: Option<BargainRecordId>,
    pub lines: Vec<OrderLine>,
}

/// A submit.
#[derive(Clone, Debug)]
pub struct NewOrder {
    pub buyer: BuyerId,
    pub items: Vec<CartItem>,
    pub address: Option<Address>,
    pub note: Option<String>,
    /// The buyer's idempotency key for this submit (ORD-3).
    pub client_key: Option<String>,
    /// The payable the buyer was shown; a different server figure refuses the submit (ORD-2).
    pub expected_payable: Option<i64>,
    /// The coupon instance the buyer chose (CP-2: this one, never "any usable").
    pub coupon: Option<siyu_core::UserCouponId>,
    /// A presale's deposit order: the items are that presale's SKUs (PS-1).
    pub presale: Option<PresaleId>,
}

#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub buyer: Option<BuyerId>,
    /// Part of the order number.
    pub q: Option<String>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    no: String,
    buyer_id: Uuid,
    openid: Option<String>,
    customer_id: Option<Uuid>,
    kind: String,
    status: String,
    list_fen: i64,
    goods_fen: i64,
    shipping_fen: i64,
    payable_fen: i64,
    paid_fen: i64,
    refunded_fen: i64,
    points_used: i64,
    quote: Json<serde_json::Value>,
    address: Option<Json<Address>>,
    note: Option<String>,
    transaction_id: Option<String>,
    created_at: i64,
    expires_at: i64,
    paid_at: Option<i64>,
    cancelled_at: Option<i64>,
    cancel_reason: Option<String>,
    shipped_at: Option<i64>,
    carrier: Option<String>,
    tracking_no: Option<String>,
    received_at: Option<i64>,
    completed_at: Option<i64>,
    presale_id: Option<Uuid>,
    deposit_fen: i64,
    deposit_paid_at: Option<i64>,
    group_id: Option<Uuid>,
    bargain_record_id: Option<Uuid>,
}

const ORDER_SELECT: &str = "SELECT o.id, o.no, o.buyer_id, b.openid, o.customer_id, o.kind, o.status, o.list_fen, \
     o.goods_fen, o.shipping_fen, o.payable_fen, o.paid_fen, o.refunded_fen, o.points_used, o.quote, o.address, o.note, \
     o.transaction_id, o.created_at, o.expires_at, o.paid_at, o.cancelled_at, o.cancel_reason, o.shipped_at, o.carrier, \
     o.tracking_no, o.received_at, o.completed_at, o.presale_id, o.deposit_fen, o.deposit_paid_at, o.group_id, \
     o.bargain_record_id FROM orders o \
     LEFT JOIN mall_buyers b ON b.tenant_id = o.tenant_id AND b.id = o.buyer_id";

#[derive(sqlx::FromRow)]
struct LineRow {
    order_id: Uuid,
    line_no: i64,
    sku_id: Uuid,
    product_id: Uuid,
    title: String,
    spec: String,
    qty: i64,
    unit_list_fen: i64,
    unit_price_fen: i64,
    paid_fen: i64,
    units: Json<Vec<i64>>,
    shares: Json<Vec<LineShare>>,
    gift: bool,
    refunded_qty: i64,
    refunded_fen: i64,
}

impl OrderRow {
    fn into_order(self, lines: Vec<OrderLine>) -> Order {
        Order {
            id: OrderId(self.id),
            no: self.no,
            buyer_id: BuyerId(self.buyer_id),
            buyer_openid: self.openid,
            customer_id: self.customer_id.map(CustomerId),
            kind: self.kind,
            status: OrderStatus::parse(&self.status).unwrap_or(OrderStatus::Cancelled),
            list_fen: self.list_fen,
            goods_fen: self.goods_fen,
            shipping_fen: self.shipping_fen,
            payable_fen: self.payable_fen,
            paid_fen: self.paid_fen,
            refunded_fen: self.refunded_fen,
            points_used: self.points_used,
            quote: self.quote.0,
            address: self.address.map(|a| a.0),
            note: self.note,
            transaction_id: self.transaction_id,
            created_at: Timestamp(self.created_at),
            expires_at: Timestamp(self.expires_at),
            paid_at: self.paid_at.map(Timestamp),
            cancelled_at: self.cancelled_at.map(Timestamp),
            cancel_reason: self.cancel_reason,
            shipped_at: self.shipped_at.map(Timestamp),
            carrier: self.carrier,
            tracking_no: self.tracking_no,
            received_at: self.received_at.map(Timestamp),
            completed_at: self.completed_at.map(Timestamp),
            presale_id: self.presale_id.map(PresaleId),
            deposit_fen: self.deposit_fen,
            deposit_paid_at: self.deposit_paid_at.map(Timestamp),
            group_id: self.group_id.map(GroupId),
            bargain_record_id: self.bargain_record_id.map(BargainRecordId),
            lines,
        }
    }
}

fn line_from(r: LineRow) -> OrderLine {
    OrderLine {
        line_no: r.line_no,
        sku_id: SkuId(r.sku_id),
        product_id: ProductId(r.product_id),
        title: r.title,
        spec: r.spec,
        qty: r.qty,
        unit_list_fen: r.unit_list_fen,
        unit_price_fen: r.unit_price_fen,
        paid_fen: r.paid_fen,
        units: r.units.0,
        shares: r.shares.0,
        gift: r.gift,
        refunded_qty: r.refunded_qty,
        refunded_fen: r.refunded_fen,
    }
}

type SkuFacts = (
    Uuid,
    Uuid,
    Json<Vec<String>>,
    i64,
    i64,
    bool,
    String,
    String,
    Option<Uuid>,
    Json<Vec<String>>,
    Option<i64>,
    Option<i64>,
);

/// Each step's share of line `i`, for the line's record.
fn shares_of(q: &Quote, i: usize) -> Vec<LineShare> {
    q.steps
        .iter()
        .filter(|s| s.shares.get(i).copied().unwrap_or(0) > 0)
        .map(|s| LineShare {
            kind: serde_json::to_value(s.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            source: s.source.clone(),
            fen: s.shares[i],
        })
        .collect()
}

/// An order number customers can read out: local date and time, then six random digits.
/// Ten random digits keep collisions rare at thousands of orders a second; the unique index
/// catches the rest and the submit draws again.
fn order_no(now: Timestamp, offset_hours: i8) -> String {
    use rand::Rng;
    let local = now.0 / 1_000_000 + i64::from(offset_hours) * 3600;
    let t = time::OffsetDateTime::from_unix_timestamp(local).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}{:010}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        rand::thread_rng().gen_range(0..10_000_000_000u64)
    )
}

/// A fresh order number in the tenant's zone.
pub(crate) async fn order_no_for(store: &Store, tenant: TenantId, now: Timestamp) -> Result<String> {
    let zone: Option<String> = on_read!(store, |p| sqlx::query_scalar("SELECT timezone FROM tenants WHERE id = $1")
        .bind(tenant.0)
        .fetch_optional(p)
        .await?);
    let off = zone.as_deref().and_then(siyu_core::time::zone_offset_hours).unwrap_or(8);
    Ok(order_no(now, off))
}

/// The insert collided with another order's number (not with a client key).
fn is_number_collision(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation() && (d.constraint() == Some("ux_orders_no") || d.message().contains("orders.no"))
        }
        _ => false,
    }
}

impl Store {
    /// Prices a cart from the catalogue with the one pipeline (the quote endpoint and submit
    /// both call this, so they agree: PC-4).
    pub async fn price_cart(
        &self,
        tenant: TenantId,
        items: &[CartItem],
        coupon: Option<&super::coupons::UserCoupon>,
        play: Play<'_>,
    ) -> Result<PricedCart> {
        let (presale, flash) = match play {
            Play::Plain => (None, None),
            Play::Presale(p) => (Some(p), None),
            Play::Activity(f) => (None, Some(f)),
        };
        if items.is_empty() {
            return Err(rejected("empty_cart", Some("items"), "the cart is empty"));
        }
        if items.len() > MAX_LINES {
            return Err(rejected("too_many_lines", Some("items"), format!("at most {MAX_LINES} lines")));
        }
        for (i, it) in items.iter().enumerate() {
            if !(1..=MAX_QTY).contains(&it.qty) {
                return Err(rejected(
                    "bad_quantity",
                    Some(&format!("items.{i}.qty")),
                    format!("a quantity is 1 to {MAX_QTY}"),
                ));
            }
        }
        let facts: Vec<SkuFacts> = on_read!(self, |p| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT k.id, k.product_id, k.spec, k.price_fen, k.on_hand - k.reserved, k.active, p.title, p.status, \
                 p.category_id, p.images, t.fee_fen, t.free_from_fen FROM skus k \
                 JOIN products p ON p.tenant_id = k.tenant_id AND p.id = k.product_id \
                 LEFT JOIN shipping_templates t ON t.tenant_id = p.tenant_id AND t.id = p.shipping_template_id \
                 WHERE k.tenant_id = ",
            );
            qb.push_bind(tenant.0).push(" AND k.id IN (");
            let mut sep = qb.separated(", ");
            for it in items {
                sep.push_bind(it.sku_id.0);
            }
            qb.push(")");
            qb.build_query_as::<SkuFacts>().fetch_all(p).await?
        });
        let by_id: BTreeMap<Uuid, &SkuFacts> = facts.iter().map(|f| (f.0, f)).collect();
        let now = self.now();
        // A SKU a presale holds sells only through it (STK-1); a presale's order takes only
        // its SKUs, at its price, and nothing else (STK-2).
        match presale {
            Some(p) => {
                if coupon.is_some() {
                    return Err(rejected("coupon_not_allowed", Some("coupon_id"), "presale orders take no coupon"));
                }
                if p.status != "active" || p.phase(now) != Phase::Deposit {
                    return Err(rejected("presale_not_open", Some("presale_id"), "deposits are not being taken now"));
                }
                if let Some(i) = items.iter().position(|it| p.terms_of(it.sku_id).is_none()) {
                    return Err(rejected(
                        "sku_not_in_presale",
                        Some(&format!("items.{i}.sku_id")),
                        "this item is not part of the presale",
                    ));
                }
            }
            None if flash.is_some() => {
                // An activity's order is its one SKU at the activity's price, nothing else
                // (FS-6, STK-2: no coupon, 满减 or item promotion).
                let noun = flash.map_or("", |f| f.noun());
                if coupon.is_some() {
                    return Err(rejected(
                        "coupon_not_allowed",
                        Some("coupon_id"),
                        format!("{noun} orders take no coupon"),
                    ));
                }
                if items.len() != 1 || flash.is_some_and(|f| f.sku != items[0].sku_id) {
                    return Err(rejected(
                        "sku_not_in_sale",
                        Some("items"),
                        format!("a {noun} order is one of its items"),
                    ));
                }
            }
            None => {
                let skus: Vec<SkuId> = items.iter().map(|it| it.sku_id).collect();
                let held = self.skus_in_presale(tenant, &skus, now).await?;
                if let Some(i) = items.iter().position(|it| held.contains(&it.sku_id)) {
                    return Err(rejected(
                        "sku_in_presale",
                        Some(&format!("items.{i}.sku_id")),
                        "this item is on presale: pay its deposit from the product page",
                    ));
                }
            }
        }
        // A line is in a category's scope when its category or any ancestor is.
        // Promotions running now are part of the price (their window is tested at submit).
        let plain = presale.is_none() && flash.is_none();
        let promos = if plain { self.running_promotions(tenant, now).await? } else { Vec::new() };
        // Item promotions running now (限时折扣, 第二件半价); a presale's lines take none.
        let running = if !plain {
            super::discounts::RunningDiscounts::default()
        } else {
            let skus: Vec<SkuId> = items.iter().map(|it| it.sku_id).collect();
            let products: Vec<ProductId> = facts.iter().map(|f| ProductId(f.1)).collect();
            self.running_discounts(tenant, &skus, &products, now).await?
        };
        // Only scopes look at categories; a cart with neither coupon nor promotion skips the read.
        let parents: BTreeMap<Uuid, Option<Uuid>> = if coupon.is_some() || !promos.is_empty() {
            self.categories(tenant).await?.into_iter().map(|c| (c.id.0, c.parent_id.map(|p| p.0))).collect()
        } else {
            BTreeMap::new()
        };
        let lineage = |c: Option<Uuid>| {
            let mut out: Vec<String> = Vec::new();
            let mut cur = c;
            while let Some(x) = cur.filter(|x| !out.contains(&x.to_string()) && out.len() < 16) {
                out.push(x.to_string());
                cur = parents.get(&x).copied().flatten();
            }
            out
        };
        let mut lines = Vec::with_capacity(items.len());
        let mut priced = Vec::with_capacity(items.len());
        let mut shipping = Shipping::default();
        for (i, it) in items.iter().enumerate() {
            let f = by_id.get(&it.sku_id.0).filter(|f| f.5 && f.7 == "listed").ok_or_else(|| {
                rejected("sku_unavailable", Some(&format!("items.{i}.sku_id")), "this item is no longer on sale")
            })?;
            // Lines of different templates ship together at the highest fee, with that
            // template's free-shipping threshold.
            if let Some(fee) = f.10 {
                if fee > shipping.fee || (shipping.fee == 0 && shipping.free_from.is_none()) {
                    shipping = Shipping { fee, free_from: f.11 };
                }
            }
            lines.push(Line {
                sku: it.sku_id.to_string(),
                product: f.1.to_string(),
                categories: lineage(f.8),
                unit_list: f.3,
                qty: it.qty,
                paid_member_unit: None,
                // A presale unit costs its deposit plus its balance, all told; a 限时折扣
                // price applies only while below the SKU's own (LD-1).
                activity: match presale.and_then(|p| p.terms_of(it.sku_id)) {
                    _ if flash.is_some() => flash.map(|f| Activity {
                        kind: f.kind,
                        unit_price: f.price_fen,
                        allow_coupon_and_points: false,
                    }),
                    Some(t) => Some(Activity {
                        kind: ActivityKind::PresaleBalance,
                        unit_price: t.terms.total_fen(),
                        allow_coupon_and_points: false,
                    }),
                    None => running.prices.get(&it.sku_id).filter(|(_, p)| *p < f.3).map(|(_, p)| Activity {
                        kind: ActivityKind::LimitedDiscount,
                        unit_price: *p,
                        allow_coupon_and_points: true,
                    }),
                },
            });
            priced.push(PricedItem {
                sku_id: it.sku_id,
                product_id: ProductId(f.1),
                title: f.6.clone(),
                spec: f.2 .0.join(" / "),
                image: f.9 .0.first().cloned(),
                qty: it.qty,
                unit_list_fen: f.3,
                available: f.4,
            });
        }
        let coupons = coupon
            .map(|c| pricing::Coupon { id: c.id.to_string(), kind: c.kind.clone(), scope: c.scope.clone() })
            .into_iter()
            .collect();
        let promos = promos.iter().map(|p| p.as_promo()).collect();
        let second_half = running
            .second_half
            .into_iter()
            .map(|(id, products)| pricing::SecondHalf {
                id,
                scope: pricing::Scope {
                    products: products.iter().map(ToString::to_string).collect(),
                    ..Default::default()
                },
            })
            .collect();
        let bundles = running.bundles;
        let cart = Cart { lines, shipping, coupons, promos, second_half, bundles, ..Default::default() };
        let quote = pricing::quote(&cart).map_err(|e| rejected("pricing", None, e.to_string()))?;
        // A gift is given only while it is in stock (MS-1); one out of stock is left out.
        let mut gifts = Vec::new();
        for g in &quote.gifts {
            let Ok(id) = g.sku.parse::<Uuid>() else { continue };
            match self.sku(tenant, SkuId(id)).await {
                Ok(k) if k.active && k.available >= i64::from(g.qty) => {
                    let product = self.product(tenant, k.product_id).await?;
                    gifts.push(PricedGift {
                        sku_id: k.id,
                        product_id: k.product_id,
                        title: product.title,
                        spec: k.spec.join(" / "),
                        qty: g.qty,
                        unit_list_fen: k.price_fen,
                        promo: g.promo.clone(),
                    });
                }
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(PricedCart { items: priced, quote, gifts })
    }

    /// Submits an order: prices it, then inserts it and reserves its stock in one transaction.
    pub async fn create_order(&self, tenant: TenantId, n: &NewOrder) -> Result<Order> {
        if let Some(k) = &n.client_key {
            if let Some(id) = self.order_by_client_key(tenant, n.buyer, k).await? {
                return self.order(tenant, id).await;
            }
        }
        let now = self.now();
        let coupon = match n.coupon {
            Some(id) => {
                let c = self.user_coupon(tenant, id).await.map_err(|e| match e {
                    StoreError::NotFound => rejected("coupon_unavailable", Some("coupon_id"), "no such coupon"),
                    other => other,
                })?;
                if !c.usable(now) {
                    return Err(rejected(
                        "coupon_unavailable",
                        Some("coupon_id"),
                        "this coupon is used, held by another order, or not valid now",
                    ));
                }
                Some(c)
            }
            None => None,
        };
        let presale = match n.presale {
            Some(id) => Some(self.presale(tenant, id).await.map_err(|e| match e {
                StoreError::NotFound => rejected("presale_not_open", Some("presale_id"), "no such presale"),
                other => other,
            })?),
            None => None,
        };
        let play = presale.as_ref().map_or(Play::Plain, Play::Presale);
        let priced = self.price_cart(tenant, &n.items, coupon.as_ref(), play).await?;
        let q = &priced.quote;
        // The deposit due now, and the presale's quota each SKU draws on.
        let deposit: i64 = presale.as_ref().map_or(0, |p| {
            priced
                .items
                .iter()
                .filter_map(|it| p.terms_of(it.sku_id).map(|t| t.terms.deposit_fen * i64::from(it.qty)))
                .sum()
        });
        if let Some(expected) = n.expected_payable {
            if expected != q.payable {
                return Err(rejected(
                    "price_changed",
                    Some("expected_payable"),
                    format!("the amount to pay is now {} fen, not {expected}; review the new quote", q.payable),
                ));
            }
        }
        // The tenant's zone, its order timeout and the buyer's customer, in one read.
        let (zone, timeout, customer): (String, Option<i64>, Option<Uuid>) = on_read!(self, |p| sqlx::query_as(
            "SELECT t.timezone, s.order_timeout_secs, b.customer_id FROM tenants t \
             LEFT JOIN pay_settings s ON s.tenant_id = t.id \
             LEFT JOIN mall_buyers b ON b.tenant_id = t.id AND b.id = $2 WHERE t.id = $1"
        )
        .bind(tenant.0)
        .bind(n.buyer.0)
        .fetch_optional(p)
        .await?
        .ok_or(StoreError::NotFound)?);
        let off = siyu_core::time::zone_offset_hours(&zone).unwrap_or(8);
        let timeout = timeout.unwrap_or(DEFAULT_ORDER_TIMEOUT_SECS);
        // An unpaid deposit order lapses with the deposit window at the latest.
        let expires_at = presale
            .as_ref()
            .map_or(now.0 + timeout * 1_000_000, |p| (now.0 + timeout * 1_000_000).min(p.windows.deposit_end.0));
        let id = OrderId::new();
        // Demand per SKU, summed over lines (INV-4) and taken in id order so two submits
        // never wait on each other's rows in opposite orders.
        let mut demand: BTreeMap<Uuid, (i64, i64, usize)> = BTreeMap::new();
        for (i, it) in priced.items.iter().enumerate() {
            let e = demand.entry(it.sku_id.0).or_insert((0, it.unit_list_fen, i));
            e.0 += i64::from(it.qty);
        }
        // Gifts are reserved with the order (INV-4); their lines follow the items'.
        for (j, g) in priced.gifts.iter().enumerate() {
            let e = demand.entry(g.sku_id.0).or_insert((0, g.unit_list_fen, priced.items.len() + j));
            e.0 += i64::from(g.qty);
        }
        let mut draws = 0;
        loop {
            draws += 1;
            in_tx!(self, |tx| {
                let inserted = sqlx::query(
                "INSERT INTO orders (tenant_id, id, no, buyer_id, customer_id, kind, status, list_fen, goods_fen, \
                 shipping_fen, payable_fen, points_used, quote, address, note, client_key, created_at, expires_at, updated_at, \
                 presale_id, deposit_fen) VALUES ($1, $2, $3, $4, $5, $17, 'pending_payment', $6, $7, $8, $9, $10, $11, $12, \
                 $13, $14, $15, $16, $15, $18, $19)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(order_no(now, off))
            .bind(n.buyer.0)
            .bind(customer)
            .bind(q.list_total)
            .bind(q.goods)
            .bind(q.shipping_fee - q.shipping_discount)
            .bind(q.payable)
            .bind(q.points_used)
            .bind(Json(q))
            .bind(n.address.as_ref().map(Json))
            .bind(&n.note)
            .bind(&n.client_key)
            .bind(now.0)
            .bind(expires_at)
            .bind(if presale.is_some() { "presale" } else { "normal" })
            .bind(presale.as_ref().map(|p| p.id.0))
            .bind(deposit)
            .execute(&mut *tx)
            .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_number_collision(&e) && draws < 5 => {
                        tx.rollback().await?;
                        continue;
                    }
                    Err(e) => match StoreError::constraint(e, "client_key") {
                        StoreError::Duplicate("client_key") => {
                            // Give the connection back before reading: holding it while waiting
                            // for another would starve the pool under load.
                            tx.rollback().await?;
                            let k = n.client_key.as_deref().unwrap_or_default();
                            let id = self.order_by_client_key(tenant, n.buyer, k).await?.ok_or(StoreError::NotFound)?;
                            return self.order(tenant, id).await;
                        }
                        other => return Err(other),
                    },
                }
                if let Some(c) = &coupon {
                    // CP-2: the instance the buyer chose, theirs, unused and valid, bound to this order.
                    let locked = sqlx::query(
                        "UPDATE user_coupons SET status = 'locked', order_id = $3 WHERE tenant_id = $1 AND id = $2 \
                     AND buyer_id = $4 AND status = 'unused' AND valid_start <= $5 AND $5 < valid_end",
                    )
                    .bind(tenant.0)
                    .bind(c.id.0)
                    .bind(id.0)
                    .bind(n.buyer.0)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if locked == 0 {
                        tx.rollback().await?;
                        return Err(rejected(
                            "coupon_unavailable",
                            Some("coupon_id"),
                            "this coupon is used, held by another order, or not valid now",
                        ));
                    }
                    sqlx::query("UPDATE orders SET coupon_id = $3 WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.0)
                        .bind(id.0)
                        .bind(c.id.0)
                        .execute(&mut *tx)
                        .await?;
                }
                for (i, (it, lq)) in priced.items.iter().zip(&q.lines).enumerate() {
                    sqlx::query(
                        "INSERT INTO order_lines (tenant_id, order_id, line_no, sku_id, product_id, title, spec, qty, \
                     unit_list_fen, unit_price_fen, paid_fen, units, shares) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    )
                    .bind(tenant.0)
                    .bind(id.0)
                    .bind(i as i64)
                    .bind(it.sku_id.0)
                    .bind(it.product_id.0)
                    .bind(&it.title)
                    .bind(&it.spec)
                    .bind(i64::from(it.qty))
                    .bind(lq.unit_list)
                    .bind(lq.unit_price)
                    .bind(lq.paid)
                    .bind(Json(&lq.units))
                    .bind(Json(shares_of(q, i)))
                    .execute(&mut *tx)
                    .await?;
                }
                for (j, g) in priced.gifts.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO order_lines (tenant_id, order_id, line_no, sku_id, product_id, title, spec, qty, \
                         unit_list_fen, unit_price_fen, paid_fen, units, shares, gift) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, $10, $11, TRUE)",
                    )
                    .bind(tenant.0)
                    .bind(id.0)
                    .bind((priced.items.len() + j) as i64)
                    .bind(g.sku_id.0)
                    .bind(g.product_id.0)
                    .bind(&g.title)
                    .bind(&g.spec)
                    .bind(i64::from(g.qty))
                    .bind(g.unit_list_fen)
                    .bind(Json(vec![0_i64; g.qty as usize]))
                    .bind(Json(vec![LineShare { kind: "gift".into(), source: Some(g.promo.clone()), fen: 0 }]))
                    .execute(&mut *tx)
                    .await?;
                }
                for (sku, (qty, _, _)) in &demand {
                    sqlx::query(
                    "INSERT INTO stock_reservations (tenant_id, order_id, sku_id, pool_id, qty, status, updated_at) \
                     VALUES ($1, $2, $3, '', $4, 'reserved', $5)",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(sku)
                .bind(qty)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
                }
                if let Some(p) = &presale {
                    for (sku, (qty, _, line)) in &demand {
                        let n = sqlx::query(
                            "UPDATE presale_skus SET taken = taken + $4 WHERE tenant_id = $1 AND presale_id = $2 \
                             AND sku_id = $3 AND taken + $4 <= quota",
                        )
                        .bind(tenant.0)
                        .bind(p.id.0)
                        .bind(sku)
                        .bind(qty)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if n == 0 {
                            tx.rollback().await?;
                            let left = p.terms_of(SkuId(*sku)).map_or(0, |t| t.quota - t.taken);
                            return Err(rejected(
                                "presale_sold_out",
                                Some(&format!("items.{line}.qty")),
                                format!("the presale has about {} left of this item", left.max(0)),
                            ));
                        }
                    }
                }
                // The hot SKU rows are touched last, so their row locks are held only until commit.
                let mut short = None;
                for (sku, (qty, price, line)) in &demand {
                    let n = sqlx::query(
                        "UPDATE skus SET reserved = reserved + $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                     AND active = TRUE AND price_fen = $5 AND on_hand - reserved >= $3",
                    )
                    .bind(tenant.0)
                    .bind(sku)
                    .bind(qty)
                    .bind(now.0)
                    .bind(price)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        short = Some((*line, *sku));
                        break;
                    }
                }
                if let Some((line, sku)) = short {
                    // Roll back the reservations made, and free the connection before explaining.
                    tx.rollback().await?;
                    if line >= priced.items.len() {
                        return Err(rejected(
                            "gift_out_of_stock",
                            None,
                            "the gift has just run out; review the new quote and submit again",
                        ));
                    }
                    return Err(self.why_not_reserved(tenant, line, SkuId(sku), &priced).await);
                }
            });
            break;
        }
        tracing::debug!(%tenant, order = %id, payable = q.payable, "order submitted");
        self.order(tenant, id).await
    }

    /// Explains a reservation that affected no row: repriced, withdrawn, or short of stock.
    async fn why_not_reserved(&self, tenant: TenantId, line: usize, sku: SkuId, priced: &PricedCart) -> StoreError {
        let name = format!("items.{line}.sku_id");
        let field = Some(name.as_str());
        match self.sku(tenant, sku).await {
            Ok(s) if !s.active => rejected("sku_unavailable", field, "this item is no longer on sale"),
            Ok(s) if s.price_fen != priced.items[line].unit_list_fen => {
                rejected("price_changed", field, "the price of this item changed; review the new quote")
            }
            Ok(s) => rejected(
                "out_of_stock",
                field,
                format!("only {} left of {} {}", s.available.max(0), priced.items[line].title, priced.items[line].spec),
            ),
            Err(e) => e,
        }
    }

    /// What placing a one-line activity order comes to: the new order, or for a client key
    /// used already the first order it placed (FS-4).
    pub(crate) async fn placed_order(
        &self,
        tenant: TenantId,
        buyer: BuyerId,
        id: OrderId,
        client_key: Option<&str>,
        placed: Result<()>,
    ) -> Result<Order> {
        match (placed, client_key) {
            (Ok(()), _) => self.order(tenant, id).await,
            (Err(StoreError::Duplicate("client_key")), Some(k)) => {
                let first = self.order_id_by_client_key(tenant, buyer, k).await?.ok_or(StoreError::NotFound)?;
                self.order(tenant, first).await
            }
            (Err(e), _) => Err(e),
        }
    }

    pub(crate) async fn order_id_by_client_key(
        &self,
        tenant: TenantId,
        buyer: BuyerId,
        key: &str,
    ) -> Result<Option<OrderId>> {
        self.order_by_client_key(tenant, buyer, key).await
    }

    async fn order_by_client_key(&self, tenant: TenantId, buyer: BuyerId, key: &str) -> Result<Option<OrderId>> {
        let id: Option<Uuid> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT id FROM orders WHERE tenant_id = $1 AND buyer_id = $2 AND client_key = $3"
        )
        .bind(tenant.0)
        .bind(buyer.0)
        .bind(key)
        .fetch_optional(p)
        .await?);
        Ok(id.map(OrderId))
    }

    pub async fn order(&self, tenant: TenantId, id: OrderId) -> Result<Order> {
        let sql = format!("{ORDER_SELECT} WHERE o.tenant_id = $1 AND o.id = $2");
        let row: Option<OrderRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        let row = row.ok_or(StoreError::NotFound)?;
        Ok(self.with_lines(tenant, vec![row]).await?.remove(0))
    }

    /// Orders, newest first.
    pub async fn orders(&self, tenant: TenantId, f: &OrderFilter, page: &PageRequest) -> Result<Page<Order>> {
        let q = f.q.as_deref().map(|q| format!("%{}%", like_escape(q)));
        let sql = format!(
            "{ORDER_SELECT} WHERE o.tenant_id = $1 AND ($2 IS NULL OR o.id < $2) AND ($3 IS NULL OR o.status = $3) \
             AND ($4 IS NULL OR o.buyer_id = $4) AND ($5 IS NULL OR o.no LIKE $5 ESCAPE '\\') \
             AND ($6 IS NULL OR o.created_at >= $6) AND ($7 IS NULL OR o.created_at < $7) ORDER BY o.id DESC LIMIT $8"
        );
        let rows: Vec<OrderRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(page.before)
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.buyer.map(|b| b.0))
            .bind(&q)
            .bind(f.created_from.map(|t| t.0))
            .bind(f.created_to.map(|t| t.0))
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        let items = self.with_lines(tenant, rows).await?;
        Ok(Page::from_rows(items, page, |o| o.id.0))
    }

    async fn with_lines(&self, tenant: TenantId, rows: Vec<OrderRow>) -> Result<Vec<Order>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let lines: Vec<LineRow> = on_read!(self, |p| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT order_id, line_no, sku_id, product_id, title, spec, qty, unit_list_fen, unit_price_fen, paid_fen, \
                 units, shares, gift, refunded_qty, refunded_fen FROM order_lines WHERE tenant_id = ",
            );
            qb.push_bind(tenant.0).push(" AND order_id IN (");
            let mut sep = qb.separated(", ");
            for r in &rows {
                sep.push_bind(r.id);
            }
            qb.push(") ORDER BY order_id, line_no");
            qb.build_query_as::<LineRow>().fetch_all(p).await?
        });
        let mut by_order: BTreeMap<Uuid, Vec<OrderLine>> = BTreeMap::new();
        for l in lines {
            by_order.entry(l.order_id).or_default().push(line_from(l));
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let lines = by_order.remove(&r.id).unwrap_or_default();
                r.into_order(lines)
            })
            .collect())
    }

    /// Cancels an unpaid order (the buyer, an operator, or the timeout) and gives back what it
    /// held. Cancelling a cancelled order changes nothing; a paid one is refused.
    pub async fn cancel_order(&self, tenant: TenantId, id: OrderId, reason: &str, by: Option<&Actor>) -> Result<Order> {
        let now = self.now();
        in_tx!(self, |tx| {
            lock_group_of!(tx, tenant, id.0);
            if let Some(status) = cancel_from!(tx, tenant, id, now, reason, OrderStatus::PendingPayment) {
                let from = OrderStatus::parse(&status).unwrap_or(OrderStatus::Cancelled);
                match order::apply(from, OrderEvent::Cancel, false) {
                    Ok(Outcome::Already) => {}
                    Ok(Outcome::To(_)) if from == OrderStatus::AwaitingBalance => {
                        tx.rollback().await?;
                        // The merchant closing one order refunds its deposit; the buyer giving
                        // up or the balance lapsing follows the presale's terms (PS-2).
                        self.close_presale_order(tenant, id, reason, by.is_some(), by).await?;
                        return self.order(tenant, id).await;
                    }
                    _ => {
                        return Err(rejected(
                            "order_not_cancellable",
                            None,
                            format!("an order that is {status} cannot be cancelled; ask for a refund instead"),
                        ))
                    }
                }
            } else {
                compensate!(tx, tenant, id, now);
                if let Some(a) = by {
                    audit!(
                        tx,
                        self,
                        a,
                        "order.cancel",
                        "order",
                        id,
                        None,
                        Some(serde_json::json!({ "reason": reason }))
                    );
                }
            }
        });
        self.order(tenant, id).await
    }

    /// Unpaid orders past their deadline, oldest first, across tenants: the timeout sweep's
    /// work list. Cancelling stays conditional, so two sweeps never cancel twice.
    pub async fn due_unpaid_orders(&self, limit: i64) -> Result<Vec<(TenantId, OrderId)>> {
        let rows: Vec<(Uuid, Uuid)> = on_read!(self, |p| sqlx::query_as(
            "SELECT tenant_id, id FROM orders WHERE status IN ('pending_payment', 'awaiting_balance') \
             AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
        )
        .bind(self.now().0)
        .bind(limit)
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(|r| (TenantId(r.0), OrderId(r.1))).collect())
    }

    /// Moves a paid order along (ship, receive, complete) by one conditional update.
    pub async fn advance_order(
        &self,
        tenant: TenantId,
        id: OrderId,
        event: OrderEvent,
        by: Option<&Actor>,
        shipment: Option<(&str, &str)>,
    ) -> Result<Order> {
        let now = self.now();
        let current = self.order(tenant, id).await?;
        if let (OrderEvent::Ship, Some(p)) = (event, current.presale_id) {
            let p = self.presale(tenant, p).await?;
            if now < p.ship_from {
                return Err(rejected(
                    "ship_too_early",
                    None,
                    "this presale promised shipping from a later date; it cannot ship before then",
                ));
            }
        }
        let to = match order::apply(current.status, event, false) {
            Ok(Outcome::To(s)) => s,
            Ok(Outcome::Already) => return Ok(current),
            Ok(_) | Err(_) => {
                return Err(rejected(
                    "order_wrong_state",
                    None,
                    format!("this order is {}; that cannot be done now", current.status.as_str()),
                ))
            }
        };
        let stamp = match to {
            OrderStatus::Shipped => "shipped_at",
            OrderStatus::Received => "received_at",
            OrderStatus::Completed => "completed_at",
            _ => "updated_at",
        };
        let (carrier, tracking) = shipment.unzip();
        in_tx!(self, |tx| {
            let sql = format!(
                "UPDATE orders SET status = $3, {stamp} = $4, updated_at = $4, carrier = COALESCE($6, carrier), \
                 tracking_no = COALESCE($7, tracking_no) WHERE tenant_id = $1 AND id = $2 AND status = $5"
            );
            let n = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(id.0)
                .bind(to.as_str())
                .bind(now.0)
                .bind(current.status.as_str())
                .bind(carrier)
                .bind(tracking)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(rejected("order_changed", None, "the order changed meanwhile; reload it and try again"));
            }
            outbox!(tx, tenant, &format!("order.{}", to.as_str()), id.0, 1, serde_json::json!({ "order": id }), now);
            if let Some(a) = by {
                audit!(tx, self, a, "order.advance", "order", id, None, Some(serde_json::json!({ "to": to.as_str() })));
            }
        });
        self.order(tenant, id).await
    }

    /// Paid orders whose next step is due by time: received N days after shipment, completed
    /// when the after-sale window closes.
    pub async fn due_order_steps(
        &self,
        receive_after: i64,
        after_sale: i64,
        limit: i64,
    ) -> Result<Vec<(TenantId, OrderId, OrderEvent)>> {
        let now = self.now().0;
        let rows: Vec<(Uuid, Uuid, String)> = on_read!(self, |p| sqlx::query_as(
            "SELECT tenant_id, id, status FROM orders WHERE (status = 'shipped' AND shipped_at <= $1) \
             OR (status = 'received' AND received_at <= $2) ORDER BY updated_at LIMIT $3"
        )
        .bind(now - receive_after * 1_000_000)
        .bind(now - after_sale * 1_000_000)
        .bind(limit)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| {
                let e = if r.2 == "shipped" { OrderEvent::Receive } else { OrderEvent::Complete };
                (TenantId(r.0), OrderId(r.1), e)
            })
            .collect())
    }
}

/// A finished order from elsewhere (the demo's Online Retail history): completed on `at`,
/// paid outside WeChat Pay, priced by the one pipeline from its lines' unit prices.
#[derive(Clone, Debug)]
pub struct PastOrder {
    /// Unique per tenant: a second import of the same number changes nothing.
    pub no: String,
    /// The buyer's openid in the source; a mall buyer is made for it once.
    pub openid: String,
    pub customer: Option<CustomerId>,
    pub at: Timestamp,
    pub lines: Vec<PastLine>,
}

#[derive(Clone, Debug)]
pub struct PastLine {
    pub sku: SkuId,
    pub product: ProductId,
    pub title: String,
    pub qty: u32,
    pub unit_fen: i64,
}

/// Orders a transaction inserts at once (its rows stay well under PostgreSQL's bind limit).
const PAST_CHUNK: usize = 500;

impl Store {
    /// Imports finished orders (kind `import`, status `completed`), idempotent by number.
    /// Their units count as sold. Returns how many were new.
    pub async fn import_past_orders(&self, tenant: TenantId, orders: &[PastOrder]) -> Result<usize> {
        let mut openids: Vec<(&str, Option<CustomerId>)> =
            orders.iter().map(|o| (o.openid.as_str(), o.customer)).collect();
        openids.sort();
        openids.dedup_by(|a, b| a.0 == b.0);
        let mut buyers: BTreeMap<String, Uuid> = BTreeMap::new();
        let now = self.now();
        for chunk in openids.chunks(PAST_CHUNK) {
            let rows: Vec<(Uuid, String)> = in_tx!(self, |tx| {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO mall_buyers (tenant_id, id, openid, customer_id, created_at) ",
                );
                qb.push_values(chunk, |mut b, (openid, customer)| {
                    b.push_bind(tenant.0)
                        .push_bind(Uuid::now_v7())
                        .push_bind(*openid)
                        .push_bind(customer.map(|c| c.0))
                        .push_bind(now.0);
                });
                qb.push(" ON CONFLICT (tenant_id, openid) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
                let mut qb = sqlx::QueryBuilder::new("SELECT id, openid FROM mall_buyers WHERE tenant_id = ");
                qb.push_bind(tenant.0).push(" AND openid IN (");
                let mut sep = qb.separated(", ");
                for (openid, _) in chunk {
                    sep.push_bind(*openid);
                }
                qb.push(")");
                qb.build_query_as::<(Uuid, String)>().fetch_all(&mut *tx).await?
            });
            buyers.extend(rows.into_iter().map(|(id, openid)| (openid, id)));
        }
        let mut added = 0;
        for chunk in orders.chunks(PAST_CHUNK) {
            // Price each order with the pipeline, so its lines carry units like any other.
            let mut priced = Vec::with_capacity(chunk.len());
            for o in chunk {
                let cart = Cart {
                    lines: o
                        .lines
                        .iter()
                        .map(|l| Line {
                            sku: l.sku.to_string(),
                            product: l.product.to_string(),
                            categories: Vec::new(),
                            unit_list: l.unit_fen,
                            qty: l.qty,
                            paid_member_unit: None,
                            activity: None,
                        })
                        .collect(),
                    ..Default::default()
                };
                let Some(buyer) = buyers.get(&o.openid) else { continue };
                match pricing::quote(&cart) {
                    Ok(q) => priced.push((OrderId::new(), *buyer, o, q)),
                    Err(e) => tracing::warn!(no = %o.no, error = %e, "past order skipped"),
                }
            }
            if priced.is_empty() {
                continue;
            }
            added += in_tx!(self, |tx| {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO orders (tenant_id, id, no, buyer_id, customer_id, kind, status, list_fen, goods_fen, \
                     shipping_fen, payable_fen, paid_fen, quote, created_at, expires_at, paid_at, received_at, completed_at, \
                     updated_at) ",
                );
                qb.push_values(&priced, |mut b, (id, buyer, o, q)| {
                    b.push_bind(tenant.0)
                        .push_bind(id.0)
                        .push_bind(&o.no)
                        .push_bind(*buyer)
                        .push_bind(o.customer.map(|c| c.0))
                        .push_bind("import")
                        .push_bind("completed")
                        .push_bind(q.list_total)
                        .push_bind(q.goods)
                        .push_bind(0_i64)
                        .push_bind(q.payable)
                        .push_bind(q.payable)
                        .push_bind(Json(q))
                        .push_bind(o.at.0)
                        .push_bind(o.at.0)
                        .push_bind(o.at.0)
                        .push_bind(o.at.0)
                        .push_bind(o.at.0)
                        .push_bind(o.at.0);
                });
                qb.push(" ON CONFLICT (tenant_id, no) DO NOTHING RETURNING id");
                let fresh: Vec<Uuid> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
                let lines: Vec<_> = priced
                    .iter()
                    .filter(|(id, ..)| fresh.contains(&id.0))
                    .flat_map(|(id, _, o, q)| o.lines.iter().zip(&q.lines).enumerate().map(move |(i, l)| (id, i, l)))
                    .collect();
                for part in lines.chunks(PAST_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO order_lines (tenant_id, order_id, line_no, sku_id, product_id, title, spec, qty, \
                         unit_list_fen, unit_price_fen, paid_fen, units, shares) ",
                    );
                    qb.push_values(part, |mut b, (id, i, (l, lq))| {
                        b.push_bind(tenant.0)
                            .push_bind(id.0)
                            .push_bind(*i as i64)
                            .push_bind(l.sku.0)
                            .push_bind(l.product.0)
                            .push_bind(&l.title)
                            .push_bind("")
                            .push_bind(i64::from(l.qty))
                            .push_bind(lq.unit_list)
                            .push_bind(lq.unit_price)
                            .push_bind(lq.paid)
                            .push_bind(Json(&lq.units))
                            .push_bind(Json(Vec::<LineShare>::new()));
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                let mut sold: BTreeMap<Uuid, i64> = BTreeMap::new();
                for (_, _, (l, _)) in &lines {
                    *sold.entry(l.sku.0).or_default() += i64::from(l.qty);
                }
                for (sku, n) in sold {
                    sqlx::query("UPDATE skus SET sold = sold + $3 WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.0)
                        .bind(sku)
                        .bind(n)
                        .execute(&mut *tx)
                        .await?;
                }
                fresh.len()
            });
        }
        Ok(added)
    }
}

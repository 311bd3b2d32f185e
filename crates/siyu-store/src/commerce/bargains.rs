//! Bargain (砍价) on the database (commerce-rules §5.3). A buyer starts one bargain per
//! activity; each help takes the bargain's row first (a row lock on PostgreSQL, the single
//! writer on SQLite), computes the cut by the core's rule from a fresh random draw, inserts the
//! help (once per helper and bargain, BG-5) and moves the price by a compare-and-set on
//! `(helpers, current_fen)` in the same transaction (BG-6). Buying claims the bargain for one
//! order (BG-7); a cancelled order gives the claim back.

use serde::Serialize;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::bargain::{cut, draw_bp, BargainInput};
use siyu_core::commerce::pricing::ActivityKind;
use siyu_core::{BargainId, BargainRecordId, BuyerId, OrderId, ProductId, SkuId, TenantId, Timestamp};

use super::orders::{order_no_for, ActivityTerms, CartItem, OneLine, Order, Play};
use super::rejected;
use crate::audit::snapshot;
use crate::{activity_clash, audit, in_tx, on_read, one_line_order, Result, Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct Bargain {
    pub id: BargainId,
    pub name: String,
    pub sku_id: SkuId,
    pub product_id: ProductId,
    pub label: String,
    pub image: Option<String>,
    pub list_fen: i64,
    pub price_fen: i64,
    pub floor_fen: i64,
    pub helpers: i64,
    pub help_limit: i64,
    pub quota: i64,
    pub taken: i64,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub purchase_deadline: Timestamp,
    pub cut_bp: (i64, i64),
    pub new_user_bp: Option<i64>,
    pub buy_at_current: bool,
    pub timeout_secs: i64,
    /// `active` or `stopped`.
    pub status: String,
    /// Bargains started, and how many reached the floor.
    pub started: i64,
    pub completed: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Help {
    pub helper_id: BuyerId,
    pub nickname: Option<String>,
    pub cut_fen: i64,
    pub at: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
pub struct BargainRecord {
    pub id: BargainRecordId,
    pub bargain_id: BargainId,
    pub buyer_id: BuyerId,
    pub nickname: Option<String>,
    pub price_fen: i64,
    pub floor_fen: i64,
    pub current_fen: i64,
    pub helpers: i64,
    pub required: i64,
    /// The order that bought it, once placed (helps stop then).
    pub order_id: Option<OrderId>,
    pub created_at: Timestamp,
    /// Helps, first first.
    pub helps: Vec<Help>,
}

/// What one help did.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Helped {
    pub cut_fen: i64,
    pub current_fen: i64,
    pub helpers: i64,
    pub required: i64,
}

#[derive(sqlx::FromRow)]
struct BargainRow {
    id: Uuid,
    name: String,
    sku_id: Uuid,
    price_fen: i64,
    floor_fen: i64,
    helpers: i64,
    help_limit: i64,
    quota: i64,
    taken: i64,
    starts_at: i64,
    ends_at: i64,
    purchase_deadline: i64,
    cut_lo_bp: i64,
    cut_hi_bp: i64,
    new_user_bp: Option<i64>,
    buy_at_current: bool,
    timeout_secs: i64,
    status: String,
    started: i64,
    completed: i64,
    product_id: Uuid,
    list_fen: i64,
    spec: sqlx::types::Json<Vec<String>>,
    title: String,
    images: sqlx::types::Json<Vec<String>>,
}

const SELECT: &str = "SELECT b.id, b.name, b.sku_id, b.price_fen, b.floor_fen, b.helpers, b.help_limit, b.quota, \
     b.taken, b.starts_at, b.ends_at, b.purchase_deadline, b.cut_lo_bp, b.cut_hi_bp, b.new_user_bp, b.buy_at_current, \
     b.timeout_secs, b.status, \
     CAST((SELECT COUNT(*) FROM bargain_records r WHERE r.tenant_id = b.tenant_id AND r.bargain_id = b.id) AS BIGINT) \
     AS started, CAST((SELECT COUNT(*) FROM bargain_records r WHERE r.tenant_id = b.tenant_id AND r.bargain_id = b.id \
     AND r.current_fen = r.floor_fen) AS BIGINT) AS completed, s.product_id, s.price_fen AS list_fen, s.spec, p.title, \
     p.images FROM bargains b JOIN skus s ON s.tenant_id = b.tenant_id AND s.id = b.sku_id \
     JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id";

impl Store {
    /// Creates a bargain over one SKU; a SKU in another play over an overlapping span (to the
    /// purchase deadline) is refused (STK-1).
    pub async fn create_bargain(&self, actor: &Actor, b: &BargainInput) -> Result<Bargain> {
        let tenant = actor.tenant_id;
        let sku = self
            .activity_skus(tenant, std::iter::once(b.sku_id.as_str()), None)
            .await
            .map_err(|e| match e {
                StoreError::Rejected { code, message, .. } => {
                    StoreError::Rejected { code, field: Some("sku_id".into()), message }
                }
                other => other,
            })?
            .remove(0)
            .0;
        let id = BargainId::new();
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tenants SET updated_at = updated_at WHERE id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
            if let Some(name) = activity_clash!(tx, tenant, sku, b.starts_at, b.purchase_deadline, id) {
                return Err(rejected(
                    "activity_overlaps",
                    Some("sku_id"),
                    format!("this SKU is in “{name}” at the same time; a SKU is in one such activity at a time"),
                ));
            }
            sqlx::query(
                "INSERT INTO bargains (tenant_id, id, name, sku_id, price_fen, floor_fen, helpers, help_limit, quota, \
                 starts_at, ends_at, purchase_deadline, cut_lo_bp, cut_hi_bp, new_user_bp, buy_at_current, timeout_secs, \
                 status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                 $15, $16, $17, 'active', $18, $18)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&b.name)
            .bind(sku.0)
            .bind(b.price_fen)
            .bind(b.floor_fen)
            .bind(b.helpers)
            .bind(b.help_limit)
            .bind(b.quota)
            .bind(b.starts_at.0)
            .bind(b.ends_at.0)
            .bind(b.purchase_deadline.0)
            .bind(b.cut_bp.0)
            .bind(b.cut_bp.1)
            .bind(b.new_user_bp)
            .bind(b.buy_at_current)
            .bind(b.timeout_secs)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            audit!(tx, self, actor, "bargain.create", "bargain", id, None, snapshot(b));
        });
        self.bargain(tenant, id).await
    }

    pub async fn bargain(&self, tenant: TenantId, id: BargainId) -> Result<Bargain> {
        let sql = format!("{SELECT} WHERE b.tenant_id = $1 AND b.id = $2");
        let r: Option<BargainRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        let r = r.ok_or(StoreError::NotFound)?;
        Ok(Bargain {
            id: BargainId(r.id),
            name: r.name,
            sku_id: SkuId(r.sku_id),
            product_id: ProductId(r.product_id),
            label: if r.spec.0.is_empty() { r.title } else { format!("{} {}", r.title, r.spec.0.join(" / ")) },
            image: r.images.0.first().cloned(),
            list_fen: r.list_fen,
            price_fen: r.price_fen,
            floor_fen: r.floor_fen,
            helpers: r.helpers,
            help_limit: r.help_limit,
            quota: r.quota,
            taken: r.taken,
            starts_at: Timestamp(r.starts_at),
            ends_at: Timestamp(r.ends_at),
            purchase_deadline: Timestamp(r.purchase_deadline),
            cut_bp: (r.cut_lo_bp, r.cut_hi_bp),
            new_user_bp: r.new_user_bp,
            buy_at_current: r.buy_at_current,
            timeout_secs: r.timeout_secs,
            status: r.status,
            started: r.started,
            completed: r.completed,
        })
    }

    /// Activities, newest first: all, or with `open_at` those taking new bargains then.
    pub async fn bargains(&self, tenant: TenantId, open_at: Option<Timestamp>) -> Result<Vec<Bargain>> {
        let ids: Vec<Uuid> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT id FROM bargains WHERE tenant_id = $1 AND ($2 IS NULL OR (status = 'active' \
             AND starts_at <= $2 AND $2 < ends_at)) ORDER BY id DESC LIMIT 100"
        )
        .bind(tenant.0)
        .bind(open_at.map(|t| t.0))
        .fetch_all(p)
        .await?);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.bargain(tenant, BargainId(id)).await?);
        }
        Ok(out)
    }

    /// Stops an activity: no new bargains or helps; bargains already at their price may still
    /// be bought until the purchase deadline.
    pub async fn stop_bargain(&self, actor: &Actor, id: BargainId) -> Result<Bargain> {
        let tenant = actor.tenant_id;
        let now = self.now();
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE bargains SET status = 'stopped', ends_at = CASE WHEN ends_at > $3 THEN $3 ELSE ends_at END, \
                 updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                audit!(tx, self, actor, "bargain.stop", "bargain", id, None, None);
            }
        });
        self.bargain(tenant, id).await
    }

    /// Starts the buyer's bargain under an activity, or returns the one they started (one per
    /// buyer and activity).
    pub async fn start_bargain(&self, tenant: TenantId, buyer: BuyerId, bargain: BargainId) -> Result<BargainRecord> {
        let b = self.bargain(tenant, bargain).await?;
        let now = self.now();
        if b.status != "active" || now < b.starts_at || now >= b.ends_at {
            return Err(rejected("bargain_closed", None, "this bargain is not taking new starts now"));
        }
        let id = BargainRecordId::new();
        let inserted = on_write_insert(self, tenant, id, &b, buyer, now).await?;
        let rid = match inserted {
            true => id,
            false => {
                let existing: Option<Uuid> = on_read!(self, |p| sqlx::query_scalar(
                    "SELECT id FROM bargain_records WHERE tenant_id = $1 AND bargain_id = $2 AND buyer_id = $3"
                )
                .bind(tenant.0)
                .bind(bargain.0)
                .bind(buyer.0)
                .fetch_optional(p)
                .await?);
                BargainRecordId(existing.ok_or(StoreError::NotFound)?)
            }
        };
        self.bargain_record(tenant, rid).await
    }

    pub async fn bargain_record(&self, tenant: TenantId, id: BargainRecordId) -> Result<BargainRecord> {
        type R = (Uuid, Uuid, Option<String>, i64, i64, i64, i64, i64, Option<Uuid>, i64);
        let r: Option<R> = on_read!(self, |p| sqlx::query_as(
            "SELECT r.bargain_id, r.buyer_id, b.nickname, r.price_fen, r.floor_fen, r.current_fen, r.helpers, \
             r.required, r.order_id, r.created_at FROM bargain_records r LEFT JOIN mall_buyers b \
             ON b.tenant_id = r.tenant_id AND b.id = r.buyer_id WHERE r.tenant_id = $1 AND r.id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(p)
        .await?);
        let r = r.ok_or(StoreError::NotFound)?;
        let helps: Vec<(Uuid, Option<String>, i64, i64)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT h.helper_id, b.nickname, h.cut_fen, h.created_at FROM bargain_helps h LEFT JOIN mall_buyers b \
             ON b.tenant_id = h.tenant_id AND b.id = h.helper_id WHERE h.tenant_id = $1 AND h.record_id = $2 ORDER BY h.seq"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?
        });
        Ok(BargainRecord {
            id,
            bargain_id: BargainId(r.0),
            buyer_id: BuyerId(r.1),
            nickname: r.2,
            price_fen: r.3,
            floor_fen: r.4,
            current_fen: r.5,
            helpers: r.6,
            required: r.7,
            order_id: r.8.map(OrderId),
            created_at: Timestamp(r.9),
            helps: helps
                .into_iter()
                .map(|h| Help { helper_id: BuyerId(h.0), nickname: h.1, cut_fen: h.2, at: Timestamp(h.3) })
                .collect(),
        })
    }

    /// The bargains a buyer started, newest first.
    pub async fn my_bargains(&self, tenant: TenantId, buyer: BuyerId) -> Result<Vec<BargainRecord>> {
        let ids: Vec<Uuid> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT id FROM bargain_records WHERE tenant_id = $1 AND buyer_id = $2 ORDER BY id DESC LIMIT 50"
        )
        .bind(tenant.0)
        .bind(buyer.0)
        .fetch_all(p)
        .await?);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.bargain_record(tenant, BargainRecordId(id)).await?);
        }
        Ok(out)
    }

    /// One help (BG-3..BG-7), with `draw` as the random source of its cut (BG-4).
    pub async fn help_bargain(
        &self,
        tenant: TenantId,
        helper: BuyerId,
        record: BargainRecordId,
        draw: u64,
    ) -> Result<Helped> {
        let now = self.now();
        in_tx!(self, |tx| {
            // The bargain's row first: concurrent helps on it queue here (BG-6).
            type Locked = (Uuid, Uuid, i64, i64, i64, i64, Option<Uuid>);
            let row: Option<Locked> = sqlx::query_as(
                "UPDATE bargain_records SET updated_at = updated_at WHERE tenant_id = $1 AND id = $2 \
                 RETURNING bargain_id, buyer_id, current_fen, floor_fen, helpers, required, order_id",
            )
            .bind(tenant.0)
            .bind(record.0)
            .fetch_optional(&mut *tx)
            .await?;
            let (bargain, owner, current, floor, done, required, order) = row.ok_or(StoreError::NotFound)?;
            if owner == helper.0 {
                return Err(rejected("own_bargain", None, "you cannot help your own bargain: share it with friends"));
            }
            if order.is_some() {
                return Err(rejected("bargain_ordered", None, "this bargain has been bought; helps have stopped"));
            }
            if done >= required {
                return Err(rejected("bargain_complete", None, "this bargain already reached its lowest price"));
            }
            type Terms = (i64, i64, i64, i64, Option<i64>, String, i64);
            let (starts_at, ends_at, lo, hi, boost, status, limit): Terms = sqlx::query_as(
                "SELECT starts_at, ends_at, cut_lo_bp, cut_hi_bp, new_user_bp, status, help_limit FROM bargains \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(bargain)
            .fetch_one(&mut *tx)
            .await?;
            if status != "active" || now.0 < starts_at || now.0 >= ends_at {
                return Err(rejected("bargain_closed", None, "this bargain is no longer taking helps"));
            }
            let new_user = if boost.is_some() {
                let any: Option<Uuid> =
                    sqlx::query_scalar("SELECT id FROM orders WHERE tenant_id = $1 AND buyer_id = $2 LIMIT 1")
                        .bind(tenant.0)
                        .bind(helper.0)
                        .fetch_optional(&mut *tx)
                        .await?;
                any.is_none()
            } else {
                false
            };
            let c = cut(current, floor, done, required, draw_bp((lo, hi), boost, new_user, draw))
                .ok_or_else(|| rejected("bargain_complete", None, "this bargain already reached its lowest price"))?;
            // BG-5: once per helper and bargain …
            let helped = sqlx::query(
                "INSERT INTO bargain_helps (tenant_id, record_id, helper_id, cut_fen, seq, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, record_id, helper_id) DO NOTHING",
            )
            .bind(tenant.0)
            .bind(record.0)
            .bind(helper.0)
            .bind(c)
            .bind(done + 1)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if helped == 0 {
                return Err(rejected("already_helped", None, "you have helped this bargain already"));
            }
            // … and at most help_limit bargains per activity.
            let counted = sqlx::query(
                "INSERT INTO bargain_helpers (tenant_id, bargain_id, helper_id, helps) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (tenant_id, bargain_id, helper_id) DO UPDATE SET helps = bargain_helpers.helps + 1 \
                 WHERE bargain_helpers.helps + 1 <= $4",
            )
            .bind(tenant.0)
            .bind(bargain)
            .bind(helper.0)
            .bind(limit)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if counted == 0 {
                return Err(rejected(
                    "help_limit_reached",
                    None,
                    format!("you can help at most {limit} bargains in this activity"),
                ));
            }
            // BG-6: the price moves only from what this help read.
            let moved = sqlx::query(
                "UPDATE bargain_records SET current_fen = current_fen - $5, helpers = helpers + 1, updated_at = $6 \
                 WHERE tenant_id = $1 AND id = $2 AND helpers = $3 AND current_fen = $4",
            )
            .bind(tenant.0)
            .bind(record.0)
            .bind(done)
            .bind(current)
            .bind(c)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                return Err(StoreError::Conflict("the bargain changed meanwhile; try again".into()));
            }
            Ok(Helped { cut_fen: c, current_fen: current - c, helpers: done + 1, required })
        })
    }

    /// Buys a bargain at its price (BG-7): at the floor (or, when the activity allows, at the
    /// price reached), before the purchase deadline, one order per bargain. A retry with the
    /// same client key returns the first order.
    pub async fn create_bargain_order(
        &self,
        tenant: TenantId,
        buyer: BuyerId,
        record: BargainRecordId,
        client_key: Option<&str>,
    ) -> Result<Order> {
        if let Some(k) = client_key {
            if let Some(id) = self.order_id_by_client_key(tenant, buyer, k).await? {
                return self.order(tenant, id).await;
            }
        }
        let r = self.bargain_record(tenant, record).await?;
        if r.buyer_id != buyer {
            return Err(StoreError::NotFound);
        }
        let b = self.bargain(tenant, r.bargain_id).await?;
        if r.current_fen > r.floor_fen && !b.buy_at_current {
            return Err(rejected(
                "bargain_not_done",
                None,
                format!("{} more friends must help before you can buy", r.required - r.helpers),
            ));
        }
        let item = CartItem { sku_id: b.sku_id, qty: 1 };
        let play = ActivityTerms { kind: ActivityKind::Bargain, sku: b.sku_id, price_fen: r.current_fen };
        let priced = self.price_cart(tenant, &[item], None, Play::Activity(&play)).await?;
        let now = self.now();
        let id = OrderId::new();
        let line = OneLine {
            id,
            no: order_no_for(self, tenant, now).await?,
            buyer,
            kind: "bargain",
            priced: &priced,
            client_key: client_key.map(str::to_string),
            now,
            expires_at: Timestamp(now.0 + b.timeout_secs * 1_000_000),
            group: None,
            bargain: Some(record),
        };
        let placed: Result<()> = async {
            in_tx!(self, |tx| {
                let claimed = sqlx::query(
                    "UPDATE bargain_records SET order_id = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2 \
                     AND buyer_id = $3 AND order_id IS NULL AND current_fen = $6",
                )
                .bind(tenant.0)
                .bind(record.0)
                .bind(buyer.0)
                .bind(id.0)
                .bind(now.0)
                .bind(r.current_fen)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    return Err(rejected(
                        "bargain_ordered",
                        None,
                        "this bargain has an order already, or its price moved",
                    ));
                }
                let quota = sqlx::query(
                    "UPDATE bargains SET taken = taken + 1 WHERE tenant_id = $1 AND id = $2 AND taken + 1 <= quota \
                     AND $3 < purchase_deadline",
                )
                .bind(tenant.0)
                .bind(b.id.0)
                .bind(now.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if quota == 0 {
                    return Err(if now >= b.purchase_deadline {
                        rejected("bargain_closed", None, "buying at the bargained price has closed")
                    } else {
                        rejected("sold_out", None, "sold out")
                    });
                }
                let stock = sqlx::query(
                    "UPDATE skus SET reserved = reserved + 1, updated_at = $3 WHERE tenant_id = $1 AND id = $2 \
                     AND on_hand - reserved >= 1",
                )
                .bind(tenant.0)
                .bind(b.sku_id.0)
                .bind(now.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if stock == 0 {
                    return Err(rejected("sold_out", None, "sold out"));
                }
                one_line_order!(tx, tenant, &line);
            });
            Ok(())
        }
        .await;
        self.placed_order(tenant, buyer, id, client_key, placed).await
    }
}

/// Inserts a bargain record; `false` when the buyer has one under this activity already.
async fn on_write_insert(
    s: &Store,
    tenant: TenantId,
    id: BargainRecordId,
    b: &Bargain,
    buyer: BuyerId,
    now: Timestamp,
) -> Result<bool> {
    let n = crate::on_write!(s, |p| {
        sqlx::query(
        "INSERT INTO bargain_records (tenant_id, id, bargain_id, buyer_id, price_fen, floor_fen, current_fen, helpers, \
         required, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $5, 0, $7, $8, $8) \
         ON CONFLICT (tenant_id, bargain_id, buyer_id) DO NOTHING"
    )
    .bind(tenant.0)
    .bind(id.0)
    .bind(b.id.0)
    .bind(buyer.0)
    .bind(b.price_fen)
    .bind(b.floor_fen)
    .bind(b.helpers)
    .bind(now.0)
    .execute(p)
    .await?
    .rows_affected()
    });
    Ok(n == 1)
}

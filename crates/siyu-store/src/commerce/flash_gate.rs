//! Redis pre-deduction in front of flash sales (FS-8.3), used when `SIYU_REDIS_URL` is set.
//!
//! Why: most of a hot sale's requests find it sold out or over a limit. Redis answers those in
//! one round trip, so the database sees about one transaction per unit sold instead of one per
//! attempt. The database stays the final authority: an admitted request still takes its units
//! from a bucket by a conditional update (`flash.rs`), so whatever Redis believes, nothing
//! oversells.
//!
//! Per sale, every key shares one hash slot (`{flash:<sale>}`):
//! - `meta` (hash): tenant, window, limits, and `v`, bumped by every change to stock or buyers;
//! - `stock` (hash): SKU → units Redis may still admit;
//! - `buyers` (hash): buyer → units admitted (FS-2);
//! - `reqs` (hash): request id → `p:<stream id>` while in flight, `d:<order id>` once ordered;
//! - `requests` (stream): the requests in flight (rid, buyer, sku, qty, key, at).
//!
//! A request: one script checks that the sale is loaded, that the request is new, the window
//! (server clock, passed in; FS-3), the order limit, stock and the buyer's limit, and only then
//! decrements, counts the buyer and appends the request (FS-2). The order is then created in
//! the database under a client key derived from the request id. Success settles the request; a
//! refusal releases its units and allowance (FS-7). Both are keyed by the stream id, so each
//! happens once. A process dying in between leaves the request in the stream, and the consumer
//! (`reconcile`) creates its order later under the same key, or releases it.
//!
//! Redis losing its data (restart, failover) empties `meta`: the script then answers
//! `not_loaded`, and the sale is rebuilt from the database before Redis admits anyone again.
//! While Redis cannot be reached, orders go straight to the database path, which is safe alone.
//! Reconciliation compares `stock` with the database's buckets less the requests in flight and
//! repairs any gap (a cancelled order's units, orders placed while Redis was away), but only
//! while `v` has not moved since it read Redis, so a repair never races a reservation.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use uuid::Uuid;

use siyu_core::{BuyerId, FlashSaleId, OrderId, SkuId, TenantId, Timestamp};

use super::flash::Refusal;
use super::orders::{CartItem, Order};
use crate::{Store, StoreError};

static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_loaded'} end
local prior = redis.call('HGET', KEYS[4], ARGV[5])
if prior then return {'seen', prior} end
local m = redis.call('HMGET', KEYS[1], 'starts', 'ends', 'per_order', 'per_user')
local now, q = tonumber(ARGV[1]), tonumber(ARGV[4])
if now < tonumber(m[1]) or now >= tonumber(m[2]) then return {'sale_not_open'} end
local left = redis.call('HGET', KEYS[2], ARGV[2])
if not left then return {'sku_not_in_sale'} end
if q < 1 or q > tonumber(m[3]) then return {'over_order_limit', m[3]} end
if tonumber(left) < q then return {'sold_out'} end
local had = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
if had + q > tonumber(m[4]) then return {'over_user_limit', m[4]} end
redis.call('HINCRBY', KEYS[2], ARGV[2], -q)
redis.call('HINCRBY', KEYS[3], ARGV[3], q)
redis.call('HINCRBY', KEYS[1], 'v', 1)
local id = redis.call('XADD', KEYS[5], '*', 'rid', ARGV[5], 'buyer', ARGV[3], 'sku', ARGV[2], 'qty', ARGV[4],
  'key', ARGV[6], 'at', ARGV[1])
redis.call('HSET', KEYS[4], ARGV[5], 'p:' .. id)
return {'ok', id}
",
    )
});

static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'p:' .. ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'd:' .. ARGV[3])
redis.call('XDEL', KEYS[2], ARGV[2])
return 1
",
    )
});

static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[4], ARGV[1]) ~= 'p:' .. ARGV[2] then return 0 end
local e = redis.call('XRANGE', KEYS[5], ARGV[2], ARGV[2])
if #e == 0 then redis.call('HDEL', KEYS[4], ARGV[1]) return 0 end
local f = {}
for i = 1, #e[1][2], 2 do f[e[1][2][i]] = e[1][2][i + 1] end
redis.call('HINCRBY', KEYS[2], f['sku'], f['qty'])
if redis.call('HINCRBY', KEYS[3], f['buyer'], -tonumber(f['qty'])) <= 0 then redis.call('HDEL', KEYS[3], f['buyer']) end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('XDEL', KEYS[5], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
",
    )
});

/// Starts a load held by the lock token: clears what a half-finished load left, and creates
/// the hashes and the stream empty, so their expiry can be set.
static LOAD_BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[6]) ~= ARGV[1] or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('HSET', KEYS[3], '', 0)
redis.call('HSET', KEYS[4], '', 'loaded')
redis.call('XGROUP', 'CREATE', KEYS[5], 'siyu', '$', 'MKSTREAM')
return 1
",
    )
});

static LOAD_BUYERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[3]) ~= ARGV[1] or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
",
    )
});

/// Opens the sale: stock and meta last, in one step, so nobody is admitted against a partial load.
static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[6]) ~= ARGV[1] or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'tenant', ARGV[2], 'starts', ARGV[3], 'ends', ARGV[4], 'per_order', ARGV[5],
  'per_user', ARGV[6], 'v', 0)
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
redis.call('DEL', KEYS[6])
return 1
",
    )
});

/// Everything reconciliation reads from Redis, at one instant: `v`, the tenant, stock, and
/// up to `ARGV[1]` requests in flight, flattened.
static SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local out = {redis.call('HGET', KEYS[1], 'v'), redis.call('HGET', KEYS[1], 'tenant')}
local st = redis.call('HGETALL', KEYS[2])
table.insert(out, tostring(#st / 2))
for _, x in ipairs(st) do table.insert(out, x) end
for _, e in ipairs(redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', ARGV[1])) do
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  for _, x in ipairs({e[1], f['rid'], f['buyer'], f['sku'], f['qty'], f['key'], f['at']}) do table.insert(out, x) end
end
return out
",
    )
});

/// Sets stock and buyers to what the database says, if nothing moved since the snapshot `v`.
static REPAIR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
for i = 3, 2 + 2 * n, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
for i = 3 + 2 * n, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > 0 then redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  else redis.call('HDEL', KEYS[3], ARGV[i]) end
end
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
",
    )
});

/// Times a request tries to load its sale, or waits 20 ms for another process loading it.
const LOAD_WAITS: u32 = 50;

enum Load {
    Loaded,
    /// Another process holds the loading lock.
    Busy,
    /// Not an active sale: the database answers its requests.
    Inactive,
}

/// In-flight requests one reconciliation looks at; more wait for the next pass.
const SNAPSHOT_REQUESTS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("redis holds a malformed value: {0}")]
    Malformed(String),
}

/// What one reconciliation pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GateReport {
    /// Sales loaded in Redis that were checked.
    pub sales: usize,
    /// Requests whose process died after pre-deduction, ordered or released by the consumer.
    pub recovered: usize,
    /// Units by which Redis's stock differed from the database and was set right.
    pub repaired_units: i64,
}

/// The admission answer of the reserve script.
#[derive(Debug)]
pub enum Admission {
    /// Units and allowance taken; the order is still to be written.
    Admitted {
        rid: String,
        entry: String,
    },
    /// The same request was seen before: in flight (`p:<entry>`) or ordered (`d:<order>`).
    Seen {
        rid: String,
        state: String,
    },
    Refused(StoreError),
    NotLoaded,
}

struct Keys {
    meta: String,
    stock: String,
    buyers: String,
    reqs: String,
    stream: String,
    lock: String,
}

struct InFlight {
    entry: String,
    rid: String,
    buyer: BuyerId,
    sku: SkuId,
    qty: i64,
    key: String,
    at: i64,
}

/// Flash-sale admission in Redis, with the database behind it. Cheap to clone.
#[derive(Clone)]
pub struct FlashGate {
    conn: ConnectionManager,
    store: Store,
    ns: String,
    stale_after: Duration,
}

impl FlashGate {
    /// Connects to Redis at `url`. `ns` prefixes every key, so several siyu deployments (or
    /// tests) can share one Redis. Fails when Redis cannot be reached now.
    pub async fn connect(url: &str, store: Store, ns: &str) -> Result<FlashGate, GateError> {
        let client = redis::Client::open(url)?;
        // Short timeouts: a request waiting on a dead Redis would rather go to the database.
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = client.get_connection_manager_with_config(cfg).await?;
        Ok(FlashGate { conn, store, ns: ns.to_string(), stale_after: Duration::from_secs(10) })
    }

    /// How long a request may stay in flight before the consumer takes it over (default 10 s).
    pub fn with_stale_after(mut self, d: Duration) -> FlashGate {
        self.stale_after = d;
        self
    }

    fn keys(&self, sale: FlashSaleId) -> Keys {
        let base = format!("{}:{{flash:{}}}", self.ns, sale.0.simple());
        Keys {
            meta: format!("{base}:meta"),
            stock: format!("{base}:stock"),
            buyers: format!("{base}:buyers"),
            reqs: format!("{base}:reqs"),
            stream: format!("{base}:requests"),
            lock: format!("{base}:loading"),
        }
    }

    fn registry(&self) -> String {
        format!("{}:flash:sales", self.ns)
    }

    /// Places a flash-sale order: admitted by Redis first, then written by the database, which
    /// has the last word. Refusals carry the same codes as the database path. A retry with the
    /// same client key returns the first order (FS-4).
    pub async fn create_flash_order(
        &self,
        tenant: TenantId,
        buyer: BuyerId,
        sale: FlashSaleId,
        item: CartItem,
        client_key: Option<&str>,
    ) -> crate::Result<Order> {
        let key = match client_key {
            Some(k) => k.to_string(),
            None => format!("fs-{}", Uuid::now_v7().simple()),
        };
        let k = self.keys(sale);
        // The database path, safe on its own, for whatever Redis cannot answer.
        let alone = || self.store.create_flash_order(tenant, buyer, sale, item, Some(&key));
        let mut waits = 0;
        loop {
            let answer = match self.admit(buyer, sale, item, &key).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, %sale, "flash: Redis did not answer; the database admits alone");
                    return alone().await;
                }
            };
            return match answer {
                Admission::Admitted { rid, entry } => {
                    self.finish(&k, tenant, buyer, sale, item, &key, &rid, &entry).await
                }
                Admission::Seen { state, rid } => match state.split_once(':') {
                    Some(("d", order)) => {
                        let id = order.parse().map_err(|_| StoreError::NotFound)?;
                        self.store.order(tenant, OrderId(id)).await
                    }
                    Some(("p", entry)) => self.finish(&k, tenant, buyer, sale, item, &key, &rid, entry).await,
                    _ => Err(StoreError::Config(format!("flash request {rid} has state {state}"))),
                },
                Admission::Refused(e) => Err(e),
                // Bounded, so a Redis that keeps losing the sale cannot hold a request forever.
                Admission::NotLoaded if waits < LOAD_WAITS => {
                    waits += 1;
                    match self.load(tenant, sale).await {
                        Ok(Load::Loaded) => continue,
                        // Someone else is loading it: the crowd at a sale's start waits for
                        // Redis rather than falling on the database, up to a second.
                        Ok(Load::Busy) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        Ok(Load::Inactive) => alone().await,
                        Err(e) => {
                            tracing::warn!(error = %e, %sale, "flash: loading the sale into Redis failed");
                            alone().await
                        }
                    }
                }
                Admission::NotLoaded => alone().await,
            };
        }
    }

    /// The first half of an order alone: checks and takes units and allowance in Redis, and
    /// records the request, without writing the order. This is exactly what a process dying
    /// right after pre-deduction leaves behind; recovery tests start from it.
    #[doc(hidden)]
    pub async fn admit(
        &self,
        buyer: BuyerId,
        sale: FlashSaleId,
        item: CartItem,
        key: &str,
    ) -> Result<Admission, GateError> {
        let k = self.keys(sale);
        let rid = format!("{}:{key}", buyer.0.simple());
        let now = self.store.now();
        let r: Vec<String> = RESERVE
            .key(&k.meta)
            .key(&k.stock)
            .key(&k.buyers)
            .key(&k.reqs)
            .key(&k.stream)
            .arg(now.0)
            .arg(item.sku_id.0.to_string())
            .arg(buyer.0.to_string())
            .arg(item.qty)
            .arg(&rid)
            .arg(key)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let first = r.first().map(String::as_str).unwrap_or_default();
        let second = r.get(1).cloned().unwrap_or_default();
        let limit =
            || second.parse::<i64>().map_err(|_| GateError::Malformed(format!("{first} with limit {second:?}")));
        let refusal = match first {
            "ok" => return Ok(Admission::Admitted { rid, entry: second }),
            "seen" => return Ok(Admission::Seen { rid, state: second }),
            "not_loaded" => return Ok(Admission::NotLoaded),
            "sale_not_open" => Refusal::SaleNotOpen,
            "sku_not_in_sale" => Refusal::SkuNotInSale,
            "sold_out" => Refusal::SoldOut,
            "over_order_limit" => Refusal::OverOrderLimit(limit()?),
            "over_user_limit" => Refusal::OverUserLimit(limit()?),
            other => return Err(GateError::Malformed(format!("reserve answered {other:?}"))),
        };
        Ok(Admission::Refused(refusal.into()))
    }

    /// Writes the admitted request's order, then settles the request (ordered) or releases it
    /// (refused). An error that leaves the outcome unknown (the database unreachable) leaves the
    /// request in flight for the consumer, which finds the order by its key or writes it.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        k: &Keys,
        tenant: TenantId,
        buyer: BuyerId,
        sale: FlashSaleId,
        item: CartItem,
        key: &str,
        rid: &str,
        entry: &str,
    ) -> crate::Result<Order> {
        let placed = self.store.create_flash_order(tenant, buyer, sale, item, Some(key)).await;
        let mut conn = self.conn.clone();
        let outcome: redis::RedisResult<i64> = match &placed {
            Ok(o) => {
                SETTLE
                    .key(&k.reqs)
                    .key(&k.stream)
                    .arg(rid)
                    .arg(entry)
                    .arg(o.id.0.to_string())
                    .invoke_async(&mut conn)
                    .await
            }
            Err(StoreError::Rejected { .. } | StoreError::NotFound) => {
                RELEASE
                    .key(&k.meta)
                    .key(&k.stock)
                    .key(&k.buyers)
                    .key(&k.reqs)
                    .key(&k.stream)
                    .arg(rid)
                    .arg(entry)
                    .invoke_async(&mut conn)
                    .await
            }
            Err(_) => Ok(0),
        };
        if let Err(e) = outcome {
            // The request stays in flight; reconciliation settles or releases it.
            tracing::warn!(error = %e, %sale, rid, "flash: settling the request in Redis failed");
        }
        placed
    }

    /// Rebuilds a running sale in Redis from the database, under a lock so one process does it.
    async fn load(&self, tenant: TenantId, sale: FlashSaleId) -> Result<Load, GateError> {
        let k = self.keys(sale);
        let mut conn = self.conn.clone();
        let token = Uuid::now_v7().simple().to_string();
        let locked: Option<String> =
            redis::cmd("SET").arg(&k.lock).arg(&token).arg("NX").arg("PX").arg(30_000).query_async(&mut conn).await?;
        if locked.is_none() {
            return Ok(Load::Busy);
        }
        let begun: i64 = LOAD_BEGIN
            .key(&k.meta)
            .key(&k.stock)
            .key(&k.buyers)
            .key(&k.reqs)
            .key(&k.stream)
            .key(&k.lock)
            .arg(&token)
            .invoke_async(&mut conn)
            .await?;
        if begun == 0 {
            // Loaded meanwhile by someone else.
            return Ok(Load::Loaded);
        }
        // Read after taking the lock, so the state is as fresh as the load can make it.
        let Some(st) = self.store.flash_gate_state(tenant, sale).await? else {
            let _: i64 = redis::cmd("DEL").arg(&k.lock).query_async(&mut conn).await?;
            return Ok(Load::Inactive);
        };
        for chunk in st.buyers.chunks(500) {
            let mut inv = LOAD_BUYERS.key(&k.meta);
            inv.key(&k.buyers).key(&k.lock).arg(&token);
            for (b, n) in chunk {
                inv.arg(b.0.to_string()).arg(*n);
            }
            let _: i64 = inv.invoke_async(&mut conn).await?;
        }
        let now = self.store.now();
        // Kept a day past the end, whatever the clock says, then Redis forgets the sale.
        let ttl = ((st.sale.ends_at.0 - now.0) / 1_000_000).max(0) + 86_400;
        let mut inv = LOAD.key(&k.meta);
        inv.key(&k.stock).key(&k.buyers).key(&k.reqs).key(&k.stream).key(&k.lock);
        inv.arg(&token)
            .arg(tenant.0.to_string())
            .arg(st.sale.starts_at.0)
            .arg(st.sale.ends_at.0)
            .arg(st.sale.per_order)
            .arg(st.sale.per_user)
            .arg(ttl);
        for (sku, n) in &st.stock {
            inv.arg(sku.0.to_string()).arg(*n);
        }
        let opened: i64 = inv.invoke_async(&mut conn).await?;
        let _: i64 = redis::cmd("ZADD")
            .arg(self.registry())
            .arg(st.sale.ends_at.0 / 1_000_000)
            .arg(format!("{}:{}", tenant.0, sale.0))
            .query_async(&mut conn)
            .await?;
        if opened == 1 {
            tracing::info!(%sale, "flash: sale loaded into Redis from the database");
        }
        Ok(if opened == 1 { Load::Loaded } else { Load::Busy })
    }

    /// Units Redis may still admit for a SKU; `None` when the sale is not loaded.
    pub async fn cached_stock(&self, sale: FlashSaleId, sku: SkuId) -> Result<Option<i64>, GateError> {
        Ok(self.cached_stocks(sale).await?.and_then(|m| m.get(&sku).copied()))
    }

    /// Units Redis may still admit for each SKU of a sale; `None` when the sale is not loaded.
    pub async fn cached_stocks(&self, sale: FlashSaleId) -> Result<Option<HashMap<SkuId, i64>>, GateError> {
        let k = self.keys(sale);
        let mut conn = self.conn.clone();
        let loaded: bool = redis::cmd("EXISTS").arg(&k.meta).query_async(&mut conn).await?;
        if !loaded {
            return Ok(None);
        }
        let flat: Vec<String> = redis::cmd("HGETALL").arg(&k.stock).query_async(&mut conn).await?;
        let mut out = HashMap::new();
        for pair in flat.chunks(2) {
            if let (Ok(sku), Some(Ok(n))) = (pair[0].parse::<Uuid>(), pair.get(1).map(|n| n.parse::<i64>())) {
                out.insert(SkuId(sku), n);
            }
        }
        Ok(Some(out))
    }

    /// One pass of the consumer and FS-7 reconciliation over every sale loaded in Redis:
    /// requests left in flight longer than `stale_after` are ordered or released, and where
    /// Redis's stock differs from the database's buckets less the requests in flight, stock and
    /// buyers are set to the database's figures. Safe to run from every process at once.
    pub async fn reconcile(&self) -> Result<GateReport, GateError> {
        let mut conn = self.conn.clone();
        let now_secs = self.store.now().0 / 1_000_000;
        // Sales a day past their end have expired from Redis; forget them.
        let _: i64 = redis::cmd("ZREMRANGEBYSCORE")
            .arg(self.registry())
            .arg("-inf")
            .arg(now_secs - 86_400)
            .query_async(&mut conn)
            .await?;
        let members: Vec<String> =
            redis::cmd("ZRANGE").arg(self.registry()).arg(0).arg(-1).query_async(&mut conn).await?;
        let mut rep = GateReport::default();
        for m in members {
            let Some((t, s)) = m.split_once(':') else { continue };
            let (Ok(t), Ok(s)) = (t.parse::<Uuid>(), s.parse::<Uuid>()) else { continue };
            match self.reconcile_sale(TenantId(t), FlashSaleId(s), &mut rep).await {
                Ok(()) => {}
                // A sale of another database sharing this Redis and namespace: not ours to judge.
                Err(GateError::Store(StoreError::NotFound)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(rep)
    }

    async fn reconcile_sale(&self, tenant: TenantId, sale: FlashSaleId, rep: &mut GateReport) -> Result<(), GateError> {
        let k = self.keys(sale);
        let mut conn = self.conn.clone();
        let snap: Vec<String> =
            SNAPSHOT.key(&k.meta).key(&k.stock).key(&k.stream).arg(SNAPSHOT_REQUESTS).invoke_async(&mut conn).await?;
        if snap.is_empty() {
            return Ok(());
        }
        rep.sales += 1;
        let bad = || GateError::Malformed(format!("snapshot of sale {sale}"));
        let v = snap[0].clone();
        if snap[1] != tenant.0.to_string() {
            return Err(bad());
        }
        let n: usize = snap[2].parse().map_err(|_| bad())?;
        let mut cached = HashMap::new();
        for pair in snap.get(3..3 + 2 * n).ok_or_else(bad)?.chunks(2) {
            let sku: Uuid = pair[0].parse().map_err(|_| bad())?;
            cached.insert(SkuId(sku), pair[1].parse::<i64>().map_err(|_| bad())?);
        }
        let mut flights = Vec::new();
        for f in snap[3 + 2 * n..].chunks(7) {
            let [entry, rid, buyer, sku, qty, key, at] = f else { return Err(bad()) };
            flights.push(InFlight {
                entry: entry.clone(),
                rid: rid.clone(),
                buyer: BuyerId(buyer.parse().map_err(|_| bad())?),
                sku: SkuId(sku.parse().map_err(|_| bad())?),
                qty: qty.parse().map_err(|_| bad())?,
                key: key.clone(),
                at: at.parse().map_err(|_| bad())?,
            });
        }
        let truncated = flights.len() >= SNAPSHOT_REQUESTS;
        // Which requests in flight already have their order: looked up before the buckets are
        // read, so a request committing in between is counted in flight against buckets that
        // already lost its units — an undercount the next pass corrects, never an overcount.
        let now = self.store.now();
        let mut pending = Vec::new();
        let mut moved = false;
        for f in flights {
            if let Some(order) = self.store.order_id_by_client_key(tenant, f.buyer, &f.key).await? {
                let _: i64 = SETTLE
                    .key(&k.reqs)
                    .key(&k.stream)
                    .arg(&f.rid)
                    .arg(&f.entry)
                    .arg(order.0.to_string())
                    .invoke_async(&mut conn)
                    .await?;
            } else if Timestamp(f.at + self.stale_after.as_micros() as i64) <= now {
                let item = CartItem { sku_id: f.sku, qty: u32::try_from(f.qty).unwrap_or(0) };
                let r = self.finish(&k, tenant, f.buyer, sale, item, &f.key, &f.rid, &f.entry).await;
                tracing::warn!(%sale, rid = f.rid, ordered = r.is_ok(), "flash: took over a request left in flight");
                rep.recovered += 1;
                moved = true;
            } else {
                pending.push(f);
            }
        }
        if moved || truncated {
            // Redis moved under this snapshot; the next pass compares afresh.
            return Ok(());
        }
        let Some(st) = self.store.flash_gate_state(tenant, sale).await? else { return Ok(()) };
        let mut expected: HashMap<SkuId, i64> = st.stock.iter().copied().collect();
        let mut owed: HashMap<BuyerId, i64> = st.buyers.iter().copied().collect();
        for f in &pending {
            *expected.entry(f.sku).or_default() -= f.qty;
            *owed.entry(f.buyer).or_default() += f.qty;
        }
        let gap: i64 = expected.iter().map(|(sku, want)| (want - cached.get(sku).copied().unwrap_or(0)).abs()).sum();
        if gap == 0 {
            return Ok(());
        }
        let held: Vec<String> = redis::cmd("HGETALL").arg(&k.buyers).query_async(&mut conn).await?;
        let mut inv = REPAIR.key(&k.meta);
        inv.key(&k.stock).key(&k.buyers).arg(&v).arg(expected.len());
        for (sku, want) in &expected {
            inv.arg(sku.0.to_string()).arg(*want);
        }
        for pair in held.chunks(2) {
            let Ok(b) = pair[0].parse::<Uuid>() else { continue };
            owed.entry(BuyerId(b)).or_insert(0);
        }
        let had: HashMap<&str, &str> =
            held.chunks(2).filter_map(|p| Some((p.first()?.as_str(), p.get(1)?.as_str()))).collect();
        for (b, want) in &owed {
            let id = b.0.to_string();
            if had.get(id.as_str()).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0) != *want {
                inv.arg(id).arg(*want);
            }
        }
        let applied: i64 = inv.invoke_async(&mut conn).await?;
        if applied == 1 {
            tracing::warn!(%sale, units = gap, "flash: Redis was out of step with the database; repaired");
            rep.repaired_units += gap;
        }
        Ok(())
    }

    /// Runs `reconcile` every `every` until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>, every: Duration) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            match self.reconcile().await {
                Ok(r) if r.recovered > 0 || r.repaired_units > 0 => {
                    tracing::info!(
                        recovered = r.recovered,
                        repaired_units = r.repaired_units,
                        "flash: reconciled with Redis"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "flash: reconciliation with Redis failed"),
            }
        }
    }
}

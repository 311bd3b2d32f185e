//! Keeps one [`SegmentIndex`] per tenant current with the database.
//!
//! An index is built from a consistent snapshot on first use (or at start, by `warm`), then
//! caught up before every query by reading the customers whose `change_seq` is above the
//! last one applied. `change_seq` is commit-ordered per tenant (see `bump!`), so this never
//! misses a change, whichever process made it — several `siyu serve` processes sharing one
//! PostgreSQL each keep their own index and agree.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use roaring::RoaringBitmap;
use sqlx::FromRow;
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use siyu_core::auth::DataScope;
use siyu_core::customers::bitmap::{page_desc, SegmentIndex};
use siyu_core::customers::segment::{Expr, Facts};
use siyu_core::{StaffId, StoreId, TagId, TenantId};

use super::rfm_of;
use crate::{on_read, Backend, Result, Store};

#[derive(FromRow)]
struct BaseRow {
    num: i64,
    status: String,
    lifecycle: String,
    owner_staff_id: Option<Uuid>,
    store_id: Option<Uuid>,
    orders_count: i64,
    spend_fen: i64,
    last_order_day: Option<i64>,
    rfm_r: Option<i64>,
    rfm_f: Option<i64>,
    rfm_m: Option<i64>,
    rfm_segment: Option<String>,
}

/// What a load applied.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadStats {
    pub customers: u64,
    pub seq: i64,
}

impl Store {
    /// Applies every customer change with `since < change_seq` to `idx`, from one snapshot.
    /// With `since = 0` on an empty index this is the full build. Returns the new high mark.
    pub async fn load_segment_index(&self, tenant: TenantId, since: i64, idx: &mut SegmentIndex) -> Result<LoadStats> {
        let pg = self.backend() == Backend::Postgres;
        let stats = on_read!(self, |p| {
            let mut tx = p.begin().await?;
            if pg {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
            }
            let max: Option<i64> = sqlx::query_scalar("SELECT change_seq FROM customer_counters WHERE tenant_id = $1")
                .bind(tenant.0)
                .fetch_optional(&mut *tx)
                .await?;
            let max = max.unwrap_or(0);
            let mut stats = LoadStats { customers: 0, seq: max.max(since) };
            if max > since {
                // A full build scans each table once; a catch-up joins the few changed rows.
                let full = since == 0 && idx.is_empty();
                let base_sql = if full {
                    "SELECT num, status, lifecycle, owner_staff_id, store_id, orders_count, spend_fen, last_order_day, \
                     rfm_r, rfm_f, rfm_m, rfm_segment FROM customers WHERE tenant_id = $1 AND $2 >= 0 AND change_seq <= $3"
                } else {
                    "SELECT num, status, lifecycle, owner_staff_id, store_id, orders_count, spend_fen, last_order_day, \
                     rfm_r, rfm_f, rfm_m, rfm_segment FROM customers \
                     WHERE tenant_id = $1 AND change_seq > $2 AND change_seq <= $3 ORDER BY num"
                };
                {
                    let mut rows =
                        sqlx::query_as::<_, BaseRow>(base_sql).bind(tenant.0).bind(since).bind(max).fetch(&mut *tx);
                    while let Some(r) = rows.try_next().await? {
                        let num = r.num as u32;
                        if !full {
                            idx.clear(num);
                        }
                        if r.status != "active" {
                            continue;
                        }
                        stats.customers += 1;
                        let f = Facts {
                            lifecycle: r.lifecycle,
                            staff: r.owner_staff_id.map(StaffId),
                            store: r.store_id.map(StoreId),
                            rfm: rfm_of(r.rfm_r, r.rfm_f, r.rfm_m, r.rfm_segment.as_deref()),
                            orders: r.orders_count,
                            spend_fen: r.spend_fen,
                            last_purchase_day: r.last_order_day,
                            ..Facts::default()
                        };
                        idx.insert(num, &f);
                    }
                }
                let (from, filter) = if full {
                    ("", "x.tenant_id = $1 AND $2 >= 0 AND $3 >= 0")
                } else {
                    (
                        "JOIN customers c ON c.tenant_id = x.tenant_id AND c.num = x.customer_num",
                        "x.tenant_id = $1 AND c.change_seq > $2 AND c.change_seq <= $3 AND c.status = 'active'",
                    )
                };
                {
                    let sql = format!("SELECT x.customer_num, x.tag_id FROM customer_tags x {from} WHERE {filter}");
                    let mut rows =
                        sqlx::query_as::<_, (i64, Uuid)>(&sql).bind(tenant.0).bind(since).bind(max).fetch(&mut *tx);
                    while let Some((num, tag)) = rows.try_next().await? {
                        idx.insert_tag(num as u32, TagId(tag));
                    }
                }
                {
                    let sql = format!("SELECT x.customer_num, x.state FROM customer_channels x {from} WHERE {filter}");
                    let mut rows =
                        sqlx::query_as::<_, (i64, String)>(&sql).bind(tenant.0).bind(since).bind(max).fetch(&mut *tx);
                    while let Some((num, state)) = rows.try_next().await? {
                        idx.insert_channel(num as u32, &state);
                    }
                }
                {
                    let sql = format!(
                        "SELECT x.customer_num, x.key, x.value FROM customer_fields x {from} WHERE {filter} AND x.value IS NOT NULL"
                    );
                    let mut rows = sqlx::query_as::<_, (i64, String, String)>(&sql)
                        .bind(tenant.0)
                        .bind(since)
                        .bind(max)
                        .fetch(&mut *tx);
                    while let Some((num, k, v)) = rows.try_next().await? {
                        idx.insert_field(num as u32, &k, &v);
                    }
                }
                if full {
                    // Membership rows of customers no longer live (merged, erased) must not
                    // reach the bitmaps.
                    idx.retain_live();
                }
            }
            tx.rollback().await?;
            stats
        });
        Ok(stats)
    }

    /// The tenant's change high mark: one indexed probe, the cost of an up-to-date check.
    pub async fn customer_change_seq(&self, tenant: TenantId) -> Result<i64> {
        let v: Option<i64> =
            on_read!(self, |p| sqlx::query_scalar("SELECT change_seq FROM customer_counters WHERE tenant_id = $1")
                .bind(tenant.0)
                .fetch_optional(p)
                .await?);
        Ok(v.unwrap_or(0))
    }
}

/// One tenant's index and the change mark it reflects.
pub struct Loaded {
    pub index: SegmentIndex,
    pub seq: i64,
    /// How long the last full build took.
    pub build_ms: u64,
}

struct TenantIndex {
    loaded: RwLock<Option<Loaded>>,
    /// Serialises builds and catch-ups so concurrent queries do not repeat them.
    refresh: Mutex<()>,
}

/// The per-tenant segment indexes of this process.
#[derive(Clone)]
pub struct SegmentIndexes {
    store: Store,
    tenants: Arc<std::sync::Mutex<HashMap<TenantId, Arc<TenantIndex>>>>,
}

/// Facts about an index for the console and the benchmark.
#[derive(Clone, Copy, Debug)]
pub struct IndexInfo {
    pub customers: u64,
    pub bytes: u64,
    pub seq: i64,
    pub build_ms: u64,
}

impl SegmentIndexes {
    pub fn new(store: Store) -> Self {
        SegmentIndexes { store, tenants: Arc::default() }
    }

    fn slot(&self, tenant: TenantId) -> Arc<TenantIndex> {
        let mut m = self.tenants.lock().expect("index registry lock");
        m.entry(tenant)
            .or_insert_with(|| Arc::new(TenantIndex { loaded: RwLock::new(None), refresh: Mutex::new(()) }))
            .clone()
    }

    /// Brings the tenant's index up to date with the database, building it if needed.
    pub async fn sync(&self, tenant: TenantId) -> Result<()> {
        let slot = self.slot(tenant);
        let current = self.store.customer_change_seq(tenant).await?;
        if slot.loaded.read().await.as_ref().is_some_and(|l| l.seq >= current) {
            return Ok(());
        }
        let _guard = slot.refresh.lock().await;
        let have = slot.loaded.read().await.as_ref().map(|l| l.seq);
        match have {
            None => {
                // Build aside, so a long build never blocks readers of another snapshot.
                let started = Instant::now();
                let mut idx = SegmentIndex::new();
                let stats = self.store.load_segment_index(tenant, 0, &mut idx).await?;
                let build_ms = started.elapsed().as_millis() as u64;
                tracing::info!(%tenant, customers = stats.customers, build_ms, "segment index built");
                *slot.loaded.write().await = Some(Loaded { index: idx, seq: stats.seq, build_ms });
            }
            Some(seq) if seq < current => {
                let mut w = slot.loaded.write().await;
                let l = w.as_mut().expect("present");
                let stats = self.store.load_segment_index(tenant, l.seq, &mut l.index).await?;
                l.seq = stats.seq;
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Runs `f` over the up-to-date index.
    pub async fn with<T>(&self, tenant: TenantId, f: impl FnOnce(&SegmentIndex) -> T) -> Result<T> {
        self.sync(tenant).await?;
        let slot = self.slot(tenant);
        let r = slot.loaded.read().await;
        let l = r.as_ref().expect("synced");
        Ok(f(&l.index))
    }

    pub async fn info(&self, tenant: TenantId) -> Result<IndexInfo> {
        self.sync(tenant).await?;
        let slot = self.slot(tenant);
        let r = slot.loaded.read().await;
        let l = r.as_ref().expect("synced");
        Ok(IndexInfo { customers: l.index.len(), bytes: l.index.bytes(), seq: l.seq, build_ms: l.build_ms })
    }

    /// Members of a resolved expression visible to `scope`.
    pub async fn members(&self, tenant: TenantId, scope: DataScope, e: &Expr, today: i64) -> Result<RoaringBitmap> {
        let e = scoped(e, scope);
        self.with(tenant, |i| e.as_ref().map(|e| i.eval(e, today)).unwrap_or_default()).await
    }

    pub async fn count(&self, tenant: TenantId, scope: DataScope, e: &Expr, today: i64) -> Result<u64> {
        let e = scoped(e, scope);
        self.with(tenant, |i| e.as_ref().map(|e| i.count(e, today)).unwrap_or(0)).await
    }

    /// The count of an expression and of everyone in scope, from one catch-up (the builder's
    /// "n of total").
    pub async fn count_with_total(
        &self,
        tenant: TenantId,
        scope: DataScope,
        e: &Expr,
        today: i64,
    ) -> Result<(u64, u64)> {
        let (e, all) = (scoped(e, scope), scoped(&Expr::All, scope));
        self.with(tenant, |i| match (e, all) {
            (Some(e), Some(all)) => (i.count(&e, today), i.count(&all, today)),
            _ => (0, 0),
        })
        .await
    }

    /// One page of members, newest first, strictly below `before`; and the total.
    pub async fn page(
        &self,
        tenant: TenantId,
        scope: DataScope,
        e: &Expr,
        today: i64,
        before: Option<u32>,
        limit: usize,
    ) -> Result<(Vec<u32>, u64)> {
        let m = self.members(tenant, scope, e, today).await?;
        Ok((page_desc(&m, before, limit), m.len()))
    }

    /// Forgets a tenant's index (tests, and tenants removed at runtime).
    pub fn forget(&self, tenant: TenantId) {
        self.tenants.lock().expect("index registry lock").remove(&tenant);
    }
}

/// Guides evaluate within their own customers; an unlinked guide sees nothing.
fn scoped(e: &Expr, scope: DataScope) -> Option<Expr> {
    match scope {
        DataScope::Tenant => Some(e.clone()),
        DataScope::OwnStaff(s) => Some(Expr::And(vec![Expr::Staff(s), e.clone()])),
        DataScope::Nothing => None,
    }
}

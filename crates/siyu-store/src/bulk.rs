//! Bulk loading, where the backends truly differ: PostgreSQL takes `COPY FROM STDIN`, SQLite
//! takes multi-row `INSERT`s inside one transaction on its single writer. Used by imports and
//! the benchmark harness; [`Store::generate_staff_in_db`] is the benchmark's baseline (rows
//! generated inside the database, with no client round trips at all).

use sqlx::QueryBuilder;
use uuid::Uuid;

use siyu_core::{TenantId, Timestamp};

use crate::{on_read, Db, Result, Store};

/// One synthetic staff row.
pub struct StaffSeed {
    pub name: String,
    pub wecom_userid: String,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Store {
    /// Inserts staff rows through the backend's bulk path; returns the number inserted.
    pub async fn bulk_insert_staff(&self, tenant: TenantId, rows: &[StaffSeed]) -> Result<u64> {
        let now = self.now();
        match &self.db {
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let mut copy = conn
                    .copy_in_raw("COPY staff (tenant_id, id, name, wecom_userid, status, created_at, updated_at) FROM STDIN WITH (FORMAT csv)")
                    .await?;
                let mut buf = String::with_capacity(1 << 20);
                for r in rows {
                    use std::fmt::Write;
                    let _ = writeln!(
                        buf,
                        "{},{},{},{},active,{},{}",
                        tenant.0,
                        Uuid::now_v7(),
                        csv_field(&r.name),
                        csv_field(&r.wecom_userid),
                        now.0,
                        now.0
                    );
                    if buf.len() > (1 << 20) - 512 {
                        copy.send(buf.as_bytes()).await?;
                        buf.clear();
                    }
                }
                if !buf.is_empty() {
                    copy.send(buf.as_bytes()).await?;
                }
                Ok(copy.finish().await?)
            }
            Db::Sqlite { write, .. } => {
                let mut tx = write.begin().await?;
                let mut n = 0;
                // 7 parameters a row; 2,000 rows stay well inside SQLite's 32,766-parameter limit.
                for chunk in rows.chunks(2000) {
                    let mut qb = QueryBuilder::new(
                        "INSERT INTO staff (tenant_id, id, name, wecom_userid, status, created_at, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(tenant.0)
                            .push_bind(Uuid::now_v7())
                            .push_bind(&r.name)
                            .push_bind(&r.wecom_userid)
                            .push_bind("active")
                            .push_bind(now.0)
                            .push_bind(now.0);
                    });
                    n += qb.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            }
        }
    }

    /// Baseline for the bulk benchmark: the database generates `n` staff rows by itself, with
    /// ascending keys like siyu's time-ordered ids (random keys would make the baseline pay
    /// for scattered index inserts that siyu's own path never does).
    pub async fn generate_staff_in_db(&self, tenant: TenantId, n: i64, prefix: &str) -> Result<u64> {
        let now: Timestamp = self.now();
        let r = match &self.db {
            Db::Postgres(p) => sqlx::query(
                "INSERT INTO staff (tenant_id, id, name, wecom_userid, status, created_at, updated_at) \
                 SELECT $1, lpad(to_hex(g), 32, '0')::uuid, 'staff ' || g, $3 || g, 'active', $4, $4 FROM generate_series(1, $2) AS g",
            )
            .bind(tenant.0)
            .bind(n)
            .bind(prefix)
            .bind(now.0)
            .execute(p)
            .await?
            .rows_affected(),
            Db::Sqlite { write, .. } => sqlx::query(
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $2) \
                 INSERT INTO staff (tenant_id, id, name, wecom_userid, status, created_at, updated_at) \
                 SELECT $1, unhex(printf('%032x', i)), 'staff ' || i, $3 || i, 'active', $4, $4 FROM g",
            )
            .bind(tenant.0)
            .bind(n)
            .bind(prefix)
            .bind(now.0)
            .execute(write)
            .await?
            .rows_affected(),
        };
        Ok(r)
    }
}

impl Store {
    /// Transfer benchmark: `n` live relationships of member `userid` with generated
    /// external ids `{prefix}{i}`, made inside the database.
    pub async fn generate_relationships(&self, tenant: TenantId, userid: &str, n: i64, prefix: &str) -> Result<u64> {
        let now = self.now().0;
        let r = match &self.db {
            Db::Postgres(p) => sqlx::query(
                "INSERT INTO wecom_relationships (tenant_id, external_userid, userid, add_time, add_way, status, corp_tag_ids, \
                 remark_mobiles, status_changed_at, last_synced_at, last_source) \
                 SELECT $1, $4 || g, $2, g, 1, 'active', '[]', '[]', $5, $5, 'bench' FROM generate_series(1, $3) AS g",
            )
            .bind(tenant.0)
            .bind(userid)
            .bind(n)
            .bind(prefix)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected(),
            Db::Sqlite { write, .. } => sqlx::query(
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $3) \
                 INSERT INTO wecom_relationships (tenant_id, external_userid, userid, add_time, add_way, status, corp_tag_ids, \
                 remark_mobiles, status_changed_at, last_synced_at, last_source) \
                 SELECT $1, $4 || i, $2, i, 1, 'active', '[]', '[]', $5, $5, 'bench' FROM g",
            )
            .bind(tenant.0)
            .bind(userid)
            .bind(n)
            .bind(prefix)
            .bind(now)
            .execute(write)
            .await?
            .rows_affected(),
        };
        Ok(r)
    }

    /// `n` live customer groups owned by `owner`, with chat ids `prefix1..prefixN`, for the
    /// group-transfer benchmark.
    pub async fn generate_groups(&self, tenant: TenantId, owner: &str, n: i64, prefix: &str) -> Result<u64> {
        let now = self.now().0;
        let cols =
            "INSERT INTO wecom_groups (tenant_id, chat_id, name, owner, member_count, member_version, created_at, \
             last_synced_at, last_source)";
        let r = match &self.db {
            Db::Postgres(p) => sqlx::query(&format!(
                "{cols} SELECT $1, $4 || g, 'group ' || g, $2, 50, '1', g, $5, 'bench' FROM generate_series(1, $3) AS g"
            ))
            .bind(tenant.0)
            .bind(owner)
            .bind(n)
            .bind(prefix)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected(),
            Db::Sqlite { write, .. } => sqlx::query(&format!(
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $3) \
                 {cols} SELECT $1, $4 || i, 'group ' || i, $2, 50, '1', i, $5, 'bench' FROM g"
            ))
            .bind(tenant.0)
            .bind(owner)
            .bind(n)
            .bind(prefix)
            .bind(now)
            .execute(write)
            .await?
            .rows_affected(),
        };
        Ok(r)
    }

    /// Baseline for the transfer benchmarks: the item rows a plan must write, inserted plainly
    /// in one transaction (no lookups, no planning), under an existing batch — customer items,
    /// or group items with `groups`.
    pub async fn insert_plain_transfer_items(
        &self,
        tenant: TenantId,
        transfer: siyu_core::TransferId,
        handover: &str,
        rows: &[(String, String)],
        groups: bool,
    ) -> Result<u64> {
        let now = self.now().0;
        let sql = if groups {
            "INSERT INTO group_transfer_items (tenant_id, id, transfer_id, chat_id, handover_userid, takeover_userid, \
             status, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7)"
        } else {
            "INSERT INTO transfer_items (tenant_id, id, transfer_id, external_userid, handover_userid, takeover_userid, \
             status, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7)"
        };
        let n = crate::in_tx!(self, |tx| {
            let mut n = 0;
            for (external, takeover) in rows {
                n += sqlx::query(sql)
                    .bind(tenant.0)
                    .bind(uuid::Uuid::now_v7())
                    .bind(transfer.0)
                    .bind(external)
                    .bind(handover)
                    .bind(takeover)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            n
        });
        Ok(n)
    }
}

/// The facts of a generated segment-benchmark customer `x`, as SQL over the series column
/// `x`: spread by multiplicative hashing so predicates are independent of each other.
const SEGMENT_COLUMNS: &str = "CASE ((x * 48271) % 2147483647) % 7 WHEN 0 THEN 'new' WHEN 1 THEN 'following' WHEN 2 THEN 'intent' \
     WHEN 3 THEN 'deal' WHEN 4 THEN 'repurchase' WHEN 5 THEN 'dormant' ELSE 'lost' END, \
     ((x * 69621) % 1000003) % 20, ((x * 2654435761) % 1000003) % 200000, 15000 + ((x * 9973) % 1000003) % 1000, \
     1 + ((x * 31) % 1000003) % 5, 1 + ((x * 37) % 1000033) % 5, 1 + ((x * 41) % 1000037) % 5, \
     CASE ((x * 7919) % 999983) % 8 WHEN 0 THEN 'important_value' WHEN 1 THEN 'important_develop' WHEN 2 THEN 'important_keep' \
     WHEN 3 THEN 'important_retain' WHEN 4 THEN 'general_value' WHEN 5 THEN 'general_develop' \
     WHEN 6 THEN 'general_keep' ELSE 'general_retain' END";

/// Tags per generated customer, chosen from the tenant's tags named `t0`…`t{tags-1}`.
pub const SEGMENT_TAGS_PER_CUSTOMER: i64 = 3;

impl Store {
    /// Generates a segment-benchmark tenant inside the database: `n` customers with a
    /// lifecycle stage, purchase metrics and RFM, and three of the tenant's tags `t0…` each.
    /// The tenant's change counter is set so an index builds from it like from real data.
    pub async fn generate_segment_tenant(
        &self,
        tenant: TenantId,
        group: siyu_core::TagGroupId,
        n: i64,
        tags: i64,
    ) -> Result<()> {
        let insert =
            "INSERT INTO customers (tenant_id, id, num, name, lifecycle, orders_count, spend_fen, last_order_day, \
                      rfm_r, rfm_f, rfm_m, rfm_segment, source, status, created_at, updated_at, change_seq)";
        let tag_sql = format!(
            "INSERT INTO customer_tags (tenant_id, tag_id, customer_id, customer_num, source, created_at) \
             SELECT c.tenant_id, t.id, c.id, c.num, 'bench', 0 FROM customers c \
             CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2) ks \
             JOIN tags t ON t.tenant_id = c.tenant_id AND t.group_id = $2 \
               AND t.name = 't' || (((c.num * 40503 + ks.k * 7919) % 1000003) % {tags}) \
             WHERE c.tenant_id = $1"
        );
        let counters = "INSERT INTO customer_counters (tenant_id, next_num, change_seq) VALUES ($1, $2 + 1, 1) \
                        ON CONFLICT (tenant_id) DO UPDATE SET next_num = $2 + 1, change_seq = 1";
        match &self.db {
            Db::Postgres(p) => {
                sqlx::query(&format!(
                    "{insert} SELECT $1, lpad(to_hex(x), 32, '0')::uuid, x, 'c' || x, {SEGMENT_COLUMNS}, 'bench', 'active', 0, 0, 1 \
                     FROM generate_series(1::bigint, $2) AS x"
                ))
                .bind(tenant.0)
                .bind(n)
                .execute(p)
                .await?;
                sqlx::query(&tag_sql).bind(tenant.0).bind(group.0).execute(p).await?;
                sqlx::query(counters).bind(tenant.0).bind(n).execute(p).await?;
                sqlx::query("ANALYZE customers").execute(p).await?;
                sqlx::query("ANALYZE customer_tags").execute(p).await?;
            }
            Db::Sqlite { write, .. } => {
                sqlx::query(&format!(
                    "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < $2) \
                     {insert} SELECT $1, unhex(printf('%032x', x)), x, 'c' || x, {SEGMENT_COLUMNS}, 'bench', 'active', 0, 0, 1 FROM g"
                ))
                .bind(tenant.0)
                .bind(n)
                .execute(write)
                .await?;
                sqlx::query(&tag_sql).bind(tenant.0).bind(group.0).execute(write).await?;
                sqlx::query(counters).bind(tenant.0).bind(n).execute(write).await?;
                sqlx::query("ANALYZE").execute(write).await?;
            }
        }
        Ok(())
    }

    /// Writes a tenant's segment facts as two CSV files (`customers.csv`: num, lifecycle,
    /// orders, spend_fen, last_order_day, rfm_segment; `tags.csv`: num, tag name), so another
    /// engine can be measured on exactly the same data.
    pub async fn export_segment_facts(&self, tenant: TenantId, dir: &std::path::Path) -> Result<()> {
        use futures::TryStreamExt;
        use std::io::Write;
        let open = |name: &str| -> Result<std::io::BufWriter<std::fs::File>> {
            let f = std::fs::File::create(dir.join(name)).map_err(sqlx::Error::Io)?;
            Ok(std::io::BufWriter::with_capacity(1 << 20, f))
        };
        let io = |e: std::io::Error| crate::StoreError::Db(sqlx::Error::Io(e));
        let mut w = open("customers.csv")?;
        writeln!(w, "num,lifecycle,orders,spend_fen,last_order_day,rfm_segment").map_err(io)?;
        on_read!(self, |p| {
            let mut rows = sqlx::query_as::<_, (i64, String, i64, i64, Option<i64>, Option<String>)>(
                "SELECT num, lifecycle, orders_count, spend_fen, last_order_day, rfm_segment FROM customers \
                 WHERE tenant_id = $1 AND status = 'active'",
            )
            .bind(tenant.0)
            .fetch(p);
            while let Some((num, l, o, s, d, r)) = rows.try_next().await? {
                writeln!(
                    w,
                    "{num},{l},{o},{s},{},{}",
                    d.map(|d| d.to_string()).unwrap_or_default(),
                    r.unwrap_or_default()
                )
                .map_err(io)?;
            }
        });
        w.flush().map_err(io)?;
        let mut w = open("tags.csv")?;
        writeln!(w, "num,tag").map_err(io)?;
        on_read!(self, |p| {
            let mut rows = sqlx::query_as::<_, (i64, String)>(
                "SELECT c.num, t.name FROM customer_tags x JOIN customers c ON c.tenant_id = x.tenant_id AND c.id = x.customer_id \
                 JOIN tags t ON t.tenant_id = x.tenant_id AND t.id = x.tag_id WHERE x.tenant_id = $1",
            )
            .bind(tenant.0)
            .fetch(p);
            while let Some((num, tag)) = rows.try_next().await? {
                writeln!(w, "{num},{tag}").map_err(io)?;
            }
        });
        w.flush().map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("王芳"), "王芳");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}

//! Bulk loading, where the backends truly differ: PostgreSQL takes `COPY FROM STDIN`, SQLite
//! takes multi-row `INSERT`s inside one transaction on its single writer. Used by imports and
//! the benchmark harness; [`Store::generate_staff_in_db`] is the benchmark's baseline (rows
//! generated inside the database, with no client round trips at all).

use sqlx::QueryBuilder;
use uuid::Uuid;

use siyu_core::{TenantId, Timestamp};

use crate::{Db, Result, Store};

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

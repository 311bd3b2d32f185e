//! Order promotions: stored rules with their windows. At most one promotion runs at any
//! instant (creating one whose window overlaps a running one is refused), so a cart never
//! meets two 满减 at once and the stacking matrix stays what §4.2 says.

use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::pricing::{OrderPromo, PromoRule, Scope};
use siyu_core::commerce::promotion::{overlaps, PromotionInput};
use siyu_core::{PromotionId, TenantId, Timestamp};

use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct Promotion {
    pub id: PromotionId,
    pub name: String,
    pub rule: PromoRule,
    pub scope: Scope,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// `active` or `stopped`.
    pub status: String,
    pub created_at: Timestamp,
}

impl Promotion {
    /// The pipeline's form of it.
    pub fn as_promo(&self) -> OrderPromo {
        OrderPromo { id: self.name.clone(), scope: self.scope.clone(), rule: self.rule.clone() }
    }
}

type Row = (Uuid, String, Json<PromoRule>, Json<Scope>, i64, i64, String, i64);
const SELECT: &str = "SELECT id, name, rule, scope, starts_at, ends_at, status, created_at FROM promotions";

fn from_row(r: Row) -> Promotion {
    Promotion {
        id: PromotionId(r.0),
        name: r.1,
        rule: r.2 .0,
        scope: r.3 .0,
        starts_at: Timestamp(r.4),
        ends_at: Timestamp(r.5),
        status: r.6,
        created_at: Timestamp(r.7),
    }
}

impl Store {
    pub async fn create_promotion(&self, actor: &Actor, p: &PromotionInput) -> Result<Promotion> {
        let tenant = actor.tenant_id;
        let id = PromotionId::new();
        in_tx!(self, |tx| {
            // Under the transaction, so two overlapping creations cannot both pass (SQLite has
            // one writer; on PostgreSQL the tenant row lock below serialises creators).
            sqlx::query("UPDATE tenants SET updated_at = updated_at WHERE id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
            let sql = format!("{SELECT} WHERE tenant_id = $1 AND status = 'active' AND ends_at > $2");
            let live: Vec<Row> = sqlx::query_as(&sql).bind(tenant.0).bind(p.starts_at.0).fetch_all(&mut *tx).await?;
            if let Some(clash) =
                live.into_iter().map(from_row).find(|x| overlaps((x.starts_at, x.ends_at), (p.starts_at, p.ends_at)))
            {
                return Err(StoreError::Rejected {
                    code: "promotion_overlaps",
                    field: Some("starts_at".into()),
                    message: format!("“{}” runs at the same time; stop it or choose another window", clash.name),
                });
            }
            sqlx::query(
                "INSERT INTO promotions (tenant_id, id, name, rule, scope, starts_at, ends_at, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $8)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&p.name)
            .bind(Json(&p.rule))
            .bind(Json(&p.scope))
            .bind(p.starts_at.0)
            .bind(p.ends_at.0)
            .bind(self.now().0)
            .execute(&mut *tx)
            .await?;
            audit!(tx, self, actor, "promotion.create", "promotion", id, None, snapshot(p));
        });
        self.promotion(tenant, id).await
    }

    pub async fn promotion(&self, tenant: TenantId, id: PromotionId) -> Result<Promotion> {
        let sql = format!("{SELECT} WHERE tenant_id = $1 AND id = $2");
        let r: Option<Row> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(from_row).ok_or(StoreError::NotFound)
    }

    /// Promotions, newest first.
    pub async fn promotions(&self, tenant: TenantId) -> Result<Vec<Promotion>> {
        let sql = format!("{SELECT} WHERE tenant_id = $1 ORDER BY id DESC");
        let rows: Vec<Row> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).fetch_all(p).await?);
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Those running at `at`.
    pub async fn running_promotions(&self, tenant: TenantId, at: Timestamp) -> Result<Vec<Promotion>> {
        let sql = format!(
            "{SELECT} WHERE tenant_id = $1 AND status = 'active' AND starts_at <= $2 AND ends_at > $2 ORDER BY starts_at"
        );
        let rows: Vec<Row> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(at.0).fetch_all(p).await?);
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Ends a promotion now; orders already placed keep their prices.
    pub async fn stop_promotion(&self, actor: &Actor, id: PromotionId) -> Result<Promotion> {
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE promotions SET status = 'stopped', updated_at = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(self.now().0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            audit!(tx, self, actor, "promotion.stop", "promotion", id, None, None);
        });
        self.promotion(actor.tenant_id, id).await
    }
}

//! Coupons: templates, claiming (CP-1), and the instances customers hold.
//!
//! A claim is one transaction of two guarded writes: the template's `issued < total` and the
//! customer's counter `n < per_user`. If either affects no row, nothing is written. Locking an
//! instance into an order (CP-2) happens in the order's own transaction (`orders`), and the
//! one compensation routine unlocks it; payment marks it used.

use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::coupon::{self, TemplateInput, Validity};
use siyu_core::commerce::pricing::{CouponKind, Scope};
use siyu_core::{BuyerId, CouponTemplateId, OrderId, TenantId, Timestamp, UserCouponId};

use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct CouponTemplate {
    pub id: CouponTemplateId,
    pub name: String,
    pub kind: CouponKind,
    pub scope: Scope,
    pub validity: Validity,
    pub total: i64,
    pub issued: i64,
    pub per_user: i64,
    pub code: Option<String>,
    /// `active` or `stopped`.
    pub status: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
pub struct UserCoupon {
    pub id: UserCouponId,
    pub template_id: CouponTemplateId,
    pub name: String,
    pub kind: CouponKind,
    pub scope: Scope,
    /// `unused`, `locked` (held by an unpaid order) or `used`.
    pub status: String,
    pub order_id: Option<OrderId>,
    pub valid_start: Timestamp,
    pub valid_end: Timestamp,
    pub claimed_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

impl UserCoupon {
    /// Usable for a new order at `now`.
    pub fn usable(&self, now: Timestamp) -> bool {
        self.status == "unused" && self.valid_start <= now && now < self.valid_end
    }
}

type TemplateRow =
    (Uuid, String, Json<CouponKind>, Json<Scope>, Json<Validity>, i64, i64, i64, Option<String>, String, i64);
const TEMPLATE_SELECT: &str =
    "SELECT id, name, kind, scope, validity, total, issued, per_user, code, status, created_at \
     FROM coupon_templates";

fn template_from(r: TemplateRow) -> CouponTemplate {
    CouponTemplate {
        id: CouponTemplateId(r.0),
        name: r.1,
        kind: r.2 .0,
        scope: r.3 .0,
        validity: r.4 .0,
        total: r.5,
        issued: r.6,
        per_user: r.7,
        code: r.8,
        status: r.9,
        created_at: Timestamp(r.10),
    }
}

#[derive(sqlx::FromRow)]
struct CouponRow {
    id: Uuid,
    template_id: Uuid,
    name: String,
    kind: Json<CouponKind>,
    scope: Json<Scope>,
    status: String,
    order_id: Option<Uuid>,
    valid_start: i64,
    valid_end: i64,
    claimed_at: i64,
    used_at: Option<i64>,
}

const COUPON_SELECT: &str =
    "SELECT u.id, u.template_id, t.name, t.kind, t.scope, u.status, u.order_id, u.valid_start, \
     u.valid_end, u.claimed_at, u.used_at FROM user_coupons u \
     JOIN coupon_templates t ON t.tenant_id = u.tenant_id AND t.id = u.template_id";

fn coupon_from(r: CouponRow) -> UserCoupon {
    UserCoupon {
        id: UserCouponId(r.id),
        template_id: CouponTemplateId(r.template_id),
        name: r.name,
        kind: r.kind.0,
        scope: r.scope.0,
        status: r.status,
        order_id: r.order_id.map(OrderId),
        valid_start: Timestamp(r.valid_start),
        valid_end: Timestamp(r.valid_end),
        claimed_at: Timestamp(r.claimed_at),
        used_at: r.used_at.map(Timestamp),
    }
}

fn rejected(code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Rejected { code, field: None, message: message.into() }
}

impl Store {
    pub async fn create_coupon_template(&self, actor: &Actor, t: &TemplateInput) -> Result<CouponTemplate> {
        let id = CouponTemplateId::new();
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO coupon_templates (tenant_id, id, name, kind, scope, validity, total, per_user, code, status, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $10)",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(&t.name)
            .bind(Json(&t.kind))
            .bind(Json(&t.scope))
            .bind(Json(&t.validity))
            .bind(t.total)
            .bind(t.per_user)
            .bind(&t.code)
            .bind(self.now().0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "code"))?;
            audit!(tx, self, actor, "coupon_template.create", "coupon_template", id, None, snapshot(t));
        });
        self.coupon_template(actor.tenant_id, id).await
    }

    pub async fn coupon_template(&self, tenant: TenantId, id: CouponTemplateId) -> Result<CouponTemplate> {
        let sql = format!("{TEMPLATE_SELECT} WHERE tenant_id = $1 AND id = $2");
        let r: Option<TemplateRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(template_from).ok_or(StoreError::NotFound)
    }

    /// Templates, newest first.
    pub async fn coupon_templates(&self, tenant: TenantId) -> Result<Vec<CouponTemplate>> {
        let sql = format!("{TEMPLATE_SELECT} WHERE tenant_id = $1 ORDER BY id DESC");
        let rows: Vec<TemplateRow> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).fetch_all(p).await?);
        Ok(rows.into_iter().map(template_from).collect())
    }

    /// Stops issuing a template; coupons already claimed stay usable.
    pub async fn stop_coupon_template(&self, actor: &Actor, id: CouponTemplateId) -> Result<CouponTemplate> {
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE coupon_templates SET status = 'stopped', updated_at = $3 WHERE tenant_id = $1 AND id = $2",
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
            audit!(tx, self, actor, "coupon_template.stop", "coupon_template", id, None, None);
        });
        self.coupon_template(actor.tenant_id, id).await
    }

    /// Claims one coupon of a template for a buyer (CP-1): both limits hold under any
    /// concurrency, or nothing is written.
    pub async fn claim_coupon(
        &self,
        tenant: TenantId,
        buyer: BuyerId,
        template: CouponTemplateId,
        offset_hours: i8,
    ) -> Result<UserCoupon> {
        let t = self.coupon_template(tenant, template).await?;
        let now = self.now();
        let (start, end) = coupon::window(t.validity, now, offset_hours);
        if t.status != "active" || now >= end {
            return Err(rejected("coupon_not_claimable", "this coupon is no longer given out"));
        }
        let id = UserCouponId::new();
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE coupon_templates SET issued = issued + 1 WHERE tenant_id = $1 AND id = $2 AND issued < total \
                 AND status = 'active'",
            )
            .bind(tenant.0)
            .bind(template.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(rejected("coupon_sold_out", "all of these coupons have been claimed"));
            }
            let n = sqlx::query(
                "INSERT INTO coupon_claims (tenant_id, template_id, buyer_id, n) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (tenant_id, template_id, buyer_id) DO UPDATE SET n = coupon_claims.n + 1 \
                 WHERE coupon_claims.n < $4",
            )
            .bind(tenant.0)
            .bind(template.0)
            .bind(buyer.0)
            .bind(t.per_user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(rejected(
                    "coupon_limit_reached",
                    format!("each customer may claim {} of these coupons", t.per_user),
                ));
            }
            sqlx::query(
                "INSERT INTO user_coupons (tenant_id, id, template_id, buyer_id, status, valid_start, valid_end, claimed_at) \
                 VALUES ($1, $2, $3, $4, 'unused', $5, $6, $7)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(template.0)
            .bind(buyer.0)
            .bind(start.0)
            .bind(end.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        });
        self.user_coupon(tenant, id).await
    }

    /// 定向发券: gives one coupon of a template to each of these customers (by their numbers)
    /// who has a mall account, each claim under the same limits as a customer's own. Returns
    /// (issued, refused by a limit or sold out, customers without a mall account).
    pub async fn issue_coupons(
        &self,
        tenant: TenantId,
        template: CouponTemplateId,
        customer_nums: &[u32],
        offset_hours: i8,
    ) -> Result<(u64, u64, u64)> {
        let mut buyers: Vec<Uuid> = Vec::new();
        for chunk in customer_nums.chunks(500) {
            let found: Vec<Uuid> = on_read!(self, |p| {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT b.id FROM mall_buyers b JOIN customers c ON c.tenant_id = b.tenant_id AND c.id = b.customer_id \
                     WHERE b.tenant_id = ",
                );
                qb.push_bind(tenant.0).push(" AND c.num IN (");
                let mut sep = qb.separated(", ");
                for n in chunk {
                    sep.push_bind(i64::from(*n));
                }
                qb.push(") ORDER BY b.id");
                qb.build_query_scalar::<Uuid>().fetch_all(p).await?
            });
            buyers.extend(found);
        }
        let without = (customer_nums.len() as u64).saturating_sub(buyers.len() as u64);
        let (mut issued, mut refused) = (0, 0);
        for b in buyers {
            match self.claim_coupon(tenant, BuyerId(b), template, offset_hours).await {
                Ok(_) => issued += 1,
                Err(StoreError::Rejected { .. }) => refused += 1,
                Err(e) => return Err(e),
            }
        }
        Ok((issued, refused, without))
    }

    /// Claims the template behind a promo code (优惠码).
    pub async fn claim_coupon_by_code(
        &self,
        tenant: TenantId,
        buyer: BuyerId,
        code: &str,
        offset_hours: i8,
    ) -> Result<UserCoupon> {
        let id: Option<Uuid> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT id FROM coupon_templates WHERE tenant_id = $1 AND code = $2"
        )
        .bind(tenant.0)
        .bind(code.trim().to_uppercase())
        .fetch_optional(p)
        .await?);
        let id = id.ok_or_else(|| StoreError::Rejected {
            code: "unknown_code",
            field: Some("code".into()),
            message: "no coupon has this code".into(),
        })?;
        self.claim_coupon(tenant, buyer, CouponTemplateId(id), offset_hours).await
    }

    pub async fn user_coupon(&self, tenant: TenantId, id: UserCouponId) -> Result<UserCoupon> {
        let sql = format!("{COUPON_SELECT} WHERE u.tenant_id = $1 AND u.id = $2");
        let r: Option<CouponRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(coupon_from).ok_or(StoreError::NotFound)
    }

    /// A buyer's coupons, newest first.
    pub async fn buyer_coupons(&self, tenant: TenantId, buyer: BuyerId) -> Result<Vec<UserCoupon>> {
        let sql = format!("{COUPON_SELECT} WHERE u.tenant_id = $1 AND u.buyer_id = $2 ORDER BY u.id DESC");
        let rows: Vec<CouponRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(buyer.0).fetch_all(p).await?);
        Ok(rows.into_iter().map(coupon_from).collect())
    }

    /// How many instances of a template are in each status.
    pub async fn coupon_usage(&self, tenant: TenantId, template: CouponTemplateId) -> Result<Vec<(String, i64)>> {
        Ok(on_read!(self, |p| {
            sqlx::query_as(
            "SELECT status, COUNT(*) FROM user_coupons WHERE tenant_id = $1 AND template_id = $2 GROUP BY status ORDER BY status"
        )
        .bind(tenant.0)
        .bind(template.0)
        .fetch_all(p)
        .await?
        }))
    }
}

//! The catalogue: categories, shipping templates, products (SPU) and their SKUs with stock.
//!
//! Stock is two numbers per SKU, `on_hand` and `reserved` (commerce-rules §1.1). Orders move
//! `reserved` (see `orders`); this module changes `on_hand` by hand, and refuses to take it
//! below what open orders hold. A SKU is never deleted, because orders point at it; a SKU left
//! out of an edit is deactivated instead.

use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::catalogue::{CategoryInput, ProductInput, ProductStatus, ShippingTemplateInput, StockChange};
use siyu_core::paging::{Page, PageRequest};
use siyu_core::{CategoryId, ProductId, ShippingTemplateId, SkuId, StoreId, TenantId, Timestamp};

use crate::audit::snapshot;
use crate::{audit, in_tx, like_escape, on_read, Result, Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct Category {
    pub id: CategoryId,
    pub parent_id: Option<CategoryId>,
    pub name: String,
    pub sort: i64,
    pub products: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShippingTemplate {
    pub id: ShippingTemplateId,
    pub name: String,
    pub fee_fen: i64,
    pub free_from_fen: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Sku {
    pub id: SkuId,
    pub product_id: ProductId,
    pub spec: Vec<String>,
    pub code: Option<String>,
    pub price_fen: i64,
    pub on_hand: i64,
    pub reserved: i64,
    /// on_hand − reserved: what a new order can still take.
    pub available: i64,
    pub sold: i64,
    pub active: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Product {
    pub id: ProductId,
    pub category_id: Option<CategoryId>,
    pub category_name: Option<String>,
    pub shipping_template_id: Option<ShippingTemplateId>,
    /// The store (门店) that sells it, with its name; `None` for the brand's own mall.
    pub store_id: Option<StoreId>,
    pub store_name: Option<String>,
    pub title: String,
    pub subtitle: Option<String>,
    pub images: Vec<String>,
    pub detail: Option<String>,
    pub status: ProductStatus,
    pub spec_names: Vec<String>,
    /// Active SKUs first, in their entered order.
    pub skus: Vec<Sku>,
    pub price_min_fen: i64,
    pub price_max_fen: i64,
    pub available: i64,
    pub sold: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, Default)]
pub struct ProductFilter {
    pub status: Option<ProductStatus>,
    pub category: Option<CategoryId>,
    /// Part of the title, or a SKU code.
    pub q: Option<String>,
    /// Only products with no available stock left.
    pub sold_out: bool,
}

type ProductRow = (
    Uuid,
    Option<Uuid>,
    Option<String>,
    Option<Uuid>,
    String,
    Option<String>,
    Json<Vec<String>>,
    Option<String>,
    String,
    Json<Vec<String>>,
    i64,
    i64,
    Option<Uuid>,
    Option<String>,
);
const PRODUCT_SELECT: &str = "SELECT p.id, p.category_id, c.name, p.shipping_template_id, p.title, p.subtitle, \
     p.images, p.detail, p.status, p.spec_names, p.created_at, p.updated_at, p.store_id, st.name FROM products p \
     LEFT JOIN product_categories c ON c.tenant_id = p.tenant_id AND c.id = p.category_id \
     LEFT JOIN stores st ON st.tenant_id = p.tenant_id AND st.id = p.store_id";

type SkuRow = (Uuid, Uuid, Json<Vec<String>>, Option<String>, i64, i64, i64, i64, bool);
const SKU_COLS: &str = "SELECT id, product_id, spec, code, price_fen, on_hand, reserved, sold, active FROM skus";

fn sku_from(r: SkuRow) -> Sku {
    Sku {
        id: SkuId(r.0),
        product_id: ProductId(r.1),
        spec: r.2 .0,
        code: r.3,
        price_fen: r.4,
        on_hand: r.5,
        reserved: r.6,
        available: r.5 - r.6,
        sold: r.7,
        active: r.8,
    }
}

fn product_from(r: ProductRow, mut skus: Vec<Sku>) -> Product {
    skus.sort_by_key(|s| !s.active);
    let live: Vec<&Sku> = skus.iter().filter(|s| s.active).collect();
    Product {
        id: ProductId(r.0),
        category_id: r.1.map(CategoryId),
        category_name: r.2,
        shipping_template_id: r.3.map(ShippingTemplateId),
        store_id: r.12.map(StoreId),
        store_name: r.13,
        title: r.4,
        subtitle: r.5,
        images: r.6 .0,
        detail: r.7,
        status: ProductStatus::parse(&r.8).unwrap_or(ProductStatus::Draft),
        spec_names: r.9 .0,
        price_min_fen: live.iter().map(|s| s.price_fen).min().unwrap_or(0),
        price_max_fen: live.iter().map(|s| s.price_fen).max().unwrap_or(0),
        available: live.iter().map(|s| s.available).sum(),
        sold: skus.iter().map(|s| s.sold).sum(),
        skus,
        created_at: Timestamp(r.10),
        updated_at: Timestamp(r.11),
    }
}

/// The message for a stock change that would leave less than open orders hold.
fn below_reserved(reserved: i64) -> StoreError {
    StoreError::Rejected {
        code: "stock_below_reserved",
        field: Some("on_hand".into()),
        message: format!("stock cannot go below the {reserved} units that unpaid orders hold"),
    }
}

/// Adds a new SKU with its opening stock to a product, inside the caller's transaction.
macro_rules! insert_sku {
    ($tx:expr, $tenant:expr, $product:expr, $s:expr, $pos:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO skus (tenant_id, id, product_id, spec, code, price_fen, on_hand, position, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind($tenant.0)
        .bind(Uuid::now_v7())
        .bind($product.0)
        .bind(Json(&$s.spec))
        .bind(&$s.code)
        .bind($s.price_fen)
        .bind($s.on_hand)
        .bind($pos as i64)
        .bind($now.0)
        .execute(&mut *$tx)
        .await
        .map(|_| ())
        .map_err(|e| StoreError::constraint(e, "skus.code"))?
    };
}

impl Store {
    pub async fn create_category(&self, actor: &Actor, c: &CategoryInput) -> Result<Category> {
        let id = CategoryId::new();
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO product_categories (tenant_id, id, parent_id, name, sort, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(c.parent_id)
            .bind(&c.name)
            .bind(c.sort)
            .bind(self.now().0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "name"))?;
            audit!(tx, self, actor, "category.create", "category", id, None, snapshot(c));
        });
        Ok(Category { id, parent_id: c.parent_id.map(CategoryId), name: c.name.clone(), sort: c.sort, products: 0 })
    }

    pub async fn update_category(&self, actor: &Actor, id: CategoryId, c: &CategoryInput) -> Result<()> {
        if c.parent_id == Some(id.0) {
            return Err(StoreError::Rejected {
                code: "invalid_parent",
                field: Some("parent_id".into()),
                message: "a category cannot be its own parent".into(),
            });
        }
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE product_categories SET name = $3, parent_id = $4, sort = $5 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(&c.name)
            .bind(c.parent_id)
            .bind(c.sort)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "name"))?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            audit!(tx, self, actor, "category.update", "category", id, None, snapshot(c));
        });
        Ok(())
    }

    /// Deletes an empty category; one still holding products or sub-categories is refused.
    pub async fn delete_category(&self, actor: &Actor, id: CategoryId) -> Result<()> {
        in_tx!(self, |tx| {
            let (used,): (i64,) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM products WHERE tenant_id = $1 AND category_id = $2) \
                 + (SELECT COUNT(*) FROM product_categories WHERE tenant_id = $1 AND parent_id = $2)",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .fetch_one(&mut *tx)
            .await?;
            if used > 0 {
                return Err(StoreError::Rejected {
                    code: "category_in_use",
                    field: None,
                    message: "move its products and sub-categories elsewhere before deleting this category".into(),
                });
            }
            let n = sqlx::query("DELETE FROM product_categories WHERE tenant_id = $1 AND id = $2")
                .bind(actor.tenant_id.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            audit!(tx, self, actor, "category.delete", "category", id, None, None);
        });
        Ok(())
    }

    /// Categories in display order, with how many products each holds.
    pub async fn categories(&self, tenant: TenantId) -> Result<Vec<Category>> {
        let rows: Vec<(Uuid, Option<Uuid>, String, i64, i64)> = on_read!(self, |p| sqlx::query_as(
            "SELECT c.id, c.parent_id, c.name, c.sort, \
             (SELECT COUNT(*) FROM products p WHERE p.tenant_id = c.tenant_id AND p.category_id = c.id) \
             FROM product_categories c WHERE c.tenant_id = $1 ORDER BY c.sort, c.name"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| Category {
                id: CategoryId(r.0),
                parent_id: r.1.map(CategoryId),
                name: r.2,
                sort: r.3,
                products: r.4,
            })
            .collect())
    }

    pub async fn create_shipping_template(&self, actor: &Actor, t: &ShippingTemplateInput) -> Result<ShippingTemplate> {
        let id = ShippingTemplateId::new();
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO shipping_templates (tenant_id, id, name, fee_fen, free_from_fen, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(&t.name)
            .bind(t.fee_fen)
            .bind(t.free_from_fen)
            .bind(self.now().0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "name"))?;
            audit!(tx, self, actor, "shipping_template.create", "shipping_template", id, None, snapshot(t));
        });
        Ok(ShippingTemplate { id, name: t.name.clone(), fee_fen: t.fee_fen, free_from_fen: t.free_from_fen })
    }

    pub async fn update_shipping_template(
        &self,
        actor: &Actor,
        id: ShippingTemplateId,
        t: &ShippingTemplateInput,
    ) -> Result<()> {
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE shipping_templates SET name = $3, fee_fen = $4, free_from_fen = $5, updated_at = $6 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(&t.name)
            .bind(t.fee_fen)
            .bind(t.free_from_fen)
            .bind(self.now().0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "name"))?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            audit!(tx, self, actor, "shipping_template.update", "shipping_template", id, None, snapshot(t));
        });
        Ok(())
    }

    pub async fn shipping_templates(&self, tenant: TenantId) -> Result<Vec<ShippingTemplate>> {
        let rows: Vec<(Uuid, String, i64, Option<i64>)> = on_read!(self, |p| sqlx::query_as(
            "SELECT id, name, fee_fen, free_from_fen FROM shipping_templates WHERE tenant_id = $1 ORDER BY name"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| ShippingTemplate { id: ShippingTemplateId(r.0), name: r.1, fee_fen: r.2, free_from_fen: r.3 })
            .collect())
    }

    pub async fn create_product(&self, actor: &Actor, p: &ProductInput) -> Result<Product> {
        let tenant = actor.tenant_id;
        let id = ProductId::new();
        let now = self.now();
        self.check_product_references(tenant, p).await?;
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO products (tenant_id, id, category_id, shipping_template_id, title, subtitle, images, detail, \
                 status, spec_names, created_at, updated_at, store_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(p.category_id)
            .bind(p.shipping_template_id)
            .bind(&p.title)
            .bind(&p.subtitle)
            .bind(Json(&p.images))
            .bind(&p.detail)
            .bind(p.status.as_str())
            .bind(Json(&p.spec_names))
            .bind(now.0)
            .bind(p.store_id)
            .execute(&mut *tx)
            .await?;
            for (pos, s) in p.skus.iter().enumerate() {
                insert_sku!(tx, tenant, id, s, pos, now);
            }
            audit!(tx, self, actor, "product.create", "product", id, None, snapshot(p));
        });
        self.product(tenant, id).await
    }

    /// Replaces a product's fields and SKU list. SKUs named by id keep their stock and change
    /// price, spec and code; new ones are added with their stock; the rest are deactivated.
    pub async fn update_product(&self, actor: &Actor, id: ProductId, p: &ProductInput) -> Result<Product> {
        let tenant = actor.tenant_id;
        let before = self.product(tenant, id).await?;
        let now = self.now();
        self.check_product_references(tenant, p).await?;
        in_tx!(self, |tx| {
            sqlx::query(
                "UPDATE products SET category_id = $3, shipping_template_id = $4, title = $5, subtitle = $6, images = $7, \
                 detail = $8, status = $9, spec_names = $10, updated_at = $11, store_id = $12 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(p.category_id)
            .bind(p.shipping_template_id)
            .bind(&p.title)
            .bind(&p.subtitle)
            .bind(Json(&p.images))
            .bind(&p.detail)
            .bind(p.status.as_str())
            .bind(Json(&p.spec_names))
            .bind(now.0)
            .bind(p.store_id)
            .execute(&mut *tx)
            .await?;
            let kept: Vec<Uuid> = p.skus.iter().filter_map(|s| s.id).collect();
            if kept.iter().any(|k| !before.skus.iter().any(|s| s.id.0 == *k)) {
                return Err(StoreError::BadReference("skus.id"));
            }
            // Codes are unique per tenant; clearing the outgoing ones first lets two SKUs swap.
            sqlx::query("UPDATE skus SET code = NULL WHERE tenant_id = $1 AND product_id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            for s in &before.skus {
                if !kept.contains(&s.id.0) {
                    sqlx::query("UPDATE skus SET active = FALSE, updated_at = $3 WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.0)
                        .bind(s.id.0)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for (pos, s) in p.skus.iter().enumerate() {
                match s.id {
                    Some(sid) => {
                        sqlx::query(
                            "UPDATE skus SET spec = $3, code = $4, price_fen = $5, position = $6, active = TRUE, \
                             updated_at = $7 WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(tenant.0)
                        .bind(sid)
                        .bind(Json(&s.spec))
                        .bind(&s.code)
                        .bind(s.price_fen)
                        .bind(pos as i64)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| StoreError::constraint(e, "skus.code"))?;
                    }
                    None => insert_sku!(tx, tenant, id, s, pos, now),
                }
            }
            audit!(tx, self, actor, "product.update", "product", id, snapshot(&before), snapshot(p));
        });
        self.product(tenant, id).await
    }

    pub async fn set_product_status(&self, actor: &Actor, id: ProductId, status: ProductStatus) -> Result<Product> {
        in_tx!(self, |tx| {
            let n = sqlx::query("UPDATE products SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(actor.tenant_id.0)
                .bind(id.0)
                .bind(status.as_str())
                .bind(self.now().0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            audit!(
                tx,
                self,
                actor,
                "product.status",
                "product",
                id,
                None,
                Some(serde_json::json!({"status": status.as_str()}))
            );
        });
        self.product(actor.tenant_id, id).await
    }

    /// Names the field whose category, template or store is not this tenant's (rows are never
    /// deleted while referenced, so checking before the write is enough).
    async fn check_product_references(&self, tenant: TenantId, p: &ProductInput) -> Result<()> {
        for (field, table, id) in [
            ("category_id", "product_categories", p.category_id),
            ("shipping_template_id", "shipping_templates", p.shipping_template_id),
            ("store_id", "stores", p.store_id),
        ] {
            let Some(id) = id else { continue };
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1 AND id = $2");
            let (n,): (i64,) = on_read!(self, |c| sqlx::query_as(&sql).bind(tenant.0).bind(id).fetch_one(c).await?);
            if n == 0 {
                return Err(StoreError::BadReference(field));
            }
        }
        Ok(())
    }

    pub async fn product(&self, tenant: TenantId, id: ProductId) -> Result<Product> {
        let sql = format!("{PRODUCT_SELECT} WHERE p.tenant_id = $1 AND p.id = $2");
        let row: Option<ProductRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        let row = row.ok_or(StoreError::NotFound)?;
        Ok(self.with_skus(tenant, vec![row]).await?.remove(0))
    }

    /// Products, newest first.
    pub async fn products(&self, tenant: TenantId, f: &ProductFilter, page: &PageRequest) -> Result<Page<Product>> {
        let q = f.q.as_deref().map(|q| format!("%{}%", like_escape(q)));
        let sql = format!(
            "{PRODUCT_SELECT} WHERE p.tenant_id = $1 AND ($2 IS NULL OR p.id < $2) AND ($3 IS NULL OR p.status = $3) \
             AND ($4 IS NULL OR p.category_id = $4) \
             AND ($5 IS NULL OR p.title LIKE $5 ESCAPE '\\' OR EXISTS (SELECT 1 FROM skus k WHERE k.tenant_id = p.tenant_id \
                  AND k.product_id = p.id AND k.code LIKE $5 ESCAPE '\\')) \
             AND ($6 = FALSE OR NOT EXISTS (SELECT 1 FROM skus k WHERE k.tenant_id = p.tenant_id AND k.product_id = p.id \
                  AND k.active = TRUE AND k.on_hand > k.reserved)) \
             ORDER BY p.id DESC LIMIT $7"
        );
        let rows: Vec<ProductRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(page.before)
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.category.map(|c| c.0))
            .bind(&q)
            .bind(f.sold_out)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        let items = self.with_skus(tenant, rows).await?;
        Ok(Page::from_rows(items, page, |p| p.id.0))
    }

    async fn with_skus(&self, tenant: TenantId, rows: Vec<ProductRow>) -> Result<Vec<Product>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let skus: Vec<SkuRow> = on_read!(self, |p| {
            let mut qb = sqlx::QueryBuilder::new(SKU_COLS);
            qb.push(" WHERE tenant_id = ").push_bind(tenant.0).push(" AND product_id IN (");
            let mut sep = qb.separated(", ");
            for r in &rows {
                sep.push_bind(r.0);
            }
            qb.push(") ORDER BY position");
            qb.build_query_as::<SkuRow>().fetch_all(p).await?
        });
        let mut by_product: std::collections::HashMap<Uuid, Vec<Sku>> = Default::default();
        for s in skus.into_iter().map(sku_from) {
            by_product.entry(s.product_id.0).or_default().push(s);
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let skus = by_product.remove(&r.0).unwrap_or_default();
                product_from(r, skus)
            })
            .collect())
    }

    pub async fn sku(&self, tenant: TenantId, id: SkuId) -> Result<Sku> {
        let sql = format!("{SKU_COLS} WHERE tenant_id = $1 AND id = $2");
        let row: Option<SkuRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        row.map(sku_from).ok_or(StoreError::NotFound)
    }

    /// Changes a SKU's on_hand by hand (a count, a delivery, breakage). Never below reserved:
    /// units held by unpaid orders cannot be counted away.
    pub async fn adjust_stock(
        &self,
        actor: &Actor,
        id: SkuId,
        change: &StockChange,
        note: Option<&str>,
    ) -> Result<Sku> {
        let tenant = actor.tenant_id;
        let before = self.sku(tenant, id).await?;
        in_tx!(self, |tx| {
            let (sql, v) = match change {
                StockChange::Delta(d) => (
                    "UPDATE skus SET on_hand = on_hand + $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                     AND on_hand + $3 >= reserved AND on_hand + $3 <= 1000000000",
                    *d,
                ),
                StockChange::Set(s) => (
                    "UPDATE skus SET on_hand = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND $3 >= reserved",
                    *s,
                ),
            };
            let n = sqlx::query(sql)
                .bind(tenant.0)
                .bind(id.0)
                .bind(v)
                .bind(self.now().0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                let (reserved,): (i64,) = sqlx::query_as("SELECT reserved FROM skus WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id.0)
                    .fetch_one(&mut *tx)
                    .await?;
                return Err(below_reserved(reserved));
            }
            audit!(
                tx,
                self,
                actor,
                "sku.stock",
                "sku",
                id,
                Some(serde_json::json!({"on_hand": before.on_hand})),
                Some(serde_json::json!({"change": change, "note": note}))
            );
        });
        self.sku(tenant, id).await
    }
}

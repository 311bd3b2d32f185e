//! Console pages for the catalogue: products with their SKUs (prices typed in yuan, kept in
//! fen), stock adjustments, categories and shipping templates.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::commerce::catalogue::{
    CategoryInput, ProductDraft, ProductStatus, ShippingTemplateInput, SkuInput, StockChange,
};
use siyu_core::{CategoryId, Fen, ProductId, SkuId};
use siyu_store::commerce::catalogue::{Product, ProductFilter};

use super::yuan;
use super::{page_req, pager, qget, Ctx, FormData};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/products", get(products_page))
        .route("/console/products/new", get(product_new).post(product_create))
        .route("/console/products/{id}", get(product_edit).post(product_update))
        .route("/console/products/{id}/status", post(product_status))
        .route("/console/skus/{id}/stock", post(stock_submit))
        .route("/console/catalogue", get(catalogue_page))
        .route("/console/catalogue/categories", post(category_create))
        .route("/console/catalogue/categories/{id}/delete", post(category_delete))
        .route("/console/catalogue/templates", post(template_create))
}

type Q = Query<HashMap<String, String>>;

fn status_view(ctx: &Ctx, s: ProductStatus) -> Value {
    let tone = match s {
        ProductStatus::Listed => "success",
        ProductStatus::Draft => "neutral",
        ProductStatus::Delisted => "warning",
    };
    json!({"value": s.as_str(), "label": ctx.t(&format!("product.status.{}", s.as_str())), "tone": tone})
}

fn status_options(ctx: &Ctx) -> Vec<Value> {
    [ProductStatus::Draft, ProductStatus::Listed, ProductStatus::Delisted]
        .into_iter()
        .map(|s| json!({"value": s.as_str(), "label": ctx.t(&format!("product.status.{}", s.as_str()))}))
        .collect()
}

async fn products_page(State(s): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    let f = ProductFilter {
        status: qget(&q, "status").and_then(ProductStatus::parse),
        category: qget(&q, "category").and_then(|c| c.parse().ok()).map(CategoryId),
        q: qget(&q, "q").map(str::to_string),
        sold_out: qget(&q, "sold_out").is_some(),
    };
    let page = page_req(&q);
    let (list, cats) =
        match tokio::try_join!(s.store.products(ctx.tenant.id, &f, &page), s.store.categories(ctx.tenant.id)) {
            Ok(x) => x,
            Err(e) => return ctx.fail(e),
        };
    let rows: Vec<Value> = list
        .items
        .iter()
        .map(|p| {
            let price = if p.price_min_fen == p.price_max_fen {
                yuan(p.price_min_fen)
            } else {
                format!("{} – {}", yuan(p.price_min_fen), yuan(p.price_max_fen))
            };
            json!({"id": p.id, "title": p.title, "category": p.category_name, "price": price,
                "image": p.images.first(), "available": p.available, "sold": p.sold,
                "skus": p.skus.iter().filter(|k| k.active).count(), "status": status_view(&ctx, p.status),
                "listed": p.status == ProductStatus::Listed, "updated": ctx.when(p.updated_at)})
        })
        .collect();
    let filters = [
        ("q", qget(&q, "q")),
        ("status", qget(&q, "status")),
        ("category", qget(&q, "category")),
        ("sold_out", qget(&q, "sold_out")),
    ];
    let mut m = ctx.base("products", "products.title");
    m.insert("rows".into(), json!(rows));
    m.insert("filter".into(), json!(q));
    m.insert("statuses".into(), json!(status_options(&ctx)));
    m.insert(
        "categories".into(),
        json!(cats.iter().map(|c| json!({"value": c.id, "label": c.name})).collect::<Vec<_>>()),
    );
    m.insert("can_write".into(), json!(ctx.can(Scope::CommerceWrite)));
    m.insert("saved".into(), json!(super::flag(&q, "saved")));
    m.insert("pager".into(), pager(&ctx, rows.len(), list.next_cursor, &filters, page.before.is_none()));
    ctx.render("products.html", m)
}

/// The form's values for an existing product, and its SKU rows.
fn product_values(p: &Product) -> (Value, Vec<Value>) {
    let v = json!({"product_title": p.title, "subtitle": p.subtitle, "category_id": p.category_id, "shipping_template_id": p.shipping_template_id, "store_id": p.store_id,
        "status": p.status.as_str(), "images": p.images.join("\n"), "detail": p.detail, "spec_names": p.spec_names.join(", ")});
    let rows = p
        .skus
        .iter()
        .filter(|k| k.active)
        .map(|k| {
            json!({"id": k.id, "spec": k.spec.join(" / "), "code": k.code, "price": Fen(k.price_fen).yuan(),
                "on_hand": k.on_hand, "reserved": k.reserved, "available": k.available, "sold": k.sold, "existing": true})
        })
        .collect();
    (v, rows)
}

/// SKU rows as posted (parallel repeated fields), kept for re-showing the form.
fn posted_rows(f: &FormData) -> Vec<Value> {
    let (ids, specs, codes, prices, stocks) =
        (f.all("sku_id"), f.all("sku_spec"), f.all("sku_code"), f.all("sku_price"), f.all("sku_stock"));
    (0..specs.len().max(prices.len()))
        .map(|i| {
            let g = |v: &Vec<&str>| v.get(i).copied().unwrap_or("").to_string();
            json!({"id": g(&ids), "spec": g(&specs), "code": g(&codes), "price": g(&prices), "stock": g(&stocks),
                "existing": !g(&ids).is_empty()})
        })
        .filter(|r| {
            r["existing"].as_bool().unwrap_or(false)
                || [&r["spec"], &r["code"], &r["price"], &r["stock"]]
                    .iter()
                    .any(|x| !x.as_str().unwrap_or("").trim().is_empty())
        })
        .collect()
}

fn split_list(s: &str, seps: &[char]) -> Vec<String> {
    s.split(seps).map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

fn draft(f: &FormData) -> ProductDraft {
    let spec_names = split_list(f.get("spec_names"), &[',', '，', '、']);
    let skus = posted_rows(f)
        .iter()
        .map(|r| SkuInput {
            id: r["id"].as_str().and_then(|x| x.parse().ok()),
            spec: if spec_names.is_empty() { Vec::new() } else { split_list(r["spec"].as_str().unwrap_or(""), &['/']) },
            code: r["code"].as_str().map(str::to_string),
            price_fen: Fen::parse_yuan(r["price"].as_str().unwrap_or("")).map(|x| x.0).unwrap_or(0),
            on_hand: r["stock"].as_str().unwrap_or("").trim().parse().unwrap_or(if r["stock"] == "" { 0 } else { -1 }),
        })
        .collect();
    ProductDraft {
        title: f.get("product_title").into(),
        subtitle: f.opt("subtitle").map(str::to_string),
        category_id: f.opt("category_id").and_then(|c| c.parse().ok()),
        shipping_template_id: f.opt("shipping_template_id").and_then(|c| c.parse().ok()),
        store_id: f.opt("store_id").and_then(|c| c.parse().ok()),
        images: f.get("images").lines().map(str::to_string).collect(),
        detail: f.opt("detail").map(str::to_string),
        status: f.opt("status").map(str::to_string),
        spec_names,
        skus,
    }
}

#[allow(clippy::too_many_arguments)]
async fn product_form(
    s: &AppState,
    ctx: &Ctx,
    id: Option<Uuid>,
    values: Value,
    mut rows: Vec<Value>,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let (cats, tpls) =
        match tokio::try_join!(s.store.categories(ctx.tenant.id), s.store.shipping_templates(ctx.tenant.id)) {
            Ok(x) => x,
            Err(e) => return ctx.fail(e),
        };
    let fresh = rows.iter().filter(|r| !r["existing"].as_bool().unwrap_or(false)).count();
    for _ in fresh..3 {
        rows.push(json!({"existing": false}));
    }
    let title = if id.is_some() { "products.edit" } else { "products.new" };
    let mut m = ctx.base("products", title);
    m.insert("id".into(), json!(id));
    m.insert(
        "action".into(),
        json!(id.map(|i| format!("/console/products/{i}")).unwrap_or("/console/products/new".into())),
    );
    m.insert("values".into(), values);
    m.insert("rows".into(), json!(rows));
    m.insert("errors".into(), json!(errors));
    m.insert("error".into(), json!(msg));
    m.insert("statuses".into(), json!(status_options(ctx)));
    m.insert(
        "categories".into(),
        json!(cats.iter().map(|c| json!({"value": c.id, "label": c.name})).collect::<Vec<_>>()),
    );
    m.insert(
        "templates".into(),
        json!(tpls
            .iter()
            .map(|t| {
                let free = t.free_from_fen.map(|f| format!("，满{}包邮", yuan(f))).unwrap_or_default();
                json!({"value": t.id, "label": format!("{}（{}{}）", t.name, yuan(t.fee_fen), free)})
            })
            .collect::<Vec<_>>()),
    );
    m.insert("stores".into(), json!(super::org::store_options(s, ctx).await.unwrap_or_default()));
    m.insert("can_write".into(), json!(ctx.can(Scope::CommerceWrite)));
    ctx.render_with(status, "product_form.html", m)
}

async fn product_new(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceWrite) {
        return r;
    }
    product_form(&s, &ctx, None, json!({"status": "draft"}), Vec::new(), Map::new(), None, StatusCode::OK).await
}

async fn product_edit(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, Query(q): Q) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    match s.store.product(ctx.tenant.id, ProductId(id)).await {
        Ok(p) => {
            let (v, rows) = product_values(&p);
            let msg = super::flag(&q, "stocked").then(|| ctx.t("products.stock.saved"));
            product_form(&s, &ctx, Some(id), v, rows, Map::new(), msg, StatusCode::OK).await
        }
        Err(e) => ctx.fail(e),
    }
}

async fn save_product(s: &AppState, ctx: &Ctx, id: Option<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let res = match draft(&f).validate() {
        Ok(p) => match id {
            Some(id) => s.store.update_product(&ctx.actor, ProductId(id), &p).await.map_err(ApiError::from),
            None => s.store.create_product(&ctx.actor, &p).await.map_err(ApiError::from),
        },
        Err(v) => Err(ApiError::Validation(v)),
    };
    let res = res.map_err(|e| super::rename_fields(e, &[("title", "product_title")]));
    match res {
        Ok(p) => Redirect::to(&format!("/console/products/{}?saved=1", p.id)).into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => {
                product_form(s, ctx, id, f.values(), posted_rows(&f), errors, msg, StatusCode::UNPROCESSABLE_ENTITY)
                    .await
            }
            Err(r) => *r,
        },
    }
}

async fn product_create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    save_product(&s, &ctx, None, body).await
}

async fn product_update(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    save_product(&s, &ctx, Some(id), body).await
}

async fn product_status(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let Some(status) = ProductStatus::parse(f.get("status")) else { return ctx.fail(ApiError::NotFound) };
    match s.store.set_product_status(&ctx.actor, ProductId(id), status).await {
        Ok(_) => Redirect::to("/console/products?saved=1").into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn stock_submit(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let sku = match s.store.sku(ctx.tenant.id, SkuId(id)).await {
        Ok(k) => k,
        Err(e) => return ctx.fail(e),
    };
    let num = |k: &str| f.opt(k).map(|v| v.trim().parse::<i64>().unwrap_or(i64::MAX));
    let res = match StockChange::validate(num("delta"), num("on_hand")) {
        Ok(c) => s.store.adjust_stock(&ctx.actor, SkuId(id), &c, f.opt("note")).await.map_err(ApiError::from),
        Err(v) => Err(ApiError::Validation(v)),
    };
    match res {
        Ok(_) => Redirect::to(&format!("/console/products/{}?stocked=1", sku.product_id)).into_response(),
        Err(e) => ctx.fail(e),
    }
}

async fn catalogue_page(State(s): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    if let Some(r) = ctx.require(Scope::CommerceRead) {
        return r;
    }
    catalogue_view(&s, &ctx, &q, Map::new(), None, StatusCode::OK).await
}

async fn catalogue_view(
    s: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    errors: Map<String, Value>,
    msg: Option<String>,
    status: StatusCode,
) -> Response {
    let (cats, tpls) =
        match tokio::try_join!(s.store.categories(ctx.tenant.id), s.store.shipping_templates(ctx.tenant.id)) {
            Ok(x) => x,
            Err(e) => return ctx.fail(e),
        };
    let mut m = ctx.base("catalogue", "catalogue.title");
    m.insert("categories".into(), json!(cats));
    m.insert(
        "templates".into(),
        json!(tpls
            .iter()
            .map(|t| json!({"name": t.name, "fee": yuan(t.fee_fen), "free_from": t.free_from_fen.map(yuan)}))
            .collect::<Vec<_>>()),
    );
    m.insert("errors".into(), json!(errors));
    m.insert("error".into(), json!(msg));
    m.insert("values".into(), json!(q));
    m.insert("saved".into(), json!(super::flag(q, "saved")));
    m.insert("can_write".into(), json!(ctx.can(Scope::CommerceWrite)));
    ctx.render_with(status, "catalogue.html", m)
}

async fn category_create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let sort = f.opt("sort").map(|x| x.trim().parse().unwrap_or(-1));
    let res = match CategoryInput::validate(f.get("name"), None, sort) {
        Ok(c) => s.store.create_category(&ctx.actor, &c).await.map(|_| ()).map_err(ApiError::from),
        Err(v) => Err(ApiError::Validation(v)),
    };
    after_catalogue_form(&s, &ctx, &f, res).await
}

async fn template_create(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let fee = Fen::parse_yuan(f.get("fee")).map(|x| x.0).unwrap_or(-1);
    let free = f.opt("free_from").map(|x| Fen::parse_yuan(x).map(|y| y.0).unwrap_or(0));
    let res = match ShippingTemplateInput::validate(f.get("template_name"), fee, free) {
        Ok(t) => s.store.create_shipping_template(&ctx.actor, &t).await.map(|_| ()).map_err(ApiError::from),
        Err(v) => Err(ApiError::Validation(v)),
    };
    let res = res.map_err(|e| {
        super::rename_fields(e, &[("name", "template_name"), ("fee_fen", "fee"), ("free_from_fen", "free_from")])
    });
    after_catalogue_form(&s, &ctx, &f, res).await
}

async fn after_catalogue_form(s: &AppState, ctx: &Ctx, f: &FormData, res: Result<(), ApiError>) -> Response {
    match res {
        Ok(()) => Redirect::to("/console/catalogue?saved=1").into_response(),
        Err(e) => match ctx.form_error(e) {
            Ok((errors, msg)) => {
                let values: HashMap<String, String> = serde_json::from_value(f.values()).unwrap_or_default();
                catalogue_view(s, ctx, &values, errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(r) => *r,
        },
    }
}

async fn category_delete(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CommerceWrite) {
        return r;
    }
    let res = s.store.delete_category(&ctx.actor, CategoryId(id)).await.map_err(ApiError::from);
    after_catalogue_form(&s, &ctx, &f, res).await
}

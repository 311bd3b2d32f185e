//! The H5 mall for customers, `/m/{tenant}/…`: home and categories, product detail, cart,
//! checkout with the price explained, orders, payment and refund requests. Mobile layout,
//! server-rendered, every page usable without script.
//!
//! The cart lives in a cookie (SKU and quantity only: prices are always re-read). Signing in
//! happens inside WeChat (the mini program hands its session over); the demo offers a one-tap
//! demo customer instead. Payment uses the JSAPI parameters inside WeChat, or the sandbox's
//! cashier in the demo. Forms of a signed-in buyer carry a token derived from their session.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use siyu_core::commerce::catalogue::ProductStatus;
use siyu_core::commerce::order::{OrderEvent, OrderStatus};
use siyu_core::commerce::presale::Phase;
use siyu_core::paging::PageRequest;
use siyu_core::{CategoryId, OrderId, ProductId, SkuId, TenantId, Timestamp};
use siyu_store::commerce::catalogue::ProductFilter;
use siyu_store::commerce::orders::{CartItem, OrderFilter};
use siyu_store::commerce::payments::{Buyer, RefundKind};
use siyu_store::commerce::presales::Presale;

use super::{session_secret, MALL_COOKIE};
use crate::api::commerce::dto::{AddressIo, CartItemIo, SubmitIn};
use crate::console::yuan;
use crate::console::{templates, FormData};
use crate::error::ApiError;
use crate::i18n::{self, Lang};
use crate::AppState;

/// The cart cookie: `sku:qty` pairs.
pub const CART_COOKIE: &str = "siyu_cart";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/m/{tenant}", get(home))
        .route("/m/{tenant}/p/{product}", get(product))
        .route("/m/{tenant}/cart", get(cart_page))
        .route("/m/{tenant}/cart/add", post(cart_add))
        .route("/m/{tenant}/cart/set", post(cart_set))
        .route("/m/{tenant}/checkout", get(checkout_page).post(checkout_submit))
        .route("/m/{tenant}/orders", get(orders_page))
        .route("/m/{tenant}/orders/{order}", get(order_page))
        .route("/m/{tenant}/orders/{order}/{action}", post(order_action))
        .route("/m/{tenant}/login", get(login_page).post(login_submit))
        .route("/m/{tenant}/coupons", get(coupons_page))
        .route("/m/{tenant}/flash", get(flash_page))
        .route("/m/{tenant}/flash/{sale}/{sku}", post(flash_grab))
        .route("/m/{tenant}/groups", get(groups_page))
        .route("/m/{tenant}/groups/{activity}", post(group_join))
        .route("/m/{tenant}/group/{group}", get(group_page))
        .route("/m/{tenant}/bargains", get(bargains_page))
        .route("/m/{tenant}/bargains/{bargain}/start", post(bargain_start))
        .route("/m/{tenant}/bargain/{record}", get(bargain_page))
        .route("/m/{tenant}/bargain/{record}/{action}", post(bargain_action))
        .route("/m/{tenant}/coupons/code", post(coupon_code))
        .route("/m/{tenant}/coupons/{template}/claim", post(coupon_claim))
}

/// What every mall page knows: the tenant, the buyer if signed in, the language.
struct Page {
    slug: String,
    tenant: TenantId,
    name: String,
    buyer: Option<Buyer>,
    token: Option<String>,
    lang: Lang,
    cart_count: u32,
}

/// Every mall page starts from its tenant (the `{tenant}` of its path) and who is asking.
impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Page, Response> {
        let lang = crate::console::lang_from(&parts.headers).unwrap_or(Lang::Zh);
        let params = RawPathParams::from_request_parts(parts, s).await.map_err(|_| not_found(lang))?;
        let slug =
            params.iter().find(|(k, _)| *k == "tenant").map(|(_, v)| v.to_string()).ok_or_else(|| not_found(lang))?;
        Page::load(s, &slug, &parts.headers).await
    }
}

impl Page {
    async fn load(s: &AppState, slug: &str, h: &HeaderMap) -> Result<Page, Response> {
        let lang = crate::console::lang_from(h).unwrap_or(Lang::Zh);
        let t = match s.store.tenant_by_slug(slug).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(not_found(lang)),
            Err(e) => return Err(fail(lang, e.into())),
        };
        let secret = session_secret(h);
        let buyer = match &secret {
            Some(sec) => s.store.mall_session(t.id, sec).await.ok().flatten(),
            None => None,
        };
        let token = buyer.as_ref().and(secret).map(|sec| form_token(&sec));
        let cart_count = read_cart(h).iter().map(|i| i.qty).sum();
        Ok(Page { slug: slug.into(), tenant: t.id, name: t.name, buyer, token, lang, cart_count })
    }
    fn t(&self, k: &str) -> String {
        i18n::t(self.lang, k)
    }
    fn ctx(&self, title: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("lang".into(), json!(self.lang.code()));
        m.insert("title".into(), json!(title));
        m.insert("shop".into(), json!(self.name));
        m.insert("base".into(), json!(format!("/m/{}", self.slug)));
        m.insert("signed_in".into(), json!(self.buyer.is_some()));
        m.insert("token".into(), json!(self.token));
        m.insert("cart_count".into(), json!(self.cart_count));
        m
    }
    fn render(&self, tpl: &str, m: Map<String, Value>) -> Response {
        match templates().render(tpl, &Value::Object(m)) {
            Ok(h) => Html(h).into_response(),
            Err(e) => fail(self.lang, e),
        }
    }
    fn login_redirect(&self, next: &str) -> Response {
        Redirect::to(&format!("/m/{}/login?next={}", self.slug, crate::console::urlencode(next))).into_response()
    }
    /// The signed-in buyer, after checking the form's token.
    fn buyer_for(&self, f: &FormData) -> Option<&Buyer> {
        let ok = self.token.as_deref().is_some_and(|t| !t.is_empty() && t == f.get("_token"));
        self.buyer.as_ref().filter(|_| ok)
    }
}

/// A per-session token for the buyer's forms: cookies are SameSite=Lax, and this token stops
/// a form posted from another page of the same site.
fn form_token(secret: &str) -> String {
    siyu_store::secrets::sha256_hex(&format!("mall-form:{secret}"))[..32].to_string()
}

fn not_found(lang: Lang) -> Response {
    crate::console::error_page(lang, StatusCode::NOT_FOUND, "error.not_found", "mall.not_found", None)
}

pub(crate) fn fail(lang: Lang, e: ApiError) -> Response {
    match e {
        ApiError::NotFound => not_found(lang),
        ApiError::Conflict { code, message, .. } => {
            let key = format!("v.{code}");
            let text = if i18n::has(&key) { i18n::t(lang, &key) } else { message };
            crate::console::error_page(lang, StatusCode::CONFLICT, "mall.cannot", &text, None)
        }
        other => {
            tracing::error!(error = ?other, "mall page failed");
            crate::console::error_page(
                lang,
                StatusCode::INTERNAL_SERVER_ERROR,
                "error.internal",
                "error.internal",
                None,
            )
        }
    }
}

/// A conflict's message for the buyer, in their language.
fn explain(lang: Lang, e: &ApiError) -> Option<String> {
    match e {
        ApiError::Conflict { code, message, .. } => {
            let key = format!("v.{code}");
            Some(if i18n::has(&key) { i18n::t(lang, &key) } else { message.clone() })
        }
        ApiError::Validation(v) => v.first().map(|x| {
            let key = format!("v.{}", x.code);
            let label = i18n::t(lang, &format!("field.{}", x.field));
            if i18n::has(&key) {
                i18n::tf(lang, &key, &[("field", &label)])
            } else {
                x.message.clone()
            }
        }),
        ApiError::Upstream(m) => Some(m.clone()),
        _ => None,
    }
}

pub fn read_cart(h: &HeaderMap) -> Vec<CartItem> {
    crate::extract::cookie(h, CART_COOKIE)
        .unwrap_or("")
        .split('|')
        .filter_map(|p| {
            let (s, q) = p.split_once(':')?;
            Some(CartItem { sku_id: SkuId(s.parse().ok()?), qty: q.parse().ok().filter(|q| (1..=99).contains(q))? })
        })
        .take(50)
        .collect()
}

fn cart_cookie(slug: &str, items: &[CartItem]) -> HeaderValue {
    let v: Vec<String> = items.iter().map(|i| format!("{}:{}", i.sku_id, i.qty)).collect();
    HeaderValue::from_str(&format!(
        "{CART_COOKIE}={}; Path=/m/{slug}; Max-Age=2592000; SameSite=Lax; HttpOnly",
        v.join("|")
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

fn with_cookie(mut r: Response, v: HeaderValue) -> Response {
    r.headers_mut().append(header::SET_COOKIE, v);
    r
}

fn product_card(p: &siyu_store::commerce::catalogue::Product, base: &str) -> Value {
    json!({"href": format!("{base}/p/{}", p.id), "title": p.title, "subtitle": p.subtitle, "image": p.images.first(),
        "price": yuan(p.price_min_fen), "from": p.price_min_fen != p.price_max_fen, "sold_out": p.available <= 0})
}

async fn home(
    State(s): State<AppState>,
    pg: Page,
    Path(slug): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let category = q.get("c").and_then(|c| c.parse().ok()).map(CategoryId);
    let f = ProductFilter {
        status: Some(ProductStatus::Listed),
        category,
        q: q.get("q").filter(|x| !x.trim().is_empty()).cloned(),
        sold_out: false,
    };
    let page = PageRequest::parse(Some(40), q.get("cursor").map(String::as_str))
        .unwrap_or(PageRequest { limit: 40, before: None });
    let (list, cats) = match tokio::try_join!(s.store.products(pg.tenant, &f, &page), s.store.categories(pg.tenant)) {
        Ok(x) => x,
        Err(e) => return fail(pg.lang, e.into()),
    };
    let base = format!("/m/{slug}");
    let mut m = pg.ctx(&pg.name);
    m.insert("products".into(), json!(list.items.iter().map(|p| product_card(p, &base)).collect::<Vec<_>>()));
    m.insert(
        "categories".into(),
        json!(cats
            .iter()
            .map(|c| json!({"id": c.id, "name": c.name, "active": Some(c.id) == category}))
            .collect::<Vec<_>>()),
    );
    m.insert("all_active".into(), json!(category.is_none()));
    let flash_on = s.store.flash_sale_open(pg.tenant, s.store.now()).await.unwrap_or(false);
    m.insert("flash_on".into(), json!(flash_on));
    m.insert("q".into(), json!(q.get("q")));
    m.insert("next".into(), json!(list.next_cursor.map(|c| format!("{base}?cursor={c}"))));
    pg.render("mall_home.html", m)
}

async fn product(State(s): State<AppState>, pg: Page, Path((_, id)): Path<(String, Uuid)>) -> Response {
    let p = match super::listed_product(&s, pg.tenant, ProductId(id)).await {
        Ok(p) => p,
        Err(e) => return fail(pg.lang, e),
    };
    let now = s.store.now();
    let sku_ids: Vec<SkuId> = p.skus.iter().map(|k| SkuId(k.id)).collect();
    let running = s.store.running_discounts(pg.tenant, &sku_ids, &[ProductId(id)], now).await.unwrap_or_default();
    let skus: Vec<Value> = p
        .skus
        .iter()
        .map(|k| {
            // A 限时折扣 shows its price beside the struck-through one.
            let deal = running.prices.get(&SkuId(k.id)).filter(|(_, d)| *d < k.price_fen).map(|(_, d)| yuan(*d));
            json!({"id": k.id, "label": if k.spec.is_empty() { pg.t("mall.default_spec") } else { k.spec.join(" / ") },
            "price": yuan(k.price_fen), "deal": deal, "available": k.available, "sold_out": k.available <= 0})
        })
        .collect();
    let first = p.skus.iter().position(|k| k.available > 0).unwrap_or(0);
    let presale = s.store.presale_of_product(pg.tenant, ProductId(id), now).await.ok().flatten();
    let paragraphs: Vec<&str> =
        p.detail.as_deref().unwrap_or("").split("\n\n").filter(|x| !x.trim().is_empty()).collect();
    let mut m = pg.ctx(&p.title);
    m.insert(
        "product".into(),
        json!({"title": p.title, "subtitle": p.subtitle, "images": p.images, "detail": paragraphs, "store": p.store_name,
            "price": yuan(p.price_min_fen), "from": p.price_min_fen != p.price_max_fen, "sold_out": p.available <= 0}),
    );
    m.insert("skus".into(), json!(skus));
    m.insert("first".into(), json!(first));
    m.insert("second_half".into(), json!(!running.second_half.is_empty()));
    m.insert(
        "bundles".into(),
        json!(running.bundles.iter().map(|b| json!({"name": b.id, "price": yuan(b.price)})).collect::<Vec<_>>()),
    );
    if let Some(ps) = presale {
        let at = |t: siyu_core::Timestamp| t.display_local(8);
        let phase = serde_json::to_value(ps.phase(now)).unwrap_or_default();
        m.insert(
            "presale".into(),
            json!({"id": ps.id, "name": ps.name, "phase": phase, "forfeit": ps.deposit_forfeit,
                "deposit_start": at(ps.windows.deposit_start), "deposit_end": at(ps.windows.deposit_end),
                "final_start": at(ps.windows.final_start), "final_end": at(ps.windows.final_end), "ship_from": at(ps.ship_from),
                "skus": ps.skus.iter().map(|k| json!({"id": k.sku_id, "spec": k.spec, "price": yuan(k.terms.price_fen),
                    "deposit": yuan(k.terms.deposit_fen), "value": yuan(k.terms.deposit_value_fen), "balance": yuan(k.balance_fen),
                    "left": (k.quota - k.taken).max(0)})).collect::<Vec<_>>()}),
        );
    }
    pg.render("mall_product.html", m)
}

async fn cart_add(pg: Page, Path(slug): Path<String>, h: HeaderMap, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    let (Ok(sku), Ok(qty)) = (f.get("sku_id").parse::<Uuid>(), f.get("qty").trim().parse::<u32>()) else {
        return fail(pg.lang, ApiError::validation("sku_id", "required", "choose a specification"));
    };
    let mut cart = read_cart(&h);
    let qty = qty.clamp(1, 99);
    if let Some(presale) = f.opt("presale").and_then(|p| p.parse::<Uuid>().ok()) {
        return Redirect::to(&format!("/m/{slug}/checkout?buy={sku}:{qty}&presale={presale}")).into_response();
    }
    if f.checked("buy_now") {
        return Redirect::to(&format!("/m/{slug}/checkout?buy={sku}:{qty}")).into_response();
    }
    match cart.iter_mut().find(|i| i.sku_id.0 == sku) {
        Some(i) => i.qty = (i.qty + qty).min(99),
        None => cart.push(CartItem { sku_id: SkuId(sku), qty }),
    }
    with_cookie(Redirect::to(&format!("/m/{slug}/cart")).into_response(), cart_cookie(&slug, &cart))
}

async fn cart_set(Path(slug): Path<String>, h: HeaderMap, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    let mut cart = read_cart(&h);
    if let (Ok(sku), Ok(qty)) = (f.get("sku_id").parse::<Uuid>(), f.get("qty").trim().parse::<u32>()) {
        cart.retain(|i| i.sku_id.0 != sku || qty > 0);
        if let Some(i) = cart.iter_mut().find(|i| i.sku_id.0 == sku) {
            i.qty = qty.min(99);
        }
    }
    with_cookie(Redirect::to(&format!("/m/{slug}/cart")).into_response(), cart_cookie(&slug, &cart))
}

/// The quote of some items, for showing: lines, steps explained, totals. Items no longer on
/// sale are reported instead of failing the page.
async fn quote_view(
    s: &AppState,
    pg: &Page,
    items: &[CartItem],
    coupon: Option<&siyu_store::commerce::coupons::UserCoupon>,
    presale: Option<&Presale>,
) -> Result<Value, String> {
    let play = presale.map_or(siyu_store::commerce::orders::Play::Plain, siyu_store::commerce::orders::Play::Presale);
    match s.store.price_cart(pg.tenant, items, coupon, play).await {
        Ok(p) => {
            let q = &p.quote;
            // A presale's deposit is due now and the rest in the balance window.
            let deposit: i64 = presale.map_or(0, |ps| {
                p.items
                    .iter()
                    .filter_map(|i| ps.terms_of(i.sku_id).map(|t| t.terms.deposit_fen * i64::from(i.qty)))
                    .sum()
            });
            let lines: Vec<Value> = p
                .items
                .iter()
                .zip(&q.lines)
                .map(|(i, l)| {
                    json!({"sku_id": i.sku_id, "title": i.title, "spec": i.spec, "image": i.image, "qty": i.qty,
                        "unit": yuan(i.unit_list_fen), "paid": yuan(l.paid), "short": i.available < i64::from(i.qty),
                        "available": i.available})
                })
                .collect();
            let steps: Vec<Value> = q
                .steps
                .iter()
                .filter(|x| x.discount > 0)
                .map(|x| {
                    let kind = serde_json::to_value(x.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    json!({"label": pg.t(&format!("step.{kind}")), "amount": yuan(x.discount)})
                })
                .collect();
            Ok(json!({"lines": lines, "steps": steps, "list": yuan(q.list_total), "goods": yuan(q.goods),
                "shipping": yuan(q.shipping_fee - q.shipping_discount), "payable": yuan(q.payable), "payable_fen": q.payable,
                "any_short": p.items.iter().any(|i| i.available < i64::from(i.qty)),
                "gifts": p.gifts.iter().map(|g| json!({"title": g.title, "spec": g.spec, "qty": g.qty})).collect::<Vec<_>>(),
                "presale": presale.map(|ps| json!({"id": ps.id, "deposit": yuan(deposit), "balance": yuan(q.payable - deposit),
                    "final_start": ps.windows.final_start.display_local(8), "final_end": ps.windows.final_end.display_local(8),
                    "forfeit": ps.deposit_forfeit}))}))
        }
        Err(e) => Err(explain(pg.lang, &e.into()).unwrap_or_default()),
    }
}

async fn cart_page(State(s): State<AppState>, pg: Page, h: HeaderMap) -> Response {
    let items = read_cart(&h);
    let mut m = pg.ctx(&pg.t("mall.cart"));
    if !items.is_empty() {
        match quote_view(&s, &pg, &items, None, None).await {
            Ok(q) => {
                m.insert("quote".into(), q);
            }
            Err(msg) => {
                m.insert("error".into(), json!(msg));
            }
        }
    }
    m.insert(
        "items".into(),
        json!(items.iter().map(|i| json!({"sku_id": i.sku_id, "qty": i.qty})).collect::<Vec<_>>()),
    );
    pg.render("mall_cart.html", m)
}

/// The items being checked out: a "buy now" item, or the cart.
fn checkout_items(h: &HeaderMap, buy: Option<&str>) -> Vec<CartItem> {
    if let Some((s, q)) = buy.and_then(|b| b.split_once(':')) {
        if let (Ok(s), Ok(q)) = (s.parse(), q.parse::<u32>()) {
            return vec![CartItem { sku_id: SkuId(s), qty: q.clamp(1, 99) }];
        }
    }
    read_cart(h)
}

#[allow(clippy::too_many_arguments)]
async fn checkout_view(
    s: &AppState,
    pg: &Page,
    items: &[CartItem],
    buy: Option<&str>,
    coupon: Option<Uuid>,
    presale: Option<&Presale>,
    values: Value,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let mut m = pg.ctx(&pg.t("mall.checkout"));
    // The buyer's usable coupons to choose from; a chosen one that is not usable is dropped.
    let now = s.store.now();
    let mine: Vec<_> = match &pg.buyer {
        // Presale orders take no coupon (STK-2).
        Some(b) if presale.is_none() => s
            .store
            .buyer_coupons(pg.tenant, b.id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.usable(now))
            .collect(),
        _ => Vec::new(),
    };
    let chosen = coupon.and_then(|id| mine.iter().find(|c| c.id.0 == id));
    m.insert(
        "coupons".into(),
        json!(mine
            .iter()
            .map(|c| json!({"id": c.id, "name": c.name, "chosen": Some(c.id) == chosen.map(|x| x.id)}))
            .collect::<Vec<_>>()),
    );
    m.insert("coupon_id".into(), json!(chosen.map(|c| c.id)));
    match quote_view(s, pg, items, chosen, presale).await {
        Ok(q) => {
            m.insert("quote".into(), q);
        }
        Err(msg) => {
            m.insert("error".into(), json!(msg));
        }
    }
    if let Some(e) = error {
        m.insert("error".into(), json!(e));
    }
    m.insert("buy".into(), json!(buy));
    m.insert("values".into(), values);
    m.insert("client_key".into(), json!(Uuid::now_v7().simple().to_string()));
    let r = pg.render("mall_checkout.html", m);
    (status, r).into_response()
}

async fn checkout_page(
    State(s): State<AppState>,
    pg: Page,
    Path(slug): Path<String>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let buy = q.get("buy").map(String::as_str);
    if pg.buyer.is_none() {
        let next = match (buy, q.get("presale")) {
            (Some(b), Some(p)) => format!("/m/{slug}/checkout?buy={b}&presale={p}"),
            (Some(b), None) => format!("/m/{slug}/checkout?buy={b}"),
            _ => format!("/m/{slug}/checkout"),
        };
        return pg.login_redirect(&next);
    }
    let items = checkout_items(&h, buy);
    if items.is_empty() {
        return Redirect::to(&format!("/m/{slug}/cart")).into_response();
    }
    let coupon = q.get("coupon").and_then(|c| c.parse().ok());
    let presale = checkout_presale(&s, &pg, q.get("presale").map(String::as_str)).await;
    checkout_view(&s, &pg, &items, buy, coupon, presale.as_ref(), json!({}), None, StatusCode::OK).await
}

/// The presale a checkout is for, when it names one that exists.
async fn checkout_presale(s: &AppState, pg: &Page, id: Option<&str>) -> Option<Presale> {
    let id = id.and_then(|p| p.parse::<Uuid>().ok())?;
    s.store.presale(pg.tenant, siyu_core::PresaleId(id)).await.ok()
}

async fn checkout_submit(
    State(s): State<AppState>,
    pg: Page,
    Path(slug): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    let Some(buyer) = pg.buyer_for(&f).cloned() else { return pg.login_redirect(&format!("/m/{slug}/checkout")) };
    let buy = f.opt("buy").map(str::to_string);
    let items = checkout_items(&h, buy.as_deref());
    let b = SubmitIn {
        items: items.iter().map(|i| CartItemIo { sku_id: i.sku_id.0, qty: i.qty }).collect(),
        address: Some(AddressIo {
            name: f.get("name").into(),
            phone: f.get("phone").into(),
            region: f.get("region").into(),
            detail: f.get("detail").into(),
        }),
        note: f.opt("note").map(str::to_string),
        expected_payable_fen: f.get("expected").parse().ok(),
        coupon_id: f.opt("coupon_id").and_then(|c| c.parse().ok()),
        presale_id: f.opt("presale").and_then(|c| c.parse().ok()),
    };
    match super::submit_order(&s, pg.tenant, &buyer, b, f.opt("client_key").map(str::to_string)).await {
        Ok(o) => {
            let r = Redirect::to(&format!("/m/{slug}/orders/{}", o.id)).into_response();
            // Bought from the cart: the cart is done.
            if buy.is_none() {
                with_cookie(r, cart_cookie(&slug, &[]))
            } else {
                r
            }
        }
        Err(e) => {
            let msg = explain(pg.lang, &e).or_else(|| Some(pg.t("error.internal")));
            let coupon = f.opt("coupon_id").and_then(|c| c.parse().ok());
            let presale = checkout_presale(&s, &pg, f.opt("presale")).await;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            checkout_view(&s, &pg, &items, buy.as_deref(), coupon, presale.as_ref(), f.values(), msg, status).await
        }
    }
}

fn order_view(pg: &Page, o: &siyu_store::commerce::orders::Order, presale: Option<(&Presale, Timestamp)>) -> Value {
    let status_label = pg.t(&format!("order.status.{}", o.status.as_str()));
    let waiting = o.status == OrderStatus::AwaitingBalance;
    let presale = presale.map(|(p, now)| {
        json!({"deposit": yuan(o.deposit_fen), "balance": yuan(o.payable_fen - o.deposit_fen), "forfeit": p.deposit_forfeit,
            "final_start": p.windows.final_start.display_local(8), "final_end": p.windows.final_end.display_local(8),
            "ship_from": p.ship_from.display_local(8), "balance_open": waiting && p.phase(now) == Phase::Balance,
            "deposit_due": o.status == OrderStatus::PendingPayment})
    });
    json!({"presale": presale, "waiting": waiting,"id": o.id, "no": o.no, "status": o.status.as_str(), "status_label": status_label, "payable": yuan(o.payable_fen),
        "goods": yuan(o.goods_fen), "shipping": yuan(o.shipping_fen), "list": yuan(o.list_fen), "refunded": yuan(o.refunded_fen),
        "has_refund": o.refunded_fen > 0, "created": o.created_at.display_local(8), "expires": o.expires_at.display_local(8),
        "pending": o.status == OrderStatus::PendingPayment, "shipped": o.status == OrderStatus::Shipped,
        "refundable": o.status.is_paid() && !waiting && o.status != OrderStatus::AwaitingGroup && o.refunded_fen < o.paid_fen,
        "carrier": o.carrier, "tracking_no": o.tracking_no,
        "group": o.group_id, "in_group": o.status == OrderStatus::AwaitingGroup, "bargain": o.bargain_record_id,
        "address": o.address,
        "lines": o.lines.iter().map(|l| json!({"line_no": l.line_no, "title": l.title, "spec": l.spec, "qty": l.qty,
            "paid": yuan(l.paid_fen), "left": l.qty - l.refunded_qty})).collect::<Vec<_>>()})
}

async fn orders_page(State(s): State<AppState>, pg: Page, Path(slug): Path<String>) -> Response {
    let Some(buyer) = &pg.buyer else { return pg.login_redirect(&format!("/m/{slug}/orders")) };
    let f = OrderFilter { buyer: Some(buyer.id), ..Default::default() };
    let list = match s.store.orders(pg.tenant, &f, &PageRequest { limit: 50, before: None }).await {
        Ok(l) => l,
        Err(e) => return fail(pg.lang, e.into()),
    };
    let mut m = pg.ctx(&pg.t("mall.orders"));
    m.insert("orders".into(), json!(list.items.iter().map(|o| order_view(&pg, o, None)).collect::<Vec<_>>()));
    pg.render("mall_orders.html", m)
}

async fn order_page(
    State(s): State<AppState>,
    pg: Page,
    Path((slug, id)): Path<(String, Uuid)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(buyer) = &pg.buyer else { return pg.login_redirect(&format!("/m/{slug}/orders/{id}")) };
    let o = match super::own_order(&s, pg.tenant, buyer, OrderId(id)).await {
        Ok(o) => o,
        Err(e) => return fail(pg.lang, e),
    };
    order_render(&s, &pg, &o, q.get("msg").map(|k| pg.t(&format!("mall.msg.{k}"))), None, StatusCode::OK).await
}

async fn order_render(
    s: &AppState,
    pg: &Page,
    o: &siyu_store::commerce::orders::Order,
    msg: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let refunds = s
        .store
        .refunds(pg.tenant, None, Some(o.id), &PageRequest { limit: 50, before: None })
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let presale = match o.presale_id {
        Some(id) => s.store.presale(pg.tenant, id).await.ok(),
        None => None,
    };
    let mut m = pg.ctx(&pg.t("mall.order"));
    m.insert("order".into(), order_view(pg, o, presale.as_ref().map(|p| (p, s.store.now()))));
    m.insert(
        "refunds".into(),
        json!(refunds
            .iter()
            .map(|r| json!({"amount": yuan(r.amount_fen), "status": pg.t(&format!("refund.status.{}", r.status)), "reason": r.reason}))
            .collect::<Vec<_>>()),
    );
    m.insert("msg".into(), json!(msg));
    m.insert("error".into(), json!(error));
    (status, pg.render("mall_order.html", m)).into_response()
}

async fn order_action(
    State(s): State<AppState>,
    pg: Page,
    Path((slug, id, action)): Path<(String, Uuid, String)>,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    let Some(buyer) = pg.buyer_for(&f).cloned() else { return pg.login_redirect(&format!("/m/{slug}/orders/{id}")) };
    let oid = OrderId(id);
    let o = match super::own_order(&s, pg.tenant, &buyer, oid).await {
        Ok(o) => o,
        Err(e) => return fail(pg.lang, e),
    };
    let res: Result<&str, ApiError> = match action.as_str() {
        "pay" => match s.pay.prepay(pg.tenant, oid, &buyer.openid).await {
            Ok(p) => {
                if let Some(cashier) = &s.config.pay_cashier {
                    let back = format!("/m/{slug}/orders/{id}?msg=paid");
                    let url = format!(
                        "{cashier}?prepay_id={}&return_url={}",
                        crate::console::urlencode(&p.prepay_id),
                        crate::console::urlencode(&back)
                    );
                    return Redirect::to(&url).into_response();
                }
                // Inside WeChat: hand the signed parameters to WeixinJSBridge.
                let mut m = pg.ctx(&pg.t("mall.pay"));
                m.insert("params".into(), json!(p.params));
                m.insert("back".into(), json!(format!("/m/{slug}/orders/{id}?msg=paid")));
                return pg.render("mall_pay.html", m);
            }
            Err(e) => Err(e),
        },
        "cancel" => crate::api::commerce::orders::cancel(&s, pg.tenant, oid, "cancelled by the buyer", None)
            .await
            .map(|_| "cancelled"),
        "leave" => s.store.leave_group(pg.tenant, oid, None).await.map(|_| "left").map_err(Into::into),
        "receive" => s
            .store
            .advance_order(pg.tenant, oid, OrderEvent::Receive, None, None)
            .await
            .map(|_| "received")
            .map_err(Into::into),
        "refund" => {
            let b = crate::api::commerce::orders::refund_form(&f.all("line_no"), &f.all("qty"), false, f.opt("reason"));
            match crate::api::commerce::orders::refund_input(b, RefundKind::Customer) {
                Ok(n) => s.store.create_refund(pg.tenant, oid, &n, None).await.map(|_| "refund").map_err(Into::into),
                Err(e) => Err(e),
            }
        }
        _ => Err(ApiError::NotFound),
    };
    match res {
        Ok(k) => Redirect::to(&format!("/m/{slug}/orders/{id}?msg={k}")).into_response(),
        Err(ApiError::NotFound) => not_found(pg.lang),
        Err(e) => {
            let o = s.store.order(pg.tenant, oid).await.unwrap_or(o);
            order_render(&s, &pg, &o, None, explain(pg.lang, &e), StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

async fn login_page(
    State(s): State<AppState>,
    pg: Page,
    Path(slug): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut m = pg.ctx(&pg.t("mall.login"));
    m.insert("demo".into(), json!(s.sandbox.is_some()));
    m.insert("next".into(), json!(safe_next(&slug, q.get("next").map(String::as_str))));
    pg.render("mall_login.html", m)
}

fn safe_next(slug: &str, next: Option<&str>) -> String {
    let base = format!("/m/{slug}");
    match next {
        Some(n) if n.starts_with(&base) && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => base,
    }
}

/// Demo only: signs in as a new demo customer. Real customers arrive signed in from the mini
/// program (its `wx.login` code is exchanged by the mall API).
async fn login_submit(State(s): State<AppState>, pg: Page, Path(slug): Path<String>, body: Bytes) -> Response {
    if s.sandbox.is_none() {
        return not_found(pg.lang);
    }
    let f = FormData::parse(&body);
    let openid = format!("o-demo-{}", &Uuid::now_v7().simple().to_string()[20..]);
    let res = async {
        let b = s.store.buyer_for_openid(pg.tenant, &openid, None).await?;
        s.store.create_mall_session(pg.tenant, b.id).await
    }
    .await;
    match res {
        Ok(secret) => {
            let cookie = format!(
                "{MALL_COOKIE}={secret}; Path=/m/{slug}; Max-Age={}; SameSite=Lax; HttpOnly{}",
                siyu_store::commerce::payments::MALL_SESSION_SECS,
                if s.config.secure_cookies { "; Secure" } else { "" }
            );
            let r = Redirect::to(&safe_next(&slug, f.opt("next"))).into_response();
            with_cookie(r, HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("")))
        }
        Err(e) => fail(pg.lang, e.into()),
    }
}

async fn coupons_page(
    State(s): State<AppState>,
    pg: Page,
    Path(slug): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(buyer) = &pg.buyer else { return pg.login_redirect(&format!("/m/{slug}/coupons")) };
    let now = s.store.now();
    let (templates, mine) =
        match tokio::try_join!(s.store.coupon_templates(pg.tenant), s.store.buyer_coupons(pg.tenant, buyer.id)) {
            Ok(x) => x,
            Err(e) => return fail(pg.lang, e.into()),
        };
    let claimable: Vec<Value> = templates
        .iter()
        .filter(|t| t.status == "active" && t.issued < t.total && t.code.is_none())
        .map(|t| json!({"id": t.id, "name": t.name, "offer": coupon_offer(pg.lang, &t.kind)}))
        .collect();
    let held: Vec<Value> = mine
        .iter()
        .map(|c| {
            let state = match (c.usable(now), c.status.as_str()) {
                (true, _) => "usable",
                (false, "unused") => "expired",
                (false, "locked") => "locked",
                _ => "used",
            };
            json!({"name": c.name, "offer": coupon_offer(pg.lang, &c.kind), "until": c.valid_end.display_local(8),
                "state": pg.t(&format!("mall.coupon.{state}")), "usable": c.usable(now)})
        })
        .collect();
    let mut m = pg.ctx(&pg.t("mall.coupons"));
    m.insert("claimable".into(), json!(claimable));
    m.insert("mine".into(), json!(held));
    m.insert("msg".into(), json!(q.get("msg").map(|k| pg.t(&format!("mall.msg.{k}")))));
    m.insert("error".into(), json!(q.get("error").map(|k| pg.t(&format!("v.{k}")))));
    pg.render("mall_coupons.html", m)
}

/// What a coupon takes off, for customers.
fn coupon_offer(lang: Lang, k: &siyu_core::commerce::pricing::CouponKind) -> String {
    use siyu_core::commerce::pricing::CouponKind;
    match k {
        CouponKind::Amount { face, threshold } if *threshold > 0 => {
            i18n::tf(lang, "coupons.desc.amount", &[("t", &yuan(*threshold)), ("f", &yuan(*face))])
        }
        CouponKind::Amount { face, .. } => i18n::tf(lang, "coupons.desc.free", &[("f", &yuan(*face))]),
        CouponKind::Percent { off_bp, .. } => i18n::tf(lang, "coupons.desc.percent", &[("z", &zhe(*off_bp))]),
        CouponKind::Shipping { face, .. } => i18n::tf(lang, "coupons.desc.shipping", &[("f", &yuan(*face))]),
    }
}

/// `off_bp` as 折 people say it (1000 bp off is 9 折, 1500 is 8.5 折), without a float.
pub fn zhe(off_bp: i64) -> String {
    let paid = 10_000 - off_bp;
    if paid % 1000 == 0 {
        format!("{}", paid / 1000)
    } else {
        format!("{}.{}", paid / 1000, (paid % 1000) / 100)
    }
}

/// Where a claim goes back to, with the outcome.
fn claimed(slug: &str, res: Result<siyu_store::commerce::coupons::UserCoupon, siyu_store::StoreError>) -> Response {
    let to = match res {
        Ok(_) => format!("/m/{slug}/coupons?msg=claimed"),
        Err(siyu_store::StoreError::Rejected { code, .. }) => format!("/m/{slug}/coupons?error={code}"),
        Err(siyu_store::StoreError::NotFound) => format!("/m/{slug}/coupons?error=coupon_not_claimable"),
        Err(e) => return fail(Lang::Zh, e.into()),
    };
    Redirect::to(&to).into_response()
}

/// Flash sales running or coming, with a countdown and what each pool still holds.
async fn flash_page(State(s): State<AppState>, pg: Page, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = s.store.now();
    let sales = match s.store.flash_sales(pg.tenant, Some(now)).await {
        Ok(l) => l,
        Err(e) => return fail(pg.lang, e.into()),
    };
    let list: Vec<Value> = sales
        .iter()
        .map(|f| {
            let running = now >= f.starts_at;
            json!({"id": f.id, "name": f.name, "running": running,
                "until": (if running { f.ends_at } else { f.starts_at }).unix_secs(),
                "skus": f.skus.iter().map(|k| json!({"id": k.sku_id, "label": k.label, "price": yuan(k.price_fen),
                    "left": k.remaining, "sold_out": k.remaining <= 0})).collect::<Vec<_>>()})
        })
        .collect();
    let mut m = pg.ctx(&pg.t("mall.flash"));
    m.insert("sales".into(), json!(list));
    m.insert("now".into(), json!(now.unix_secs()));
    m.insert("error".into(), json!(q.get("error").map(|k| pg.t(&format!("v.{k}")))));
    pg.render("mall_flash.html", m)
}

/// Where a buyer's action on a play leads: to `to` when it worked, back to the page it came
/// from with the refusal's code, or to the error page.
fn went(pg: &Page, res: Result<String, siyu_store::StoreError>, back: &str) -> Response {
    match res {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(siyu_store::StoreError::Rejected { code, .. }) => {
            Redirect::to(&format!("{back}?error={code}")).into_response()
        }
        Err(e) => fail(pg.lang, e.into()),
    }
}

/// Grabs one unit of a flash-sale SKU; the order page follows, or the sale page says why not.
async fn flash_grab(
    State(s): State<AppState>,
    pg: Page,
    Path((slug, sale, sku)): Path<(String, Uuid, Uuid)>,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    let Some(buyer) = pg.buyer_for(&f).cloned() else { return pg.login_redirect(&format!("/m/{slug}/flash")) };
    let item = CartItem { sku_id: SkuId(sku), qty: 1 };
    let res =
        super::flash_order(&s, pg.tenant, buyer.id, siyu_core::FlashSaleId(sale), item, f.opt("client_key")).await;
    went(&pg, res.map(|o| format!("/m/{slug}/orders/{}", o.id)), &format!("/m/{slug}/flash"))
}

async fn coupon_claim(
    State(s): State<AppState>,
    pg: Page,
    Path((slug, id)): Path<(String, Uuid)>,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    let Some(buyer) = pg.buyer_for(&f).cloned() else { return pg.login_redirect(&format!("/m/{slug}/coupons")) };
    let off = super::offset_of(&s, pg.tenant).await.unwrap_or(8);
    // Promo-code coupons are claimed by their code only.
    let res = match s.store.coupon_template(pg.tenant, siyu_core::CouponTemplateId(id)).await {
        Ok(t) if t.code.is_none() => s.store.claim_coupon(pg.tenant, buyer.id, t.id, off).await,
        Ok(_) => Err(siyu_store::StoreError::NotFound),
        Err(e) => Err(e),
    };
    claimed(&slug, res)
}

async fn coupon_code(State(s): State<AppState>, pg: Page, Path(slug): Path<String>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    let Some(buyer) = pg.buyer_for(&f).cloned() else { return pg.login_redirect(&format!("/m/{slug}/coupons")) };
    let off = super::offset_of(&s, pg.tenant).await.unwrap_or(8);
    claimed(&slug, s.store.claim_coupon_by_code(pg.tenant, buyer.id, f.get("code"), off).await)
}

/// Group-buys running now: each SKU's group price to open a group with, and the groups a
/// buyer can join, with their countdowns.
async fn groups_page(State(s): State<AppState>, pg: Page, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = s.store.now();
    let list = match s.store.group_buys(pg.tenant, Some(now)).await {
        Ok(l) => l,
        Err(e) => return fail(pg.lang, e.into()),
    };
    let mut out = Vec::with_capacity(list.len());
    for a in &list {
        let open = match s.store.groups(pg.tenant, a.id, true).await {
            Ok(g) => g,
            Err(e) => return fail(pg.lang, e.into()),
        };
        out.push(json!({"id": a.id, "name": a.name, "capacity": a.capacity,
            "skus": a.skus.iter().map(|k| json!({"id": k.sku_id, "label": k.label, "price": yuan(k.price_fen),
                "list": yuan(k.list_fen), "sold_out": k.taken >= k.quota})).collect::<Vec<_>>(),
            "open": open.iter().take(10).map(|g| group_view(&pg, g, now)).collect::<Vec<_>>()}));
    }
    let mut m = pg.ctx(&pg.t("mall.groups"));
    m.insert("activities".into(), json!(out));
    m.insert("now".into(), json!(now.unix_secs()));
    m.insert("error".into(), json!(q.get("error").map(|k| pg.t(&format!("v.{k}")))));
    pg.render("mall_groups.html", m)
}

fn group_view(pg: &Page, g: &siyu_store::commerce::group_buys::Group, now: Timestamp) -> Value {
    let members: Vec<Value> = g
        .members
        .iter()
        .filter(|m| m.status == "paid")
        .map(|m| json!({"name": m.nickname.clone().unwrap_or_else(|| pg.t("groups.member")), "leader": m.leader}))
        .collect();
    json!({"id": g.id, "activity": g.activity_id, "capacity": g.capacity, "paid": g.paid, "virtual": g.virtual_members,
        "missing": (g.capacity - g.paid - g.virtual_members).max(0), "members": members,
        "status": g.status, "status_label": pg.t(&format!("groups.status.{}", g.status)),
        "joinable": g.status == "open" && g.seats < g.capacity && g.paid >= 1 && now < g.expires_at,
        "until": g.expires_at.unix_secs()})
}

/// Opens a group (no `group_id`) or joins one, with the order that pays for the seat.
async fn group_join(
    State(s): State<AppState>,
    pg: Page,
    Path((slug, activity)): Path<(String, Uuid)>,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    let back = match f.opt("group_id") {
        Some(g) => format!("/m/{slug}/group/{g}"),
        None => format!("/m/{slug}/groups"),
    };
    let Some(buyer) = pg.buyer_for(&f).cloned() else { return pg.login_redirect(&back) };
    let Ok(sku) = f.get("sku_id").parse::<Uuid>() else { return not_found(pg.lang) };
    let group = f.opt("group_id").and_then(|g| g.parse::<Uuid>().ok()).map(siyu_core::GroupId);
    let item = CartItem { sku_id: SkuId(sku), qty: 1 };
    let res = s
        .store
        .create_group_order(pg.tenant, buyer.id, siyu_core::GroupBuyId(activity), group, item, f.opt("client_key"))
        .await;
    went(&pg, res.map(|o| format!("/m/{slug}/orders/{}", o.id)), &back)
}

/// A group's share page: who is in, how many are missing, the countdown, and a way in.
async fn group_page(
    State(s): State<AppState>,
    pg: Page,
    Path((_, id)): Path<(String, Uuid)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = s.store.now();
    let g = match s.store.group(pg.tenant, siyu_core::GroupId(id)).await {
        Ok(g) => g,
        Err(e) => return fail(pg.lang, e.into()),
    };
    let a = match s.store.group_buy(pg.tenant, g.activity_id).await {
        Ok(a) => a,
        Err(e) => return fail(pg.lang, e.into()),
    };
    let mut m = pg.ctx(&pg.t("mall.group"));
    m.insert("group".into(), group_view(&pg, &g, now));
    m.insert(
        "activity".into(),
        json!({"id": a.id, "name": a.name,
        "skus": a.skus.iter().map(|k| json!({"id": k.sku_id, "label": k.label, "price": yuan(k.price_fen),
            "list": yuan(k.list_fen)})).collect::<Vec<_>>()}),
    );
    m.insert("now".into(), json!(now.unix_secs()));
    m.insert("error".into(), json!(q.get("error").map(|k| pg.t(&format!("v.{k}")))));
    pg.render("mall_group.html", m)
}

/// Bargains taking new starts, and the buyer's own.
async fn bargains_page(State(s): State<AppState>, pg: Page, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = s.store.now();
    let list = match s.store.bargains(pg.tenant, Some(now)).await {
        Ok(l) => l,
        Err(e) => return fail(pg.lang, e.into()),
    };
    let mine = match &pg.buyer {
        Some(b) => s.store.my_bargains(pg.tenant, b.id).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let mut m = pg.ctx(&pg.t("mall.bargains"));
    m.insert(
        "bargains".into(),
        json!(list
            .iter()
            .map(|b| json!({"id": b.id, "name": b.name, "label": b.label,
        "image": b.image, "price": yuan(b.price_fen), "floor": yuan(b.floor_fen), "helpers": b.helpers}))
            .collect::<Vec<_>>()),
    );
    m.insert(
        "mine".into(),
        json!(mine
            .iter()
            .map(|r| json!({"id": r.id, "current": yuan(r.current_fen),
        "helpers": r.helpers, "required": r.required}))
            .collect::<Vec<_>>()),
    );
    m.insert("error".into(), json!(q.get("error").map(|k| pg.t(&format!("v.{k}")))));
    pg.render("mall_bargains.html", m)
}

async fn bargain_start(
    State(s): State<AppState>,
    pg: Page,
    Path((slug, id)): Path<(String, Uuid)>,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    let Some(buyer) = pg.buyer_for(&f).cloned() else { return pg.login_redirect(&format!("/m/{slug}/bargains")) };
    let res = s.store.start_bargain(pg.tenant, buyer.id, siyu_core::BargainId(id)).await;
    went(&pg, res.map(|r| format!("/m/{slug}/bargain/{}", r.id)), &format!("/m/{slug}/bargains"))
}

/// A bargain's page: its price so far, the helps, and — for its owner — buying it; for
/// anyone else, helping.
async fn bargain_page(
    State(s): State<AppState>,
    pg: Page,
    Path((_, id)): Path<(String, Uuid)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let r = match s.store.bargain_record(pg.tenant, siyu_core::BargainRecordId(id)).await {
        Ok(r) => r,
        Err(e) => return fail(pg.lang, e.into()),
    };
    let b = match s.store.bargain(pg.tenant, r.bargain_id).await {
        Ok(b) => b,
        Err(e) => return fail(pg.lang, e.into()),
    };
    let now = s.store.now();
    let mine = pg.buyer.as_ref().is_some_and(|x| x.id == r.buyer_id);
    let done = r.current_fen == r.floor_fen;
    let cut = r.price_fen - r.current_fen;
    let room = (r.price_fen - r.floor_fen).max(1);
    let mut m = pg.ctx(&pg.t("mall.bargain"));
    m.insert(
        "r".into(),
        json!({"id": r.id, "name": b.name, "label": b.label, "image": b.image,
        "owner": r.nickname.clone().unwrap_or_else(|| pg.t("groups.member")),
        "price": yuan(r.price_fen), "floor": yuan(r.floor_fen), "current": yuan(r.current_fen), "cut": yuan(cut),
        "percent": cut * 100 / room, "left": r.required - r.helpers, "done": done, "mine": mine,
        "ordered": r.order_id, "open": b.status == "active" && now < b.ends_at,
        "can_buy": mine && r.order_id.is_none() && (done || b.buy_at_current) && now < b.purchase_deadline,
        "helps": r.helps.iter().map(|h| json!({"name": h.nickname.clone().unwrap_or_else(|| pg.t("groups.member")),
            "cut": yuan(h.cut_fen)})).collect::<Vec<_>>()}),
    );
    m.insert("msg".into(), json!(q.get("cut").map(|c| crate::i18n::tf(pg.lang, "mall.bargain.you_cut", &[("c", c)]))));
    m.insert("error".into(), json!(q.get("error").map(|k| pg.t(&format!("v.{k}")))));
    pg.render("mall_bargain.html", m)
}

async fn bargain_action(
    State(s): State<AppState>,
    pg: Page,
    Path((slug, id, action)): Path<(String, Uuid, String)>,
    body: Bytes,
) -> Response {
    let f = FormData::parse(&body);
    let back = format!("/m/{slug}/bargain/{id}");
    let Some(buyer) = pg.buyer_for(&f).cloned() else { return pg.login_redirect(&back) };
    let rid = siyu_core::BargainRecordId(id);
    let res = match action.as_str() {
        "help" => s
            .store
            .help_bargain(pg.tenant, buyer.id, rid, rand::random())
            .await
            .map(|h| format!("{back}?cut={}", yuan(h.cut_fen).replace('¥', ""))),
        "buy" => s
            .store
            .create_bargain_order(pg.tenant, buyer.id, rid, f.opt("client_key"))
            .await
            .map(|o| format!("/m/{slug}/orders/{}", o.id)),
        _ => return not_found(pg.lang),
    };
    went(&pg, res, &back)
}

//! Wire shapes of the commerce API. Money is always integer fen in fields named `*_fen`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use siyu_store::commerce::catalogue::{Category, Product, ShippingTemplate, Sku};
use siyu_store::commerce::orders::{Order, OrderLine, PricedCart};
use siyu_store::commerce::payments::{PayNotification, PaySettings, Payment, Prepay, Refund};

use crate::api::dto::ts;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "围巾", "sort": 10}))]
pub struct CategoryIn {
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub sort: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct CategoryOut {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub sort: i64,
    pub products: i64,
}

impl From<Category> for CategoryOut {
    fn from(c: Category) -> Self {
        CategoryOut {
            id: c.id.0,
            parent_id: c.parent_id.map(|p| p.0),
            name: c.name,
            sort: c.sort,
            products: c.products,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "全国包邮满99", "fee_fen": 1000, "free_from_fen": 9900}))]
pub struct ShippingTemplateIn {
    pub name: String,
    pub fee_fen: i64,
    /// Goods (after coupons) at or above this ship free.
    pub free_from_fen: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ShippingTemplateOut {
    pub id: Uuid,
    pub name: String,
    pub fee_fen: i64,
    pub free_from_fen: Option<i64>,
}

impl From<ShippingTemplate> for ShippingTemplateOut {
    fn from(t: ShippingTemplate) -> Self {
        ShippingTemplateOut { id: t.id.0, name: t.name, fee_fen: t.fee_fen, free_from_fen: t.free_from_fen }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SkuIn {
    /// An existing SKU's id, when editing; absent for a new SKU.
    pub id: Option<Uuid>,
    /// One value per specification name, in order.
    #[serde(default)]
    pub spec: Vec<String>,
    pub code: Option<String>,
    pub price_fen: i64,
    /// Opening stock of a new SKU; existing SKUs change stock through `/skus/{sku_id}/stock`.
    #[serde(default)]
    pub on_hand: i64,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"title": "羊毛围巾", "subtitle": "100% 美利奴", "status": "listed", "spec_names": ["颜色"],
    "images": ["https://img.example.com/scarf.jpg"], "detail": "手工编织。",
    "skus": [{"spec": ["红"], "code": "SC-R", "price_fen": 12900, "on_hand": 50}, {"spec": ["灰"], "code": "SC-G", "price_fen": 12900, "on_hand": 30}]}))]
pub struct ProductIn {
    pub title: String,
    pub subtitle: Option<String>,
    pub category_id: Option<Uuid>,
    pub shipping_template_id: Option<Uuid>,
    /// The store (门店) that sells it; absent for the brand's own mall.
    pub store_id: Option<Uuid>,
    #[serde(default)]
    pub images: Vec<String>,
    /// Plain text; blank lines separate paragraphs.
    pub detail: Option<String>,
    /// `draft` (default), `listed` or `delisted`.
    pub status: Option<String>,
    /// Specification dimensions, e.g. `["颜色", "尺码"]`; empty for a single-SKU product.
    #[serde(default)]
    pub spec_names: Vec<String>,
    pub skus: Vec<SkuIn>,
}

impl ProductIn {
    pub fn draft(self) -> siyu_core::commerce::catalogue::ProductDraft {
        siyu_core::commerce::catalogue::ProductDraft {
            title: self.title,
            subtitle: self.subtitle,
            category_id: self.category_id,
            shipping_template_id: self.shipping_template_id,
            store_id: self.store_id,
            images: self.images,
            detail: self.detail,
            status: self.status,
            spec_names: self.spec_names,
            skus: self
                .skus
                .into_iter()
                .map(|s| siyu_core::commerce::catalogue::SkuInput {
                    id: s.id,
                    spec: s.spec,
                    code: s.code,
                    price_fen: s.price_fen,
                    on_hand: s.on_hand,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SkuOut {
    pub id: Uuid,
    pub product_id: Uuid,
    pub spec: Vec<String>,
    pub code: Option<String>,
    pub price_fen: i64,
    pub on_hand: i64,
    /// Held by unpaid orders.
    pub reserved: i64,
    /// on_hand − reserved.
    pub available: i64,
    pub sold: i64,
    pub active: bool,
}

impl From<Sku> for SkuOut {
    fn from(s: Sku) -> Self {
        SkuOut {
            id: s.id.0,
            product_id: s.product_id.0,
            spec: s.spec,
            code: s.code,
            price_fen: s.price_fen,
            on_hand: s.on_hand,
            reserved: s.reserved,
            available: s.available,
            sold: s.sold,
            active: s.active,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProductOut {
    pub id: Uuid,
    pub category_id: Option<Uuid>,
    pub category_name: Option<String>,
    pub shipping_template_id: Option<Uuid>,
    pub store_id: Option<Uuid>,
    pub store_name: Option<String>,
    pub title: String,
    pub subtitle: Option<String>,
    pub images: Vec<String>,
    pub detail: Option<String>,
    pub status: String,
    pub spec_names: Vec<String>,
    pub skus: Vec<SkuOut>,
    pub price_min_fen: i64,
    pub price_max_fen: i64,
    pub available: i64,
    pub sold: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Product> for ProductOut {
    fn from(p: Product) -> Self {
        ProductOut {
            id: p.id.0,
            category_id: p.category_id.map(|c| c.0),
            category_name: p.category_name,
            shipping_template_id: p.shipping_template_id.map(|t| t.0),
            store_id: p.store_id.map(|s| s.0),
            store_name: p.store_name,
            title: p.title,
            subtitle: p.subtitle,
            images: p.images,
            detail: p.detail,
            status: p.status.as_str().into(),
            spec_names: p.spec_names,
            skus: p.skus.into_iter().map(Into::into).collect(),
            price_min_fen: p.price_min_fen,
            price_max_fen: p.price_max_fen,
            available: p.available,
            sold: p.sold,
            created_at: ts(p.created_at),
            updated_at: ts(p.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"status": "delisted"}))]
pub struct ProductStatusIn {
    /// `draft`, `listed` or `delisted`.
    pub status: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"delta": 20, "note": "到货"}))]
pub struct StockIn {
    /// Add (positive) or remove (negative) units.
    pub delta: Option<i64>,
    /// Or: the counted stock, which replaces on_hand.
    pub on_hand: Option<i64>,
    pub note: Option<String>,
}

// ---- orders ------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct LineShareOut {
    /// The pricing step: member_price, activity_price, second_half, bundle, full_reduction,
    /// full_percent, coupon, points, shipping_coupon.
    pub kind: String,
    pub source: Option<String>,
    pub fen: i64,
}

#[derive(Serialize, ToSchema)]
pub struct OrderLineOut {
    pub line_no: i64,
    pub sku_id: Uuid,
    pub product_id: Uuid,
    pub title: String,
    pub spec: String,
    pub qty: i64,
    pub unit_list_fen: i64,
    pub unit_price_fen: i64,
    pub paid_fen: i64,
    /// What each unit paid, after every step (refunds return these).
    pub units: Vec<i64>,
    pub shares: Vec<LineShareOut>,
    pub gift: bool,
    pub refunded_qty: i64,
    pub refunded_fen: i64,
}

impl From<OrderLine> for OrderLineOut {
    fn from(l: OrderLine) -> Self {
        OrderLineOut {
            line_no: l.line_no,
            sku_id: l.sku_id.0,
            product_id: l.product_id.0,
            title: l.title,
            spec: l.spec,
            qty: l.qty,
            unit_list_fen: l.unit_list_fen,
            unit_price_fen: l.unit_price_fen,
            paid_fen: l.paid_fen,
            units: l.units,
            shares: l.shares.into_iter().map(|s| LineShareOut { kind: s.kind, source: s.source, fen: s.fen }).collect(),
            gift: l.gift,
            refunded_qty: l.refunded_qty,
            refunded_fen: l.refunded_fen,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
pub struct AddressIo {
    pub name: String,
    pub phone: String,
    pub region: String,
    pub detail: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrderOut {
    pub id: Uuid,
    pub no: String,
    pub buyer_id: Uuid,
    pub buyer_openid: Option<String>,
    pub customer_id: Option<Uuid>,
    pub kind: String,
    /// pending_payment, awaiting_balance (a presale's deposit paid), paid, awaiting_group, to_ship,
    /// shipped, received, completed, cancelled.
    pub status: String,
    pub list_fen: i64,
    pub goods_fen: i64,
    pub shipping_fen: i64,
    pub payable_fen: i64,
    pub paid_fen: i64,
    pub refunded_fen: i64,
    /// The pricing pipeline's steps at submit (each with its eligible amount, threshold,
    /// discount and per-line shares).
    #[schema(value_type = Object)]
    pub quote: serde_json::Value,
    pub address: Option<AddressIo>,
    pub note: Option<String>,
    pub transaction_id: Option<String>,
    pub created_at: String,
    /// An unpaid order cancels itself at this time.
    pub expires_at: String,
    pub paid_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub cancel_reason: Option<String>,
    pub shipped_at: Option<String>,
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    pub received_at: Option<String>,
    pub completed_at: Option<String>,
    /// A presale order: its presale, the deposit (due, then paid) and the balance.
    pub presale_id: Option<Uuid>,
    pub deposit_fen: i64,
    pub balance_fen: i64,
    pub deposit_paid_at: Option<String>,
    /// A group-buy order: the group it holds a seat in.
    pub group_id: Option<Uuid>,
    /// A bargain order: the bargain it buys.
    pub bargain_record_id: Option<Uuid>,
    pub lines: Vec<OrderLineOut>,
}

impl From<Order> for OrderOut {
    fn from(o: Order) -> Self {
        OrderOut {
            id: o.id.0,
            no: o.no,
            buyer_id: o.buyer_id.0,
            buyer_openid: o.buyer_openid,
            customer_id: o.customer_id.map(|c| c.0),
            kind: o.kind,
            status: o.status.as_str().into(),
            list_fen: o.list_fen,
            goods_fen: o.goods_fen,
            shipping_fen: o.shipping_fen,
            payable_fen: o.payable_fen,
            paid_fen: o.paid_fen,
            refunded_fen: o.refunded_fen,
            quote: o.quote,
            address: o.address.map(|a| AddressIo { name: a.name, phone: a.phone, region: a.region, detail: a.detail }),
            note: o.note,
            transaction_id: o.transaction_id,
            created_at: ts(o.created_at),
            expires_at: ts(o.expires_at),
            paid_at: o.paid_at.map(ts),
            cancelled_at: o.cancelled_at.map(ts),
            cancel_reason: o.cancel_reason,
            shipped_at: o.shipped_at.map(ts),
            carrier: o.carrier,
            tracking_no: o.tracking_no,
            received_at: o.received_at.map(ts),
            completed_at: o.completed_at.map(ts),
            presale_id: o.presale_id.map(|p| p.0),
            deposit_fen: o.deposit_fen,
            balance_fen: if o.presale_id.is_some() { o.payable_fen - o.deposit_fen } else { 0 },
            deposit_paid_at: o.deposit_paid_at.map(ts),
            group_id: o.group_id.map(|g| g.0),
            bargain_record_id: o.bargain_record_id.map(|r| r.0),
            lines: o.lines.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PaymentOut {
    pub id: Uuid,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount_fen: i64,
    /// applied, late (refunded: the order was cancelled), double (refunded: already paid),
    /// amount_mismatch (kept unapplied for review).
    pub disposition: String,
    pub created_at: String,
}

impl From<Payment> for PaymentOut {
    fn from(p: Payment) -> Self {
        PaymentOut {
            id: p.id.0,
            out_trade_no: p.out_trade_no,
            transaction_id: p.transaction_id,
            amount_fen: p.amount_fen,
            disposition: p.disposition,
            created_at: ts(p.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PrepayOut {
    pub out_trade_no: String,
    pub prepay_id: Option<String>,
    /// open, closed or paid.
    pub status: String,
    pub amount_fen: i64,
    pub expires_at: String,
}

impl From<Prepay> for PrepayOut {
    fn from(p: Prepay) -> Self {
        PrepayOut {
            out_trade_no: p.out_trade_no,
            prepay_id: p.prepay_id,
            status: p.status,
            amount_fen: p.amount_fen,
            expires_at: ts(p.expires_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrderDetailOut {
    pub order: OrderOut,
    pub payments: Vec<PaymentOut>,
    pub prepays: Vec<PrepayOut>,
    pub refunds: Vec<RefundOut>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"reason": "客户要求取消"}))]
pub struct CancelIn {
    pub reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"carrier": "顺丰速运", "tracking_no": "SF1234567890"}))]
pub struct ShipIn {
    pub carrier: String,
    pub tracking_no: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefundLineIn {
    pub line_no: i64,
    pub qty: i64,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"lines": [{"line_no": 0, "qty": 1}], "shipping": false, "reason": "质量问题"}))]
pub struct RefundIn {
    #[serde(default)]
    pub lines: Vec<RefundLineIn>,
    /// Refund shipping too (only with every item, before shipment).
    #[serde(default)]
    pub shipping: bool,
    pub reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"note": "已核实"}))]
pub struct DecisionIn {
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RefundLineOut {
    pub line_no: i64,
    pub qty: i64,
    pub fen: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RefundOut {
    pub id: Uuid,
    pub order_id: Uuid,
    pub order_no: Option<String>,
    pub out_refund_no: String,
    pub amount_fen: i64,
    /// customer, merchant, system_late, system_double, presale_deposit, group_failed, group_left.
    pub kind: String,
    pub reason: Option<String>,
    /// requested, approved, submitted, succeeded, abnormal, rejected.
    pub status: String,
    pub lines: Vec<RefundLineOut>,
    pub refund_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: String,
    pub succeeded_at: Option<String>,
}

impl From<Refund> for RefundOut {
    fn from(r: Refund) -> Self {
        RefundOut {
            id: r.id.0,
            order_id: r.order_id.0,
            order_no: r.order_no,
            out_refund_no: r.out_refund_no,
            amount_fen: r.amount_fen,
            kind: r.kind.as_str().into(),
            reason: r.reason,
            status: r.status,
            lines: r.lines.into_iter().map(|l| RefundLineOut { line_no: l.line_no, qty: l.qty, fen: l.fen }).collect(),
            refund_id: r.refund_id,
            detail: r.detail,
            created_at: ts(r.created_at),
            succeeded_at: r.succeeded_at.map(ts),
        }
    }
}

// ---- payments settings ---------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"appid": "wxd678efh567hg6787", "mchid": "1230000109", "merchant_serial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "merchant_key_pem": "-----BEGIN PRIVATE KEY-----\n…\n-----END PRIVATE KEY-----", "apiv3_key": "0123456789abcdef0123456789abcdef",
    "platform_key_id": "PUB_KEY_ID_0114232134912410000000000000", "platform_public_key_pem": "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----",
    "notify_base": "https://mall.example.com", "order_timeout_minutes": 30}))]
pub struct PaySettingsIn {
    pub appid: String,
    pub mchid: String,
    /// The serial of the merchant API certificate (its key signs requests).
    pub merchant_serial: String,
    /// PKCS#8 PEM; absent keeps the stored key.
    pub merchant_key_pem: Option<String>,
    /// 32 characters; absent keeps the stored key.
    pub apiv3_key: Option<String>,
    /// The WeChat Pay public key id (`PUB_KEY_ID_…`), with its PEM (public-key mode).
    pub platform_key_id: Option<String>,
    pub platform_public_key_pem: Option<String>,
    /// Platform certificates (PEM), for certificate mode.
    #[serde(default)]
    pub platform_certs: Vec<String>,
    /// WeChat Pay's API origin; `https://api.mch.weixin.qq.com` when absent.
    pub base_url: Option<String>,
    /// The public HTTPS origin of this siyu; notifications go to `{notify_base}/pay/notify/{tenant_id}`.
    pub notify_base: String,
    /// Unpaid orders cancel after this many minutes (5–1440, default 30).
    pub order_timeout_minutes: Option<i64>,
    /// The mini program's AppSecret, to sign customers in (code2Session); absent keeps it.
    pub app_secret: Option<String>,
    /// WeChat's API origin for code2Session; `https://api.weixin.qq.com` when absent.
    pub login_base_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PaySettingsOut {
    pub appid: String,
    pub mchid: String,
    pub merchant_serial: String,
    pub platform_key_id: Option<String>,
    pub has_platform_public_key: bool,
    /// Serials of the configured platform certificates.
    pub platform_cert_count: usize,
    pub base_url: String,
    pub notify_base: String,
    pub notify_url: String,
    pub order_timeout_minutes: i64,
    /// Customers can sign in to the mall (the AppSecret is stored).
    pub has_app_secret: bool,
    pub login_base_url: String,
    pub updated_at: String,
}

impl PaySettingsOut {
    pub fn new(s: PaySettings, tenant: siyu_core::TenantId) -> Self {
        PaySettingsOut {
            notify_url: format!("{}/pay/notify/{tenant}", s.notify_base.trim_end_matches('/')),
            appid: s.appid,
            mchid: s.mchid,
            merchant_serial: s.merchant_serial,
            platform_key_id: s.platform_key_id,
            has_platform_public_key: s.platform_public_key_pem.is_some(),
            platform_cert_count: s.platform_certs.len(),
            base_url: s.base_url,
            notify_base: s.notify_base,
            order_timeout_minutes: s.order_timeout_secs / 60,
            has_app_secret: s.has_app_secret,
            login_base_url: s.login_base_url,
            updated_at: ts(s.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PayNotificationOut {
    pub id: String,
    pub event_type: String,
    pub out_trade_no: Option<String>,
    /// What siyu did: paid, duplicate, late_payment, double_payment, amount_mismatch,
    /// unknown_trade, refund_succeeded, refund_abnormal, refused (with the reason).
    pub outcome: String,
    pub detail: Option<String>,
    pub received_at: String,
}

impl From<PayNotification> for PayNotificationOut {
    fn from(n: PayNotification) -> Self {
        PayNotificationOut {
            id: n.id,
            event_type: n.event_type,
            out_trade_no: n.out_trade_no,
            outcome: n.outcome,
            detail: n.detail,
            received_at: ts(n.received_at),
        }
    }
}

// ---- the mall (buyers) -------------------------------------------------------------------

#[derive(Deserialize, ToSchema, Clone, Copy)]
pub struct CartItemIo {
    pub sku_id: Uuid,
    pub qty: u32,
}

#[derive(Deserialize, ToSchema)]
pub struct QuoteIn {
    pub items: Vec<CartItemIo>,
    /// One of the buyer's coupons to apply.
    pub coupon_id: Option<Uuid>,
    /// A presale's deposit order: the items are that presale's SKUs.
    pub presale_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct PricedItemOut {
    pub sku_id: Uuid,
    pub product_id: Uuid,
    pub title: String,
    pub spec: String,
    pub image: Option<String>,
    pub qty: u32,
    pub unit_list_fen: i64,
    pub available: i64,
}

#[derive(Serialize, ToSchema)]
pub struct QuoteOut {
    pub items: Vec<PricedItemOut>,
    /// Every pricing step with its eligible amount, threshold, discount and per-line shares.
    #[schema(value_type = Object)]
    pub quote: serde_json::Value,
    pub list_fen: i64,
    pub goods_fen: i64,
    pub shipping_fen: i64,
    pub payable_fen: i64,
    /// 满送 gifts in stock that come with the order at no charge.
    pub gifts: Vec<GiftOut>,
}

#[derive(Serialize, ToSchema)]
pub struct GiftOut {
    pub sku_id: Uuid,
    pub title: String,
    pub spec: String,
    pub qty: u32,
    /// The promotion that gives it.
    pub promotion: String,
}

impl From<PricedCart> for QuoteOut {
    fn from(p: PricedCart) -> Self {
        let q = &p.quote;
        QuoteOut {
            list_fen: q.list_total,
            goods_fen: q.goods,
            shipping_fen: q.shipping_fee - q.shipping_discount,
            payable_fen: q.payable,
            quote: serde_json::to_value(q).unwrap_or_default(),
            gifts: p
                .gifts
                .into_iter()
                .map(|g| GiftOut { sku_id: g.sku_id.0, title: g.title, spec: g.spec, qty: g.qty, promotion: g.promo })
                .collect(),
            items: p
                .items
                .into_iter()
                .map(|i| PricedItemOut {
                    sku_id: i.sku_id.0,
                    product_id: i.product_id.0,
                    title: i.title,
                    spec: i.spec,
                    image: i.image,
                    qty: i.qty,
                    unit_list_fen: i.unit_list_fen,
                    available: i.available,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SubmitIn {
    pub items: Vec<CartItemIo>,
    pub address: Option<AddressIo>,
    pub note: Option<String>,
    /// The payable the buyer saw; a different amount refuses the submit with `price_changed`.
    pub expected_payable_fen: Option<i64>,
    /// One of the buyer's coupons: locked to the order now, used when it is paid.
    pub coupon_id: Option<Uuid>,
    /// A presale's deposit order: the items are that presale's SKUs.
    pub presale_id: Option<Uuid>,
}

// ---- coupons -----------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "满100减20", "kind": "amount", "face_fen": 2000, "threshold_fen": 10000, "valid_days": 7, "total": 1000, "per_user": 1}))]
pub struct CouponTemplateIn {
    pub name: String,
    /// `amount` (满减 or 无门槛), `percent` (折扣, with an optional cap) or `shipping` (运费券).
    pub kind: String,
    #[serde(default)]
    pub face_fen: i64,
    /// For `percent`: basis points off (1500 = 15 % off).
    #[serde(default)]
    pub off_bp: i64,
    pub cap_fen: Option<i64>,
    /// Eligible goods must reach this (0: no threshold).
    #[serde(default)]
    pub threshold_fen: i64,
    /// Products (ids) in scope; with `category_ids` empty too, everything is.
    #[serde(default)]
    pub product_ids: Vec<Uuid>,
    /// Categories (ids) in scope, with their sub-categories.
    #[serde(default)]
    pub category_ids: Vec<Uuid>,
    /// Products never in scope.
    #[serde(default)]
    pub exclude_product_ids: Vec<Uuid>,
    /// A fixed window (RFC 3339, half-open) …
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    /// … or N days from the claim, the claim day counting as day 1.
    pub valid_days: Option<i64>,
    pub total: i64,
    pub per_user: Option<i64>,
    /// A promo code (优惠码) customers can type to claim it.
    pub code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CouponTemplateOut {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Object)]
    pub kind: serde_json::Value,
    #[schema(value_type = Object)]
    pub scope: serde_json::Value,
    #[schema(value_type = Object)]
    pub validity: serde_json::Value,
    pub total: i64,
    pub issued: i64,
    pub per_user: i64,
    pub code: Option<String>,
    /// `active` or `stopped`.
    pub status: String,
    pub created_at: String,
}

impl From<siyu_store::commerce::coupons::CouponTemplate> for CouponTemplateOut {
    fn from(t: siyu_store::commerce::coupons::CouponTemplate) -> Self {
        CouponTemplateOut {
            id: t.id.0,
            name: t.name,
            kind: serde_json::to_value(&t.kind).unwrap_or_default(),
            scope: serde_json::to_value(&t.scope).unwrap_or_default(),
            validity: serde_json::to_value(t.validity).unwrap_or_default(),
            total: t.total,
            issued: t.issued,
            per_user: t.per_user,
            code: t.code,
            status: t.status,
            created_at: ts(t.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserCouponOut {
    pub id: Uuid,
    pub template_id: Uuid,
    pub name: String,
    #[schema(value_type = Object)]
    pub kind: serde_json::Value,
    /// unused, locked (held by an unpaid order), used.
    pub status: String,
    pub usable: bool,
    pub order_id: Option<Uuid>,
    pub valid_start: String,
    pub valid_end: String,
}

impl UserCouponOut {
    pub fn new(c: siyu_store::commerce::coupons::UserCoupon, now: siyu_core::Timestamp) -> Self {
        UserCouponOut {
            usable: c.usable(now),
            id: c.id.0,
            template_id: c.template_id.0,
            name: c.name,
            kind: serde_json::to_value(&c.kind).unwrap_or_default(),
            status: c.status,
            order_id: c.order_id.map(|o| o.0),
            valid_start: ts(c.valid_start),
            valid_end: ts(c.valid_end),
        }
    }
}

/// A play's validation errors as the API names the fields: the core's `timeout_secs` is the
/// API's `timeout_minutes`.
pub fn minutes_fields(v: Vec<siyu_core::validate::Violation>) -> crate::error::ApiError {
    crate::error::ApiError::from(
        v.into_iter()
            .map(|mut x| {
                if x.field == "timeout_secs" {
                    x.field = "timeout_minutes".into();
                }
                x
            })
            .collect::<Vec<_>>(),
    )
}

//! Payments: the tenant's WeChat Pay settings (keys sealed), mall buyers and their sessions,
//! prepays (one open per order, PAY-1), applying a verified payment (PAY-3), the notification
//! log, and refunds (REF-1..REF-5).
//!
//! Applying a payment is one transaction: insert the payment under `UNIQUE(transaction_id)`
//! (a redelivery stops there), take the order row (a no-op UPDATE locks it on PostgreSQL;
//! SQLite has one writer), then let `siyu_core::commerce::order::apply` decide: pay the order
//! and commit its stock, or record a refund for a late or double payment (INV-6, PAY-5).

use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::auth::Actor;
use siyu_core::commerce::order::{self, OrderEvent, OrderStatus, Outcome};
use siyu_core::commerce::presale::{split_refund, Phase};
use siyu_core::paging::{Page, PageRequest};
use siyu_core::{BuyerId, OrderId, PaymentId, RefundId, TenantId, Timestamp};

use super::rejected;
use crate::secrets::{random_secret, sha256_hex};
use crate::{
    audit, cancel_from, compensate, group_succeeds, in_tx, lock_group_of, on_read, on_write, outbox, Result, Store,
    StoreError,
};

/// Mall sessions last a week; the buyer logs in again through WeChat after that.
pub const MALL_SESSION_SECS: i64 = 7 * 24 * 3600;

#[derive(Clone, Debug, Serialize)]
pub struct PaySettings {
    pub appid: String,
    pub mchid: String,
    pub merchant_serial: String,
    pub platform_key_id: Option<String>,
    pub platform_public_key_pem: Option<String>,
    pub platform_certs: Vec<String>,
    pub base_url: String,
    /// The public origin WeChat Pay posts notifications to (`{notify_base}/pay/notify/{tenant}`).
    pub notify_base: String,
    pub order_timeout_secs: i64,
    /// Where the mini program's code2Session is called (WeChat's API origin).
    pub login_base_url: String,
    /// Whether the mini program's AppSecret is stored (needed to sign customers in).
    pub has_app_secret: bool,
    pub updated_at: Timestamp,
}

/// The settings with their secrets opened, for the payment client only.
#[derive(Clone)]
pub struct PayCredentials {
    pub settings: PaySettings,
    pub merchant_key_pem: String,
    pub apiv3_key: String,
    pub app_secret: Option<String>,
}

/// A save: `None` secrets keep the stored ones.
#[derive(Clone, Debug)]
pub struct PaySettingsInput {
    pub appid: String,
    pub mchid: String,
    pub merchant_serial: String,
    pub merchant_key_pem: Option<String>,
    pub apiv3_key: Option<String>,
    pub platform_key_id: Option<String>,
    pub platform_public_key_pem: Option<String>,
    pub platform_certs: Vec<String>,
    pub base_url: String,
    pub notify_base: String,
    pub order_timeout_secs: i64,
    /// The mini program's AppSecret; `None` keeps the stored one.
    pub app_secret: Option<String>,
    pub login_base_url: String,
}

/// WeChat's API origin, where code2Session lives.
pub const WECHAT_API_BASE: &str = "https://api.weixin.qq.com";

#[derive(Clone, Debug, Serialize)]
pub struct Buyer {
    pub id: BuyerId,
    pub openid: String,
    pub unionid: Option<String>,
    pub nickname: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Prepay {
    pub out_trade_no: String,
    pub order_id: OrderId,
    /// `None` while the provider call that creates it is in flight.
    pub prepay_id: Option<String>,
    pub status: String,
    pub amount_fen: i64,
    pub expires_at: Timestamp,
}

/// A payment the provider reports, already verified and decrypted (PAY-2's mchid and appid
/// checks done by the caller, which knows the settings).
#[derive(Clone, Debug)]
pub struct PaidNotice {
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount_fen: i64,
    pub payer_openid: Option<String>,
    pub success_time: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum PaymentResult {
    /// The order is paid now.
    Paid { order: OrderId },
    /// This transaction was applied before (a redelivery, PAY-4): nothing changed.
    Duplicate,
    /// No order of ours has this out_trade_no.
    UnknownTrade,
    /// The amount differs from the order's payable (PAY-2): recorded, the order stays unpaid.
    AmountMismatch { expected: i64, got: i64 },
    /// Paid after the order was cancelled (INV-6): refunded in full automatically.
    LatePayment { refund: RefundId },
    /// A second transaction for a paid order (PAY-5): refunded in full automatically.
    DoublePayment { refund: RefundId },
}

#[derive(Clone, Debug, Serialize)]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount_fen: i64,
    /// `applied`, `late`, `double` or `amount_mismatch`.
    pub disposition: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundKind {
    /// The buyer asked (售后).
    Customer,
    /// An operator refunded.
    Merchant,
    /// A payment after the order was cancelled (REF-7: a system refund).
    SystemLate,
    /// A second payment of a paid order (REF-7: a system refund).
    SystemDouble,
    /// A presale deposit given back when its order closed without the balance (PS-2).
    PresaleDeposit,
    /// A group-buy member's payment given back in full: the group failed (GB-6).
    GroupFailed,
    /// A member left the group before it filled (GB-10).
    GroupLeft,
}

impl RefundKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundKind::Customer => "customer",
            RefundKind::Merchant => "merchant",
            RefundKind::SystemLate => "system_late",
            RefundKind::SystemDouble => "system_double",
            RefundKind::PresaleDeposit => "presale_deposit",
            RefundKind::GroupFailed => "group_failed",
            RefundKind::GroupLeft => "group_left",
        }
    }
    fn parse(s: &str) -> RefundKind {
        match s {
            "customer" => RefundKind::Customer,
            "system_late" => RefundKind::SystemLate,
            "system_double" => RefundKind::SystemDouble,
            "presale_deposit" => RefundKind::PresaleDeposit,
            "group_failed" => RefundKind::GroupFailed,
            "group_left" => RefundKind::GroupLeft,
            _ => RefundKind::Merchant,
        }
    }
    /// The refund returns goods money of the order itself (not a stray payment).
    fn of_order(self) -> bool {
        matches!(
            self,
            RefundKind::Customer
                | RefundKind::Merchant
                | RefundKind::PresaleDeposit
                | RefundKind::GroupFailed
                | RefundKind::GroupLeft
        )
    }
}

/// Units of one line in a refund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RefundLine {
    pub line_no: i64,
    pub qty: i64,
    pub fen: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Refund {
    pub id: RefundId,
    pub order_id: OrderId,
    pub order_no: Option<String>,
    pub payment_id: PaymentId,
    pub out_refund_no: String,
    pub amount_fen: i64,
    pub kind: RefundKind,
    pub reason: Option<String>,
    /// requested → approved → submitted → succeeded | abnormal; requested → rejected (REF-3).
    pub status: String,
    pub lines: Vec<RefundLine>,
    pub refund_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: Timestamp,
    pub succeeded_at: Option<Timestamp>,
    /// For a presale order's refund spread over its two payments: the part it belongs to
    /// (the two are decided together).
    pub part_of: Option<RefundId>,
}

/// A refund to record: which units of which lines, and shipping or not.
#[derive(Clone, Debug)]
pub struct NewRefund {
    pub lines: Vec<(i64, i64)>,
    pub shipping: bool,
    pub reason: Option<String>,
    pub kind: RefundKind,
}

#[derive(Clone, Debug, Serialize)]
pub struct PayNotification {
    pub id: String,
    pub event_type: String,
    pub out_trade_no: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub received_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    appid: String,
    mchid: String,
    merchant_serial: String,
    merchant_key_sealed: String,
    apiv3_key_sealed: String,
    platform_key_id: Option<String>,
    platform_public_key_pem: Option<String>,
    platform_certs: Json<Vec<String>>,
    base_url: String,
    notify_base: String,
    order_timeout_secs: i64,
    updated_at: i64,
    app_secret_sealed: Option<String>,
    login_base_url: Option<String>,
}

type NotificationRow = (String, String, Option<String>, String, Option<String>, i64);

fn aad(tenant: TenantId, what: &str) -> String {
    format!("{tenant}:pay.{what}")
}

#[derive(sqlx::FromRow)]
struct RefundRow {
    id: Uuid,
    order_id: Uuid,
    no: Option<String>,
    payment_id: Uuid,
    out_refund_no: String,
    amount_fen: i64,
    kind: String,
    reason: Option<String>,
    status: String,
    lines: Json<Vec<RefundLine>>,
    refund_id: Option<String>,
    detail: Option<String>,
    created_at: i64,
    succeeded_at: Option<i64>,
    part_of: Option<Uuid>,
}

const REFUND_SELECT: &str = "SELECT r.id, r.order_id, o.no, r.payment_id, r.out_refund_no, r.amount_fen, r.kind, \
     r.reason, r.status, r.lines, r.refund_id, r.detail, r.created_at, r.succeeded_at, r.part_of FROM refunds r \
     LEFT JOIN orders o ON o.tenant_id = r.tenant_id AND o.id = r.order_id";

fn refund_from(r: RefundRow) -> Refund {
    Refund {
        id: RefundId(r.id),
        order_id: OrderId(r.order_id),
        order_no: r.no,
        payment_id: PaymentId(r.payment_id),
        out_refund_no: r.out_refund_no,
        amount_fen: r.amount_fen,
        kind: RefundKind::parse(&r.kind),
        reason: r.reason,
        status: r.status,
        lines: r.lines.0,
        refund_id: r.refund_id,
        detail: r.detail,
        created_at: Timestamp(r.created_at),
        succeeded_at: r.succeeded_at.map(Timestamp),
        part_of: r.part_of.map(RefundId),
    }
}

/// Records a full refund of a stray payment (late or double) inside the payment's
/// transaction (or a presale deposit returned, PS-2); the sweep submits it to the provider.
#[macro_export]
#[doc(hidden)]
macro_rules! system_refund {
    ($tx:expr, $tenant:expr, $order:expr, $payment:expr, $amount:expr, $kind:expr, $now:expr) => {{
        let id = siyu_core::RefundId::new();
        sqlx::query(
            "INSERT INTO refunds (tenant_id, id, order_id, payment_id, out_refund_no, amount_fen, kind, reason, status, \
             lines, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'approved', $9, $10, $10)",
        )
        .bind($tenant.0)
        .bind(id.0)
        .bind($order)
        .bind($payment)
        .bind(format!("R{}", id.0.simple()))
        .bind($amount)
        .bind($kind.as_str())
        .bind(match $kind {
            RefundKind::SystemLate => "paid after the order was cancelled",
            RefundKind::PresaleDeposit => "presale deposit returned",
            RefundKind::GroupFailed => "the group did not fill in time",
            RefundKind::GroupLeft => "left the group before it filled",
            _ => "the order was already paid",
        })
        .bind(sqlx::types::Json(Vec::<$crate::commerce::payments::RefundLine>::new()))
        .bind($now.0)
        .execute(&mut *$tx)
        .await?;
        id
    }};
}

/// Gives a refund's claimed units and amount back to its lines and order.
macro_rules! unclaim_refund {
    ($tx:expr, $tenant:expr, $r:expr, $now:expr) => {{
        for l in &$r.lines {
            sqlx::query(
                "UPDATE order_lines SET refunded_qty = refunded_qty - $4, refunded_fen = refunded_fen - $5 \
                 WHERE tenant_id = $1 AND order_id = $2 AND line_no = $3",
            )
            .bind($tenant.0)
            .bind($r.order_id.0)
            .bind(l.line_no)
            .bind(l.qty)
            .bind(l.fen)
            .execute(&mut *$tx)
            .await?;
        }
        sqlx::query(
            "UPDATE orders SET refunded_fen = refunded_fen - $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind($tenant.0)
        .bind($r.order_id.0)
        .bind($r.amount_fen)
        .bind($now.0)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Commits an order's reservations at payment: each reserved → committed once, and its units
/// leave the shelf and the hold (§1.1 step 2).
macro_rules! commit_stock {
    ($tx:expr, $tenant:expr, $order:expr, $now:expr) => {{
        let held: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT sku_id, pool_id, qty FROM stock_reservations WHERE tenant_id = $1 AND order_id = $2 \
             AND status = 'reserved' ORDER BY sku_id",
        )
        .bind($tenant.0)
        .bind($order)
        .fetch_all(&mut *$tx)
        .await?;
        for (sku, pool, qty) in held {
            let (d_on_hand, d_reserved) =
                order::movement(order::Reservation::Reserved, order::Reservation::Committed, qty).unwrap_or((0, 0));
            let n = sqlx::query(
                "UPDATE stock_reservations SET status = 'committed', updated_at = $5 WHERE tenant_id = $1 \
                 AND order_id = $2 AND sku_id = $3 AND pool_id = $4 AND status = 'reserved'",
            )
            .bind($tenant.0)
            .bind($order)
            .bind(sku)
            .bind(&pool)
            .bind($now.0)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if n == 1 {
                sqlx::query(
                    "UPDATE skus SET on_hand = on_hand + $3, reserved = reserved + $4, sold = sold + $5, updated_at = $6 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind($tenant.0)
                .bind(sku)
                .bind(d_on_hand)
                .bind(d_reserved)
                .bind(qty)
                .bind($now.0)
                .execute(&mut *$tx)
                .await?;
            }
        }
    }};
}

impl Store {
    pub async fn save_pay_settings(&self, actor: &Actor, s: &PaySettingsInput) -> Result<PaySettings> {
        let t = actor.tenant_id;
        let now = self.now();
        let existing = self.pay_settings(t).await?;
        let key = s.merchant_key_pem.as_deref().map(|k| self.sealer.seal(&aad(t, "merchant_key"), k));
        let v3 = s.apiv3_key.as_deref().map(|k| self.sealer.seal(&aad(t, "apiv3_key"), k));
        let app_secret = s.app_secret.as_deref().map(|k| self.sealer.seal(&aad(t, "app_secret"), k));
        if existing.is_none() && (key.is_none() || v3.is_none()) {
            return Err(rejected(
                "secret_required",
                Some(if key.is_none() { "merchant_key_pem" } else { "apiv3_key" }),
                "the merchant private key and the APIv3 key are needed the first time",
            ));
        }
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO pay_settings (tenant_id, appid, mchid, merchant_serial, merchant_key_sealed, apiv3_key_sealed, \
                 platform_key_id, platform_public_key_pem, platform_certs, base_url, notify_base, order_timeout_secs, updated_at, \
                 app_secret_sealed, login_base_url) \
                 VALUES ($1, $2, $3, $4, COALESCE($5, ''), COALESCE($6, ''), $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (tenant_id) DO UPDATE SET appid = $2, mchid = $3, merchant_serial = $4, \
                 merchant_key_sealed = COALESCE($5, pay_settings.merchant_key_sealed), \
                 apiv3_key_sealed = COALESCE($6, pay_settings.apiv3_key_sealed), platform_key_id = $7, \
                 platform_public_key_pem = $8, platform_certs = $9, base_url = $10, notify_base = $11, \
                 order_timeout_secs = $12, updated_at = $13, \
                 app_secret_sealed = COALESCE($14, pay_settings.app_secret_sealed), login_base_url = $15",
            )
            .bind(t.0)
            .bind(&s.appid)
            .bind(&s.mchid)
            .bind(&s.merchant_serial)
            .bind(&key)
            .bind(&v3)
            .bind(&s.platform_key_id)
            .bind(&s.platform_public_key_pem)
            .bind(Json(&s.platform_certs))
            .bind(&s.base_url)
            .bind(&s.notify_base)
            .bind(s.order_timeout_secs)
            .bind(now.0)
            .bind(&app_secret)
            .bind(&s.login_base_url)
            .execute(&mut *tx)
            .await?;
            audit!(
                tx,
                self,
                actor,
                "pay_settings.save",
                "pay_settings",
                t,
                None,
                Some(serde_json::json!({
                    "appid": s.appid, "mchid": s.mchid, "merchant_serial": s.merchant_serial,
                    "platform_key_id": s.platform_key_id, "base_url": s.base_url,
                    "merchant_key_changed": key.is_some(), "apiv3_key_changed": v3.is_some(),
                    "app_secret_changed": app_secret.is_some()
                }))
            );
        });
        self.pay_settings(t).await?.ok_or(StoreError::NotFound)
    }

    pub async fn pay_settings(&self, tenant: TenantId) -> Result<Option<PaySettings>> {
        Ok(self.pay_settings_row(tenant).await?.map(|(s, _)| s))
    }

    async fn pay_settings_row(&self, tenant: TenantId) -> Result<Option<(PaySettings, SettingsRow)>> {
        let row: Option<SettingsRow> = on_read!(self, |p| sqlx::query_as(
            "SELECT appid, mchid, merchant_serial, merchant_key_sealed, apiv3_key_sealed, platform_key_id, \
             platform_public_key_pem, platform_certs, base_url, notify_base, order_timeout_secs, updated_at, \
             app_secret_sealed, login_base_url FROM pay_settings WHERE tenant_id = $1"
        )
        .bind(tenant.0)
        .fetch_optional(p)
        .await?);
        Ok(row.map(|r| {
            (
                PaySettings {
                    appid: r.appid.clone(),
                    mchid: r.mchid.clone(),
                    merchant_serial: r.merchant_serial.clone(),
                    platform_key_id: r.platform_key_id.clone(),
                    platform_public_key_pem: r.platform_public_key_pem.clone(),
                    platform_certs: r.platform_certs.0.clone(),
                    base_url: r.base_url.clone(),
                    notify_base: r.notify_base.clone(),
                    order_timeout_secs: r.order_timeout_secs,
                    login_base_url: r.login_base_url.clone().unwrap_or_else(|| WECHAT_API_BASE.into()),
                    has_app_secret: r.app_secret_sealed.is_some(),
                    updated_at: Timestamp(r.updated_at),
                },
                r,
            )
        }))
    }

    /// The settings with their secrets; `NotFound` when payments are not configured.
    pub async fn pay_credentials(&self, tenant: TenantId) -> Result<PayCredentials> {
        let (settings, r) = self.pay_settings_row(tenant).await?.ok_or(StoreError::NotFound)?;
        let app_secret = match &r.app_secret_sealed {
            Some(x) => Some(self.sealer.open(&aad(tenant, "app_secret"), x)?),
            None => None,
        };
        Ok(PayCredentials {
            settings,
            merchant_key_pem: self.sealer.open(&aad(tenant, "merchant_key"), &r.merchant_key_sealed)?,
            apiv3_key: self.sealer.open(&aad(tenant, "apiv3_key"), &r.apiv3_key_sealed)?,
            app_secret,
        })
    }

    /// The mall buyer with this openid, created on first sight.
    pub async fn buyer_for_openid(&self, tenant: TenantId, openid: &str, unionid: Option<&str>) -> Result<Buyer> {
        on_write!(self, |p| sqlx::query(
            "INSERT INTO mall_buyers (tenant_id, id, openid, unionid, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, openid) DO NOTHING"
        )
        .bind(tenant.0)
        .bind(Uuid::now_v7())
        .bind(openid)
        .bind(unionid)
        .bind(self.now().0)
        .execute(p)
        .await?
        .rows_affected());
        let r: (Uuid, String, Option<String>, Option<String>) = on_write!(self, |p| sqlx::query_as(
            "SELECT id, openid, unionid, nickname FROM mall_buyers WHERE tenant_id = $1 AND openid = $2"
        )
        .bind(tenant.0)
        .bind(openid)
        .fetch_one(p)
        .await?);
        // OneID: a unionid some customer already holds makes this buyer that customer (strong
        // evidence), so their orders join the profile; a unionid first seen later still links.
        if let Some(u) = unionid.filter(|u| !u.is_empty()) {
            on_write!(self, |p| sqlx::query(
                "UPDATE mall_buyers SET unionid = $3, customer_id = (SELECT customer_id FROM customer_identities \
                 WHERE tenant_id = $1 AND kind = 'unionid' AND namespace = '' AND value = $3) \
                 WHERE tenant_id = $1 AND id = $2 AND customer_id IS NULL"
            )
            .bind(tenant.0)
            .bind(r.0)
            .bind(u)
            .execute(p)
            .await?
            .rows_affected());
        }
        Ok(Buyer { id: BuyerId(r.0), openid: r.1, unionid: r.2.or(unionid.map(str::to_string)), nickname: r.3 })
    }

    /// A new mall session; returns the bearer secret (stored only as its hash).
    pub async fn create_mall_session(&self, tenant: TenantId, buyer: BuyerId) -> Result<String> {
        let secret = random_secret();
        let now = self.now();
        on_write!(self, |p| {
            sqlx::query(
            "INSERT INTO mall_sessions (token_hash, tenant_id, buyer_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(sha256_hex(&secret))
        .bind(tenant.0)
        .bind(buyer.0)
        .bind(now.0)
        .bind(now.0 + MALL_SESSION_SECS * 1_000_000)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(secret)
    }

    /// The buyer behind a live mall session of this tenant.
    pub async fn mall_session(&self, tenant: TenantId, secret: &str) -> Result<Option<Buyer>> {
        let r: Option<(Uuid, String, Option<String>, Option<String>)> = on_read!(self, |p| sqlx::query_as(
            "SELECT b.id, b.openid, b.unionid, b.nickname FROM mall_sessions s JOIN mall_buyers b \
             ON b.tenant_id = s.tenant_id AND b.id = s.buyer_id WHERE s.token_hash = $1 AND s.tenant_id = $2 \
             AND s.expires_at > $3"
        )
        .bind(sha256_hex(secret))
        .bind(tenant.0)
        .bind(self.now().0)
        .fetch_optional(p)
        .await?);
        Ok(r.map(|r| Buyer { id: BuyerId(r.0), openid: r.1, unionid: r.2, nickname: r.3 }))
    }

    /// Claims the order's one open prepay (PAY-1) before the provider is called, so two
    /// "pay" taps cannot open two. Returns the existing one when it is still open.
    pub async fn claim_prepay(&self, tenant: TenantId, order: OrderId) -> Result<(Prepay, bool)> {
        if let Some(p) = self.open_prepay(tenant, order).await? {
            return Ok((p, false));
        }
        let o = self.order(tenant, order).await?;
        let now = self.now();
        // What is due now: the whole order, or a presale's deposit and then its balance.
        let (phase, amount, expires_at) = match (o.presale_id, o.status) {
            (None, OrderStatus::PendingPayment) => ("full", o.payable_fen, o.expires_at),
            (Some(_), OrderStatus::PendingPayment) => ("deposit", o.deposit_fen, o.expires_at),
            (Some(ps), OrderStatus::AwaitingBalance) => {
                let p = self.presale(tenant, ps).await?;
                if p.phase(now) != Phase::Balance {
                    return Err(rejected(
                        "balance_not_open",
                        None,
                        "the balance is payable only inside the presale's balance window",
                    ));
                }
                ("balance", o.payable_fen - o.paid_fen, p.windows.final_end.min(o.expires_at))
            }
            _ => return Err(rejected("order_not_payable", None, format!("this order is {}", o.status.as_str()))),
        };
        if amount < 1 {
            return Err(rejected("zero_payable", None, "an order with nothing to pay is not paid through WeChat Pay"));
        }
        let n: i64 = on_read!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM pay_prepays WHERE tenant_id = $1 AND order_id = $2"
        )
        .bind(tenant.0)
        .bind(order.0)
        .fetch_one(p)
        .await?);
        let out_trade_no = format!("{}P{}", o.no, n + 1);
        let inserted = on_write!(self, |p| {
            sqlx::query(
            "INSERT INTO pay_prepays (tenant_id, out_trade_no, order_id, status, amount_fen, created_at, expires_at, \
             updated_at, phase) VALUES ($1, $2, $3, 'open', $4, $5, $6, $5, $7)"
        )
        .bind(tenant.0)
        .bind(&out_trade_no)
        .bind(order.0)
        .bind(amount)
        .bind(now.0)
        .bind(expires_at.0)
        .bind(phase)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        });
        match inserted {
            Ok(_) => Ok((
                Prepay {
                    out_trade_no,
                    order_id: order,
                    prepay_id: None,
                    status: "open".into(),
                    amount_fen: amount,
                    expires_at,
                },
                true,
            )),
            Err(e) => match StoreError::constraint(e, "order_id") {
                StoreError::Duplicate(_) => {
                    let p = self.open_prepay(tenant, order).await?;
                    p.map(|p| (p, false))
                        .ok_or_else(|| rejected("prepay_busy", None, "payment is being prepared; try again"))
                }
                other => Err(other),
            },
        }
    }

    pub async fn set_prepay_id(&self, tenant: TenantId, out_trade_no: &str, prepay_id: &str) -> Result<()> {
        on_write!(self, |p| sqlx::query(
            "UPDATE pay_prepays SET prepay_id = $3, updated_at = $4 WHERE tenant_id = $1 AND out_trade_no = $2"
        )
        .bind(tenant.0)
        .bind(out_trade_no)
        .bind(prepay_id)
        .bind(self.now().0)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Marks a prepay closed (at the provider, or abandoned before the provider knew it).
    pub async fn close_prepay(&self, tenant: TenantId, out_trade_no: &str) -> Result<()> {
        on_write!(self, |p| sqlx::query(
            "UPDATE pay_prepays SET status = 'closed', updated_at = $3 WHERE tenant_id = $1 AND out_trade_no = $2 \
             AND status = 'open'"
        )
        .bind(tenant.0)
        .bind(out_trade_no)
        .bind(self.now().0)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Unpaid orders whose open prepay has waited `quiet_secs` without news (and was not
    /// asked about for as long): the sweep asks the provider about them (PAY-7), so a lost
    /// notification costs minutes, not the order. Asking touches the prepay.
    pub async fn quiet_prepays(&self, quiet_secs: i64, limit: i64) -> Result<Vec<(TenantId, OrderId, String)>> {
        let now = self.now().0;
        let rows: Vec<(Uuid, Uuid, String)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT p.tenant_id, p.order_id, p.out_trade_no FROM pay_prepays p JOIN orders o \
             ON o.tenant_id = p.tenant_id AND o.id = p.order_id WHERE p.status = 'open' AND p.prepay_id IS NOT NULL \
             AND p.updated_at <= $1 AND o.status IN ('pending_payment', 'awaiting_balance') AND o.expires_at > $2 ORDER BY p.updated_at LIMIT $3"
        )
        .bind(now - quiet_secs * 1_000_000)
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await?
        });
        Ok(rows.into_iter().map(|r| (TenantId(r.0), OrderId(r.1), r.2)).collect())
    }

    /// Notes that the provider was asked about a prepay.
    pub async fn touch_prepay(&self, tenant: TenantId, out_trade_no: &str) -> Result<()> {
        on_write!(self, |p| sqlx::query(
            "UPDATE pay_prepays SET updated_at = $3 WHERE tenant_id = $1 AND out_trade_no = $2"
        )
        .bind(tenant.0)
        .bind(out_trade_no)
        .bind(self.now().0)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn open_prepay(&self, tenant: TenantId, order: OrderId) -> Result<Option<Prepay>> {
        Ok(self.prepays(tenant, order).await?.into_iter().find(|p| p.status == "open"))
    }

    /// Every prepay of an order, oldest first.
    pub async fn prepays(&self, tenant: TenantId, order: OrderId) -> Result<Vec<Prepay>> {
        let rows: Vec<(String, Option<String>, String, i64, i64)> = on_read!(self, |p| sqlx::query_as(
            "SELECT out_trade_no, prepay_id, status, amount_fen, expires_at FROM pay_prepays \
             WHERE tenant_id = $1 AND order_id = $2 ORDER BY created_at"
        )
        .bind(tenant.0)
        .bind(order.0)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| Prepay {
                out_trade_no: r.0,
                order_id: order,
                prepay_id: r.1,
                status: r.2,
                amount_fen: r.3,
                expires_at: Timestamp(r.4),
            })
            .collect())
    }

    /// Applies a verified payment exactly once (PAY-3, PAY-4).
    pub async fn apply_payment(&self, tenant: TenantId, n: &PaidNotice) -> Result<PaymentResult> {
        let prepay: Option<(Uuid, i64, String, bool)> = on_read!(self, |p| sqlx::query_as(
            "SELECT p.order_id, p.amount_fen, p.phase, o.group_id IS NOT NULL FROM pay_prepays p JOIN orders o \
             ON o.tenant_id = p.tenant_id AND o.id = p.order_id WHERE p.tenant_id = $1 AND p.out_trade_no = $2"
        )
        .bind(tenant.0)
        .bind(&n.out_trade_no)
        .fetch_optional(p)
        .await?);
        let Some((order, expected, phase, grouped)) = prepay else { return Ok(PaymentResult::UnknownTrade) };
        // A presale order is paid twice: its deposit, then its balance (PS-1).
        let (event, due_from) = match phase.as_str() {
            "deposit" => (OrderEvent::DepositPaid, OrderStatus::PendingPayment),
            "balance" => (OrderEvent::PaymentSucceeded { group_buy: false }, OrderStatus::AwaitingBalance),
            _ => (OrderEvent::PaymentSucceeded { group_buy: false }, OrderStatus::PendingPayment),
        };
        let now = self.now();
        let pid = PaymentId::new();
        let result = in_tx!(self, |tx| {
            let fresh = sqlx::query(
                "INSERT INTO payments (tenant_id, id, order_id, out_trade_no, transaction_id, amount_fen, disposition, \
                 payer_openid, success_time, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9) \
                 ON CONFLICT (tenant_id, transaction_id) DO NOTHING",
            )
            .bind(tenant.0)
            .bind(pid.0)
            .bind(order)
            .bind(&n.out_trade_no)
            .bind(&n.transaction_id)
            .bind(n.amount_fen)
            .bind(&n.payer_openid)
            .bind(&n.success_time)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if fresh == 0 {
                return Ok(PaymentResult::Duplicate);
            }
            if grouped {
                lock_group_of!(tx, tenant, order);
            }
            // Takes the order's row lock (PostgreSQL) before reading its state.
            let (status, payable, group): (String, i64, Option<Uuid>) = sqlx::query_as(
                "UPDATE orders SET updated_at = updated_at WHERE tenant_id = $1 AND id = $2 \
                 RETURNING status, payable_fen, group_id",
            )
            .bind(tenant.0)
            .bind(order)
            .fetch_one(&mut *tx)
            .await?;
            let status = OrderStatus::parse(&status).unwrap_or(OrderStatus::Cancelled);
            // What this payment must be: the prepay's amount, which for a one-payment order is
            // the payable and for a presale its deposit or the rest.
            let expected = if phase == "full" { payable } else { expected };
            // A group-buy payment turns its held seat into a paid one, while the group is open
            // and before its deadline (GB-3, GB-4); `filled` when it is the N-th (GB-5).
            let (mut seat_lost, mut filled) = (false, false);
            let event = match (group, event) {
                (Some(g), OrderEvent::PaymentSucceeded { .. }) => {
                    if status == due_from && n.amount_fen == expected {
                        let taken: Option<(i64, i64)> = sqlx::query_as(
                            "UPDATE buy_groups SET paid = paid + 1 WHERE tenant_id = $1 AND id = $2 AND status = 'open' \
                             AND $3 < expires_at AND EXISTS (SELECT 1 FROM group_members m WHERE m.tenant_id = $1 \
                             AND m.order_id = $4 AND m.status = 'held') RETURNING paid, capacity",
                        )
                        .bind(tenant.0)
                        .bind(g)
                        .bind(now.0)
                        .bind(order)
                        .fetch_optional(&mut *tx)
                        .await?;
                        match taken {
                            Some((paid, capacity)) => {
                                sqlx::query(
                                    "UPDATE group_members SET status = 'paid', paid_at = $3 WHERE tenant_id = $1 \
                                     AND order_id = $2 AND status = 'held'",
                                )
                                .bind(tenant.0)
                                .bind(order)
                                .bind(now.0)
                                .execute(&mut *tx)
                                .await?;
                                filled = paid == capacity;
                            }
                            None => seat_lost = true,
                        }
                    }
                    OrderEvent::PaymentSucceeded { group_buy: true }
                }
                (_, e) => e,
            };
            let disposition;
            let result = if n.amount_fen != expected && status == due_from {
                disposition = "amount_mismatch";
                PaymentResult::AmountMismatch { expected, got: n.amount_fen }
            } else if seat_lost {
                // GB-4 (policy): the group closed or the seat was released before the money
                // came, so the payment goes back in full and the order closes; never a silent
                // move into another group.
                disposition = "late";
                let _ = cancel_from!(tx, tenant, OrderId(order), now, "group closed before payment", due_from);
                compensate!(tx, tenant, OrderId(order), now);
                let r = system_refund!(tx, tenant, order, pid.0, n.amount_fen, RefundKind::SystemLate, now);
                PaymentResult::LatePayment { refund: r }
            } else {
                match order::apply(status, event, false) {
                    Ok(Outcome::To(to)) if status == due_from => {
                        disposition = "applied";
                        let stamp = if to == OrderStatus::AwaitingBalance { "deposit_paid_at" } else { "paid_at" };
                        // A deposit's order now waits until the balance window closes (PS-2).
                        let sql = format!(
                            "UPDATE orders SET status = $3, {stamp} = $4, paid_fen = paid_fen + $5, transaction_id = $6, \
                             updated_at = $4, expires_at = CASE WHEN $3 = 'awaiting_balance' THEN COALESCE((SELECT \
                             s.final_end FROM presales s WHERE s.tenant_id = $1 AND s.id = orders.presale_id), expires_at) \
                             ELSE expires_at END WHERE tenant_id = $1 AND id = $2 AND status = $7"
                        );
                        let moved = sqlx::query(&sql)
                            .bind(tenant.0)
                            .bind(order)
                            .bind(to.as_str())
                            .bind(now.0)
                            .bind(n.amount_fen)
                            .bind(&n.transaction_id)
                            .bind(due_from.as_str())
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        if moved != 1 {
                            return Err(StoreError::Conflict("the order changed while its payment was applied".into()));
                        }
                        commit_stock!(tx, tenant, order, now);
                        sqlx::query(
                            "UPDATE user_coupons SET status = 'used', used_at = $3 WHERE tenant_id = $1 AND order_id = $2 \
                             AND status = 'locked'",
                        )
                        .bind(tenant.0)
                        .bind(order)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "UPDATE pay_prepays SET status = 'paid', updated_at = $3 WHERE tenant_id = $1 AND out_trade_no = $2",
                        )
                        .bind(tenant.0)
                        .bind(&n.out_trade_no)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await?;
                        outbox!(
                            tx,
                            tenant,
                            if to == OrderStatus::AwaitingBalance { "order.deposit_paid" } else { "order.paid" },
                            order,
                            1,
                            serde_json::json!({"order": order, "amount_fen": n.amount_fen}),
                            now
                        );
                        if let (true, Some(g)) = (filled, group) {
                            group_succeeds!(tx, tenant, g, now, 0);
                        }
                        PaymentResult::Paid { order: OrderId(order) }
                    }
                    Ok(Outcome::RefundLatePayment) => {
                        disposition = "late";
                        let r = system_refund!(tx, tenant, order, pid.0, n.amount_fen, RefundKind::SystemLate, now);
                        PaymentResult::LatePayment { refund: r }
                    }
                    // A distinct transaction id reaching here is a second payment (or a payment
                    // for a phase already behind the order); the same one stopped at the
                    // unique insert above.
                    Ok(Outcome::RefundDoublePayment | Outcome::Already | Outcome::To(_)) | Err(_) => {
                        disposition = "double";
                        let r = system_refund!(tx, tenant, order, pid.0, n.amount_fen, RefundKind::SystemDouble, now);
                        PaymentResult::DoublePayment { refund: r }
                    }
                }
            };
            sqlx::query("UPDATE payments SET disposition = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(pid.0)
                .bind(disposition)
                .execute(&mut *tx)
                .await?;
            result
        });
        match &result {
            PaymentResult::AmountMismatch { expected, got } => tracing::warn!(
                %tenant, out_trade_no = %n.out_trade_no, expected, got,
                "ALERT: payment amount differs from the order; the order stays unpaid"
            ),
            PaymentResult::LatePayment { .. } | PaymentResult::DoublePayment { .. } => {
                tracing::warn!(%tenant, out_trade_no = %n.out_trade_no, ?result, "stray payment: refunding in full")
            }
            _ => {}
        }
        Ok(result)
    }

    pub async fn payments_of(&self, tenant: TenantId, order: OrderId) -> Result<Vec<Payment>> {
        self.payments_where(tenant, "order_id", order.0).await
    }

    pub async fn payment(&self, tenant: TenantId, id: PaymentId) -> Result<Payment> {
        self.payments_where(tenant, "id", id.0).await?.pop().ok_or(StoreError::NotFound)
    }

    async fn payments_where(&self, tenant: TenantId, column: &str, id: Uuid) -> Result<Vec<Payment>> {
        let sql = format!(
            "SELECT id, order_id, out_trade_no, transaction_id, amount_fen, disposition, created_at FROM payments \
             WHERE tenant_id = $1 AND {column} = $2 ORDER BY created_at"
        );
        let rows: Vec<(Uuid, Uuid, String, String, i64, String, i64)> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|r| Payment {
                id: PaymentId(r.0),
                order_id: OrderId(r.1),
                out_trade_no: r.2,
                transaction_id: r.3,
                amount_fen: r.4,
                disposition: r.5,
                created_at: Timestamp(r.6),
            })
            .collect())
    }

    /// Logs a notification by its id; returns false when that id was seen before (§7.6).
    pub async fn record_pay_notification(
        &self,
        tenant: TenantId,
        id: &str,
        event_type: &str,
        out_trade_no: Option<&str>,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<bool> {
        let n = on_write!(self, |p| {
            sqlx::query(
            "INSERT INTO pay_notifications (tenant_id, id, event_type, out_trade_no, outcome, detail, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, id) DO NOTHING"
        )
        .bind(tenant.0)
        .bind(id)
        .bind(event_type)
        .bind(out_trade_no)
        .bind(outcome)
        .bind(detail)
        .bind(self.now().0)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// The notification log, newest first.
    pub async fn pay_notifications(&self, tenant: TenantId, limit: i64) -> Result<Vec<PayNotification>> {
        let rows: Vec<NotificationRow> = on_read!(self, |p| sqlx::query_as(
            "SELECT id, event_type, out_trade_no, outcome, detail, received_at FROM pay_notifications \
             WHERE tenant_id = $1 ORDER BY received_at DESC LIMIT $2"
        )
        .bind(tenant.0)
        .bind(limit)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| PayNotification {
                id: r.0,
                event_type: r.1,
                out_trade_no: r.2,
                outcome: r.3,
                detail: r.4,
                received_at: Timestamp(r.5),
            })
            .collect())
    }

    /// Records a refund of an order's units (REF-1): each line's next unrefunded units at their
    /// stored paid amounts, plus shipping only on a full refund before shipment (REF-4). The
    /// units are claimed on the lines at once, by conditional updates, so two refunds can
    /// never take the same unit. A customer's request waits for approval; an operator's is
    /// approved.
    pub async fn create_refund(
        &self,
        tenant: TenantId,
        order: OrderId,
        r: &NewRefund,
        by: Option<&Actor>,
    ) -> Result<Refund> {
        let o = self.order(tenant, order).await?;
        if !o.status.is_paid() {
            return Err(rejected("order_not_paid", None, "only a paid order can be refunded"));
        }
        if o.status == OrderStatus::AwaitingGroup {
            return Err(rejected(
                "group_filling",
                None,
                "the group has not filled yet: leave the group instead, which refunds the order in full",
            ));
        }
        if o.status == OrderStatus::AwaitingBalance {
            return Err(rejected(
                "presale_awaiting_balance",
                None,
                "the balance is not paid yet: cancel the order instead, and the deposit follows the presale's terms",
            ));
        }
        // A presale order has two payments (deposit, balance), oldest first; the amount each
        // can still give back excludes what live refunds already claim from it.
        let payments: Vec<(Uuid, i64, i64)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT p.id, p.amount_fen, CAST(COALESCE((SELECT SUM(r.amount_fen) FROM refunds r WHERE r.tenant_id = p.tenant_id \
             AND r.payment_id = p.id AND r.status NOT IN ('rejected', 'abnormal')), 0) AS BIGINT) FROM payments p \
             WHERE p.tenant_id = $1 AND p.order_id = $2 AND p.disposition = 'applied' ORDER BY p.created_at, p.id"
        )
        .bind(tenant.0)
        .bind(order.0)
        .fetch_all(p)
        .await?
        });
        if payments.is_empty() {
            return Err(rejected("order_not_paid", None, "this order has no applied payment"));
        }
        if r.lines.is_empty() && !r.shipping {
            return Err(rejected("nothing_to_refund", Some("lines"), "choose the items to refund"));
        }
        let mut lines = Vec::new();
        for (i, (line_no, qty)) in r.lines.iter().enumerate() {
            let field = format!("lines.{i}.qty");
            let l = o.lines.iter().find(|l| l.line_no == *line_no).ok_or(StoreError::BadReference("lines"))?;
            let fen = usize::try_from(*qty)
                .ok()
                .and_then(|k| order::refund_of_units(&l.units, l.refunded_qty as usize, k))
                .ok_or_else(|| StoreError::Rejected {
                    code: "refund_exceeds_line",
                    field: Some(field.clone()),
                    message: format!("{} has {} units left to refund", l.title, l.qty - l.refunded_qty),
                })?;
            lines.push(RefundLine { line_no: *line_no, qty: *qty, fen });
        }
        let all_units = o.lines.iter().all(|l| {
            let asked: i64 = lines.iter().filter(|x| x.line_no == l.line_no).map(|x| x.qty).sum();
            l.refunded_qty + asked == l.qty
        });
        let shipping = if r.shipping && all_units && o.shipped_at.is_none() { o.shipping_fen } else { 0 };
        if r.shipping && shipping == 0 && o.shipping_fen > 0 {
            return Err(rejected(
                "shipping_not_refundable",
                Some("shipping"),
                "shipping is refunded only with every item, before the order ships",
            ));
        }
        let amount: i64 = lines.iter().map(|l| l.fen).sum::<i64>() + shipping;
        if amount == 0 {
            return Err(rejected("nothing_to_refund", Some("lines"), "these units were paid 0 fen; nothing to refund"));
        }
        // The balance gives back first, then the deposit (each refund is against one payment).
        let parts: Vec<(Uuid, i64)> = match payments.as_slice() {
            [one] => vec![(one.0, amount)],
            [deposit, balance, ..] => {
                let (b, d) = split_refund(amount, balance.1 - balance.2, deposit.1 - deposit.2)
                    .ok_or_else(|| rejected("refund_exceeds_paid", None, "refunds cannot exceed what was paid"))?;
                [(balance.0, b), (deposit.0, d)].into_iter().filter(|x| x.1 > 0).collect()
            }
            [] => Vec::new(),
        };
        let id = RefundId::new();
        let now = self.now();
        let status = if r.kind == RefundKind::Customer { "requested" } else { "approved" };
        in_tx!(self, |tx| {
            for l in &lines {
                let n = sqlx::query(
                    "UPDATE order_lines SET refunded_qty = refunded_qty + $4, refunded_fen = refunded_fen + $5 \
                     WHERE tenant_id = $1 AND order_id = $2 AND line_no = $3 AND refunded_qty + $4 <= qty",
                )
                .bind(tenant.0)
                .bind(order.0)
                .bind(l.line_no)
                .bind(l.qty)
                .bind(l.fen)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(rejected(
                        "refund_exceeds_line",
                        Some("lines"),
                        "these units are already being refunded",
                    ));
                }
            }
            let n = sqlx::query(
                "UPDATE orders SET refunded_fen = refunded_fen + $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                 AND refunded_fen + $3 <= paid_fen",
            )
            .bind(tenant.0)
            .bind(order.0)
            .bind(amount)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(rejected("refund_exceeds_paid", None, "refunds cannot exceed what was paid"));
            }
            for (i, (payment, part)) in parts.iter().enumerate() {
                // The first part carries the claimed units; a second only its amount.
                let part_id = if i == 0 { id } else { RefundId::new() };
                let claimed = if i == 0 { lines.as_slice() } else { &[] };
                sqlx::query(
                    "INSERT INTO refunds (tenant_id, id, order_id, payment_id, out_refund_no, amount_fen, kind, reason, \
                     status, lines, created_at, updated_at, part_of) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
                )
                .bind(tenant.0)
                .bind(part_id.0)
                .bind(order.0)
                .bind(payment)
                .bind(format!("R{}", part_id.0.simple()))
                .bind(part)
                .bind(r.kind.as_str())
                .bind(&r.reason)
                .bind(status)
                .bind(Json(claimed))
                .bind(now.0)
                .bind((i > 0).then_some(id.0))
                .execute(&mut *tx)
                .await?;
            }
            if let Some(a) = by {
                audit!(
                    tx,
                    self,
                    a,
                    "refund.create",
                    "refund",
                    id,
                    None,
                    Some(serde_json::json!({"amount_fen": amount}))
                );
            }
        });
        self.refund(tenant, id).await
    }

    /// An operator's decision on a requested refund. A rejection gives the claimed units back.
    pub async fn decide_refund(
        &self,
        actor: &Actor,
        id: RefundId,
        approve: bool,
        note: Option<&str>,
    ) -> Result<Refund> {
        let tenant = actor.tenant_id;
        let r = self.refund(tenant, id).await?;
        // The parts of one refund are decided together.
        let head = r.part_of.unwrap_or(r.id);
        let sql = format!("{REFUND_SELECT} WHERE r.tenant_id = $1 AND (r.id = $2 OR r.part_of = $2) ORDER BY r.id");
        let rows: Vec<RefundRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(head.0).fetch_all(p).await?);
        let group: Vec<Refund> = rows.into_iter().map(refund_from).collect();
        let now = self.now();
        in_tx!(self, |tx| {
            for part in &group {
                let n = sqlx::query(
                    "UPDATE refunds SET status = $3, detail = COALESCE($4, detail), updated_at = $5 \
                     WHERE tenant_id = $1 AND id = $2 AND status = 'requested'",
                )
                .bind(tenant.0)
                .bind(part.id.0)
                .bind(if approve { "approved" } else { "rejected" })
                .bind(note)
                .bind(now.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(rejected("refund_wrong_state", None, format!("this refund is {}", part.status)));
                }
                if !approve {
                    unclaim_refund!(tx, tenant, part, now);
                }
            }
            audit!(tx, self, actor, "refund.decide", "refund", id, None, Some(serde_json::json!({"approve": approve})));
        });
        self.refund(tenant, id).await
    }

    pub async fn refund(&self, tenant: TenantId, id: RefundId) -> Result<Refund> {
        let sql = format!("{REFUND_SELECT} WHERE r.tenant_id = $1 AND r.id = $2");
        let row: Option<RefundRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        row.map(refund_from).ok_or(StoreError::NotFound)
    }

    pub async fn refund_by_no(&self, tenant: TenantId, out_refund_no: &str) -> Result<Refund> {
        let sql = format!("{REFUND_SELECT} WHERE r.tenant_id = $1 AND r.out_refund_no = $2");
        let row: Option<RefundRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(out_refund_no).fetch_optional(p).await?);
        row.map(refund_from).ok_or(StoreError::NotFound)
    }

    /// Refunds, newest first; `status` filters.
    pub async fn refunds(
        &self,
        tenant: TenantId,
        status: Option<&str>,
        order: Option<OrderId>,
        page: &PageRequest,
    ) -> Result<Page<Refund>> {
        let sql = format!(
            "{REFUND_SELECT} WHERE r.tenant_id = $1 AND ($2 IS NULL OR r.id < $2) AND ($3 IS NULL OR r.status = $3) \
             AND ($4 IS NULL OR r.order_id = $4) ORDER BY r.id DESC LIMIT $5"
        );
        let rows: Vec<RefundRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(page.before)
            .bind(status)
            .bind(order.map(|o| o.0))
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        Ok(Page::from_rows(rows.into_iter().map(refund_from).collect(), page, |r| r.id.0))
    }

    /// Approved refunds not yet sent to the provider, or sent and still open, across tenants
    /// (the sweep's work list).
    pub async fn open_refunds(&self, limit: i64) -> Result<Vec<(TenantId, Refund)>> {
        let sql = "SELECT r.tenant_id, r.id FROM refunds r WHERE r.status IN ('approved', 'submitted') \
                   ORDER BY r.updated_at LIMIT $1";
        let ids: Vec<(Uuid, Uuid)> = on_read!(self, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await?);
        let mut out = Vec::with_capacity(ids.len());
        for (t, id) in ids {
            out.push((TenantId(t), self.refund(TenantId(t), RefundId(id)).await?));
        }
        Ok(out)
    }

    /// The provider accepted the refund (PROCESSING): approved → submitted, once.
    pub async fn mark_refund_submitted(&self, tenant: TenantId, id: RefundId, refund_id: &str) -> Result<()> {
        on_write!(self, |p| {
            sqlx::query(
            "UPDATE refunds SET status = 'submitted', refund_id = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
             AND status = 'approved'"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(refund_id)
        .bind(self.now().0)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Notes a failed attempt to submit (kept approved, retried by the next sweep).
    pub async fn note_refund_error(&self, tenant: TenantId, id: RefundId, detail: &str) -> Result<()> {
        on_write!(self, |p| sqlx::query(
            "UPDATE refunds SET detail = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(detail)
        .bind(self.now().0)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The provider's final word on a refund (notification or query), applied once (REF-2):
    /// success restocks the units of an order that had not shipped (an explicit movement,
    /// §1.1.4); an abnormal or closed refund gives the claimed units back for another try.
    pub async fn finish_refund(
        &self,
        tenant: TenantId,
        out_refund_no: &str,
        succeeded: bool,
        refund_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<bool> {
        let r = self.refund_by_no(tenant, out_refund_no).await?;
        let o = self.order(tenant, r.order_id).await?;
        let now = self.now();
        let changed = in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE refunds SET status = $3, refund_id = COALESCE($4, refund_id), detail = COALESCE($5, detail), \
                 succeeded_at = $6, updated_at = $7 WHERE tenant_id = $1 AND id = $2 AND status IN ('approved', 'submitted')",
            )
            .bind(tenant.0)
            .bind(r.id.0)
            .bind(if succeeded { "succeeded" } else { "abnormal" })
            .bind(refund_id)
            .bind(detail)
            .bind(succeeded.then_some(now.0))
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 && r.kind.of_order() {
                if !succeeded {
                    unclaim_refund!(tx, tenant, r, now);
                } else if o.shipped_at.is_none() {
                    for l in &r.lines {
                        let sku = o.lines.iter().find(|x| x.line_no == l.line_no).map(|x| x.sku_id.0);
                        sqlx::query(
                            "UPDATE skus SET on_hand = on_hand + $3, sold = sold - $3, updated_at = $4 \
                             WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(tenant.0)
                        .bind(sku)
                        .bind(l.qty)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                if succeeded {
                    // REF-5: a full refund returns the coupon while it is still valid; a partial
                    // refund never does.
                    sqlx::query(
                        "UPDATE user_coupons SET status = 'unused', order_id = NULL, used_at = NULL WHERE tenant_id = $1 \
                         AND order_id = $2 AND status = 'used' AND valid_end > $3 AND EXISTS (SELECT 1 FROM orders o \
                         WHERE o.tenant_id = $1 AND o.id = $2 AND o.refunded_fen >= o.paid_fen)",
                    )
                    .bind(tenant.0)
                    .bind(r.order_id.0)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                    outbox!(
                        tx,
                        tenant,
                        "refund.succeeded",
                        r.id.0,
                        1,
                        serde_json::json!({"order": r.order_id, "amount_fen": r.amount_fen, "lines": r.lines}),
                        now
                    );
                }
            }
            n == 1
        });
        Ok(changed)
    }
}

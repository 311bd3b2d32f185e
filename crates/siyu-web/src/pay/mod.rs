//! WeChat Pay at the edge: the tenant's client built from its settings, prepay (PAY-1), the
//! notification endpoint (`notify`), the active query behind "check payment" (PAY-7), and the
//! sweep job that times out unpaid orders (closing the prepay first, INV-5), submits and
//! follows refunds, and moves shipped orders to received and completed.

use siyu_core::commerce::order::OrderStatus;
use siyu_core::{OrderId, TenantId};
use siyu_pay::notify::{Signer, Verifier};
use siyu_pay::{JsapiOrder, MerchantConfig, PayClient, PayError, PayParams, RefundOrder, TradeState, Transaction};
use siyu_store::commerce::payments::{PaidNotice, PayCredentials, PaymentResult};
use siyu_store::{Store, StoreError};

use crate::error::ApiError;

pub mod notify;

/// WeChat Pay's API origin.
pub const WECHATPAY_BASE_URL: &str = "https://api.mch.weixin.qq.com";
/// Kind of the sweep job.
pub const SWEEP_JOB: &str = "commerce.sweep";
/// An open prepay with no news for this long is asked about (PAY-7).
pub const QUIET_SECS: i64 = 10 * 60;
/// Shipped orders count as received after this long (确认收货 by default).
pub const AUTO_RECEIVE_SECS: i64 = 10 * 24 * 3600;
/// The after-sale window after receipt; the order completes when it closes.
pub const AFTER_SALE_SECS: i64 = 7 * 24 * 3600;

/// The notification URL of a tenant.
pub fn notify_url(notify_base: &str, tenant: TenantId) -> String {
    format!("{}/pay/notify/{tenant}", notify_base.trim_end_matches('/'))
}

/// A verifier for the tenant's platform keys (public-key mode, certificates, or both).
pub fn verifier(c: &PayCredentials) -> Result<Verifier, String> {
    let mut v = Verifier::default();
    if let Some(pem) = &c.settings.platform_public_key_pem {
        v.add_public_key_pem(c.settings.platform_key_id.as_deref(), pem).map_err(|e| e.to_string())?;
    }
    for pem in &c.settings.platform_certs {
        v.add_certificate_pem(pem).map_err(|e| e.to_string())?;
    }
    Ok(v)
}

/// The tenant's payment client.
pub fn client(store: &Store, c: &PayCredentials) -> Result<PayClient, String> {
    let cfg = MerchantConfig {
        base_url: c.settings.base_url.clone(),
        mchid: c.settings.mchid.clone(),
        appid: c.settings.appid.clone(),
        merchant_serial: c.settings.merchant_serial.clone(),
        merchant_key: Signer::from_pkcs8_pem(&c.merchant_key_pem).map_err(|e| e.to_string())?,
        apiv3_key: c.apiv3_key.clone(),
        verifier: verifier(c)?,
    };
    PayClient::new(cfg, store.clock()).map_err(|e| e.to_string())
}

/// What the buyer's device needs to pay, with the prepay it belongs to.
pub struct Prepared {
    pub out_trade_no: String,
    pub prepay_id: String,
    pub params: PayParams,
}

fn upstream(e: PayError) -> ApiError {
    ApiError::Upstream(e.to_string())
}

#[derive(Clone)]
pub struct PayGateway {
    store: Store,
}

impl PayGateway {
    pub fn new(store: Store) -> Self {
        PayGateway { store }
    }

    async fn tenant_client(&self, tenant: TenantId) -> Result<(PayClient, PayCredentials), ApiError> {
        let c = match self.store.pay_credentials(tenant).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                return Err(ApiError::Conflict {
                    code: "payments_not_configured",
                    field: None,
                    message: "WeChat Pay is not set up for this brand yet".into(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let client = client(&self.store, &c).map_err(|e| ApiError::Internal(format!("WeChat Pay settings: {e}")))?;
        Ok((client, c))
    }

    /// Opens (or returns) the order's prepay and signs the device's payment parameters.
    pub async fn prepay(&self, tenant: TenantId, order: OrderId, openid: &str) -> Result<Prepared, ApiError> {
        let (client, c) = self.tenant_client(tenant).await?;
        let (prepay, fresh) = self.store.claim_prepay(tenant, order).await?;
        let prepay_id = match (fresh, prepay.prepay_id) {
            (false, Some(id)) => id,
            (false, None) => {
                return Err(ApiError::Conflict {
                    code: "prepay_busy",
                    field: None,
                    message: "payment is being prepared; try again in a moment".into(),
                })
            }
            (true, _) => {
                let o = self.store.order(tenant, order).await?;
                let description: String = o
                    .lines
                    .first()
                    .map(|l| {
                        if o.lines.len() > 1 {
                            format!("{} 等{}件", l.title, o.lines.len())
                        } else {
                            l.title.clone()
                        }
                    })
                    .unwrap_or_else(|| o.no.clone())
                    .chars()
                    .take(120)
                    .collect();
                let req = JsapiOrder {
                    description,
                    out_trade_no: prepay.out_trade_no.clone(),
                    time_expire: Some(prepay.expires_at),
                    attach: None,
                    notify_url: notify_url(&c.settings.notify_base, tenant),
                    total_fen: prepay.amount_fen,
                    openid: openid.to_string(),
                };
                match client.jsapi_prepay(&req).await {
                    Ok(id) => {
                        self.store.set_prepay_id(tenant, &prepay.out_trade_no, &id).await?;
                        id
                    }
                    Err(e) => {
                        // The provider may or may not know this out_trade_no; closing it
                        // locally makes the next attempt use a fresh one (PAY-1).
                        let _ = client.close_order(&prepay.out_trade_no).await;
                        self.store.close_prepay(tenant, &prepay.out_trade_no).await?;
                        return Err(upstream(e));
                    }
                }
            }
        };
        let params = client.jsapi_pay_params(&prepay_id);
        Ok(Prepared { out_trade_no: prepay.out_trade_no, prepay_id, params })
    }

    /// Applies a transaction the provider reports as paid, after PAY-2's checks.
    pub async fn apply_transaction(
        &self,
        tenant: TenantId,
        c: &PayCredentials,
        t: &Transaction,
    ) -> Result<PaymentResult, StoreError> {
        if t.mchid != c.settings.mchid || t.appid != c.settings.appid {
            tracing::warn!(%tenant, out_trade_no = %t.out_trade_no, "ALERT: payment for another merchant or app; ignored");
            return Ok(PaymentResult::UnknownTrade);
        }
        let notice = PaidNotice {
            out_trade_no: t.out_trade_no.clone(),
            transaction_id: t.transaction_id.clone().unwrap_or_default(),
            amount_fen: t.amount.total,
            payer_openid: t.payer.as_ref().map(|p| p.openid.clone()),
            success_time: t.success_time.clone(),
        };
        self.store.apply_payment(tenant, &notice).await
    }

    /// Asks the provider about each open prepay of the order and applies a payment it reports
    /// (PAY-7). Returns the order's status afterwards.
    pub async fn check_payment(&self, tenant: TenantId, order: OrderId) -> Result<OrderStatus, ApiError> {
        let (client, c) = self.tenant_client(tenant).await?;
        for p in self.store.prepays(tenant, order).await? {
            if p.status != "open" || p.prepay_id.is_none() {
                continue;
            }
            match client.query_order(&p.out_trade_no).await {
                Ok(t) if matches!(t.trade_state, TradeState::Success | TradeState::Refund) => {
                    self.apply_transaction(tenant, &c, &t).await?;
                }
                Ok(_) => {}
                Err(e) if e.is("ORDER_NOT_EXIST") => {}
                Err(e) => return Err(upstream(e)),
            }
        }
        Ok(self.store.order(tenant, order).await?.status)
    }

    /// Closes a prepay at the provider, then here. A prepay the provider reports paid is
    /// applied instead, and the caller hears that the order is paid.
    pub async fn close_at_provider(&self, tenant: TenantId, out_trade_no: &str) -> Result<(), ApiError> {
        let (client, c) = self.tenant_client(tenant).await?;
        match client.close_order(out_trade_no).await {
            Ok(()) => {}
            Err(e) if e.is("ORDER_NOT_EXIST") || e.is("ORDER_CLOSED") => {}
            Err(e) if e.is("ORDERPAID") => {
                let t = client.query_order(out_trade_no).await.map_err(upstream)?;
                self.apply_transaction(tenant, &c, &t).await?;
                return Err(ApiError::Conflict {
                    code: "order_not_cancellable",
                    field: None,
                    message: "this order has just been paid; ask for a refund instead".into(),
                });
            }
            Err(e) => return Err(upstream(e)),
        }
        self.store.close_prepay(tenant, out_trade_no).await?;
        Ok(())
    }

    /// Times out one unpaid order (INV-5): each open prepay is queried and closed at the
    /// provider first; a payment found on the way is applied instead of cancelling.
    pub async fn time_out(&self, tenant: TenantId, order: OrderId) -> Result<(), ApiError> {
        let prepays = self.store.prepays(tenant, order).await?;
        let open: Vec<_> = prepays.into_iter().filter(|p| p.status == "open").collect();
        if !open.is_empty() {
            let (client, c) = self.tenant_client(tenant).await?;
            for p in open {
                if p.prepay_id.is_some() {
                    match client.query_order(&p.out_trade_no).await {
                        Ok(t) if matches!(t.trade_state, TradeState::Success | TradeState::Refund) => {
                            self.apply_transaction(tenant, &c, &t).await?;
                            return Ok(());
                        }
                        Ok(_) | Err(_) => {}
                    }
                    match client.close_order(&p.out_trade_no).await {
                        Ok(()) => {}
                        Err(e) if e.is("ORDERPAID") => {
                            let t = client.query_order(&p.out_trade_no).await.map_err(upstream)?;
                            self.apply_transaction(tenant, &c, &t).await?;
                            return Ok(());
                        }
                        Err(e) if e.is("ORDER_NOT_EXIST") || e.is("ORDER_CLOSED") => {}
                        // Unreachable provider: keep the order for the next sweep rather than
                        // cancel one that may have been paid meanwhile.
                        Err(e) => return Err(upstream(e)),
                    }
                }
                self.store.close_prepay(tenant, &p.out_trade_no).await?;
            }
        }
        match self.store.cancel_order(tenant, order, "timeout", None).await {
            Ok(_) => Ok(()),
            Err(StoreError::Rejected { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends approved refunds to the provider and follows submitted ones.
    pub async fn push_refunds(&self, limit: i64) -> Result<usize, ApiError> {
        let mut moved = 0;
        for (tenant, r) in self.store.open_refunds(limit).await? {
            let (client, c) = match self.tenant_client(tenant).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(%tenant, error = ?e, "refunds waiting: payments not usable");
                    continue;
                }
            };
            if r.status == "approved" {
                let p = self.store.payment(tenant, r.payment_id).await?;
                let req = RefundOrder {
                    out_trade_no: p.out_trade_no.clone(),
                    transaction_id: (p.disposition != "applied").then(|| p.transaction_id.clone()),
                    out_refund_no: r.out_refund_no.clone(),
                    reason: r.reason.clone(),
                    notify_url: notify_url(&c.settings.notify_base, tenant),
                    refund_fen: r.amount_fen,
                    total_fen: p.amount_fen,
                };
                match client.refund(&req).await {
                    Ok(info) => {
                        self.store.mark_refund_submitted(tenant, r.id, &info.refund_id).await?;
                        moved += 1;
                    }
                    Err(e) => {
                        tracing::warn!(%tenant, refund = %r.out_refund_no, error = %e, "refund not accepted yet");
                        self.store.note_refund_error(tenant, r.id, &e.to_string()).await?;
                    }
                }
            } else {
                match client.query_refund(&r.out_refund_no).await {
                    Ok(info) => {
                        let ok = info.status == siyu_pay::RefundStatus::Success;
                        let done = ok
                            || matches!(info.status, siyu_pay::RefundStatus::Abnormal | siyu_pay::RefundStatus::Closed);
                        if done
                            && self
                                .store
                                .finish_refund(
                                    tenant,
                                    &r.out_refund_no,
                                    ok,
                                    Some(&info.refund_id),
                                    Some(info.status.as_str()),
                                )
                                .await?
                        {
                            moved += 1;
                        }
                    }
                    Err(e) => tracing::warn!(%tenant, refund = %r.out_refund_no, error = %e, "refund query failed"),
                }
            }
        }
        Ok(moved)
    }

    /// One pass of the sweep. Every step is conditional, so overlapping sweeps (several
    /// processes) and user actions cannot apply anything twice.
    pub async fn sweep(&self) -> Result<SweepReport, ApiError> {
        let mut rep = SweepReport::default();
        for (tenant, order) in self.store.due_unpaid_orders(200).await? {
            match self.time_out(tenant, order).await {
                Ok(()) => rep.timed_out += 1,
                Err(e) => tracing::warn!(%tenant, %order, error = ?e, "order timeout deferred"),
            }
        }
        for (tenant, order, no) in self.store.quiet_prepays(QUIET_SECS, 200).await? {
            self.store.touch_prepay(tenant, &no).await?;
            match self.check_payment(tenant, order).await {
                Ok(OrderStatus::PendingPayment) => {}
                Ok(_) => rep.found_paid += 1,
                Err(e) => tracing::warn!(%tenant, %order, error = ?e, "payment query deferred"),
            }
        }
        // Groups past their deadline settle before refunds are pushed, so a failed group's
        // refunds leave in the same pass.
        rep.groups_settled = self.store.expire_due_groups().await?;
        rep.refunds = self.push_refunds(200).await?;
        rep.sales_ended = self.store.end_due_flash_sales().await?;
        for (tenant, order, event) in self.store.due_order_steps(AUTO_RECEIVE_SECS, AFTER_SALE_SECS, 200).await? {
            if self.store.advance_order(tenant, order, event, None, None).await.is_ok() {
                rep.advanced += 1;
            }
        }
        Ok(rep)
    }
}

/// The reconciliation job's kind: hourly, it reconciles yesterday's bill once it exists.
pub const RECONCILE_JOB: &str = "commerce.reconcile";
/// WeChat Pay makes the previous Beijing day's bill after 10:00; siyu asks from 10:30.
const BILL_READY_SECS: i64 = 10 * 3600 + 30 * 60;

impl PayGateway {
    /// Fetches one Beijing day's trade bill and reconciles it (PAY-7). `force` runs again a
    /// date already reconciled; otherwise a date runs once (a failed run after an hour).
    /// `None` when another run holds the date.
    pub async fn reconcile(
        &self,
        tenant: TenantId,
        bill_date: &str,
        force: bool,
    ) -> Result<Option<siyu_store::commerce::reconcile::Reconciliation>, ApiError> {
        let (client, _) = self.tenant_client(tenant).await?;
        if !self.store.claim_reconciliation(tenant, bill_date, force).await? {
            return Ok(None);
        }
        let bill = match client
            .trade_bill(bill_date)
            .await
            .map_err(|e| e.to_string())
            .and_then(|text| siyu_pay::bill::parse(&text).map_err(|e| format!("the bill could not be read: {e}")))
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%tenant, bill_date, error = %e, "ALERT: the WeChat Pay bill could not be reconciled");
                self.store.fail_reconciliation(tenant, bill_date, &e).await?;
                return Err(ApiError::Upstream(e));
            }
        };
        let lines: Vec<_> = bill
            .into_iter()
            .map(|l| siyu_store::commerce::reconcile::ProviderLine {
                refund: l.kind == siyu_pay::bill::BillKind::Refund,
                amount_fen: if l.kind == siyu_pay::bill::BillKind::Refund { l.refund_fen } else { l.amount_fen },
                transaction_id: l.transaction_id,
                out_trade_no: l.out_trade_no,
                out_refund_no: l.out_refund_no,
            })
            .collect();
        Ok(Some(self.store.reconcile(tenant, bill_date, &lines).await?))
    }

    /// Reconciles yesterday's bill (Beijing day) of every tenant with payments, once it is
    /// due. Returns how many ran.
    pub async fn reconcile_due(&self) -> Result<usize, ApiError> {
        let now = self.store.now();
        let local = now.unix_secs() + 8 * 3600;
        if local.rem_euclid(86_400) < BILL_READY_SECS {
            return Ok(0);
        }
        let yesterday = siyu_core::Timestamp::from_unix_secs(now.unix_secs() - 86_400).to_rfc3339(8)[..10].to_string();
        let mut ran = 0;
        for (tenant, _) in self.store.pay_tenants().await? {
            match self.reconcile(tenant, &yesterday, false).await {
                Ok(Some(_)) => ran += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(%tenant, error = ?e, "reconciliation deferred"),
            }
        }
        Ok(ran)
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub timed_out: usize,
    /// Orders found paid by asking, whose notification had not arrived.
    pub found_paid: usize,
    pub refunds: usize,
    pub advanced: usize,
    /// Flash sales whose window closed, their unsold units back on the shelf.
    pub sales_ended: usize,
    /// Group-buy groups settled at their deadline (succeeded virtually or failed).
    pub groups_settled: usize,
}

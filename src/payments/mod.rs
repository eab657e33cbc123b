//! Payment providers. Every provider ends in the store's one idempotent operation,
//! [`crate::store::orders::apply_payment`], keyed by `(provider, external id)`: duplicates,
//! late payments, wrong amounts and second payments are decided there, in one transaction.
//!
//! - **Dev**: `/pay/dev/{order}?t=<link token>`, a page with a Pay button; by default only
//!   in a local demo (no real provider, no bot token, no public URL), else only with
//!   `payments.dev_payments = true` (404 otherwise).
//! - **Crypto Pay**: a fiat invoice per order (created when the customer opens the payment
//!   link, reused after), a signed webhook, and a reconciliation loop that asks
//!   `getInvoices` for invoices of unpaid orders — a lost webhook still completes the order.
//! - **Balance**: [`crate::store::orders::pay_from_balance`], offered by the consultant.
//!
//! Customers get one link per order, `/pay/{order}?t=<token>` (the token is an HMAC of the
//! order id, so order numbers cannot be enumerated), listing the enabled ways to pay.

pub mod cryptopay;
pub mod stars;

use crate::config::{Config, Secret};
use crate::domain::{Currency, Order, OrderId, OrderStatus, PaymentOutcome, UnmatchedPayment};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::ledger::TopupResult;
use crate::store::orders::{OrderFilter, Payment, PaymentResult};
use crate::store::unmatched::{UnmatchedResult, record_unmatched};
use cryptopay::{CryptoPay, Invoice};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The payment side of the shop. Cheap to clone.
#[derive(Clone)]
pub struct Payments {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    base_url: RwLock<String>,
    link_key: Vec<u8>,
    cryptopay: Option<CryptoPay>,
    dev: bool,
    invoice_ttl_secs: u64,
    shop_name: String,
    stars_per_unit: f64,
}

/// The Crypto Pay invoice of an order, remembered so a second click reuses it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct InvoiceRef {
    invoice_id: i64,
    url: String,
    amount: i64,
    currency: Currency,
}

/// What a paid invoice did.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Applied {
    Order(Box<PaymentResult>),
    Topup(TopupResult),
    /// Paid, but not applicable to any order or balance: recorded for the owner.
    Unmatched(UnmatchedResult),
}

impl Applied {
    pub fn duplicate(&self) -> bool {
        match self {
            Applied::Order(r) => r.duplicate,
            Applied::Topup(r) => r.duplicate,
            Applied::Unmatched(r) => r.duplicate,
        }
    }
}

/// The provider name of Crypto Pay payments.
pub const CRYPTOPAY: &str = "cryptopay";

/// Recent Crypto Pay top-up invoices (reconciliation looks at those of the last two days).
const TOPUP_INVOICES: &str = "cryptopay.topups";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct TopupInvoice {
    invoice_id: i64,
    at: i64,
}

fn invoice_key(order: OrderId) -> String {
    format!("cryptopay.order.{order}")
}

impl Payments {
    pub fn new(cfg: &Config, store: Store, admin_token: &Secret) -> Result<Payments> {
        let p = &cfg.payments;
        let cryptopay = if p.cryptopay_token.is_empty() {
            None
        } else {
            Some(CryptoPay::new(&p.cryptopay_api_url, p.cryptopay_token.clone(), &p.cryptopay_assets)?)
        };
        // Stars are a real provider too: a Stars-only shop must not also let anyone mark an
        // order paid on the dev page.
        let stars = p.stars_per_unit > 0.0 && cfg.telegram().is_some();
        // A shop that faces the world (a bot or a public URL) never gives goods away by
        // default: the dev provider needs `payments.dev_payments = true` there.
        let public = cfg.telegram().is_some() || cfg.public_url.is_some();
        let dev = p.dev_payments.unwrap_or(cryptopay.is_none() && !stars && !public);
        // Link tokens are keyed by a value derived from the admin token: stable across
        // restarts, unknown to customers.
        let mut mac = Hmac::<Sha256>::new_from_slice(admin_token.expose().as_bytes())
            .map_err(|e| Error::Internal(format!("link key: {e}")))?;
        mac.update(b"lavka payment links v1");
        let base = cfg
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", cfg.listen.replace("0.0.0.0", "127.0.0.1")));
        Ok(Payments {
            inner: Arc::new(Inner {
                store,
                base_url: RwLock::new(base.trim_end_matches('/').to_string()),
                link_key: mac.finalize().into_bytes().to_vec(),
                cryptopay,
                dev,
                invoice_ttl_secs: cfg.reservation_ttl_secs,
                shop_name: cfg.shop_name.clone(),
                stars_per_unit: p.stars_per_unit,
            }),
        })
    }

    /// Sets the base of payment links once the server knows its address (no `public_url`).
    pub fn set_base_url(&self, url: &str) {
        if let Ok(mut b) = self.inner.base_url.write() {
            *b = url.trim_end_matches('/').to_string();
        }
    }

    pub fn dev_enabled(&self) -> bool {
        self.inner.dev
    }

    pub fn cryptopay(&self) -> Option<&CryptoPay> {
        self.inner.cryptopay.as_ref()
    }

    pub fn shop_name(&self) -> &str {
        &self.inner.shop_name
    }

    /// Telegram Stars are on (they also need the bot).
    pub fn stars_enabled(&self) -> bool {
        self.inner.stars_per_unit > 0.0
    }

    /// An amount of the shop currency in whole Stars (rounded up, at least 1); `None` when
    /// Stars are off.
    pub fn stars_for(&self, amount_minor: i64, currency: Currency) -> Option<u32> {
        if !self.stars_enabled() || amount_minor <= 0 {
            return None;
        }
        let major = amount_minor as f64 / 10f64.powi(currency.minor_digits() as i32);
        let stars = (major * self.inner.stars_per_unit).ceil();
        (stars >= 1.0 && stars <= u32::MAX as f64).then_some(stars as u32)
    }

    /// Whether any way to pay by link is enabled.
    pub fn any(&self) -> bool {
        self.inner.dev || self.inner.cryptopay.is_some()
    }

    pub fn token(&self, order: OrderId) -> String {
        self.token_of(&format!("pay:{order}"))
    }

    fn token_of(&self, what: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.inner.link_key).expect("HMAC takes any key");
        mac.update(what.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }

    /// Constant-time check of a link token.
    pub fn check_token(&self, order: OrderId, token: &str) -> bool {
        same(&self.token(order), token)
    }

    /// The customer's payment page for an order.
    pub fn pay_url(&self, order: OrderId) -> String {
        let base = self.inner.base_url.read().map(|b| b.clone()).unwrap_or_default();
        format!("{base}/pay/{order}?t={}", self.token(order))
    }

    /// The Crypto Pay invoice URL of an unpaid order, creating the invoice on first use.
    pub async fn cryptopay_url(&self, order: &Order) -> Result<String> {
        let cp = self.cryptopay().ok_or_else(|| Error::not_found("Crypto Pay payments"))?;
        if !order.status.is_pending_payment() {
            return Err(Error::conflict(format!("order {} is not awaiting payment", order.id)));
        }
        if let Some(r) = self.inner.store.meta::<InvoiceRef>(&invoice_key(order.id)).await?
            && r.amount == order.amount
            && r.currency == order.currency
        {
            return Ok(r.url);
        }
        let amount = order.currency.format_minor(order.amount);
        let ttl = order
            .expires_at
            .map(|e| ((e - self.inner.store.now()) / 1000).max(60) as u64)
            .unwrap_or(self.inner.invoice_ttl_secs);
        let desc = format!("{} — #{} {}", self.inner.shop_name, order.id, order.title);
        let inv =
            cp.create_invoice(&format!("order:{}", order.id), order.currency, &amount, &desc, ttl).await?;
        let url =
            inv.url().ok_or_else(|| Error::Internal("Crypto Pay invoice without a URL".into()))?.to_string();
        let r = InvoiceRef {
            invoice_id: inv.invoice_id,
            url: url.clone(),
            amount: order.amount,
            currency: order.currency,
        };
        let key = invoice_key(order.id);
        self.inner.store.write(move |t| crate::store::conversations::put_meta(t, &key, &r)).await?;
        metrics::counter!("lavka_payment_invoices_total", "provider" => "cryptopay").increment(1);
        Ok(url)
    }

    /// Applies a paid Crypto Pay invoice (webhook or reconciliation): an order's payment or a
    /// balance top-up. Idempotent. A paid invoice that cannot be applied — it names no order
    /// of this shop, its order does not exist, its amount or currency cannot be read, or it
    /// does not match its order and the money cannot go to the balance — is recorded as
    /// unmatched and the admins are alerted: the money was taken, so it is never refused.
    /// `raw` is the invoice as received (kept with an unmatched record).
    pub async fn apply_cryptopay(&self, inv: &Invoice, raw: &Value) -> Result<Applied> {
        if inv.status != "paid" {
            return Err(Error::bad(format!("invoice {} is {}, not paid", inv.invoice_id, inv.status)));
        }
        let unmatched = |reason: &str, detail: String, order_id: Option<OrderId>| UnmatchedPayment {
            provider: CRYPTOPAY.into(),
            external_id: inv.invoice_id.to_string(),
            reason: reason.into(),
            detail,
            amount: inv.amount.clone(),
            currency: inv.currency_code().unwrap_or_default().to_string(),
            order_id,
            user_id: inv.topup_user(),
            payload: inv.payload.clone(),
            raw: raw.clone(),
            at: 0,
        };
        let (amount, currency) = match inv.amount_minor() {
            Ok(v) => v,
            Err(e) => {
                let reason = if inv.currency().is_err() { "unknown_currency" } else { "bad_amount" };
                return self.unmatched(unmatched(reason, e.to_string(), inv.order_id())).await;
            }
        };
        let pay =
            Payment { provider: CRYPTOPAY.into(), external_id: inv.invoice_id.to_string(), amount, currency };
        if let Err(e) = pay.validate() {
            return self.unmatched(unmatched("bad_amount", e.to_string(), inv.order_id())).await;
        }
        if let Some(user) = inv.topup_user() {
            return match self.topup(user, pay).await {
                Ok(r) => Ok(Applied::Topup(r)),
                Err(e) if e.is_rejection() => {
                    self.unmatched(unmatched("topup_refused", e.to_string(), None)).await
                }
                Err(e) => Err(e),
            };
        }
        let Some(order_id) = inv.order_id() else {
            let detail = "the invoice names no order or top-up of this shop".to_string();
            return self.unmatched(unmatched("unknown_payload", detail, None)).await;
        };
        let missing = unmatched("unknown_order", format!("order #{order_id} does not exist"), Some(order_id));
        let held = unmatched("mismatch", String::new(), Some(order_id));
        let refused = |e: &Error| unmatched("refused", e.to_string(), Some(order_id));
        let applied = self
            .inner
            .store
            .write(move |t| {
                match crate::store::orders::order_in(t, order_id) {
                    Ok(_) => {}
                    Err(Error::NotFound(_)) => {
                        return Ok(Applied::Unmatched(record_unmatched(t, missing.clone(), true)?));
                    }
                    Err(e) => return Err(e),
                }
                let r = crate::store::orders::apply_payment(t, order_id, &pay)?;
                if r.outcome == PaymentOutcome::Mismatch && r.balance.is_none() && !r.duplicate {
                    // Money in another currency than the order's is held: the owner's list of
                    // what to resolve shows it (apply_payment has alerted them already).
                    let o = &r.order;
                    let detail = format!(
                        "paid {} {} for order #{} of {} {}",
                        pay.currency.format_minor(pay.amount),
                        pay.currency,
                        o.id,
                        o.currency.format_minor(o.amount),
                        o.currency
                    );
                    let u = UnmatchedPayment { user_id: Some(o.user_id), detail, ..held.clone() };
                    record_unmatched(t, u, false)?;
                }
                Ok(Applied::Order(Box::new(r)))
            })
            .await;
        let r = match applied {
            Ok(r) => r,
            // The store refused it whole (nothing was written): still the money is kept.
            Err(e) if e.is_rejection() => return self.unmatched(refused(&e)).await,
            Err(e) => return Err(e),
        };
        match &r {
            Applied::Order(p) => count(CRYPTOPAY, p),
            Applied::Unmatched(u) => count_unmatched(u),
            Applied::Topup(_) => {}
        }
        Ok(r)
    }

    /// A signed `invoice_paid` update whose invoice cannot be read at all: kept by the
    /// invoice id it names (else by a hash of the body) and alerted, like any unmatched one.
    pub async fn cryptopay_unreadable(&self, raw: &Value, body: &[u8], detail: String) -> Result<Applied> {
        let id = match &raw["invoice_id"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) if !s.is_empty() && s.len() <= 64 => s.clone(),
            _ => format!("body-sha256:{}", &hex::encode(sha2::Sha256::digest(body))[..32]),
        };
        let text = |k: &str| match &raw[k] {
            Value::String(s) => s.chars().take(64).collect(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let currency = if text("fiat").is_empty() { text("asset") } else { text("fiat") };
        self.unmatched(UnmatchedPayment {
            provider: CRYPTOPAY.into(),
            external_id: id,
            reason: "malformed".into(),
            detail,
            amount: text("amount"),
            currency,
            order_id: None,
            user_id: None,
            payload: raw["payload"].as_str().map(|p| p.chars().take(4096).collect()),
            raw: raw.clone(),
            at: 0,
        })
        .await
    }

    /// Records an unmatched payment (once) and alerts the admins.
    async fn unmatched(&self, u: UnmatchedPayment) -> Result<Applied> {
        let r = self.inner.store.write(move |t| record_unmatched(t, u.clone(), true)).await?;
        count_unmatched(&r);
        Ok(Applied::Unmatched(r))
    }

    /// Credits a paid top-up (once per payment).
    pub async fn topup(&self, user: i64, pay: Payment) -> Result<TopupResult> {
        let provider = pay.provider.clone();
        let r = self.inner.store.write(move |t| crate::store::ledger::apply_topup(t, user, &pay)).await?;
        let outcome = if r.duplicate { "duplicate" } else { "applied" };
        metrics::counter!("lavka_topups_total", "provider" => provider, "outcome" => outcome).increment(1);
        Ok(r)
    }

    /// The token of a top-up link (user, amount and a one-off nonce).
    fn topup_token(&self, user: i64, amount: i64, nonce: &str) -> String {
        self.token_of(&format!("topup:{user}:{amount}:{nonce}"))
    }

    pub fn check_topup_token(&self, user: i64, amount: i64, nonce: &str, token: &str) -> bool {
        same(&self.topup_token(user, amount, nonce), token)
    }

    /// A page where `user` tops up the balance by `amount` (minor units) with the enabled
    /// link providers. Each link pays once (its nonce is the payment's identity).
    pub fn topup_url(&self, user: i64, amount: i64) -> String {
        let nonce = format!("{:016x}", fastrand::u64(..));
        let base = self.inner.base_url.read().map(|b| b.clone()).unwrap_or_default();
        format!("{base}/pay/topup/{user}/{amount}/{nonce}?t={}", self.topup_token(user, amount, &nonce))
    }

    /// The Crypto Pay invoice URL of a top-up link (created once per nonce).
    pub async fn cryptopay_topup_url(
        &self,
        user: i64,
        amount: i64,
        nonce: &str,
        currency: Currency,
    ) -> Result<String> {
        let cp = self.cryptopay().ok_or_else(|| Error::not_found("Crypto Pay payments"))?;
        let key = format!("cryptopay.topup.{user}.{nonce}");
        if let Some(r) = self.inner.store.meta::<InvoiceRef>(&key).await? {
            return Ok(r.url);
        }
        let desc = format!("{} — top-up", self.inner.shop_name);
        let payload = format!("topup:{user}:{nonce}");
        let major = currency.format_minor(amount);
        let inv = cp.create_invoice(&payload, currency, &major, &desc, 86_400).await?;
        let url =
            inv.url().ok_or_else(|| Error::Internal("Crypto Pay invoice without a URL".into()))?.to_string();
        let r = InvoiceRef { invoice_id: inv.invoice_id, url: url.clone(), amount, currency };
        let recent = TopupInvoice { invoice_id: inv.invoice_id, at: self.inner.store.now() };
        self.inner
            .store
            .write(move |t| {
                crate::store::conversations::put_meta(t, &key, &r)?;
                let mut list: Vec<TopupInvoice> =
                    crate::store::conversations::get_meta(t, TOPUP_INVOICES)?.unwrap_or_default();
                list.push(recent.clone());
                if list.len() > 500 {
                    list.drain(..list.len() - 500);
                }
                crate::store::conversations::put_meta(t, TOPUP_INVOICES, &list)
            })
            .await?;
        Ok(url)
    }

    /// The dev provider's top-up (demo mode only): credits once per link.
    pub async fn pay_dev_topup(
        &self,
        user: i64,
        amount: i64,
        nonce: &str,
        currency: Currency,
    ) -> Result<TopupResult> {
        if !self.inner.dev {
            return Err(Error::not_found("dev payments"));
        }
        let pay = Payment {
            provider: "dev".into(),
            external_id: format!("topup:{user}:{nonce}"),
            amount,
            currency,
        };
        self.topup(user, pay).await
    }

    /// The dev provider: pays the order's exact amount.
    pub async fn pay_dev(&self, order_id: OrderId) -> Result<PaymentResult> {
        if !self.inner.dev {
            return Err(Error::not_found("dev payments"));
        }
        let o = self.inner.store.order(order_id).await?;
        let pay = Payment {
            provider: "dev".into(),
            external_id: format!("dev:{order_id}"),
            amount: o.amount,
            currency: o.currency,
        };
        self.apply(order_id, pay).await
    }

    /// Applies a received payment of any provider (the store decides its outcome) and
    /// counts it.
    pub async fn apply(&self, order_id: OrderId, pay: Payment) -> Result<PaymentResult> {
        let provider = pay.provider.clone();
        let r =
            self.inner.store.write(move |t| crate::store::orders::apply_payment(t, order_id, &pay)).await?;
        count(&provider, &r);
        Ok(r)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Asks Crypto Pay about the invoices of recent unpaid (or lapsed) orders and applies the
    /// paid ones. Returns how many payments were newly applied.
    pub async fn reconcile(&self) -> Result<usize> {
        let Some(cp) = self.cryptopay() else { return Ok(0) };
        let mut refs: Vec<(OrderId, i64)> = Vec::new();
        for status in [OrderStatus::Reserved, OrderStatus::AwaitingPayment, OrderStatus::Expired] {
            let orders = self
                .inner
                .store
                .orders(OrderFilter { status: Some(status), limit: Some(500), ..OrderFilter::default() })
                .await?;
            for o in orders {
                if let Some(r) = self.inner.store.meta::<InvoiceRef>(&invoice_key(o.id)).await? {
                    refs.push((o.id, r.invoice_id));
                }
            }
        }
        let since = self.inner.store.now() - 2 * 86_400_000;
        let topups: Vec<TopupInvoice> = self.inner.store.meta(TOPUP_INVOICES).await?.unwrap_or_default();
        let topup_ids: Vec<i64> = topups.iter().filter(|t| t.at >= since).map(|t| t.invoice_id).collect();
        if refs.is_empty() && topup_ids.is_empty() {
            return Ok(0);
        }
        let mut ids: Vec<i64> = refs.iter().map(|r| r.1).collect();
        ids.extend(&topup_ids);
        let mut applied = 0;
        for (inv, raw) in cp.paid_invoices(&ids).await? {
            let ours = refs.iter().any(|(o, i)| *i == inv.invoice_id && inv.order_id() == Some(*o))
                || (topup_ids.contains(&inv.invoice_id) && inv.topup_user().is_some());
            if !ours {
                continue;
            }
            match self.apply_cryptopay(&inv, &raw).await {
                Ok(Applied::Unmatched(u)) if !u.duplicate => {
                    tracing::warn!(invoice = inv.invoice_id, reason = %u.unmatched.reason, "reconciliation found a paid invoice it could not apply; recorded as unmatched");
                }
                Ok(r) if !r.duplicate() => {
                    applied += 1;
                    tracing::info!(
                        invoice = inv.invoice_id,
                        "reconciliation applied a payment whose webhook did not arrive"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(invoice = inv.invoice_id, error = %e, "reconciliation could not apply an invoice")
                }
            }
        }
        metrics::counter!("lavka_payment_reconciled_total").increment(applied as u64);
        Ok(applied)
    }

    /// Runs [`Payments::reconcile`] every `every` until `cancel` fires (when Crypto Pay is
    /// configured). Its state lives at the provider and in the store, so a crash loses
    /// nothing: the next round picks up where this one stopped.
    pub fn spawn_reconciler(&self, tracker: &TaskTracker, cancel: CancellationToken, every: Duration) {
        if self.cryptopay().is_none() || every.is_zero() {
            return;
        }
        let p = self.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = p.reconcile().await {
                    metrics::counter!("lavka_payment_reconcile_failures_total").increment(1);
                    tracing::warn!(error = %e, "payment reconciliation failed; retrying next round");
                }
            }
        });
    }
}

/// Counts a payment the store applied: one set of labels for every provider.
pub fn count(provider: &str, r: &PaymentResult) {
    let outcome = match (r.duplicate, &r.outcome) {
        (true, _) => "duplicate",
        (false, crate::domain::PaymentOutcome::Applied) => "applied",
        (false, crate::domain::PaymentOutcome::CreditedToBalance) => "credited_to_balance",
        (false, crate::domain::PaymentOutcome::Mismatch) => "mismatch",
    };
    metrics::counter!("lavka_payments_total", "provider" => provider.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Counts a newly recorded unmatched payment.
fn count_unmatched(r: &UnmatchedResult) {
    if !r.duplicate {
        let u = &r.unmatched;
        metrics::counter!("lavka_payments_unmatched_total", "provider" => u.provider.clone(), "reason" => u.reason.clone())
            .increment(1);
    }
}

/// Constant-time equality of a link token with the expected one.
fn same(want: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    want.len() == given.len() && bool::from(want.as_bytes().ct_eq(given.as_bytes()))
}

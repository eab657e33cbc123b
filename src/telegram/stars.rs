//! Telegram Stars (XTR): an invoice per order (`sendInvoice`, payload `order:<id>`), the
//! pre-checkout check (the order is still payable and the price still right, answered within
//! Telegram's 10 s), completion on `successful_payment` — idempotent on
//! `telegram_payment_charge_id` through the store's payment table — and refunds to the
//! original Stars payment (`refundStarPayment`) as an admin action.
//!
//! Prices: the order's amount in the shop currency × `payments.stars_per_unit`, rounded up to
//! a whole Star, computed again at pre-checkout and at payment, so a price change between the
//! invoice and the payment is refused, not accepted silently.

use super::Telegram;
use super::bot::Ctx;
use crate::domain::{Order, OrderId, OrderKind, OrderStatus};
use crate::error::Error;
use crate::queue::JobError;
use crate::store::orders::Payment;
use crate::texts::Lang;
use crate::texts::bot as t;
use serde_json::json;

/// The provider name payments are recorded under.
pub const PROVIDER: &str = "stars";

fn payload(order: OrderId) -> String {
    format!("order:{order}")
}

fn order_of(payload: &str) -> Option<OrderId> {
    payload.strip_prefix("order:")?.parse().ok()
}

impl Telegram {
    /// Stars for an order, when Stars are on.
    fn stars(&self, o: &Order) -> Option<u32> {
        self.payments().and_then(|p| p.stars_for(o.amount, o.currency))
    }

    /// Whether the bot offers Stars for this order.
    pub fn offers_stars(&self, o: &Order) -> bool {
        self.stars(o).is_some()
    }

    /// The invoice of an order: title, description, payload, price (sendInvoice and
    /// createInvoiceLink take the same fields).
    fn invoice(&self, o: &Order, stars: u32, l: Lang) -> serde_json::Value {
        let title: String = o.title.chars().take(32).collect();
        let description: String = t::stars_invoice_description(l, o).chars().take(255).collect();
        json!({
            "title": title,
            "description": description,
            "payload": payload(o.id),
            "currency": "XTR",
            "prices": [{"label": title, "amount": stars}],
        })
    }

    /// Sends a Stars invoice for the customer's pending order.
    pub(crate) async fn send_stars_invoice(&self, c: &Ctx, order_id: OrderId) -> Result<(), JobError> {
        let o = match self.store().order(order_id).await {
            Ok(o) if o.user_id == c.user_id => o,
            Ok(_) | Err(Error::NotFound(_)) => return self.text(c, t::order_not_found(c.lang)).await,
            Err(e) => return Err(e.into()),
        };
        let Some(stars) = self.stars(&o).filter(|_| o.status.is_pending_payment()) else {
            return self.text(c, t::cannot_pay(c.lang, o.id, o.status)).await;
        };
        let mut body = self.invoice(&o, stars, c.lang);
        body["chat_id"] = json!(c.chat_id);
        self.call("sendInvoice", body).await.map_err(|e| JobError::Retry(format!("sendInvoice: {e}")))?;
        metrics::counter!("lavka_payment_invoices_total", "provider" => PROVIDER).increment(1);
        Ok(())
    }

    /// A link to a Stars invoice for a pending order, for the Mini App's `openInvoice`, with
    /// its price in Stars; `None` when Stars are off. The payment then arrives as the same
    /// `pre_checkout_query` and `successful_payment` updates as an invoice sent in the chat.
    /// The caller checked ownership and status.
    pub async fn stars_invoice_link(&self, o: &Order, l: Lang) -> anyhow::Result<Option<(String, u32)>> {
        let Some(stars) = self.stars(o) else { return Ok(None) };
        let link = self.call("createInvoiceLink", self.invoice(o, stars, l)).await?;
        metrics::counter!("lavka_payment_invoices_total", "provider" => PROVIDER).increment(1);
        let url = link.as_str().ok_or_else(|| anyhow::anyhow!("createInvoiceLink returned {link}"))?;
        Ok(Some((url.to_string(), stars)))
    }

    /// Why an order cannot be paid now with `stars` Stars, or `None` when it can.
    async fn refuse_reason(
        &self,
        order: Option<OrderId>,
        user: i64,
        currency: &str,
        stars: u32,
        l: Lang,
    ) -> Option<String> {
        let Some(id) = order else { return Some(t::order_not_found(l)) };
        let o = match self.store().order(id).await {
            Ok(o) if o.user_id == user => o,
            _ => return Some(t::order_not_found(l)),
        };
        if currency != "XTR" || self.stars(&o) != Some(stars) {
            return Some(t::stars_price_changed(l));
        }
        match o.status {
            s if s.is_pending_payment() => None,
            // A lapsed reservation is paid anyway when the stock allows (the store re-reserves).
            OrderStatus::Expired if o.kind == OrderKind::Instant => {
                match self.store().availability(o.product_id.clone()).await {
                    Ok(a) if a.available >= o.quantity as u64 => None,
                    _ => Some(t::stars_sold_out(l)),
                }
            }
            s => Some(t::cannot_pay(l, o.id, s)),
        }
    }

    /// `pre_checkout_query`: re-validate and answer (within Telegram's 10 s).
    pub(crate) async fn pre_checkout(
        &self,
        q: &teloxide_core::types::PreCheckoutQuery,
    ) -> Result<(), JobError> {
        let user = q.from.id.0 as i64;
        let l = crate::texts::Lang::pick(q.from.language_code.as_deref(), self.settings().default_lang);
        let refuse = self
            .refuse_reason(order_of(&q.invoice_payload), user, &q.currency.to_string(), q.total_amount, l)
            .await;
        let mut body = json!({"pre_checkout_query_id": q.id.0, "ok": refuse.is_none()});
        if let Some(why) = &refuse {
            body["error_message"] = json!(why);
        }
        metrics::counter!("lavka_stars_pre_checkout_total", "ok" => refuse.is_none().to_string())
            .increment(1);
        // A late answer is useless (the query lapses after 10 s): no retries.
        if let Err(e) = self.call("answerPreCheckoutQuery", body).await {
            tracing::warn!(error = %e, "could not answer a pre-checkout query");
        }
        Ok(())
    }

    /// `successful_payment`: record the payment once and let the store decide the outcome.
    pub(crate) async fn successful_payment(
        &self,
        c: &Ctx,
        sp: &teloxide_core::types::SuccessfulPayment,
    ) -> Result<(), JobError> {
        let charge = sp.telegram_payment_charge_id.0.clone();
        let Some(order_id) = order_of(&sp.invoice_payload) else {
            tracing::error!(%charge, payload = %sp.invoice_payload, "a Stars payment for no order of this shop");
            return self
                .alert(format!(
                    "Stars payment {charge} names no order (payload {:?}); refund it with refundStarPayment",
                    sp.invoice_payload
                ))
                .await;
        };
        let o = self.store().order(order_id).await?;
        // The Stars price of the order now; a different amount is a mismatch the store records
        // (and the admins see), never a completion.
        let matches = sp.currency == "XTR" && self.stars(&o) == Some(sp.total_amount);
        let pay = if matches {
            Payment {
                provider: PROVIDER.into(),
                external_id: charge.clone(),
                amount: o.amount,
                currency: o.currency,
            }
        } else {
            Payment {
                provider: PROVIDER.into(),
                external_id: charge.clone(),
                amount: sp.total_amount as i64,
                currency: crate::domain::Currency::parse("XTR")?,
            }
        };
        let r = self.store().write(move |tx| crate::store::orders::apply_payment(tx, order_id, &pay)).await?;
        let outcome =
            if r.duplicate { "duplicate".to_string() } else { format!("{:?}", r.outcome).to_lowercase() };
        metrics::counter!("lavka_payments_total", "provider" => PROVIDER, "outcome" => outcome).increment(1);
        if r.duplicate {
            return Ok(());
        }
        match r.outcome {
            crate::domain::PaymentOutcome::Applied => self.text(c, t::stars_paid(c.lang, &r.order)).await,
            crate::domain::PaymentOutcome::Mismatch if !matches => {
                // Stars of the wrong amount cannot be kept as shop money (the balance is in the
                // shop currency): they go straight back. The mismatch stays recorded.
                let body = json!({"user_id": c.user_id, "telegram_payment_charge_id": charge});
                match self.call("refundStarPayment", body).await {
                    Ok(_) => metrics::counter!("lavka_refunds_total", "to" => PROVIDER).increment(1),
                    Err(e) => {
                        tracing::error!(error = %e, %charge, "could not refund a mismatched Stars payment; the admins were alerted")
                    }
                }
                self.text(c, t::stars_problem(c.lang, r.order.id)).await
            }
            _ => self.text(c, t::stars_problem(c.lang, r.order.id)).await,
        }
    }

    /// Refunds a Stars-paid order to the customer's Stars (admin action). Idempotent: a
    /// charge Telegram already refunded is recorded as refunded.
    pub async fn refund_stars(&self, order_id: OrderId) -> crate::error::Result<Order> {
        let o = self.store().order(order_id).await?;
        let charge = match &o.payment {
            Some(p) if p.provider == PROVIDER => p.external_id.clone(),
            _ => return Err(Error::conflict(format!("order {order_id} was not paid with Telegram Stars"))),
        };
        if o.status == OrderStatus::Refunded {
            return Ok(o);
        }
        let body = json!({"user_id": o.user_id, "telegram_payment_charge_id": charge});
        if let Err(e) = self.call("refundStarPayment", body).await {
            let msg = e.to_string();
            if !msg.contains("CHARGE_ALREADY_REFUNDED") {
                return Err(Error::Unavailable(format!("refundStarPayment: {msg}")));
            }
        }
        let r = self
            .store()
            .write(move |tx| {
                crate::store::orders::refund_to_source(tx, order_id, PROVIDER, "refunded to Telegram Stars")
            })
            .await?;
        metrics::counter!("lavka_refunds_total", "to" => PROVIDER).increment(1);
        Ok(r)
    }

    /// A balance top-up link (the payment page of the enabled link providers).
    pub(crate) async fn topup(&self, c: &Ctx, units: u32) -> Result<(), JobError> {
        use crate::texts::consultant as tc;
        let cur = self.settings().currency;
        let minor = units as i64 * 10i64.pow(cur.minor_digits());
        match self.payments().filter(|p| p.any()) {
            Some(p) => {
                let balance = self.store().balance(c.user_id).await?;
                let url = p.topup_url(c.user_id, minor);
                let text = t::esc(&tc::topup_offer(c.lang, minor, balance, cur));
                self.html(c, text, vec![vec![crate::ai::Button::url(tc::topup_button(c.lang), url)]]).await
            }
            None => self.text(c, tc::topup_unavailable(c.lang)).await,
        }
    }

    async fn alert(&self, text: String) -> Result<(), JobError> {
        self.store()
            .write(move |tx| {
                crate::store::jobs::enqueue(
                    tx,
                    crate::domain::JobKind::AlertAdmin { text: text.clone() },
                    crate::store::jobs::EnqueueOpts::default(),
                )
                .map(|_| ())
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_orders_strictly() {
        assert_eq!(order_of(&payload(42)), Some(42));
        assert_eq!(order_of("order:x"), None);
        assert_eq!(order_of("topup:1"), None);
    }
}

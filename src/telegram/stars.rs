//! Telegram Stars in the bot: the invoice a [`crate::shop::StarsInvoice`] asks for
//! (`sendInvoice`, or `createInvoiceLink` for the Mini App), the pre-checkout answer
//! (within Telegram's 10 s), `successful_payment`, and refunds to the original Stars
//! payment (`refundStarPayment`, an admin action). The checks and the payment's application
//! are the provider's (`crate::payments::stars`).

use super::Telegram;
use super::bot::Ctx;
use crate::domain::{Order, OrderStatus, PaymentOutcome};
use crate::error::Error;
use crate::messenger::SendError;
use crate::payments::stars::{PROVIDER, StarsPaid, order_of, payload};
use crate::queue::JobError;
use crate::shop::StarsInvoice;
use crate::texts::customer as t;
use serde_json::json;

fn invoice_body(i: &StarsInvoice) -> serde_json::Value {
    json!({
        "title": i.title,
        "description": i.description,
        "payload": payload(i.order_id),
        "currency": "XTR",
        "prices": [{"label": i.title, "amount": i.stars}],
    })
}

impl Telegram {
    /// Sends the invoice the shop asked for.
    pub(crate) async fn send_invoice(&self, c: &Ctx, i: &StarsInvoice) -> Result<(), JobError> {
        let mut body = invoice_body(i);
        body["chat_id"] = json!(c.chat_id);
        match self.sender().send_invoice(c.chat_id, &body).await {
            Ok(_) => {
                metrics::counter!("lavka_payment_invoices_total", "provider" => PROVIDER).increment(1);
                Ok(())
            }
            Err(e) => self.said(c, Err(e)).await,
        }
    }

    /// A link to a Stars invoice for a pending order, for the Mini App's `openInvoice`, with
    /// its price in Stars; `None` when Stars are off. The payment then arrives as the same
    /// updates as an invoice sent in the chat. The caller checked ownership and status.
    pub async fn stars_invoice_link(
        &self,
        o: &Order,
        l: &crate::texts::Loc,
    ) -> crate::Result<Option<(String, u32)>> {
        let Some(stars) = self.payments().stars_for(o.amount, o.currency) else { return Ok(None) };
        let i = StarsInvoice {
            order_id: o.id,
            title: o.title.chars().take(32).collect(),
            description: t::stars_invoice_description(l, o).chars().take(255).collect(),
            stars,
        };
        let link = self
            .call("createInvoiceLink", invoice_body(&i))
            .await
            .map_err(|e| Error::Unavailable(format!("createInvoiceLink: {e}")))?;
        metrics::counter!("lavka_payment_invoices_total", "provider" => PROVIDER).increment(1);
        let url =
            link.as_str().ok_or_else(|| Error::Unavailable(format!("createInvoiceLink returned {link}")))?;
        Ok(Some((url.to_string(), stars)))
    }

    /// `pre_checkout_query`: re-validate and answer (within Telegram's 10 s; no retries, a
    /// late answer is useless).
    pub(crate) async fn pre_checkout(
        &self,
        q: &teloxide_core::types::PreCheckoutQuery,
    ) -> Result<(), JobError> {
        let user = q.from.id.0 as i64;
        let lang = crate::texts::Lang::pick(q.from.language_code.as_deref(), self.settings().default_lang);
        let l = self.shop().loc(lang);
        let refuse = self
            .payments()
            .stars_refusal(order_of(&q.invoice_payload), user, &q.currency.to_string(), q.total_amount, &l)
            .await;
        let mut body = json!({"pre_checkout_query_id": q.id.0, "ok": refuse.is_none()});
        if let Some(why) = &refuse {
            body["error_message"] = json!(why);
        }
        metrics::counter!("lavka_stars_pre_checkout_total", "ok" => refuse.is_none().to_string())
            .increment(1);
        match self.call("answerPreCheckoutQuery", body).await {
            Ok(_) => Ok(()),
            // Nothing reached Telegram: another try fits in its 10 s.
            Err(SendError::Transient(e)) => Err(JobError::Retry(e)),
            Err(SendError::RetryAfter(d)) => Err(JobError::RetryAfter(d, "Telegram rate limit".into())),
            Err(e) => {
                tracing::warn!(error = %e, "could not answer a pre-checkout query");
                Ok(())
            }
        }
    }

    /// `successful_payment`: the payment is applied once; the customer reads what happened.
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
        let paid = StarsPaid { order_id, charge_id: &charge, currency: &sp.currency, total: sp.total_amount };
        let a = self.payments().apply_stars(paid).await?;
        let r = a.result;
        let l = c.loc(self);
        if r.duplicate {
            return Ok(());
        }
        match r.outcome {
            // A paid pre-order is confirmed once, by the notice that names its deadline.
            PaymentOutcome::Applied if r.order.kind == crate::domain::OrderKind::Prepaid => Ok(()),
            PaymentOutcome::Applied => self.reply(c, t::stars_paid(&l, &r.order)).await,
            // Credited to the balance in the shop currency: the notice job tells the customer.
            PaymentOutcome::CreditedToBalance => Ok(()),
            PaymentOutcome::Mismatch if !a.matched => {
                // Stars of the wrong amount cannot be kept as shop money: they go straight back.
                let body = json!({"user_id": c.user_id, "telegram_payment_charge_id": charge});
                match self.call("refundStarPayment", body).await {
                    Ok(_) | Err(SendError::AlreadyDone) => {
                        metrics::counter!("lavka_refunds_total", "to" => PROVIDER).increment(1);
                        self.reply(c, t::stars_returned(&l, r.order.id)).await
                    }
                    Err(e) => {
                        tracing::error!(error = %e, %charge, "could not refund a mismatched Stars payment");
                        self.alert(format!(
                            "Stars payment {charge} for order #{} did not match and could not be refunded ({e}); refund it by hand with /refundstars",
                            r.order.id
                        ))
                        .await?;
                        self.reply(c, t::stars_held(&l, r.order.id)).await
                    }
                }
            }
            // A mismatch in the shop currency was credited; the notice job says so.
            PaymentOutcome::Mismatch => Ok(()),
        }
    }

    /// Refunds a Stars-paid order to the customer's Stars (admin action). Idempotent: a
    /// charge Telegram already refunded is recorded as refunded.
    pub async fn refund_stars(&self, order_id: crate::domain::OrderId) -> crate::error::Result<Order> {
        let o = self.store().order(order_id).await?;
        let charge = match &o.payment {
            Some(p) if p.provider == PROVIDER => p.external_id.clone(),
            _ => return Err(Error::conflict(format!("order {order_id} was not paid with Telegram Stars"))),
        };
        if o.status == OrderStatus::Refunded {
            return Ok(o);
        }
        let body = json!({"user_id": o.user_id, "telegram_payment_charge_id": charge});
        match self.call("refundStarPayment", body).await {
            Ok(_) | Err(SendError::AlreadyDone) => {}
            Err(e) => return Err(Error::Unavailable(format!("refundStarPayment: {e}"))),
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

    pub(crate) async fn alert(&self, text: String) -> Result<(), JobError> {
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

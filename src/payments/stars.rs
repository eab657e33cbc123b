//! Telegram Stars (XTR), the provider side: the invoice payload `order:<id>`, the
//! pre-checkout check (the order is still payable and the price still right), and the
//! payment's application through [`super::Payments::apply`], idempotent on
//! `telegram_payment_charge_id`. The Bot API calls (sendInvoice, answerPreCheckoutQuery,
//! refundStarPayment) are the Telegram door's.
//!
//! Prices: the order's amount in the shop currency × `payments.stars_per_unit`, rounded up to
//! a whole Star, computed again at pre-checkout and at payment, so a price change between the
//! invoice and the payment is refused, not accepted silently.

use super::Payments;
use crate::domain::{Currency, OrderId, OrderKind, OrderStatus};
use crate::error::Result;
use crate::store::orders::{Payment, PaymentResult};
use crate::texts::{Loc, customer as t};

/// The provider name payments are recorded under.
pub const PROVIDER: &str = "stars";

pub fn payload(order: OrderId) -> String {
    format!("order:{order}")
}

pub fn order_of(payload: &str) -> Option<OrderId> {
    payload.strip_prefix("order:")?.parse().ok()
}

/// A Stars payment as Telegram reported it.
pub struct StarsPaid<'a> {
    pub order_id: OrderId,
    pub charge_id: &'a str,
    pub currency: &'a str,
    pub total: u32,
}

/// What a Stars payment did.
pub struct StarsApplied {
    pub result: PaymentResult,
    /// The amount was the order's Stars price (else the store recorded a mismatch).
    pub matched: bool,
}

impl Payments {
    /// Why an order cannot be paid now with `stars` Stars (in the customer's words), or
    /// `None` when it can.
    pub async fn stars_refusal(
        &self,
        order: Option<OrderId>,
        user: i64,
        currency: &str,
        stars: u32,
        l: &Loc,
    ) -> Option<String> {
        let Some(id) = order else { return Some(t::order_not_found(l).plain()) };
        let o = match self.store().order(id).await {
            Ok(o) if o.user_id == user => o,
            _ => return Some(t::order_not_found(l).plain()),
        };
        if currency != "XTR" || self.stars_for(o.amount, o.currency) != Some(stars) {
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
            s => Some(t::cannot_pay(l, o.id, s).plain()),
        }
    }

    /// Applies a successful Stars payment once. The Stars price of the order now decides: a
    /// different amount is recorded as a mismatch (the admins see it), never a completion.
    pub async fn apply_stars(&self, p: StarsPaid<'_>) -> Result<StarsApplied> {
        let o = self.store().order(p.order_id).await?;
        let matched = p.currency == "XTR" && self.stars_for(o.amount, o.currency) == Some(p.total);
        let pay = if matched {
            Payment {
                provider: PROVIDER.into(),
                external_id: p.charge_id.into(),
                amount: o.amount,
                currency: o.currency,
            }
        } else {
            Payment {
                provider: PROVIDER.into(),
                external_id: p.charge_id.into(),
                amount: p.total as i64,
                currency: Currency::XTR,
            }
        };
        let result = self.apply(p.order_id, pay).await?;
        Ok(StarsApplied { result, matched })
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

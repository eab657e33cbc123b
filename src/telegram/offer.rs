//! Payment offers: the order summary and the buttons that pay it.
//!
//! [`Telegram::payment_buttons`] is the one place that decides how an order can be paid in
//! the bot: the order's payment page (Crypto Pay, or the dev provider in demo mode) when a
//! link provider is enabled, the internal balance, and cancel.

use super::Telegram;
use super::bot::Ctx;
use crate::ai::Button;
use crate::callback::Callback;
use crate::domain::Order;
use crate::queue::JobError;
use crate::texts::Lang;
use crate::texts::bot::{self as t, button};

impl Telegram {
    /// The buttons that pay (or cancel) a pending order.
    pub fn payment_buttons(&self, l: Lang, o: &Order) -> Vec<Vec<Button>> {
        let mut rows = Vec::new();
        if let Some(stars) = self.payments().and_then(|p| p.stars_for(o.amount, o.currency)) {
            rows.push(vec![Button::callback(button::pay_stars(l, stars), Callback::PayStars(o.id))]);
        }
        if let Some(p) = self.payments().filter(|p| p.any()) {
            rows.push(vec![Button::url(button::pay(l), p.pay_url(o.id))]);
        }
        rows.push(vec![Button::callback(button::pay_balance(l), Callback::PayBalance(o.id))]);
        rows.push(vec![Button::callback(button::cancel(l), Callback::Cancel(o.id))]);
        rows
    }

    /// Sends the offer of a pending order: what, how much, until when, and how to pay.
    pub(crate) async fn send_offer(&self, c: &Ctx, o: &Order) -> Result<(), JobError> {
        let balance = self.store().balance(c.user_id).await?;
        let text = t::offer(c.lang, o, balance, o.currency);
        self.html(c, text, self.payment_buttons(c.lang, o)).await
    }
}

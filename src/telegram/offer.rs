//! Payment offers: the order summary and the buttons that pay it.
//!
//! **Seam for issue 6.** [`Telegram::payment_buttons`] is the one place that decides how an
//! order can be paid. Today: the internal balance, and — only with `dev_payments = true` —
//! a link to the local development payment page. Telegram Stars and Crypto Pay add their
//! buttons (invoice link, payment URL) there.

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
        // TODO(issue 6): providers' buttons go first here (Stars invoice link, Crypto Pay URL).
        if self.settings().dev_payments {
            rows.push(vec![Button::url(button::pay_dev(l), format!("{}/pay/dev/{}", self.base_url(), o.id))]);
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

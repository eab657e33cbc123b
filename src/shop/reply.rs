//! What a use case answers: channel-neutral text, buttons, and the order it offered. The
//! Telegram door renders it as a message (HTML), the web shop as JSON, the terminal as text.

use crate::callback::Button;
use crate::domain::{Currency, Millis, Order, OrderId, OrderKind, ProductId};
use crate::texts::Rich;
use serde::Serialize;

/// A payment offer built by code from the store (never by the model).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Offer {
    pub order_id: OrderId,
    pub product_id: ProductId,
    pub title: String,
    pub kind: OrderKind,
    pub quantity: u32,
    /// Amount due in minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    /// The reservation (instant) or the unpaid order lapses at this moment.
    pub expires_at: Option<Millis>,
}

impl Offer {
    pub fn of(o: &Order) -> Offer {
        Offer {
            order_id: o.id,
            product_id: o.product_id.clone(),
            title: o.title.clone(),
            kind: o.kind,
            quantity: o.quantity,
            amount: o.amount,
            currency: o.currency,
            expires_at: o.expires_at,
        }
    }
}

/// A Telegram Stars invoice the door should send for a pending order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StarsInvoice {
    pub order_id: OrderId,
    pub title: String,
    pub description: String,
    pub stars: u32,
}

/// A use case's answer. As JSON: `{"text": plain text, "spans": styled text, "buttons",
/// "offer", "invoice"}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    pub text: Rich,
    pub buttons: Vec<Vec<Button>>,
    /// The order this reply offers to pay (it exists in the store).
    pub offer: Option<Offer>,
    /// Send this Stars invoice (only the Telegram door asks for one).
    pub invoice: Option<StarsInvoice>,
}

impl Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            text: String,
            spans: &'a Rich,
            buttons: &'a Vec<Vec<Button>>,
            offer: &'a Option<Offer>,
            #[serde(skip_serializing_if = "Option::is_none")]
            invoice: &'a Option<StarsInvoice>,
        }
        Json {
            text: self.text.plain(),
            spans: &self.text,
            buttons: &self.buttons,
            offer: &self.offer,
            invoice: &self.invoice,
        }
        .serialize(s)
    }
}

impl Reply {
    pub fn text(text: impl Into<Rich>) -> Reply {
        Reply { text: text.into(), ..Reply::default() }
    }

    pub fn with(text: impl Into<Rich>, buttons: Vec<Vec<Button>>) -> Reply {
        Reply { text: text.into(), buttons, ..Reply::default() }
    }

    /// Every button's callback, flattened.
    pub fn callbacks(&self) -> impl Iterator<Item = &crate::callback::Callback> {
        self.buttons.iter().flatten().filter_map(|b| b.callback_data())
    }
}

//! The sales consultant: one channel-independent API, [`Consult::reply`], used by the
//! Telegram bot, the Mini App chat panel and `lavka chat`. The model never decides prices or
//! stock: every action it proposes is validated against the store by code, and payment
//! offers are built by code.

use crate::callback::Callback;
use crate::domain::{Currency, Millis, OrderId, ProductId, UserId};
use crate::error::Result;
use crate::texts::Lang;
use serde::Serialize;

/// Who is talking.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    pub user_id: UserId,
    /// Where replies go (the Telegram chat; equal to `user_id` in private chats).
    pub chat_id: i64,
    pub lang: Lang,
    pub first_name: Option<String>,
}

/// A button under a reply. JSON: `{"label", "callback"}` or `{"label", "url"}` or
/// `{"label", "web_app"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Button {
    pub label: String,
    #[serde(flatten)]
    pub action: ButtonAction,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonAction {
    /// Handled by the shop itself (Telegram callback data, a Mini App action).
    #[serde(serialize_with = "encoded")]
    Callback(Callback),
    /// Opens a link (a payment page).
    Url(String),
    /// Opens the Mini App at this URL.
    WebApp(String),
}

impl Button {
    pub fn callback(label: impl Into<String>, cb: Callback) -> Button {
        Button { label: label.into(), action: ButtonAction::Callback(cb) }
    }
    pub fn url(label: impl Into<String>, url: impl Into<String>) -> Button {
        Button { label: label.into(), action: ButtonAction::Url(url.into()) }
    }
}

fn encoded<S: serde::Serializer>(c: &Callback, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&c.encode())
}

/// What kind of order an offer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    /// An item is reserved until `expires_at`.
    Instant,
    /// A prepaid pre-order a supplier fulfils.
    Prepaid,
}

/// A payment offer built by code from the store (never by the model).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Offer {
    pub order_id: OrderId,
    pub product_id: ProductId,
    pub title: String,
    pub kind: OfferKind,
    /// Amount due in minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    /// The reservation (instant) or the unpaid order lapses at this moment.
    pub expires_at: Option<Millis>,
    /// Hours a supplier needs (pre-orders).
    pub fulfillment_hours: Option<u32>,
}

/// The consultant's answer: text to show, button rows, and the payment offer if one was made.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reply {
    pub text: String,
    pub buttons: Vec<Vec<Button>>,
    pub offer: Option<Offer>,
}

/// Anything that answers a customer's free text.
#[async_trait::async_trait]
pub trait Consult: Send + Sync {
    async fn reply(&self, customer: &Customer, text: &str) -> Result<Reply>;
}

pub mod consultant;
pub mod gemini;
pub mod llm;

pub use consultant::{Consultant, PayLinks, Setup};

//! Orders and their states, users, the balance ledger and payment records.

use super::{Currency, Millis, OrderId, ProductId, UserId};
use serde::{Deserialize, Serialize};

/// Instant orders are served from stock; prepaid ones by a supplier after payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Instant,
    Prepaid,
}

/// The order state machine (see DESIGN.md "Order states").
///
/// Instant: `Reserved → Paid → Delivered`, `Reserved → Expired`.
/// Prepaid: `AwaitingPayment → Prepaid → Ready → Delivered`, `AwaitingPayment → Expired`,
/// `Prepaid → Refunded`. Any paid order may also be refunded to the balance by the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Reserved,
    AwaitingPayment,
    Paid,
    Prepaid,
    Ready,
    Delivered,
    Expired,
    Refunded,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::Reserved,
        OrderStatus::AwaitingPayment,
        OrderStatus::Paid,
        OrderStatus::Prepaid,
        OrderStatus::Ready,
        OrderStatus::Delivered,
        OrderStatus::Expired,
        OrderStatus::Refunded,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Reserved => "reserved",
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Prepaid => "prepaid",
            OrderStatus::Ready => "ready",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Waiting for the customer's payment.
    pub fn is_pending_payment(&self) -> bool {
        matches!(self, OrderStatus::Reserved | OrderStatus::AwaitingPayment)
    }

    /// One byte for index keys; stable forever.
    pub fn code(&self) -> u8 {
        match self {
            OrderStatus::Reserved => 1,
            OrderStatus::AwaitingPayment => 2,
            OrderStatus::Paid => 3,
            OrderStatus::Prepaid => 4,
            OrderStatus::Ready => 5,
            OrderStatus::Delivered => 6,
            OrderStatus::Expired => 7,
            OrderStatus::Refunded => 8,
        }
    }
}

/// Which payment settled an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRef {
    pub provider: String,
    pub external_id: String,
}

/// An order. Amounts are in minor units of `currency`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub product_id: ProductId,
    /// Product title at the time of the order, for receipts.
    pub title: String,
    pub kind: OrderKind,
    pub status: OrderStatus,
    pub quantity: u32,
    pub unit_price: i64,
    pub discount_percent: u8,
    /// What the customer pays: discounted unit price × quantity.
    pub amount: i64,
    pub currency: Currency,
    /// Stock items held (reserved) or sold for this order.
    #[serde(default)]
    pub stock_item_ids: Vec<u64>,
    /// Content attached by the supplier for a prepaid order.
    #[serde(default)]
    pub supplier_content: Option<String>,
    pub created_at: Millis,
    /// Pending orders lapse at this moment.
    #[serde(default)]
    pub expires_at: Option<Millis>,
    #[serde(default)]
    pub paid_at: Option<Millis>,
    /// A prepaid order must be fulfilled by then, or it is refunded.
    #[serde(default)]
    pub deadline: Option<Millis>,
    #[serde(default)]
    pub delivered_at: Option<Millis>,
    /// The chat message that carried the goods (Telegram message id).
    #[serde(default)]
    pub delivery_message_id: Option<i64>,
    #[serde(default)]
    pub payment: Option<PaymentRef>,
    #[serde(default)]
    pub refunded_at: Option<Millis>,
    /// Why the order ended where it is, for people (e.g. refund reason).
    #[serde(default)]
    pub note: Option<String>,
    /// The goods went to the shop's outbox (no channel configured): `delivery_message_id`
    /// is the outbox message's id, written in the same commit.
    #[serde(default)]
    pub delivered_to_outbox: bool,
}

impl Order {
    /// Has money been received for this order at some point?
    pub fn was_paid(&self) -> bool {
        self.paid_at.is_some()
    }
}

/// A customer (a Telegram user).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub username: Option<String>,
    /// Preferred language (`ru`, `en`).
    #[serde(default)]
    pub lang: Option<String>,
    /// The user blocked the bot: nothing can be sent.
    #[serde(default)]
    pub unreachable: bool,
    pub created_at: Millis,
}

/// One append-only balance movement; the balance is their sum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub user_id: UserId,
    /// Positive = credit, negative = debit; minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    pub reason: String,
    #[serde(default)]
    pub order_id: Option<OrderId>,
    pub at: Millis,
}

/// What became of a received payment. Every payment has exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentOutcome {
    /// Settled the order.
    Applied,
    /// Arrived after the order lapsed, no stock to re-reserve: credited to the balance.
    CreditedToBalance,
    /// Amount or currency did not match the order; the order is untouched, the owner alerted,
    /// and money in the order's currency credited to the customer's balance.
    Mismatch,
}

/// A received payment, keyed by `(provider, external_id)` so it applies once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub provider: String,
    pub external_id: String,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: i64,
    pub currency: Currency,
    pub outcome: PaymentOutcome,
    pub at: Millis,
}

/// A signed payment the shop received but could not put on any order or balance: an
/// invoice naming no order of this shop, an order that does not exist, an amount or
/// currency it cannot read, or money held after a mismatch. The money was taken, so it is
/// kept (once per `(provider, external_id)`), the admins are told, and the owner resolves it
/// by hand. Amounts stay as the provider sent them: nothing is rounded or guessed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnmatchedPayment {
    pub provider: String,
    pub external_id: String,
    /// Why it could not be applied: `unknown_payload`, `unknown_order`, `bad_amount`,
    /// `unknown_currency`, `mismatch`, `topup_refused`, `refused`, `malformed`.
    pub reason: String,
    /// The detail for the owner (e.g. "amount \"0.1\" has more than 0 decimal places").
    pub detail: String,
    /// The amount and currency code exactly as received.
    pub amount: String,
    pub currency: String,
    #[serde(default)]
    pub order_id: Option<OrderId>,
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// The provider's payload field (what the invoice said it pays).
    #[serde(default)]
    pub payload: Option<String>,
    /// The provider's record of the payment, as received.
    #[serde(default)]
    pub raw: serde_json::Value,
    pub at: Millis,
}

/// A message the shop sent (or would send) to a chat, recorded for the admin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: u64,
    pub chat_id: i64,
    pub text: String,
    pub at: Millis,
    /// The order whose goods this message carried (a delivery in outbox mode).
    #[serde(default)]
    pub order_id: Option<OrderId>,
}

//! Types every module shares: money, products, orders, users, payments, jobs. No I/O here;
//! constructors that take outside input validate it (`parse` style) so the rest of the code
//! only sees valid values.

mod job;
mod money;
mod order;
mod product;

pub use job::{Dedupe, JobKind, JobRecord, JobState, Lane, Notice};
pub use money::{Currency, Money};
pub use order::{
    LedgerEntry, Order, OrderKind, OrderStatus, OutboxMessage, PaymentOutcome, PaymentRecord, PaymentRef,
    UnmatchedPayment, User,
};
pub use product::{Availability, Product, ProductId, Sale, StockItem, StockState, Supplier, Translation};

/// The most items one order may hold: one rule for every door (bot, web shop, consultant,
/// admin API) and the store.
pub const MAX_QUANTITY: u32 = 10;

/// Unix time in milliseconds. Everything persistent uses it.
pub type Millis = i64;

/// A Telegram user id (also the customer id). Up to 52 significant bits.
pub type UserId = i64;

/// An order number, sequential, shown to people as `#123`.
pub type OrderId = u64;

/// Current wall-clock time in unix milliseconds.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats unix milliseconds as RFC 3339 (UTC) for people and JSON.
pub fn fmt_time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

//! The crate's one error type. Domain rejections (4xx-like) are raised by store operations
//! *before* they write anything; everything else is an internal failure.

/// Result with the crate error by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure Lavka reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is malformed or violates a rule; the message is for the user.
    #[error("{0}")]
    BadInput(String),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state; which conflict it is, is typed so
    /// callers branch on it, never on a message.
    #[error("{0}")]
    Conflict(Conflict),
    /// Not enough stock to reserve.
    #[error("out of stock: {0}")]
    OutOfStock(String),
    /// Not enough balance to pay.
    #[error("insufficient balance: need {need}, have {have}")]
    InsufficientBalance { need: i64, have: i64 },
    /// Missing or wrong credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// The database file is newer than this binary understands, or otherwise unusable.
    #[error("{0}")]
    Schema(String),
    /// Storage engine failure; the engine's error chain is kept for the log.
    #[error("storage: {0}")]
    Storage(#[source] StorageCause),
    /// An outbound call failed in a way worth retrying.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// Anything else that is our fault.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// A rejection decided by validation (no state was changed), as opposed to a failure.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Error::BadInput(_)
                | Error::NotFound(_)
                | Error::Conflict(_)
                | Error::OutOfStock(_)
                | Error::InsufficientBalance { .. }
                | Error::Unauthorized
        )
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Storage(_) | Error::Unavailable(_))
    }

    /// A short stable code for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadInput(_) => "bad_input",
            Error::NotFound(_) => "not_found",
            Error::Conflict(Conflict::ReservationLimit { .. }) => "reservation_limit",
            Error::Conflict(_) => "conflict",
            Error::OutOfStock(_) => "out_of_stock",
            Error::InsufficientBalance { .. } => "insufficient_balance",
            Error::Unauthorized => "unauthorized",
            Error::Schema(_) => "schema",
            Error::Storage(_) => "storage",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadInput(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Error::Conflict(Conflict::Other(msg.into()))
    }
    pub fn storage(msg: impl Into<String>) -> Self {
        Error::Storage(StorageCause::Message(msg.into()))
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }
}

/// What a storage failure came from: the engine's (or the file system's) own error, kept
/// whole so the log shows its chain.
#[derive(Debug, thiserror::Error)]
pub enum StorageCause {
    #[error(transparent)]
    Redb(Box<redb::Error>),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Message(String),
}

/// A request that the current state refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("product {0} is not on sale")]
    NotOnSale(crate::domain::ProductId),
    #[error("product {0} cannot be pre-ordered")]
    NotPreorderable(crate::domain::ProductId),
    #[error("product {0} is in stock: buy it for instant delivery")]
    InStock(crate::domain::ProductId),
    /// Paying or cancelling an order that no longer awaits payment.
    #[error("order {order} is {}, not awaiting payment", status.as_str())]
    NotPending { order: crate::domain::OrderId, status: crate::domain::OrderStatus },
    /// Fulfilling a pre-order that was already fulfilled.
    #[error("order {0} is already fulfilled")]
    AlreadyFulfilled(crate::domain::OrderId),
    /// Fulfilling a pre-order that was refunded when its deadline passed.
    #[error("order {0} was refunded (the deadline passed)")]
    RefundedLate(crate::domain::OrderId),
    /// Fulfilling a pre-order that is not paid.
    #[error("order {order} is {}, not paid", status.as_str())]
    NotPaid { order: crate::domain::OrderId, status: crate::domain::OrderStatus },
    /// A new unpaid order would take the customer past the limits of what one customer may
    /// hold unpaid at once (orders, reserved items).
    #[error(
        "you already hold {orders} unpaid orders with {items} reserved items; at most {max_orders} orders and {max_items} items can wait for payment at once: pay or cancel one first"
    )]
    ReservationLimit { orders: u32, items: u32, max_orders: u32, max_items: u32 },
    #[error("{0}")]
    Other(String),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self { Error::Storage(StorageCause::Redb(Box::new(e.into()))) }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError
);

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Storage(StorageCause::Io(e))
    }
}

impl From<Conflict> for Error {
    fn from(c: Conflict) -> Self {
        Error::Conflict(c)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("encoding: {e}"))
    }
}

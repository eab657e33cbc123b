//! Every redb table in one place. Values are records encoded by `codec` (`&[u8]`: binary
//! for the money path, JSON for the rest, both readable); keys are integers, strings or
//! tuples so ranges sort.

use redb::TableDefinition;

/// Bumped when the layout changes in a way old binaries cannot read.
pub const SCHEMA_VERSION: u64 = 1;

pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Sequences for ids: "order", "stock", "job", "ledger", "outbox".
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub const PRODUCTS: TableDefinition<&str, &[u8]> = TableDefinition::new("products");
pub const SUPPLIERS: TableDefinition<&str, &[u8]> = TableDefinition::new("suppliers");

pub const STOCK_ITEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("stock_items");
/// product id → every item id of that product (any state).
pub const STOCK_BY_PRODUCT: TableDefinition<(&str, u64), ()> = TableDefinition::new("stock_by_product");
/// product id → ids of items available right now; reservation takes the first: O(log n).
pub const STOCK_AVAILABLE: TableDefinition<(&str, u64), ()> = TableDefinition::new("stock_available");
/// product id → number of available items (kept equal to `STOCK_AVAILABLE`'s length).
pub const STOCK_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("stock_counts");
/// (product id, sha256 of content) → item id: import de-duplicates by content.
pub const STOCK_BY_CONTENT: TableDefinition<(&str, &[u8]), u64> = TableDefinition::new("stock_by_content");

pub const ORDERS: TableDefinition<u64, &[u8]> = TableDefinition::new("orders");
/// (user, order id): a customer's orders.
pub const ORDERS_BY_USER: TableDefinition<(i64, u64), ()> = TableDefinition::new("orders_by_user");
/// (status code, due time, order id): pending orders by `expires_at`, prepaid by `deadline`.
pub const ORDERS_BY_STATUS_DEADLINE: TableDefinition<(u8, i64, u64), ()> =
    TableDefinition::new("orders_by_status_deadline");

pub const USERS: TableDefinition<i64, &[u8]> = TableDefinition::new("users");
/// (user, seq) → ledger entry; append-only.
pub const LEDGER: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("ledger");
/// user → balance, a cache of the ledger sum (checked by `lavka check`).
pub const BALANCES: TableDefinition<i64, i64> = TableDefinition::new("balances");

/// (provider, external id) → payment record: a payment applies once.
pub const PAYMENTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("payments");
/// Telegram update id → when it was accepted.
pub const PROCESSED_UPDATES: TableDefinition<i64, i64> = TableDefinition::new("processed_updates");

pub const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// (run_at, job id) for ready jobs only.
pub const JOBS_DUE: TableDefinition<(i64, u64), ()> = TableDefinition::new("jobs_due");
/// The same for jobs of the urgent lane (`crate::domain::Lane`), which have their own workers.
pub const JOBS_DUE_URGENT: TableDefinition<(i64, u64), ()> = TableDefinition::new("jobs_due_urgent");
/// (finished_at, job id) for done jobs, for pruning.
pub const JOBS_DONE: TableDefinition<(i64, u64), ()> = TableDefinition::new("jobs_done");
/// job id of every dead job.
pub const JOBS_DEAD: TableDefinition<u64, ()> = TableDefinition::new("jobs_dead");
pub const JOBS_BY_DEDUPE: TableDefinition<&str, u64> = TableDefinition::new("jobs_by_dedupe");

/// (product id, model id) → 16-byte hash of the embedded text, then the vector as f32 LE.
/// A vector is reused while its text and model are unchanged.
pub const EMBEDDINGS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("embeddings");

/// Messages sent (or, without a channel, that would have been sent), newest last.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// Customer id → the consultant's memory of the conversation (JSON).
pub const CONVERSATIONS: TableDefinition<i64, &[u8]> = TableDefinition::new("conversations");
// --- Telegram (issue 5) ---
/// Bot state by name: "webhook_secret", "poll_offset".
pub const TELEGRAM_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("telegram_state");
/// user id → Telegram profile kept by the bot (chat id, chosen language).
pub const TELEGRAM_USERS: TableDefinition<i64, &[u8]> = TableDefinition::new("telegram_users");
/// order id → when its delivery send began; present only while a send may be in flight.
pub const DELIVERY_MARKS: TableDefinition<u64, i64> = TableDefinition::new("delivery_marks");
/// broadcast id → broadcast record (text, progress).
pub const BROADCASTS: TableDefinition<u64, &[u8]> = TableDefinition::new("broadcasts");

/// (provider, external id) → a balance top-up that was credited (JSON): each applies once.
pub const TOPUPS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("topups");

/// (provider, external id) → a signed payment that could not be applied to any order or
/// balance (JSON `UnmatchedPayment`): recorded once, shown to the admin.
pub const UNMATCHED_PAYMENTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("unmatched_payments");

/// Calls `$m!(DEF)` for every table; the backup and the table-creating start-up use it so a
/// new table cannot be forgotten. (Multimap tables are avoided: a tuple key is cheaper.)
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_table {
    ($m:ident) => {
        $m!($crate::store::schema::META);
        $m!($crate::store::schema::COUNTERS);
        $m!($crate::store::schema::PRODUCTS);
        $m!($crate::store::schema::SUPPLIERS);
        $m!($crate::store::schema::STOCK_ITEMS);
        $m!($crate::store::schema::STOCK_BY_PRODUCT);
        $m!($crate::store::schema::STOCK_AVAILABLE);
        $m!($crate::store::schema::STOCK_COUNTS);
        $m!($crate::store::schema::STOCK_BY_CONTENT);
        $m!($crate::store::schema::ORDERS);
        $m!($crate::store::schema::ORDERS_BY_USER);
        $m!($crate::store::schema::ORDERS_BY_STATUS_DEADLINE);
        $m!($crate::store::schema::USERS);
        $m!($crate::store::schema::LEDGER);
        $m!($crate::store::schema::BALANCES);
        $m!($crate::store::schema::PAYMENTS);
        $m!($crate::store::schema::PROCESSED_UPDATES);
        $m!($crate::store::schema::JOBS);
        $m!($crate::store::schema::JOBS_DUE);
        $m!($crate::store::schema::JOBS_DUE_URGENT);
        $m!($crate::store::schema::JOBS_DONE);
        $m!($crate::store::schema::JOBS_DEAD);
        $m!($crate::store::schema::JOBS_BY_DEDUPE);
        $m!($crate::store::schema::OUTBOX);
        $m!($crate::store::schema::EMBEDDINGS);
        $m!($crate::store::schema::CONVERSATIONS);
        $m!($crate::store::schema::TOPUPS);
        $m!($crate::store::schema::UNMATCHED_PAYMENTS);
        $m!($crate::store::schema::TELEGRAM_STATE);
        $m!($crate::store::schema::TELEGRAM_USERS);
        $m!($crate::store::schema::DELIVERY_MARKS);
        $m!($crate::store::schema::BROADCASTS);
    };
}

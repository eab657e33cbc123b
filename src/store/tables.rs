//! The tables of one write transaction, each opened once per group commit (on first use)
//! and shared by every operation of the batch: opening a redb table looks it up in the table
//! tree and checks its key and value types, which cost more than most operations' own work.
//! A table is borrowed for as long as a redb table would be held open; asking for one that
//! is already borrowed is an error, as redb's `TableAlreadyOpen` is, never a panic.

use super::Tx;
use super::schema::*;
use crate::domain::Lane;
use crate::error::{Error, Result};
use redb::{Table, TableDefinition, TableHandle, WriteTransaction};
use std::cell::{RefCell, RefMut};

macro_rules! tables {
    ($($name:ident: $def:ident => ($k:ty, $v:ty)),* $(,)?) => {
        /// Every table, open or not yet.
        #[derive(Default)]
        pub(crate) struct Tables<'a> {
            $($name: RefCell<Option<Table<'a, $k, $v>>>,)*
        }

        impl<'a> Tx<'a> {
            $(
                #[allow(dead_code)]
                pub(crate) fn $name(&self) -> Result<RefMut<'_, Table<'a, $k, $v>>> {
                    open(self.tx, &self.tables.$name, $def)
                }
            )*
        }
    };
}

tables! {
    meta: META => (&'static str, &'static [u8]),
    counters: COUNTERS => (&'static str, u64),
    products: PRODUCTS => (&'static str, &'static [u8]),
    suppliers: SUPPLIERS => (&'static str, &'static [u8]),
    stock_items: STOCK_ITEMS => (u64, &'static [u8]),
    stock_by_product: STOCK_BY_PRODUCT => ((&'static str, u64), ()),
    stock_available: STOCK_AVAILABLE => ((&'static str, u64), ()),
    stock_counts: STOCK_COUNTS => (&'static str, u64),
    stock_by_content: STOCK_BY_CONTENT => ((&'static str, &'static [u8]), u64),
    orders: ORDERS => (u64, &'static [u8]),
    orders_by_user: ORDERS_BY_USER => ((i64, u64), ()),
    orders_by_status_deadline: ORDERS_BY_STATUS_DEADLINE => ((u8, i64, u64), ()),
    users: USERS => (i64, &'static [u8]),
    ledger: LEDGER => ((i64, u64), &'static [u8]),
    balances: BALANCES => (i64, i64),
    payments: PAYMENTS => ((&'static str, &'static str), &'static [u8]),
    processed_updates: PROCESSED_UPDATES => (i64, i64),
    jobs: JOBS => (u64, &'static [u8]),
    jobs_due: JOBS_DUE => ((i64, u64), ()),
    jobs_due_urgent: JOBS_DUE_URGENT => ((i64, u64), ()),
    jobs_done: JOBS_DONE => ((i64, u64), ()),
    jobs_dead: JOBS_DEAD => (u64, ()),
    jobs_by_dedupe: JOBS_BY_DEDUPE => (&'static str, u64),
    embeddings: EMBEDDINGS => ((&'static str, &'static str), &'static [u8]),
    outbox: OUTBOX => (u64, &'static [u8]),
    conversations: CONVERSATIONS => (i64, &'static [u8]),
    telegram_state: TELEGRAM_STATE => (&'static str, &'static [u8]),
    telegram_users: TELEGRAM_USERS => (i64, &'static [u8]),
    delivery_marks: DELIVERY_MARKS => (u64, i64),
    broadcasts: BROADCASTS => (u64, &'static [u8]),
    topups: TOPUPS => ((&'static str, &'static str), &'static [u8]),
    unmatched_payments: UNMATCHED_PAYMENTS => ((&'static str, &'static str), &'static [u8]),
}

impl<'a> Tx<'a> {
    /// The due index of a lane (`JOBS_DUE` or `JOBS_DUE_URGENT`).
    pub(crate) fn due(&self, lane: Lane) -> Result<RefMut<'_, Table<'a, (i64, u64), ()>>> {
        match lane {
            Lane::Urgent => self.jobs_due_urgent(),
            Lane::Normal => self.jobs_due(),
        }
    }
}

fn open<'t, 'a, K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &'a WriteTransaction,
    cell: &'t RefCell<Option<Table<'a, K, V>>>,
    def: TableDefinition<'static, K, V>,
) -> Result<RefMut<'t, Table<'a, K, V>>> {
    let in_use = || Error::internal(format!("table {} is already in use", def.name()));
    let mut slot = cell.try_borrow_mut().map_err(|_| in_use())?;
    if slot.is_none() {
        *slot = Some(tx.open_table(def)?);
    }
    RefMut::filter_map(slot, Option::as_mut).map_err(|_| in_use())
}

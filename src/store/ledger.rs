//! Customers and the append-only balance ledger. The balance is the ledger's sum; a cached
//! copy in `balances` makes reads O(1) and `lavka check` proves the two agree.

use super::schema::*;
use super::{Store, Tx, decode, encode};
use crate::domain::{Currency, LedgerEntry, OrderId, OutboxMessage, User, UserId};
use crate::error::{Error, Result};
use redb::ReadableTable;

/// A payment as a provider reports it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Payment {
    pub provider: String,
    pub external_id: String,
    pub amount: i64,
    pub currency: Currency,
}

impl Payment {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.provider.is_empty() || self.provider.len() > 32 {
            return Err(Error::bad("payment provider must be 1-32 characters"));
        }
        if self.external_id.is_empty() || self.external_id.len() > 256 {
            return Err(Error::bad("payment id must be 1-256 characters"));
        }
        if self.amount <= 0 {
            return Err(Error::bad("payment amount must be positive"));
        }
        Ok(())
    }
}

/// Profile fields we learn from the channel (Telegram) about a customer.
#[derive(Clone, Debug, Default)]
pub struct UserInfo {
    pub name: String,
    pub username: Option<String>,
    pub lang: Option<String>,
}

/// Creates the user if new, refreshes name/username/lang if given; returns the record.
pub fn ensure_user(tx: &Tx, id: UserId, info: Option<&UserInfo>) -> Result<User> {
    let mut t = tx.users()?;
    let existing: Option<User> = t.get(id)?.map(|v| decode(v.value())).transpose()?;
    let mut user = existing.clone().unwrap_or(User {
        id,
        name: String::new(),
        username: None,
        lang: None,
        unreachable: false,
        created_at: tx.now,
    });
    if let Some(i) = info {
        if !i.name.is_empty() {
            user.name = i.name.clone();
        }
        if i.username.is_some() {
            user.username = i.username.clone();
        }
        if i.lang.is_some() {
            user.lang = i.lang.clone();
        }
    }
    if existing.as_ref() != Some(&user) {
        t.insert(id, encode(&user)?.as_slice())?;
    }
    Ok(user)
}

/// The currency of a user's balance: that of their first ledger entry (a balance holds one
/// currency; entries in another are refused).
pub(crate) fn balance_currency(tx: &Tx, user: UserId) -> Result<Option<Currency>> {
    let t = tx.ledger()?;
    let first = t.range((user, 0)..=(user, u64::MAX))?.next();
    match first {
        Some(r) => Ok(Some(decode::<LedgerEntry>(r?.1.value())?.currency)),
        None => Ok(None),
    }
}

pub(crate) fn balance_in(tx: &Tx, user: UserId) -> Result<i64> {
    Ok(tx.balances()?.get(user)?.map(|v| v.value()).unwrap_or(0))
}

/// Appends a ledger entry and updates the cached balance. A debit that would make the
/// balance negative is refused (before anything is written).
pub fn post_entry(
    tx: &Tx,
    user: UserId,
    amount: i64,
    currency: Currency,
    reason: &str,
    order_id: Option<OrderId>,
) -> Result<i64> {
    if amount == 0 {
        return Err(Error::bad("a ledger entry of zero"));
    }
    if let Some(c) = balance_currency(tx, user)?
        && c != currency
    {
        return Err(Error::conflict(format!("the balance of user {user} is kept in {c}, not {currency}")));
    }
    let have = balance_in(tx, user)?;
    let next = have.checked_add(amount).ok_or_else(|| Error::bad("balance overflow"))?;
    if next < 0 {
        return Err(Error::InsufficientBalance { need: -amount, have });
    }
    ensure_user(tx, user, None)?;
    let seq = tx.next_id("ledger")?;
    let entry = LedgerEntry {
        seq,
        user_id: user,
        amount,
        currency,
        reason: reason.to_string(),
        order_id,
        at: tx.now,
    };
    tx.ledger()?.insert((user, seq), encode(&entry)?.as_slice())?;
    tx.balances()?.insert(user, next)?;
    Ok(next)
}

/// Credits a user's balance (owner top-up, manual compensation). Returns the new balance.
pub fn credit_balance(tx: &Tx, user: UserId, amount: i64, currency: Currency, reason: &str) -> Result<i64> {
    if amount <= 0 {
        return Err(Error::bad("a credit must be positive"));
    }
    post_entry(tx, user, amount, currency, reason, None)
}

/// A balance top-up as recorded.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Topup {
    pub provider: String,
    pub external_id: String,
    pub user_id: UserId,
    pub amount: i64,
    pub currency: Currency,
    pub at: crate::domain::Millis,
}

impl super::codec::Record for Topup {
    const FORMAT: super::codec::Format = super::codec::Format::Json;
}

/// What applying a top-up did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TopupResult {
    pub topup: Topup,
    pub balance: i64,
    /// This payment was applied before; nothing changed.
    pub duplicate: bool,
}

/// Credits a paid top-up to the user's balance, once per `(provider, external id)`.
pub fn apply_topup(tx: &Tx, user: UserId, pay: &Payment) -> Result<TopupResult> {
    if pay.amount <= 0 || pay.provider.is_empty() || pay.external_id.is_empty() || pay.external_id.len() > 256
    {
        return Err(Error::bad("a top-up needs a positive amount, a provider and a payment id"));
    }
    let key = (pay.provider.as_str(), pay.external_id.as_str());
    let mut t = tx.topups()?;
    if let Some(prior) = t.get(key)?.map(|v| decode::<Topup>(v.value())).transpose()? {
        let balance = balance_in(tx, prior.user_id)?;
        return Ok(TopupResult { topup: prior, balance, duplicate: true });
    }
    let reason = format!("top-up via {} {}", pay.provider, pay.external_id);
    let balance = post_entry(tx, user, pay.amount, pay.currency, &reason, None)?;
    let topup = Topup {
        provider: pay.provider.clone(),
        external_id: pay.external_id.clone(),
        user_id: user,
        amount: pay.amount,
        currency: pay.currency,
        at: tx.now,
    };
    t.insert(key, encode(&topup)?.as_slice())?;
    Ok(TopupResult { topup, balance, duplicate: false })
}

/// Records a message the shop sent (or would have sent) for the admin to see.
pub fn record_outbox(tx: &Tx, chat_id: i64, text: &str) -> Result<u64> {
    record_outbox_for(tx, chat_id, text, None)
}

/// The same, naming the order whose goods the message carries.
pub(crate) fn record_outbox_for(tx: &Tx, chat_id: i64, text: &str, order_id: Option<OrderId>) -> Result<u64> {
    let id = tx.next_id("outbox")?;
    let m = OutboxMessage { id, chat_id, text: text.to_string(), at: tx.now, order_id };
    tx.outbox()?.insert(id, encode(&m)?.as_slice())?;
    Ok(id)
}

/// Marks a Telegram update as accepted; false if it was seen before.
pub fn mark_update_processed(tx: &Tx, update_id: i64) -> Result<bool> {
    let mut t = tx.processed_updates()?;
    if t.get(update_id)?.is_some() {
        return Ok(false);
    }
    t.insert(update_id, tx.now)?;
    Ok(true)
}

impl Store {
    pub async fn user(&self, id: UserId) -> Result<Option<User>> {
        self.read(move |rtx, _| rtx.open_table(USERS)?.get(id)?.map(|v| decode(v.value())).transpose()).await
    }

    pub async fn balance(&self, id: UserId) -> Result<i64> {
        self.read(move |rtx, _| Ok(rtx.open_table(BALANCES)?.get(id)?.map(|v| v.value()).unwrap_or(0))).await
    }

    /// A user's ledger, oldest first.
    pub async fn ledger(&self, id: UserId) -> Result<Vec<LedgerEntry>> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(LEDGER)?;
            t.range((id, 0)..=(id, u64::MAX))?.map(|r| decode(r?.1.value())).collect()
        })
        .await
    }

    /// Balance top-ups, at most `limit` (no particular order: they are keyed by payment).
    pub async fn topups(&self, limit: usize) -> Result<Vec<Topup>> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(TOPUPS)?;
            let mut out: Vec<Topup> =
                t.iter()?.take(limit).map(|r| decode(r?.1.value())).collect::<Result<_>>()?;
            out.sort_by_key(|t| std::cmp::Reverse(t.at));
            Ok(out)
        })
        .await
    }

    /// The newest `limit` outbox messages, newest first.
    pub async fn outbox(&self, limit: usize) -> Result<Vec<OutboxMessage>> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(OUTBOX)?;
            t.iter()?.rev().take(limit).map(|r| decode(r?.1.value())).collect()
        })
        .await
    }
}

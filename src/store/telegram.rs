//! What the Telegram channel keeps: accepted updates (each becomes a `process_update` job in
//! the same transaction as its dedupe record), the polling offset and webhook secret, the
//! bot's view of a user (chat id, chosen language), delivery marks and broadcasts.

use super::jobs::{EnqueueOpts, enqueue};
use super::ledger::{UserInfo, ensure_user, mark_update_processed};
use super::schema::*;
use super::{Store, Tx, decode, encode};
use crate::domain::{JobKind, Millis, OrderId, User, UserId};
use crate::error::{Error, Result};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

/// Stores one update as a `process_update` job unless its `update_id` was seen before.
/// Returns whether it was new. The caller acknowledges the update only after the commit.
/// A pressed button also gets an `answer_callback` job of the urgent lane, so its spinner
/// stops however long the queue of replies is (a pre-checkout query is urgent itself).
pub fn accept_update(tx: &Tx, update_id: i64, update: &serde_json::Value) -> Result<bool> {
    if !mark_update_processed(tx, update_id)? {
        return Ok(false);
    }
    if let Some(id) = update.pointer("/callback_query/id").and_then(|v| v.as_str()) {
        enqueue(tx, JobKind::AnswerCallback { query_id: id.to_string() }, EnqueueOpts::default())?;
    }
    enqueue(tx, JobKind::ProcessUpdate { update_id, update: update.clone() }, EnqueueOpts::default())?;
    Ok(true)
}

/// Stores a batch from `getUpdates` and the offset of the next call in one transaction, so
/// a restart asks Telegram only for what was not stored. Returns how many were new.
pub fn accept_polled(tx: &Tx, updates: &[(i64, serde_json::Value)], next_offset: i64) -> Result<usize> {
    let mut new = 0;
    for (id, u) in updates {
        if accept_update(tx, *id, u)? {
            new += 1;
        }
    }
    put_state(tx, "poll_offset", next_offset.to_string().as_bytes())?;
    Ok(new)
}

fn put_state(tx: &Tx, key: &str, value: &[u8]) -> Result<()> {
    tx.telegram_state()?.insert(key, value)?;
    Ok(())
}

fn get_state(tx: &Tx, key: &str) -> Result<Option<String>> {
    let t = tx.telegram_state()?;
    let v = t.get(key)?.map(|v| String::from_utf8_lossy(v.value()).into_owned());
    Ok(v)
}

/// The webhook secret: the one kept in the database, else `generated` (stored now).
pub fn webhook_secret(tx: &Tx, generated: &str) -> Result<String> {
    if let Some(s) = get_state(tx, "webhook_secret")?.filter(|s| !s.is_empty()) {
        return Ok(s);
    }
    put_state(tx, "webhook_secret", generated.as_bytes())?;
    Ok(generated.to_string())
}

/// The bot's own record of a user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TelegramUser {
    /// The private chat with the bot (equal to the user id in Telegram).
    pub chat_id: Option<i64>,
    /// Language chosen with `/lang`; wins over Telegram's `language_code`.
    #[serde(default)]
    pub lang: Option<String>,
}

impl super::codec::Record for TelegramUser {
    const FORMAT: super::codec::Format = super::codec::Format::Json;
}

fn tg_user(tx: &Tx, id: UserId) -> Result<TelegramUser> {
    let t = tx.telegram_users()?;
    let v = t.get(id)?.map(|v| decode(v.value())).transpose()?;
    Ok(v.unwrap_or_default())
}

fn save_tg_user(tx: &Tx, id: UserId, u: &TelegramUser) -> Result<()> {
    tx.telegram_users()?.insert(id, encode(u)?.as_slice())?;
    Ok(())
}

/// Marks a user as (un)reachable: they blocked or unblocked the bot. Reachable again, the
/// paid goods that waited for them are sent (in the same transaction).
pub fn set_unreachable(tx: &Tx, id: UserId, unreachable: bool) -> Result<()> {
    let mut user = ensure_user(tx, id, None)?;
    if user.unreachable != unreachable {
        user.unreachable = unreachable;
        tx.users()?.insert(id, encode(&user)?.as_slice())?;
        if !unreachable {
            super::orders::redeliver_waiting(tx, id)?;
        }
    }
    Ok(())
}

/// Records that a user wrote to the bot: profile refreshed, reachable again (they may have
/// unblocked the bot), the private chat remembered. Writes only what changed.
pub fn touch_user(tx: &Tx, id: UserId, info: &UserInfo, chat: Option<i64>) -> Result<(User, TelegramUser)> {
    let mut user = ensure_user(tx, id, Some(info))?;
    if user.unreachable {
        set_unreachable(tx, id, false)?;
        user.unreachable = false;
    }
    let mut tu = tg_user(tx, id)?;
    if chat.is_some() && tu.chat_id != chat {
        tu.chat_id = chat;
        save_tg_user(tx, id, &tu)?;
    }
    Ok((user, tu))
}

/// Sets (or clears) the language a user chose.
pub fn set_lang(tx: &Tx, id: UserId, lang: Option<&str>) -> Result<()> {
    let mut tu = tg_user(tx, id)?;
    tu.lang = lang.map(str::to_string);
    save_tg_user(tx, id, &tu)
}

/// Where a delivery stands when a run begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStart {
    /// Nothing was sent yet; the mark is set, send now.
    Go,
    /// Delivered already.
    Done,
    /// An earlier run began a send at this time and never recorded its outcome (a crash, or
    /// an answer that did not say whether the message arrived). It must not be sent again.
    Uncertain(Millis),
}

/// Sets the delivery mark of a paid order before its goods are sent.
pub fn begin_delivery(tx: &Tx, order_id: OrderId) -> Result<DeliveryStart> {
    let o = super::orders::order_in(tx, order_id)?;
    if o.delivered_at.is_some() || o.delivery_message_id.is_some() {
        return Ok(DeliveryStart::Done);
    }
    let mut marks = tx.delivery_marks()?;
    if let Some(at) = marks.get(order_id)?.map(|v| v.value()) {
        return Ok(DeliveryStart::Uncertain(at));
    }
    marks.insert(order_id, tx.now)?;
    Ok(DeliveryStart::Go)
}

/// What [`deliver_to_outbox`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxDelivery {
    /// The message is in the outbox (this id) and the order is delivered, in this commit.
    Delivered(u64),
    /// Nothing to do: delivered already, or not (or no longer) deliverable.
    Nothing,
    /// An earlier run (of a version that sent outside this transaction, or through the bot)
    /// left a delivery mark: its outcome is unknown, settle it as such.
    Uncertain(Millis),
}

/// Delivers a paid order in outbox mode (no channel configured): the outbox message and the
/// order's delivery are written in the same transaction, so a crash leaves both or neither
/// — never a delivered order without its message, nor a message sent twice.
pub fn deliver_to_outbox(tx: &Tx, order_id: OrderId, chat_id: i64, text: &str) -> Result<OutboxDelivery> {
    let o = super::orders::order_in(tx, order_id)?;
    if !matches!(o.status, crate::domain::OrderStatus::Paid | crate::domain::OrderStatus::Ready) {
        return Ok(OutboxDelivery::Nothing);
    }
    if let Some(at) = tx.delivery_marks()?.get(order_id)?.map(|v| v.value()) {
        return Ok(OutboxDelivery::Uncertain(at));
    }
    let id = super::ledger::record_outbox_for(tx, chat_id, text, Some(order_id))?;
    super::orders::mark_delivered_to(tx, order_id, Some(id as i64), true)?;
    Ok(OutboxDelivery::Delivered(id))
}

/// The send surely failed (nothing reached the customer): clear the mark so a retry sends.
pub fn abort_delivery(tx: &Tx, order_id: OrderId) -> Result<()> {
    tx.delivery_marks()?.remove(order_id)?;
    Ok(())
}

/// The goods arrived in message `message_id`: record it and clear the mark.
pub fn finish_delivery(tx: &Tx, order_id: OrderId, message_id: Option<i64>) -> Result<bool> {
    tx.delivery_marks()?.remove(order_id)?;
    super::orders::mark_delivered(tx, order_id, message_id)
}

/// A send of unknown outcome: the order is recorded as delivered without a message id and
/// the admins are told to check with the customer (`/redeliver` sends it again by hand).
pub fn settle_uncertain_delivery(tx: &Tx, order_id: OrderId, began_at: Millis) -> Result<()> {
    tx.delivery_marks()?.remove(order_id)?;
    if super::orders::mark_delivered(tx, order_id, None)? {
        let text = format!(
            "⚠️ Order #{order_id}: a delivery began at {} and its outcome is unknown (crash or timeout). \
             It is not sent again automatically. Ask the customer; /redeliver {order_id} sends it again.",
            crate::domain::fmt_time(began_at)
        );
        enqueue(tx, JobKind::AlertAdmin { text }, EnqueueOpts::once(format!("uncertain:{order_id}")))?;
    }
    Ok(())
}

/// A message to every reachable user, sent in parts by `broadcast` jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    pub id: u64,
    pub text: String,
    pub created_at: Millis,
    /// The last user id handled; the next part starts after it.
    #[serde(default)]
    pub cursor: Option<UserId>,
    #[serde(default)]
    pub sent: u64,
    /// Users who blocked the bot meanwhile.
    #[serde(default)]
    pub unreachable: u64,
    #[serde(default)]
    pub finished_at: Option<Millis>,
}

impl super::codec::Record for Broadcast {
    const FORMAT: super::codec::Format = super::codec::Format::Json;
}

/// Creates a broadcast and its first job. `key` de-duplicates a repeated request (e.g. the
/// update id of the admin's command): the same key returns the same broadcast.
pub fn create_broadcast(tx: &Tx, text: &str, key: &str) -> Result<Broadcast> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::bad("the broadcast text is empty"));
    }
    if text.chars().count() > 4000 {
        return Err(Error::bad("the broadcast text is longer than 4000 characters"));
    }
    let state_key = format!("broadcast:{key}");
    if let Some(id) = get_state(tx, &state_key)?.and_then(|s| s.parse::<u64>().ok()) {
        return broadcast_in(tx, id);
    }
    let id = tx.next_id("broadcast")?;
    let b = Broadcast {
        id,
        text: text.to_string(),
        created_at: tx.now,
        cursor: None,
        sent: 0,
        unreachable: 0,
        finished_at: None,
    };
    tx.broadcasts()?.insert(id, encode(&b)?.as_slice())?;
    put_state(tx, &state_key, id.to_string().as_bytes())?;
    enqueue(
        tx,
        JobKind::Broadcast { broadcast_id: id, part: 0 },
        EnqueueOpts::once(format!("broadcast:{id}:0")),
    )?;
    Ok(b)
}

pub fn broadcast_in(tx: &Tx, id: u64) -> Result<Broadcast> {
    let t = tx.broadcasts()?;
    let v = t.get(id)?.ok_or_else(|| Error::not_found(format!("broadcast {id}")))?;
    decode(v.value())
}

/// Records progress after a recipient; `next_part` enqueues the job of the next part.
pub fn broadcast_progress(
    tx: &Tx,
    id: u64,
    cursor: UserId,
    sent: bool,
    next_part: Option<u32>,
) -> Result<Broadcast> {
    let mut b = broadcast_in(tx, id)?;
    if b.cursor.is_some_and(|c| c >= cursor) {
        return Ok(b);
    }
    b.cursor = Some(cursor);
    if sent {
        b.sent += 1;
    } else {
        b.unreachable += 1;
    }
    tx.broadcasts()?.insert(id, encode(&b)?.as_slice())?;
    if let Some(part) = next_part {
        let kind = JobKind::Broadcast { broadcast_id: id, part };
        enqueue(tx, kind, EnqueueOpts::once(format!("broadcast:{id}:{part}")))?;
    }
    Ok(b)
}

/// Marks a broadcast finished.
pub fn finish_broadcast(tx: &Tx, id: u64) -> Result<Broadcast> {
    let mut b = broadcast_in(tx, id)?;
    if b.finished_at.is_none() {
        b.finished_at = Some(tx.now);
        tx.broadcasts()?.insert(id, encode(&b)?.as_slice())?;
    }
    Ok(b)
}

impl Store {
    /// The next polling offset (0 before the first batch).
    pub async fn poll_offset(&self) -> Result<i64> {
        self.read(|rtx, _| {
            let t = rtx.open_table(TELEGRAM_STATE)?;
            let v = t.get("poll_offset")?.and_then(|v| String::from_utf8_lossy(v.value()).parse().ok());
            Ok(v.unwrap_or(0))
        })
        .await
    }

    /// A customer's language code: the one of their conversation (what they write in or
    /// chose last), else the one chosen with `/lang`, else their Telegram client's.
    pub async fn lang_code(&self, id: UserId) -> Result<Option<String>> {
        self.read(move |rtx, _| {
            let conv: Option<super::conversations::Conversation> =
                rtx.open_table(CONVERSATIONS)?.get(id)?.map(|v| decode(v.value())).transpose()?;
            if let Some(l) = conv.and_then(|c| c.lang) {
                return Ok(Some(l.code().to_string()));
            }
            let tu: Option<TelegramUser> =
                rtx.open_table(TELEGRAM_USERS)?.get(id)?.map(|v| decode(v.value())).transpose()?;
            if let Some(l) = tu.and_then(|t| t.lang) {
                return Ok(Some(l));
            }
            let u: Option<User> = rtx.open_table(USERS)?.get(id)?.map(|v| decode(v.value())).transpose()?;
            Ok(u.and_then(|u| u.lang))
        })
        .await
    }

    pub async fn telegram_user(&self, id: UserId) -> Result<TelegramUser> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(TELEGRAM_USERS)?;
            let v = t.get(id)?.map(|v| decode(v.value())).transpose()?;
            Ok(v.unwrap_or_default())
        })
        .await
    }

    pub async fn broadcast(&self, id: u64) -> Result<Broadcast> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(BROADCASTS)?;
            let v = t.get(id)?.ok_or_else(|| Error::not_found(format!("broadcast {id}")))?;
            decode(v.value())
        })
        .await
    }

    /// Up to `limit` reachable users with ids above `after`, by id.
    pub async fn reachable_users_after(&self, after: Option<UserId>, limit: usize) -> Result<Vec<User>> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(USERS)?;
            let mut out = Vec::new();
            let range = match after {
                Some(a) if a == i64::MAX => return Ok(out),
                Some(a) => t.range(a + 1..)?,
                None => t.range(i64::MIN..)?,
            };
            for r in range {
                let u: User = decode(r?.1.value())?;
                if !u.unreachable {
                    out.push(u);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Every user count and how many are reachable (for `/stats`).
    pub async fn user_counts(&self) -> Result<(u64, u64)> {
        self.read(|rtx, _| {
            let t = rtx.open_table(USERS)?;
            let (mut all, mut ok) = (0, 0);
            for r in t.iter()? {
                let u: User = decode(r?.1.value())?;
                all += 1;
                if !u.unreachable {
                    ok += 1;
                }
            }
            Ok((all, ok))
        })
        .await
    }
}

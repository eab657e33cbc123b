//! The one sender of every outgoing Telegram message (replies, deliveries, notifications,
//! invoices, edits, broadcasts), at Telegram's own limits: about 30 messages per second
//! overall, one per second to a private chat, 20 per minute to a group.
//!
//! No worker sleeps waiting for a slot. Inside a job, a send whose chat (or the whole bot)
//! is not free yet books the next free slot and returns `RetryAfter` until then: the queue
//! reschedules the job for exactly that moment, the worker takes other work, and the job's
//! [`memo`](crate::queue::memo) keeps what it already sent, so the run that resumes sends
//! only the rest. Before sending on a booked slot the sender checks what was actually sent
//! (a job that came late must not crowd the next one). A 429 holds the chat for exactly its
//! `retry_after` and the job comes back then; 403 (blocked) becomes `Unreachable`. Outside a
//! job (tools, tests) a send waits for its slot inline. Long texts are split; button and
//! pre-checkout answers are not messages and are not paced (they run in the urgent lane).

use super::api::BotApi;
use super::split::{MAX_MESSAGE, split};
use crate::callback::{Button, ButtonAction};
use crate::domain::Millis;
use crate::messenger::{Messenger, Outgoing, SendError, Sent};
use crate::queue::memo::{self, Booked};
use crate::store::Clock;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use teloxide_core::RequestError;
use teloxide_core::payloads::{AnswerCallbackQuery, EditMessageText, SendMessage};
use teloxide_core::prelude::*;
use teloxide_core::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, MessageId, ParseMode, WebAppInfo,
};

/// Telegram's limits as kept by the sender.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Messages in any one second, overall.
    pub per_sec: u32,
    /// Between two sends to one private chat.
    pub chat: Duration,
    /// Between two sends to one group chat.
    pub group: Duration,
}

impl Limits {
    pub fn from_config(c: &crate::config::Config) -> Limits {
        Limits {
            per_sec: c.telegram_global_per_sec.max(1),
            chat: Duration::from_millis(c.telegram_chat_interval_ms),
            group: Duration::from_millis(60_000 / c.telegram_group_per_min.max(1) as u64),
        }
    }

    /// The width of one overall send cell: each cell holds at most one message, and any
    /// one second touches at most `per_sec` cells (`floor(1000 / w) + 1 ≤ per_sec`), so the
    /// overall limit holds whatever the order of bookings. 35 ms at 30/s (28.6/s at most);
    /// 0 (no overall limit) at 1,000/s and above.
    fn cell(&self) -> Millis {
        let n = self.per_sec as i64;
        if n >= 1000 {
            0
        } else if n <= 1 {
            1000
        } else {
            1000 / (n - 1) + 1
        }
    }

    fn interval(&self, chat: i64) -> Millis {
        // Private chats have positive ids; groups, supergroups and channels negative ones.
        (if chat < 0 { self.group } else { self.chat }).as_millis() as Millis
    }
}

#[derive(Clone, Copy)]
struct Chat {
    /// The earliest time a new booking may take (after every slot booked so far).
    next: Millis,
    /// When the last message actually went out.
    last: Option<Millis>,
    /// Telegram asked for quiet until then (a 429).
    held: Option<Millis>,
}

impl Chat {
    fn new(now: Millis) -> Chat {
        Chat { next: now, last: None, held: None }
    }
}

struct Slots {
    /// The overall send cells taken (booked or sent), by index (time / cell width). A new
    /// booking takes the earliest free cell its chat allows, so a chat booked far ahead
    /// (its third message) does not push the next chat's first message behind it.
    cells: BTreeSet<Millis>,
    chats: HashMap<i64, Chat>,
    /// When the messages of the last second actually went out, oldest first.
    recent: VecDeque<Millis>,
}

impl Slots {
    /// The earliest moment from `now` on that what was actually sent allows a send to `chat`.
    fn allowed(&mut self, l: &Limits, chat: i64, now: Millis) -> Millis {
        while self.recent.front().is_some_and(|t| now - *t >= 1000) {
            self.recent.pop_front();
        }
        let mut at = now;
        if self.recent.len() >= l.per_sec as usize {
            at = at.max(self.recent[self.recent.len() - l.per_sec as usize] + 1000);
        }
        if let Some(c) = self.chats.get(&chat) {
            if let Some(last) = c.last {
                at = at.max(last + l.interval(chat));
            }
            if let Some(held) = c.held {
                at = at.max(held);
            }
        }
        at
    }

    /// The earliest free cell from `from` on: its index, and the moment in it to use.
    fn free_cell(&self, l: &Limits, from: Millis) -> (Option<Millis>, Millis) {
        let w = l.cell();
        if w == 0 {
            return (None, from);
        }
        let mut c = from.div_euclid(w);
        for taken in self.cells.range(c..) {
            if *taken != c {
                break;
            }
            c += 1;
        }
        (Some(c), from.max(c * w))
    }

    /// Forgets cells and chats long past.
    fn prune(&mut self, l: &Limits, now: Millis) {
        let keep_from = (now - 2_000).div_euclid(l.cell().max(1));
        while self.cells.first().is_some_and(|c| *c < keep_from) {
            self.cells.pop_first();
        }
        if self.chats.len() > 50_000 {
            self.chats.retain(|_, c| c.next > now || c.held.is_some_and(|h| h > now));
        }
    }

    fn sent(&mut self, chat: i64, now: Millis, l: &Limits) {
        self.recent.push_back(now);
        let c = self.chats.entry(chat).or_insert(Chat::new(now));
        c.last = Some(now);
        c.next = c.next.max(now + l.interval(chat));
    }
}

/// Hands out send slots that keep the limits, on the store's clock (so tests that move
/// the clock move the slots too).
pub struct Limiter {
    limits: Limits,
    clock: Clock,
    slots: Mutex<Slots>,
}

impl Limiter {
    pub fn new(limits: Limits, clock: Clock) -> Self {
        Limiter {
            limits,
            clock,
            slots: Mutex::new(Slots {
                cells: BTreeSet::new(),
                chats: HashMap::new(),
                recent: VecDeque::new(),
            }),
        }
    }

    /// A send to `chat` now: `Ok` when it may go at once (it is counted as sent), else how
    /// long until the slot booked for it in `booked`, which the caller brings back then.
    pub fn acquire(&self, chat: i64, booked: &mut Option<Booked>) -> Result<(), Duration> {
        self.slot(chat, booked, true)
    }

    /// Like [`acquire`](Self::acquire) but nothing is sent yet: `Ok` when a send could go
    /// now (a slot booked earlier stays booked for it). A job checks this before doing the
    /// work whose answer it will send, so the work is done once, when its slot comes.
    pub fn ready(&self, chat: i64, booked: &mut Option<Booked>) -> Result<(), Duration> {
        self.slot(chat, booked, false)
    }

    fn slot(&self, chat: i64, booked: &mut Option<Booked>, send: bool) -> Result<(), Duration> {
        let l = &self.limits;
        let now = self.clock.now();
        let wait = |at: Millis| Duration::from_millis((at - now) as u64);
        let mut s = self.slots.lock().expect("limiter lock");
        s.prune(l, now);
        if let Some(b) = booked.take().filter(|b| b.chat == chat) {
            if b.at > now {
                *booked = Some(b);
                return Err(wait(b.at));
            }
            // Our slot. Taken late, it may be too close to what went out meanwhile: then
            // the earliest moment that allows is booked — not the end of the line, which a
            // job late through no fault of its own does not deserve.
            let allowed = s.allowed(l, chat, now);
            if allowed <= now {
                if send {
                    tracing::trace!(chat, late_ms = now - b.at, "a booked send slot taken");
                    s.sent(chat, now, l);
                } else {
                    tracing::trace!(chat, late_ms = now - b.at, "a booked send slot came");
                    *booked = Some(b);
                }
                return Ok(());
            }
            // The cell booked before is given back (a booking's moment lies in its cell).
            if l.cell() > 0 {
                s.cells.remove(&b.at.div_euclid(l.cell()));
            }
            let (cell, at) = s.free_cell(l, allowed);
            s.cells.extend(cell);
            let c = s.chats.entry(chat).or_insert(Chat::new(now));
            c.next = c.next.max(at + l.interval(chat));
            *booked = Some(Booked { chat, at });
            return Err(wait(at));
        }
        let chat_next = s.chats.get(&chat).map_or(now, |c| c.next);
        let from = now.max(chat_next).max(s.allowed(l, chat, now));
        let (cell, at) = s.free_cell(l, from);
        if at <= now {
            if send {
                s.cells.extend(cell);
                s.sent(chat, now, l);
            }
            return Ok(());
        }
        s.cells.extend(cell);
        let c = s.chats.entry(chat).or_insert(Chat::new(now));
        c.next = at + l.interval(chat);
        *booked = Some(Booked { chat, at });
        Err(wait(at))
    }

    /// Telegram said to wait this long before writing to `chat` again (a 429).
    pub fn hold(&self, chat: i64, wait: Duration) {
        let until = self.clock.now() + wait.as_millis() as Millis;
        let mut s = self.slots.lock().expect("limiter lock");
        let c = s.chats.entry(chat).or_insert(Chat::new(until));
        c.next = c.next.max(until);
        c.held = Some(c.held.map_or(until, |h| h.max(until)));
    }
}

/// The Telegram channel's sender.
pub struct TelegramSender {
    /// The typed client, for the calls that need it (multipart uploads, file downloads).
    bot: Bot,
    api: BotApi,
    limiter: Limiter,
}

/// Maps a failure of the typed client (see [`super::api`] for the calls made without it).
pub fn map_error(e: &RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(s) => SendError::RetryAfter(s.duration()),
        RequestError::Api(api) if super::api::unreachable(api) => SendError::Unreachable,
        RequestError::Api(other) => SendError::Rejected(other.to_string()),
        RequestError::MigrateToChatId(c) => SendError::Rejected(format!("the group moved to chat {c}")),
        // A connection that was never made carried nothing; any other network failure may
        // have happened after Telegram accepted the message.
        RequestError::Network(n) if n.is_connect() || n.is_builder() => SendError::Transient(e.to_string()),
        RequestError::Network(_) => SendError::Uncertain(e.to_string()),
        RequestError::InvalidJson { .. } | RequestError::Io(_) => SendError::Uncertain(e.to_string()),
    }
}

/// Inline keyboard markup from channel-independent buttons (invalid URLs and over-long
/// button data are dropped).
pub fn keyboard(rows: &[Vec<Button>]) -> Option<InlineKeyboardMarkup> {
    let rows: Vec<Vec<InlineKeyboardButton>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .filter_map(|b| match &b.action {
                    ButtonAction::Callback(cb) => {
                        let data = cb.encode();
                        // Telegram would refuse the whole message over one long button (an
                        // id stored before the limit on new ids).
                        if data.len() > crate::callback::MAX_LEN {
                            tracing::warn!(data = %data, "a button whose data is too long was left out");
                            return None;
                        }
                        Some(InlineKeyboardButton::callback(&b.label, data))
                    }
                    ButtonAction::Url(u) => u.parse().ok().map(|u| InlineKeyboardButton::url(&b.label, u)),
                    ButtonAction::WebApp(u) => {
                        u.parse().ok().map(|url| InlineKeyboardButton::web_app(&b.label, WebAppInfo { url }))
                    }
                })
                .collect::<Vec<_>>()
        })
        .filter(|r| !r.is_empty())
        .collect();
    (!rows.is_empty()).then(|| InlineKeyboardMarkup::new(rows))
}

impl TelegramSender {
    pub fn new(bot: Bot, api: BotApi, limits: Limits, clock: Clock) -> Self {
        TelegramSender { bot, api, limiter: Limiter::new(limits, clock) }
    }

    pub fn api(&self) -> &BotApi {
        &self.api
    }

    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// A send slot for `chat`: at once, or (in a job) `RetryAfter` until the booked one, or
    /// (outside a job) after waiting for it.
    async fn pace(&self, chat: i64) -> Result<(), SendError> {
        match memo::with(|m| self.limiter.acquire(chat, &mut m.booked)) {
            Some(Ok(())) => Ok(()),
            Some(Err(wait)) => Err(SendError::RetryAfter(wait)),
            // Outside a job: the slot is booked for us; wait for it here.
            None => {
                if let Err(wait) = self.limiter.acquire(chat, &mut None) {
                    tokio::time::sleep(wait).await;
                }
                Ok(())
            }
        }
    }

    /// In a job: `RetryAfter` until a message to `chat` could go out (its slot is booked
    /// for the job's first send), so the job does its work when it can send the answer.
    pub fn ready(&self, chat: i64) -> Result<(), SendError> {
        match memo::with(|m| self.limiter.ready(chat, &mut m.booked)) {
            Some(Err(wait)) => Err(SendError::RetryAfter(wait)),
            _ => Ok(()),
        }
    }

    /// One paced Bot API call that creates or changes a message in `chat`, as a step of the
    /// current job (a later run of the job gets its result instead of calling again).
    async fn paced<T>(
        &self,
        chat: i64,
        what: &[&[u8]],
        call: impl AsyncFnOnce() -> Result<T, SendError>,
    ) -> Result<T, SendError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        memo::step(memo::fingerprint(what), || async {
            self.pace(chat).await?;
            call().await.map_err(|e| self.failed(chat, e))
        })
        .await
    }

    fn failed(&self, chat: i64, mapped: SendError) -> SendError {
        // A 429: the chat is held for exactly `retry_after`, and the job runs again then.
        if let SendError::RetryAfter(wait) = mapped {
            self.limiter.hold(chat, wait);
            metrics::counter!("lavka_telegram_429_total", "chat" => if chat < 0 { "group" } else { "private" })
                .increment(1);
        }
        mapped
    }

    async fn send_part(&self, msg: &Outgoing, text: String, last: bool) -> Result<Sent, SendError> {
        let chat = msg.chat_id;
        let mut req = SendMessage::new(ChatId(chat), text.clone()).parse_mode(ParseMode::Html);
        if last && let Some(kb) = keyboard(&msg.buttons) {
            req = req.reply_markup(kb);
        }
        let body = serde_json::to_vec(&req).unwrap_or_default();
        self.paced(chat, &[b"sendMessage", &body], async || {
            let m = self.api.call::<Message>("sendMessage", &req, true).await?;
            metrics::counter!("lavka_telegram_sent_total").increment(1);
            Ok(Sent { message_id: m.id.0 as i64 })
        })
        .await
    }

    /// Replaces the text and buttons of one of the bot's messages (catalogue navigation).
    /// `Ok(false)`: it cannot be edited (too old, deleted, or the new text would need more
    /// than one message) and the caller sends a new one instead.
    pub async fn edit(&self, message_id: i64, msg: &Outgoing) -> Result<bool, SendError> {
        if msg.text.chars() > MAX_MESSAGE {
            return Ok(false);
        }
        let chat = msg.chat_id;
        let mut req = EditMessageText::new(ChatId(chat), MessageId(message_id as i32), msg.text.html())
            .parse_mode(ParseMode::Html);
        if let Some(kb) = keyboard(&msg.buttons) {
            req = req.reply_markup(kb);
        }
        let body = serde_json::to_vec(&req).unwrap_or_default();
        self.paced(chat, &[b"editMessageText", &body], async || {
            match self.api.call::<serde_json::Value>("editMessageText", &req, true).await {
                Ok(_) => {
                    metrics::counter!("lavka_telegram_edited_total").increment(1);
                    Ok(true)
                }
                // Pressed twice: it already shows this.
                Err(SendError::AlreadyDone) => Ok(true),
                Err(SendError::Rejected(m)) => {
                    tracing::debug!(error = %m, "message not editable; sending a new one");
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Sends a Stars invoice (`sendInvoice`; `body` has its `chat_id`).
    pub async fn send_invoice(&self, chat: i64, body: &serde_json::Value) -> Result<(), SendError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.paced(chat, &[b"sendInvoice", &bytes], async || {
            self.api.call::<serde_json::Value>("sendInvoice", body, true).await.map(|_| ())
        })
        .await
    }

    /// Sends a file to a chat (admin `/backup`).
    pub async fn send_document(&self, chat: i64, path: &Path, caption: &str) -> Result<Sent, SendError> {
        let what = path.to_string_lossy();
        self.paced(chat, &[b"sendDocument", what.as_bytes(), caption.as_bytes()], async || {
            let req =
                self.bot.send_document(ChatId(chat), InputFile::file(path.to_path_buf())).caption(caption);
            match req.send().await {
                Ok(m) => Ok(Sent { message_id: m.id.0 as i64 }),
                Err(e) => Err(map_error(&e)),
            }
        })
        .await
    }

    /// Answers a button press (removes the spinner). Not a message, so not paced. A late
    /// answer is refused by Telegram and nothing can be done about it: only a failure that
    /// surely sent nothing is worth a retry.
    pub async fn answer_callback(&self, id: &str, text: Option<&str>) -> Result<(), SendError> {
        let mut req = AnswerCallbackQuery::new(id.to_string().into());
        if let Some(t) = text {
            req = req.text(t);
        }
        match self.api.call::<bool>("answerCallbackQuery", &req, true).await {
            Ok(_) => Ok(()),
            Err(e @ (SendError::Transient(_) | SendError::RetryAfter(_))) => Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "answerCallbackQuery failed");
                Ok(())
            }
        }
    }
}

#[async_trait::async_trait]
impl Messenger for TelegramSender {
    /// Sends a message, split into parts when long (buttons go under the last part); the
    /// first part's message id is returned. In a job, each part is a step: a wait or a
    /// failure after some parts went out resumes with the next part. Outside a job, once a
    /// part is out the rest are sent whatever the wait, and a failure is reported as
    /// `Uncertain` (the customer has part of it).
    async fn send(&self, msg: &Outgoing) -> Result<Sent, SendError> {
        let parts = split(&msg.text.html(), true, MAX_MESSAGE);
        let n = parts.len();
        let resumable = memo::in_job();
        let mut first = None;
        for (i, text) in parts.into_iter().enumerate() {
            match self.send_part(msg, text, i + 1 == n).await {
                Ok(s) => {
                    first.get_or_insert(s);
                }
                Err(e) if i == 0 || resumable => return Err(e),
                Err(e) => return Err(SendError::Uncertain(format!("sent {i} of {n} parts, then: {e}"))),
            }
        }
        first.ok_or_else(|| SendError::Rejected("empty message".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::Callback;
    use crate::domain::ProductId;

    fn limits() -> Limits {
        Limits { per_sec: 30, chat: Duration::from_millis(1000), group: Duration::from_millis(3000) }
    }

    /// Simulates jobs: each wants one send to its chat, books when refused, and comes back
    /// exactly at its slot (or `late` ms after it). Returns the send times per chat.
    fn simulate(order: &[i64], late: Millis) -> (Vec<(Millis, i64)>, Millis) {
        let clock = Clock::manual(1_000_000);
        let start = clock.now();
        let lim = Limiter::new(limits(), clock.clone());
        let mut waiting: Vec<(Millis, i64, Option<Booked>)> = Vec::new();
        let mut sent = Vec::new();
        for &chat in order {
            let mut b = None;
            match lim.acquire(chat, &mut b) {
                Ok(()) => sent.push((clock.now(), chat)),
                Err(d) => waiting.push((clock.now() + d.as_millis() as Millis + late, chat, b)),
            }
        }
        while !waiting.is_empty() {
            waiting.sort_by_key(|w| w.0);
            let (at, chat, mut b) = waiting.remove(0);
            if at > clock.now() {
                clock.advance(Duration::from_millis((at - clock.now()) as u64));
            }
            match lim.acquire(chat, &mut b) {
                Ok(()) => sent.push((clock.now(), chat)),
                Err(d) => waiting.push((clock.now() + d.as_millis() as Millis + late, chat, b)),
            }
        }
        let last = sent.iter().map(|s| s.0).max().unwrap_or(start) - start;
        (sent, last)
    }

    fn assert_within_limits(sent: &[(Millis, i64)]) {
        let mut times: Vec<Millis> = sent.iter().map(|s| s.0).collect();
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_second = times[i..].iter().take_while(|u| **u - t < 1000).count();
            assert!(in_second <= 30, "{in_second} sends in the second from {t}");
        }
        let mut by_chat: HashMap<i64, Vec<Millis>> = HashMap::new();
        for (t, c) in sent {
            by_chat.entry(*c).or_default().push(*t);
        }
        for (c, mut ts) in by_chat {
            ts.sort();
            for w in ts.windows(2) {
                assert!(w[1] - w[0] >= 1000, "chat {c}: sends {} ms apart", w[1] - w[0]);
            }
        }
    }

    #[test]
    fn a_chat_booked_far_ahead_does_not_push_other_chats_behind_it() {
        // 20 chats × 3 messages, arriving chat by chat (all of chat 0's first): the floor is
        // 2 s (a chat's three messages a second apart), whatever the arrival order.
        let by_chat: Vec<i64> = (0..20).flat_map(|c| [c, c, c]).collect();
        let (sent, last) = simulate(&by_chat, 0);
        assert_eq!(sent.len(), 60);
        assert_within_limits(&sent);
        assert!(last <= 2_700, "last send after {last} ms");
        // Round robin does as well.
        let rr: Vec<i64> = (0..3).flat_map(|_| 0..20).collect();
        let (sent, last) = simulate(&rr, 0);
        assert_within_limits(&sent);
        assert!(last <= 2_700, "last send after {last} ms");
    }

    #[test]
    fn many_chats_go_at_the_overall_limit_and_late_jobs_never_break_it() {
        let many: Vec<i64> = (0..300).collect();
        let (sent, last) = simulate(&many, 0);
        assert_within_limits(&sent);
        // 300 messages at 30/s take 10 s at best; the cells allow 28.6/s.
        assert!(last <= 10_700, "last send after {last} ms");
        for late in [1, 17, 40, 400] {
            let mixed: Vec<i64> = (0..100).flat_map(|c| [c % 37, c]).collect();
            let (sent, _) = simulate(&mixed, late);
            assert_eq!(sent.len(), 200);
            assert_within_limits(&sent);
        }
    }

    #[test]
    fn a_button_with_over_long_data_is_left_out_not_the_message() {
        let old = ProductId::parse(&"x".repeat(64)).unwrap();
        let ok = ProductId::parse("key").unwrap();
        let rows = vec![
            vec![Button::callback("Buy old", Callback::Buy(old)), Button::callback("Buy", Callback::Buy(ok))],
            vec![Button { label: "bad url".into(), action: ButtonAction::Url("not a url".into()) }],
        ];
        let kb = keyboard(&rows).unwrap();
        assert_eq!(kb.inline_keyboard.len(), 1);
        assert_eq!(kb.inline_keyboard[0].len(), 1);
        assert_eq!(kb.inline_keyboard[0][0].text, "Buy");
    }
}

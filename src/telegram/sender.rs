//! The one sender of every outgoing Telegram message (replies, deliveries, notifications,
//! broadcasts): Telegram's limits are kept in memory — about 30 messages per second overall,
//! one per second to a private chat, 20 per minute to a group — by spacing sends. A send
//! that would have to wait long is refused with `RetryAfter`, so the job is rescheduled
//! instead of holding a worker; a 429 from Telegram becomes `RetryAfter` (the job runs again
//! at `retry_after`); 403 (blocked) becomes `Unreachable`. Long texts are split.

use super::api::BotApi;
use super::split::{MAX_MESSAGE, split};
use crate::callback::{Button, ButtonAction};
use crate::messenger::{Messenger, Outgoing, SendError, Sent};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use teloxide_core::RequestError;
use teloxide_core::payloads::{AnswerCallbackQuery, EditMessageText, SendMessage};
use teloxide_core::prelude::*;
use teloxide_core::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, MessageId, ParseMode, WebAppInfo,
};
use tokio::time::Instant;

/// Spacing of sends.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Between any two sends.
    pub global: Duration,
    /// Between two sends to one private chat.
    pub chat: Duration,
    /// Between two sends to one group chat.
    pub group: Duration,
    /// Longest wait taken inline; a longer one is returned as `RetryAfter`.
    pub max_wait: Duration,
}

impl Limits {
    pub fn from_config(c: &crate::config::Config) -> Limits {
        let group = Duration::from_millis(60_000 / c.telegram_group_per_min.max(1) as u64);
        let chat = Duration::from_millis(c.telegram_chat_interval_ms);
        Limits {
            global: Duration::from_micros(1_000_000 / c.telegram_global_per_sec.max(1) as u64),
            chat,
            group,
            max_wait: chat.max(group) + Duration::from_millis(500),
        }
    }
}

struct Slots {
    global_next: Instant,
    chats: HashMap<i64, Instant>,
}

/// Hands out send times that keep the limits.
pub struct Limiter {
    limits: Limits,
    slots: Mutex<Slots>,
}

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        Limiter { limits, slots: Mutex::new(Slots { global_next: Instant::now(), chats: HashMap::new() }) }
    }

    fn interval(&self, chat: i64) -> Duration {
        // Private chats have positive ids; groups, supergroups and channels negative ones.
        if chat < 0 { self.limits.group } else { self.limits.chat }
    }

    /// Books the next send time to `chat`, or says how long the wait would be when it is
    /// above `max_wait` (nothing is booked then).
    pub fn book(&self, chat: i64, max_wait: Option<Duration>) -> Result<Instant, Duration> {
        let now = Instant::now();
        let mut s = self.slots.lock().expect("limiter lock");
        let chat_next = s.chats.get(&chat).copied().unwrap_or(now);
        let at = now.max(s.global_next).max(chat_next);
        let wait = at - now;
        if let Some(m) = max_wait
            && wait > m
        {
            return Err(wait);
        }
        s.global_next = at + self.limits.global;
        s.chats.insert(chat, at + self.interval(chat));
        if s.chats.len() > 50_000 {
            s.chats.retain(|_, t| *t > now);
        }
        Ok(at)
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
    pub fn new(bot: Bot, api: BotApi, limits: Limits) -> Self {
        TelegramSender { bot, api, limiter: Limiter::new(limits) }
    }

    pub fn api(&self) -> &BotApi {
        &self.api
    }

    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Waits for a send slot; `strict` refuses long waits with `RetryAfter`.
    async fn slot(&self, chat: i64, strict: bool) -> Result<(), SendError> {
        let max = strict.then_some(self.limiter.limits.max_wait);
        let at = self.limiter.book(chat, max).map_err(SendError::RetryAfter)?;
        tokio::time::sleep_until(at).await;
        Ok(())
    }

    fn failed(&self, chat: i64, mapped: SendError) -> SendError {
        // A 429 reschedules the job at `retry_after` (the queue's clock); the chat's own
        // spacing keeps the retry from coming sooner than a second after this attempt.
        if matches!(mapped, SendError::RetryAfter(_)) {
            metrics::counter!("lavka_telegram_429_total", "chat" => if chat < 0 { "group" } else { "private" })
                .increment(1);
        }
        mapped
    }

    async fn send_part(
        &self,
        msg: &Outgoing,
        text: String,
        last: bool,
        strict: bool,
    ) -> Result<Sent, SendError> {
        self.slot(msg.chat_id, strict).await?;
        let mut req = SendMessage::new(ChatId(msg.chat_id), text).parse_mode(ParseMode::Html);
        if last && let Some(kb) = keyboard(&msg.buttons) {
            req = req.reply_markup(kb);
        }
        match self.api.call::<Message>("sendMessage", &req, true).await {
            Ok(m) => {
                metrics::counter!("lavka_telegram_sent_total").increment(1);
                Ok(Sent { message_id: m.id.0 as i64 })
            }
            Err(e) => Err(self.failed(msg.chat_id, e)),
        }
    }

    /// Replaces the text and buttons of one of the bot's messages (catalogue navigation).
    /// `Ok(false)`: it cannot be edited (too old, deleted, or the new text would need more
    /// than one message) and the caller sends a new one instead.
    pub async fn edit(&self, message_id: i64, msg: &Outgoing) -> Result<bool, SendError> {
        if msg.text.chars() > MAX_MESSAGE {
            return Ok(false);
        }
        self.slot(msg.chat_id, true).await?;
        let mut req =
            EditMessageText::new(ChatId(msg.chat_id), MessageId(message_id as i32), msg.text.html())
                .parse_mode(ParseMode::Html);
        if let Some(kb) = keyboard(&msg.buttons) {
            req = req.reply_markup(kb);
        }
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
            Err(e) => Err(self.failed(msg.chat_id, e)),
        }
    }

    /// Sends a file to a chat (admin `/backup`).
    pub async fn send_document(&self, chat: i64, path: &Path, caption: &str) -> Result<Sent, SendError> {
        self.slot(chat, true).await?;
        let req = self.bot.send_document(ChatId(chat), InputFile::file(path.to_path_buf())).caption(caption);
        match req.send().await {
            Ok(m) => Ok(Sent { message_id: m.id.0 as i64 }),
            Err(e) => Err(self.failed(chat, map_error(&e))),
        }
    }

    /// Answers a button press (removes the spinner); failures only get logged — a late
    /// answer is refused by Telegram and nothing can be done about it.
    pub async fn answer_callback(&self, id: &str, text: Option<&str>) {
        let mut req = AnswerCallbackQuery::new(id.to_string().into());
        if let Some(t) = text {
            req = req.text(t);
        }
        if let Err(e) = self.api.call::<bool>("answerCallbackQuery", &req, true).await {
            tracing::debug!(error = %e, "answerCallbackQuery failed");
        }
    }
}

#[async_trait::async_trait]
impl Messenger for TelegramSender {
    /// Sends a message, split into parts when long (buttons go under the last part). The
    /// first part's message id is returned. Once a part is out, the rest are sent whatever
    /// the wait, and a failure is reported as `Uncertain` (the customer has part of it).
    async fn send(&self, msg: &Outgoing) -> Result<Sent, SendError> {
        let parts = split(&msg.text.html(), true, MAX_MESSAGE);
        let n = parts.len();
        let mut first = None;
        for (i, text) in parts.into_iter().enumerate() {
            match self.send_part(msg, text, i + 1 == n, i == 0).await {
                Ok(s) => {
                    first.get_or_insert(s);
                }
                Err(e) if i == 0 => return Err(e),
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

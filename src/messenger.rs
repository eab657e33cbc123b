//! The seam to the customer-facing channel. Telegram implements [`Messenger`]
//! (`crate::telegram::sender`); when no bot token is configured, [`LogMessenger`] logs each
//! message and records it in the store's outbox, where the admin API shows it ("outbox mode":
//! a delivery's message and its mark are then one commit).

use crate::callback::Button;
use crate::store::Store;
use crate::texts::Rich;
use std::time::Duration;

/// A message to one chat. The text is spans, rendered (and escaped) by the channel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outgoing {
    pub chat_id: i64,
    pub text: Rich,
    /// Inline button rows under the message (channels without buttons ignore them).
    pub buttons: Vec<Vec<Button>>,
}

impl Outgoing {
    /// A message without buttons.
    pub fn new(chat_id: i64, text: impl Into<Rich>) -> Self {
        Outgoing { chat_id, text: text.into(), buttons: Vec::new() }
    }

    pub fn with(chat_id: i64, text: impl Into<Rich>, buttons: Vec<Vec<Button>>) -> Self {
        Outgoing { chat_id, text: text.into(), buttons }
    }
}

/// A message that was sent.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sent {
    pub message_id: i64,
}

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Rate-limited: try again after this long.
    #[error("rate limited, retry after {0:?}")]
    RetryAfter(Duration),
    /// The user blocked the bot (or the chat is gone): sending again will not help.
    #[error("the recipient cannot be reached")]
    Unreachable,
    /// A network or server hiccup: retry with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// The request itself is wrong.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Telegram says it is done already (the message shows this text; the charge was
    /// refunded before).
    #[error("already done")]
    AlreadyDone,
    /// It failed in a way that leaves open whether the message arrived (a timeout after the
    /// request went out, or only some parts of a long message were sent).
    #[error("uncertain: {0}")]
    Uncertain(String),
}

/// Sends messages to chats.
#[async_trait::async_trait]
pub trait Messenger: Send + Sync {
    async fn send(&self, msg: &Outgoing) -> Result<Sent, SendError>;

    /// This messenger only writes the store's outbox (no channel is configured). A delivery
    /// then records its message and the order's delivery in one transaction instead of
    /// sending (`crate::store::telegram::deliver_to_outbox`): nothing is left in between.
    fn is_outbox(&self) -> bool {
        false
    }
}

/// Logs messages and records them in the outbox (no channel configured).
pub struct LogMessenger {
    store: Store,
}

impl LogMessenger {
    pub fn new(store: Store) -> Self {
        LogMessenger { store }
    }
}

#[async_trait::async_trait]
impl Messenger for LogMessenger {
    async fn send(&self, msg: &Outgoing) -> Result<Sent, SendError> {
        let (chat, text) = (msg.chat_id, msg.text.plain());
        let id = self
            .store
            .write(move |tx| crate::store::ledger::record_outbox(tx, chat, &text))
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        tracing::info!(
            chat.id = msg.chat_id,
            outbox.id = id,
            chars = msg.text.chars(),
            "message recorded (no channel configured)"
        );
        Ok(Sent { message_id: id as i64 })
    }

    fn is_outbox(&self) -> bool {
        true
    }
}

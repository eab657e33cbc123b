//! The consultant's memory per customer: the last turns of the conversation (bounded) and
//! small pieces of state that make follow-ups work ("да" after a pre-order offer, "ещё"
//! after a search). Also named JSON values in `meta` (the Gemini context cache's name).

use super::codec::{decode_json, encode_json};
use super::schema::*;
use super::{Store, Tx, decode, encode};
use crate::domain::{Millis, ProductId, UserId};
use crate::error::Result;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

/// Who spoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub text: String,
    pub at: Millis,
}

/// One customer's conversation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub turns: Vec<Turn>,
    /// A pre-order the customer was asked to agree to (product), until answered.
    #[serde(default)]
    pub pending_preorder: Option<ProductId>,
    /// The last search: query and the products shown so far (for "more").
    #[serde(default)]
    pub last_query: Option<String>,
    #[serde(default)]
    pub shown: Vec<ProductId>,
    /// The product the last answer was about (for "buy it", "да").
    #[serde(default)]
    pub focus: Option<ProductId>,
    /// The language the customer writes in (or chose with `/lang`): replies to their
    /// button presses and messages without words of either language keep to it.
    #[serde(default)]
    pub lang: Option<crate::texts::Lang>,
}

impl super::codec::Record for Conversation {
    const FORMAT: super::codec::Format = super::codec::Format::Json;
}

/// Longest text kept per turn (characters): memory is for context, not an archive.
pub const MAX_TURN_CHARS: usize = 2000;

pub fn get_conversation(tx: &Tx, user: UserId) -> Result<Conversation> {
    let t = tx.conversations()?;
    Ok(t.get(user)?.map(|v| decode(v.value())).transpose()?.unwrap_or_default())
}

/// Stores `c`, keeping only the newest `keep` turns, each cut to [`MAX_TURN_CHARS`].
pub fn put_conversation(tx: &Tx, user: UserId, mut c: Conversation, keep: usize) -> Result<()> {
    if c.turns.len() > keep {
        c.turns.drain(..c.turns.len() - keep);
    }
    for t in &mut c.turns {
        if t.text.chars().count() > MAX_TURN_CHARS {
            t.text = t.text.chars().take(MAX_TURN_CHARS).collect();
        }
    }
    c.shown.truncate(200);
    tx.conversations()?.insert(user, encode(&c)?.as_slice())?;
    Ok(())
}

/// Forgets a customer's conversation.
pub fn clear_conversation(tx: &Tx, user: UserId) -> Result<bool> {
    Ok(tx.conversations()?.remove(user)?.is_some())
}

/// A JSON value stored with [`put_meta`], inside a write transaction.
pub fn get_meta<T: serde::de::DeserializeOwned>(tx: &Tx, key: &str) -> Result<Option<T>> {
    tx.meta()?.get(key)?.map(|v| decode_json(v.value())).transpose()
}

/// Stores a JSON value under `key` in `meta`.
pub fn put_meta<T: Serialize>(tx: &Tx, key: &str, v: &T) -> Result<()> {
    tx.meta()?.insert(key, encode_json(v)?.as_slice())?;
    Ok(())
}

impl Store {
    pub async fn conversation(&self, user: UserId) -> Result<Conversation> {
        self.read(move |rtx, _| {
            Ok(rtx
                .open_table(CONVERSATIONS)?
                .get(user)?
                .map(|v| decode(v.value()))
                .transpose()?
                .unwrap_or_default())
        })
        .await
    }

    /// A JSON value stored with [`put_meta`].
    pub async fn meta<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        key: &str,
    ) -> Result<Option<T>> {
        let key = key.to_string();
        self.read(move |rtx, _| {
            rtx.open_table(META)?.get(key.as_str())?.map(|v| decode_json(v.value())).transpose()
        })
        .await
    }
}

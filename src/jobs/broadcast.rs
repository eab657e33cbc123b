//! Broadcasts: one message to every reachable customer, as a chain of `broadcast` jobs of
//! up to [`PART`] recipients each. Progress (the last user id handled) is stored after every
//! recipient, so a rate limit or a restart resumes where it stopped; the sender's limits
//! apply as to any message. A crash between a send and its progress record sends that one
//! message twice — the only repeat possible.

use crate::messenger::{Messenger, Outgoing, SendError};
use crate::queue::JobError;
use crate::store::Store;
use crate::store::telegram::{broadcast_progress, finish_broadcast};

/// Recipients per job.
pub const PART: usize = 50;

/// Runs part `part` of broadcast `id`.
pub async fn run(store: &Store, messenger: &dyn Messenger, id: u64, part: u32) -> Result<(), JobError> {
    let b = store.broadcast(id).await?;
    if b.finished_at.is_some() {
        return Ok(());
    }
    let users = store.reachable_users_after(b.cursor, PART).await?;
    let n = users.len();
    for (i, u) in users.iter().enumerate() {
        let next = (i + 1 == n && n == PART).then_some(part + 1);
        let uid = u.id;
        let sent = match messenger.send(&Outgoing::new(uid, b.text.clone())).await {
            Ok(_) | Err(SendError::Uncertain(_)) => true,
            Err(SendError::Unreachable) => {
                store.write(move |tx| crate::store::telegram::set_unreachable(tx, uid, true)).await?;
                false
            }
            Err(SendError::AlreadyDone) => true,
            Err(SendError::Rejected(m)) => {
                tracing::warn!(user.id = uid, error = %m, "broadcast message refused for one user");
                false
            }
            Err(SendError::RetryAfter(d)) => {
                return Err(JobError::RetryAfter(d, "Telegram rate limit".into()));
            }
            Err(SendError::Transient(m)) => return Err(JobError::Retry(m)),
        };
        store.write(move |tx| broadcast_progress(tx, id, uid, sent, next)).await?;
    }
    if n < PART {
        let b = store.write(move |tx| finish_broadcast(tx, id)).await?;
        tracing::info!(broadcast.id = id, sent = b.sent, unreachable = b.unreachable, "broadcast finished");
    }
    Ok(())
}

//! Payments that arrived signed but could not be applied (see
//! [`crate::domain::UnmatchedPayment`]). Each is recorded once per `(provider, external id)`
//! and, in the same transaction, an admin alert is enqueued; a replay changes nothing.

use super::jobs::{EnqueueOpts, enqueue};
use super::schema::UNMATCHED_PAYMENTS;
use super::{Store, Tx, decode, encode};
use crate::domain::{JobKind, UnmatchedPayment};
use crate::error::{Error, Result};
use redb::ReadableTable;

/// What recording an unmatched payment did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UnmatchedResult {
    pub unmatched: UnmatchedPayment,
    /// Recorded before; nothing changed, no second alert.
    pub duplicate: bool,
}

/// The alert the owner reads.
fn alert_text(u: &UnmatchedPayment) -> String {
    let what = match (&u.order_id, &u.payload) {
        (Some(o), _) => format!("order #{o}"),
        (None, Some(p)) => format!("payload {p:?}"),
        (None, None) => "no payload".into(),
    };
    format!(
        "Unmatched payment {}:{} — {} {} ({what}) was paid but could not be applied: {}. \
         Recorded under Payments → unmatched; resolve it by hand (credit the customer or refund).",
        u.provider, u.external_id, u.amount, u.currency, u.detail
    )
}

/// Records `u` once (its `at` is set to the transaction's time). With `alert`, the admins
/// are told in the same transaction; without, the caller has told them already.
pub fn record_unmatched(tx: &Tx, mut u: UnmatchedPayment, alert: bool) -> Result<UnmatchedResult> {
    if u.provider.is_empty() || u.provider.len() > 32 || u.external_id.is_empty() || u.external_id.len() > 256
    {
        return Err(Error::bad("an unmatched payment needs a provider and a payment id"));
    }
    let mut t = tx.unmatched_payments()?;
    let key = (u.provider.as_str(), u.external_id.as_str());
    if let Some(prior) = t.get(key)?.map(|v| decode::<UnmatchedPayment>(v.value())).transpose()? {
        return Ok(UnmatchedResult { unmatched: prior, duplicate: true });
    }
    // The provider's record is kept for the owner, bounded (a payload is at most 4 KB).
    if u.raw.to_string().len() > 16 * 1024 {
        u.raw = serde_json::Value::String("(too large to keep)".into());
    }
    u.at = tx.now;
    t.insert(key, encode(&u)?.as_slice())?;
    drop(t);
    if alert {
        let dedupe = format!("unmatched:{}:{}", u.provider, u.external_id);
        enqueue(tx, JobKind::AlertAdmin { text: alert_text(&u) }, EnqueueOpts::once(dedupe))?;
    }
    Ok(UnmatchedResult { unmatched: u, duplicate: false })
}

impl Store {
    /// Unmatched payments, newest first.
    pub async fn unmatched_payments(&self, limit: usize) -> Result<Vec<UnmatchedPayment>> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(UNMATCHED_PAYMENTS)?;
            let mut v: Vec<UnmatchedPayment> =
                t.iter()?.map(|r| decode(r?.1.value())).collect::<Result<_>>()?;
            v.sort_by_key(|u| std::cmp::Reverse(u.at));
            v.truncate(limit);
            Ok(v)
        })
        .await
    }
}

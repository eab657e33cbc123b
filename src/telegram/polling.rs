//! Long polling (no public URL): `getUpdates` from the stored offset; each batch is stored
//! as `process_update` jobs together with the next offset in one transaction, so a restart
//! neither loses nor re-processes updates (an update stored but not yet confirmed to
//! Telegram comes again and is dropped by the `update_id` dedupe).

use super::{ALLOWED_UPDATES, Telegram};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run(tg: Telegram, cancel: CancellationToken) {
    let mut wait = Duration::from_secs(1);
    // A webhook left from an earlier configuration makes getUpdates fail with 409.
    loop {
        let r = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tg.call("deleteWebhook", serde_json::json!({})) => r,
        };
        match r {
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "deleteWebhook failed");
                if sleep_or_cancel(&cancel, wait).await {
                    return;
                }
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
    let mut offset = match tg.store().poll_offset().await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the polling offset; polling stopped");
            return;
        }
    };
    tracing::info!(offset, "Telegram long polling started");
    wait = Duration::from_secs(1);
    loop {
        let body = serde_json::json!({
            "offset": offset,
            "timeout": tg.settings().poll_timeout.as_secs(),
            "allowed_updates": ALLOWED_UPDATES,
        });
        let r = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tg.get_updates(body) => r,
        };
        let updates = match r {
            Ok(serde_json::Value::Array(list)) => list,
            Ok(other) => {
                tracing::warn!(result = %other, "getUpdates returned no list");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "getUpdates failed");
                if sleep_or_cancel(&cancel, wait).await {
                    return;
                }
                wait = (wait * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        wait = Duration::from_secs(1);
        let batch: Vec<(i64, serde_json::Value)> = updates
            .into_iter()
            .filter_map(|u| u.get("update_id").and_then(|i| i.as_i64()).map(|id| (id, u)))
            .collect();
        let Some(max) = batch.iter().map(|(id, _)| *id).max() else { continue };
        let next = max + 1;
        match tg.store().write(move |tx| crate::store::telegram::accept_polled(tx, &batch, next)).await {
            Ok(n) => {
                metrics::counter!("lavka_telegram_updates_total", "source" => "polling", "new" => "yes")
                    .increment(n as u64);
                offset = next;
            }
            Err(e) => {
                // Not confirmed to Telegram (the offset did not move): the batch comes again.
                tracing::error!(error = %e, "could not store polled updates");
                if sleep_or_cancel(&cancel, wait).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps; true when cancelled meanwhile.
async fn sleep_or_cancel(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

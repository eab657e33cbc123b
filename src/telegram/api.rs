//! Bot API calls over the shop's own HTTP client, with one reading of every answer.
//!
//! teloxide's typed client sleeps 10 s inside any call answered with a 5xx (a worker held
//! for nothing) and then reads a JSON 5xx as a permanent API error, which would have failed
//! a paid order's delivery for good. Here a 5xx is a retry with the queue's backoff, a
//! gateway timeout or a lost answer is "uncertain" (the message may have arrived), and every
//! failure is counted in `lavka_telegram_errors_total{kind}`. The typed payloads and result
//! types of `teloxide-core` are still used for the bodies.

use crate::messenger::SendError;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use teloxide_core::ApiError;

/// Where and how Bot API calls go.
pub struct BotApi {
    http: reqwest::Client,
    /// `<api url>/bot<token>`; never printed.
    base: String,
    /// Per-request bound for sends (long polling uses the client's own, longer, bound).
    send_timeout: Duration,
}

#[derive(serde::Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(serde::Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

impl BotApi {
    pub fn new(http: reqwest::Client, api_url: &str, token: &str, send_timeout: Duration) -> Self {
        BotApi { http, base: format!("{}/bot{token}", api_url.trim_end_matches('/')), send_timeout }
    }

    /// Calls `method` with a JSON body; `bounded` applies the send timeout.
    pub async fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        body: &impl Serialize,
        bounded: bool,
    ) -> Result<R, SendError> {
        let mut req = self.http.post(format!("{}/{method}", self.base)).json(body);
        if bounded {
            req = req.timeout(self.send_timeout);
        }
        let result = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(bytes) => outcome(status, &bytes),
                    Err(e) => Err(network(e)),
                }
            }
            Err(e) => Err(network(e)),
        };
        if let Err(e) = &result {
            let kind = match e {
                SendError::RetryAfter(_) => None, // counted by the sender, per chat kind
                SendError::Unreachable => Some("unreachable"),
                SendError::Transient(_) => Some("transient"),
                SendError::Uncertain(_) => Some("uncertain"),
                SendError::Rejected(_) => Some("rejected"),
                SendError::AlreadyDone => None,
            };
            if let Some(kind) = kind {
                metrics::counter!("lavka_telegram_errors_total", "kind" => kind).increment(1);
                if kind == "unreachable" {
                    tracing::info!(method, "the recipient blocked the bot or is gone");
                } else {
                    tracing::warn!(method, error = %e, "Telegram Bot API call failed");
                }
            }
        }
        result
    }
}

/// A failure before any answer: a connection never made carried nothing; anything later
/// (a timeout while waiting, a cut connection) may have come after Telegram acted. The text
/// is the error's chain without the URL (it holds the bot token).
fn network(e: reqwest::Error) -> SendError {
    let sure_not_sent = e.is_connect() || e.is_builder();
    let text = format!("{:#}", anyhow::Error::new(e.without_url()));
    if sure_not_sent { SendError::Transient(text) } else { SendError::Uncertain(text) }
}

/// Reads an answer of the Bot API.
pub fn outcome<R: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<R, SendError> {
    let server = |what: String| {
        // A gateway timeout: the request reached Telegram and may have been carried out.
        if status == StatusCode::GATEWAY_TIMEOUT {
            SendError::Uncertain(what)
        } else {
            SendError::Transient(what)
        }
    };
    let env: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(_) if status.is_server_error() => return Err(server(format!("HTTP {status}"))),
        // A success without a readable body: it was probably carried out.
        Err(e) if status.is_success() => return Err(SendError::Uncertain(format!("unreadable answer: {e}"))),
        Err(_) => return Err(SendError::Rejected(format!("HTTP {status}"))),
    };
    if env.ok {
        let result = env.result.unwrap_or(serde_json::Value::Bool(true));
        return serde_json::from_value(result)
            .map_err(|e| SendError::Uncertain(format!("unexpected result shape: {e}")));
    }
    let desc = env.description.unwrap_or_else(|| format!("HTTP {status}"));
    if let Some(p) = env.parameters {
        if let Some(s) = p.retry_after {
            return Err(SendError::RetryAfter(Duration::from_secs(s)));
        }
        if let Some(c) = p.migrate_to_chat_id {
            return Err(SendError::Rejected(format!("the group moved to chat {c}")));
        }
    }
    if status.is_server_error() {
        return Err(server(format!("HTTP {status}: {desc}")));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(SendError::RetryAfter(Duration::from_secs(1)));
    }
    // teloxide's table of known descriptions tells a blocked user from a bad request.
    let api: ApiError = serde_json::from_value(serde_json::Value::String(desc.clone()))
        .unwrap_or_else(|_| ApiError::Unknown(desc.clone()));
    Err(if unreachable(&api) || status == StatusCode::FORBIDDEN {
        SendError::Unreachable
    } else if matches!(api, ApiError::MessageNotModified)
        || desc.contains("message is not modified")
        || desc.contains("CHARGE_ALREADY_REFUNDED")
    {
        // Read once here, where Bot API descriptions are read: it is done already.
        SendError::AlreadyDone
    } else {
        SendError::Rejected(format!("HTTP {status}: {desc}"))
    })
}

/// The errors that say the chat cannot be written to (blocked, deleted, kicked, never
/// started), as opposed to a wrong request.
pub fn unreachable(api: &ApiError) -> bool {
    match api {
        ApiError::BotBlocked
        | ApiError::UserDeactivated
        | ApiError::BotKicked
        | ApiError::BotKickedFromSupergroup
        | ApiError::BotKickedFromChannel
        | ApiError::CantInitiateConversation
        | ApiError::ChatNotFound => true,
        ApiError::Unknown(d) => d.starts_with("Forbidden"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn read(status: u16, body: &str) -> Result<Value, SendError> {
        outcome(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    #[test]
    fn answers_are_read_by_status_and_description() {
        assert_eq!(read(200, r#"{"ok":true,"result":{"message_id":5}}"#).unwrap()["message_id"], 5);
        assert_eq!(read(200, r#"{"ok":true,"result":true}"#).unwrap(), json!(true));
        let retry = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        assert_eq!(read(429, retry), Err(SendError::RetryAfter(Duration::from_secs(7))));
        let blocked =
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#;
        assert_eq!(read(403, blocked), Err(SendError::Unreachable));
        let other403 = r#"{"ok":false,"error_code":403,"description":"Forbidden: something new"}"#;
        assert_eq!(read(403, other403), Err(SendError::Unreachable));
        let no_chat = r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#;
        assert_eq!(read(400, no_chat), Err(SendError::Unreachable));
        let bad = r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities"}"#;
        assert!(matches!(read(400, bad), Err(SendError::Rejected(m)) if m.contains("can't parse entities")));
        let moved = r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded","parameters":{"migrate_to_chat_id":-100123}}"#;
        assert!(matches!(read(400, moved), Err(SendError::Rejected(m)) if m.contains("-100123")));
    }

    #[test]
    fn server_errors_are_retried_and_a_gateway_timeout_is_uncertain() {
        let json500 = r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#;
        assert!(matches!(read(500, json500), Err(SendError::Transient(_))));
        assert!(matches!(read(502, "<html>Bad Gateway</html>"), Err(SendError::Transient(_))));
        assert!(matches!(read(503, ""), Err(SendError::Transient(_))));
        assert!(matches!(read(504, "<html>Gateway Time-out</html>"), Err(SendError::Uncertain(_))));
        assert!(matches!(read(200, "garbage"), Err(SendError::Uncertain(_))));
        assert!(matches!(read(404, "Not Found"), Err(SendError::Rejected(_))));
    }
}

//! A local stand-in for the Telegram Bot API that holds the shop to Telegram's documented
//! rules, for `lavka bench telegram` and tests: it answers like Telegram and counts what
//! Telegram would have refused.
//!
//! Limits (Bots FAQ, "My bot is hitting limits"): no more than one message per second in a
//! private chat, 20 per minute in a group, about 30 per second overall. A message past a
//! limit is refused with 429 and `parameters.retry_after` (whole seconds) and counted as a
//! violation. Messages are `sendMessage`, `sendInvoice`, `sendDocument`, `sendPhoto`,
//! `copyMessage`, `forwardMessage` and `editMessageText`. A small tolerance (`TOLERANCE_MS`)
//! absorbs loopback jitter between the shop's clock and this one.
//!
//! Shapes (Bot API reference): a message needs `chat_id` and a text of 1–4096 characters
//! after entity parsing, with HTML limited to Telegram's tags; inline buttons need a text
//! and exactly one action, `callback_data` 1–64 bytes; `sendInvoice` a title of 1–32
//! characters, a description of 1–255, a payload of 1–128 bytes, and for `XTR` exactly one
//! price and no provider token; `answerCallbackQuery` a `callback_query_id` (text up to 200
//! characters); `answerPreCheckoutQuery` a `pre_checkout_query_id`, `ok`, and an
//! `error_message` when not ok. A pre-checkout answer more than 10 s after the query was
//! issued (see [`BotApiStandIn::issued`]) is refused as too old and counted as late.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Loopback jitter allowed between the shop's spacing and arrival here.
pub const TOLERANCE_MS: u64 = 30;
/// Telegram's wait for a pre-checkout answer.
pub const PRE_CHECKOUT_DEADLINE: Duration = Duration::from_secs(10);

const MESSAGE_METHODS: [&str; 7] = [
    "sendmessage",
    "sendinvoice",
    "senddocument",
    "sendphoto",
    "copymessage",
    "forwardmessage",
    "editmessagetext",
];

/// A message Telegram took.
#[derive(Clone, Debug)]
pub struct Taken {
    pub method: String,
    pub chat: i64,
    pub at: Instant,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    taken: Vec<Taken>,
    /// Arrival times of taken messages, per chat (groups keep a minute, private chats one).
    chats: HashMap<i64, VecDeque<Instant>>,
    recent: VecDeque<Instant>,
    violations: Vec<String>,
    bad_requests: Vec<String>,
    /// Query id → when it was issued / answered.
    issued: HashMap<String, Instant>,
    answered: HashMap<String, Instant>,
    late: Vec<String>,
    calls: HashMap<String, u64>,
}

/// The stand-in, listening on 127.0.0.1.
#[derive(Clone)]
pub struct BotApiStandIn {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

/// What the stand-in saw.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub taken: Vec<Taken>,
    pub violations: Vec<String>,
    pub bad_requests: Vec<String>,
    pub late: Vec<String>,
    /// Query id → answer latency.
    pub answer_latency: HashMap<String, Duration>,
    pub calls: HashMap<String, u64>,
}

struct Shared {
    inner: Arc<Mutex<Inner>>,
    next_id: AtomicI64,
}

impl BotApiStandIn {
    pub async fn start() -> anyhow::Result<BotApiStandIn> {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = Arc::new(Shared { inner: inner.clone(), next_id: AtomicI64::new(1) });
        let app = Router::new().route("/{bot}/{method}", post(api)).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(BotApiStandIn { base, inner })
    }

    /// A callback or pre-checkout query was issued now (its answer is timed from here).
    pub fn issued(&self, query_id: &str) {
        self.inner.lock().expect("stand-in lock").issued.insert(query_id.to_string(), Instant::now());
    }

    /// Messages taken for `chat` so far.
    pub fn count_to(&self, chat: i64) -> usize {
        self.inner.lock().expect("stand-in lock").taken.iter().filter(|t| t.chat == chat).count()
    }

    /// Whether `query_id` was answered.
    pub fn answered(&self, query_id: &str) -> bool {
        self.inner.lock().expect("stand-in lock").answered.contains_key(query_id)
    }

    pub fn seen(&self) -> Seen {
        let i = self.inner.lock().expect("stand-in lock");
        let answer_latency = i
            .answered
            .iter()
            .filter_map(|(q, a)| i.issued.get(q).map(|s| (q.clone(), a.duration_since(*s))))
            .collect();
        Seen {
            taken: i.taken.clone(),
            violations: i.violations.clone(),
            bad_requests: i.bad_requests.clone(),
            late: i.late.clone(),
            answer_latency,
            calls: i.calls.clone(),
        }
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

fn refuse(code: u16, description: String, retry_after: Option<u64>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(s) = retry_after {
        body["parameters"] = json!({"retry_after": s});
    }
    let status = axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}

/// Telegram's HTML: these tags only, balanced; the text is counted after parsing.
fn parse_html(text: &str) -> Result<String, String> {
    const TAGS: [&str; 16] = [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    ];
    let mut out = String::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(lt) = rest.find(['<', '&']) {
        out.push_str(&rest[..lt]);
        let tail = &rest[lt..];
        if tail.starts_with('&') {
            let end = tail.find(';').ok_or("can't parse entities: unclosed character reference")?;
            let ent = &tail[1..end];
            let ch = match ent {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                e if e.starts_with("#x") => {
                    u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32).ok_or("bad reference")?
                }
                e if e.starts_with('#') => {
                    e[1..].parse().ok().and_then(char::from_u32).ok_or("bad reference")?
                }
                e => return Err(format!("can't parse entities: unsupported entity &{e};")),
            };
            out.push(ch);
            rest = &tail[end + 1..];
            continue;
        }
        let end = tail.find('>').ok_or("can't parse entities: unclosed tag")?;
        let inside = &tail[1..end];
        if let Some(name) = inside.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            match open.pop() {
                Some(o) if o == name => {}
                _ => return Err(format!("can't parse entities: unexpected end tag </{name}>")),
            }
        } else {
            let name = inside.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            if !TAGS.contains(&name.as_str()) {
                return Err(format!("can't parse entities: unsupported start tag \"{name}\""));
            }
            open.push(name);
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    if let Some(o) = open.pop() {
        return Err(format!("can't parse entities: can't find end tag corresponding to start tag \"{o}\""));
    }
    Ok(out)
}

fn check_keyboard(markup: &Value) -> Result<(), String> {
    let Some(rows) = markup.get("inline_keyboard") else { return Ok(()) };
    let rows = rows.as_array().ok_or("inline_keyboard must be an array of button rows")?;
    for row in rows {
        for b in row.as_array().ok_or("a keyboard row must be an array")? {
            if b["text"].as_str().is_none_or(|t| t.is_empty()) {
                return Err("text buttons are unallowed in the inline keyboard".into());
            }
            let actions = ["url", "callback_data", "web_app", "pay", "switch_inline_query", "login_url"]
                .iter()
                .filter(|k| b.get(**k).is_some())
                .count();
            if actions != 1 {
                return Err("an inline keyboard button needs exactly one action".into());
            }
            if let Some(d) = b.get("callback_data") {
                let n = d.as_str().map_or(0, str::len);
                if !(1..=64).contains(&n) {
                    return Err("BUTTON_DATA_INVALID".into());
                }
            }
        }
    }
    Ok(())
}

fn chat_of(body: &Value) -> Option<i64> {
    body.get("chat_id").and_then(|c| c.as_i64().or_else(|| c.as_str().and_then(|s| s.parse().ok())))
}

/// The shape checks of one call; `Err` is Telegram's 400 description.
fn check(method: &str, body: &Value) -> Result<(), String> {
    let chars = |v: &Value| v.as_str().map(|s| s.chars().count());
    match method {
        "sendmessage" | "editmessagetext" => {
            if chat_of(body).is_none() {
                return Err("chat_id is empty".into());
            }
            let text = body["text"].as_str().ok_or("message text is empty")?;
            let shown = match body["parse_mode"].as_str() {
                Some("HTML") => parse_html(text)?,
                None => text.to_string(),
                Some(m) => return Err(format!("unsupported parse_mode {m}")),
            };
            let n = shown.trim().chars().count();
            if n == 0 {
                return Err("message text is empty".into());
            }
            if n > 4096 {
                return Err("message is too long".into());
            }
            if method == "editmessagetext" && body.get("message_id").is_none() {
                return Err("message identifier is not specified".into());
            }
            check_keyboard(&body["reply_markup"])
        }
        "sendinvoice" => {
            if chat_of(body).is_none() {
                return Err("chat_id is empty".into());
            }
            if !chars(&body["title"]).is_some_and(|n| (1..=32).contains(&n)) {
                return Err("INVOICE_TITLE_INVALID".into());
            }
            if !chars(&body["description"]).is_some_and(|n| (1..=255).contains(&n)) {
                return Err("INVOICE_DESCRIPTION_INVALID".into());
            }
            if !body["payload"].as_str().is_some_and(|p| (1..=128).contains(&p.len())) {
                return Err("INVOICE_PAYLOAD_INVALID".into());
            }
            let prices = body["prices"].as_array().ok_or("prices must be an array")?;
            if body["currency"] == "XTR" {
                if prices.len() != 1 {
                    return Err("invoices in Telegram Stars must have exactly one price".into());
                }
                if body["provider_token"].as_str().is_some_and(|t| !t.is_empty()) {
                    return Err("provider_token must be empty for payments in Telegram Stars".into());
                }
            }
            if prices.iter().any(|p| p["amount"].as_i64().is_none_or(|a| a <= 0)) {
                return Err("CURRENCY_TOTAL_AMOUNT_INVALID".into());
            }
            Ok(())
        }
        "answercallbackquery" => {
            if body["callback_query_id"].as_str().is_none_or(str::is_empty) {
                return Err("callback_query_id is empty".into());
            }
            if chars(&body["text"]).is_some_and(|n| n > 200) {
                return Err("MESSAGE_TOO_LONG".into());
            }
            Ok(())
        }
        "answerprecheckoutquery" => {
            if body["pre_checkout_query_id"].as_str().is_none_or(str::is_empty) {
                return Err("pre_checkout_query_id is empty".into());
            }
            let ok = body["ok"].as_bool().ok_or("ok must be a boolean")?;
            if !ok && body["error_message"].as_str().is_none_or(str::is_empty) {
                return Err("error_message is required when ok is false".into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

impl Inner {
    /// Whether Telegram's limits let a message to `chat` in now; else the wait.
    fn admit(&mut self, chat: i64, now: Instant) -> Result<(), Duration> {
        let tol = Duration::from_millis(TOLERANCE_MS);
        let second = Duration::from_secs(1);
        while self.recent.front().is_some_and(|t| now.duration_since(*t) >= second - tol) {
            self.recent.pop_front();
        }
        if self.recent.len() >= 30 {
            return Err(second - now.duration_since(self.recent[self.recent.len() - 30]).min(second));
        }
        let (span, max) = if chat < 0 { (Duration::from_secs(60), 20) } else { (second, 1) };
        let q = self.chats.entry(chat).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= span - tol) {
            q.pop_front();
        }
        if q.len() >= max {
            return Err(span - now.duration_since(q[q.len() - max]).min(span));
        }
        q.push_back(now);
        self.recent.push_back(now);
        Ok(())
    }
}

async fn api(
    State(s): State<Arc<Shared>>,
    Path((_bot, method)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let method = method.to_ascii_lowercase();
    let now = Instant::now();
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        // Multipart uploads (sendDocument) are taken as they come.
        Err(_) => json!({}),
    };
    let mut i = s.inner.lock().expect("stand-in lock");
    *i.calls.entry(method.clone()).or_default() += 1;
    if let Err(why) = check(&method, &body) {
        i.bad_requests.push(format!("{method}: {why}"));
        return refuse(400, format!("Bad Request: {why}"), None);
    }
    if MESSAGE_METHODS.contains(&method.as_str()) {
        let chat = chat_of(&body).unwrap_or(0);
        if let Err(wait) = i.admit(chat, now) {
            i.violations.push(format!("{method} to {chat}: {} ms early", wait.as_millis()));
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return refuse(429, format!("Too Many Requests: retry after {secs}"), Some(secs));
        }
        i.taken.push(Taken { method: method.clone(), chat, at: now, body: body.clone() });
        let id = s.next_id.fetch_add(1, Ordering::Relaxed);
        let kind = if chat < 0 { "group" } else { "private" };
        return ok(
            json!({"message_id": body.get("message_id").cloned().unwrap_or(json!(id)), "date": 1764150000,
            "chat": {"id": chat, "type": kind, "first_name": "C", "title": "G"},
            "from": {"id": 7000000001i64, "is_bot": true, "first_name": "Shop"},
            "text": body.get("text").cloned().unwrap_or(json!("")) }),
        );
    }
    let query = match method.as_str() {
        "answercallbackquery" => body["callback_query_id"].as_str(),
        "answerprecheckoutquery" => body["pre_checkout_query_id"].as_str(),
        _ => None,
    };
    if let Some(q) = query {
        let q = q.to_string();
        if i.answered.contains_key(&q) {
            i.bad_requests.push(format!("{method}: {q} answered twice"));
            return refuse(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid".into(),
                None,
            );
        }
        let late = method == "answerprecheckoutquery"
            && i.issued.get(&q).is_some_and(|at| now.duration_since(*at) > PRE_CHECKOUT_DEADLINE);
        i.answered.insert(q.clone(), now);
        if late {
            i.late.push(q);
            return refuse(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid".into(),
                None,
            );
        }
        return ok(json!(true));
    }
    match method.as_str() {
        "getme" => {
            ok(json!({"id": 7000000001i64, "is_bot": true, "first_name": "Shop", "username": "shop_bot"}))
        }
        "createinvoicelink" => {
            ok(json!(format!("https://t.me/$invoice-{}", body["payload"].as_str().unwrap_or(""))))
        }
        "getupdates" => ok(json!([])),
        _ => ok(json!(true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_held_to_telegrams_tags_and_counted_after_parsing() {
        assert_eq!(parse_html("<b>Hi</b> &amp; <a href=\"x\">you</a>").unwrap(), "Hi & you");
        assert!(parse_html("<div>x</div>").is_err());
        assert!(parse_html("<b>x").is_err());
        assert!(parse_html("a & b").is_err());
        assert!(
            check("sendmessage", &json!({"chat_id": 1, "text": "<b></b>", "parse_mode": "HTML"})).is_err()
        );
        let long = "я".repeat(4097);
        assert!(check("sendmessage", &json!({"chat_id": 1, "text": long})).is_err());
        let kb = json!({"inline_keyboard": [[{"text": "x", "callback_data": "d".repeat(65)}]]});
        assert!(check("sendmessage", &json!({"chat_id": 1, "text": "x", "reply_markup": kb})).is_err());
    }

    #[test]
    fn a_second_message_to_a_chat_within_a_second_is_refused() {
        let mut i = Inner::default();
        let t = Instant::now();
        assert!(i.admit(1, t).is_ok());
        assert!(i.admit(2, t).is_ok());
        assert!(i.admit(1, t + Duration::from_millis(500)).is_err());
        assert!(i.admit(1, t + Duration::from_millis(1000)).is_ok());
        for n in 0..29 {
            assert!(i.admit(100 + n, t + Duration::from_millis(1001)).is_ok());
        }
        // 30 in the last second (chat 1's second message among them).
        assert!(i.admit(999, t + Duration::from_millis(1002)).is_err());
    }
}

//! A fake Telegram Bot API on 127.0.0.1: `POST /bot<token>/<method>` (method names
//! case-insensitive), `GET /file/bot<token>/<path>`. It records every call, answers
//! `getUpdates` from a queue (long-polling up to the asked timeout), serves files, and can be
//! told to answer the next sends with 429 (`retry_after`), 403 (blocked), a 5xx (a JSON one
//! from the Bot API or an HTML one from its gateway), or to take a message and answer only
//! after a delay (a lost answer).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub body: Value,
    /// The shop's clock at the call (unix ms), when the fake was given it.
    pub clock_ms: Option<i64>,
    /// What the fake answered (true = ok).
    pub ok: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Fail {
    RetryAfter(u32),
    Blocked,
    /// This status, with the Bot API's JSON error body (`json`) or a gateway's HTML page.
    Server(u16, bool),
    /// The message is taken (it arrives) but the answer comes only after this long.
    SlowAnswer(Duration),
    /// 400 with this description.
    BadRequest(&'static str),
}

#[derive(Default)]
struct FakeState {
    calls: Mutex<Vec<Call>>,
    next_id: AtomicI64,
    /// (chat or any, failure), matched in order by send methods.
    failures: Mutex<VecDeque<(Option<i64>, Fail)>>,
    /// (method, failure), matched in order by any other method.
    method_failures: Mutex<VecDeque<(String, Fail)>>,
    updates: Mutex<Vec<Value>>,
    updates_signal: Notify,
    files: Mutex<HashMap<String, Vec<u8>>>,
    clock: Mutex<Option<lavka::store::Clock>>,
}

#[derive(Clone)]
pub struct FakeTelegram {
    pub base: String,
    state: Arc<FakeState>,
}

impl FakeTelegram {
    pub async fn start() -> FakeTelegram {
        let state = Arc::new(FakeState { next_id: AtomicI64::new(1000), ..Default::default() });
        let app = Router::new()
            .route("/{bot}/{method}", post(api))
            .route("/file/{bot}/{*path}", get(file))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeTelegram { base, state }
    }

    /// Stamps every call with this clock too (the shop's, when tests move it by hand).
    pub fn set_clock(&self, clock: lavka::store::Clock) {
        *self.state.clock.lock().unwrap() = Some(clock);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Bodies of calls of one method (lowercase).
    pub fn bodies(&self, method: &str) -> Vec<Value> {
        self.calls().into_iter().filter(|c| c.method == method).map(|c| c.body).collect()
    }

    /// What a chat was shown, in order: successful sendMessage bodies, and editMessageText
    /// bodies (a message replaced in place; `message_id` says which).
    pub fn messages_to(&self, chat: i64) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| {
                matches!(c.method.as_str(), "sendmessage" | "editmessagetext")
                    && c.ok
                    && c.body["chat_id"].as_i64() == Some(chat)
            })
            .map(|c| c.body)
            .collect()
    }

    pub fn texts_to(&self, chat: i64) -> Vec<String> {
        self.messages_to(chat).iter().map(|b| b["text"].as_str().unwrap_or("").to_string()).collect()
    }

    pub fn last_to(&self, chat: i64) -> Value {
        self.messages_to(chat)
            .pop()
            .unwrap_or_else(|| panic!("no message to {chat}; calls: {:#?}", self.calls()))
    }

    /// The next send (to `chat`, or to anyone) fails like this.
    pub fn fail(&self, chat: Option<i64>, f: Fail) {
        self.state.failures.lock().unwrap().push_back((chat, f));
    }

    /// The next call of `method` (lowercase; not a send) fails like this.
    pub fn fail_method(&self, method: &str, f: Fail) {
        self.state.method_failures.lock().unwrap().push_back((method.to_string(), f));
    }

    pub fn push_update(&self, u: Value) {
        self.state.updates.lock().unwrap().push(u);
        self.state.updates_signal.notify_waiters();
    }

    pub fn add_file(&self, id: &str, content: &[u8]) {
        self.state.files.lock().unwrap().insert(id.to_string(), content.to_vec());
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({ "ok": true, "result": result })).into_response()
}

fn multipart_field(body: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let marker = format!("name=\"{name}\"");
    let at = text.find(&marker)?;
    let rest = &text[at..];
    let start = rest.find("\r\n\r\n")? + 4;
    let end = rest[start..].find("\r\n")?;
    Some(rest[start..start + end].to_string())
}

async fn api(
    State(s): State<Arc<FakeState>>,
    Path((_bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = method.to_ascii_lowercase();
    let is_json =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
    let body_v: Value = if is_json {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        let chat = multipart_field(&body, "chat_id").and_then(|c| c.parse::<i64>().ok());
        json!({ "multipart": true, "bytes": body.len(), "chat_id": chat, "caption": multipart_field(&body, "caption") })
    };
    let chat = body_v["chat_id"].as_i64();
    let sends = matches!(method.as_str(), "sendmessage" | "senddocument");
    let failure = if sends {
        let mut f = s.failures.lock().unwrap();
        let pos = f.iter().position(|(c, _)| c.is_none() || *c == chat);
        pos.and_then(|p| f.remove(p)).map(|(_, f)| f)
    } else {
        let mut f = s.method_failures.lock().unwrap();
        let pos = f.iter().position(|(m, _)| *m == method);
        pos.and_then(|p| f.remove(p)).map(|(_, f)| f)
    };
    s.calls.lock().unwrap().push(Call {
        method: method.clone(),
        body: body_v.clone(),
        clock_ms: s.clock.lock().unwrap().as_ref().map(|c| c.now()),
        ok: failure.is_none() || matches!(failure, Some(Fail::SlowAnswer(_))),
    });
    if let Some(Fail::SlowAnswer(d)) = failure {
        tokio::time::sleep(d).await;
    } else if let Some(f) = failure {
        return match f {
            Fail::RetryAfter(n) => (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {n}"), "parameters": {"retry_after": n}})),
            )
                .into_response(),
            Fail::Blocked => (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})),
            )
                .into_response(),
            Fail::Server(code, true) => (
                StatusCode::from_u16(code).unwrap(),
                axum::Json(json!({"ok": false, "error_code": code, "description": "Internal Server Error"})),
            )
                .into_response(),
            Fail::Server(code, false) => {
                (StatusCode::from_u16(code).unwrap(), "<html><body>Bad Gateway</body></html>").into_response()
            }
            Fail::BadRequest(d) => (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"ok": false, "error_code": 400, "description": format!("Bad Request: {d}")})),
            )
                .into_response(),
            Fail::SlowAnswer(_) => unreachable!(),
        };
    }
    match method.as_str() {
        "getme" => {
            ok(json!({"id": 7000000001i64, "is_bot": true, "first_name": "Shop", "username": "shop_bot",
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false, "has_main_web_app": false}))
        }
        "sendmessage" | "senddocument" => {
            let id = s.next_id.fetch_add(1, Ordering::SeqCst);
            let chat = chat.unwrap_or(0);
            let kind = if chat < 0 { "group" } else { "private" };
            let mut m = json!({"message_id": id, "date": 1764150000, "chat": {"id": chat, "type": kind, "first_name": "X", "title": "G"},
                "from": {"id": 7000000001i64, "is_bot": true, "first_name": "Shop"}});
            if method == "sendmessage" {
                m["text"] = body_v["text"].clone();
            } else {
                m["document"] = json!({"file_id": "doc1", "file_unique_id": "u1"});
            }
            ok(m)
        }
        "createinvoicelink" => {
            ok(json!(format!("https://t.me/$invoice-{}", body_v["payload"].as_str().unwrap_or(""))))
        }
        "editmessagetext" => ok(json!({"message_id": body_v["message_id"], "date": 1764150000,
            "chat": {"id": chat.unwrap_or(0), "type": "private", "first_name": "X"},
            "from": {"id": 7000000001i64, "is_bot": true, "first_name": "Shop"}, "text": body_v["text"]})),
        "getupdates" => {
            let offset = body_v["offset"].as_i64().unwrap_or(0);
            let timeout = body_v["timeout"].as_u64().unwrap_or(0).min(2);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
            loop {
                let notified = s.updates_signal.notified();
                {
                    let mut u = s.updates.lock().unwrap();
                    u.retain(|x| x["update_id"].as_i64().unwrap_or(0) >= offset);
                    if !u.is_empty() {
                        return ok(Value::Array(u.clone()));
                    }
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return ok(json!([]));
                }
            }
        }
        "getfile" => {
            let id = body_v["file_id"].as_str().unwrap_or("").to_string();
            let size = s.files.lock().unwrap().get(&id).map(|f| f.len()).unwrap_or(0);
            ok(
                json!({"file_id": id, "file_unique_id": format!("u-{id}"), "file_size": size, "file_path": format!("documents/{id}.txt")}),
            )
        }
        _ => ok(json!(true)),
    }
}

async fn file(State(s): State<Arc<FakeState>>, Path((_bot, path)): Path<(String, String)>) -> Response {
    let id = path.trim_start_matches("documents/").trim_end_matches(".txt").to_string();
    match s.files.lock().unwrap().get(&id) {
        Some(b) => b.clone().into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

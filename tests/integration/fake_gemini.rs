//! A fake Gemini API on 127.0.0.1: scripted `generateContent` answers, context caches,
//! the model list; every request recorded. It rejects what the real API rejects: a wrong
//! key, `cachedContent` together with `systemInstruction`/`tools`/`toolConfig`, and a
//! function-call turn replayed without its thought signature.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub const KEY: &str = "test-gemini-key";
pub const MODEL: &str = "gemini-test-flash";
/// Models of named families the fake also serves (thinking settings differ per family).
pub const OTHER_MODELS: &[&str] = &["gemini-3-flash", "gemini-2.5-flash"];

type Responder = Box<dyn Fn(&Value) -> (u16, Value) + Send>;

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
pub struct FakeState {
    pub requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Responder>>,
    /// Answer of `POST cachedContents`: None = create one.
    pub cache_refusal: Mutex<Option<(u16, Value)>>,
    pub caches_created: Mutex<u32>,
    /// Each `generateContent` answer waits this long first (a slow model).
    pub delay: Mutex<Option<std::time::Duration>>,
    /// Token size of each created cache.
    cache_sizes: Mutex<std::collections::HashMap<String, u64>>,
}

pub struct FakeGemini {
    pub url: String,
    pub state: Arc<FakeState>,
}

impl FakeGemini {
    pub async fn start() -> FakeGemini {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/v1beta/models", get(models))
            .route("/v1beta/models/{action}", post(generate))
            .route("/v1beta/cachedContents", post(create_cache))
            .route("/v1beta/cachedContents/{id}", axum::routing::patch(patch_cache).delete(delete_cache))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeGemini { url, state }
    }

    /// Queues the next `generateContent` answer.
    pub fn then(&self, f: impl Fn(&Value) -> (u16, Value) + Send + 'static) {
        self.state.script.lock().unwrap().push_back(Box::new(f));
    }

    pub fn then_ok(&self, parts: Value) {
        self.then(move |_| (200, answer(parts.clone())));
    }

    /// Requests to `generateContent`, in order.
    pub fn generate_bodies(&self) -> Vec<Value> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.ends_with(":generateContent"))
            .map(|r| r.body.clone())
            .collect()
    }

    pub fn all_bodies_text(&self) -> String {
        self.state.requests.lock().unwrap().iter().map(|r| r.body.to_string()).collect::<Vec<_>>().join("\n")
    }

    pub fn count(&self, method: &str, path_end: &str) -> usize {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_end))
            .count()
    }
}

/// A 200 `generateContent` body whose candidate has these parts.
pub fn answer(parts: Value) -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 812, "cachedContentTokenCount": 700, "candidatesTokenCount": 24, "totalTokenCount": 836},
        "modelVersion": MODEL
    })
}

pub fn call(name: &str, args: Value) -> Value {
    json!([{"functionCall": {"name": name, "args": args}, "thoughtSignature": format!("sig-{name}")}])
}

pub fn final_answer(reply: &str, action: &str, product: Option<&str>) -> Value {
    let mut args = json!({"thought": "private reasoning", "reply_text": reply, "action": action});
    if let Some(p) = product {
        args["product_id"] = json!(p);
    }
    call("final_answer", args)
}

fn error(code: u16, status: &str, message: &str) -> (u16, Value) {
    (code, json!({"error": {"code": code, "message": message, "status": status}}))
}

fn authorised(h: &HeaderMap) -> bool {
    h.get("x-goog-api-key").and_then(|v| v.to_str().ok()) == Some(KEY)
}

fn record(s: &FakeState, method: Method, path: String, body: Value) {
    s.requests.lock().unwrap().push(Recorded { method: method.to_string(), path, body });
}

fn reply((code, body): (u16, Value)) -> (StatusCode, Json<Value>) {
    (StatusCode::from_u16(code).unwrap(), Json(body))
}

/// The token of the model list's second page: `+`, `/` and `=` must arrive URL-encoded.
pub const PAGE_TOKEN: &str = "p2+/x==";

async fn models(
    State(s): State<Arc<FakeState>>,
    h: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    record(&s, Method::GET, "/v1beta/models".into(), Value::Null);
    if !authorised(&h) {
        return reply(error(400, "INVALID_ARGUMENT", "API key not valid"));
    }
    // Two pages, like the real list (whose tokens hold `+` and `/`).
    match q.get("pageToken").map(String::as_str) {
        None => {
            reply((200, json!({"models": [{"name": "models/gemini-other"}], "nextPageToken": PAGE_TOKEN})))
        }
        Some(PAGE_TOKEN) => reply((200, json!({"models": [{"name": format!("models/{MODEL}")}]}))),
        Some(other) => reply(error(400, "INVALID_ARGUMENT", &format!("invalid page token {other:?}"))),
    }
}

async fn generate(
    State(s): State<Arc<FakeState>>,
    Path(action): Path<String>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    record(&s, Method::POST, format!("/v1beta/models/{action}"), body.clone());
    if !authorised(&h) {
        return reply(error(400, "INVALID_ARGUMENT", "API key not valid"));
    }
    let (model, verb) = action.rsplit_once(':').unwrap_or((&action, ""));
    if verb != "generateContent" || !(model == MODEL || OTHER_MODELS.contains(&model)) {
        return reply(error(404, "NOT_FOUND", "model not found"));
    }
    if let Err(why) = shape::generate_request(&body) {
        return reply(error(400, "INVALID_ARGUMENT", &why));
    }
    if body.get("cachedContent").is_some()
        && ["systemInstruction", "tools", "toolConfig"].iter().any(|k| body.get(*k).is_some())
    {
        return reply(error(
            400,
            "INVALID_ARGUMENT",
            "CachedContent can not be used with GenerateContent request setting system_instruction, tools or tool_config.",
        ));
    }
    for c in body["contents"].as_array().into_iter().flatten() {
        if c["role"] == "model" {
            let parts = c["parts"].as_array().cloned().unwrap_or_default();
            if parts.iter().any(|p| p.get("functionCall").is_some())
                && !parts.iter().any(|p| p.get("thoughtSignature").is_some())
            {
                return reply(error(400, "INVALID_ARGUMENT", "Function call is missing a thought_signature"));
            }
        }
    }
    let delay = *s.delay.lock().unwrap();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let next = s.script.lock().unwrap().pop_front();
    let (code, mut answer) = match next {
        Some(f) => f(&body),
        None => error(500, "INTERNAL", "the fake has no scripted answer"),
    };
    // Usage as the real API reports it, from the request's size (about 4 characters a
    // token): the prompt includes the cached part, which a cached request does not resend.
    if code == 200 && answer.get("usageMetadata").is_some() {
        let sent = (body["contents"].to_string().len()
            + body["systemInstruction"].to_string().len()
            + body["tools"].to_string().len()) as u64
            / 4;
        let cached = match body["cachedContent"].as_str() {
            Some(name) => s.cache_sizes.lock().unwrap().get(name).copied().unwrap_or(0),
            None => 0,
        };
        answer["usageMetadata"] = json!({"promptTokenCount": sent + cached, "cachedContentTokenCount": cached,
            "candidatesTokenCount": 24, "totalTokenCount": sent + cached + 24});
    }
    reply((code, answer))
}

async fn create_cache(
    State(s): State<Arc<FakeState>>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    record(&s, Method::POST, "/v1beta/cachedContents".into(), body.clone());
    if !authorised(&h) {
        return reply(error(400, "INVALID_ARGUMENT", "API key not valid"));
    }
    if let Err(why) = shape::cache_request(&body) {
        return reply(error(400, "INVALID_ARGUMENT", &why));
    }
    if let Some(r) = s.cache_refusal.lock().unwrap().clone() {
        return reply(r);
    }
    let mut n = s.caches_created.lock().unwrap();
    *n += 1;
    let size = (body["systemInstruction"].to_string().len() + body["tools"].to_string().len()) as u64 / 4;
    s.cache_sizes.lock().unwrap().insert(format!("cachedContents/c{n}"), size);
    reply((
        200,
        json!({"name": format!("cachedContents/c{n}"), "model": body["model"], "expireTime": "2026-11-26T13:00:00Z"}),
    ))
}

async fn patch_cache(
    State(s): State<Arc<FakeState>>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    record(&s, Method::PATCH, format!("/v1beta/cachedContents/{id}"), body);
    reply((200, json!({"name": format!("cachedContents/{id}"), "expireTime": "2026-11-26T14:00:00Z"})))
}

async fn delete_cache(State(s): State<Arc<FakeState>>, Path(id): Path<String>) -> (StatusCode, Json<Value>) {
    record(&s, Method::DELETE, format!("/v1beta/cachedContents/{id}"), Value::Null);
    reply((200, json!({})))
}

#[allow(dead_code)]
pub fn refuse_small() -> (u16, Value) {
    error(
        400,
        "INVALID_ARGUMENT",
        "Cached content is too small. total_token_count=120, min_total_token_count=4096",
    )
}

#[allow(dead_code)]
pub fn rate_limited(delay: &str) -> (u16, Value) {
    (
        429,
        json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}}),
    )
}

pub use lavka::bench::gemini_shape as shape;

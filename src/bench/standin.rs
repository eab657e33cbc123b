//! A local stand-in for the Gemini API, for `lavka bench conversations --stand-in`: it
//! refuses what the real API refuses ([`super::gemini_shape`], the key, the model name, a
//! function call replayed without its thought signature) and answers like a plausible,
//! naive model — it searches the customer's words, then offers to sell the first result
//! when the customer says "buy", shows the first three otherwise, and writes a price and a
//! "your order is placed" into its words. The shop must keep its rules anyway: reserve only
//! what was named, say what is off sale, drop words it did not produce.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub const KEY: &str = "stand-in-gemini-key";
pub const MODEL: &str = "gemini-stand-in-flash";

#[derive(Default)]
pub struct Counts {
    pub generate: AtomicU64,
    pub refused: AtomicU64,
}

/// The running stand-in (stops with the runtime).
pub struct StandIn {
    pub url: String,
    pub counts: Arc<Counts>,
}

impl StandIn {
    pub async fn start() -> anyhow::Result<StandIn> {
        let counts = Arc::new(Counts::default());
        let app = Router::new()
            .route("/v1beta/models", get(models))
            .route("/v1beta/models/{action}", post(generate))
            .route("/v1beta/cachedContents", post(no_cache))
            .with_state(counts.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(StandIn { url, counts })
    }
}

fn error(code: u16, status: &str, message: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({"error": {"code": code, "message": message, "status": status}})),
    )
}

fn authorised(h: &HeaderMap) -> bool {
    h.get("x-goog-api-key").and_then(|v| v.to_str().ok()) == Some(KEY)
}

async fn models(h: HeaderMap) -> (StatusCode, Json<Value>) {
    if !authorised(&h) {
        return error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.");
    }
    (StatusCode::OK, Json(json!({"models": [{"name": format!("models/{MODEL}")}]})))
}

async fn no_cache() -> (StatusCode, Json<Value>) {
    error(400, "INVALID_ARGUMENT", "Cached content is too small.")
}

async fn generate(
    State(counts): State<Arc<Counts>>,
    Path(action): Path<String>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    counts.generate.fetch_add(1, Ordering::Relaxed);
    let refuse = |code, status, why: &str| {
        counts.refused.fetch_add(1, Ordering::Relaxed);
        error(code, status, why)
    };
    if !authorised(&h) {
        return refuse(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.");
    }
    if action != format!("{MODEL}:generateContent") {
        return refuse(404, "NOT_FOUND", &format!("models/{action} is not found"));
    }
    if let Err(why) = super::gemini_shape::generate_request(&body) {
        return refuse(400, "INVALID_ARGUMENT", &why);
    }
    let contents = body["contents"].as_array().cloned().unwrap_or_default();
    for c in &contents {
        let parts = c["parts"].as_array().cloned().unwrap_or_default();
        if c["role"] == "model"
            && parts.iter().any(|p| p.get("functionCall").is_some())
            && !parts.iter().any(|p| p.get("thoughtSignature").is_some())
        {
            return refuse(400, "INVALID_ARGUMENT", "Function call is missing a thought_signature");
        }
    }
    (StatusCode::OK, Json(candidate(think(&contents))))
}

fn candidate(parts: Value) -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 30, "totalTokenCount": 930},
        "modelVersion": MODEL
    })
}

fn call(name: &str, args: Value) -> Value {
    json!([{"functionCall": {"name": name, "args": args}, "thoughtSignature": format!("stand-in-{name}")}])
}

/// The customer's last message and the shop's context note.
fn last_message(contents: &[Value]) -> (String, String) {
    for c in contents.iter().rev() {
        let parts = c["parts"].as_array().cloned().unwrap_or_default();
        if c["role"] == "user" && parts.iter().any(|p| p.get("text").is_some()) {
            let text =
                |i: usize| parts.get(i).and_then(|p| p["text"].as_str()).unwrap_or_default().to_string();
            return (text(0), text(1));
        }
    }
    (String::new(), String::new())
}

fn any_of(text: &str, words: &[&str]) -> bool {
    let t = text.to_lowercase();
    words.iter().any(|w| t.contains(w))
}

/// One model turn: a search first, then the final answer from its results.
fn think(contents: &[Value]) -> Value {
    let (message, note) = last_message(contents);
    let results: Option<Vec<Value>> = contents.last().and_then(|c| {
        let fr = c["parts"].as_array()?.iter().find_map(|p| p.get("functionResponse"))?;
        Some(fr["response"]["results"].as_array().cloned().unwrap_or_default())
    });
    let Some(results) = results else {
        return call("search_products", json!({"query": message, "limit": 5}));
    };
    let ru = note.contains("reply in Russian");
    let say = |r: &str, e: &str| if ru { r.to_string() } else { e.to_string() };
    let ids: Vec<String> =
        results.iter().filter_map(|r| r["product_id"].as_str()).map(str::to_string).take(3).collect();
    let Some(first) = results.first() else {
        return call(
            "final_answer",
            json!({"thought": "nothing found", "reply_text": say("К сожалению, такого у нас нет.", "Sorry, we don't have that."), "action": "none"}),
        );
    };
    let id = first["product_id"].as_str().unwrap_or_default();
    let price = first["final_price"].as_str().unwrap_or_default();
    let (reply, action) = if any_of(&message, &["предзаказ", "под заказ", "pre-order", "preorder"])
    {
        (say("Можно оформить предзаказ.", "It can be pre-ordered."), "offer_prepaid")
    } else if any_of(&message, &["купить", "куплю", "беру", "возьму", "buy", "i'll take", "purchase"])
    {
        (say("Готово, заказ оформлен!", "Done, your order is placed!"), "offer_payment")
    } else if any_of(&message, &["сколько", "цена", "стоит", "price", "how much", "cost"]) {
        (format!("{} {price}.", say("Он стоит", "It costs")), "show_products")
    } else {
        (say("Вот что я нашёл:", "Here is what I found:"), "show_products")
    };
    call(
        "final_answer",
        json!({"thought": "first search result", "reply_text": reply, "action": action,
               "product_id": id, "product_ids": ids}),
    )
}

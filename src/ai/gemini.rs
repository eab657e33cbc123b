//! A small Gemini API client (v1beta `generateContent`, `models`, `cachedContents`) over
//! reqwest. Request and response bodies stay `serde_json::Value` where the model's turns must
//! be echoed verbatim (thought signatures ride on the parts); only what the shop reads is
//! typed. Retries 408/429/5xx and timeouts with the server's `RetryInfo` delay or exponential
//! backoff with jitter; a 429 asking for a long wait fails fast so a customer is not kept
//! waiting (the offline consultant answers instead).

use crate::config::{AiConfig, Secret};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Why a model call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum GeminiError {
    /// Quota or overload that did not clear within the retries (or asked for a long wait).
    #[error("rate limited by Gemini (retry after {0:?})")]
    RateLimited(Option<Duration>),
    /// 5xx, timeouts, connection errors after the retries.
    #[error("Gemini unavailable: {0}")]
    Unavailable(String),
    /// The request was refused (400/403/404): retrying will not help.
    #[error("Gemini refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// A 200 without a usable candidate (blocked prompt, safety stop, malformed call).
    #[error("Gemini gave no usable answer: {0}")]
    NoAnswer(String),
}

impl GeminiError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            GeminiError::RateLimited(_) => "rate_limited",
            GeminiError::Unavailable(_) => "unavailable",
            GeminiError::Refused { .. } => "refused",
            GeminiError::NoAnswer(_) => "no_answer",
        }
    }
}

/// Token counts of one call (`usageMetadata`; absent fields are zero).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Usage {
    pub prompt_token_count: u64,
    pub cached_content_token_count: u64,
    pub candidates_token_count: u64,
    pub thoughts_token_count: u64,
    pub total_token_count: u64,
}

/// One `generateContent` answer: the first candidate's content, verbatim, and its usage.
#[derive(Clone, Debug)]
pub struct Generated {
    /// `candidates[0].content` exactly as received (to be appended to the history).
    pub content: Value,
    pub finish_reason: String,
    pub usage: Usage,
}

impl Generated {
    /// The function calls of the answer, in order: (name, args, id).
    pub fn function_calls(&self) -> Vec<(String, Value, Option<String>)> {
        parts(&self.content)
            .filter_map(|p| p.get("functionCall"))
            .map(|c| {
                (
                    c.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                    c.get("args").cloned().unwrap_or_else(|| json!({})),
                    c.get("id").and_then(Value::as_str).map(str::to_string),
                )
            })
            .collect()
    }

    /// The visible text of the answer (thought parts left out).
    pub fn text(&self) -> String {
        parts(&self.content)
            .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("")
    }
}

fn parts(content: &Value) -> impl Iterator<Item = &Value> {
    content.get("parts").and_then(Value::as_array).into_iter().flatten()
}

/// A context cache as the API reports it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CacheInfo {
    pub name: String,
    #[serde(default)]
    pub expire_time: Option<String>,
}

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct Gemini {
    http: reqwest::Client,
    base: String,
    key: Secret,
    model: String,
    max_attempts: u32,
    max_retry_wait: Duration,
    /// First backoff delay; doubled per attempt, with up to 100 % jitter.
    backoff: Duration,
}

impl Gemini {
    pub fn new(cfg: &AiConfig) -> crate::error::Result<Gemini> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.request_timeout_secs))
            .connect_timeout(Duration::from_secs(cfg.request_timeout_secs.min(10)))
            .build()
            .map_err(|e| crate::error::Error::Internal(format!("http client: {e}")))?;
        Ok(Gemini {
            http,
            base: cfg.gemini_base_url.trim_end_matches('/').to_string(),
            key: cfg.gemini_api_key.clone(),
            model: cfg.gemini_model.clone(),
            max_attempts: cfg.max_attempts.max(1),
            max_retry_wait: Duration::from_secs(cfg.max_retry_wait_secs),
            backoff: Duration::from_millis(500),
        })
    }

    /// Shorter backoff (tests).
    pub fn with_backoff(mut self, d: Duration) -> Gemini {
        self.backoff = d;
        self
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// `POST /v1beta/models/{model}:generateContent` with retries.
    pub async fn generate(&self, body: &Value) -> Result<Generated, GeminiError> {
        let url = format!("{}/v1beta/models/{}:generateContent", self.base, self.model);
        let v = self.call(reqwest::Method::POST, &url, Some(body)).await?;
        let usage: Usage = v
            .get("usageMetadata")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_default();
        let Some(cand) = v.get("candidates").and_then(Value::as_array).and_then(|c| c.first()) else {
            let why = v
                .pointer("/promptFeedback/blockReason")
                .and_then(Value::as_str)
                .unwrap_or("no candidates")
                .to_string();
            return Err(GeminiError::NoAnswer(why));
        };
        let finish = cand.get("finishReason").and_then(Value::as_str).unwrap_or("STOP").to_string();
        let mut content = cand.get("content").cloned().unwrap_or(Value::Null);
        if finish == "MAX_TOKENS" && !content.is_object() {
            // Starved by thinking: no parts at all. The caller may ask again with less.
            content = serde_json::json!({"role": "model", "parts": []});
        }
        if !matches!(finish.as_str(), "STOP" | "MAX_TOKENS") || !content.is_object() {
            return Err(GeminiError::NoAnswer(format!("finishReason {finish}")));
        }
        Ok(Generated { content, finish_reason: finish, usage })
    }

    /// The ids of the models the key can use (`GET /v1beta/models`, all pages).
    pub async fn models(&self) -> Result<Vec<String>, GeminiError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..20 {
            let mut url = format!("{}/v1beta/models?pageSize=1000", self.base);
            if let Some(t) = &token {
                // Tokens may hold `+` and `/`.
                url.push_str("&pageToken=");
                url.extend(form_urlencoded::byte_serialize(t.as_bytes()));
            }
            let v = self.call(reqwest::Method::GET, &url, None).await?;
            for m in v.get("models").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = m.get("name").and_then(Value::as_str) {
                    out.push(name.trim_start_matches("models/").to_string());
                }
            }
            token =
                v.get("nextPageToken").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Creates a context cache holding `system`, `tools` and `tool_config` for this model.
    pub async fn create_cache(
        &self,
        display_name: &str,
        system: &Value,
        tools: &Value,
        tool_config: &Value,
        ttl: Duration,
    ) -> Result<CacheInfo, GeminiError> {
        let body = json!({
            "model": format!("models/{}", self.model),
            "displayName": display_name,
            "systemInstruction": system,
            "tools": tools,
            "toolConfig": tool_config,
            "ttl": format!("{}s", ttl.as_secs()),
        });
        let v = self
            .call(reqwest::Method::POST, &format!("{}/v1beta/cachedContents", self.base), Some(&body))
            .await?;
        serde_json::from_value(v).map_err(|e| GeminiError::NoAnswer(format!("cache answer: {e}")))
    }

    /// Extends a cache's lifetime.
    pub async fn extend_cache(&self, name: &str, ttl: Duration) -> Result<CacheInfo, GeminiError> {
        let body = json!({ "ttl": format!("{}s", ttl.as_secs()) });
        let v =
            self.call(reqwest::Method::PATCH, &format!("{}/v1beta/{name}", self.base), Some(&body)).await?;
        serde_json::from_value(v).map_err(|e| GeminiError::NoAnswer(format!("cache answer: {e}")))
    }

    pub async fn delete_cache(&self, name: &str) -> Result<(), GeminiError> {
        self.call(reqwest::Method::DELETE, &format!("{}/v1beta/{name}", self.base), None).await.map(|_| ())
    }

    /// One HTTP call with the retry policy. Returns the JSON body of a 2xx answer.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, GeminiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), url).header("x-goog-api-key", self.key.expose());
            if let Some(b) = body {
                req = req.json(b);
            }
            let failure = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        return serde_json::from_str(if text.trim().is_empty() { "{}" } else { &text })
                            .map_err(|e| GeminiError::NoAnswer(format!("invalid JSON: {e}")));
                    }
                    let err: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let message = err
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| text.chars().take(300).collect());
                    match status.as_u16() {
                        429 => {
                            let delay = retry_delay(&err);
                            let per_day = text.contains("PerDay");
                            if per_day || delay.is_some_and(|d| d > self.max_retry_wait) {
                                return Err(GeminiError::RateLimited(delay));
                            }
                            (GeminiError::RateLimited(delay), delay)
                        }
                        408 | 500 | 502 | 503 | 504 => {
                            (GeminiError::Unavailable(format!("{}: {message}", status.as_u16())), None)
                        }
                        s => return Err(GeminiError::Refused { status: s, message }),
                    }
                }
                Err(e) => (GeminiError::Unavailable(without_url(e)), None),
            };
            if attempt >= self.max_attempts {
                return Err(failure.0);
            }
            let wait = failure.1.unwrap_or_else(|| {
                let base = self.backoff.saturating_mul(1 << (attempt - 1).min(6));
                base + base.mul_f64(fastrand::f64())
            });
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %failure.0, "retrying Gemini call");
            tokio::time::sleep(wait.min(self.max_retry_wait.max(self.backoff))).await;
        }
    }
}

/// `RetryInfo.retryDelay` ("38s", "1.5s") from a Google RPC error body.
pub fn retry_delay(err: &Value) -> Option<Duration> {
    err.pointer("/error/details")?
        .as_array()?
        .iter()
        .find(|d| {
            d.get("@type").and_then(Value::as_str).is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })?
        .get("retryDelay")?
        .as_str()?
        .strip_suffix('s')?
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// A reqwest error without the URL (it may carry a key in other setups).
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("{kind}: {}", e.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_is_read_from_retry_info() {
        let err = json!({"error": {"code": 429, "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
        ]}});
        assert_eq!(retry_delay(&err), Some(Duration::from_millis(1500)));
        assert_eq!(retry_delay(&json!({"error": {"code": 429}})), None);
        assert_eq!(
            retry_delay(&json!({"error": {"details": [{"@type": "x.RetryInfo", "retryDelay": "-1s"}]}})),
            None
        );
    }

    #[test]
    fn calls_and_text_come_from_the_verbatim_content() {
        let g = Generated {
            content: json!({"role": "model", "parts": [
                {"text": "thinking", "thought": true},
                {"functionCall": {"name": "search_products", "args": {"query": "x"}, "id": "c1"}, "thoughtSignature": "sig"},
                {"text": "hello"}
            ]}),
            finish_reason: "STOP".into(),
            usage: Usage::default(),
        };
        assert_eq!(
            g.function_calls(),
            vec![("search_products".into(), json!({"query": "x"}), Some("c1".into()))]
        );
        assert_eq!(g.text(), "hello");
    }
}

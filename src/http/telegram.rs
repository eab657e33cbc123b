//! The Telegram routes: the webhook, and the admin API's broadcasts.
//!
//! `POST /telegram/webhook`: the secret header is compared in constant time, the update is
//! stored as a `process_update` job (deduplicated by `update_id`) in one durable commit, and
//! only then is 200 returned. A crash before the commit means no 200, so Telegram sends the
//! update again; after it, the job survives the crash.

use crate::http::error::JsonRejections;
use crate::state::AppState;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    answer(status, serde_json::json!({ "error": { "code": code, "message": message } }))
}

#[utoipa::path(post, path = "/telegram/webhook", tag = "telegram", security(("telegramSecret" = [])),
    request_body(content = Object, description = "A Telegram update", content_type = "application/json"),
    responses((status = 200, description = "Stored (or a repeat); handled in the background", body = Object),
        (status = 400, description = "Not an update"), (status = 401, description = "Wrong or missing secret token"),
        (status = 404, description = "Not in webhook mode (no bot, or no public URL)"),
        (status = 503, description = "Not stored; Telegram sends it again")))]
pub async fn receive(
    axum::extract::State(s): axum::extract::State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(tg) = s.telegram.as_ref().filter(|t| t.webhook_mode()) else {
        return error(StatusCode::NOT_FOUND, "not_found", "route not found");
    };
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    let want = tg.webhook_secret().as_bytes();
    if given.is_empty() || want.is_empty() || !bool::from(given.ct_eq(want)) {
        metrics::counter!("lavka_telegram_webhook_unauthorized_total").increment(1);
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized");
    }
    let update: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_input", &format!("body: {e}")),
    };
    let Some(id) = update.get("update_id").and_then(|v| v.as_i64()) else {
        return error(StatusCode::BAD_REQUEST, "bad_input", "update_id is missing");
    };
    match s.store.write(move |tx| crate::store::telegram::accept_update(tx, id, &update)).await {
        Ok(new) => {
            metrics::counter!("lavka_telegram_updates_total", "source" => "webhook", "new" => if new { "yes" } else { "no" })
                .increment(1);
            answer(StatusCode::OK, serde_json::json!({ "ok": true }))
        }
        Err(e) => {
            // Not acknowledged: Telegram retries, and nothing was stored.
            tracing::error!(error = %e, update.id = id, "could not store a Telegram update");
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again")
        }
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct NewBroadcast {
    /// The message (not blank, at most 4000 characters).
    #[schema(pattern = r"\S", max_length = 4000)]
    text: String,
    /// Repeating a request with the same key returns the same broadcast.
    #[serde(default)]
    key: Option<String>,
}

/// `POST /admin/api/broadcast` `{"text": "...", "key": "..."}`.
#[utoipa::path(post, path = "/admin/api/broadcast", tag = "admin", request_body = NewBroadcast,
    responses((status = 202, description = "Queued (or the one with the same key)", body = Object),
        (status = 400, description = "An empty or too long text"), JsonRejections))]
pub async fn broadcast_create(
    axum::extract::State(s): axum::extract::State<AppState>,
    crate::http::error::JsonBody(b): crate::http::error::JsonBody<NewBroadcast>,
) -> crate::http::error::ApiResult<(axum::http::StatusCode, axum::Json<serde_json::Value>)> {
    let key = b.key.unwrap_or_else(|| format!("http:{}:{}", s.store.now(), fastrand::u64(..)));
    let key = format!("http:{key}");
    let text = b.text;
    let created = s.store.write(move |tx| crate::store::telegram::create_broadcast(tx, &text, &key)).await?;
    Ok((axum::http::StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "broadcast": created }))))
}

/// `GET /admin/api/broadcast/{id}`: progress.
#[utoipa::path(get, path = "/admin/api/broadcast/{id}", tag = "admin",
    params(("id" = u64, Path, description = "Broadcast id")),
    responses((status = 200, description = "Its progress", body = Object), (status = 404, description = "No such broadcast")))]
pub async fn broadcast_get(
    axum::extract::State(s): axum::extract::State<AppState>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> crate::http::error::ApiResult<axum::Json<serde_json::Value>> {
    Ok(axum::Json(serde_json::json!({ "broadcast": s.store.broadcast(id).await? })))
}

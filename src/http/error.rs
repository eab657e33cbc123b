//! Every HTTP error is `{"error":{"code","message"}}`. The crate error maps to it in one
//! `match` ([`status_of`]); whatever else answers with an error status — axum's extractor
//! rejections (400/415/422), the body limit (413), unknown methods (405), the request
//! timeout (408) — is rewritten into it by [`json_errors`], the one layer every response
//! passes. 4xx messages are for the caller; 5xx messages are generic and the cause is logged
//! once, here. The codes are stable and listed in [`CODES`] (and the OpenAPI document).

use crate::error::Error;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every `error.code` an HTTP response carries, with its status and meaning.
pub const CODES: &[(&str, u16, &str)] = &[
    ("bad_input", 400, "malformed or invalid input: path, query or body (422: JSON of the wrong shape)"),
    ("unauthorized", 401, "missing or wrong credentials"),
    ("not_found", 404, "no such thing (or route), or not the caller's"),
    ("method_not_allowed", 405, "the route does not take this method (see `Allow`)"),
    ("timeout", 408, "the request was not received and handled in time"),
    ("conflict", 409, "the current state refuses the request (not on sale, not awaiting payment…)"),
    ("out_of_stock", 409, "not enough stock to reserve"),
    ("insufficient_balance", 409, "the balance does not cover the amount"),
    (
        "reservation_limit",
        409,
        "the customer already holds as many unpaid orders or reserved items as one may",
    ),
    ("too_large", 413, "the request body is over `body_limit_bytes`"),
    ("unsupported_media_type", 415, "the body's Content-Type is not the one the route takes"),
    (
        "too_many_sessions",
        429,
        "demo mode: this address started its share of new sessions this hour (see `Retry-After`)",
    ),
    ("internal", 500, "our fault; the cause is in the server log"),
    ("schema", 500, "the database is of a version this binary cannot use"),
    ("unavailable", 503, "temporarily unavailable (a provider, or the server); try again"),
    ("storage", 503, "the database failed to read or write; try again"),
    ("overloaded", 503, "too many connections; try again shortly"),
];

/// The code of an error status that no crate error produced.
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        409 => "conflict",
        413 => "too_large",
        415 => "unsupported_media_type",
        503 => "unavailable",
        500..=599 => "internal",
        _ => "bad_input",
    }
}

/// An error response in our shape.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, Json(body)).into_response()
}

/// An error as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::BadInput(_) => StatusCode::BAD_REQUEST,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) | Error::OutOfStock(_) | Error::InsufficientBalance { .. } => StatusCode::CONFLICT,
        Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::Unavailable(_) | Error::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Schema(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
            let message = match status {
                StatusCode::SERVICE_UNAVAILABLE => "temporarily unavailable, try again",
                _ => "internal error",
            };
            return error_response(status, self.0.code(), message);
        }
        error_response(status, self.0.code(), &self.0.to_string())
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body extractor whose rejections use our error shape, with axum's statuses: 400
/// (not JSON), 413 (too large), 415 (not `application/json`), 422 (not an object, or the
/// wrong shape, named by its path). JSON has one number type: `7.0` is read as the integer 7.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(mut v) = Json::<serde_json::Value>::from_request(req, state).await.map_err(|rej| {
            let status = rej.status();
            error_response(status, code_for(status), &user_message(status, &rej.body_text()))
        })?;
        let unprocessable = |m: &str| error_response(StatusCode::UNPROCESSABLE_ENTITY, "bad_input", m);
        // serde would read a struct from an array, field by field: every body here is an object.
        if !v.is_object() {
            return Err(unprocessable("the body must be a JSON object"));
        }
        integral_numbers(&mut v);
        serde_path_to_error::deserialize(v).map(JsonBody).map_err(|e| {
            let at = e.path().to_string();
            unprocessable(&if at == "." { e.inner().to_string() } else { format!("{at}: {}", e.inner()) })
        })
    }
}

/// Whole numbers written with a fraction (`7.0`, `1e3`) become integers, so integer fields
/// take them, as JSON Schema's `integer` does.
fn integral_numbers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                *v = Value::from(f as i64);
            } else if f.fract() == 0.0 && f >= 0.0 && f < u64::MAX as f64 {
                *v = Value::from(f as u64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_numbers),
        Value::Object(o) => o.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// What a [`JsonBody`] handler answers besides its own statuses (`responses(JsonRejections)`
/// in its OpenAPI annotation; 400, 408 and 413 are added for every body).
#[derive(utoipa::IntoResponses)]
pub enum JsonRejections {
    /// The body is not `application/json`
    #[response(status = 415)]
    NotJson,
    /// JSON of the wrong shape (a missing or unknown field, a wrong type)
    #[response(status = 422)]
    WrongShape,
}

/// What the caller reads for an error status whose text came from axum or tower-http.
fn user_message(status: StatusCode, text: &str) -> String {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".into(),
        StatusCode::REQUEST_TIMEOUT => "the request took too long".into(),
        _ if text.trim().is_empty() => status.canonical_reason().unwrap_or("error").to_lowercase(),
        _ => text.trim().to_string(),
    }
}

/// Middleware: an error response that is not JSON already (nor an HTML page) gets our
/// shape; its status and headers (`Allow`, `Retry-After`) are kept.
pub async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ct = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.starts_with("application/json") || ct.starts_with("text/html") {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = if status.is_server_error() {
        tracing::error!(status = status.as_u16(), body = %text, "request failed");
        "internal error".to_string()
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("");
        format!("method not allowed here (allowed: {allow})")
    } else {
        user_message(status, &text)
    };
    let fresh = error_response(status, code_for(status), &message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, fresh.into_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_with_a_fraction_are_integers() {
        let mut v = serde_json::json!({"a": 7.0, "b": [1e3, 2.5, -0.0], "c": "7.0", "d": 1e300});
        integral_numbers(&mut v);
        assert_eq!(v, serde_json::json!({"a": 7, "b": [1000, 2.5, 0], "c": "7.0", "d": 1e300}));
    }

    #[test]
    fn every_code_a_status_maps_to_is_listed() {
        for s in [400, 401, 404, 405, 408, 409, 413, 415, 422, 429, 500, 502, 503] {
            let code = code_for(StatusCode::from_u16(s).unwrap());
            assert!(CODES.iter().any(|(c, ..)| *c == code), "{s} → {code} is not in CODES");
        }
    }

    #[test]
    fn every_crate_error_code_an_api_can_answer_is_listed() {
        let errors = [
            Error::bad("x"),
            Error::not_found("x"),
            Error::conflict("x"),
            Error::OutOfStock("x".into()),
            Error::InsufficientBalance { need: 2, have: 1 },
            crate::error::Conflict::ReservationLimit { orders: 3, items: 3, max_orders: 3, max_items: 10 }
                .into(),
            Error::Unauthorized,
            Error::storage("x"),
            Error::Unavailable("x".into()),
            Error::internal("x"),
            Error::Schema("x".into()),
        ];
        for e in errors {
            assert!(CODES.iter().any(|(c, s, _)| *c == e.code() && *s == status_of(&e).as_u16()), "{e:?}");
        }
    }
}

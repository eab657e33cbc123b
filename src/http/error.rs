//! Maps the crate error to HTTP: `{"error":{"code","message"}}`. 4xx messages are for the
//! caller; 5xx messages are generic and the cause is logged once, here.

use crate::error::Error;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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
        let message = if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
            match status {
                StatusCode::SERVICE_UNAVAILABLE => "temporarily unavailable, try again".to_string(),
                _ => "internal error".to_string(),
            }
        } else {
            self.0.to_string()
        };
        let body = serde_json::json!({ "error": { "code": self.0.code(), "message": message } });
        (status, Json(body)).into_response()
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body extractor whose rejections use our error shape.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rej) => {
                let status = rej.status();
                let body =
                    serde_json::json!({ "error": { "code": "bad_input", "message": rej.body_text() } });
                Err((status, Json(body)).into_response())
            }
        }
    }
}

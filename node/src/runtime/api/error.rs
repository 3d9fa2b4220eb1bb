//! The Go node's API error answer (`api.ErrorResponse`): `{"status": "<HTTP status text>",
//! "error": "<message>"}` with the matching status code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API error: a bad request (`400`) or a failure of ours (`500`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request's parameters did not parse (the Go node's `BadRequestError`).
    #[error("{0}")]
    BadRequest(String),
    /// Something on our side failed (the network thread, the store; the Go node's `Error`).
    #[error("{0}")]
    Internal(String),
}

/// The body of an error answer.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    error: &'a str,
}

impl ApiError {
    /// The HTTP status.
    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let message = match &self {
            ApiError::BadRequest(m) | ApiError::Internal(m) => m.as_str(),
        };
        let body = ErrorBody {
            status: code.canonical_reason().unwrap_or("Error"),
            error: message,
        };
        (code, Json(body)).into_response()
    }
}

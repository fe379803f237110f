//! How a failed API call answers the browser: an HTTP status and `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use client::ClientError;
use remoting::code::response;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// Not signed in where ACL needs it.
    #[error("{0}")]
    SignInNeeded(String),
    /// Signed in, or refused by the brokers' ACL, without the right.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The name servers or brokers failed.
    #[error("{0}")]
    Cluster(ClientError),
    #[error("the cluster did not answer within {0} s")]
    Timeout(u64),
    /// Too many failed sign-ins from this address: it may try again in that many seconds.
    #[error("too many failed sign-ins from this address; try again in {0} s")]
    TooManyAttempts(u64),
}

impl From<ClientError> for ApiError {
    fn from(error: ClientError) -> Self {
        match &error {
            _ if error.response_code() == Some(response::NO_PERMISSION) => {
                ApiError::Forbidden(error.to_string())
            }
            ClientError::NotFound(what) => ApiError::NotFound(format!("not found: {what}")),
            ClientError::InvalidArgument(_) | ClientError::InvalidMessage(_) => {
                ApiError::BadRequest(error.to_string())
            }
            _ => ApiError::Cluster(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::SignInNeeded(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Cluster(_) => StatusCode::BAD_GATEWAY,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

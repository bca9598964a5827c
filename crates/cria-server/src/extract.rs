//! `ApiJson`: a JSON body extractor whose every rejection is an OpenAI-shaped [`ApiError`].

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::body_timeout::BodyTimedOut;
use crate::error::ApiError;
use crate::state::AppState;

/// A request body parsed as JSON (any content type), 400 when it is not, 413 when it is over the limit, 408
/// when it stopped arriving.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let timed_out = req.extensions().get::<BodyTimedOut>().cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if timed_out.as_ref().is_some_and(BodyTimedOut::is_set) {
                ApiError::body_timeout()
            } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(state.config.body_limit)
            } else {
                ApiError::bad_json(format!("Could not read the request body: {e}"))
            }
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            ApiError::bad_json(format!(
                "We could not parse the JSON body of your request: {e}"
            ))
        })
    }
}

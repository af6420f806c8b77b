//! The one place where errors become HTTP responses.
//!
//! Handlers return `Result<_, ApiError>`; everything that can fail converts into
//! [`ApiError`] with `?`, so the status, the JSON shape and the `Retry-After` header are
//! decided here and nowhere else.

use std::time::Duration;

use amp_core::error::ErrorDetail;
use amp_core::{ErrorBody, ErrorKind};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error on its way to the client as `{"error": {"code", "message"}}` with its status.
///
/// ```
/// use axum::response::IntoResponse;
/// let response = amp_server::ApiError::from(amp_core::Error::not_found("file 42")).into_response();
/// assert_eq!(response.status(), 404);
/// ```
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
    /// An internal error, kept whole so its cause chain reaches the logs; clients only
    /// ever see `message`.
    internal: Option<amp_core::Error>,
}

impl ApiError {
    fn of_kind(kind: ErrorKind, message: String) -> ApiError {
        ApiError {
            // Every kind's status is a valid 4xx/5xx code, so the fallback never applies.
            status: StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: kind.code(),
            message,
            retry_after: None,
            internal: None,
        }
    }

    /// 405 `method_not_allowed`: the path exists but not with this method.
    ///
    /// This is a transport error with no counterpart in [`amp_core::ErrorKind`], since
    /// no agent ever sees a request that the router refused.
    pub fn method_not_allowed(method: &Method, path: &str) -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: format!("method {method} is not allowed on {path}"),
            retry_after: None,
            internal: None,
        }
    }

    /// The HTTP status the client receives.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable machine-readable code the client receives.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message the client receives; never holds internal details.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How long the client is told to wait (`Retry-After`), if at all.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl From<amp_core::Error> for ApiError {
    fn from(err: amp_core::Error) -> ApiError {
        let kind = err.kind();
        let mut api = ApiError::of_kind(kind, err.public_message());
        api.retry_after = err.retry_after();
        if kind == ErrorKind::Internal {
            api.internal = Some(err);
        }
        api
    }
}

impl From<JsonRejection> for ApiError {
    /// Handlers take `Result<Json<T>, JsonRejection>` and apply `?`, so a bad body gets
    /// AMP's error shape rather than axum's plain-text one.
    fn from(rejection: JsonRejection) -> ApiError {
        // axum already classifies its rejections by status (its body limit answers 413,
        // a missing JSON content type 415); everything else is a body we cannot read,
        // which is the caller's to fix, so 400 rather than axum's 422 for bad data.
        let kind = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorKind::UnsupportedMediaType,
            _ => ErrorKind::InvalidInput,
        };
        ApiError::of_kind(kind, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(err) = &self.internal {
            tracing::error!(error = %cause_chain(err), "internal error");
        }
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(after) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(after)));
        }
        response
    }
}

/// `Retry-After` takes whole seconds; rounding down could tell a client to retry before
/// the limit lifts, and `0` would invite an immediate retry storm.
fn retry_after_secs(after: Duration) -> u64 {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    secs.max(1)
}

fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut chain = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        next = cause.source();
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use amp_core::Error;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::Request;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn sample(kind: ErrorKind) -> Error {
        // Exhaustive on purpose: a new kind must be added here before it compiles.
        match kind {
            ErrorKind::InvalidInput => Error::invalid_input("bad"),
            ErrorKind::Unauthenticated => Error::unauthenticated("expired"),
            ErrorKind::Forbidden => Error::forbidden("no"),
            ErrorKind::NotFound => Error::not_found("file 1"),
            ErrorKind::Conflict => Error::conflict("stale"),
            ErrorKind::PayloadTooLarge => Error::PayloadTooLarge { limit: 1, actual: 2 },
            ErrorKind::UnsupportedMediaType => Error::UnsupportedMediaType { media_type: "x/y".into() },
            ErrorKind::RateLimited => Error::RateLimited { message: "slow down".into(), retry_after: None },
            ErrorKind::ContextWindowExceeded => Error::ContextWindowExceeded { needed: 9, limit: 8 },
            ErrorKind::Upstream => Error::Upstream {
                service: "openai".into(),
                status: Some(500),
                retryable: true,
                message: "boom".into(),
                retry_after: None,
                source: None,
            },
            ErrorKind::Timeout => Error::Timeout { operation: "call".into(), after: Duration::from_secs(1) },
            ErrorKind::Unavailable => Error::unavailable("down"),
            ErrorKind::Internal => Error::bug("broken invariant"),
        }
    }

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn every_kind_maps_to_its_status_and_code() {
        for kind in ErrorKind::ALL {
            let response = ApiError::from(sample(kind)).into_response();
            assert_eq!(response.status().as_u16(), kind.http_status(), "{kind}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json", "{kind}");
            let body = body_json(response).await;
            assert_eq!(body["error"]["code"], kind.code(), "{kind}");
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{kind}");
        }
    }

    #[test]
    fn rate_limited_sets_retry_after_in_whole_seconds_rounded_up() {
        let limited = |after| Error::RateLimited { message: "slow down".into(), retry_after: Some(after) };
        let header_of = |err| ApiError::from(err).into_response().headers().get(header::RETRY_AFTER).cloned();
        assert_eq!(header_of(limited(Duration::from_millis(1500))), Some(HeaderValue::from_static("2")));
        assert_eq!(header_of(limited(Duration::from_secs(7))), Some(HeaderValue::from_static("7")));
        assert_eq!(header_of(limited(Duration::ZERO)), Some(HeaderValue::from_static("1")));
        assert_eq!(header_of(sample(ErrorKind::RateLimited)), None);
        assert_eq!(header_of(sample(ErrorKind::NotFound)), None);
    }

    #[tokio::test]
    async fn internal_body_does_not_contain_the_source() {
        let err = Error::internal("pool broken", std::io::Error::other("password=hunter2"));
        let response = ApiError::from(err).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "internal");
        let text = body.to_string();
        assert!(!text.contains("hunter2") && !text.contains("pool broken"), "{text}");
    }

    #[test]
    fn cause_chain_names_every_source() {
        let err = Error::internal("pool broken", std::io::Error::other("connection refused"));
        let chain = cause_chain(&err);
        assert!(chain.contains("pool broken") && chain.contains("connection refused"), "{chain}");
    }

    #[tokio::test]
    async fn method_not_allowed_has_the_json_shape() {
        let response = ApiError::method_not_allowed(&Method::POST, "/healthz").into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("/healthz")), "{body}");
    }

    /// A body-taking handler exists only here until a real endpoint accepts JSON.
    async fn post_json(content_type: &str, body: &str) -> Response {
        async fn echo(
            body: Result<Json<serde_json::Value>, JsonRejection>,
        ) -> Result<Json<serde_json::Value>, ApiError> {
            let Json(value) = body?;
            Ok(Json(value))
        }
        let app = Router::new().route("/echo", post(echo)).layer(DefaultBodyLimit::max(16));
        let request = Request::post("/echo")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_owned()))
            .unwrap();
        app.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn malformed_json_is_400_invalid_input() {
        let response = post_json("application/json", "{not json").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_json(response).await["error"]["code"], "invalid_input");
    }

    #[tokio::test]
    async fn wrong_content_type_is_415_unsupported_media_type() {
        let response = post_json("text/plain", "{}").await;
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body_json(response).await["error"]["code"], "unsupported_media_type");
    }

    #[tokio::test]
    async fn body_over_the_limit_is_413_payload_too_large() {
        let response = post_json("application/json", &format!("\"{}\"", "x".repeat(64))).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body_json(response).await["error"]["code"], "payload_too_large");
    }

    #[tokio::test]
    async fn well_formed_json_passes_through() {
        let response = post_json("application/json", "{\"a\":1}").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

//! The error type shared by every AMP trait.
//!
//! Each variant carries enough context to act on, and has one [`ErrorKind`] that maps to
//! exactly one HTTP status. Whether a retry can help is a property of the error
//! ([`Error::is_retryable`]), so retry loops never guess at the call site. Messages are
//! written for the person calling the API: they never contain secrets, and internal causes
//! are kept in [`std::error::Error::source`] for logs rather than shown to clients.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A boxed cause, kept for logs and never rendered into client-facing messages.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with AMP's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in an AMP trait call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something malformed or out of range.
    #[error("{message}")]
    InvalidInput {
        /// What is wrong and, where it helps, how to fix it.
        message: String,
    },
    /// No valid credentials were presented (missing, expired or revoked).
    #[error("{message}")]
    Unauthenticated {
        /// Why the credentials were refused.
        message: String,
    },
    /// The caller is known but may not do this.
    #[error("{message}")]
    Forbidden {
        /// What was refused.
        message: String,
    },
    /// The thing does not exist, or the caller may not know that it does.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `file 0190…`.
        what: String,
    },
    /// The request conflicts with current state (duplicate, stale version, replay).
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
    },
    /// A body or file exceeds a limit.
    #[error("payload of {actual} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
        /// The size that was offered, in bytes.
        actual: u64,
    },
    /// The media type is not accepted here.
    #[error("unsupported media type {media_type}")]
    UnsupportedMediaType {
        /// The media type that was offered (declared or detected).
        media_type: String,
    },
    /// Too many requests; try again later.
    #[error("{message}")]
    RateLimited {
        /// Which limit was hit.
        message: String,
        /// When a retry may succeed, if known.
        retry_after: Option<Duration>,
    },
    /// The prompt plus the requested output does not fit the model's context window.
    #[error("{needed} tokens do not fit the context window of {limit} tokens")]
    ContextWindowExceeded {
        /// Tokens the request needs (prompt plus maximum output), as far as known.
        needed: u64,
        /// The model's context window.
        limit: u64,
    },
    /// A model provider or other upstream service failed.
    #[error("upstream {service} failed{}: {message}", status.map(|s| format!(" with status {s}")).unwrap_or_default())]
    Upstream {
        /// Which upstream (provider or deployment name), never its credentials.
        service: String,
        /// The upstream HTTP status, when there was one.
        status: Option<u16>,
        /// Whether the same request may succeed if sent again.
        retryable: bool,
        /// The upstream's own explanation, with secrets removed.
        message: String,
        /// The upstream's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The transport-level cause, for logs.
        #[source]
        source: Option<BoxError>,
    },
    /// An operation ran out of time.
    #[error("{operation} timed out after {}", humanize(*after))]
    Timeout {
        /// What was being waited for, e.g. `first token from gpt-4o`.
        operation: String,
        /// How long was waited.
        after: Duration,
    },
    /// A dependency is down, overloaded or shutting down.
    #[error("{message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
        /// When it is expected back, if known.
        retry_after: Option<Duration>,
    },
    /// A bug or an unexpected failure of our own; details go to logs only.
    #[error("internal error: {message}")]
    Internal {
        /// A short description safe to show.
        message: String,
        /// The underlying cause, for logs.
        #[source]
        source: Option<BoxError>,
    },
}

fn humanize(d: Duration) -> String {
    if d.as_secs() >= 1 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The class of an [`Error`]: one HTTP status and one stable, documented code each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400 `invalid_input`.
    InvalidInput,
    /// 401 `unauthenticated`.
    Unauthenticated,
    /// 403 `forbidden`.
    Forbidden,
    /// 404 `not_found`.
    NotFound,
    /// 409 `conflict`.
    Conflict,
    /// 413 `payload_too_large`.
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType,
    /// 429 `rate_limited` (with `Retry-After`).
    RateLimited,
    /// 422 `context_window_exceeded`.
    ContextWindowExceeded,
    /// 502 `upstream`.
    Upstream,
    /// 504 `timeout`.
    Timeout,
    /// 503 `unavailable`.
    Unavailable,
    /// 500 `internal`.
    Internal,
}

impl ErrorKind {
    /// Every kind, for exhaustive tests and documentation.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::InvalidInput,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::PayloadTooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::RateLimited,
        ErrorKind::ContextWindowExceeded,
        ErrorKind::Upstream,
        ErrorKind::Timeout,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// The HTTP status this kind is answered with.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidInput => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::ContextWindowExceeded => 422,
            ErrorKind::RateLimited => 429,
            ErrorKind::Internal => 500,
            ErrorKind::Upstream => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
        }
    }

    /// The stable machine-readable code, as it appears in `{"error": {"code": …}}`.
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ContextWindowExceeded => "context_window_exceeded",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Unauthenticated { .. } => ErrorKind::Unauthenticated,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::PayloadTooLarge { .. } => ErrorKind::PayloadTooLarge,
            Error::UnsupportedMediaType { .. } => ErrorKind::UnsupportedMediaType,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::ContextWindowExceeded { .. } => ErrorKind::ContextWindowExceeded,
            Error::Upstream { .. } => ErrorKind::Upstream,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Whether sending the same request again may succeed.
    ///
    /// Rate limits, timeouts, unavailability and upstream errors marked retryable are;
    /// bad input, auth failures and context-window overflows never are (the last one may
    /// succeed on a *different* model with a larger window, which is a fallback, not a retry).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Timeout { .. } | Error::Unavailable { .. } => true,
            Error::Upstream { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// How long to wait before a retry, when the failing side said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. }
            | Error::Unavailable { retry_after, .. }
            | Error::Upstream { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The message safe to show a client. Identical to `Display` for every kind except
    /// `Internal`, whose detail stays in logs.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal { .. } => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// [`Error::InvalidInput`] with a message.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput { message: message.into() }
    }

    /// [`Error::Unauthenticated`] with a message.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Error::Unauthenticated { message: message.into() }
    }

    /// [`Error::Forbidden`] with a message.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden { message: message.into() }
    }

    /// [`Error::NotFound`] naming what was looked for.
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// [`Error::Conflict`] with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict { message: message.into() }
    }

    /// [`Error::Unavailable`] with a message and no retry hint.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable { message: message.into(), retry_after: None }
    }

    /// [`Error::Internal`] keeping `source` for logs.
    pub fn internal(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Internal { message: message.into(), source: Some(source.into()) }
    }

    /// [`Error::Internal`] without an underlying cause (a broken invariant).
    pub fn bug(message: impl Into<String>) -> Self {
        Error::Internal { message: message.into(), source: None }
    }
}

/// The JSON body every AMP endpoint answers an error with: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The stable code of the error's kind ([`ErrorKind::code`]).
    pub code: String,
    /// A message for people; never contains secrets or internal details.
    pub message: String,
}

impl From<&Error> for ErrorBody {
    fn from(err: &Error) -> Self {
        ErrorBody { error: ErrorDetail { code: err.kind().code().to_owned(), message: err.public_message() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_code_and_an_error_status() {
        let mut codes: Vec<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert!((400..600).contains(&kind.http_status()), "{kind}");
        }
    }

    #[test]
    fn retryability_is_a_property_of_the_error() {
        let upstream = |retryable| Error::Upstream {
            service: "openai".into(),
            status: Some(503),
            retryable,
            message: "overloaded".into(),
            retry_after: Some(Duration::from_secs(2)),
            source: None,
        };
        assert!(upstream(true).is_retryable());
        assert!(!upstream(false).is_retryable());
        assert_eq!(upstream(true).retry_after(), Some(Duration::from_secs(2)));
        assert!(!Error::ContextWindowExceeded { needed: 9000, limit: 8192 }.is_retryable());
        assert!(!Error::unauthenticated("expired").is_retryable());
        assert!(Error::Timeout { operation: "x".into(), after: Duration::from_secs(3) }.is_retryable());
    }

    #[test]
    fn internal_details_stay_out_of_the_public_message() {
        let err = Error::internal("database pool broken", std::io::Error::other("password=hunter2"));
        assert_eq!(err.public_message(), "internal error");
        let body = ErrorBody::from(&err);
        assert_eq!(body.error.code, "internal");
        assert!(!serde_json::to_string(&body).unwrap().contains("hunter2"));
        // The cause is still there for logs.
        assert!(std::error::Error::source(&err).unwrap().to_string().contains("hunter2"));
    }

    #[test]
    fn messages_read_well() {
        let err = Error::Upstream {
            service: "anthropic".into(),
            status: Some(529),
            retryable: true,
            message: "overloaded".into(),
            retry_after: None,
            source: None,
        };
        assert_eq!(err.to_string(), "upstream anthropic failed with status 529: overloaded");
        let err = Error::Timeout { operation: "first token".into(), after: Duration::from_millis(1500) };
        assert_eq!(err.to_string(), "first token timed out after 1500ms");
        assert_eq!(Error::not_found("file 42").to_string(), "file 42 not found");
    }
}

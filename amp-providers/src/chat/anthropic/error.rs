//! Anthropic error bodies and `error` stream events → [`amp_core::Error`].
//!
//! Errors arrive as `{"type": "error", "error": {"type", "message"}}`, over HTTP with a
//! status, or mid-stream as an `error` event without one.

use amp_core::Error;
use serde::Deserialize;

use crate::http::{KeyScrubber, UpstreamErrorBody, status_is_retryable, upstream_status_error};

/// The `error` object of an error body or event.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct WireError {
    #[serde(default, rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) message: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: WireError,
}

/// The HTTP status Anthropic documents for each error type, so a mid-stream error (which
/// has no status of its own) is classified like the same error over HTTP.
fn status_of(kind: &str) -> Option<u16> {
    Some(match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

/// The token counts in a "too long" message: `prompt is too long: 208310 tokens > 200000
/// maximum`, or `input length and max_tokens exceed context limit: 188240 + 21333 > 200000`.
/// The numbers before `>` (after the last `:`) add up to what was needed; the first after
/// it is the limit.
fn overflow_numbers(message: &str) -> Option<(u64, u64)> {
    let (needed_part, limit_part) = message.split_once('>')?;
    let needed_part = needed_part.rsplit(':').next().unwrap_or(needed_part);
    let needed: u64 = needed_part
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u64>().ok())
        .fold(0, u64::saturating_add);
    let limit = crate::http::first_number_after(limit_part, "")?;
    (needed > 0).then_some((needed, limit))
}

fn is_context_overflow(status: u16, error: &WireError) -> bool {
    let message = error.message.to_ascii_lowercase();
    status == 400
        && error.kind == "invalid_request_error"
        && (message.contains("prompt is too long") || message.contains("exceed context limit"))
}

/// Maps an HTTP error answer. A prompt that does not fit becomes
/// [`Error::ContextWindowExceeded`]; everything else an [`Error::Upstream`] keeping the
/// status, retryable by status (529 "overloaded" included).
pub(crate) fn status_error(
    service: &str,
    body: &UpstreamErrorBody,
    scrubber: &KeyScrubber,
    context_window: Option<u32>,
) -> Error {
    let Ok(ErrorBody { error }) = serde_json::from_str::<ErrorBody>(&body.text) else {
        return upstream_status_error(
            service,
            body.status,
            body.fallback_message(scrubber),
            body.retry_after,
        );
    };
    if is_context_overflow(body.status, &error) {
        let (needed, limit) = overflow_numbers(&error.message).unwrap_or_else(|| {
            let limit = context_window.map_or(0, u64::from);
            // Without numbers, one more than the window is the least the prompt can have been.
            (limit.saturating_add(1), limit)
        });
        return Error::ContextWindowExceeded { needed, limit };
    }
    upstream_status_error(service, body.status, describe(&error, scrubber), body.retry_after)
}

/// Maps an `error` event received after the stream started (e.g. `overloaded_error`).
pub(crate) fn stream_error(service: &str, error: &WireError, scrubber: &KeyScrubber) -> Error {
    let status = status_of(&error.kind);
    Error::Upstream {
        service: service.to_owned(),
        status,
        // An unknown error type mid-stream is most likely transient.
        retryable: status.is_none_or(status_is_retryable),
        message: describe(error, scrubber),
        retry_after: None,
        source: None,
    }
}

fn describe(error: &WireError, scrubber: &KeyScrubber) -> String {
    match (error.message.trim(), error.kind.as_str()) {
        ("", "") => "error".to_owned(),
        ("", kind) => kind.to_owned(),
        (message, "") => scrubber.scrub(message),
        (message, kind) => format!("{} ({kind})", scrubber.scrub(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_overflow_messages_yield_their_numbers() {
        assert_eq!(
            overflow_numbers("prompt is too long: 208310 tokens > 200000 maximum"),
            Some((208_310, 200_000))
        );
        assert_eq!(
            overflow_numbers(
                "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length or `max_tokens` and try again"
            ),
            Some((209_573, 200_000))
        );
        assert_eq!(overflow_numbers("prompt is too long"), None);
    }

    #[test]
    fn overflow_without_numbers_uses_the_configured_window() {
        let body = UpstreamErrorBody {
            status: 400,
            retry_after: None,
            text:
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"Prompt is too long"}}"#
                    .into(),
        };
        let err = status_error("s", &body, &KeyScrubber::default(), Some(1000));
        assert!(matches!(err, Error::ContextWindowExceeded { needed: 1001, limit: 1000 }), "{err:?}");
    }

    #[test]
    fn mid_stream_errors_are_classified_by_type() {
        let overloaded = WireError { kind: "overloaded_error".into(), message: "Overloaded".into() };
        assert!(matches!(
            stream_error("s", &overloaded, &KeyScrubber::default()),
            Error::Upstream { status: Some(529), retryable: true, .. }
        ));
        let invalid = WireError { kind: "invalid_request_error".into(), message: "bad".into() };
        assert!(!stream_error("s", &invalid, &KeyScrubber::default()).is_retryable());
    }
}

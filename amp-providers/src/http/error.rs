//! Upstream failures as [`amp_core::Error`]: by HTTP status, and by transport failure.

use std::time::Duration;

use amp_core::{Error, Result};
use futures::StreamExt;

use super::retry_after::retry_after;
use super::scrub::KeyScrubber;
use super::timeouts::{StreamClock, TimeoutStage};

/// The most of an error body read; the message inside is at the start, and a runaway body
/// must not hold the call.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Whether a request that failed with this status may succeed if sent again: request
/// timeouts (408), conflicts (409, OpenAI's "another request is in progress"), rate limits
/// (429) and server errors (5xx, including Anthropic's 529 "overloaded").
pub fn status_is_retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// [`Error::Upstream`] for an HTTP error status, retryable as [`status_is_retryable`] says.
pub fn upstream_status_error(
    service: &str,
    status: u16,
    message: String,
    retry_after: Option<Duration>,
) -> Error {
    Error::Upstream {
        service: service.to_owned(),
        status: Some(status),
        retryable: status_is_retryable(status),
        message,
        retry_after,
        source: None,
    }
}

/// A transport failure (connect, TLS, broken connection) as an error naming `service`.
///
/// A connect timeout is an [`Error::Timeout`] for the connect stage; everything else is a
/// retryable [`Error::Upstream`] without a status. The URL is dropped from the kept cause
/// so that credentials in a configured endpoint cannot reach logs.
pub fn transport_error(service: &str, err: reqwest::Error, clock: &StreamClock) -> Error {
    if err.is_timeout() {
        let stage = if err.is_connect() { TimeoutStage::Connect } else { TimeoutStage::Total };
        return clock.error(stage, service);
    }
    let what = if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the connection broke off while reading the answer"
    } else {
        "the request failed"
    };
    let message = match root_cause(&err) {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_owned(),
    };
    Error::Upstream {
        service: service.to_owned(),
        status: None,
        retryable: true,
        message,
        retry_after: None,
        source: Some(Box::new(err.without_url())),
    }
}

/// The innermost cause's text ("connection reset by peer"), which says more than reqwest's
/// outer "error sending request".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = err.source()?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause.to_string())
}

/// What an upstream said when it answered with an error status.
#[derive(Debug, Clone)]
pub struct UpstreamErrorBody {
    /// The HTTP status.
    pub status: u16,
    /// The wait it asked for (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The body as text (lossy UTF-8, at most 64 KiB), key not yet scrubbed.
    pub text: String,
}

impl UpstreamErrorBody {
    /// The body with the key scrubbed, or the status' reason phrase when it is empty.
    pub fn fallback_message(&self, scrubber: &KeyScrubber) -> String {
        let text = scrubber.scrub(&self.text);
        if text.is_empty() {
            reqwest::StatusCode::from_u16(self.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error")
                .to_owned()
        } else {
            text
        }
    }
}

/// Reads an error response within the clock's deadline.
pub async fn read_error_body(
    response: reqwest::Response,
    clock: &StreamClock,
    service: &str,
) -> Result<UpstreamErrorBody> {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    let read = clock.run(async {
        while let Some(chunk) = chunks.next().await {
            body.extend_from_slice(&chunk?);
            if body.len() >= MAX_ERROR_BODY {
                body.truncate(MAX_ERROR_BODY);
                break;
            }
        }
        Ok::<_, reqwest::Error>(())
    });
    match read.await {
        Ok(Ok(())) => {}
        // The status already says what happened; a body cut short only loses detail.
        Ok(Err(_)) => {}
        Err(stage) => return Err(clock.error(stage, service)),
    }
    Ok(UpstreamErrorBody { status, retry_after, text: String::from_utf8_lossy(&body).into_owned() })
}

/// The first unsigned integer after `marker` in `text` (digits may contain `,` separators),
/// for reading token counts out of providers' error messages.
pub fn first_number_after(text: &str, marker: &str) -> Option<u64> {
    let start = text.find(marker)? + marker.len();
    first_number(&text[start..])
}

pub(crate) fn first_number(text: &str) -> Option<u64> {
    let digits: String = text
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses_are_the_transient_ones() {
        for s in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(status_is_retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!status_is_retryable(s), "{s}");
        }
    }

    #[test]
    fn numbers_are_read_after_a_marker() {
        let msg = "This model's maximum context length is 8,192 tokens. However, your messages resulted in 9000 tokens.";
        assert_eq!(first_number_after(msg, "maximum context length is"), Some(8192));
        assert_eq!(first_number_after(msg, "resulted in"), Some(9000));
        assert_eq!(first_number_after(msg, "absent"), None);
    }
}

//! OpenAI-style error bodies → [`amp_core::Error`].
//!
//! OpenAI answers `{"error": {"message", "type", "param", "code"}}`; compatible servers
//! vary (Ollama `{"error": "…"}`, vLLM/FastAPI `{"detail": "…"}`, llama.cpp adds
//! `n_prompt_tokens`/`n_ctx`), so every field is optional and the raw body is the fallback.

use amp_core::Error;
use serde_json::Value;

use crate::http::{
    KeyScrubber, UpstreamErrorBody, first_number_after, status_is_retryable, upstream_status_error,
};

/// The useful parts of an error body, whichever server wrote it.
struct ErrorFields {
    message: Option<String>,
    kind: Option<String>,
    code: Option<String>,
    n_prompt_tokens: Option<u64>,
    n_ctx: Option<u64>,
}

fn fields(value: &Value) -> ErrorFields {
    let error = value.get("error").unwrap_or(value);
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let message = match error {
        Value::String(s) => Some(s.clone()),
        _ => text(error.get("message")).or_else(|| text(value.get("detail"))),
    };
    ErrorFields {
        message,
        kind: text(error.get("type")),
        code: text(error.get("code")),
        n_prompt_tokens: error.get("n_prompt_tokens").and_then(Value::as_u64),
        n_ctx: error.get("n_ctx").and_then(Value::as_u64),
    }
}

/// Maps an HTTP error answer. A prompt that does not fit becomes
/// [`Error::ContextWindowExceeded`] (with the token counts when the message has them);
/// everything else an [`Error::Upstream`] keeping the status, retryable by status.
pub(crate) fn status_error(
    service: &str,
    body: &UpstreamErrorBody,
    scrubber: &KeyScrubber,
    context_window: Option<u32>,
) -> Error {
    let parsed = serde_json::from_str::<Value>(&body.text).ok().map(|v| fields(&v));
    let Some(f) = parsed.filter(|f| f.message.is_some() || f.code.is_some()) else {
        return upstream_status_error(
            service,
            body.status,
            body.fallback_message(scrubber),
            body.retry_after,
        );
    };
    let message = f.message.clone().unwrap_or_default();
    let context_exceeded = f.code.as_deref() == Some("context_length_exceeded")
        || f.kind.as_deref() == Some("exceed_context_size_error")
        || (body.status == 400 && message.contains("maximum context length"));
    if context_exceeded {
        let limit = first_number_after(&message, "maximum context length is")
            .or(f.n_ctx)
            .or(context_window.map(u64::from))
            .unwrap_or(0);
        // When the server does not say how many tokens were sent, one more than the
        // window is the least it can have been.
        let needed = first_number_after(&message, "resulted in")
            .or_else(|| first_number_after(&message, "you requested"))
            .or(f.n_prompt_tokens)
            .unwrap_or(limit.saturating_add(1));
        return Error::ContextWindowExceeded { needed, limit };
    }
    upstream_status_error(service, body.status, describe(&f, scrubber, body), body.retry_after)
}

fn describe(f: &ErrorFields, scrubber: &KeyScrubber, body: &UpstreamErrorBody) -> String {
    let message = match &f.message {
        Some(m) if !m.trim().is_empty() => scrubber.scrub(m),
        _ => body.fallback_message(scrubber),
    };
    match f.code.as_deref().or(f.kind.as_deref()) {
        Some(code) if !code.is_empty() && !message.contains(code) => {
            format!("{message} ({})", scrubber.scrub(code))
        }
        _ => message,
    }
}

/// Maps an `{"error": …}` object sent inside a stream (vLLM, OpenRouter and others report
/// failures after the first token this way). A numeric `code` is read as an HTTP status.
pub(crate) fn stream_error(service: &str, value: &Value, scrubber: &KeyScrubber) -> Error {
    let f = fields(value);
    let status = f.code.as_deref().and_then(|c| c.parse::<u16>().ok()).filter(|s| (400..600).contains(s));
    let retryable = match status {
        Some(s) => status_is_retryable(s),
        None => f.kind.as_deref() != Some("invalid_request_error"),
    };
    let message = f
        .message
        .as_deref()
        .map(|m| scrubber.scrub(m))
        .unwrap_or_else(|| "error in the answer stream".into());
    Error::Upstream {
        service: service.to_owned(),
        status,
        retryable,
        message,
        retry_after: None,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(status: u16, text: &str) -> UpstreamErrorBody {
        UpstreamErrorBody { status, retry_after: None, text: text.to_owned() }
    }

    #[test]
    fn vllm_context_overflow_is_recognised_by_its_message() {
        let b = body(
            400,
            r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).","type":"BadRequestError","param":null,"code":400}"#,
        );
        let err = status_error("s", &b, &KeyScrubber::default(), None);
        assert!(matches!(err, Error::ContextWindowExceeded { needed: 5000, limit: 4096 }), "{err:?}");
    }

    #[test]
    fn llama_cpp_context_overflow_uses_its_fields() {
        let b = body(
            400,
            r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":9000,"n_ctx":8192}}"#,
        );
        let err = status_error("s", &b, &KeyScrubber::default(), None);
        assert!(matches!(err, Error::ContextWindowExceeded { needed: 9000, limit: 8192 }), "{err:?}");
    }

    #[test]
    fn ollama_string_errors_and_html_bodies_keep_their_text() {
        let err = status_error(
            "s",
            &body(404, r#"{"error":"model \"x\" not found"}"#),
            &KeyScrubber::default(),
            None,
        );
        assert!(err.to_string().contains("model \"x\" not found"), "{err}");
        let err = status_error("s", &body(502, "<html>Bad Gateway</html>"), &KeyScrubber::default(), None);
        assert!(err.is_retryable() && err.to_string().contains("Bad Gateway"), "{err}");
        let err = status_error("s", &body(503, ""), &KeyScrubber::default(), None);
        assert!(err.to_string().contains("Service Unavailable"), "{err}");
    }

    #[test]
    fn stream_errors_with_a_numeric_code_use_it_as_status() {
        let v: Value = serde_json::from_str(r#"{"error":{"message":"boom","code":503}}"#).unwrap();
        let err = stream_error("s", &v, &KeyScrubber::default());
        assert!(matches!(err, Error::Upstream { status: Some(503), retryable: true, .. }), "{err:?}");
    }
}

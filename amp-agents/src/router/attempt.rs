//! What happened to each option a request tried, and the one error that sums them up
//! when all of them failed.

use std::fmt::Write as _;
use std::time::Duration;

use amp_core::{Error, ErrorKind, ModelId};
use serde::Serialize;

/// One option tried for a request: a call to a deployment, or a model skipped before any
/// call (context window too small, no deployment available).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// The model.
    pub model: ModelId,
    /// The deployment called, if the model got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The class of the failure.
    pub kind: ErrorKind,
    /// Why it failed, safe to show.
    pub reason: String,
    /// When the failing side said a retry may succeed.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
    /// For context-window failures: tokens needed and the window.
    #[serde(skip)]
    pub(crate) tokens: Option<(u64, u64)>,
    /// The request itself was refused (see [`Attempt::is_bad_request`]).
    #[serde(skip)]
    pub(crate) bad_request: bool,
}

impl Attempt {
    pub(crate) fn failed(model: &ModelId, deployment: &str, err: &Error) -> Self {
        let tokens = match err {
            Error::ContextWindowExceeded { needed, limit } => Some((*needed, *limit)),
            _ => None,
        };
        Attempt {
            model: model.clone(),
            deployment: Some(deployment.to_owned()),
            // An upstream 429 is a rate limit whatever error type carried it.
            kind: match err {
                Error::Upstream { status: Some(429), .. } => ErrorKind::RateLimited,
                other => other.kind(),
            },
            reason: err.public_message(),
            retry_after: err.retry_after(),
            tokens,
            bad_request: Self::is_bad_request(err),
        }
    }

    pub(crate) fn skipped(model: &ModelId, kind: ErrorKind, reason: String) -> Self {
        Attempt {
            model: model.clone(),
            deployment: None,
            kind,
            reason,
            retry_after: None,
            tokens: None,
            bad_request: false,
        }
    }

    /// Whether the upstream refused the request itself (HTTP 400/422), which another
    /// deployment of the same model would refuse too.
    pub(crate) fn is_bad_request(err: &Error) -> bool {
        matches!(err, Error::Upstream { status: Some(400 | 422), .. })
            || err.kind() == ErrorKind::InvalidInput
    }
}

/// `gpt-4o/east: upstream … failed with status 500: …; claude/default: …`.
fn list(attempts: &[Attempt]) -> String {
    let mut out = String::new();
    for (i, a) in attempts.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let _ = match &a.deployment {
            Some(d) => write!(out, "{}/{d}: {}", a.model, a.reason),
            None => write!(out, "{}: {}", a.model, a.reason),
        };
    }
    out
}

/// The error returned when every option failed: its kind follows what the failures have in
/// common (all rate limits → 429 with the soonest `Retry-After`; all timeouts → 504; all
/// unavailable → 503; all context windows too small → 422; all refusing the request → 400;
/// otherwise 502), and its message lists every attempt.
pub(crate) fn exhausted(attempts: &[Attempt], elapsed: Duration) -> Error {
    let all = |pred: &dyn Fn(&Attempt) -> bool| !attempts.is_empty() && attempts.iter().all(pred);
    let listed = list(attempts);
    let soonest = attempts.iter().filter_map(|a| a.retry_after).min();
    if all(&|a| a.kind == ErrorKind::ContextWindowExceeded) {
        let needed = attempts.iter().filter_map(|a| a.tokens.map(|t| t.0)).max().unwrap_or(0);
        let limit = attempts.iter().filter_map(|a| a.tokens.map(|t| t.1)).max().unwrap_or(0);
        return Error::ContextWindowExceeded { needed, limit };
    }
    if all(&|a| a.bad_request) {
        return Error::invalid_input(format!("every model refused the request: {listed}"));
    }
    if all(&|a| a.kind == ErrorKind::RateLimited) {
        return Error::RateLimited {
            message: format!("every option is rate limited: {listed}"),
            retry_after: soonest,
        };
    }
    if all(&|a| a.kind == ErrorKind::Timeout) {
        return Error::Timeout { operation: format!("every option ({listed})"), after: elapsed };
    }
    if all(&|a| a.kind == ErrorKind::Unavailable) {
        return Error::Unavailable {
            message: format!("every option is unavailable: {listed}"),
            retry_after: soonest,
        };
    }
    Error::Upstream {
        service: "router".to_owned(),
        status: None,
        retryable: true,
        message: format!("every option failed: {listed}"),
        retry_after: soonest,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(kind: ErrorKind, reason: &str) -> Attempt {
        Attempt::skipped(&ModelId::new("m"), kind, reason.to_owned())
    }

    #[test]
    fn the_summary_error_follows_what_the_failures_share() {
        let timeouts = [attempt(ErrorKind::Timeout, "a"), attempt(ErrorKind::Timeout, "b")];
        assert_eq!(exhausted(&timeouts, Duration::from_secs(1)).kind(), ErrorKind::Timeout);
        let mixed = [attempt(ErrorKind::Timeout, "slow"), attempt(ErrorKind::Upstream, "boom")];
        let err = exhausted(&mixed, Duration::from_secs(1));
        assert_eq!(err.kind(), ErrorKind::Upstream);
        assert_eq!(err.to_string(), "upstream router failed: every option failed: m: slow; m: boom");
        let mut limited = attempt(ErrorKind::RateLimited, "429");
        limited.retry_after = Some(Duration::from_secs(7));
        let err = exhausted(&[limited], Duration::ZERO);
        assert_eq!((err.kind(), err.retry_after()), (ErrorKind::RateLimited, Some(Duration::from_secs(7))));
    }
}

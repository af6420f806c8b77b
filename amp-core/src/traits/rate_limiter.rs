//! Counting requests against limits (login throttling, per-key quotas).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// At most `limit` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Hits allowed per window.
    pub limit: u32,
    /// The window's length.
    pub window: Duration,
}

/// The outcome of one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateDecision {
    /// Whether this hit is within the limit.
    pub allowed: bool,
    /// Hits left in the current window after this one.
    pub remaining: u32,
    /// When denied: how long until the window resets.
    pub retry_after: Option<Duration>,
}

/// A counter's value after [`RateLimiter::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// The count in the current window.
    pub count: u64,
    /// How long until the window ends and the count starts from zero.
    pub resets_in: Duration,
}

/// Fixed-window counters keyed by caller-chosen strings (`login:user:ada@example.com`,
/// `login:ip:203.0.113.7`).
///
/// Promises, checked by the conformance kit: within one window exactly `limit` hits are
/// allowed, even when they arrive concurrently; a denied hit says when to retry; keys are
/// independent; a new window starts after the old one ends; `reset` clears a key (e.g.
/// after a successful login).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit against `key`.
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision>;

    /// Forgets `key`'s count.
    async fn reset(&self, key: &str) -> Result<()>;

    /// Adds `amount` to `key`'s count (a negative amount gives some back; the count never
    /// goes below zero), opening a window of `window` if none is open, and returns the
    /// count after. `amount` 0 reads the count. For budgets (tokens a day) and gauges
    /// (streams open), where [`RateLimiter::hit`] counts requests.
    async fn add(&self, key: &str, amount: i64, window: Duration) -> Result<Tally>;
}

//! How the Router treats failing deployments: circuit breakers, retries and active health
//! checks. The `[router]` section of `amp.toml`.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The `[router]` section: failure handling shared by every model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    /// When a deployment is taken out of rotation and how it comes back.
    pub breaker: BreakerConfig,
    /// How often and how long a failed call is tried again.
    pub retry: RetryConfig,
    /// Optional probes of every deployment on an interval, beside real traffic.
    pub health_check: HealthCheckConfig,
}

/// A circuit breaker per deployment. It opens on `consecutive_failures` failures in a row,
/// or when at least `min_requests` calls in the last `window_secs` failed in a ratio of at
/// least `error_ratio`; an open breaker skips its deployment for `cooldown_ms`, then lets
/// one probe through (half-open): success closes it, failure opens it again.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker. Default 5.
    pub consecutive_failures: u32,
    /// Share of failed calls in the window that opens the breaker. Default 0.5.
    pub error_ratio: f64,
    /// Calls the window must hold before the ratio counts. Default 20.
    pub min_requests: u32,
    /// The rolling window, in seconds. Default 60.
    pub window_secs: u32,
    /// How long an open breaker waits before its probe, in milliseconds. Default 30,000.
    pub cooldown_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            error_ratio: 0.5,
            min_requests: 20,
            window_secs: 60,
            cooldown_ms: 30_000,
        }
    }
}

/// Retries of a model before its fallbacks, with exponential backoff and full jitter: the
/// n-th retry waits a random time between 0 and `min(max_delay_ms, base_delay_ms · 2ⁿ)`, or
/// the upstream's `Retry-After` when that is longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Calls to one model after its first failed call (on any of its deployments).
    /// Default 2.
    pub retries_per_model: u32,
    /// Calls per request across every model and deployment. Default 8.
    pub max_attempts: u32,
    /// The first backoff's upper bound, in milliseconds. Default 100.
    pub base_delay_ms: u64,
    /// The largest backoff, in milliseconds. Default 5,000.
    pub max_delay_ms: u64,
    /// Time a request may spend on retries and fallbacks before it gives up, in
    /// milliseconds; a `Retry-After` that ends later makes the router move on instead of
    /// waiting. Default 30,000.
    pub max_total_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            retries_per_model: 2,
            max_attempts: 8,
            base_delay_ms: 100,
            max_delay_ms: 5_000,
            max_total_ms: 30_000,
        }
    }
}

/// Active health checks: a one-token request to every remote deployment on an interval.
/// Their outcome feeds the breakers like real traffic does. Off by default (passive health
/// from real traffic needs no extra calls, and probes cost tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// Seconds between checks; `None` (the default) turns them off.
    pub interval_secs: Option<u64>,
    /// How long one check may take, in milliseconds. Default 5,000.
    pub timeout_ms: u64,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig { interval_secs: None, timeout_ms: 5_000 }
    }
}

impl RouterConfig {
    /// Checks every value is in range, naming the key when one is not.
    pub fn validate(&self) -> Result<(), Error> {
        let b = &self.breaker;
        let bad = |key: &str, why: &str| Err(Error::invalid_input(format!("router.{key}: {why}")));
        if b.consecutive_failures == 0 {
            return bad("breaker.consecutive_failures", "must be at least 1");
        }
        if !(b.error_ratio > 0.0 && b.error_ratio <= 1.0) {
            return bad("breaker.error_ratio", "must be in (0, 1]");
        }
        if b.window_secs == 0 || b.window_secs > 3_600 {
            return bad("breaker.window_secs", "must be between 1 and 3600");
        }
        let r = &self.retry;
        if r.max_attempts == 0 {
            return bad("retry.max_attempts", "must be at least 1");
        }
        if r.base_delay_ms > r.max_delay_ms {
            return bad("retry.base_delay_ms", "must not exceed retry.max_delay_ms");
        }
        if self.health_check.interval_secs == Some(0) {
            return bad("health_check.interval_secs", "must be positive when set");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        RouterConfig::default().validate().unwrap();
        let mut config = RouterConfig::default();
        config.breaker.error_ratio = 1.5;
        assert!(config.validate().unwrap_err().to_string().contains("router.breaker.error_ratio"));
        let mut config = RouterConfig::default();
        config.retry.base_delay_ms = 10_000;
        assert!(config.validate().unwrap_err().to_string().contains("router.retry.base_delay_ms"));
    }
}

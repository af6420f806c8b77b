//! Waiting between retries: exponential backoff with full jitter, never shorter than the
//! upstream's `Retry-After`, never past the request's time budget.

use std::time::Duration;

use amp_core::RetryConfig;

/// How long to wait before retry number `retry` (0 for the first retry): a random time in
/// `[0, min(max_delay, base · 2^retry)]`, or `retry_after` when the upstream asked for longer.
pub(crate) fn backoff(config: &RetryConfig, retry: u32, retry_after: Option<Duration>) -> Duration {
    let ceiling = config.base_delay_ms.saturating_mul(1_u64 << retry.min(32)).min(config.max_delay_ms);
    let jittered = Duration::from_millis(fastrand::u64(0..=ceiling));
    retry_after.map_or(jittered, |asked| asked.max(jittered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RetryConfig {
        RetryConfig { base_delay_ms: 100, max_delay_ms: 1_000, ..RetryConfig::default() }
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap_with_full_jitter() {
        for retry in 0..8 {
            let ceiling = (100_u64 << retry).min(1_000);
            let waits: Vec<u64> =
                (0..200).map(|_| backoff(&config(), retry, None).as_millis() as u64).collect();
            assert!(waits.iter().all(|&w| w <= ceiling), "retry {retry}: {waits:?}");
            // Full jitter spreads over the whole range, down to near zero.
            assert!(waits.iter().any(|&w| w < ceiling / 4), "retry {retry}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let wait = backoff(&config(), 0, Some(Duration::from_secs(3)));
        assert_eq!(wait, Duration::from_secs(3));
    }
}

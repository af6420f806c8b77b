//! Requests and tokens a deployment took in the last minute, for rpm/tpm limits and for
//! usage-based balancing.

use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

const SECONDS: usize = 60;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: u64,
    requests: u32,
    tokens: u64,
}

/// A sliding one-minute window of one-second buckets.
#[derive(Debug)]
pub(crate) struct UsageWindow {
    epoch: Instant,
    buckets: Mutex<[Bucket; SECONDS]>,
}

impl UsageWindow {
    pub(crate) fn new() -> Self {
        UsageWindow { epoch: Instant::now(), buckets: Mutex::new([Bucket::default(); SECONDS]) }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    /// Requests and tokens in the last 60 seconds.
    pub(crate) fn last_minute(&self, now: Instant) -> (u64, u64) {
        let second = self.second(now);
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .iter()
            .filter(|b| (b.requests > 0 || b.tokens > 0) && second.saturating_sub(b.second) < SECONDS as u64)
            .fold((0, 0), |(r, t), b| (r + u64::from(b.requests), t + b.tokens))
    }

    /// Counts a request and the tokens it is expected to use.
    pub(crate) fn record(&self, now: Instant, requests: u32, tokens: u64) {
        let second = self.second(now);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = &mut buckets[(second % SECONDS as u64) as usize];
        if bucket.second != second {
            *bucket = Bucket { second, requests: 0, tokens: 0 };
        }
        bucket.requests = bucket.requests.saturating_add(requests);
        bucket.tokens = bucket.tokens.saturating_add(tokens);
    }

    /// The share of the tighter limit still free (1.0 with no limits), or `None` when a
    /// limit is reached or `tokens` more would pass the tpm limit.
    pub(crate) fn headroom(
        &self,
        now: Instant,
        rpm: Option<u32>,
        tpm: Option<u32>,
        tokens: u64,
    ) -> Option<f64> {
        if rpm.is_none() && tpm.is_none() {
            return Some(1.0);
        }
        let (requests, used) = self.last_minute(now);
        let mut free = 1.0_f64;
        if let Some(rpm) = rpm {
            let rpm = u64::from(rpm);
            if requests >= rpm {
                return None;
            }
            free = free.min((rpm - requests) as f64 / rpm as f64);
        }
        if let Some(tpm) = tpm {
            let tpm = u64::from(tpm);
            if used + tokens > tpm {
                return None;
            }
            free = free.min((tpm - used) as f64 / tpm as f64);
        }
        Some(free)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rpm_limit_is_reached_and_frees_up_after_a_minute() {
        let window = UsageWindow::new();
        let t0 = Instant::now();
        assert_eq!(window.headroom(t0, Some(2), None, 0), Some(1.0));
        window.record(t0, 1, 0);
        assert_eq!(window.headroom(t0, Some(2), None, 0), Some(0.5));
        window.record(t0, 1, 0);
        assert_eq!(window.headroom(t0, Some(2), None, 0), None);
        assert_eq!(window.headroom(t0 + Duration::from_secs(60), Some(2), None, 0), Some(1.0));
    }

    #[test]
    fn tpm_limit_counts_the_request_about_to_be_sent() {
        let window = UsageWindow::new();
        let t0 = Instant::now();
        window.record(t0, 1, 900);
        assert!(window.headroom(t0, None, Some(1_000), 100).is_some());
        assert_eq!(window.headroom(t0, None, Some(1_000), 101), None);
        assert_eq!(window.headroom(t0, None, None, 1_000_000), Some(1.0));
    }
}

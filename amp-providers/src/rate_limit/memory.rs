//! In-process fixed-window counters.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use amp_core::traits::rate_limiter::Tally;
use amp_core::{RateDecision, RateLimit, RateLimiter, Result};
use async_trait::async_trait;

/// The in-process [`RateLimiter`] for one server process.
///
/// Expired windows are swept on use once the map grows past `sweep_at` keys, so a stream of
/// one-off keys (client addresses) cannot grow memory without bound.
pub struct MemoryRateLimiter {
    windows: Mutex<HashMap<String, Window>>,
    sweep_at: usize,
}

struct Window {
    count: u64,
    ends_at: Instant,
}

impl MemoryRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        MemoryRateLimiter { windows: Mutex::new(HashMap::new()), sweep_at: 10_000 }
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        let now = Instant::now();
        // Counters stay consistent across a panic elsewhere: each update is one assignment.
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= self.sweep_at {
            windows.retain(|_, w| w.ends_at > now);
        }
        let window =
            windows.entry(key.to_owned()).or_insert(Window { count: 0, ends_at: now + limit.window });
        if window.ends_at <= now {
            *window = Window { count: 0, ends_at: now + limit.window };
        }
        if window.count >= u64::from(limit.limit) {
            return Ok(RateDecision {
                allowed: false,
                remaining: 0,
                retry_after: Some(window.ends_at - now),
            });
        }
        window.count += 1;
        let remaining = u64::from(limit.limit) - window.count;
        Ok(RateDecision {
            allowed: true,
            remaining: u32::try_from(remaining).unwrap_or(0),
            retry_after: None,
        })
    }

    async fn add(&self, key: &str, amount: i64, window: std::time::Duration) -> Result<Tally> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= self.sweep_at {
            windows.retain(|_, w| w.ends_at > now);
        }
        let entry = windows.entry(key.to_owned()).or_insert(Window { count: 0, ends_at: now + window });
        if entry.ends_at <= now {
            *entry = Window { count: 0, ends_at: now + window };
        }
        entry.count = entry.count.saturating_add_signed(amount);
        Ok(Tally { count: entry.count, resets_in: entry.ends_at - now })
    }

    async fn reset(&self, key: &str) -> Result<()> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn expired_windows_are_swept_once_the_map_is_large() {
        let limiter = MemoryRateLimiter { windows: Mutex::new(HashMap::new()), sweep_at: 3 };
        let brief = RateLimit { limit: 1, window: Duration::from_millis(1) };
        for i in 0..3 {
            limiter.hit(&format!("ip:{i}"), brief).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        limiter.hit("ip:new", brief).await.unwrap();
        assert_eq!(limiter.windows.lock().unwrap().len(), 1);
    }
}

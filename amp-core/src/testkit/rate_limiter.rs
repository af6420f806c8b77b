//! The [`RateLimiter`] kit.

use std::sync::Arc;
use std::time::Duration;

use super::unique;
use crate::traits::rate_limiter::{RateLimit, RateLimiter};

/// Checks every promise of [`RateLimiter`].
pub async fn run(limiter: Arc<dyn RateLimiter>) {
    let key = unique("rl");
    let limit = RateLimit { limit: 3, window: Duration::from_secs(60) };
    for expected_remaining in [2, 1, 0] {
        let d = limiter.hit(&key, limit).await.unwrap();
        assert!(d.allowed, "[rate_limiter] hits within the limit must be allowed");
        assert_eq!(d.remaining, expected_remaining, "[rate_limiter] remaining must count down");
        assert_eq!(d.retry_after, None, "[rate_limiter] an allowed hit has no retry_after");
    }
    let denied = limiter.hit(&key, limit).await.unwrap();
    assert!(!denied.allowed, "[rate_limiter] the hit past the limit must be denied");
    assert_eq!(denied.remaining, 0);
    let wait = denied.retry_after.expect("[rate_limiter] a denied hit must say when to retry");
    assert!(
        wait > Duration::ZERO && wait <= limit.window,
        "[rate_limiter] retry_after within the window: {wait:?}"
    );

    let other = unique("rl");
    assert!(limiter.hit(&other, limit).await.unwrap().allowed, "[rate_limiter] keys must be independent");

    limiter.reset(&key).await.unwrap();
    let after_reset = limiter.hit(&key, limit).await.unwrap();
    assert!(after_reset.allowed && after_reset.remaining == 2, "[rate_limiter] reset must clear the count");

    let short = RateLimit { limit: 1, window: Duration::from_millis(300) };
    let k = unique("rl");
    assert!(limiter.hit(&k, short).await.unwrap().allowed);
    assert!(!limiter.hit(&k, short).await.unwrap().allowed);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        limiter.hit(&k, short).await.unwrap().allowed,
        "[rate_limiter] a new window must start after the old one"
    );

    let contested = unique("rl");
    let many = RateLimit { limit: 10, window: Duration::from_secs(60) };
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (limiter, key) = (limiter.clone(), contested.clone());
        tasks.push(tokio::spawn(async move { limiter.hit(&key, many).await.unwrap().allowed }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 10, "[rate_limiter] exactly `limit` concurrent hits may be allowed");
}

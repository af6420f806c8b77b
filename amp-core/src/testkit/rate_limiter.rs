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

    // Budgets and gauges: amounts add up, give back, never go negative, and reset with
    // their window.
    let budget = unique("rl");
    let day = Duration::from_secs(86_400);
    assert_eq!(limiter.add(&budget, 0, day).await.unwrap().count, 0, "[rate_limiter] a new counter reads 0");
    assert_eq!(limiter.add(&budget, 700, day).await.unwrap().count, 700);
    let tally = limiter.add(&budget, 500, day).await.unwrap();
    assert_eq!(tally.count, 1_200, "[rate_limiter] amounts add up");
    assert!(tally.resets_in > Duration::ZERO && tally.resets_in <= day);
    assert_eq!(
        limiter.add(&budget, -200, day).await.unwrap().count,
        1_000,
        "[rate_limiter] amounts give back"
    );
    assert_eq!(limiter.add(&budget, -5_000, day).await.unwrap().count, 0, "[rate_limiter] never below zero");
    let gauge = unique("rl");
    let adds = (0..20).map(|_| {
        let (limiter, key) = (limiter.clone(), gauge.clone());
        tokio::spawn(async move { limiter.add(&key, 3, Duration::from_secs(60)).await.unwrap() })
    });
    for t in adds {
        t.await.unwrap();
    }
    assert_eq!(
        limiter.add(&gauge, 0, day).await.unwrap().count,
        60,
        "[rate_limiter] concurrent adds all count"
    );
    let brief = unique("rl");
    limiter.add(&brief, 5, Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        limiter.add(&brief, 1, Duration::from_millis(300)).await.unwrap().count,
        1,
        "[rate_limiter] a budget starts over with its window"
    );
}

//! [`RateLimiter`] on Redis.

use std::time::Duration;

use amp_core::traits::rate_limiter::Tally;
use amp_core::{RateDecision, RateLimit, RateLimiter, Result};
use async_trait::async_trait;
use redis::AsyncCommands;

use super::{RedisConnection, redis_error};

/// Counts and starts the window in one atomic step, so concurrent hits from many processes
/// are counted exactly. A key whose expiry was lost (e.g. a `PERSIST`) gets it back.
const HIT: &str = r#"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {count, ttl}
"#;

/// Adds an amount (possibly negative) in one atomic step, flooring at zero and keeping the
/// window's expiry.
const ADD: &str = r#"
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count < 0 then
    redis.call('SET', KEYS[1], 0, 'KEEPTTL')
    count = 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {count, ttl}
"#;

/// Fixed-window counters shared by every process using the same Redis.
#[derive(Clone)]
pub struct RedisRateLimiter {
    redis: RedisConnection,
    hit: redis::Script,
    add: redis::Script,
}

impl RedisRateLimiter {
    /// A limiter whose counters live under `<namespace>rl:`.
    pub fn new(redis: RedisConnection) -> Self {
        RedisRateLimiter { redis, hit: redis::Script::new(HIT), add: redis::Script::new(ADD) }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        let window_ms = u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX).max(1);
        let (count, ttl_ms): (u64, u64) = self
            .hit
            .key(self.redis.key(&["rl", key]))
            .arg(window_ms)
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(redis_error)?;
        let limit_n = u64::from(limit.limit);
        Ok(if count <= limit_n {
            RateDecision {
                allowed: true,
                remaining: u32::try_from(limit_n - count).unwrap_or(0),
                retry_after: None,
            }
        } else {
            RateDecision {
                allowed: false,
                remaining: 0,
                retry_after: Some(Duration::from_millis(ttl_ms.max(1))),
            }
        })
    }

    async fn add(&self, key: &str, amount: i64, window: Duration) -> Result<Tally> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let (count, ttl_ms): (u64, u64) = self
            .add
            .key(self.redis.key(&["rl", key]))
            .arg(window_ms)
            .arg(amount)
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(redis_error)?;
        Ok(Tally { count, resets_in: Duration::from_millis(ttl_ms.max(1)) })
    }

    async fn reset(&self, key: &str) -> Result<()> {
        let _: u64 = self.redis.conn().del(self.redis.key(&["rl", key])).await.map_err(redis_error)?;
        Ok(())
    }
}

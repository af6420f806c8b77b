//! [`Cache`] on Redis.

use std::time::Duration;

use amp_core::{Cache, Result};
use async_trait::async_trait;
use bytes::Bytes;
use redis::AsyncCommands;

use super::{RedisConnection, redis_error};

/// A [`Cache`] shared by every process using the same Redis. Eviction under memory pressure
/// is Redis's own (`maxmemory-policy`).
#[derive(Debug, Clone)]
pub struct RedisCache {
    redis: RedisConnection,
}

impl RedisCache {
    /// A cache whose keys live under `<namespace>cache:`.
    pub fn new(redis: RedisConnection) -> Self {
        RedisCache { redis }
    }

    fn key(&self, key: &str) -> String {
        self.redis.key(&["cache", key])
    }
}

/// Escapes the glob characters of a SCAN `MATCH` pattern so a prefix matches literally.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let value: Option<Vec<u8>> = self.redis.conn().get(self.key(key)).await.map_err(redis_error)?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value.as_ref());
        if let Some(ttl) = ttl {
            // Redis rejects PX 0; a zero TTL means "already expired", so store nothing.
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            if ms == 0 {
                self.delete(key).await?;
                return Ok(());
            }
            cmd.arg("PX").arg(ms);
        }
        cmd.query_async::<()>(&mut self.redis.conn()).await.map_err(redis_error)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let removed: u64 = self.redis.conn().del(self.key(key)).await.map_err(redis_error)?;
        Ok(removed > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let pattern = format!("{}*", glob_escape(&self.key(prefix)));
        let mut conn = self.redis.conn();
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            if !keys.is_empty() {
                let n: u64 =
                    redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await.map_err(redis_error)?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_characters_in_prefixes_match_literally() {
        assert_eq!(glob_escape("conv[1]*?\\x"), "conv\\[1\\]\\*\\?\\\\x");
    }
}

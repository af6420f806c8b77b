//! Backends on Redis, for several server processes sharing state: [`RedisCache`],
//! [`RedisEventBus`], [`RedisRateLimiter`] and [`RedisSessionStore`].
//!
//! Every key starts with a namespace (default `amp:`), so one Redis can serve several
//! deployments. Multi-step updates run as Lua scripts, which Redis executes atomically.
//!
//! ```no_run
//! # async fn run() -> amp_core::Result<()> {
//! use amp_providers::redis::{RedisCache, RedisConnection};
//! let redis = RedisConnection::open("redis://127.0.0.1:6379/", "amp:").await?;
//! let cache = RedisCache::new(redis.clone());
//! # Ok(()) }
//! ```

mod cache;
mod event_bus;
mod rate_limiter;
mod sessions;
mod subscriptions;

pub use cache::RedisCache;
pub use event_bus::RedisEventBus;
pub use rate_limiter::RedisRateLimiter;
pub use sessions::RedisSessionStore;

use amp_core::Error;
use redis::aio::ConnectionManager;

/// A shared, self-reconnecting Redis connection plus the key namespace.
#[derive(Clone)]
pub struct RedisConnection {
    client: redis::Client,
    manager: ConnectionManager,
    namespace: String,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password, so only the namespace is shown.
        f.debug_struct("RedisConnection").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Connects to `url` (`redis://[:password@]host:port/db`); keys get `namespace` in front.
    pub async fn open(url: &str, namespace: &str) -> amp_core::Result<Self> {
        // The error's Display may echo the URL and its password; its kind does not.
        let client = redis::Client::open(url)
            .map_err(|e| Error::invalid_input(format!("invalid Redis URL ({:?})", e.kind())))?;
        let manager = ConnectionManager::new(client.clone()).await.map_err(redis_error)?;
        Ok(RedisConnection { client, manager, namespace: namespace.to_owned() })
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut key = self.namespace.clone();
        key.push_str(&parts.join(":"));
        key
    }

    fn conn(&self) -> ConnectionManager {
        self.manager.clone()
    }
}

/// Connection trouble is `Unavailable` (retry later); anything else is `Internal`.
pub(crate) fn redis_error(err: redis::RedisError) -> Error {
    if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() || err.is_timeout() {
        tracing::warn!(kind = ?err.kind(), "redis unavailable");
        Error::Unavailable {
            message: "Redis is unavailable".into(),
            retry_after: Some(std::time::Duration::from_secs(1)),
        }
    } else {
        Error::internal("Redis command failed", err)
    }
}

//! A shared cache of bytes with expiry.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

/// A key-value cache.
///
/// Promises, checked by the conformance kit: `get` returns the last value `set` under a key
/// until its TTL passes, then nothing; `delete` and `delete_prefix` remove at once;
/// concurrent writers never corrupt a value (each `get` sees one whole write). A cache may
/// evict early under memory pressure, so callers treat a miss as normal.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value under `key`, if present and unexpired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Stores a value; `ttl` of `None` keeps it until evicted or deleted.
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()>;

    /// Removes a key; returns whether it was present.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Removes every key starting with `prefix` (e.g. all cached answers of a
    /// conversation); returns how many were removed.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;
}

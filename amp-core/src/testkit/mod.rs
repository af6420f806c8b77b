//! Conformance kits: one generic async suite per trait that any backend runs with one call.
//!
//! Each kit checks what its trait's documentation promises and panics, naming the promise,
//! when a backend breaks one. Kits scope everything they write to fresh ids, keys and
//! topics, so they can run concurrently against one shared server (a PostgreSQL database,
//! a Redis instance) and never depend on, or disturb, what other tests stored.
//!
//! ```text
//! #[tokio::test]
//! async fn memory_cache_keeps_the_cache_promises() {
//!     amp_core::testkit::cache::run(Arc::new(MemoryCache::new(&CacheConfig::default()))).await;
//! }
//! ```
//!
//! Kits for backends that promise durability also come as `…_persists(open)`, where `open`
//! opens the *same* underlying storage each time it is called.

pub mod blob_store;
pub mod cache;
pub mod event_bus;
pub mod job_queue;
pub mod keyword_index;
pub mod rate_limiter;
pub mod stores;
pub mod vector_index;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// Opens a backend instance; kits that check persistence call it more than once and expect
/// every call to reach the same storage.
pub type Open<T> = Box<dyn Fn() -> BoxFuture<'static, Arc<T>> + Send + Sync>;

/// A name no other kit run uses, for keys, topics, kinds and emails.
pub fn unique(what: &str) -> String {
    format!("kit-{what}-{}", uuid::Uuid::new_v4().simple())
}

/// Waits for `fut`, panicking with `what` if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within {limit:?}"),
    }
}

/// The current time truncated to whole milliseconds, which every backend stores exactly.
pub fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

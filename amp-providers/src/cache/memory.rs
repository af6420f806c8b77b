//! An in-process cache: least-recently-used eviction within an entry and a byte budget,
//! with a TTL per entry.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use amp_core::config::CacheConfig;
use amp_core::{Cache, Result};
use async_trait::async_trait;
use bytes::Bytes;
use lru::LruCache;

/// The in-process [`Cache`]. Cheap to share behind an `Arc`; all methods take a short lock.
///
/// Bounded twice: by entry count and by the bytes of keys plus values. When either is
/// exceeded, least recently used entries go first. A value larger than the whole byte
/// budget is not stored (a later `get` misses, which callers treat as normal).
///
/// ```
/// # tokio_test_block_on(async {
/// use amp_core::{Cache, config::CacheConfig};
/// use amp_providers::MemoryCache;
/// let cache = MemoryCache::new(&CacheConfig::default());
/// cache.set("answer:42", "cached".into(), None).await?;
/// assert_eq!(cache.get("answer:42").await?.as_deref(), Some(&b"cached"[..]));
/// # Ok::<(), amp_core::Error>(()) });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) }
/// ```
pub struct MemoryCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

struct Inner {
    entries: LruCache<String, Entry>,
    bytes: usize,
}

struct Entry {
    value: Bytes,
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

fn cost(key: &str, value: &Bytes) -> usize {
    key.len() + value.len()
}

impl MemoryCache {
    /// A cache with the configured bounds.
    pub fn new(config: &CacheConfig) -> Self {
        let cap = NonZeroUsize::new(config.max_entries).unwrap_or(NonZeroUsize::MIN);
        MemoryCache {
            inner: Mutex::new(Inner { entries: LruCache::new(cap), bytes: 0 }),
            max_bytes: config.max_bytes,
        }
    }

    /// Entries held now (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of keys plus values held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated in a way that
        // matters for a cache (worst case: a stale byte count), so keep serving.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.pop(key)?;
        self.bytes -= cost(key, &entry.value);
        Some(entry)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.entries.get(key) {
            Some(entry) if !entry.is_expired(now) => Ok(Some(entry.value.clone())),
            Some(_) => {
                inner.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let mut inner = self.lock();
        inner.remove(key);
        let size = cost(key, &value);
        if size > self.max_bytes {
            return Ok(());
        }
        while inner.bytes + size > self.max_bytes {
            match inner.entries.pop_lru() {
                Some((k, e)) => inner.bytes -= cost(&k, &e.value),
                None => break,
            }
        }
        let expires_at = ttl.map(|ttl| Instant::now() + ttl);
        if let Some((k, e)) = inner.entries.push(key.to_owned(), Entry { value, expires_at }) {
            // `push` returns the least recently used entry when the entry cap is reached.
            inner.bytes -= cost(&k, &e.value);
        }
        inner.bytes += size;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut inner = self.lock();
        let now = Instant::now();
        Ok(inner.remove(key).is_some_and(|e| !e.is_expired(now)))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let mut inner = self.lock();
        let now = Instant::now();
        let keys: Vec<String> =
            inner.entries.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, _)| k.clone()).collect();
        let mut removed = 0;
        for key in keys {
            if inner.remove(&key).is_some_and(|e| !e.is_expired(now)) {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max_entries: usize, max_bytes: usize) -> MemoryCache {
        MemoryCache::new(&CacheConfig { max_entries, max_bytes })
    }

    #[tokio::test]
    async fn entry_cap_evicts_least_recently_used() {
        let c = cache(2, 1 << 20);
        c.set("a", Bytes::from_static(b"1"), None).await.unwrap();
        c.set("b", Bytes::from_static(b"2"), None).await.unwrap();
        c.get("a").await.unwrap(); // `b` is now least recently used
        c.set("c", Bytes::from_static(b"3"), None).await.unwrap();
        assert!(c.get("b").await.unwrap().is_none());
        assert!(c.get("a").await.unwrap().is_some());
        assert!(c.get("c").await.unwrap().is_some());
        assert_eq!(c.len(), 2);
    }

    #[tokio::test]
    async fn byte_budget_is_never_exceeded() {
        let c = cache(1000, 100);
        for i in 0..50 {
            c.set(&format!("k{i:02}"), Bytes::from(vec![b'x'; 17]), None).await.unwrap();
            assert!(c.bytes() <= 100, "{} bytes held", c.bytes());
        }
        assert_eq!(c.bytes(), 5 * 20); // five 3-byte keys with 17-byte values
        assert!(c.get("k49").await.unwrap().is_some());
        assert!(c.get("k00").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn value_larger_than_the_budget_is_not_stored_and_replaces_nothing_stale() {
        let c = cache(10, 64);
        c.set("big", Bytes::from_static(b"small"), None).await.unwrap();
        c.set("big", Bytes::from(vec![0; 100]), None).await.unwrap();
        assert!(c.get("big").await.unwrap().is_none(), "the stale small value must not survive");
        assert_eq!(c.bytes(), 0);
    }

    #[tokio::test]
    async fn byte_count_follows_overwrites_and_deletes() {
        let c = cache(10, 1000);
        c.set("k", Bytes::from(vec![0; 10]), None).await.unwrap();
        c.set("k", Bytes::from(vec![0; 20]), None).await.unwrap();
        assert_eq!(c.bytes(), 21);
        assert!(c.delete("k").await.unwrap());
        assert_eq!(c.bytes(), 0);
        assert!(c.is_empty());
    }
}

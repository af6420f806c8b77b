//! The in-process backends run their traits' conformance kits, and the kits are shown to
//! catch backends that break a promise.

use std::sync::Arc;
use std::time::Duration;

use amp_core::config::{CacheConfig, EventBusConfig};
use amp_core::testkit;
use amp_core::{Cache, EventBus, EventId, EventStream, Result};
use amp_providers::{MemoryCache, MemoryEventBus};
use async_trait::async_trait;
use bytes::Bytes;

const WINDOW: usize = 64;

fn bus() -> MemoryEventBus {
    MemoryEventBus::new(&EventBusConfig {
        replay_window: WINDOW,
        subscriber_buffer: 512,
        ..EventBusConfig::default()
    })
}

#[tokio::test]
async fn memory_cache_keeps_every_cache_promise() {
    testkit::cache::run(Arc::new(MemoryCache::new(&CacheConfig::default()))).await;
}

#[tokio::test]
async fn memory_rate_limiter_keeps_every_rate_limiter_promise() {
    testkit::rate_limiter::run(Arc::new(amp_providers::MemoryRateLimiter::new())).await;
}

#[tokio::test]
async fn memory_event_bus_keeps_every_event_bus_promise() {
    testkit::event_bus::run(Arc::new(bus()), WINDOW).await;
}

/// Runs a kit on its own task and returns its panic message, if it panicked.
async fn kit_failure(kit: impl std::future::Future<Output = ()> + Send + 'static) -> Option<String> {
    let err = tokio::spawn(kit).await.err()?;
    let payload = err.into_panic();
    Some(
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    )
}

/// A cache that silently drops every TTL: values never expire.
struct ImmortalCache(MemoryCache);

#[async_trait]
impl Cache for ImmortalCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, _ttl: Option<Duration>) -> Result<()> {
        self.0.set(key, value, None).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.0.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.0.delete_prefix(prefix).await
    }
}

#[tokio::test]
async fn cache_kit_catches_a_cache_that_ignores_ttl() {
    let broken = Arc::new(ImmortalCache(MemoryCache::new(&CacheConfig::default())));
    let failure =
        kit_failure(testkit::cache::run(broken)).await.expect("the kit must fail a cache that ignores TTLs");
    assert!(failure.contains("must be gone after its TTL"), "unexpected failure: {failure}");
}

/// An event bus that forgets to replay: a reconnecting device silently loses events.
struct NoReplayBus(MemoryEventBus);

#[async_trait]
impl EventBus for NoReplayBus {
    async fn publish(&self, topic: &str, payload: serde_json::Value) -> Result<EventId> {
        self.0.publish(topic, payload).await
    }
    async fn subscribe(&self, topic: &str, _after: Option<EventId>) -> Result<EventStream> {
        self.0.subscribe(topic, None).await
    }
}

#[tokio::test]
async fn event_bus_kit_catches_a_bus_that_skips_replay() {
    let failure = kit_failure(testkit::event_bus::run(Arc::new(NoReplayBus(bus())), WINDOW))
        .await
        .expect("the kit must fail a bus that does not replay");
    assert!(failure.contains("[event_bus]") && failure.contains("replay"), "unexpected failure: {failure}");
}

/// A cache whose `delete_prefix` matches substrings instead of prefixes.
struct SubstringCache(MemoryCache);

#[async_trait]
impl Cache for SubstringCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.0.set(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.0.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        // Drops the trailing separator, so `conv1:` also removes `conv10:…`.
        self.0.delete_prefix(prefix.trim_end_matches(':')).await
    }
}

#[tokio::test]
async fn cache_kit_catches_an_overreaching_prefix_delete() {
    let broken = Arc::new(SubstringCache(MemoryCache::new(&CacheConfig::default())));
    let failure =
        kit_failure(testkit::cache::run(broken)).await.expect("the kit must fail an overreaching delete");
    assert!(failure.contains("delete_prefix"), "unexpected failure: {failure}");
}

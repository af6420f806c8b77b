//! The Redis backends pass the same kits as the in-process ones, against the redis-server
//! `scripts/test.sh` starts and names in `AMP_TEST_REDIS_URL`.

use std::sync::Arc;

use amp_core::testkit;
use amp_providers::redis::{RedisCache, RedisConnection, RedisEventBus, RedisRateLimiter, RedisSessionStore};
use amp_providers::sql::{PoolOptions, SqliteStores};

const WINDOW: usize = 64;

async fn redis() -> RedisConnection {
    let url = std::env::var("AMP_TEST_REDIS_URL")
        .expect("AMP_TEST_REDIS_URL is not set: run the tests with scripts/test.sh, which starts Redis");
    RedisConnection::open(&url, "amp-test:").await.unwrap()
}

#[tokio::test]
async fn redis_cache_keeps_every_cache_promise() {
    testkit::cache::run(Arc::new(RedisCache::new(redis().await))).await;
}

#[tokio::test]
async fn redis_event_bus_keeps_every_event_bus_promise() {
    testkit::event_bus::run(Arc::new(RedisEventBus::new(redis().await, WINDOW)), WINDOW).await;
}

#[tokio::test]
async fn redis_event_bus_delivers_across_connections_like_separate_processes() {
    use futures::StreamExt;
    let (a, b) = (RedisEventBus::new(redis().await, WINDOW), RedisEventBus::new(redis().await, WINDOW));
    let topic = testkit::unique("topic");
    let mut on_b = amp_core::EventBus::subscribe(&b, &topic, None).await.unwrap();
    let id = amp_core::EventBus::publish(&a, &topic, serde_json::json!({"from": "a"})).await.unwrap();
    let ev = on_b.next().await.unwrap().unwrap();
    assert_eq!((ev.id, ev.payload), (id, serde_json::json!({"from": "a"})));
}

#[tokio::test]
async fn redis_rate_limiter_keeps_every_rate_limiter_promise() {
    testkit::rate_limiter::run(Arc::new(RedisRateLimiter::new(redis().await))).await;
}

#[tokio::test]
async fn redis_session_store_keeps_every_session_store_promise() {
    // Users live in SQL; sessions and tokens in Redis — the bundle mixes backends freely.
    let dir = tempfile::tempdir().unwrap();
    let sql =
        Arc::new(SqliteStores::open(&dir.path().join("amp.db"), &PoolOptions::default()).await.unwrap());
    let mut stores = sql.stores();
    stores.sessions = Arc::new(RedisSessionStore::new(redis().await));
    testkit::stores::sessions(&stores).await;
}

#[tokio::test]
async fn a_wrong_redis_address_is_unavailable_not_a_panic() {
    let err = RedisConnection::open("redis://127.0.0.1:1/", "amp-test:").await.unwrap_err();
    assert_eq!(err.kind(), amp_core::ErrorKind::Unavailable, "{err}");
}

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
async fn subscribers_share_one_connection_and_a_slow_one_is_cut_off_alone() {
    use futures::StreamExt;
    let bus = RedisEventBus::new(redis().await, WINDOW).with_subscriber_buffer(4);
    let topic = testkit::unique("topic");
    let mut fast = amp_core::EventBus::subscribe(&bus, &topic, None).await.unwrap();
    let mut slow = amp_core::EventBus::subscribe(&bus, &topic, None).await.unwrap();
    let _other_topic = amp_core::EventBus::subscribe(&bus, &testkit::unique("topic"), None).await.unwrap();

    // Redis sees one subscriber on the channel however many this process has.
    let mut conn = redis::Client::open(std::env::var("AMP_TEST_REDIS_URL").unwrap())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("amp-test:ev:{topic}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(counts[0].1, 1, "{counts:?}");

    // `slow` reads nothing while ten events go out: its queue of four overflows.
    for i in 0..10 {
        amp_core::EventBus::publish(&bus, &topic, serde_json::json!({"n": i})).await.unwrap();
        let ev = fast.next().await.unwrap().unwrap();
        assert_eq!(ev.payload["n"], i);
    }
    let mut kept = 0;
    let end = loop {
        match slow.next().await.unwrap() {
            Ok(_) => kept += 1,
            Err(err) => break err,
        }
    };
    assert_eq!(end.kind(), amp_core::ErrorKind::Conflict, "{end}");
    assert!(kept <= 4, "{kept}");
    // The fast subscriber carries on.
    amp_core::EventBus::publish(&bus, &topic, serde_json::json!({"n": 10})).await.unwrap();
    assert_eq!(fast.next().await.unwrap().unwrap().payload["n"], 10);
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

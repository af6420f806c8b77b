//! The [`EventBus`] kit.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use super::{unique, within};
use crate::error::ErrorKind;
use crate::traits::event_bus::{Event, EventBus, EventId, EventStream};

const WAIT: Duration = Duration::from_secs(5);

async fn next(stream: &mut EventStream, what: &str) -> Event {
    match within(WAIT, what, stream.next()).await {
        Some(Ok(event)) => event,
        Some(Err(err)) => panic!("{what}: the stream failed: {err}"),
        None => panic!("{what}: the stream ended"),
    }
}

/// Checks every promise of [`EventBus`]. `replay_window` is the number of events the
/// backend retains per topic, as configured for this instance.
pub async fn run(bus: Arc<dyn EventBus>, replay_window: usize) {
    delivery_in_order(&*bus).await;
    topics_are_isolated(&*bus).await;
    replay_then_live(&*bus).await;
    resume_during_concurrent_publishing(bus.clone()).await;
    concurrent_publishers(bus.clone()).await;
    replay_window_overflow(&*bus, replay_window).await;
}

async fn delivery_in_order(bus: &dyn EventBus) {
    let topic = unique("topic");
    let mut sub = bus.subscribe(&topic, None).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(bus.publish(&topic, json!({ "n": i })).await.unwrap());
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "[event_bus] ids must increase in publication order: {ids:?}"
    );
    for (i, id) in ids.iter().enumerate() {
        let ev =
            next(&mut sub, "[event_bus] a subscriber must receive what is published after it subscribed")
                .await;
        assert_eq!(ev.id, *id, "[event_bus] events must arrive in id order");
        assert_eq!(ev.topic, topic);
        assert_eq!(ev.payload, json!({ "n": i }), "[event_bus] payloads must arrive intact");
    }

    let mut fresh = bus.subscribe(&topic, None).await.unwrap();
    let live = bus.publish(&topic, json!("live")).await.unwrap();
    let ev = next(&mut fresh, "[event_bus] subscribing with no id must deliver live events").await;
    assert_eq!(ev.id, live, "[event_bus] subscribing with no id must not replay old events");
}

async fn topics_are_isolated(bus: &dyn EventBus) {
    let (a, b) = (unique("topic-a"), unique("topic-b"));
    let mut sub = bus.subscribe(&a, None).await.unwrap();
    bus.publish(&b, json!("other")).await.unwrap();
    let mine = bus.publish(&a, json!("mine")).await.unwrap();
    let ev = next(&mut sub, "[event_bus] topic isolation").await;
    assert_eq!(
        (ev.id, ev.payload),
        (mine, json!("mine")),
        "[event_bus] a subscriber must see only its topic"
    );
}

async fn replay_then_live(bus: &dyn EventBus) {
    let topic = unique("topic");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(bus.publish(&topic, json!(i)).await.unwrap());
    }
    let mut sub = bus.subscribe(&topic, Some(ids[1])).await.unwrap();
    for want in &ids[2..] {
        let ev =
            next(&mut sub, "[event_bus] subscribing after an id must replay later retained events").await;
        assert_eq!(ev.id, *want, "[event_bus] replay must continue right after the given id, in order");
    }
    let live = bus.publish(&topic, json!("live")).await.unwrap();
    assert_eq!(next(&mut sub, "[event_bus] live events must follow the replay").await.id, live);

    let mut caught_up = bus.subscribe(&topic, Some(live)).await.unwrap();
    let later = bus.publish(&topic, json!("later")).await.unwrap();
    assert_eq!(
        next(&mut caught_up, "[event_bus] resuming from the latest id").await.id,
        later,
        "[event_bus] resuming from the latest id must replay nothing"
    );
}

async fn resume_during_concurrent_publishing(bus: Arc<dyn EventBus>) {
    let topic = unique("topic");
    let first = bus.publish(&topic, json!(0)).await.unwrap();
    let publisher = {
        let (bus, topic) = (bus.clone(), topic.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 1..=200 {
                ids.push(bus.publish(&topic, json!(i)).await.unwrap());
                if i % 20 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            ids
        })
    };
    tokio::task::yield_now().await;
    let mut sub = bus.subscribe(&topic, Some(first)).await.unwrap();
    let published = publisher.await.unwrap();
    let last = *published.last().unwrap();
    let mut seen = Vec::new();
    while seen.last() != Some(&last) {
        seen.push(next(&mut sub, "[event_bus] resume while publishing").await.id);
    }
    assert_eq!(
        seen, published,
        "[event_bus] the hand-over from replay to live must neither drop nor repeat an event"
    );
}

async fn concurrent_publishers(bus: Arc<dyn EventBus>) {
    let topic = unique("topic");
    let mut sub = bus.subscribe(&topic, None).await.unwrap();
    let mut tasks = Vec::new();
    for p in 0..8 {
        let (bus, topic) = (bus.clone(), topic.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                ids.push(bus.publish(&topic, json!([p, i])).await.unwrap());
            }
            ids
        }));
    }
    let mut all: BTreeSet<EventId> = BTreeSet::new();
    for t in tasks {
        let ids = t.await.unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "[event_bus] one publisher's ids must increase");
        all.extend(ids);
    }
    assert_eq!(all.len(), 200, "[event_bus] concurrent publishers must never get the same id");
    let mut received = Vec::new();
    for _ in 0..200 {
        received.push(next(&mut sub, "[event_bus] concurrent publishers").await.id);
    }
    assert!(received.windows(2).all(|w| w[0] < w[1]), "[event_bus] delivery must be in id order");
    assert_eq!(
        received.into_iter().collect::<BTreeSet<_>>(),
        all,
        "[event_bus] every event must arrive once"
    );
}

async fn replay_window_overflow(bus: &dyn EventBus, replay_window: usize) {
    let topic = unique("topic");
    let first = bus.publish(&topic, json!("first")).await.unwrap();
    for i in 0..replay_window + 5 {
        bus.publish(&topic, json!(i)).await.unwrap();
    }
    match bus.subscribe(&topic, Some(first)).await {
        Err(err) => assert_eq!(
            err.kind(),
            ErrorKind::Conflict,
            "[event_bus] resuming from before the replay window must be Conflict"
        ),
        Ok(_) => {
            panic!("[event_bus] resuming from before the replay window must fail, not skip events silently")
        }
    }
}

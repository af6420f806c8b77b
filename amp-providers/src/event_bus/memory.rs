//! An in-process event bus: ordered ids per topic, a bounded replay window, and bounded
//! subscribers that are cut off (not waited for) when they fall behind.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use amp_core::config::EventBusConfig;
use amp_core::{Error, Event, EventBus, EventId, EventStream, Result};
use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::mpsc;

/// The in-process [`EventBus`] for one server process.
///
/// Each topic keeps its last `replay_window` events, so a device that reconnects with
/// `Last-Event-ID` catches up without loss. Each subscriber has a buffer of
/// `subscriber_buffer` events; publishing never waits for a slow subscriber: one whose
/// buffer is full is cut off, and its stream ends with `Conflict` so it resubscribes from
/// the last id it saw (and is replayed from the window).
pub struct MemoryEventBus {
    topics: Mutex<HashMap<String, Topic>>,
    replay_window: usize,
    subscriber_buffer: usize,
}

struct Topic {
    last_id: EventId,
    retained: VecDeque<Event>,
    subscribers: Vec<Subscriber>,
}

struct Subscriber {
    tx: mpsc::Sender<Event>,
    lagged: Arc<AtomicBool>,
}

impl MemoryEventBus {
    /// A bus with the configured bounds.
    pub fn new(config: &EventBusConfig) -> Self {
        MemoryEventBus {
            topics: Mutex::new(HashMap::new()),
            replay_window: config.replay_window.max(1),
            subscriber_buffer: config.subscriber_buffer.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        // Every mutation below completes without panicking paths in between, so a poisoned
        // lock still guards consistent data.
        self.topics.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, topic: &str, payload: serde_json::Value) -> Result<EventId> {
        let mut topics = self.lock();
        let entry = topics.entry(topic.to_owned()).or_insert_with(|| Topic {
            last_id: 0,
            retained: VecDeque::new(),
            subscribers: Vec::new(),
        });
        entry.last_id += 1;
        let event = Event { id: entry.last_id, topic: topic.to_owned(), payload, published_at: Utc::now() };
        if entry.retained.len() == self.replay_window {
            entry.retained.pop_front();
        }
        entry.retained.push_back(event.clone());
        entry.subscribers.retain(|sub| match sub.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                sub.lagged.store(true, Ordering::Release);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        Ok(event.id)
    }

    async fn subscribe(&self, topic: &str, after: Option<EventId>) -> Result<EventStream> {
        let mut topics = self.lock();
        let entry = topics.entry(topic.to_owned()).or_insert_with(|| Topic {
            last_id: 0,
            retained: VecDeque::new(),
            subscribers: Vec::new(),
        });
        let replay: Vec<Event> = match after {
            None => Vec::new(),
            Some(after) => {
                let oldest_retained = entry.retained.front().map_or(entry.last_id + 1, |e| e.id);
                if after < entry.last_id && after + 1 < oldest_retained {
                    return Err(Error::conflict(format!(
                        "event {after} of {topic} is older than the replay window; resynchronize in full"
                    )));
                }
                entry.retained.iter().filter(|e| e.id > after).cloned().collect()
            }
        };
        // Registering the live subscriber under the same lock as the replay snapshot is what
        // makes the hand-over exact: no event is missed or delivered twice.
        let (tx, rx) = mpsc::channel(self.subscriber_buffer);
        let lagged = Arc::new(AtomicBool::new(false));
        entry.subscribers.push(Subscriber { tx, lagged: lagged.clone() });
        drop(topics);

        let topic = topic.to_owned();
        let live =
            futures::stream::unfold((rx, lagged, topic, false), |(mut rx, lagged, topic, done)| async move {
                if done {
                    return None;
                }
                match rx.recv().await {
                    Some(event) => Some((Ok(event), (rx, lagged, topic, false))),
                    None if lagged.load(Ordering::Acquire) => {
                        let err = Error::conflict(format!(
                            "subscriber to {topic} fell behind; resubscribe from the last event id seen"
                        ));
                        Some((Err(err), (rx, lagged, topic, true)))
                    }
                    None => None,
                }
            });
        Ok(futures::stream::iter(replay.into_iter().map(Ok)).chain(live).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_subscriber_is_cut_off_with_conflict_and_can_resume_without_loss() {
        let bus = MemoryEventBus::new(&EventBusConfig { replay_window: 100, subscriber_buffer: 2 });
        let mut slow = bus.subscribe("t", None).await.unwrap();
        for i in 0..5 {
            bus.publish("t", serde_json::json!(i)).await.unwrap();
        }
        let mut seen = Vec::new();
        let err = loop {
            match slow.next().await.expect("stream ends with an error, not silently") {
                Ok(ev) => seen.push(ev.id),
                Err(err) => break err,
            }
        };
        assert_eq!(err.kind(), amp_core::ErrorKind::Conflict);
        assert_eq!(seen, vec![1, 2]);
        let mut resumed = bus.subscribe("t", seen.last().copied()).await.unwrap();
        for want in 3..=5 {
            assert_eq!(resumed.next().await.unwrap().unwrap().id, want);
        }
    }

    #[tokio::test]
    async fn dropped_subscribers_are_forgotten() {
        let bus = MemoryEventBus::new(&EventBusConfig::default());
        let sub = bus.subscribe("t", None).await.unwrap();
        drop(sub);
        bus.publish("t", serde_json::json!(1)).await.unwrap();
        assert!(bus.lock()["t"].subscribers.is_empty());
    }

    #[tokio::test]
    async fn retention_is_bounded_by_the_replay_window() {
        let bus = MemoryEventBus::new(&EventBusConfig { replay_window: 3, subscriber_buffer: 8 });
        for i in 0..10 {
            bus.publish("t", serde_json::json!(i)).await.unwrap();
        }
        let ids: Vec<_> = bus.lock()["t"].retained.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![8, 9, 10]);
    }
}

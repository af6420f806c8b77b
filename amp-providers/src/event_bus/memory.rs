//! An in-process event bus: ordered ids per topic, a bounded replay window, and bounded
//! subscribers that are cut off (not waited for) when they fall behind.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
///
/// Memory is bounded whatever publishers send: an event is held once and shared by every
/// buffer that holds it; a topic retains at most `max_topic_bytes` of payload (oldest
/// events go first; an event larger than that is refused), all topics together at most
/// `max_total_bytes` (the retention of the topics published to longest ago goes first);
/// a topic has at most `max_subscribers_per_topic` subscribers; and a topic nobody follows
/// or publishes to for `idle_topic_secs` is forgotten. Ids start from the clock when a topic
/// is (re)created, so they keep increasing across evictions and restarts, and a device
/// resuming from an id older than the topic's retention is told to resynchronize.
pub struct MemoryEventBus {
    state: Mutex<State>,
    replay_window: usize,
    subscriber_buffer: usize,
    max_topic_bytes: usize,
    max_total_bytes: usize,
    max_subscribers: usize,
    idle: Duration,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
    total_bytes: usize,
    /// Publishes since the last sweep of idle topics.
    since_sweep: usize,
}

struct Topic {
    last_id: EventId,
    retained: VecDeque<Retained>,
    bytes: usize,
    subscribers: Vec<Subscriber>,
    touched: Instant,
}

struct Retained {
    event: Arc<Event>,
    bytes: usize,
}

struct Subscriber {
    tx: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicBool>,
}

/// Idle topics are looked for once per this many publishes.
const SWEEP_EVERY: usize = 1024;

impl Topic {
    fn new() -> Self {
        // Microseconds since the epoch: larger than any id the topic had before it was
        // forgotten (or before a restart), unless it published a million events a second.
        let start = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
        Topic {
            last_id: start,
            retained: VecDeque::new(),
            bytes: 0,
            subscribers: Vec::new(),
            touched: Instant::now(),
        }
    }

    fn pop_oldest(&mut self) -> usize {
        match self.retained.pop_front() {
            Some(r) => {
                self.bytes -= r.bytes;
                r.bytes
            }
            None => 0,
        }
    }
}

impl MemoryEventBus {
    /// A bus with the configured bounds.
    pub fn new(config: &EventBusConfig) -> Self {
        MemoryEventBus {
            state: Mutex::new(State::default()),
            replay_window: config.replay_window.max(1),
            subscriber_buffer: config.subscriber_buffer.max(1),
            max_topic_bytes: config.max_topic_bytes.max(1),
            max_total_bytes: config.max_total_bytes.max(1),
            max_subscribers: config.max_subscribers_per_topic.max(1),
            idle: Duration::from_secs(config.idle_topic_secs),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every mutation below completes without panicking paths in between, so a poisoned
        // lock still guards consistent data.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes retained by all topics.
    pub fn retained_bytes(&self) -> usize {
        self.lock().total_bytes
    }

    /// Topics held.
    pub fn topics(&self) -> usize {
        self.lock().topics.len()
    }
}

impl State {
    /// Drops the retention of the topics published to longest ago until the total fits.
    fn shed(&mut self, max_total: usize, keep: &str) {
        if self.total_bytes <= max_total {
            return;
        }
        let mut by_age: Vec<(Instant, String)> = self
            .topics
            .iter()
            .filter(|(name, _)| name.as_str() != keep)
            .map(|(n, t)| (t.touched, n.clone()))
            .collect();
        by_age.sort();
        for (_, name) in by_age {
            let Some(topic) = self.topics.get_mut(&name) else { continue };
            while self.total_bytes > max_total && !topic.retained.is_empty() {
                self.total_bytes -= topic.pop_oldest();
            }
            if self.total_bytes <= max_total {
                return;
            }
        }
        // Only the topic just published to is left over the limit.
        if let Some(topic) = self.topics.get_mut(keep) {
            while self.total_bytes > max_total && topic.retained.len() > 1 {
                self.total_bytes -= topic.pop_oldest();
            }
        }
    }

    /// Forgets topics nobody follows that have been quiet for `idle`.
    fn sweep(&mut self, idle: Duration) {
        let now = Instant::now();
        let mut freed = 0;
        self.topics.retain(|_, t| {
            t.subscribers.retain(|s| !s.tx.is_closed());
            let keep = !t.subscribers.is_empty() || now.duration_since(t.touched) < idle;
            if !keep {
                freed += t.bytes;
            }
            keep
        });
        self.total_bytes -= freed;
        self.since_sweep = 0;
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, topic: &str, payload: serde_json::Value) -> Result<EventId> {
        let bytes = serde_json::to_vec(&payload).map(|v| v.len()).unwrap_or(0) + topic.len();
        if bytes > self.max_topic_bytes {
            return Err(Error::PayloadTooLarge { limit: self.max_topic_bytes as u64, actual: bytes as u64 });
        }
        let mut state = self.lock();
        state.since_sweep += 1;
        if state.since_sweep >= SWEEP_EVERY {
            state.sweep(self.idle);
        }
        let entry = state.topics.entry(topic.to_owned()).or_insert_with(Topic::new);
        entry.last_id += 1;
        entry.touched = Instant::now();
        let event =
            Arc::new(Event { id: entry.last_id, topic: topic.to_owned(), payload, published_at: Utc::now() });
        let mut freed = 0;
        while entry.retained.len() >= self.replay_window || entry.bytes + bytes > self.max_topic_bytes {
            if entry.retained.is_empty() {
                break;
            }
            freed += entry.pop_oldest();
        }
        entry.retained.push_back(Retained { event: event.clone(), bytes });
        entry.bytes += bytes;
        entry.subscribers.retain(|sub| match sub.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                sub.lagged.store(true, Ordering::Release);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        state.total_bytes = state.total_bytes + bytes - freed;
        state.shed(self.max_total_bytes, topic);
        Ok(event.id)
    }

    async fn subscribe(&self, topic: &str, after: Option<EventId>) -> Result<EventStream> {
        let mut state = self.lock();
        let entry = state.topics.entry(topic.to_owned()).or_insert_with(Topic::new);
        entry.subscribers.retain(|s| !s.tx.is_closed());
        if entry.subscribers.len() >= self.max_subscribers {
            return Err(Error::RateLimited {
                message: format!("at most {} streams may follow one topic at once", self.max_subscribers),
                retry_after: None,
            });
        }
        entry.touched = Instant::now();
        let replay: Vec<Arc<Event>> = match after {
            None => Vec::new(),
            Some(after) => {
                let oldest_retained = entry.retained.front().map_or(entry.last_id + 1, |r| r.event.id);
                if after < entry.last_id && after + 1 < oldest_retained {
                    return Err(Error::conflict(format!(
                        "event {after} of {topic} is older than the replay window; resynchronize in full"
                    )));
                }
                entry.retained.iter().filter(|r| r.event.id > after).map(|r| r.event.clone()).collect()
            }
        };
        // Registering the live subscriber under the same lock as the replay snapshot is what
        // makes the hand-over exact: no event is missed or delivered twice.
        let (tx, rx) = mpsc::channel(self.subscriber_buffer);
        let lagged = Arc::new(AtomicBool::new(false));
        entry.subscribers.push(Subscriber { tx, lagged: lagged.clone() });
        drop(state);

        let topic = topic.to_owned();
        let live =
            futures::stream::unfold((rx, lagged, topic, false), |(mut rx, lagged, topic, done)| async move {
                if done {
                    return None;
                }
                match rx.recv().await {
                    Some(event) => Some((Ok(Arc::unwrap_or_clone(event)), (rx, lagged, topic, false))),
                    None if lagged.load(Ordering::Acquire) => {
                        let err = Error::conflict(format!(
                            "subscriber to {topic} fell behind; resubscribe from the last event id seen"
                        ));
                        Some((Err(err), (rx, lagged, topic, true)))
                    }
                    None => None,
                }
            });
        Ok(futures::stream::iter(replay.into_iter().map(|e| Ok(Arc::unwrap_or_clone(e)))).chain(live).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_subscriber_is_cut_off_with_conflict_and_can_resume_without_loss() {
        let bus = MemoryEventBus::new(&EventBusConfig {
            replay_window: 100,
            subscriber_buffer: 2,
            ..Default::default()
        });
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
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1], seen[0] + 1);
        let mut resumed = bus.subscribe("t", seen.last().copied()).await.unwrap();
        for want in 1..=3 {
            assert_eq!(resumed.next().await.unwrap().unwrap().id, seen[1] + want);
        }
    }

    #[tokio::test]
    async fn dropped_subscribers_are_forgotten() {
        let bus = MemoryEventBus::new(&EventBusConfig::default());
        let sub = bus.subscribe("t", None).await.unwrap();
        drop(sub);
        bus.publish("t", serde_json::json!(1)).await.unwrap();
        assert!(bus.lock().topics["t"].subscribers.is_empty());
    }

    #[tokio::test]
    async fn retention_is_bounded_by_the_replay_window() {
        let bus = MemoryEventBus::new(&EventBusConfig {
            replay_window: 3,
            subscriber_buffer: 8,
            ..Default::default()
        });
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(bus.publish("t", serde_json::json!(i)).await.unwrap());
        }
        let kept: Vec<_> = bus.lock().topics["t"].retained.iter().map(|r| r.event.id).collect();
        assert_eq!(kept, ids[7..]);
    }

    fn bounded(topic_bytes: usize, total_bytes: usize) -> MemoryEventBus {
        MemoryEventBus::new(&EventBusConfig {
            max_topic_bytes: topic_bytes,
            max_total_bytes: total_bytes,
            ..EventBusConfig::default()
        })
    }

    #[tokio::test]
    async fn a_topic_retains_at_most_its_byte_budget_and_refuses_a_bigger_event() {
        let bus = bounded(10_000, 1_000_000);
        let chunk = "x".repeat(1_000);
        for _ in 0..100 {
            bus.publish("user:a", serde_json::json!({ "s": chunk })).await.unwrap();
        }
        assert!(bus.retained_bytes() <= 10_000, "{}", bus.retained_bytes());
        assert!(bus.retained_bytes() > 8_000, "the newest events stay");
        let err = bus.publish("user:a", serde_json::json!({ "s": "y".repeat(20_000) })).await.unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::PayloadTooLarge);
    }

    #[tokio::test]
    async fn all_topics_together_stay_within_the_total_and_the_oldest_go_first() {
        let bus = bounded(10_000, 50_000);
        let chunk = "x".repeat(1_000);
        for t in 0..200 {
            for _ in 0..5 {
                bus.publish(&format!("user:{t}"), serde_json::json!({ "s": chunk })).await.unwrap();
            }
        }
        assert!(bus.retained_bytes() <= 50_000, "{}", bus.retained_bytes());
        let state = bus.lock();
        assert_eq!(state.topics["user:199"].retained.len(), 5, "the latest topic keeps its events");
        assert!(state.topics["user:0"].retained.is_empty(), "the oldest topic's go first");
        let counted: usize = state.topics.values().map(|t| t.bytes).sum();
        assert_eq!(counted, state.total_bytes, "the total is exact");
    }

    #[tokio::test]
    async fn idle_topics_are_forgotten_and_their_ids_keep_increasing() {
        let bus = MemoryEventBus::new(&EventBusConfig { idle_topic_secs: 0, ..EventBusConfig::default() });
        let first = bus.publish("user:a", serde_json::json!(1)).await.unwrap();
        bus.lock().sweep(Duration::ZERO);
        assert_eq!(bus.topics(), 0);
        assert_eq!(bus.retained_bytes(), 0);
        let again = bus.publish("user:a", serde_json::json!(2)).await.unwrap();
        assert!(again > first, "ids keep increasing after a topic is forgotten");
        // A device resuming from before the eviction is told to resynchronize.
        let err = bus.subscribe("user:a", Some(first - 1)).await.map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::Conflict);
    }

    #[tokio::test]
    async fn one_topic_takes_a_bounded_number_of_subscribers() {
        let bus = MemoryEventBus::new(&EventBusConfig {
            max_subscribers_per_topic: 2,
            ..EventBusConfig::default()
        });
        let a = bus.subscribe("user:a", None).await.unwrap();
        let _b = bus.subscribe("user:a", None).await.unwrap();
        let err = bus.subscribe("user:a", None).await.map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::RateLimited);
        drop(a);
        let _c = bus.subscribe("user:a", None).await.unwrap();
    }
}

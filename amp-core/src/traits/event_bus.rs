//! Ordered publish/subscribe with replay, for cross-device sync.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// An event's position in its topic: ids increase by publication order, per topic.
pub type EventId = u64;

/// A published event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its position in the topic.
    pub id: EventId,
    /// The topic (`user:{id}` for a person's devices).
    pub topic: String,
    /// What happened.
    pub payload: serde_json::Value,
    /// When it was published.
    pub published_at: DateTime<Utc>,
}

/// A subscription: retained events after the requested id, then live ones, in id order
/// without gaps. An `Err` item ends it: `Conflict` when the subscriber fell behind the
/// bus's buffer; resubscribe from the last id seen to resume without loss.
pub type EventStream = BoxStream<'static, Result<Event>>;

/// An ordered event bus with a bounded replay window.
///
/// Promises, checked by the conformance kit: ids increase strictly per topic in
/// publication order, even under concurrent publishers; a subscriber sees every event of
/// its topic published after it subscribed, in order, and nothing of other topics;
/// subscribing with `after: Some(id)` first replays every retained event with a larger id;
/// asking to resume from before the replay window is `Conflict` (the client must resync
/// in full), never a silent gap.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes an event; returns its id.
    async fn publish(&self, topic: &str, payload: serde_json::Value) -> Result<EventId>;

    /// Subscribes to a topic, replaying retained events after `after` first.
    async fn subscribe(&self, topic: &str, after: Option<EventId>) -> Result<EventStream>;
}

//! [`EventBus`] on Redis: a stream per topic keeps the replay window, pub/sub carries live
//! events to every process.

use amp_core::{Error, Event, EventBus, EventId, EventStream, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use redis::AsyncCommands;
use redis::streams::StreamRangeReply;

use std::sync::Arc;

use super::subscriptions::Subscriptions;
use super::{RedisConnection, redis_error};

/// Numbers, retains and announces an event in one atomic step, so ids are contiguous per
/// topic and pub/sub delivers them in id order.
const PUBLISH: &str = r#"
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], id .. '-0', 'p', ARGV[1], 't', ARGV[2])
redis.call('PUBLISH', KEYS[3], id .. ' ' .. ARGV[2] .. ' ' .. ARGV[1])
return id
"#;

/// An [`EventBus`] shared by every process using the same Redis.
///
/// Subscribing joins the process's one pub/sub connection first and reads the retained
/// events second, so nothing published in between is missed; events seen twice are dropped
/// by id. If the pub/sub connection breaks, the stream ends with `Unavailable`; if the
/// subscriber falls a whole queue behind, with `Conflict`; either way it resumes from its
/// last id.
#[derive(Clone)]
pub struct RedisEventBus {
    redis: RedisConnection,
    replay_window: usize,
    publish: redis::Script,
    subscriptions: Arc<Subscriptions>,
}

/// Events queued per subscriber unless [`RedisEventBus::with_subscriber_buffer`] says otherwise.
const DEFAULT_SUBSCRIBER_BUFFER: usize = 256;

impl RedisEventBus {
    /// A bus keeping `replay_window` events per topic, under `<namespace>ev:`.
    pub fn new(redis: RedisConnection, replay_window: usize) -> Self {
        let subscriptions = Arc::new(Subscriptions::new(redis.client.clone(), DEFAULT_SUBSCRIBER_BUFFER));
        RedisEventBus {
            redis,
            replay_window: replay_window.max(1),
            publish: redis::Script::new(PUBLISH),
            subscriptions,
        }
    }

    /// Queues at most `buffer` live events per subscriber; one that falls further behind is
    /// cut off (its stream ends with `Conflict`) and resumes from its last id.
    pub fn with_subscriber_buffer(mut self, buffer: usize) -> Self {
        self.subscriptions = Arc::new(Subscriptions::new(self.redis.client.clone(), buffer));
        self
    }

    fn keys(&self, topic: &str) -> (String, String, String) {
        (
            self.redis.key(&["ev", topic, "seq"]),
            self.redis.key(&["ev", topic, "log"]),
            self.redis.key(&["ev", topic]),
        )
    }
}

fn stream_id(id: &str) -> Result<EventId> {
    id.split('-').next().and_then(|n| n.parse().ok()).ok_or_else(|| Error::bug(format!("bad stream id {id}")))
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Parses a pub/sub message `"<id> <ms> <payload json>"`.
/// Stream entries the replay reads per round trip.
const REPLAY_PAGE: usize = 100;

/// A replayed stream entry as an event.
fn replayed(topic: &str, entry: &redis::streams::StreamId) -> Result<Event> {
    let payload: String = entry.get("p").ok_or_else(|| Error::bug("stream entry without payload"))?;
    let ms: i64 = entry.get("t").unwrap_or_default();
    Ok(Event {
        id: stream_id(&entry.id)?,
        topic: topic.to_owned(),
        payload: serde_json::from_str(&payload).map_err(|e| Error::internal("malformed event payload", e))?,
        published_at: time(ms),
    })
}

fn parse_live(topic: &str, msg: &str) -> Result<Event> {
    let mut parts = msg.splitn(3, ' ');
    let (Some(id), Some(ms), Some(payload)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::bug("malformed event message"));
    };
    Ok(Event {
        id: id.parse().map_err(|_| Error::bug("malformed event id"))?,
        topic: topic.to_owned(),
        payload: serde_json::from_str(payload).map_err(|e| Error::internal("malformed event payload", e))?,
        published_at: time(ms.parse().map_err(|_| Error::bug("malformed event time"))?),
    })
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, topic: &str, payload: serde_json::Value) -> Result<EventId> {
        let (seq, log, channel) = self.keys(topic);
        let id: EventId = self
            .publish
            .key(seq)
            .key(log)
            .key(channel)
            .arg(payload.to_string())
            .arg(Utc::now().timestamp_millis())
            .arg(self.replay_window)
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(redis_error)?;
        Ok(id)
    }

    async fn subscribe(&self, topic: &str, after: Option<EventId>) -> Result<EventStream> {
        let (seq, log, channel) = self.keys(topic);
        let subscription = self.subscriptions.subscribe(&channel).await?;

        let mut conn = self.redis.conn();
        if let Some(after) = after {
            let last: Option<EventId> = conn.get(&seq).await.map_err(redis_error)?;
            let last = last.unwrap_or(0);
            let oldest: StreamRangeReply = conn.xrange_count(&log, "-", "+", 1).await.map_err(redis_error)?;
            let oldest = match oldest.ids.first() {
                Some(entry) => stream_id(&entry.id)?,
                None => last + 1,
            };
            if after < last && after + 1 < oldest {
                return Err(Error::conflict(format!(
                    "event {after} of {topic} is older than the replay window; resynchronize in full"
                )));
            }
        }
        // The replay is read a page at a time, so no single reply holds the whole window.
        let mut replay = Vec::new();
        if let Some(mut from) = after {
            loop {
                let page: StreamRangeReply = conn
                    .xrange_count(&log, format!("{}-0", from + 1), "+", REPLAY_PAGE)
                    .await
                    .map_err(redis_error)?;
                let full = page.ids.len() == REPLAY_PAGE;
                for entry in &page.ids {
                    let event = replayed(topic, entry)?;
                    from = event.id;
                    replay.push(event);
                }
                if !full {
                    break;
                }
            }
        }
        let last_seen =
            Arc::new(std::sync::atomic::AtomicU64::new(replay.last().map(|e| e.id).or(after).unwrap_or(0)));
        let replay = futures::stream::iter(replay.into_iter().map(Ok));

        let topic = topic.to_owned();
        let cut_off = subscription.cut_off;
        let live =
            tokio_stream::wrappers::ReceiverStream::new(subscription.messages).filter_map(move |text| {
                let event = parse_live(&topic, &text);
                // Events read from the replay may also arrive live; deliver each id once.
                let keep = match &event {
                    Ok(e) if e.id <= last_seen.load(std::sync::atomic::Ordering::Acquire) => false,
                    Ok(e) => {
                        last_seen.store(e.id, std::sync::atomic::Ordering::Release);
                        true
                    }
                    Err(_) => true,
                };
                futures::future::ready(keep.then_some(event))
            });
        let ended = futures::stream::once(async move {
            if cut_off.load(std::sync::atomic::Ordering::Acquire) {
                Err(Error::conflict(
                    "this subscriber fell behind and was cut off; resubscribe from the last event id seen",
                ))
            } else {
                Err(Error::Unavailable {
                    message: "the event connection closed; resubscribe from the last event id seen".into(),
                    retry_after: None,
                })
            }
        });
        Ok(replay.chain(live).chain(ended).boxed())
    }
}

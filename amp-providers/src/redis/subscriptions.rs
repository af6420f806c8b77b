//! One pub/sub connection per process, shared by every subscriber of the Redis event bus.
//!
//! A connection per subscriber would cost Redis a client per signed-in device, and redis-rs
//! queues a connection's messages without bound. Here one reader task fans each message out
//! to bounded per-subscriber queues; a subscriber that falls a whole queue behind is cut off
//! (its stream ends with `Conflict` and it resumes from its last id), and the others never
//! wait for it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use amp_core::{Error, Result};
use futures::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::mpsc;

use super::redis_error;

/// A subscriber's end: raw messages, and whether it was cut off for falling behind.
pub(super) struct Subscription {
    pub(super) messages: mpsc::Receiver<String>,
    pub(super) cut_off: Arc<AtomicBool>,
}

struct Subscriber {
    queue: mpsc::Sender<String>,
    cut_off: Arc<AtomicBool>,
}

/// Channels with their subscribers, and channels nobody listens to any more (unsubscribed
/// the next time the sink is at hand).
#[derive(Default)]
struct Routes {
    channels: HashMap<String, Vec<Subscriber>>,
    abandoned: HashSet<String>,
}

struct Live {
    sink: PubSubSink,
    routes: Arc<Mutex<Routes>>,
    closed: Arc<AtomicBool>,
}

/// The shared connection, opened on first use and again after it breaks.
pub(super) struct Subscriptions {
    client: redis::Client,
    buffer: usize,
    live: tokio::sync::Mutex<Option<Live>>,
}

fn lock(routes: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    // Every update leaves the map consistent, so a panic elsewhere cannot corrupt it.
    routes.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Subscriptions {
    pub(super) fn new(client: redis::Client, buffer: usize) -> Self {
        Subscriptions { client, buffer: buffer.max(1), live: tokio::sync::Mutex::new(None) }
    }

    /// Subscribes to `channel`. Messages published after this returns are delivered.
    pub(super) async fn subscribe(&self, channel: &str) -> Result<Subscription> {
        let mut live = self.live.lock().await;
        if live.as_ref().is_none_or(|l| l.closed.load(Ordering::Acquire)) {
            *live = Some(self.connect().await?);
        }
        let Some(live) = live.as_mut() else {
            return Err(Error::bug("no pub/sub connection after connecting"));
        };
        let (queue, messages) = mpsc::channel(self.buffer);
        let cut_off = Arc::new(AtomicBool::new(false));
        let (first, abandoned) = {
            let mut routes = lock(&live.routes);
            let subscribers = routes.channels.entry(channel.to_owned()).or_default();
            let first = subscribers.is_empty();
            subscribers.push(Subscriber { queue, cut_off: cut_off.clone() });
            routes.abandoned.remove(channel);
            (first, std::mem::take(&mut routes.abandoned))
        };
        for gone in abandoned {
            // Still unused? Someone may have subscribed again since it was abandoned.
            if !lock(&live.routes).channels.contains_key(&gone) {
                live.sink.unsubscribe(&gone).await.map_err(redis_error)?;
            }
        }
        if first {
            live.sink.subscribe(channel).await.map_err(redis_error)?;
        }
        Ok(Subscription { messages, cut_off })
    }

    async fn connect(&self) -> Result<Live> {
        let (sink, mut stream) = self.client.get_async_pubsub().await.map_err(redis_error)?.split();
        let routes = Arc::new(Mutex::new(Routes::default()));
        let closed = Arc::new(AtomicBool::new(false));
        let (reader_routes, reader_closed) = (routes.clone(), closed.clone());
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let Ok(payload) = msg.get_payload::<String>() else { continue };
                let channel = msg.get_channel_name();
                let mut routes = lock(&reader_routes);
                let Some(subscribers) = routes.channels.get_mut(channel) else { continue };
                subscribers.retain(|s| match s.queue.try_send(payload.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        s.cut_off.store(true, Ordering::Release);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
                if subscribers.is_empty() {
                    routes.channels.remove(channel);
                    routes.abandoned.insert(channel.to_owned());
                }
            }
            // The connection broke: every subscriber's queue closes, so each stream ends and
            // its owner resumes; the next subscription opens a new connection.
            reader_closed.store(true, Ordering::Release);
            lock(&reader_routes).channels.clear();
        });
        Ok(Live { sink, routes, closed })
    }
}

//! Turning a Server-Sent Events body into a [`ChatStream`], under a deployment's deadlines.
//!
//! Providers supply an [`SseDecoder`] for their event format; the driver here owns what is
//! the same everywhere: timeouts, transport errors, the rule that a stream which ends
//! without finishing is an error, and draining the body after the answer so the pooled
//! connection can be reused.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use amp_core::{ChatStream, Error, Result, StreamEvent};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::StreamExt;
use futures::stream::{self, BoxStream};

use super::error::transport_error;
use super::timeouts::StreamClock;

/// What one upstream event meant.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Events to pass on, in order.
    pub events: Vec<StreamEvent>,
    /// Whether the answer is complete (the last `Finish` was among `events`).
    pub complete: bool,
}

impl Decoded {
    /// Nothing to pass on (a ping, a block boundary).
    pub fn nothing() -> Self {
        Decoded::default()
    }

    /// These events; the answer goes on.
    pub fn events(events: Vec<StreamEvent>) -> Self {
        Decoded { events, complete: false }
    }
}

/// A provider's streaming wire format.
pub trait SseDecoder: Send + 'static {
    /// Handles one upstream event. An `Err` ends the stream with that error.
    fn on_event(&mut self, event: &Event) -> Result<Decoded>;

    /// The body ended. Returns the events still owed (a provider may finish on end of
    /// body), or an error when the answer was cut short.
    fn on_end(&mut self) -> Result<Vec<StreamEvent>>;
}

/// The longest wait for the end of a body after the answer is complete.
const MAX_DRAIN: Duration = Duration::from_secs(1);

enum Phase {
    Streaming,
    /// The answer is complete; read the rest of the body so the connection can go back to
    /// the pool, then end.
    Draining,
    Done,
}

struct Driver<D> {
    body: BoxStream<'static, Result<Event, EventStreamError<reqwest::Error>>>,
    decoder: D,
    pending: VecDeque<StreamEvent>,
    phase: Phase,
    clock: StreamClock,
    service: Arc<str>,
}

/// Decodes a streaming response's body with `decoder`, enforcing the clock's first-token,
/// idle and total deadlines. Every failure is one `Err` item that ends the stream.
pub fn decode_sse<D: SseDecoder>(
    response: reqwest::Response,
    decoder: D,
    clock: StreamClock,
    service: Arc<str>,
) -> ChatStream {
    let driver = Driver {
        body: response.bytes_stream().eventsource().boxed(),
        decoder,
        pending: VecDeque::new(),
        phase: Phase::Streaming,
        clock,
        service,
    };
    stream::unfold(driver, |mut driver| async move { driver.next().await.map(|item| (item, driver)) }).boxed()
}

impl<D: SseDecoder> Driver<D> {
    async fn next(&mut self) -> Option<Result<StreamEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            match self.phase {
                Phase::Done => return None,
                Phase::Draining => {
                    self.phase = Phase::Done;
                    // Only an optimisation: a server that keeps the body open after the
                    // answer must not hold the caller, and any failure here comes after a
                    // complete answer.
                    let body = &mut self.body;
                    let limit = self.clock.timeouts().idle.min(MAX_DRAIN);
                    let _ = tokio::time::timeout(limit, async { while body.next().await.is_some() {} }).await;
                    return None;
                }
                Phase::Streaming => {}
            }
            let next = match self.clock.run(self.body.next()).await {
                Ok(next) => next,
                Err(stage) => return self.fail(self.clock.error(stage, &self.service)),
            };
            match next {
                None => {
                    self.phase = Phase::Done;
                    match self.decoder.on_end() {
                        Ok(events) => self.pending.extend(events),
                        Err(err) => return Some(Err(err)),
                    }
                }
                Some(Err(err)) => return self.fail(self.body_error(err)),
                Some(Ok(event)) => match self.decoder.on_event(&event) {
                    Ok(decoded) => {
                        let is_token = decoded.events.iter().any(|e| !matches!(e, StreamEvent::Start { .. }));
                        self.clock.record(is_token);
                        self.pending.extend(decoded.events);
                        if decoded.complete {
                            self.phase = Phase::Draining;
                        }
                    }
                    Err(err) => return self.fail(err),
                },
            }
        }
    }

    fn fail(&mut self, err: Error) -> Option<Result<StreamEvent>> {
        self.phase = Phase::Done;
        self.pending.clear();
        Some(Err(err))
    }

    fn body_error(&self, err: EventStreamError<reqwest::Error>) -> Error {
        let malformed = |message: String| Error::Upstream {
            service: self.service.to_string(),
            status: None,
            retryable: false,
            message,
            retry_after: None,
            source: None,
        };
        match err {
            EventStreamError::Transport(err) => transport_error(&self.service, err, &self.clock),
            EventStreamError::Utf8(err) => malformed(format!("the event stream is not valid UTF-8: {err}")),
            EventStreamError::Parser(err) => malformed(format!("malformed event stream: {:?}", err.code)),
        }
    }
}

/// Waits until the stream has produced its first token (any event after `Start`), so that
/// failures before it are returned as an `Err` (a router can still fall back) and failures
/// after it arrive in the stream. Returns the stream with the events read so far replayed.
pub async fn wait_for_first_token(mut events: ChatStream) -> Result<ChatStream> {
    let mut seen = Vec::new();
    loop {
        match events.next().await {
            Some(Ok(event)) => {
                let is_start = matches!(event, StreamEvent::Start { .. });
                seen.push(Ok(event));
                if !is_start {
                    break;
                }
            }
            Some(Err(err)) => return Err(err),
            // The driver ends every stream with a `Finish` or an error; an empty end means
            // a decoder broke that promise.
            None => return Err(Error::bug("an answer stream ended before its first event")),
        }
    }
    Ok(stream::iter(seen).chain(events).boxed())
}

/// Feeds `chunks` (a body as it may arrive, split anywhere) through the SSE parser and
/// `decoder` exactly as a live stream is, without a network; returns how many events came
/// out. For fuzzing: it must never panic, hang or allocate without bound.
#[cfg(feature = "fuzzing")]
pub fn decode_chunks<D: SseDecoder>(mut decoder: D, chunks: Vec<bytes::Bytes>) -> usize {
    let body = stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let mut events = body.eventsource();
    futures::executor::block_on(async move {
        let mut produced = 0;
        while let Some(event) = events.next().await {
            let Ok(event) = event else { return produced };
            match decoder.on_event(&event) {
                Ok(decoded) => {
                    produced += decoded.events.len();
                    if decoded.complete {
                        return produced;
                    }
                }
                Err(_) => return produced,
            }
        }
        produced + decoder.on_end().map(|e| e.len()).unwrap_or(0)
    })
}

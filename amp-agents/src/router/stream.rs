//! Streams through the Router: hold back the opening events until the first token, so a
//! failure before it can still fail over; once it arrived, pass everything through and
//! settle the deployment's books when the stream ends or is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use amp_core::{ChatRequest, ChatStream, Error, Result, StreamEvent, Usage};
use futures::{Stream, StreamExt};

use super::in_flight::InFlight;
use super::table::DeploymentSlot;

/// Opens a stream on `slot` and reads it up to the first token (text, tool call or the end
/// of an empty answer). Errors until then are returned, so the caller may try elsewhere.
pub(crate) async fn open(
    slot: &Arc<DeploymentSlot>,
    request: &ChatRequest,
) -> Result<(Vec<StreamEvent>, ChatStream)> {
    let mut stream = slot.client.stream(request).await?;
    let mut opening = Vec::with_capacity(2);
    loop {
        match stream.next().await {
            Some(Ok(StreamEvent::Error { kind, message })) => {
                return Err(Error::Upstream {
                    service: slot.client.name().to_owned(),
                    status: None,
                    retryable: kind.http_status() >= 500 || kind.http_status() == 429,
                    message,
                    retry_after: None,
                    source: None,
                });
            }
            Some(Ok(event)) => {
                let first_token = !matches!(event, StreamEvent::Start { .. } | StreamEvent::Usage(_));
                opening.push(event);
                if first_token {
                    return Ok((opening, stream));
                }
            }
            Some(Err(err)) => return Err(err),
            None => return Err(broken(slot.client.name(), "the stream ended before its first token")),
        }
    }
}

/// A stream that stopped where it should not have: retryable, since another call may
/// finish.
fn broken(service: &str, message: &str) -> Error {
    Error::Upstream {
        service: service.to_owned(),
        status: None,
        retryable: true,
        message: message.to_owned(),
        retry_after: None,
        source: None,
    }
}

/// A committed stream: the held-back opening, then the rest, with the call's books settled
/// at its end (success with usage, or failure) or, if dropped early, released.
pub(crate) struct Tracked {
    opening: std::vec::IntoIter<StreamEvent>,
    rest: ChatStream,
    call: Option<InFlight>,
    usage: Option<Usage>,
}

impl Tracked {
    pub(crate) fn new(opening: Vec<StreamEvent>, rest: ChatStream, call: InFlight) -> Self {
        Tracked { opening: opening.into_iter(), rest, call: Some(call), usage: None }
    }

    fn settle(&mut self, event: &Result<StreamEvent>) {
        match event {
            Ok(StreamEvent::Usage(usage)) => self.usage = Some(*usage),
            Ok(StreamEvent::Finish { .. }) => {
                if let Some(call) = self.call.take() {
                    call.succeeded(self.usage);
                }
            }
            Ok(_) => {}
            Err(err) => {
                if let Some(call) = self.call.take() {
                    call.failed(err);
                }
            }
        }
    }
}

impl Stream for Tracked {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(event) = self.opening.next() {
            let event = Ok(event);
            self.settle(&event);
            return Poll::Ready(Some(event));
        }
        match self.rest.poll_next_unpin(cx) {
            Poll::Ready(Some(event)) => {
                self.settle(&event);
                Poll::Ready(Some(event))
            }
            Poll::Ready(None) => {
                // A stream that stops without `Finish` broke off; providers report that as an
                // error item, so this only guards against one that did not.
                if let Some(call) = self.call.take() {
                    let service = call.slot.client.name().to_owned();
                    call.failed(&broken(&service, "the stream ended without finishing"));
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

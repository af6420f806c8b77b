//! One JSON-over-HTTP endpoint of a provider: where it is, how it authenticates, its time
//! limits, and how its error answers read. Providers keep only their wire formats.

use std::sync::Arc;

use amp_core::{Error, Result};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde::Serialize;

use super::{
    KeyScrubber, StreamClock, StreamTimeouts, UpstreamErrorBody, read_error_body, send, transport_error,
};

/// How a provider turns an HTTP error answer into an [`Error`]: service name, the answer,
/// the key scrubber and the model's context window (for context-length errors).
pub type StatusErrorMapper = fn(&str, &UpstreamErrorBody, &KeyScrubber, Option<u32>) -> Error;

/// A provider endpoint that takes JSON bodies. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct JsonEndpoint {
    name: Arc<str>,
    url: String,
    headers: HeaderMap,
    client: reqwest::Client,
    timeouts: StreamTimeouts,
    scrubber: KeyScrubber,
    context_window: Option<u32>,
    status_error: StatusErrorMapper,
}

/// What a [`JsonEndpoint`] is made of.
pub struct JsonEndpointParts {
    /// Name for logs, metrics and errors (`openai:gpt-4o/primary`); never a secret.
    pub name: String,
    /// The full URL requests are posted to.
    pub url: String,
    /// Headers sent with every request (authentication included).
    pub headers: HeaderMap,
    /// The HTTP client, possibly shared with other endpoints.
    pub client: reqwest::Client,
    /// The deployment's time limits.
    pub timeouts: StreamTimeouts,
    /// Removes the API key from any upstream text.
    pub scrubber: KeyScrubber,
    /// The model's context window, for context-length errors.
    pub context_window: Option<u32>,
    /// The provider's error-answer mapping.
    pub status_error: StatusErrorMapper,
}

impl JsonEndpoint {
    /// An endpoint from its parts.
    pub fn new(p: JsonEndpointParts) -> Self {
        JsonEndpoint {
            name: p.name.into(),
            url: p.url,
            headers: p.headers,
            client: p.client,
            timeouts: p.timeouts,
            scrubber: p.scrubber,
            context_window: p.context_window,
            status_error: p.status_error,
        }
    }

    /// The endpoint's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The scrubber for upstream text.
    pub fn scrubber(&self) -> &KeyScrubber {
        &self.scrubber
    }

    /// A clock for one call, running the deployment's time limits.
    pub fn start_clock(&self) -> StreamClock {
        StreamClock::start(self.timeouts)
    }

    /// Posts `body` and returns the response if its status is a success; an error answer
    /// is read (within the clock's limits) and mapped by the provider.
    pub async fn post(&self, body: &impl Serialize, clock: &StreamClock) -> Result<reqwest::Response> {
        let request = self.client.post(&self.url).headers(self.headers.clone()).json(body);
        let response = send(request, clock, &self.name).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let body = read_error_body(response, clock, &self.name).await?;
        tracing::debug!(status = body.status, "upstream answered with an error");
        Err((self.status_error)(&self.name, &body, &self.scrubber, self.context_window))
    }

    /// Reads a whole (unstreamed) response body within the clock's limits.
    pub async fn read_body(&self, response: reqwest::Response, clock: &StreamClock) -> Result<Bytes> {
        match clock.run(response.bytes()).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(err)) => Err(transport_error(&self.name, err, clock)),
            Err(stage) => Err(clock.error(stage, &self.name)),
        }
    }
}

/// An upstream answer a client cannot read: the same request would get the same answer.
pub fn malformed(service: &str, what: impl std::fmt::Display) -> Error {
    Error::Upstream {
        service: service.to_owned(),
        status: None,
        retryable: false,
        message: format!("malformed response: {what}"),
        retry_after: None,
        source: None,
    }
}

//! OpenAI-compatible Chat Completions: one client for OpenAI, Azure OpenAI, vLLM, Ollama,
//! llama.cpp and LM Studio.
//!
//! - [`config`]: where the server is and how to authenticate ([`OpenAiConfig`], [`OpenAiFlavor`]).
//! - `request`: [`ChatRequest`] → request body.
//! - `response`: unstreamed response body → [`ChatResponse`].
//! - `stream`: Server-Sent Events → [`StreamEvent`](amp_core::StreamEvent)s.
//! - `error`: error bodies → [`amp_core::Error`].
//!
//! ```no_run
//! # async fn run() -> amp_core::Result<()> {
//! use amp_core::{ChatMessage, ChatModel, ChatRequest};
//! use amp_providers::chat::openai::{OpenAiChat, OpenAiConfig};
//!
//! let ollama = OpenAiChat::new(OpenAiConfig::compatible("ollama:local", "http://localhost:11434/v1", "llama3.2"))?;
//! let answer = ollama.complete(&ChatRequest::new(vec![ChatMessage::user("Hi!")])).await?;
//! println!("{}", answer.message.content);
//! # Ok(()) }
//! ```

pub mod config;
mod error;
mod request;
mod response;
mod stream;

use std::sync::Arc;

use amp_core::model::{Deployment, ModelSpec};
use amp_core::{ChatModel, ChatRequest, ChatResponse, ChatStream, ModelId, Result};
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use tracing::Instrument;

pub use config::{DEFAULT_AZURE_API_VERSION, OPENAI_BASE_URL, OpenAiConfig, OpenAiFlavor};
pub(crate) use error::status_error;

use crate::http::{self, KeyScrubber, StreamClock, StreamTimeouts};
use request::CompletionRequest;
use stream::OpenAiStreamDecoder;

/// A [`ChatModel`] served over the OpenAI Chat Completions API.
///
/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct OpenAiChat {
    name: Arc<str>,
    model: String,
    flavor: OpenAiFlavor,
    url: String,
    headers: HeaderMap,
    client: reqwest::Client,
    timeouts: StreamTimeouts,
    scrubber: KeyScrubber,
    context_window: Option<u32>,
}

impl OpenAiChat {
    /// A client with its own connection pool, connecting within the configured timeout.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let timeouts = StreamTimeouts::from(&config.timeouts);
        let client = http::build_client(timeouts.connect)?;
        Self::with_client(config, client)
    }

    /// A client that shares `client`'s connection pool (and its connect timeout) with others.
    pub fn with_client(config: OpenAiConfig, client: reqwest::Client) -> Result<Self> {
        Ok(OpenAiChat {
            headers: config.header_map()?,
            url: config.url("chat/completions"),
            name: config.name.into(),
            model: config.model,
            flavor: config.flavor,
            client,
            timeouts: StreamTimeouts::from(&config.timeouts),
            scrubber: KeyScrubber::new(config.api_key.as_ref()),
            context_window: config.context_window,
        })
    }

    /// The client for one deployment of a registry model; see [`OpenAiConfig::from_deployment`].
    pub fn from_deployment(model_id: &ModelId, spec: &ModelSpec, deployment: &Deployment) -> Result<Self> {
        Self::new(OpenAiConfig::from_deployment(model_id, spec, deployment)?)
    }

    /// The model name sent upstream.
    pub fn upstream_model(&self) -> &str {
        &self.model
    }

    /// Sends the body and returns the response if its status is a success.
    async fn post(&self, body: &CompletionRequest<'_>, clock: &StreamClock) -> Result<reqwest::Response> {
        let request = self.client.post(&self.url).headers(self.headers.clone()).json(body);
        let response = http::send(request, clock, &self.name).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let body = http::read_error_body(response, clock, &self.name).await?;
        tracing::debug!(status = body.status, "upstream answered with an error");
        Err(error::status_error(&self.name, &body, &self.scrubber, self.context_window))
    }
}

impl std::fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChat")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("url", &self.url)
            .finish()
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    fn name(&self) -> &str {
        &self.name
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        request.validate()?;
        let span = tracing::info_span!("chat.complete", service = %self.name, model = %self.model);
        async {
            let clock = StreamClock::start(self.timeouts);
            let body = CompletionRequest::new(request, &self.model, &self.flavor, false);
            let response = self.post(&body, &clock).await?;
            let bytes = match clock.run(response.bytes()).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(err)) => return Err(http::transport_error(&self.name, err, &clock)),
                Err(stage) => return Err(clock.error(stage, &self.name)),
            };
            let answer = response::parse_completion(&bytes, &self.name, &self.model)?;
            if let Some(usage) = answer.usage {
                tracing::debug!(
                    prompt_tokens = usage.prompt_tokens,
                    completion_tokens = usage.completion_tokens
                );
            }
            Ok(answer)
        }
        .instrument(span)
        .await
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream> {
        request.validate()?;
        let span = tracing::info_span!("chat.stream", service = %self.name, model = %self.model);
        async {
            let clock = StreamClock::start(self.timeouts);
            let body = CompletionRequest::new(request, &self.model, &self.flavor, true);
            let response = self.post(&body, &clock).await?;
            let decoder =
                OpenAiStreamDecoder::new(self.name.clone(), self.model.clone(), self.scrubber.clone());
            http::wait_for_first_token(http::decode_sse(response, decoder, clock, self.name.clone())).await
        }
        .instrument(span)
        .await
    }
}

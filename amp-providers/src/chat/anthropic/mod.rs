//! Anthropic's Messages API.
//!
//! - [`config`]: endpoint, key, default `max_tokens` ([`AnthropicConfig`]).
//! - `request`: [`ChatRequest`] → request body (system prompt lifted out, roles merged).
//! - `response`: unstreamed response body → [`ChatResponse`].
//! - `stream`: the Messages event stream → [`StreamEvent`](amp_core::StreamEvent)s.
//! - `error`: error bodies and `error` events → [`amp_core::Error`].
//!
//! ```no_run
//! # async fn run() -> amp_core::Result<()> {
//! use amp_core::{ChatMessage, ChatModel, ChatRequest, Secret};
//! use amp_providers::chat::anthropic::{AnthropicChat, AnthropicConfig};
//!
//! let key = Secret::new(std::env::var("ANTHROPIC_API_KEY").unwrap_or_default());
//! let claude = AnthropicChat::new(AnthropicConfig::new("anthropic:main", "claude-sonnet-4-20250514", key))?;
//! let answer = claude.complete(&ChatRequest::new(vec![ChatMessage::user("Hi!")])).await?;
//! println!("{}", answer.message.content);
//! # Ok(()) }
//! ```

pub mod config;
mod error;
mod request;
mod response;
mod stream;

use amp_core::model::{Deployment, ModelSpec};
use amp_core::{ChatModel, ChatRequest, ChatResponse, ChatStream, ModelId, Result};
use async_trait::async_trait;
use tracing::Instrument;

pub use config::{ANTHROPIC_BASE_URL, ANTHROPIC_VERSION, AnthropicConfig, DEFAULT_MAX_TOKENS};

use crate::http::{self, JsonEndpoint, JsonEndpointParts, KeyScrubber, StreamTimeouts};
use request::MessagesRequest;
use stream::AnthropicStreamDecoder;

/// A [`ChatModel`] served over Anthropic's Messages API.
///
/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct AnthropicChat {
    endpoint: JsonEndpoint,
    model: String,
    default_max_tokens: u32,
}

impl AnthropicChat {
    /// A client with its own connection pool, connecting within the configured timeout.
    pub fn new(config: AnthropicConfig) -> Result<Self> {
        let client = http::build_client(StreamTimeouts::from(&config.timeouts).connect)?;
        Self::with_client(config, client)
    }

    /// A client that shares `client`'s connection pool (and its connect timeout) with others.
    pub fn with_client(config: AnthropicConfig, client: reqwest::Client) -> Result<Self> {
        let endpoint = JsonEndpoint::new(JsonEndpointParts {
            headers: config.header_map()?,
            url: config.url(),
            name: config.name,
            client,
            timeouts: StreamTimeouts::from(&config.timeouts),
            scrubber: KeyScrubber::new(config.api_key.as_ref()),
            context_window: config.context_window,
            status_error: error::status_error,
        });
        Ok(AnthropicChat { endpoint, model: config.model, default_max_tokens: config.default_max_tokens })
    }

    /// The client for one deployment of a registry model; see [`AnthropicConfig::from_deployment`].
    pub fn from_deployment(model_id: &ModelId, spec: &ModelSpec, deployment: &Deployment) -> Result<Self> {
        Self::new(AnthropicConfig::from_deployment(model_id, spec, deployment)?)
    }

    /// The model name sent upstream.
    pub fn upstream_model(&self) -> &str {
        &self.model
    }
}

impl std::fmt::Debug for AnthropicChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicChat")
            .field("name", self.endpoint.name())
            .field("model", &self.model)
            .field("url", &self.endpoint.url())
            .finish()
    }
}

#[async_trait]
impl ChatModel for AnthropicChat {
    fn name(&self) -> &str {
        self.endpoint.name()
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        request.validate()?;
        let name = self.endpoint.name();
        let span = tracing::info_span!("chat.complete", service = %name, model = %self.model);
        async {
            let clock = self.endpoint.start_clock();
            let body = MessagesRequest::new(request, &self.model, self.default_max_tokens, false)?;
            let response = self.endpoint.post(&body, &clock).await?;
            let bytes = self.endpoint.read_body(response, &clock).await?;
            let answer = response::parse_message(&bytes, name, &self.model)?;
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
        let name = self.endpoint.name();
        let span = tracing::info_span!("chat.stream", service = %name, model = %self.model);
        async {
            let clock = self.endpoint.start_clock();
            let body = MessagesRequest::new(request, &self.model, self.default_max_tokens, true)?;
            let response = self.endpoint.post(&body, &clock).await?;
            let decoder = AnthropicStreamDecoder::new(
                name.clone(),
                self.model.clone(),
                self.endpoint.scrubber().clone(),
            );
            http::wait_for_first_token(http::decode_sse(response, decoder, clock, name.clone())).await
        }
        .instrument(span)
        .await
    }
}

/// A streamed answer's body, split into `chunks` anywhere, through this provider's decoder
/// (see [`crate::http::decode_chunks`]). For the fuzz targets.
#[cfg(feature = "fuzzing")]
pub fn fuzz_stream(chunks: Vec<bytes::Bytes>) -> usize {
    let decoder = stream::AnthropicStreamDecoder::new(
        std::sync::Arc::from("fuzz"),
        "fuzz-model".to_owned(),
        crate::http::KeyScrubber::new(None),
    );
    crate::http::decode_chunks(decoder, chunks)
}

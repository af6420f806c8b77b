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

use amp_core::model::{Deployment, ModelSpec};
use amp_core::{ChatModel, ChatRequest, ChatResponse, ChatStream, ModelId, Result};
use async_trait::async_trait;
use tracing::Instrument;

pub use config::{DEFAULT_AZURE_API_VERSION, OPENAI_BASE_URL, OpenAiConfig, OpenAiFlavor};
pub(crate) use error::status_error;

use crate::http::{self, JsonEndpoint, JsonEndpointParts, KeyScrubber, StreamTimeouts};
use request::CompletionRequest;
use stream::OpenAiStreamDecoder;

/// A [`ChatModel`] served over the OpenAI Chat Completions API.
///
/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct OpenAiChat {
    endpoint: JsonEndpoint,
    model: String,
    flavor: OpenAiFlavor,
}

impl OpenAiChat {
    /// A client with its own connection pool, connecting within the configured timeout.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let client = http::build_client(StreamTimeouts::from(&config.timeouts).connect)?;
        Self::with_client(config, client)
    }

    /// A client that shares `client`'s connection pool (and its connect timeout) with others.
    pub fn with_client(config: OpenAiConfig, client: reqwest::Client) -> Result<Self> {
        let endpoint = JsonEndpoint::new(JsonEndpointParts {
            headers: config.header_map()?,
            url: config.url("chat/completions"),
            name: config.name,
            client,
            timeouts: StreamTimeouts::from(&config.timeouts),
            scrubber: KeyScrubber::new(config.api_key.as_ref()),
            context_window: config.context_window,
            status_error: error::status_error,
        });
        Ok(OpenAiChat { endpoint, model: config.model, flavor: config.flavor })
    }

    /// The client for one deployment of a registry model; see [`OpenAiConfig::from_deployment`].
    pub fn from_deployment(model_id: &ModelId, spec: &ModelSpec, deployment: &Deployment) -> Result<Self> {
        Self::new(OpenAiConfig::from_deployment(model_id, spec, deployment)?)
    }

    /// The model name sent upstream.
    pub fn upstream_model(&self) -> &str {
        &self.model
    }
}

impl std::fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChat")
            .field("name", self.endpoint.name())
            .field("model", &self.model)
            .field("url", &self.endpoint.url())
            .finish()
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    fn name(&self) -> &str {
        self.endpoint.name()
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        request.validate()?;
        let name = self.endpoint.name();
        let span = tracing::info_span!("chat.complete", service = %name, model = %self.model);
        async {
            let clock = self.endpoint.start_clock();
            let body = CompletionRequest::new(request, &self.model, &self.flavor, false);
            let response = self.endpoint.post(&body, &clock).await?;
            let bytes = self.endpoint.read_body(response, &clock).await?;
            let answer = response::parse_completion(&bytes, name, &self.model)?;
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
            let body = CompletionRequest::new(request, &self.model, &self.flavor, true);
            let response = self.endpoint.post(&body, &clock).await?;
            let decoder =
                OpenAiStreamDecoder::new(name.clone(), self.model.clone(), self.endpoint.scrubber().clone());
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
    let decoder = stream::OpenAiStreamDecoder::new(
        std::sync::Arc::from("fuzz"),
        "fuzz-model".to_owned(),
        crate::http::KeyScrubber::new(None),
    );
    crate::http::decode_chunks(decoder, chunks)
}

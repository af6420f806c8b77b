//! OpenAI-compatible `/embeddings`: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp, TEI.
//!
//! ```no_run
//! # async fn run() -> amp_core::Result<()> {
//! use amp_core::Embedder;
//! use amp_providers::embed::openai::{OpenAiEmbedder, OpenAiEmbedderConfig};
//!
//! let config = OpenAiEmbedderConfig::compatible("ollama:embed", "http://localhost:11434/v1", "nomic-embed-text", 768);
//! let embedder = OpenAiEmbedder::new(config)?;
//! let vectors = embedder.embed(&["a passage".to_owned()]).await?;
//! assert_eq!(vectors[0].len(), 768);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use amp_core::model::DeploymentTimeouts;
use amp_core::{Embedder, Error, Result, Secret};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::chat::openai::{OPENAI_BASE_URL, OpenAiConfig, OpenAiFlavor};
use crate::http::{self, JsonEndpoint, JsonEndpointParts, KeyScrubber, StreamTimeouts};

/// Inputs per request when the config does not say: small enough for local servers,
/// large enough that OpenAI's per-request overhead is amortised.
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// OpenAI's limit for its embedding models (`text-embedding-3-*`), in tokens.
pub const DEFAULT_MAX_INPUT_TOKENS: usize = 8_191;

/// Everything an OpenAI-compatible embedder needs.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedderConfig {
    /// The name used in logs, metrics and errors; never a secret.
    pub name: String,
    /// The API dialect (authentication, Azure's `api-version`).
    pub flavor: OpenAiFlavor,
    /// The API base URL, without `/embeddings`.
    pub base_url: String,
    /// The API key; `None` for local servers.
    pub api_key: Option<Secret>,
    /// The model name sent upstream.
    pub model: String,
    /// The length of every vector; an answer with another length is an error.
    pub dimension: usize,
    /// The longest input in the model's tokens ([`Embedder::max_input_tokens`]).
    pub max_input_tokens: usize,
    /// Inputs per request.
    pub batch_size: usize,
    /// Extra headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// Limits per request (connect, whole answer, total).
    pub timeouts: DeploymentTimeouts,
}

impl OpenAiEmbedderConfig {
    /// OpenAI's public API.
    pub fn openai(
        name: impl Into<String>,
        model: impl Into<String>,
        api_key: Secret,
        dimension: usize,
    ) -> Self {
        OpenAiEmbedderConfig {
            name: name.into(),
            flavor: OpenAiFlavor::OpenAi,
            base_url: OPENAI_BASE_URL.to_owned(),
            api_key: Some(api_key),
            model: model.into(),
            dimension,
            max_input_tokens: DEFAULT_MAX_INPUT_TOKENS,
            batch_size: DEFAULT_BATCH_SIZE,
            headers: BTreeMap::new(),
            timeouts: DeploymentTimeouts::default(),
        }
    }

    /// A compatible server at `base_url`, without a key.
    pub fn compatible(
        name: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
        dimension: usize,
    ) -> Self {
        OpenAiEmbedderConfig {
            flavor: OpenAiFlavor::Compatible,
            base_url: base_url.into(),
            api_key: None,
            ..Self::openai(name, model, Secret::new(""), dimension)
        }
    }
}

#[derive(Serialize)]
struct EmbeddingRequest<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingData>,
}

#[derive(Deserialize)]
struct EmbeddingData {
    index: usize,
    embedding: Vec<f32>,
}

/// An [`Embedder`] over an OpenAI-compatible `/embeddings` endpoint. Vectors are
/// L2-normalized here, since not every compatible server normalizes.
#[derive(Clone)]
pub struct OpenAiEmbedder {
    endpoint: JsonEndpoint,
    model: String,
    dimension: usize,
    max_input_tokens: usize,
    batch_size: usize,
}

impl OpenAiEmbedder {
    /// An embedder with its own connection pool.
    pub fn new(config: OpenAiEmbedderConfig) -> Result<Self> {
        let client = http::build_client(StreamTimeouts::from(&config.timeouts).connect)?;
        Self::with_client(config, client)
    }

    /// An embedder sharing `client`'s connection pool. A zero dimension or batch size is
    /// an [`Error::InvalidInput`].
    pub fn with_client(config: OpenAiEmbedderConfig, client: reqwest::Client) -> Result<Self> {
        if config.dimension == 0 || config.batch_size == 0 {
            return Err(Error::invalid_input(format!(
                "embedder `{}`: dimension and batch_size must be positive",
                config.name
            )));
        }
        let endpoint = OpenAiConfig {
            name: config.name.clone(),
            flavor: config.flavor,
            base_url: config.base_url,
            api_key: config.api_key,
            model: config.model.clone(),
            headers: config.headers,
            timeouts: config.timeouts,
            context_window: None,
        };
        let endpoint = JsonEndpoint::new(JsonEndpointParts {
            headers: endpoint.header_map()?,
            url: endpoint.url("embeddings"),
            scrubber: KeyScrubber::new(endpoint.api_key.as_ref()),
            name: config.name,
            client,
            timeouts: StreamTimeouts::from(&config.timeouts),
            context_window: None,
            status_error: crate::chat::openai::status_error,
        });
        Ok(OpenAiEmbedder {
            endpoint,
            model: config.model,
            dimension: config.dimension,
            max_input_tokens: config.max_input_tokens,
            batch_size: config.batch_size,
        })
    }

    /// The name used in logs and errors.
    pub fn name(&self) -> &str {
        self.endpoint.name()
    }

    async fn embed_batch(&self, batch: &[String]) -> Result<Vec<Vec<f32>>> {
        let clock = self.endpoint.start_clock();
        let body = EmbeddingRequest { model: &self.model, input: batch };
        let response = self.endpoint.post(&body, &clock).await?;
        let bytes = self.endpoint.read_body(response, &clock).await?;
        let parsed: EmbeddingResponse =
            serde_json::from_slice(&bytes).map_err(|e| self.invalid(e.to_string()))?;
        self.in_input_order(parsed.data, batch.len())
    }

    /// Puts the vectors in input order (servers may answer out of order; `index` says
    /// which input each is for), checks each, and normalizes it.
    fn in_input_order(&self, data: Vec<EmbeddingData>, inputs: usize) -> Result<Vec<Vec<f32>>> {
        if data.len() != inputs {
            return Err(self.invalid(format!("{} vectors for {inputs} inputs", data.len())));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; inputs];
        for item in data {
            if item.embedding.len() != self.dimension {
                return Err(self.invalid(format!(
                    "a vector of dimension {} where {} was configured",
                    item.embedding.len(),
                    self.dimension
                )));
            }
            if item.embedding.iter().any(|v| !v.is_finite()) {
                return Err(self.invalid("a vector with a non-finite value".to_owned()));
            }
            match slots.get_mut(item.index) {
                Some(slot @ None) => *slot = Some(normalized(item.embedding)),
                Some(Some(_)) => return Err(self.invalid(format!("index {} twice", item.index))),
                None => return Err(self.invalid(format!("index {} out of range", item.index))),
            }
        }
        // Every slot is filled: `data.len() == inputs` and each index landed in a distinct slot.
        Ok(slots.into_iter().flatten().collect())
    }

    fn invalid(&self, what: String) -> Error {
        Error::Upstream {
            service: self.name().to_string(),
            status: None,
            retryable: false,
            message: format!("malformed embeddings response: {}", self.endpoint.scrubber().scrub(&what)),
            retry_after: None,
            source: None,
        }
    }
}

/// `v / |v|`; an all-zero vector has no direction and is returned as is.
fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
    v
}

impl std::fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("name", &self.name())
            .field("model", &self.model)
            .field("url", &self.endpoint.url())
            .finish()
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_input_tokens(&self) -> usize {
        self.max_input_tokens
    }

    fn preferred_batch_size(&self) -> usize {
        self.batch_size
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let span =
            tracing::info_span!("embed", service = %self.name(), model = %self.model, inputs = texts.len());
        async {
            let mut vectors = Vec::with_capacity(texts.len());
            for batch in texts.chunks(self.batch_size) {
                vectors.extend(self.embed_batch(batch).await?);
            }
            Ok(vectors)
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing_gives_unit_length_and_keeps_zero_vectors() {
        let v = normalized(vec![3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalized(vec![0.0, 0.0]), vec![0.0, 0.0]);
    }
}

//! The model registry's shape: models, their deployments, tiers and fallbacks.
//!
//! A model entry reads like the seed's registry (`provider`, `contextWindow`, `maxTokens`,
//! `streamingSupport`, `tier`; the seed's camelCase names are accepted as aliases) and adds
//! what a production gateway needs: several deployments per model, a load-balancing
//! strategy, a fallback chain and the tokenizer used to count its tokens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::ModelId;
use crate::secret::Secret;

/// Who serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Provider {
    /// OpenAI's API.
    #[serde(rename = "OpenAI", alias = "openai")]
    OpenAi,
    /// Azure OpenAI (deployment URLs, `api-key` header, `api-version`).
    #[serde(rename = "AzureOpenAI", alias = "azure_openai")]
    AzureOpenAi,
    /// Any server speaking OpenAI Chat Completions (vLLM, Ollama, llama.cpp, LM Studio).
    #[serde(rename = "OpenAICompatible", alias = "openai_compatible")]
    OpenAiCompatible,
    /// Anthropic's Messages API.
    #[serde(rename = "Anthropic", alias = "anthropic")]
    Anthropic,
    /// A model run in-process, offline.
    #[serde(rename = "Local", alias = "local")]
    Local,
}

/// The seed's cost/quality tiers; a request may name a tier instead of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tier {
    /// Most capable, most expensive.
    #[serde(alias = "premium")]
    Premium,
    /// The middle ground.
    #[serde(alias = "balanced")]
    Balanced,
    /// Cheapest; the local model lives here.
    #[serde(alias = "economical")]
    Economical,
}

impl Tier {
    /// Parses a tier name as a request would give it (`premium`, `Balanced`, …).
    pub fn parse(name: &str) -> Option<Tier> {
        match name.to_ascii_lowercase().as_str() {
            "premium" => Some(Tier::Premium),
            "balanced" => Some(Tier::Balanced),
            "economical" => Some(Tier::Economical),
            _ => None,
        }
    }
}

/// Which tokenizer counts a model's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// GPT-4o, GPT-4.1 and the o-series.
    O200kBase,
    /// GPT-4 and GPT-3.5.
    Cl100kBase,
    /// Models without a public tokenizer (Claude): a conservative over-estimate.
    Estimate,
    /// The local model's own tokenizer.
    Local,
}

/// How requests are spread over a model's deployments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalanceStrategy {
    /// Random, proportional to each deployment's weight.
    #[default]
    WeightedRandom,
    /// In turn.
    RoundRobin,
    /// The deployment with the fewest requests in flight.
    LeastInFlight,
    /// Lowest moving-average time to first token (power of two choices).
    LowestLatency,
    /// Most remaining rpm/tpm headroom.
    UsageBased,
}

/// One endpoint (or key) that serves a model. Its `Debug` output shows header names, never
/// their values (they often carry credentials), and never the API key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// A name unique within the model, used in metrics and status (`east-1`, `key-2`).
    pub name: String,
    /// Base URL of the API; `None` for the provider's public endpoint or a local model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The API key, usually written as `${ENV_VAR}` in the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// The provider's own model name at this deployment, when it differs from the registry id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_model: Option<String>,
    /// Azure's `api-version` query parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Extra HTTP headers sent with every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Relative share of traffic for weighted strategies.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Requests per minute this deployment accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens per minute this deployment accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u32>,
    /// How long to wait at each stage of a call.
    #[serde(default)]
    pub timeouts: DeploymentTimeouts,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(String::as_str).collect();
        f.debug_struct("Deployment")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key)
            .field("upstream_model", &self.upstream_model)
            .field("api_version", &self.api_version)
            .field("headers", &header_names)
            .field("weight", &self.weight)
            .field("rpm", &self.rpm)
            .field("tpm", &self.tpm)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// How long a call to one deployment may take at each stage. A stage that runs out fails
/// the call with a retryable `Timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentTimeouts {
    /// Establishing the connection. Default 5,000 ms.
    pub connect_ms: u64,
    /// From sending the request to the first token (or the whole answer, unstreamed).
    /// Default 60,000 ms.
    pub first_token_ms: u64,
    /// Between two chunks of a stream. Default 30,000 ms.
    pub idle_ms: u64,
    /// The whole call, first byte to last. Default 600,000 ms.
    pub total_ms: u64,
}

impl Default for DeploymentTimeouts {
    fn default() -> Self {
        DeploymentTimeouts { connect_ms: 5_000, first_token_ms: 60_000, idle_ms: 30_000, total_ms: 600_000 }
    }
}

fn default_weight() -> u32 {
    1
}

impl Deployment {
    /// A deployment with this name and every option at its default.
    pub fn named(name: impl Into<String>) -> Self {
        Deployment {
            name: name.into(),
            endpoint: None,
            api_key: None,
            upstream_model: None,
            api_version: None,
            headers: BTreeMap::new(),
            weight: default_weight(),
            rpm: None,
            tpm: None,
            timeouts: DeploymentTimeouts::default(),
        }
    }
}

/// One model in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Who serves it.
    pub provider: Provider,
    /// Tokens the model can attend to: prompt plus answer.
    #[serde(alias = "contextWindow")]
    pub context_window: u32,
    /// The most tokens one answer may have.
    #[serde(alias = "maxTokens")]
    pub max_tokens: u32,
    /// Whether the model can stream.
    #[serde(alias = "streamingSupport", default = "default_true")]
    pub streaming_support: bool,
    /// Its tier.
    pub tier: Tier,
    /// How to count its tokens; by default chosen from the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<TokenizerKind>,
    /// Where it is served. A model with no deployments listed gets one default deployment.
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    /// How to spread traffic over the deployments.
    #[serde(default)]
    pub strategy: LoadBalanceStrategy,
    /// Models to try, in order, when this one fails or cannot hold the prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<ModelId>,
}

fn default_true() -> bool {
    true
}

impl ModelSpec {
    /// The tokenizer to count with: the configured one, else the provider's usual one.
    pub fn tokenizer_kind(&self) -> TokenizerKind {
        self.tokenizer.unwrap_or(match self.provider {
            Provider::OpenAi | Provider::AzureOpenAi => TokenizerKind::O200kBase,
            Provider::OpenAiCompatible | Provider::Anthropic => TokenizerKind::Estimate,
            Provider::Local => TokenizerKind::Local,
        })
    }

    /// The deployments to route over: those configured, or one named `default`.
    pub fn effective_deployments(&self) -> Vec<Deployment> {
        if self.deployments.is_empty() {
            vec![Deployment::named("default")]
        } else {
            self.deployments.clone()
        }
    }

    /// Whether a prompt of `prompt_tokens` plus an answer of `max_output` fits.
    pub fn fits(&self, prompt_tokens: u64, max_output: u64) -> bool {
        prompt_tokens.saturating_add(max_output) <= u64::from(self.context_window)
    }
}

/// The whole registry: models by id plus the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRegistryConfig {
    /// The model used when a request names none and its agent names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<ModelId>,
    /// Every model, by id.
    #[serde(default)]
    pub models: BTreeMap<ModelId, ModelSpec>,
}

impl ModelRegistryConfig {
    /// The id of the local model in the embedded default registry.
    pub const LOCAL_MODEL: &'static str = "smollm2-135m-instruct";

    /// The registry used when the configuration lists no models: the local model
    /// (SmolLM2-135M-Instruct, in-process, offline) as the default, so a server started with
    /// no configuration at all answers chats. Its window is the 4,096 positions the
    /// in-process implementation attends to.
    pub fn embedded_default() -> Self {
        let id = ModelId::new(Self::LOCAL_MODEL);
        let spec = ModelSpec {
            provider: Provider::Local,
            context_window: 4_096,
            max_tokens: 1_024,
            streaming_support: true,
            tier: Tier::Economical,
            tokenizer: Some(TokenizerKind::Local),
            deployments: Vec::new(),
            strategy: LoadBalanceStrategy::default(),
            fallbacks: Vec::new(),
        };
        ModelRegistryConfig { default_model: Some(id.clone()), models: BTreeMap::from([(id, spec)]) }
    }

    /// Checks the registry is consistent: the default and every fallback exist, no model
    /// falls back to itself, deployment names are unique, weights and limits are positive,
    /// and `max_tokens` fits in the context window.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(default) = &self.default_model
            && !self.models.contains_key(default)
        {
            return Err(Error::invalid_input(format!(
                "models.default_model: `{default}` is not a configured model"
            )));
        }
        for (id, spec) in &self.models {
            let at = |field: &str| format!("models.models.{id}.{field}");
            if spec.context_window == 0 {
                return Err(Error::invalid_input(format!("{}: must be positive", at("context_window"))));
            }
            if spec.max_tokens == 0 || spec.max_tokens > spec.context_window {
                return Err(Error::invalid_input(format!(
                    "{}: must be between 1 and the context window ({})",
                    at("max_tokens"),
                    spec.context_window
                )));
            }
            for fallback in &spec.fallbacks {
                if fallback == id {
                    return Err(Error::invalid_input(format!(
                        "{}: a model cannot fall back to itself",
                        at("fallbacks")
                    )));
                }
                if !self.models.contains_key(fallback) {
                    return Err(Error::invalid_input(format!(
                        "{}: `{fallback}` is not a configured model",
                        at("fallbacks")
                    )));
                }
            }
            let mut names = std::collections::BTreeSet::new();
            for d in &spec.deployments {
                if !names.insert(d.name.as_str()) {
                    return Err(Error::invalid_input(format!(
                        "{}: deployment name `{}` is used twice",
                        at("deployments"),
                        d.name
                    )));
                }
                if d.weight == 0 {
                    return Err(Error::invalid_input(format!(
                        "{}: weight of `{}` must be positive",
                        at("deployments"),
                        d.name
                    )));
                }
                let t = &d.timeouts;
                if [t.connect_ms, t.first_token_ms, t.idle_ms, t.total_ms].contains(&0) {
                    return Err(Error::invalid_input(format!(
                        "{}: timeouts of `{}` must be positive",
                        at("deployments"),
                        d.name
                    )));
                }
                if d.rpm == Some(0) || d.tpm == Some(0) {
                    return Err(Error::invalid_input(format!(
                        "{}: rpm/tpm of `{}` must be positive when set",
                        at("deployments"),
                        d.name
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_registry_json_parses_as_is() {
        let seed = r#"{"models": {
            "gpt-4": {"provider": "OpenAI", "contextWindow": 8192, "maxTokens": 4096, "streamingSupport": true, "tier": "Premium"},
            "claude-3": {"provider": "Anthropic", "contextWindow": 100000, "maxTokens": 4096, "streamingSupport": true, "tier": "Balanced"},
            "llama-2": {"provider": "Local", "contextWindow": 4096, "maxTokens": 2048, "streamingSupport": true, "tier": "Economical"}
        }}"#;
        let reg: ModelRegistryConfig = serde_json::from_str(seed).unwrap();
        reg.validate().unwrap();
        let claude = &reg.models[&ModelId::new("claude-3")];
        assert_eq!(claude.provider, Provider::Anthropic);
        assert_eq!(claude.context_window, 100_000);
        assert_eq!(claude.tier, Tier::Balanced);
        assert_eq!(claude.tokenizer_kind(), TokenizerKind::Estimate);
        assert_eq!(claude.effective_deployments()[0].name, "default");
        assert!(reg.models[&ModelId::new("llama-2")].fits(2048, 2048));
        assert!(!reg.models[&ModelId::new("llama-2")].fits(2049, 2048));
    }

    #[test]
    fn registry_rejects_dangling_fallbacks_and_duplicate_deployments() {
        let mut reg: ModelRegistryConfig = serde_json::from_str(
            r#"{"default_model": "a", "models": {"a": {"provider": "Local", "context_window": 100, "max_tokens": 10, "tier": "Economical", "fallbacks": ["b"]}}}"#,
        )
        .unwrap();
        let err = reg.validate().unwrap_err().to_string();
        assert!(err.contains("models.models.a.fallbacks") && err.contains("`b`"), "{err}");

        let a = reg.models.get_mut(&ModelId::new("a")).unwrap();
        a.fallbacks.clear();
        a.deployments = vec![Deployment::named("x"), Deployment::named("x")];
        assert!(reg.validate().unwrap_err().to_string().contains("used twice"));
    }

    #[test]
    fn the_embedded_default_is_the_local_model() {
        let reg = ModelRegistryConfig::embedded_default();
        reg.validate().unwrap();
        let id = reg.default_model.clone().unwrap();
        assert_eq!(reg.models[&id].provider, Provider::Local);
    }

    #[test]
    fn tiers_parse_case_insensitively() {
        assert_eq!(Tier::parse("premium"), Some(Tier::Premium));
        assert_eq!(Tier::parse("Economical"), Some(Tier::Economical));
        assert_eq!(Tier::parse("gpt-4"), None);
    }
}

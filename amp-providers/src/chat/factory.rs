//! [`ProviderFactory`]: registry entries to clients, by provider.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use amp_core::{
    ChatModel, ChatModelFactory, Deployment, Error, ModelId, ModelSpec, Provider, Result, Tokenizer,
    TokenizerKind,
};

/// Builds the client of each deployment from its provider: OpenAI, Azure OpenAI and
/// compatible servers (feature `openai`), Anthropic (`anthropic`), and the in-process local
/// model (`local-llm`), which is loaded once, on its first request, from `model_dir`.
/// A provider whose feature is off is refused with `InvalidInput` naming the feature.
pub struct ProviderFactory {
    #[cfg_attr(not(feature = "local-llm"), allow(dead_code, reason = "only the local model reads it"))]
    model_dir: PathBuf,
    #[cfg(feature = "local-llm")]
    local: Mutex<Option<Arc<super::local::LazyLocalChat>>>,
    tokenizers: Mutex<HashMap<TokenizerKind, Arc<dyn Tokenizer>>>,
}

impl ProviderFactory {
    /// A factory whose local model lives in `model_dir` (as `scripts/fetch-models.sh` lays
    /// it out).
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        ProviderFactory {
            model_dir: model_dir.into(),
            #[cfg(feature = "local-llm")]
            local: Mutex::new(None),
            tokenizers: Mutex::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for ProviderFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderFactory").field("model_dir", &self.model_dir).finish_non_exhaustive()
    }
}

fn needs_feature(provider: Provider, feature: &str) -> Error {
    Error::invalid_input(format!("{provider:?} models need amp-providers built with the `{feature}` feature"))
}

impl ChatModelFactory for ProviderFactory {
    fn connect(
        &self,
        model: &ModelId,
        spec: &ModelSpec,
        deployment: &Deployment,
    ) -> Result<Arc<dyn ChatModel>> {
        match spec.provider {
            #[cfg(feature = "openai")]
            Provider::OpenAi | Provider::AzureOpenAi | Provider::OpenAiCompatible => {
                Ok(Arc::new(super::openai::OpenAiChat::from_deployment(model, spec, deployment)?))
            }
            #[cfg(feature = "anthropic")]
            Provider::Anthropic => {
                Ok(Arc::new(super::anthropic::AnthropicChat::from_deployment(model, spec, deployment)?))
            }
            #[cfg(feature = "local-llm")]
            Provider::Local => {
                let _ = (model, deployment);
                let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
                let lazy = local.get_or_insert_with(|| {
                    Arc::new(super::local::LazyLocalChat::new(
                        super::local::LocalModelOptions::from_model_dir(&self.model_dir),
                    ))
                });
                Ok(lazy.clone())
            }
            #[allow(unreachable_patterns, reason = "reachable only when a provider feature is off")]
            other => {
                let _ = (model, deployment);
                Err(needs_feature(
                    other,
                    match other {
                        Provider::Anthropic => "anthropic",
                        Provider::Local => "local-llm",
                        _ => "openai",
                    },
                ))
            }
        }
    }

    /// Tokenizers are built once per kind and shared. The local model's own tokenizer comes
    /// with its weights, which load on first use, so its prompts are counted with the
    /// conservative estimate; the model itself refuses a prompt that does not fit.
    fn tokenizer(&self, _model: &ModelId, spec: &ModelSpec) -> Result<Arc<dyn Tokenizer>> {
        let kind = match spec.tokenizer_kind() {
            TokenizerKind::Local => TokenizerKind::Estimate,
            other => other,
        };
        let mut cache = self.tokenizers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tokenizer) = cache.get(&kind) {
            return Ok(tokenizer.clone());
        }
        let tokenizer = crate::tokenize::tokenizer_for(kind)?;
        cache.insert(kind, tokenizer.clone());
        Ok(tokenizer)
    }
}

//! Where an OpenAI-compatible server lives and how to authenticate to it.

use std::collections::BTreeMap;

use amp_core::model::{Deployment, DeploymentTimeouts, ModelSpec, Provider};
use amp_core::{Error, ModelId, Result, Secret};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use crate::http::extra_headers;

/// OpenAI's public API.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The Azure OpenAI `api-version` used when a deployment names none (the current GA
/// version of the data-plane inference API).
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// Which dialect of the OpenAI API a server speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenAiFlavor {
    /// api.openai.com: `Authorization: Bearer`, `max_completion_tokens`.
    OpenAi,
    /// Azure OpenAI: the base URL is the deployment URL
    /// (`https://R.openai.azure.com/openai/deployments/D`), the key goes in `api-key`, and
    /// every request carries `?api-version=`.
    Azure {
        /// The `api-version` query parameter.
        api_version: String,
    },
    /// vLLM, Ollama, llama.cpp, LM Studio and other compatible servers: `Authorization:
    /// Bearer` only when a key is configured, and the older `max_tokens`.
    Compatible,
}

/// Everything an OpenAI-compatible client needs, independent of the config file.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The name used in logs, metrics and errors (e.g. `openai:gpt-4o/primary`); never a secret.
    pub name: String,
    /// The dialect.
    pub flavor: OpenAiFlavor,
    /// The API base URL, without a trailing `/chat/completions` (e.g. `http://localhost:11434/v1`).
    pub base_url: String,
    /// The API key; `None` for local servers that need none.
    pub api_key: Option<Secret>,
    /// The model name sent upstream.
    pub model: String,
    /// Extra headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// Limits for each stage of a call.
    pub timeouts: DeploymentTimeouts,
    /// The model's context window, reported when the server says a prompt is too long
    /// without saying the limit.
    pub context_window: Option<u32>,
}

impl OpenAiConfig {
    /// A config for OpenAI's public API with default timeouts and no extra headers.
    pub fn openai(name: impl Into<String>, model: impl Into<String>, api_key: Secret) -> Self {
        OpenAiConfig {
            name: name.into(),
            flavor: OpenAiFlavor::OpenAi,
            base_url: OPENAI_BASE_URL.to_owned(),
            api_key: Some(api_key),
            model: model.into(),
            headers: BTreeMap::new(),
            timeouts: DeploymentTimeouts::default(),
            context_window: None,
        }
    }

    /// A config for a compatible server at `base_url` (no key, default timeouts).
    pub fn compatible(
        name: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        OpenAiConfig {
            name: name.into(),
            flavor: OpenAiFlavor::Compatible,
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            headers: BTreeMap::new(),
            timeouts: DeploymentTimeouts::default(),
            context_window: None,
        }
    }

    /// The config of one deployment of a registry model served by OpenAI, Azure OpenAI or
    /// a compatible server.
    ///
    /// The upstream model is the deployment's `upstream_model`, else the registry id. OpenAI
    /// defaults to its public endpoint; Azure and compatible servers have none, so a
    /// deployment without `endpoint` is an [`Error::InvalidInput`] naming it.
    pub fn from_deployment(model_id: &ModelId, spec: &ModelSpec, deployment: &Deployment) -> Result<Self> {
        let (prefix, flavor) = match spec.provider {
            Provider::OpenAi => ("openai", OpenAiFlavor::OpenAi),
            Provider::AzureOpenAi => (
                "azure",
                OpenAiFlavor::Azure {
                    api_version: deployment
                        .api_version
                        .clone()
                        .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_owned()),
                },
            ),
            Provider::OpenAiCompatible => ("openai-compatible", OpenAiFlavor::Compatible),
            other => {
                return Err(Error::invalid_input(format!(
                    "model `{model_id}` is served by {other:?}, not an OpenAI-compatible API"
                )));
            }
        };
        let base_url = match (&deployment.endpoint, &flavor) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, OpenAiFlavor::OpenAi) => OPENAI_BASE_URL.to_owned(),
            (None, _) => {
                return Err(Error::invalid_input(format!(
                    "deployment `{}` of model `{model_id}` needs an `endpoint` ({prefix} has no public default)",
                    deployment.name
                )));
            }
        };
        Ok(OpenAiConfig {
            name: format!("{prefix}:{model_id}/{}", deployment.name),
            flavor,
            base_url,
            api_key: deployment.api_key.clone(),
            model: deployment.upstream_model.clone().unwrap_or_else(|| model_id.as_str().to_owned()),
            headers: deployment.headers.clone(),
            timeouts: deployment.timeouts,
            context_window: Some(spec.context_window),
        })
    }

    /// The URL of an API path (`chat/completions`, `embeddings`), with Azure's `api-version`.
    pub(crate) fn url(&self, path: &str) -> String {
        let base = self.base_url.trim_end_matches('/');
        match &self.flavor {
            OpenAiFlavor::Azure { api_version } => format!("{base}/{path}?api-version={api_version}"),
            _ => format!("{base}/{path}"),
        }
    }

    /// Authentication and extra headers, validated once at construction.
    pub(crate) fn header_map(&self) -> Result<HeaderMap> {
        let mut headers = extra_headers(&self.name, &self.headers)?;
        if let Some(key) = &self.api_key {
            let (name, value) = match self.flavor {
                OpenAiFlavor::Azure { .. } => (HeaderName::from_static("api-key"), key.expose().to_owned()),
                _ => (AUTHORIZATION, format!("Bearer {}", key.expose())),
            };
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                Error::invalid_input(format!("the API key of `{}` is not a valid header value", self.name))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(provider: &str) -> ModelSpec {
        serde_json::from_value(serde_json::json!({
            "provider": provider, "context_window": 128000, "max_tokens": 4096, "tier": "Premium"
        }))
        .unwrap()
    }

    #[test]
    fn openai_defaults_to_the_public_endpoint_and_the_registry_id() {
        let cfg = OpenAiConfig::from_deployment(
            &ModelId::new("gpt-4o"),
            &spec("OpenAI"),
            &Deployment::named("primary"),
        )
        .unwrap();
        assert_eq!(cfg.base_url, OPENAI_BASE_URL);
        assert_eq!(cfg.model, "gpt-4o");
        assert_eq!(cfg.name, "openai:gpt-4o/primary");
        assert_eq!(cfg.url("chat/completions"), "https://api.openai.com/v1/chat/completions");
    }

    #[test]
    fn azure_and_compatible_need_an_endpoint() {
        for provider in ["AzureOpenAI", "OpenAICompatible"] {
            let err = OpenAiConfig::from_deployment(
                &ModelId::new("m"),
                &spec(provider),
                &Deployment::named("east"),
            )
            .unwrap_err();
            assert_eq!(err.kind(), amp_core::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("`east`"), "{err}");
        }
    }

    #[test]
    fn azure_puts_the_version_in_the_query_and_the_key_in_api_key() {
        let mut d = Deployment::named("east");
        d.endpoint = Some("https://r.openai.azure.com/openai/deployments/gpt4o/".into());
        d.api_key = Some(Secret::new("az-key"));
        d.upstream_model = Some("gpt-4o-2024-08-06".into());
        let cfg = OpenAiConfig::from_deployment(&ModelId::new("gpt-4o"), &spec("AzureOpenAI"), &d).unwrap();
        assert_eq!(
            cfg.url("chat/completions"),
            format!(
                "https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version={DEFAULT_AZURE_API_VERSION}"
            )
        );
        assert_eq!(cfg.model, "gpt-4o-2024-08-06");
        let headers = cfg.header_map().unwrap();
        assert_eq!(headers["api-key"], "az-key");
        assert!(headers.get(AUTHORIZATION).is_none());
    }

    #[test]
    fn anthropic_models_are_refused() {
        assert!(
            OpenAiConfig::from_deployment(&ModelId::new("c"), &spec("Anthropic"), &Deployment::named("d"))
                .is_err()
        );
    }
}

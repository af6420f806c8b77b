//! Where the Anthropic API lives and how to call it.

use std::collections::BTreeMap;

use amp_core::model::{Deployment, DeploymentTimeouts, ModelSpec, Provider};
use amp_core::{Error, ModelId, Result, Secret};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::http::extra_headers;

/// Anthropic's public API (the client appends `/v1/messages`).
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

/// The `anthropic-version` header: the Messages API's stable wire version.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `max_tokens` sent when neither the request nor the model spec gives one. Anthropic
/// requires the field; 4,096 is the largest output every current Claude model accepts.
pub const DEFAULT_MAX_TOKENS: u32 = 4_096;

/// Everything an Anthropic client needs, independent of the config file.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// The name used in logs, metrics and errors (e.g. `anthropic:claude/primary`); never a secret.
    pub name: String,
    /// The API base URL, without `/v1/messages`.
    pub base_url: String,
    /// The API key (`x-api-key`); `None` only for proxies that add it themselves.
    pub api_key: Option<Secret>,
    /// The model name sent upstream.
    pub model: String,
    /// `max_tokens` when a request sets none.
    pub default_max_tokens: u32,
    /// Extra headers sent with every request (e.g. `anthropic-beta`).
    pub headers: BTreeMap<String, String>,
    /// Limits for each stage of a call.
    pub timeouts: DeploymentTimeouts,
    /// The model's context window, reported when the API says a prompt is too long
    /// without saying the limit.
    pub context_window: Option<u32>,
}

impl AnthropicConfig {
    /// A config for Anthropic's public API with default timeouts and no extra headers.
    pub fn new(name: impl Into<String>, model: impl Into<String>, api_key: Secret) -> Self {
        AnthropicConfig {
            name: name.into(),
            base_url: ANTHROPIC_BASE_URL.to_owned(),
            api_key: Some(api_key),
            model: model.into(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
            headers: BTreeMap::new(),
            timeouts: DeploymentTimeouts::default(),
            context_window: None,
        }
    }

    /// The config of one deployment of a registry model served by Anthropic. The upstream
    /// model is the deployment's `upstream_model`, else the registry id; `max_tokens`
    /// defaults to the spec's.
    pub fn from_deployment(model_id: &ModelId, spec: &ModelSpec, deployment: &Deployment) -> Result<Self> {
        if spec.provider != Provider::Anthropic {
            return Err(Error::invalid_input(format!(
                "model `{model_id}` is served by {:?}, not Anthropic",
                spec.provider
            )));
        }
        Ok(AnthropicConfig {
            name: format!("anthropic:{model_id}/{}", deployment.name),
            base_url: deployment.endpoint.clone().unwrap_or_else(|| ANTHROPIC_BASE_URL.to_owned()),
            api_key: deployment.api_key.clone(),
            model: deployment.upstream_model.clone().unwrap_or_else(|| model_id.as_str().to_owned()),
            default_max_tokens: spec.max_tokens,
            headers: deployment.headers.clone(),
            timeouts: deployment.timeouts,
            context_window: Some(spec.context_window),
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("{}/v1/messages", self.base_url.trim_end_matches('/'))
    }

    pub(crate) fn header_map(&self) -> Result<HeaderMap> {
        let mut headers = extra_headers(&self.name, &self.headers)?;
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &self.api_key {
            let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                Error::invalid_input(format!("the API key of `{}` is not a valid header value", self.name))
            })?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-api-key"), value);
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_defaults_to_the_public_endpoint_and_the_specs_max_tokens() {
        let spec: ModelSpec = serde_json::from_value(serde_json::json!({
            "provider": "Anthropic", "context_window": 200000, "max_tokens": 8192, "tier": "Balanced"
        }))
        .unwrap();
        let mut d = Deployment::named("primary");
        d.upstream_model = Some("claude-sonnet-4-20250514".into());
        let cfg = AnthropicConfig::from_deployment(&ModelId::new("claude"), &spec, &d).unwrap();
        assert_eq!(cfg.url(), "https://api.anthropic.com/v1/messages");
        assert_eq!(cfg.model, "claude-sonnet-4-20250514");
        assert_eq!(cfg.default_max_tokens, 8192);
        assert_eq!(cfg.name, "anthropic:claude/primary");
    }
}

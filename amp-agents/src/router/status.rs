//! What the Router shows operators: models, deployments, breakers and counters.

use std::collections::BTreeMap;

use amp_core::{LoadBalanceStrategy, ModelId, Provider, Tier};
use serde::Serialize;
use tokio::time::Instant;

use super::circuit_breaker::BreakerSnapshot;
use super::metrics::DeploymentMetricsSnapshot;
use super::table::{DeploymentSlot, ModelEntry};

/// A model as `GET /models/available` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// Its registry id.
    pub id: ModelId,
    /// Who serves it.
    pub provider: Provider,
    /// Prompt plus answer, in tokens.
    pub context_window: u32,
    /// The longest answer, in tokens.
    pub max_tokens: u32,
    /// Whether it streams.
    pub streaming_support: bool,
    /// Its tier.
    pub tier: Tier,
    /// Whether it is the configured default.
    pub is_default: bool,
    /// Whether at least one deployment would take a request now.
    pub available: bool,
    /// Models tried, in order, when it fails.
    pub fallbacks: Vec<ModelId>,
}

/// One deployment's live state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentStatus {
    /// Its name.
    pub name: String,
    /// Scheme, host and path of its endpoint (no credentials, no query); `None` for the
    /// provider's public endpoint or a local model.
    pub endpoint: Option<String>,
    /// Its current weight.
    pub weight: u32,
    /// Its requests-per-minute limit.
    pub rpm: Option<u32>,
    /// Its tokens-per-minute limit.
    pub tpm: Option<u32>,
    /// Requests in the last minute.
    pub requests_last_minute: u64,
    /// Tokens in the last minute (expected prompt tokens plus reported completion tokens).
    pub tokens_last_minute: u64,
    /// Its circuit breaker.
    pub breaker: BreakerSnapshot,
    /// Milliseconds it still sits out after a `Retry-After`.
    pub cooling_down_ms: u64,
    /// Calls running now.
    pub in_flight: u64,
    /// Moving average of time to first token, in milliseconds, once measured.
    pub ttft_ewma_ms: Option<f64>,
}

/// A model with its deployments, as `GET /models/{id}/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStatus {
    /// The model.
    #[serde(flatten)]
    pub model: ModelSummary,
    /// How it spreads traffic.
    pub strategy: LoadBalanceStrategy,
    /// Its deployments.
    pub deployments: Vec<DeploymentStatus>,
}

/// `GET /agents/router/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterStatus {
    /// The model used when a request names none.
    pub default_model: Option<ModelId>,
    /// Every model.
    pub models: Vec<ModelStatus>,
}

/// `GET /agents/router/metrics`: model → deployment → counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterMetrics {
    /// Per model, per deployment.
    pub models: BTreeMap<ModelId, BTreeMap<String, DeploymentMetricsSnapshot>>,
}

pub(crate) fn summary(entry: &ModelEntry, default: Option<&ModelId>, now: Instant) -> ModelSummary {
    let available =
        entry.deployments.iter().any(|d| d.breaker.is_available(now) && d.cooling_for(now).is_zero());
    ModelSummary {
        id: entry.id.clone(),
        provider: entry.spec.provider,
        context_window: entry.spec.context_window,
        max_tokens: entry.spec.max_tokens,
        streaming_support: entry.spec.streaming_support,
        tier: entry.spec.tier,
        is_default: default == Some(&entry.id),
        available,
        fallbacks: entry.spec.fallbacks.clone(),
    }
}

pub(crate) fn model_status(entry: &ModelEntry, default: Option<&ModelId>, now: Instant) -> ModelStatus {
    ModelStatus {
        model: summary(entry, default, now),
        strategy: entry.spec.strategy,
        deployments: entry.deployments.iter().map(|d| deployment_status(d, now)).collect(),
    }
}

fn deployment_status(slot: &DeploymentSlot, now: Instant) -> DeploymentStatus {
    let (requests, tokens) = slot.usage.last_minute(now);
    let ewma = slot.ttft_ewma_us.load(std::sync::atomic::Ordering::Relaxed);
    let breaker = slot.breaker.snapshot(now);
    DeploymentStatus {
        name: slot.name().to_owned(),
        endpoint: slot.config.endpoint.as_deref().map(public_endpoint),
        weight: slot.weight.load(std::sync::atomic::Ordering::Relaxed),
        rpm: slot.config.rpm,
        tpm: slot.config.tpm,
        requests_last_minute: requests,
        tokens_last_minute: tokens,
        breaker,
        cooling_down_ms: slot.cooling_for(now).as_millis() as u64,
        in_flight: slot.metrics.in_flight(),
        ttft_ewma_ms: (ewma > 0).then(|| ewma as f64 / 1_000.0),
    }
}

/// An endpoint without user-info or query string, which may carry credentials.
fn public_endpoint(endpoint: &str) -> String {
    let without_query = endpoint.split(['?', '#']).next().unwrap_or_default();
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            if path.is_empty() { format!("{scheme}://{host}") } else { format!("{scheme}://{host}/{path}") }
        }
        None => without_query.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_shown_without_credentials() {
        assert_eq!(
            public_endpoint("https://user:pw@llm.example.com/v1?key=s3cret"),
            "https://llm.example.com/v1"
        );
        assert_eq!(public_endpoint("http://127.0.0.1:8000"), "http://127.0.0.1:8000");
    }
}

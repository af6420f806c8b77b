//! The route table: every registry model with its deployments and their live state.
//! Readers take a snapshot (`Arc`) without locking; a change builds a new table that keeps
//! the state (breaker, counters, latency) of every deployment whose configuration is
//! unchanged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use amp_core::{
    BreakerConfig, ChatModel, ChatModelFactory, Deployment, ModelId, ModelRegistryConfig, ModelSpec, Result,
    Tier, Tokenizer,
};
use tokio::time::Instant;

use super::circuit_breaker::CircuitBreaker;
use super::metrics::DeploymentMetrics;
use super::usage::UsageWindow;

/// One deployment of one model, with everything the Router learns about it.
pub(crate) struct DeploymentSlot {
    pub(crate) config: Deployment,
    pub(crate) client: Arc<dyn ChatModel>,
    /// The weight in use; a registry change that alters only the weight updates it in place.
    pub(crate) weight: AtomicU32,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) usage: UsageWindow,
    /// Moving average of time to first token in microseconds; 0 until measured.
    pub(crate) ttft_ewma_us: AtomicU64,
    /// Skipped until this many milliseconds after `epoch`, because it sent `Retry-After`.
    cooling_until_ms: AtomicU64,
    epoch: Instant,
    pub(crate) metrics: DeploymentMetrics,
}

/// How much a new time-to-first-token sample moves the average.
const EWMA_ALPHA: f64 = 0.3;

impl DeploymentSlot {
    fn new(model: &ModelId, config: Deployment, client: Arc<dyn ChatModel>, breaker: BreakerConfig) -> Self {
        DeploymentSlot {
            weight: AtomicU32::new(config.weight),
            metrics: DeploymentMetrics::new(model, &config.name),
            config,
            client,
            breaker: CircuitBreaker::new(breaker),
            usage: UsageWindow::new(),
            ttft_ewma_us: AtomicU64::new(0),
            cooling_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Keeps the deployment out of rotation for `wait` (its `Retry-After`).
    pub(crate) fn cool_down(&self, now: Instant, wait: Duration) {
        let until = self.millis(now) + wait.as_millis() as u64;
        self.cooling_until_ms.fetch_max(until, Ordering::Relaxed);
    }

    /// How long it still cools down after a `Retry-After`.
    pub(crate) fn cooling_for(&self, now: Instant) -> Duration {
        Duration::from_millis(self.cooling_until_ms.load(Ordering::Relaxed).saturating_sub(self.millis(now)))
    }

    pub(crate) fn observe_first_token(&self, elapsed: Duration) {
        let sample = elapsed.as_micros().max(1) as f64;
        // Lost updates under a race only skip one sample of an average.
        let old = self.ttft_ewma_us.load(Ordering::Relaxed);
        let new = if old == 0 { sample } else { EWMA_ALPHA * sample + (1.0 - EWMA_ALPHA) * old as f64 };
        self.ttft_ewma_us.store(new as u64, Ordering::Relaxed);
        self.metrics.first_token(elapsed);
    }
}

/// A model in the route table.
pub(crate) struct ModelEntry {
    pub(crate) id: ModelId,
    pub(crate) spec: ModelSpec,
    pub(crate) next: AtomicUsize,
    pub(crate) deployments: Vec<Arc<DeploymentSlot>>,
    /// Built on first need: most prompts fit without counting, and a tokenizer's tables
    /// cost megabytes of memory.
    tokenizer: OnceLock<Arc<dyn Tokenizer>>,
    factory: Arc<dyn ChatModelFactory>,
}

impl ModelEntry {
    /// The model's tokenizer, built on first use.
    pub(crate) fn tokenizer(&self) -> Result<&Arc<dyn Tokenizer>> {
        if let Some(tokenizer) = self.tokenizer.get() {
            return Ok(tokenizer);
        }
        let built = self.factory.tokenizer(&self.id, &self.spec)?;
        Ok(self.tokenizer.get_or_init(|| built))
    }

    pub(crate) fn deployment(&self, name: &str) -> Option<&Arc<DeploymentSlot>> {
        self.deployments.iter().find(|d| d.name() == name)
    }
}

/// Every model, the default, and the registry they were built from.
pub(crate) struct RouteTable {
    pub(crate) registry: ModelRegistryConfig,
    pub(crate) models: BTreeMap<ModelId, Arc<ModelEntry>>,
}

impl RouteTable {
    /// Builds the table for `registry`, reusing the live state of `previous` for every
    /// deployment whose configuration did not change.
    pub(crate) fn build(
        registry: ModelRegistryConfig,
        factory: &Arc<dyn ChatModelFactory>,
        breaker: BreakerConfig,
        previous: Option<&RouteTable>,
    ) -> Result<RouteTable> {
        registry.validate()?;
        let mut models = BTreeMap::new();
        for (id, spec) in &registry.models {
            let old = previous.and_then(|p| p.models.get(id));
            let reusable = old.filter(|o| o.spec.provider == spec.provider);
            let mut deployments = Vec::new();
            for config in spec.effective_deployments() {
                let kept = reusable.and_then(|o| o.deployment(&config.name)).filter(|d| {
                    // Weight changes alone keep the slot (and its breaker) alive.
                    Deployment { weight: d.config.weight, ..config.clone() } == d.config
                });
                let slot = match kept {
                    Some(slot) => {
                        slot.weight.store(config.weight, Ordering::Relaxed);
                        slot.clone()
                    }
                    None => {
                        let client = factory.connect(id, spec, &config)?;
                        Arc::new(DeploymentSlot::new(id, config, client, breaker))
                    }
                };
                deployments.push(slot);
            }
            let tokenizer = OnceLock::new();
            if let Some(old) = reusable.filter(|o| o.spec.tokenizer_kind() == spec.tokenizer_kind())
                && let Some(built) = old.tokenizer.get()
            {
                let _ = tokenizer.set(built.clone());
            }
            models.insert(
                id.clone(),
                Arc::new(ModelEntry {
                    id: id.clone(),
                    spec: spec.clone(),
                    next: AtomicUsize::new(0),
                    deployments,
                    tokenizer,
                    factory: factory.clone(),
                }),
            );
        }
        Ok(RouteTable { registry, models })
    }

    /// The models of a tier, in id order.
    pub(crate) fn tier(&self, tier: Tier) -> impl Iterator<Item = &ModelId> {
        self.models.values().filter(move |m| m.spec.tier == tier).map(|m| &m.id)
    }
}

//! The Router agent: which model and which deployment answer a request, and what happens
//! when they fail.
//!
//! A request names a model, a tier, or nothing (then the agent's or the person's model,
//! else the configured default). The Router turns that into an ordered chain — the model,
//! then its fallbacks — skips models whose context window cannot hold the prompt plus the
//! answer, and for each model picks a deployment by its strategy among those whose breaker
//! is closed and whose rpm/tpm limits leave room. Failed calls are retried with backoff
//! (honouring `Retry-After`) and then fall back down the chain, within a bounded number of
//! calls and a bounded time. A stream commits to its deployment at its first token: errors
//! before it fail over invisibly, errors after it reach the caller in the stream.
//!
//! ```no_run
//! # async fn demo(factory: std::sync::Arc<dyn amp_core::ChatModelFactory>) -> amp_core::Result<()> {
//! use amp_agents::router::{Router, Target};
//! use amp_core::{ChatMessage, ChatRequest, ModelRegistryConfig, RouterConfig};
//!
//! let registry: ModelRegistryConfig = serde_json::from_str(r#"{"default_model": "gpt-4o", "models": {
//!     "gpt-4o": {"provider": "OpenAI", "context_window": 128000, "max_tokens": 16384, "tier": "Premium"}}}"#)
//!     .map_err(|e| amp_core::Error::invalid_input(e.to_string()))?;
//! let router = Router::new(registry, RouterConfig::default(), factory)?;
//! let request = ChatRequest::new(vec![ChatMessage::user("Hello")]);
//! let answer = router.complete(&Target::Named("premium".into()), &request).await?;
//! println!("{} answered via {}", answer.model, answer.deployment);
//! # Ok(()) }
//! ```

mod attempt;
mod balance;
pub mod circuit_breaker;
mod health;
mod in_flight;
pub mod metrics;
mod retry;
pub mod status;
mod stream;
mod table;
mod usage;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use amp_core::audit::{AuditAction, NewAuditEvent};
use amp_core::store::AuditLog;
use amp_core::{
    ChatModelFactory, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, LoadBalanceStrategy, ModelId,
    ModelRegistryConfig, ModelSpec, Result, RouterConfig, Tier,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use attempt::Attempt;
pub use circuit_breaker::{BreakerSnapshot, BreakerState};
pub use status::{DeploymentStatus, ModelStatus, ModelSummary, RouterMetrics, RouterStatus};

use crate::principal::Admin;
use in_flight::InFlight;
use table::{ModelEntry, RouteTable};

/// What a request asks to be answered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A registry model id, or a tier name (`premium`, `balanced`, `economical`).
    Named(String),
    /// An explicit chain, first choice first: an agent's model and its fallbacks.
    Chain(Vec<ModelId>),
    /// Nothing named: the person's preferred model if it exists, else the default.
    Default {
        /// The person's chosen default model (`POST /models/select`).
        preferred: Option<ModelId>,
    },
}

/// An answer with where it came from.
#[derive(Debug)]
pub struct Routed<T> {
    /// The answer (a response, or a stream).
    pub value: T,
    /// The model that answered.
    pub model: ModelId,
    /// Its deployment.
    pub deployment: String,
    /// The options that failed before it, in order.
    pub failed_attempts: Vec<Attempt>,
}

impl<T> Routed<T> {
    /// The same routing with its answer converted.
    fn try_map<U>(self, convert: impl FnOnce(T) -> Result<U>) -> Result<Routed<U>> {
        Ok(Routed {
            value: convert(self.value)?,
            model: self.model,
            deployment: self.deployment,
            failed_attempts: self.failed_attempts,
        })
    }
}

/// A change to how a model spreads traffic (`POST /agents/router/balance`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balance {
    /// The new strategy, if it changes.
    #[serde(default)]
    pub strategy: Option<LoadBalanceStrategy>,
    /// New weights by deployment name; deployments not named keep theirs.
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
}

/// The Router agent. Cheap to clone; clones share the registry and every deployment's state.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    table: RwLock<Arc<RouteTable>>,
    /// Serializes registry changes so none is lost between reading and replacing the table.
    changes: Mutex<()>,
    factory: Arc<dyn ChatModelFactory>,
    config: RouterConfig,
    audit: OnceLock<Arc<dyn AuditLog>>,
}

enum Mode {
    Complete,
    Stream,
}

enum Answer {
    Complete(ChatResponse),
    Stream(ChatStream),
}

impl Router {
    /// A Router over `registry`, building each deployment's client with `factory`.
    pub fn new(
        registry: ModelRegistryConfig,
        config: RouterConfig,
        factory: Arc<dyn ChatModelFactory>,
    ) -> Result<Self> {
        config.validate()?;
        let table = RouteTable::build(registry, &factory, config.breaker, None)?;
        Ok(Router {
            inner: Arc::new(Inner {
                table: RwLock::new(Arc::new(table)),
                changes: Mutex::new(()),
                factory,
                config,
                audit: OnceLock::new(),
            }),
        })
    }

    /// Records every registry change an administrator makes in this audit log.
    /// Set once; later calls keep the first log.
    pub fn with_audit(self, audit: Arc<dyn AuditLog>) -> Self {
        let _first_wins = self.inner.audit.set(audit);
        self
    }

    fn table(&self) -> Arc<RouteTable> {
        self.inner.table.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Answers in one piece, through the first option that succeeds.
    pub async fn complete(&self, target: &Target, request: &ChatRequest) -> Result<Routed<ChatResponse>> {
        self.dispatch(target, request, Mode::Complete).await?.try_map(|answer| match answer {
            Answer::Complete(value) => Ok(value),
            Answer::Stream(_) => Err(Error::bug("a completion was answered with a stream")),
        })
    }

    /// Answers as a stream. The stream is returned once its first token arrived; every
    /// failure before that has been retried or fallen back.
    pub async fn stream(&self, target: &Target, request: &ChatRequest) -> Result<Routed<ChatStream>> {
        self.dispatch(target, request, Mode::Stream).await?.try_map(|answer| match answer {
            Answer::Stream(value) => Ok(value),
            Answer::Complete(_) => Err(Error::bug("a stream was answered in one piece")),
        })
    }

    /// The ordered chain of models `target` resolves to. Unknown names are `NotFound`.
    pub fn resolve(&self, target: &Target) -> Result<Vec<ModelId>> {
        resolve(&self.table(), target)
    }

    /// The prompt tokens the roomiest model of `target`'s chain leaves beside the answer
    /// (`max_tokens`, else each model's own limit): what a caller can fit before routing.
    /// Unknown names are `NotFound`.
    pub fn prompt_room(&self, target: &Target, max_tokens: Option<u32>) -> Result<u64> {
        let table = self.table();
        let room = resolve(&table, target)?
            .iter()
            .filter_map(|id| table.models.get(id))
            .map(|entry| {
                u64::from(entry.spec.context_window).saturating_sub(answer_tokens(entry, max_tokens))
            })
            .max();
        Ok(room.unwrap_or(0))
    }

    /// Whether `name` is a registry model or a tier.
    pub fn knows(&self, name: &str) -> bool {
        Tier::parse(name).is_some() || self.has_model(&ModelId::new(name))
    }

    /// Whether `id` is a registry model.
    pub fn has_model(&self, id: &ModelId) -> bool {
        self.table().models.contains_key(id)
    }

    async fn dispatch(&self, target: &Target, request: &ChatRequest, mode: Mode) -> Result<Routed<Answer>> {
        request.validate()?;
        let table = self.table();
        let chain = resolve(&table, target)?;
        let retry = &self.inner.config.retry;
        let started = Instant::now();
        let budget = Duration::from_millis(retry.max_total_ms);
        let prompt = PromptSize::of(request);
        let mut failed = Vec::new();
        let mut calls = 0;
        // After a context-window failure, only models with a larger window are worth a try.
        let mut window_at_least: u32 = 0;

        'chain: for id in &chain {
            let Some(entry) = table.models.get(id) else {
                failed.push(Attempt::skipped(id, ErrorKind::NotFound, "not in the registry".to_owned()));
                continue;
            };
            if entry.spec.context_window <= window_at_least {
                failed.push(Attempt::skipped(
                    id,
                    ErrorKind::ContextWindowExceeded,
                    format!(
                        "its context window ({}) is not larger than one already too small",
                        entry.spec.context_window
                    ),
                ));
                continue;
            }
            let (fits, tokens) = prompt.fit(entry, request);
            if let Err(err) = fits {
                failed.push(Attempt { deployment: None, ..Attempt::failed(id, "", &err) });
                window_at_least = window_at_least.max(entry.spec.context_window);
                continue;
            }
            let mut tried = Vec::new();
            let mut failures = 0;
            loop {
                if calls >= retry.max_attempts || (calls > 0 && started.elapsed() >= budget) {
                    break 'chain;
                }
                let now = Instant::now();
                let (slot, permit) = match balance::choose(entry, now, tokens, &tried) {
                    Ok(choice) => choice,
                    Err(none) => {
                        let kind =
                            if none.rate_limited { ErrorKind::RateLimited } else { ErrorKind::Unavailable };
                        let mut attempt = Attempt::skipped(id, kind, none.reason);
                        attempt.retry_after = none.retry_after;
                        failed.push(attempt);
                        break;
                    }
                };
                calls += 1;
                slot.usage.record(now, 1, tokens);
                let call = InFlight::start(slot.clone(), permit);
                let outcome = match mode {
                    Mode::Complete => slot.client.complete(request).await.map(Answer::Complete),
                    Mode::Stream => match stream::open(&slot, request).await {
                        Ok((opening, rest)) => {
                            call.first_token();
                            let stream = stream::Tracked::new(opening, rest, call);
                            return Ok(Routed {
                                value: Answer::Stream(Box::pin(stream)),
                                model: id.clone(),
                                deployment: slot.name().to_owned(),
                                failed_attempts: failed,
                            });
                        }
                        Err(err) => Err(err),
                    },
                };
                let err = match outcome {
                    Ok(Answer::Complete(response)) => {
                        call.first_token();
                        call.succeeded(response.usage);
                        return Ok(Routed {
                            value: Answer::Complete(response),
                            model: id.clone(),
                            deployment: slot.name().to_owned(),
                            failed_attempts: failed,
                        });
                    }
                    Ok(Answer::Stream(_)) => {
                        return Err(Error::bug("a completion was answered with a stream"));
                    }
                    Err(err) => err,
                };
                tracing::debug!(model = %id, deployment = slot.name(), error = %err, "call failed");
                call.failed(&err);
                failed.push(Attempt::failed(id, slot.name(), &err));
                if err.kind() == ErrorKind::InvalidInput {
                    // Our own validation refused it: no model will take it.
                    return Err(err);
                }
                if let Error::ContextWindowExceeded { .. } = err {
                    window_at_least = window_at_least.max(entry.spec.context_window);
                    continue 'chain;
                }
                if Attempt::is_bad_request(&err) {
                    // Every deployment of this model would refuse it too.
                    continue 'chain;
                }
                failures += 1;
                if failures > retry.retries_per_model {
                    continue 'chain;
                }
                tried.push(slot.clone());
                let untried_left = entry.deployments.iter().any(|d| !tried.iter().any(|t| Arc::ptr_eq(t, d)));
                if err.is_retryable() && !untried_left {
                    let wait = retry::backoff(retry, failures - 1, err.retry_after());
                    if started.elapsed() + wait > budget {
                        continue 'chain;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(attempt::exhausted(&failed, started.elapsed()))
    }

    /// Every model, for `GET /models/available` and `GET /v1/models`.
    pub fn models(&self) -> Vec<ModelSummary> {
        let table = self.table();
        let now = Instant::now();
        let default = table.registry.default_model.as_ref();
        table.models.values().map(|e| status::summary(e, default, now)).collect()
    }

    /// One model with its deployments' live state.
    pub fn model_status(&self, id: &ModelId) -> Result<ModelStatus> {
        let table = self.table();
        let entry = table.models.get(id).ok_or_else(|| Error::not_found(format!("model `{id}`")))?;
        Ok(status::model_status(entry, table.registry.default_model.as_ref(), Instant::now()))
    }

    /// Every model and deployment, with breakers (`GET /agents/router/status`).
    pub fn status(&self) -> RouterStatus {
        let table = self.table();
        let now = Instant::now();
        let default = table.registry.default_model.as_ref();
        RouterStatus {
            default_model: table.registry.default_model.clone(),
            models: table.models.values().map(|e| status::model_status(e, default, now)).collect(),
        }
    }

    /// Counters and histograms per model and deployment (`GET /agents/router/metrics`).
    pub fn metrics(&self) -> RouterMetrics {
        let table = self.table();
        RouterMetrics {
            models: table
                .models
                .values()
                .map(|e| {
                    let per =
                        e.deployments.iter().map(|d| (d.name().to_owned(), d.metrics.snapshot())).collect();
                    (e.id.clone(), per)
                })
                .collect(),
        }
    }

    /// The registry as it stands, with runtime changes applied.
    pub fn registry(&self) -> ModelRegistryConfig {
        self.table().registry.clone()
    }

    /// Adds a model or replaces its entry, at once and without a restart. Deployments whose
    /// settings are unchanged keep their breaker, counters and latency history.
    pub async fn upsert_model(&self, admin: &Admin, id: ModelId, spec: ModelSpec) -> Result<()> {
        let detail = serde_json::json!({"model": id, "change": "upsert"});
        self.change(admin, detail, |registry| {
            registry.models.insert(id.clone(), spec);
            Ok(())
        })
        .await
    }

    /// Removes a model. Refused (`Conflict`) while it is the default or another model's
    /// fallback.
    pub async fn remove_model(&self, admin: &Admin, id: &ModelId) -> Result<()> {
        let detail = serde_json::json!({"model": id, "change": "remove"});
        self.change(admin, detail, |registry| {
            if registry.models.remove(id).is_none() {
                return Err(Error::not_found(format!("model `{id}`")));
            }
            if registry.default_model.as_ref() == Some(id) {
                return Err(Error::conflict(format!(
                    "`{id}` is the default model; choose another default first"
                )));
            }
            if let Some((other, _)) = registry.models.iter().find(|(_, s)| s.fallbacks.contains(id)) {
                return Err(Error::conflict(format!(
                    "`{id}` is a fallback of `{other}`; remove it there first"
                )));
            }
            Ok(())
        })
        .await
    }

    /// Makes `id` the default model.
    pub async fn set_default_model(&self, admin: &Admin, id: &ModelId) -> Result<()> {
        let detail = serde_json::json!({"model": id, "change": "default"});
        self.change(admin, detail, |registry| {
            if !registry.models.contains_key(id) {
                return Err(Error::not_found(format!("model `{id}`")));
            }
            registry.default_model = Some(id.clone());
            Ok(())
        })
        .await
    }

    /// Changes a model's strategy or its deployments' weights at runtime.
    pub async fn set_balance(&self, admin: &Admin, id: &ModelId, balance: Balance) -> Result<ModelStatus> {
        let detail = serde_json::json!({"model": id, "change": "balance", "balance": balance});
        self.change(admin, detail, |registry| {
            let spec =
                registry.models.get_mut(id).ok_or_else(|| Error::not_found(format!("model `{id}`")))?;
            if let Some(strategy) = balance.strategy {
                spec.strategy = strategy;
            }
            if !balance.weights.is_empty() && spec.deployments.is_empty() {
                spec.deployments = spec.effective_deployments();
            }
            for (name, weight) in &balance.weights {
                let deployment = spec.deployments.iter_mut().find(|d| &d.name == name).ok_or_else(|| {
                    Error::invalid_input(format!("model `{id}` has no deployment `{name}`"))
                })?;
                deployment.weight = *weight;
            }
            Ok(())
        })
        .await?;
        self.model_status(id)
    }

    async fn change(
        &self,
        admin: &Admin,
        detail: serde_json::Value,
        edit: impl FnOnce(&mut ModelRegistryConfig) -> Result<()>,
    ) -> Result<()> {
        {
            let _one_at_a_time = self.inner.changes.lock().unwrap_or_else(PoisonError::into_inner);
            let current = self.table();
            let mut registry = current.registry.clone();
            edit(&mut registry)?;
            let table =
                RouteTable::build(registry, &self.inner.factory, self.inner.config.breaker, Some(&current))?;
            *self.inner.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
        }
        if let Some(audit) = self.inner.audit.get() {
            let event = NewAuditEvent {
                actor: admin.user(),
                action: AuditAction::ConfigChanged,
                target: "router:registry".to_owned(),
                workspace: None,
                success: true,
                client_addr: None,
                detail,
            };
            if let Err(err) = audit.append(event).await {
                tracing::error!(error = %err, "writing the audit log failed");
            }
        }
        Ok(())
    }

    /// Starts the active health checks when `router.health_check.interval_secs` is set;
    /// they stop when every clone of the Router is dropped.
    pub fn spawn_health_checks(&self) -> Option<tokio::task::JoinHandle<()>> {
        let interval = Duration::from_secs(self.inner.config.health_check.interval_secs?);
        let timeout = Duration::from_millis(self.inner.config.health_check.timeout_ms);
        let weak = Arc::downgrade(&self.inner);
        Some(tokio::spawn(health::run(weak, interval, timeout)))
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = self.table();
        f.debug_struct("Router")
            .field("models", &table.models.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The chain a target stands for: the model (or a tier's models, or the chain given), then
/// the fallbacks of each, without repeats.
fn resolve(table: &RouteTable, target: &Target) -> Result<Vec<ModelId>> {
    let first: Vec<ModelId> = match target {
        Target::Named(name) => {
            let id = ModelId::new(name.as_str());
            if table.models.contains_key(&id) {
                vec![id]
            } else if let Some(tier) = Tier::parse(name) {
                let models: Vec<ModelId> = table.tier(tier).cloned().collect();
                if models.is_empty() {
                    return Err(Error::not_found(format!("a model in the {tier:?} tier")));
                }
                models
            } else {
                return Err(Error::not_found(format!("model `{name}`")));
            }
        }
        Target::Chain(chain) => {
            if let Some(missing) = chain.iter().find(|m| !table.models.contains_key(*m)) {
                return Err(Error::not_found(format!("model `{missing}`")));
            }
            chain.clone()
        }
        Target::Default { preferred } => {
            let chosen = preferred
                .iter()
                .chain(table.registry.default_model.iter())
                .find(|m| table.models.contains_key(*m))
                .ok_or_else(|| Error::not_found("a default model (none is configured)"))?;
            vec![chosen.clone()]
        }
    };
    let mut chain: Vec<ModelId> = Vec::with_capacity(first.len() + 2);
    for id in first.iter().chain(first.iter().flat_map(|m| table.models[m].spec.fallbacks.iter())) {
        if !chain.contains(id) {
            chain.push(id.clone());
        }
    }
    Ok(chain)
}

/// What is known about a prompt's size without a tokenizer.
struct PromptSize {
    bytes: u64,
    messages: u64,
}

/// The answer tokens a call to `entry` reserves: what the request asks for, at most the
/// model's own limit.
fn answer_tokens(entry: &ModelEntry, requested: Option<u32>) -> u64 {
    u64::from(requested.unwrap_or(entry.spec.max_tokens).min(entry.spec.max_tokens))
}

impl PromptSize {
    fn of(request: &ChatRequest) -> Self {
        PromptSize {
            bytes: request.messages.iter().map(|m| m.content.len() as u64).sum(),
            messages: request.messages.len() as u64,
        }
    }

    /// Whether the prompt plus the answer fit `entry`'s window, and the prompt tokens to
    /// count against its tpm limits (the answer's tokens are added when it is reported). A token is at least one byte in the byte-level BPE
    /// tokenizers providers use, and estimates add at most the same again, so a prompt whose
    /// doubled byte count fits needs no counting — the common case stays cheap.
    fn fit(&self, entry: &ModelEntry, request: &ChatRequest) -> (Result<()>, u64) {
        let answer = answer_tokens(entry, request.max_tokens);
        let bound = 2 * self.bytes + 8 * self.messages + 8;
        let window = u64::from(entry.spec.context_window);
        let limited = entry.deployments.iter().any(|d| d.config.tpm.is_some());
        if bound + answer <= window && !limited {
            return (Ok(()), self.bytes / 4 + 4 * self.messages);
        }
        let prompt = match entry.tokenizer() {
            Ok(tokenizer) => tokenizer.count_chat(&request.messages) as u64,
            Err(err) => {
                tracing::warn!(model = %entry.id, error = %err, "no tokenizer; counting with the byte bound");
                bound
            }
        };
        if prompt + answer > window {
            return (Err(Error::ContextWindowExceeded { needed: prompt + answer, limit: window }), 0);
        }
        (Ok(()), prompt)
    }
}

//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amp_agents::storage::Chunker;
use amp_agents::{
    AgentRegistry, Amp, Context, Conversations, DataSources, Files, Gateway, Router, SessionAgent, Storage,
};
use amp_core::data_source::{ConnectorKind, DataSourceSummary};
use amp_core::store::SessionStore;
use amp_core::{AmpConfig, Cache, Embedder, EventBus, ModelRegistryConfig, RateLimiter, Stores};
use amp_providers::chat::ProviderFactory;
use amp_providers::connector::SqlConnector;
use amp_providers::embed::fastembed::LocalEmbedderOptions;
use amp_providers::embed::lazy::LazyLocalEmbedder;
use amp_providers::jwks::HttpJwksSource;
use amp_providers::redis::{RedisCache, RedisConnection, RedisEventBus, RedisRateLimiter, RedisSessionStore};
use amp_providers::tokenize::huggingface::HuggingFaceTokenizer;
use amp_providers::{MemoryCache, MemoryEventBus, MemoryRateLimiter};
use metrics_exporter_prometheus::PrometheusHandle;

/// The state several server processes must share: in-process for one process, in Redis
/// when `redis.url` is set.
struct SharedState {
    cache: Arc<dyn Cache>,
    events: Arc<dyn EventBus>,
    limiter: Arc<dyn RateLimiter>,
    /// Replaces the SQL session store when set.
    sessions: Option<Arc<dyn SessionStore>>,
}

impl SharedState {
    async fn open(config: &AmpConfig) -> amp_core::Result<SharedState> {
        let Some(url) = &config.redis.url else {
            return Ok(SharedState {
                cache: Arc::new(MemoryCache::new(&config.cache)),
                events: Arc::new(MemoryEventBus::new(&config.events)),
                limiter: Arc::new(MemoryRateLimiter::new()),
                sessions: None,
            });
        };
        let redis = RedisConnection::open(url.expose(), &config.redis.namespace).await?;
        Ok(SharedState {
            cache: Arc::new(RedisCache::new(redis.clone())),
            events: Arc::new(
                RedisEventBus::new(redis.clone(), config.events.replay_window)
                    .with_subscriber_buffer(config.events.subscriber_buffer),
            ),
            limiter: Arc::new(RedisRateLimiter::new(redis.clone())),
            sessions: Some(Arc::new(RedisSessionStore::new(redis))),
        })
    }
}

/// The Storage and Context agents on the embedded search backends: the local embedder
/// (loaded on first use), its tokenizer for cutting passages, and an exact vector index
/// persisted under the data dir.
async fn search_agents(
    config: &AmpConfig,
    stores: &Stores,
    session: &SessionAgent,
    data_sources: DataSources,
) -> amp_core::Result<(Storage, Context)> {
    let options = LocalEmbedderOptions::new(&config.model_dir);
    let embedder: Arc<dyn Embedder> = Arc::new(LazyLocalEmbedder::new(options.clone()));
    let chunker = match HuggingFaceTokenizer::from_file(&options.tokenizer_path()) {
        Ok(tokenizer) => Chunker::new(Arc::new(tokenizer), embedder.max_input_tokens()),
        Err(err) => {
            // Uploads fail anyway until the embedder's files are there; if they are
            // fetched later, passages cut by characters still fit it.
            tracing::warn!(error = %err, "the embedder's tokenizer is missing; passages are cut by characters");
            Chunker::by_characters(embedder.max_input_tokens())
        }
    };
    let vectors = amp_providers::index::open_configured(config, embedder.dimension()).await?;
    let storage = Storage::new(
        stores.clone(),
        session.clone(),
        embedder.clone(),
        vectors.clone(),
        chunker,
        config.storage.max_file_bytes,
    )?;
    let context = Context::new(
        stores.clone(),
        session.clone(),
        embedder,
        vectors,
        data_sources,
        config.context.passages,
    );
    Ok((storage, context))
}

/// The DataSource agent over the configured sources (connections open on first use).
fn data_sources(config: &AmpConfig, stores: &Stores) -> amp_core::Result<DataSources> {
    let mut sources = Vec::new();
    for (name, spec) in &config.data_sources {
        let connector: Arc<dyn amp_core::Connector> = match spec.kind {
            ConnectorKind::Sql => Arc::new(SqlConnector::new(name, spec)?),
        };
        let summary = DataSourceSummary {
            id: spec.id,
            name: name.clone(),
            kind: spec.kind,
            description: spec.description.clone(),
        };
        sources.push((summary, connector));
    }
    Ok(DataSources::new(stores.clone(), sources))
}

/// The server's shared state: configuration, backends, agents and readiness.
///
/// Cloning is cheap (a few `Arc`s), which is what axum does once per request.
#[derive(Clone)]
pub struct AppState {
    config: Arc<AmpConfig>,
    cache: Arc<dyn Cache>,
    events: Arc<dyn EventBus>,
    stores: Stores,
    session: SessionAgent,
    conversations: Conversations,
    files: Files,
    agents: AgentRegistry,
    gateway: Gateway,
    data_sources: DataSources,
    storage: Storage,
    amp: Amp,
    metrics: Option<PrometheusHandle>,
    draining: Arc<AtomicBool>,
}

impl AppState {
    /// Opens the backends `config` names (by default the embedded ones: SQLite under the
    /// data dir, in-process cache, event bus and counters; with `redis.url`, the cache, event
    /// bus, counters and device sessions in Redis) and builds the agents on them.
    /// With `auth.oidc`, single sign-on fetches the provider's keys from its `jwks_url`.
    pub async fn open(config: AmpConfig) -> amp_core::Result<AppState> {
        // Configurations built in code skip the file loader's checks; run them here too.
        config.validate()?;
        let mut stores = amp_providers::sql::open_stores(&config).await?;
        let shared = SharedState::open(&config).await?;
        if let Some(sessions) = shared.sessions {
            stores.sessions = sessions;
        }
        let (cache, events) = (shared.cache, shared.events);
        let mut session =
            SessionAgent::new(stores.clone(), shared.limiter, events.clone(), config.auth.clone())?
                .with_cache(cache.clone());
        if let Some(oidc) = &config.auth.oidc {
            session = session.with_oidc(Arc::new(HttpJwksSource::new(oidc.jwks_url.clone())?));
        }
        let conversations = Conversations::new(stores.clone(), cache.clone(), session.clone());
        let registry = if config.models.models.is_empty() {
            ModelRegistryConfig::embedded_default()
        } else {
            config.models.clone()
        };
        // Installed before the Router registers its per-deployment metrics.
        let metrics = crate::metrics::prometheus();
        let router =
            Router::new(registry, config.router.clone(), Arc::new(ProviderFactory::new(&config.model_dir)))?
                .with_audit(stores.audit.clone());
        router.spawn_health_checks();
        let data_sources = data_sources(&config, &stores)?;
        let agents = AgentRegistry::new(stores.clone(), session.clone())
            .with_router(router.clone())
            .with_data_sources(data_sources.clone());
        let gateway = Gateway::new(router.clone(), agents.clone(), session.clone());
        let files = Files::new(stores.clone(), session.clone());
        let (storage, context) = search_agents(&config, &stores, &session, data_sources.clone()).await?;
        let amp = Amp::new(session.clone(), conversations.clone(), agents.clone(), context, router);
        Ok(AppState {
            config: Arc::new(config),
            cache,
            events,
            stores,
            session,
            conversations,
            files,
            agents,
            gateway,
            data_sources,
            storage,
            amp,
            metrics,
            draining: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &AmpConfig {
        &self.config
    }

    /// The shared cache.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The event bus for cross-device sync.
    pub fn events(&self) -> &Arc<dyn EventBus> {
        &self.events
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The Session agent: accounts, tokens, devices, API keys.
    pub fn session(&self) -> &SessionAgent {
        &self.session
    }

    /// The conversations agent.
    pub fn conversations(&self) -> &Conversations {
        &self.conversations
    }

    /// The files agent: who may read and share files.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The agent registry: user-defined agents.
    pub fn agents(&self) -> &AgentRegistry {
        &self.agents
    }

    /// The OpenAI-compatible gateway (and, through it, the Router).
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The DataSource agent: configured enterprise sources.
    pub fn data_sources(&self) -> &DataSources {
        &self.data_sources
    }

    /// The Storage agent: uploads and deletes.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The orchestrator of chat turns.
    pub fn amp(&self) -> &Amp {
        &self.amp
    }

    /// The Router agent.
    pub fn router(&self) -> &Router {
        self.gateway.router()
    }

    /// The Prometheus exposition of every metric, when this process owns the recorder.
    pub fn render_metrics(&self) -> Option<String> {
        self.metrics.as_ref().map(PrometheusHandle::render)
    }

    /// Whether the server accepts new work; `false` once draining has begun.
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire)
    }

    /// Marks the server as shutting down, so `/readyz` tells load balancers to stop
    /// sending new requests while in-flight ones finish. It cannot be undone.
    pub fn begin_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The backends are trait objects without `Debug`; the config redacts its secrets.
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

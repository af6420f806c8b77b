//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amp_agents::context::Retriever;
use amp_agents::storage::{Chunker, IngestWorkers, StorageBackends};
use amp_agents::{
    AgentRegistry, Amp, Context, Conversations, DataSources, Files, Gateway, Router, SessionAgent, Storage,
};
use amp_core::config::BlobStoreConfig;
use amp_core::data_source::{ConnectorKind, DataSourceSummary};
use amp_core::store::SessionStore;
use amp_core::{
    AmpConfig, BlobStore, Cache, Embedder, Error, EventBus, Extractor, JobQueue, ModelRegistryConfig,
    RateLimiter, Scanner, Stores,
};
use amp_providers::blob::{LocalBlobStore, S3BlobStore, S3Options};
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

/// The blob store `storage.blobs` names: a directory under the data dir (with upload URLs
/// this server signs and serves at `/blobs/…`), or S3.
async fn blob_store(
    config: &AmpConfig,
) -> amp_core::Result<(Arc<dyn BlobStore>, Option<Arc<LocalBlobStore>>)> {
    match &config.storage.blobs {
        BlobStoreConfig::Local { path, signing_key, public_url } => {
            let root = path.clone().unwrap_or_else(|| config.data_dir.join("blobs"));
            let key = match signing_key {
                Some(key) => key.expose().as_bytes().to_vec(),
                None => signing_key_in(&config.data_dir)?,
            };
            let base = public_url.clone().unwrap_or_else(|| format!("http://{}", config.server.listen));
            let local =
                Arc::new(LocalBlobStore::open(root, key, base.trim_end_matches('/').to_owned()).await?);
            Ok((local.clone(), Some(local)))
        }
        BlobStoreConfig::S3(s3) => {
            let options = S3Options {
                bucket: s3.bucket.clone(),
                region: s3.region.clone(),
                endpoint: s3.endpoint.clone(),
                force_path_style: s3.force_path_style,
                access_key: s3.access_key.clone(),
                secret_key: s3.secret_key.clone(),
                server_side_encryption: s3.server_side_encryption.clone(),
                kms_key_id: s3.kms_key_id.clone(),
                prefix: s3.prefix.clone(),
            };
            Ok((Arc::new(S3BlobStore::new(options)?), None))
        }
    }
}

/// The local blob store's signing key, made once and kept in the data dir (readable by the
/// server's user only), so URLs stay valid across restarts.
fn signing_key_in(data_dir: &std::path::Path) -> amp_core::Result<Vec<u8>> {
    let path = data_dir.join("blob-signing.key");
    match std::fs::read(&path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => {
            return Err(amp_core::Error::invalid_input(format!(
                "{} is shorter than 32 bytes",
                path.display()
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(amp_core::Error::internal(format!("reading {}", path.display()), err)),
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| amp_core::Error::internal("no randomness for the signing key", e))?;
    std::fs::create_dir_all(data_dir).map_err(|e| amp_core::Error::internal("creating the data dir", e))?;
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path)?.write_all(&key)
    };
    match write() {
        Ok(()) => Ok(key),
        // Another process made it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => signing_key_in(data_dir),
        Err(err) => Err(amp_core::Error::internal(format!("writing {}", path.display()), err)),
    }
}

/// This data dir's node id, made once and kept there.
fn node_id_in(data_dir: &std::path::Path) -> amp_core::Result<String> {
    let path = data_dir.join("node.id");
    if let Ok(id) = std::fs::read_to_string(&path)
        && let Ok(id) = id.trim().parse::<uuid::Uuid>()
    {
        return Ok(id.to_string());
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::create_dir_all(data_dir).map_err(|e| amp_core::Error::internal("creating the data dir", e))?;
    std::fs::write(&path, &id)
        .map_err(|e| amp_core::Error::internal(format!("writing {}", path.display()), e))?;
    Ok(id)
}

/// The Storage agent's backends besides search: blobs, the job queue, extraction, scanning.
async fn storage_backends(
    config: &AmpConfig,
) -> amp_core::Result<(
    Arc<dyn BlobStore>,
    Option<Arc<LocalBlobStore>>,
    Arc<dyn JobQueue>,
    Arc<dyn Extractor>,
    Option<Arc<dyn Scanner>>,
)> {
    let (blobs, local) = blob_store(config).await?;
    let queue = amp_providers::sql::open_job_queue(config).await?;
    let extractor: Arc<dyn Extractor> = Arc::new(crate::backends::extractor(&config.storage.extraction));
    let scanner = crate::backends::scanner(&config.storage.scanner)?;
    Ok((blobs, local, queue, extractor, scanner))
}

/// The Storage and Context agents on the configured search backends: the local embedder
/// (loaded on first use), its tokenizer for cutting passages, the vector index and the
/// keyword index (by default both persisted under the data dir).
async fn search_agents(
    config: &AmpConfig,
    stores: &Stores,
    session: &SessionAgent,
    data_sources: DataSources,
) -> amp_core::Result<(Storage, Context, Option<Arc<LocalBlobStore>>)> {
    let options =
        LocalEmbedderOptions::new(&config.model_dir).with_intra_threads(config.storage.embedder_threads());
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
    let keywords = amp_providers::index::open_configured_keywords(config).await?;
    let (blobs, local, queue, extractor, scanner) = storage_backends(config).await?;
    let backends = StorageBackends {
        blobs,
        queue,
        extractor,
        scanner,
        embedder: embedder.clone(),
        vectors: vectors.clone(),
        keywords: keywords.clone(),
        chunker,
    };
    let mut storage = Storage::new(
        stores.clone(),
        session.clone(),
        backends,
        &config.storage,
        config.data_dir.join("spool"),
    )?;
    if local.is_some() {
        // The bytes are on this node's disk: its jobs are its own, even on a shared queue.
        storage = storage.pin_jobs_to(&node_id_in(&config.data_dir)?);
    }
    let retriever = Retriever::new(embedder, vectors, keywords, config.context.retrieval.clone());
    let context =
        Context::new(stores.clone(), session.clone(), retriever, data_sources, config.context.passages);
    Ok((storage, context, local))
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
    local_blobs: Option<Arc<LocalBlobStore>>,
    /// Runs while any clone of the state lives.
    _workers: Arc<IngestWorkers>,
    amp: Amp,
    quotas: amp_agents::quotas::Quotas,
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
        let quotas = amp_agents::quotas::Quotas::new(shared.limiter.clone(), config.quotas.clone());
        let mut session =
            SessionAgent::new(stores.clone(), shared.limiter, events.clone(), config.auth.clone())?
                .with_cache(cache.clone())
                .with_mail(mail_sender(&config)?);
        if let Some(oidc) = &config.auth.oidc {
            session = session.with_oidc(Arc::new(HttpJwksSource::new(oidc.jwks_url.clone())?));
        }
        if let Some(saml) = &config.auth.saml {
            let metadata = std::fs::read_to_string(&saml.idp_metadata).map_err(|e| {
                Error::invalid_input(format!(
                    "config: auth.saml.idp_metadata: cannot read {}: {e}",
                    saml.idp_metadata.display()
                ))
            })?;
            session = session.with_saml(&metadata)?;
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
        let gateway =
            Gateway::new(router.clone(), agents.clone(), session.clone()).with_quotas(quotas.clone());
        let files = Files::new(stores.clone(), session.clone());
        let (storage, context, local_blobs) =
            search_agents(&config, &stores, &session, data_sources.clone()).await?;
        let storage = storage.with_quotas(quotas.clone());
        let workers = Arc::new(IngestWorkers::spawn(&storage, config.storage.workers));
        let backfill = storage.clone();
        tokio::spawn(async move {
            // Files made searchable before keyword search existed take part once written.
            if let Err(err) = backfill.backfill_keywords().await {
                tracing::error!(error = %err, "back-filling the keyword index failed; restart to try again");
            }
        });
        let amp = Amp::new(session.clone(), conversations.clone(), agents.clone(), context, router)
            .with_quotas(quotas.clone());
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
            local_blobs,
            _workers: workers,
            amp,
            quotas,
            metrics,
            draining: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The per-person and per-key quotas every chat, completion and upload counts against.
    pub fn quotas(&self) -> &amp_agents::quotas::Quotas {
        &self.quotas
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

    /// The local blob store, when blobs are kept on this machine: its signed URLs are
    /// served at `/blobs/…`.
    pub fn local_blobs(&self) -> Option<&Arc<LocalBlobStore>> {
        self.local_blobs.as_ref()
    }

    /// The blob store of the original bytes.
    pub fn blob_store(&self) -> Arc<dyn BlobStore> {
        self.storage.blob_store()
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

/// Where verification links go: `auth.mail_dir` as `.eml` files, else the log.
fn mail_sender(config: &AmpConfig) -> amp_core::Result<Arc<dyn amp_core::MailSender>> {
    Ok(match &config.auth.mail_dir {
        Some(dir) => Arc::new(amp_providers::mail::PickupDirMailSender::new(config.data_dir.join(dir))?),
        None => Arc::new(amp_providers::mail::LogMailSender),
    })
}

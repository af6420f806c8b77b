//! Configuration: one TOML file, `${ENV}` secrets, environment overrides, strict keys.
//!
//! Loading goes: read the file (if any) → replace `${NAME}` in string values with the
//! environment variable `NAME` (`$${` writes a literal `${`) → apply overrides from
//! variables named `AMP__SECTION__KEY` (double underscores separate keys; values are read
//! as TOML scalars or arrays when they parse as such, else as strings) → deserialize with
//! unknown keys rejected → validate. Every error names the key and the reason, and never
//! contains a value that came from the environment.
//!
//! ```
//! use amp_core::config::AmpConfig;
//! let env = |name: &str| (name == "OPENAI_KEY").then(|| "sk-test".to_owned());
//! let config = AmpConfig::from_toml_str(
//!     r#"
//!     [models]
//!     default_model = "gpt-4o"
//!     [models.models.gpt-4o]
//!     provider = "OpenAI"
//!     context_window = 128000
//!     max_tokens = 16384
//!     tier = "Premium"
//!     deployments = [{ name = "main", api_key = "${OPENAI_KEY}" }]
//!     "#,
//!     &env,
//!     std::iter::empty(),
//! )
//! .unwrap();
//! let key = config.models.models[&"gpt-4o".into()].deployments[0].api_key.as_ref().unwrap();
//! assert_eq!(key.expose(), "sk-test");
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::ModelRegistryConfig;
use crate::routing::RouterConfig;
use crate::secret::Secret;

mod auth;
mod storage;

pub use auth::{AuthConfig, OidcConfig, RegistrationMode, SamlConfig};

pub use storage::{
    BlobStoreConfig, ExtractionConfig, S3Config, ScannerConfig, ScannerUnavailable, StorageConfig,
};

/// The prefix of environment variables that override configuration keys.
pub const ENV_OVERRIDE_PREFIX: &str = "AMP__";

/// The whole configuration of an AMP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmpConfig {
    /// Where embedded backends keep their files (database, indexes, blobs).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where local model files live (the embedder, ONNX Runtime, the local chat model), as
    /// `scripts/fetch-models.sh` lays them out. Default `.amp-cache/models`.
    #[serde(default = "default_model_dir")]
    pub model_dir: PathBuf,
    /// HTTP server settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where users, conversations, files, sessions, agents and the audit log are stored.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Accounts, tokens, sessions and single sign-on.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Redis, for state shared by several server processes.
    #[serde(default)]
    pub redis: RedisConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The model registry. With no models listed, the server uses
    /// [`ModelRegistryConfig::embedded_default`]: the in-process local model as the default.
    #[serde(default)]
    pub models: ModelRegistryConfig,
    /// The in-process cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// The in-process event bus.
    #[serde(default)]
    pub events: EventBusConfig,
    /// How the Router handles failing deployments.
    #[serde(default)]
    pub router: RouterConfig,
    /// Uploads: limits and how files are made searchable.
    #[serde(default)]
    pub storage: StorageConfig,
    /// What a chat turn reads besides the question.
    #[serde(default)]
    pub context: ContextConfig,
    /// Per-person and per-API-key quotas.
    #[serde(default)]
    pub quotas: QuotaConfig,
    /// Enterprise data sources, by name.
    #[serde(default)]
    pub data_sources: std::collections::BTreeMap<String, crate::data_source::DataSourceSpec>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("amp-data")
}

fn default_model_dir() -> PathBuf {
    PathBuf::from(".amp-cache/models")
}

impl Default for AmpConfig {
    fn default() -> Self {
        AmpConfig {
            data_dir: default_data_dir(),
            model_dir: default_model_dir(),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            redis: RedisConfig::default(),
            log: LogConfig::default(),
            models: ModelRegistryConfig::default(),
            cache: CacheConfig::default(),
            events: EventBusConfig::default(),
            router: RouterConfig::default(),
            storage: StorageConfig::default(),
            context: ContextConfig::default(),
            quotas: QuotaConfig::default(),
            data_sources: std::collections::BTreeMap::new(),
        }
    }
}

/// Where passage vectors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VectorIndexKind {
    /// pgvector when `database.url` is PostgreSQL (so every server process on that
    /// database searches the same vectors), else `hnsw`.
    Auto,
    /// An exact index in one file under the data dir, for one process: every search
    /// reads every vector it may match.
    Flat,
    /// The flat index's file plus an HNSW graph beside it, for one process: searches whose
    /// filter may match fewer than 20,000 passages, or fewer than √(24,000 × passages)
    /// (about 155,000 of a million), are exact; larger ones go through the graph.
    Hnsw,
    /// pgvector in the PostgreSQL of `database.url` (the extension must be installed).
    Pgvector,
}

/// Where passage text is indexed for keyword search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordIndexKind {
    /// PostgreSQL full-text search when `database.url` is PostgreSQL (shared by every
    /// server process on that database), else `tantivy`.
    Auto,
    /// tantivy (BM25) in `keywords/` under the data dir, for one process.
    Tantivy,
    /// Full-text search in the PostgreSQL of `database.url`.
    Postgres,
}

/// Which retrievers find a turn's passages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrievalMode {
    /// Embedding similarity alone.
    Vector,
    /// Keyword search (BM25) alone.
    Keyword,
    /// Both, their rankings fused.
    #[default]
    Hybrid,
}

/// How passages are found and ranked (`[context.retrieval]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrievalConfig {
    /// The retrievers used when a request names none. Default `hybrid`.
    pub mode: RetrievalMode,
    /// Reciprocal rank fusion's constant: a passage at rank `r` of a retriever adds
    /// `weight / (rrf_k + r)`. Larger values flatten the difference between ranks.
    /// Default 60.
    pub rrf_k: f32,
    /// The vector retriever's weight in the fusion. Default 1.
    pub vector_weight: f32,
    /// The keyword retriever's weight in the fusion. Default 1.
    pub keyword_weight: f32,
    /// Passages each retriever proposes for the fusion (at least the number asked for).
    /// Default 100, at most 1,000.
    pub candidates: usize,
    /// Maximal marginal relevance: when set (0 to 1), results are re-ranked by
    /// `λ · relevance − (1 − λ) · similarity to a passage already chosen` (word overlap),
    /// which keeps near-identical passages from filling the results. Default off.
    pub mmr_lambda: Option<f32>,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        RetrievalConfig {
            mode: RetrievalMode::Hybrid,
            rrf_k: 60.0,
            vector_weight: 1.0,
            keyword_weight: 1.0,
            candidates: 100,
            mmr_lambda: None,
        }
    }
}

impl RetrievalConfig {
    /// Checks the values, naming the key under `prefix` (`context.retrieval`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let weight = |w: f32| w.is_finite() && (0.0..=100.0).contains(&w);
        if !self.rrf_k.is_finite() || !(0.0..=10_000.0).contains(&self.rrf_k) {
            return Err(Error::invalid_input(format!("config: {prefix}.rrf_k: 0 to 10000")));
        }
        if !weight(self.vector_weight) || !weight(self.keyword_weight) {
            return Err(Error::invalid_input(format!(
                "config: {prefix}.vector_weight and keyword_weight: 0 to 100"
            )));
        }
        if self.vector_weight == 0.0 && self.keyword_weight == 0.0 {
            return Err(Error::invalid_input(format!(
                "config: {prefix}: vector_weight and keyword_weight cannot both be 0"
            )));
        }
        if !(1..=1_000).contains(&self.candidates) {
            return Err(Error::invalid_input(format!("config: {prefix}.candidates: 1 to 1000")));
        }
        if let Some(l) = self.mmr_lambda
            && !(l.is_finite() && (0.0..=1.0).contains(&l))
        {
            return Err(Error::invalid_input(format!("config: {prefix}.mmr_lambda: 0 to 1")));
        }
        Ok(())
    }
}

/// How much one person — and, separately, each of their API keys — may use. Each limit
/// counts per person and per key; 0 turns that limit off. With `redis.url` the counters
/// are shared by every server process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Chat turns and `/v1` completions per minute. Default 60.
    pub chat_requests_per_minute: u32,
    /// Streamed answers open at once. Default 4.
    pub concurrent_streams: u32,
    /// Model tokens (prompt and completion) per day (a fixed 24-hour window). Default
    /// 2,000,000.
    pub tokens_per_day: u64,
    /// Uploads per hour. Default 60.
    pub uploads_per_hour: u32,
    /// Uploaded bytes per day. Default 2 GiB.
    pub upload_bytes_per_day: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            chat_requests_per_minute: 60,
            concurrent_streams: 4,
            tokens_per_day: 2_000_000,
            uploads_per_hour: 60,
            upload_bytes_per_day: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// What a chat turn reads besides the question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    /// Passages retrieved per turn and given to the model as numbered sources; 0 turns
    /// retrieval off. Default 5, at most 50.
    pub passages: usize,
    /// How they are found and ranked.
    pub retrieval: RetrievalConfig,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig { passages: 5, retrieval: RetrievalConfig::default() }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Seconds in-flight requests get to finish after a shutdown signal. Default 30.
    pub shutdown_grace_secs: u64,
    /// Largest JSON request body, in bytes. Default 2 MiB.
    pub max_body_bytes: u64,
    /// Addresses of reverse proxies in front of the server. A request from one of them is
    /// attributed to the client its `X-Forwarded-For` names (the right-most address that is
    /// not itself a trusted proxy), for login throttling and the audit log. Default none:
    /// the header is ignored, since anyone can send it.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Whether every signed-in person may read deployment hosts and per-deployment figures
    /// (`/models/{id}/status`, `/agents/router/status`, `/agents/router/metrics`). Default
    /// false: administrators only.
    pub public_router_status: bool,
    /// The bearer token a metrics scraper sends to read `/metrics`; write it as
    /// `${AMP_METRICS_TOKEN}`. Default none: only administrators read `/metrics`.
    pub metrics_token: Option<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_grace_secs: 30,
            max_body_bytes: 2 * 1024 * 1024,
            trusted_proxies: Vec::new(),
            public_router_status: false,
            metrics_token: None,
        }
    }
}

/// The database of the stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host/db` or `sqlite://path`. Default: the SQLite file
    /// `amp.db` under `data_dir`. Usually written as `${DATABASE_URL}`: it may hold a password.
    pub url: Option<Secret>,
    /// Most open connections. Default 10.
    pub max_connections: u32,
    /// Connections kept open when idle. Default 0.
    pub min_connections: u32,
    /// Seconds a query waits for a free connection before failing with 503. Default 5.
    pub acquire_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: None, max_connections: 10, min_connections: 0, acquire_timeout_secs: 5 }
    }
}

/// Redis, for state several server processes share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db`. When set, the response cache, the sync event bus,
    /// rate-limit counters and device sessions (with refresh tokens) live in Redis, so every
    /// process sees the same; without it they are in-process. Write it as `${REDIS_URL}`.
    pub url: Option<Secret>,
    /// Prefix of every key, so deployments can share one Redis. Default `amp:`.
    pub namespace: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig { url: None, namespace: "amp:".to_owned() }
    }
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter (`info`, `amp_server=debug,info`). Default `info`; `RUST_LOG` wins.
    pub filter: String,
    /// `text` for people, `json` for log pipelines. Default `text`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { filter: "info".to_owned(), format: LogFormat::Text }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The in-process cache's bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Most entries kept. Default 10,000.
    pub max_entries: usize,
    /// Most bytes of keys plus values kept. Default 64 MiB.
    pub max_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { max_entries: 10_000, max_bytes: 64 * 1024 * 1024 }
    }
}

/// The in-process event bus's bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventBusConfig {
    /// Events kept per topic for replay after a reconnect. Default 1,000.
    pub replay_window: usize,
    /// Events buffered per subscriber before it is cut off as too slow. Default 256.
    pub subscriber_buffer: usize,
    /// Bytes of payload one topic (one person's devices) retains; the oldest events go
    /// first. Default 1 MiB.
    pub max_topic_bytes: usize,
    /// Bytes of payload all topics retain together (in-process bus); the topics published
    /// to longest ago lose their retention first. Default 256 MiB.
    pub max_total_bytes: usize,
    /// Streams following one topic at once (one person's open sync streams). Default 16.
    pub max_subscribers_per_topic: usize,
    /// A topic nobody follows or publishes to for this long is forgotten (in-process bus).
    /// Default 3,600.
    pub idle_topic_secs: u64,
}

impl Default for EventBusConfig {
    fn default() -> Self {
        EventBusConfig {
            replay_window: 1000,
            subscriber_buffer: 256,
            max_topic_bytes: 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
            max_subscribers_per_topic: 16,
            idle_topic_secs: 3600,
        }
    }
}

impl AmpConfig {
    /// Loads the configuration the server starts with: the file at `path` if given (else
    /// the embedded defaults), the process environment for `${NAME}` and `AMP__…` overrides.
    pub fn load(path: Option<&Path>) -> Result<AmpConfig> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                Error::invalid_input(format!("cannot read config file {}: {e}", path.display()))
            })?,
            None => String::new(),
        };
        let env = |name: &str| std::env::var(name).ok();
        AmpConfig::from_toml_str(&text, &env, std::env::vars())
    }

    /// Builds a configuration from TOML text, a variable lookup for `${NAME}`, and the
    /// `(name, value)` pairs to scan for `AMP__…` overrides.
    pub fn from_toml_str(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: impl IntoIterator<Item = (String, String)>,
    ) -> Result<AmpConfig> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| Error::invalid_input(format!("config: {}", e.message())))?;
        let mut secrets = Vec::new();
        substitute_table(&mut table, "", env, &mut secrets)?;
        for (name, value) in overrides {
            if let Some(path) = name.strip_prefix(ENV_OVERRIDE_PREFIX) {
                secrets.push(value.clone());
                apply_override(&mut table, &name, path, &value)?;
            }
        }
        let config: AmpConfig = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let reason = redact(e.into_inner().message(), &secrets);
            Error::invalid_input(format!("config: {path}: {reason}"))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<()> {
        self.models.validate().map_err(|e| Error::invalid_input(format!("config: {e}")))?;
        self.router.validate().map_err(|e| Error::invalid_input(format!("config: {e}")))?;
        let positive = [
            ("cache.max_entries", self.cache.max_entries),
            ("cache.max_bytes", self.cache.max_bytes),
            ("events.replay_window", self.events.replay_window),
            ("events.subscriber_buffer", self.events.subscriber_buffer),
            ("server.max_body_bytes", self.server.max_body_bytes as usize),
            ("database.max_connections", self.database.max_connections as usize),
            ("database.acquire_timeout_secs", self.database.acquire_timeout_secs as usize),
            ("auth.access_token_ttl_secs", self.auth.access_token_ttl_secs as usize),
            ("auth.refresh_token_ttl_secs", self.auth.refresh_token_ttl_secs as usize),
            ("auth.session_idle_timeout_secs", self.auth.session_idle_timeout_secs as usize),
            ("auth.session_lifetime_secs", self.auth.session_lifetime_secs as usize),
            ("auth.max_sessions_per_user", self.auth.max_sessions_per_user as usize),
            ("auth.login_window_secs", self.auth.login_window_secs as usize),
            ("storage.max_file_bytes", self.storage.max_file_bytes as usize),
        ];
        self.storage.validate()?;
        for (key, value) in positive {
            if value == 0 {
                return Err(Error::invalid_input(format!("config: {key}: must be positive")));
            }
        }
        crate::data_source::validate(&self.data_sources)
            .map_err(|e| Error::invalid_input(format!("config: {e}")))?;
        self.auth.validate()?;
        if self.context.passages > 50 {
            return Err(Error::invalid_input("config: context.passages: at most 50"));
        }
        self.context.retrieval.validate("context.retrieval")?;
        if let Some(secret) = &self.auth.jwt_secret
            && secret.expose().len() < 32
        {
            return Err(Error::invalid_input("config: auth.jwt_secret: must be at least 32 bytes"));
        }
        Ok(())
    }
}

fn substitute_table(
    table: &mut toml::Table,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Result<()> {
    for (key, value) in table.iter_mut() {
        let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
        substitute_value(value, &path, env, secrets)?;
    }
    Ok(())
}

fn substitute_value(
    value: &mut toml::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Result<()> {
    match value {
        toml::Value::String(s) => *s = substitute_str(s, path, env, secrets)?,
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_value(item, &format!("{path}[{i}]"), env, secrets)?;
            }
        }
        toml::Value::Table(t) => substitute_table(t, path, env, secrets)?,
        _ => {}
    }
    Ok(())
}

/// Replaces `${NAME}` with the variable's value; `$${` stays a literal `${`.
fn substitute_str(
    s: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| {
                Error::invalid_input(format!("config: {path}: unterminated `${{` reference"))
            })?;
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::invalid_input(format!(
                    "config: {path}: `${{{name}}}` is not a valid environment variable name"
                )));
            }
            let value = env(name).ok_or_else(|| {
                Error::invalid_input(format!("config: {path}: environment variable {name} is not set"))
            })?;
            secrets.push(value.clone());
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn apply_override(table: &mut toml::Table, var: &str, path: &str, raw: &str) -> Result<()> {
    let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
    if keys.iter().any(String::is_empty) {
        return Err(Error::invalid_input(format!("config: {var}: empty key segment in override")));
    }
    let (last, parents) = keys.split_last().expect("split on a non-empty str yields at least one key");
    let mut current = table;
    for key in parents {
        let entry = current.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| {
            Error::invalid_input(format!("config: {var}: `{key}` is not a section, so it has no keys"))
        })?;
    }
    current.insert(last.clone(), parse_override_value(raw));
    Ok(())
}

fn parse_override_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ModelId;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(text: &str) -> Result<AmpConfig> {
        AmpConfig::from_toml_str(text, &no_env, std::iter::empty())
    }

    #[test]
    fn no_file_gives_the_embedded_defaults() {
        let config = load("").unwrap();
        assert_eq!(config, AmpConfig::default());
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn unknown_keys_are_rejected_naming_the_key() {
        let err = load("[server]\nlisten = \"127.0.0.1:1\"\nlistn = 3\n").unwrap_err().to_string();
        assert!(err.contains("server") && err.contains("listn"), "{err}");
        let err = load("[cache]\nmax_entries = \"many\"\n").unwrap_err().to_string();
        assert!(err.contains("cache.max_entries"), "{err}");
    }

    #[test]
    fn invalid_values_are_rejected_naming_the_key() {
        let err = load("[events]\nreplay_window = 0\n").unwrap_err().to_string();
        assert!(err.contains("events.replay_window") && err.contains("positive"), "{err}");
        let err = load("[server]\nlisten = \"nowhere\"\n").unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
        let err = load("[models]\ndefault_model = \"ghost\"\n").unwrap_err().to_string();
        assert!(err.contains("default_model") && err.contains("ghost"), "{err}");
        let err = load("this is not toml").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn env_references_are_substituted_and_missing_ones_named() {
        let text = r#"
            [models.models.m]
            provider = "OpenAICompatible"
            context_window = 4096
            max_tokens = 512
            tier = "Balanced"
            deployments = [{ name = "a", endpoint = "http://${HOST}:8000/v1", api_key = "${KEY}", headers = { x = "$${literal}" } }]
        "#;
        let env = |n: &str| match n {
            "HOST" => Some("10.0.0.5".to_owned()),
            "KEY" => Some("sk-secret".to_owned()),
            _ => None,
        };
        let config = AmpConfig::from_toml_str(text, &env, std::iter::empty()).unwrap();
        let d = &config.models.models[&ModelId::new("m")].deployments[0];
        assert_eq!(d.endpoint.as_deref(), Some("http://10.0.0.5:8000/v1"));
        assert_eq!(d.api_key.as_ref().unwrap().expose(), "sk-secret");
        assert_eq!(d.headers["x"], "${literal}");
        assert!(!format!("{config:?}").contains("sk-secret"));

        let err = load(text).unwrap_err().to_string();
        assert!(err.contains("models.models.m.deployments[0].api_key") && err.contains("KEY"), "{err}");
    }

    #[test]
    fn secrets_from_the_environment_never_appear_in_errors() {
        let env = |_: &str| Some("sk-very-secret".to_owned());
        let err = AmpConfig::from_toml_str("[cache]\nmax_entries = \"${K}\"\n", &env, std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cache.max_entries"), "{err}");
        assert!(!err.contains("sk-very-secret"), "{err}");
    }

    #[test]
    fn environment_overrides_win_over_the_file() {
        let overrides = vec![
            ("AMP__SERVER__LISTEN".to_owned(), "0.0.0.0:9000".to_owned()),
            ("AMP__CACHE__MAX_ENTRIES".to_owned(), "42".to_owned()),
            ("AMP__LOG__FORMAT".to_owned(), "json".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let config = AmpConfig::from_toml_str("[cache]\nmax_entries = 7\n", &no_env, overrides).unwrap();
        assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.cache.max_entries, 42);
        assert_eq!(config.log.format, LogFormat::Json);

        let typo = vec![("AMP__SERVER__LISTN".to_owned(), "1".to_owned())];
        let err = AmpConfig::from_toml_str("", &no_env, typo).unwrap_err().to_string();
        assert!(err.contains("listn"), "{err}");
    }
}

//! Every store trait on SQL: SQLite (the embedded default: one WAL-mode file under the data
//! dir) and PostgreSQL (for several server processes sharing one database).
//!
//! Both run the same queries: times are stored as UTC milliseconds, enums as their names,
//! lists and nested records as JSON, and placeholders are written `$1, $2, …`, which both
//! databases bind by number. Only the schema (`migrations/sqlite`, `migrations/postgres`)
//! differs. Migrations run when a store is opened.
//!
//! ```no_run
//! # async fn run() -> amp_core::Result<()> {
//! use std::sync::Arc;
//! use amp_providers::sql::{PoolOptions, SqliteStores};
//! let stores = Arc::new(SqliteStores::open("amp-data/amp.db".as_ref(), &PoolOptions::default()).await?).stores();
//! let user = stores.users.find_user_by_email("ada@example.com").await?;
//! # Ok(()) }
//! ```

#[macro_use]
mod agents;
#[macro_use]
mod audit;
#[macro_use]
mod conversations;
pub(crate) mod error;
#[macro_use]
mod files;
mod jobs;
mod rows;
#[macro_use]
mod sessions;
#[macro_use]
mod users;
#[macro_use]
mod workspaces;

#[cfg(feature = "postgres")]
pub use jobs::PostgresJobQueue;
#[cfg(feature = "sqlite")]
pub use jobs::SqliteJobQueue;
pub use jobs::open_job_queue;

use std::sync::Arc;
use std::time::Duration;

use amp_core::config::DatabaseConfig;
use amp_core::store::{
    AgentStore, AuditLog, ConversationStore, CredentialStore, FileStore, SessionStore, UserStore,
    WorkspaceStore,
};
use amp_core::{AgentVisibility, Error, Result, Stores};
use chrono::{DateTime, Utc};

/// Connection-pool sizing, shared by both databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most open connections.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a query waits for a free connection before failing with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions::from(&DatabaseConfig::default())
    }
}

impl From<&DatabaseConfig> for PoolOptions {
    fn from(c: &DatabaseConfig) -> Self {
        PoolOptions {
            max_connections: c.max_connections,
            min_connections: c.min_connections,
            acquire_timeout: Duration::from_secs(c.acquire_timeout_secs),
        }
    }
}

/// The current time at the millisecond precision the stores keep.
pub(crate) fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid_input(format!("{what} {v} is too large")))
}

pub(crate) fn visible_workspace(v: &AgentVisibility) -> Option<uuid::Uuid> {
    match v {
        AgentVisibility::Private => None,
        AgentVisibility::Workspace(w) => Some(w.as_uuid()),
    }
}

/// Every store trait served by one backend value.
fn bundle<T>(backend: Arc<T>) -> Stores
where
    T: UserStore
        + CredentialStore
        + SessionStore
        + ConversationStore
        + FileStore
        + WorkspaceStore
        + AgentStore
        + AuditLog
        + 'static,
{
    Stores {
        users: backend.clone(),
        credentials: backend.clone(),
        sessions: backend.clone(),
        conversations: backend.clone(),
        files: backend.clone(),
        workspaces: backend.clone(),
        agents: backend.clone(),
        audit: backend,
    }
}

fn unavailable(what: &str, err: impl Into<amp_core::BoxError>) -> Error {
    let err = err.into();
    tracing::error!(error = %err, "{what}");
    Error::Unavailable { message: what.to_owned(), retry_after: None }
}

/// A PostgreSQL pool sized by `options`; a failure is `Unavailable` saying `what` (the
/// cause, which may name the host, goes to the log only).
#[cfg(feature = "postgres")]
pub(crate) async fn connect_postgres(url: &str, options: &PoolOptions, what: &str) -> Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(options.min_connections)
        .acquire_timeout(options.acquire_timeout)
        .connect(url)
        .await
        .map_err(|e| unavailable(what, e))
}

/// Opens the stores the configuration names: PostgreSQL for a `postgres://` URL, else SQLite
/// at the URL's path (default `amp.db` under the data dir).
pub async fn open_stores(config: &amp_core::AmpConfig) -> Result<Stores> {
    let options = PoolOptions::from(&config.database);
    match config.database.url.as_ref().map(|u| u.expose()) {
        #[cfg(feature = "postgres")]
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PostgresStores::connect(url, &options).await?).stores())
        }
        #[cfg(feature = "sqlite")]
        Some(url) if url.starts_with("sqlite://") => {
            let path = std::path::Path::new(url.trim_start_matches("sqlite://"));
            Ok(Arc::new(SqliteStores::open(path, &options).await?).stores())
        }
        Some(_) => Err(Error::invalid_input(
            "database.url must start with sqlite:// or postgres:// (and the matching feature must be enabled)",
        )),
        #[cfg(feature = "sqlite")]
        None => Ok(Arc::new(SqliteStores::open(&config.data_dir.join("amp.db"), &options).await?).stores()),
        #[cfg(not(feature = "sqlite"))]
        None => Err(Error::invalid_input("database.url is required when the sqlite feature is off")),
    }
}

/// All stores on one SQLite file.
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone)]
pub struct SqliteStores {
    pool: sqlx::SqlitePool,
}

#[cfg(feature = "sqlite")]
impl SqliteStores {
    /// Opens (creating if needed) the database file at `path` in WAL mode with foreign keys
    /// enforced, and applies pending migrations.
    pub async fn open(path: &std::path::Path, options: &PoolOptions) -> Result<Self> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::internal(format!("cannot create {}", dir.display()), e))?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL sync loses at most the last transactions on power loss, never
            // consistency; FULL would cost an fsync per write.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.acquire_timeout.max(Duration::from_secs(5)));
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| unavailable(&format!("cannot open the database at {}", path.display()), e))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| Error::internal("database migration failed", e))?;
        Ok(SqliteStores { pool })
    }

    /// The bundle of every store, all on this database.
    pub fn stores(self: Arc<Self>) -> Stores {
        bundle(self)
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// All stores on one PostgreSQL database.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone)]
pub struct PostgresStores {
    pool: sqlx::PgPool,
}

/// Whether the database already has every one of `migrator`'s migrations, unchanged.
#[cfg(feature = "postgres")]
async fn schema_is_current(pool: &sqlx::PgPool, migrator: &sqlx::migrate::Migrator) -> bool {
    let applied: Vec<(i64, Vec<u8>)> =
        match sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            // No migrations table yet (a new database), or it cannot be read.
            Err(_) => return false,
        };
    migrator.iter().filter(|m| m.migration_type.is_up_migration()).all(|m| {
        applied.iter().any(|(version, checksum)| *version == m.version && checksum.as_slice() == &*m.checksum)
    })
}

#[cfg(feature = "postgres")]
impl PostgresStores {
    /// Connects to `url` and applies pending migrations (several processes may start at
    /// once: migrations take an advisory lock).
    ///
    /// When every migration is already applied, nothing is created or changed, so AMP can
    /// run as a role that owns nothing and may only insert into the audit log
    /// (`scripts/postgres-app-role.sql`), once the tables' owner has migrated the database.
    pub async fn connect(url: &str, options: &PoolOptions) -> Result<Self> {
        let pool = connect_postgres(url, options, "cannot connect to PostgreSQL").await?;
        let migrator = sqlx::migrate!("./migrations/postgres");
        if !schema_is_current(&pool, &migrator).await {
            migrator.run(&pool).await.map_err(|e| Error::internal("database migration failed", e))?;
        }
        Ok(PostgresStores { pool })
    }

    /// The bundle of every store, all on this database.
    pub fn stores(self: Arc<Self>) -> Stores {
        bundle(self)
    }

    /// The connection pool, for backends that live in the same database (keyword search).
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

macro_rules! impl_all_stores {
    ($stores:ty, $db:ty) => {
        impl_user_stores!($stores);
        impl_session_store!($stores);
        impl_conversation_store!($stores);
        impl_file_store!($stores);
        impl_workspace_store!($stores, $db);
        impl_agent_store!($stores);
        impl_audit_log!($stores);
    };
}

#[cfg(feature = "sqlite")]
impl_all_stores!(SqliteStores, sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_all_stores!(PostgresStores, sqlx::Postgres);

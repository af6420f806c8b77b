//! A SQL database (PostgreSQL or SQLite) as a data source, read with the operator's SQL.
//!
//! The columns every query returns are fixed (see [`amp_core::data_source::DataSourceSpec`]):
//! `id`, `title`, `text`, `url`, `allowed` (comma-separated emails, or `*`) and
//! `updated_at` (Unix seconds). The operator casts to them in the query, so any schema works.

use std::time::Duration;

use amp_core::data_source::DataSourceSpec;
use amp_core::{Connector, Error, Result, SourceRecord, SyncBatch};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, Row, SqlitePool};

/// Most connections a source keeps open.
const MAX_CONNECTIONS: u32 = 4;

/// How long a query waits for a connection before the source counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Records asked for per sync page.
const SYNC_PAGE: i64 = 500;

enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A SQL data source. Connections are opened on first use, so a source that is down at
/// start does not stop the server; its queries fail as `Unavailable` until it is back.
pub struct SqlConnector {
    name: String,
    pool: Pool,
    query: String,
    sync_query: Option<String>,
}

impl SqlConnector {
    /// A connector for the source configured as `name`. Only the URL's scheme is checked
    /// here (`postgres://`, `postgresql://`, `sqlite:`); a SQLite file is opened read-only.
    pub fn new(name: &str, spec: &DataSourceSpec) -> Result<Self> {
        let url = spec.url.expose();
        let invalid = |why: &str| Error::invalid_input(format!("data_sources.{name}.url: {why}"));
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = url.parse().map_err(|_| invalid("not a valid PostgreSQL URL"))?;
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy_with(options),
            )
        } else if url.starts_with("sqlite:") {
            let options: SqliteConnectOptions = url.parse().map_err(|_| invalid("not a valid SQLite URL"))?;
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy_with(options.read_only(true)),
            )
        } else {
            return Err(invalid("must start with postgres://, postgresql:// or sqlite:"));
        };
        Ok(SqlConnector {
            name: name.to_owned(),
            pool,
            query: spec.query.clone(),
            sync_query: spec.sync_query.clone(),
        })
    }

    /// Runs `sql` with `first` as `$1` and `number` as `$2`.
    async fn run(&self, sql: &str, first: Param<'_>, number: i64) -> Result<Vec<SourceRecord>> {
        // The operator's own SQL, from the configuration; values are bound, never spliced.
        let sql = sqlx::AssertSqlSafe(sql);
        let result = match &self.pool {
            Pool::Postgres(pool) => {
                let query = first.bind_to(sqlx::query(sql)).bind(number);
                query.fetch_all(pool).await.map(|rows| rows.iter().map(record_pg).collect::<Vec<_>>())
            }
            Pool::Sqlite(pool) => {
                let query = first.bind_to(sqlx::query(sql)).bind(number);
                query.fetch_all(pool).await.map(|rows| rows.iter().map(record_sqlite).collect::<Vec<_>>())
            }
        };
        let records = result.map_err(|e| self.error(e))?;
        records.into_iter().collect::<std::result::Result<Vec<_>, sqlx::Error>>().map_err(|e| self.error(e))
    }

    /// What people may see of a database failure: which source, and whether to retry. The
    /// database's own message goes to the log only (it may quote data or the schema).
    fn error(&self, err: sqlx::Error) -> Error {
        tracing::warn!(source = %self.name, error = %err, "a data source query failed");
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolClosed => Error::Unavailable {
                message: format!("data source `{}` is unreachable", self.name),
                retry_after: None,
            },
            _ => Error::Upstream {
                service: format!("data source `{}`", self.name),
                status: None,
                retryable: false,
                message: "its query failed (see the server log)".into(),
                retry_after: None,
                source: None,
            },
        }
    }
}

/// The first parameter of a query: the question (live) or the cursor (sync).
#[derive(Clone, Copy)]
enum Param<'a> {
    Text(&'a str),
    Int(i64),
}

impl<'a> Param<'a> {
    fn bind_to<'q, DB>(
        self,
        query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    ) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
    where
        'a: 'q,
        DB: sqlx::Database,
        &'a str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        match self {
            Param::Text(text) => query.bind(text),
            Param::Int(number) => query.bind(number),
        }
    }
}

/// Decodes one row of the fixed columns, from either database.
macro_rules! decode_record {
    ($row:expr) => {{
        let row = $row;
        let allowed: String = row.try_get("allowed")?;
        let updated: i64 = row.try_get("updated_at")?;
        Ok(SourceRecord {
            external_id: row.try_get("id")?,
            title: row.try_get("title")?,
            text: row.try_get("text")?,
            url: row.try_get("url")?,
            allowed_principals: allowed
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            updated_at: DateTime::<Utc>::from_timestamp(updated, 0).unwrap_or_default(),
        })
    }};
}

fn record_pg(row: &sqlx::postgres::PgRow) -> std::result::Result<SourceRecord, sqlx::Error> {
    decode_record!(row)
}

fn record_sqlite(row: &sqlx::sqlite::SqliteRow) -> std::result::Result<SourceRecord, sqlx::Error> {
    decode_record!(row)
}

#[async_trait]
impl Connector for SqlConnector {
    fn kind(&self) -> &str {
        "sql"
    }

    async fn sync(&self, cursor: Option<&str>) -> Result<SyncBatch> {
        let Some(sql) = &self.sync_query else {
            return Err(Error::invalid_input(format!(
                "data source `{}` has no sync_query; it can only be queried live",
                self.name
            )));
        };
        let since: i64 = match cursor {
            None => i64::MIN,
            Some(c) => c.parse().map_err(|_| Error::invalid_input(format!("not a sync cursor: {c}")))?,
        };
        let records = self.run(sql, Param::Int(since), SYNC_PAGE).await?;
        let next_cursor = (records.len() as i64 == SYNC_PAGE)
            .then(|| records.last().map(|r| r.updated_at.timestamp().to_string()))
            .flatten();
        Ok(SyncBatch { records, deleted: Vec::new(), next_cursor })
    }

    async fn query(&self, query: &str, limit: usize) -> Result<Vec<SourceRecord>> {
        self.run(&self.query, Param::Text(query), i64::try_from(limit).unwrap_or(i64::MAX)).await
    }
}

impl std::fmt::Debug for SqlConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's options hold the URL, which may hold a password.
        f.debug_struct("SqlConnector").field("name", &self.name).finish_non_exhaustive()
    }
}

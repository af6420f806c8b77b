//! A vector index in PostgreSQL with the pgvector extension, shared by every server process
//! that uses the same database.
//!
//! One table per dimension (`passage_vectors_384`, …), so indexes built with different
//! embedders never mix:
//!
//! ```text
//! chunk_id UUID PRIMARY KEY | file_id UUID | owner_id UUID | workspace_id UUID NULL | embedding vector(N)
//! ```
//!
//! with b-tree indexes on the three filter columns and an HNSW index for cosine distance.
//! Vectors travel as pgvector's text form (`'[0.1,0.2,…]'::vector`), so no client-side
//! vector type is needed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use amp_core::{ChunkId, Error, FileId, Result, SearchFilter, SearchHit, VectorEntry, VectorIndex};
use async_trait::async_trait;
use sqlx::{AssertSqlSafe, PgPool, Row};
use uuid::Uuid;

use crate::sql::error::internal;

/// pgvector's largest `vector` column.
const MAX_DIMENSION: usize = 16_000;

/// pgvector's largest vector an HNSW index takes; larger ones are searched exactly.
const MAX_HNSW_DIMENSION: usize = 2_000;

/// Rows per `INSERT` statement: keeps each statement's parameters a few megabytes.
const UPSERT_ROWS_PER_STATEMENT: usize = 1_000;

/// Serializes schema creation across processes starting at once: concurrent
/// `CREATE … IF NOT EXISTS` can still collide on PostgreSQL's catalogs. The value is
/// arbitrary ("ampvec" in ASCII), only unique among AMP's advisory locks.
const SCHEMA_LOCK: i64 = 0x616d_7076_6563;

/// [`VectorIndex`] on PostgreSQL with pgvector: several server processes sharing one
/// database search the same vectors, and entries survive restarts.
///
/// Scores are cosine similarity (`1 - (embedding <=> query)`). Searches use the HNSW index
/// when the planner expects it to pay and an exact scan otherwise (selective filters such as
/// a user's few files). With pgvector 0.8 or later the index is scanned iteratively, so a
/// filter that rejects most nearby vectors still fills `limit`; on older versions index
/// scans are turned off for searches, which keeps results exact at the cost of speed.
///
/// ```no_run
/// # async fn run() -> amp_core::Result<()> {
/// use amp_core::{SearchFilter, UserId, VectorIndex};
/// use amp_providers::PgVectorIndex;
///
/// let pool = sqlx::PgPool::connect("postgres://amp@db/amp").await.expect("database reachable");
/// let index = PgVectorIndex::open(pool, 384).await?;
/// let hits = index.search(&vec![0.1; 384], &SearchFilter::owner(UserId::new()), 10).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PgVectorIndex {
    pool: PgPool,
    dimension: usize,
    /// Whether pgvector has iterative index scans (0.8+); otherwise searches scan exactly.
    iterative_scan: bool,
    sql: Arc<Statements>,
}

/// The statements for one dimension's table, built once at open.
#[derive(Debug)]
struct Statements {
    upsert: Arc<str>,
    search: Arc<str>,
    search_files: Arc<str>,
    delete_file: Arc<str>,
}

impl Statements {
    fn new(dimension: usize) -> Self {
        let table = table_name(dimension);
        let search = |files: &str| -> Arc<str> {
            // Re-sorting the materialized hits undoes the slight reordering an iterative
            // scan in relaxed order may leave; ties break by id so results are repeatable.
            format!(
                "WITH hits AS MATERIALIZED (\
                 SELECT chunk_id, file_id, embedding <=> $1::vector({dimension}) AS distance FROM {table} \
                 WHERE (owner_id = ANY($2) OR workspace_id = ANY($3)){files} \
                 ORDER BY distance LIMIT $4) \
                 SELECT chunk_id, file_id, 1 - distance AS score FROM hits ORDER BY distance, chunk_id"
            )
            .into()
        };
        Statements {
            upsert: format!(
                "INSERT INTO {table} (chunk_id, file_id, owner_id, workspace_id, embedding) \
                 SELECT c, f, o, w, e::vector({dimension}) \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[]) AS u(c, f, o, w, e) \
                 ON CONFLICT (chunk_id) DO UPDATE SET file_id = EXCLUDED.file_id, \
                 owner_id = EXCLUDED.owner_id, workspace_id = EXCLUDED.workspace_id, \
                 embedding = EXCLUDED.embedding"
            )
            .into(),
            search: search(""),
            search_files: search(" AND file_id = ANY($5)"),
            delete_file: format!("DELETE FROM {table} WHERE file_id = $1").into(),
        }
    }
}

/// The table holding vectors of `dimension` components; built from a number only.
fn table_name(dimension: usize) -> String {
    format!("passage_vectors_{dimension}")
}

impl PgVectorIndex {
    /// Opens the index of `dimension`-component vectors in the pool's database, creating the
    /// `vector` extension, the table and its indexes if they are missing.
    ///
    /// Fails with `Unavailable` when pgvector is not installed in the database's server, or
    /// is installed but not created in the database and this role may not create it; with
    /// `InvalidInput` for a dimension pgvector cannot store.
    pub async fn open(pool: PgPool, dimension: usize) -> Result<Self> {
        if dimension == 0 || dimension > MAX_DIMENSION {
            return Err(Error::invalid_input(format!(
                "a pgvector index dimension must be 1 to {MAX_DIMENSION}, not {dimension}"
            )));
        }
        let mut tx = pool.begin().await.map_err(internal)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        let version = ensure_extension(&mut tx).await?;
        let table = table_name(dimension);
        // An existing table is used as it is: AMP may run as a role that owns nothing.
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(&table)
            .fetch_one(&mut *tx)
            .await
            .map_err(internal)?;
        let mut ddl = if exists.is_some() {
            Vec::new()
        } else {
            vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {table} (chunk_id UUID PRIMARY KEY, file_id UUID NOT NULL, \
                 owner_id UUID NOT NULL, workspace_id UUID NULL, embedding vector({dimension}) NOT NULL)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {table}_file_id ON {table} (file_id)"),
                format!("CREATE INDEX IF NOT EXISTS {table}_owner_id ON {table} (owner_id)"),
                format!("CREATE INDEX IF NOT EXISTS {table}_workspace_id ON {table} (workspace_id)"),
            ]
        };
        if exists.is_none() && dimension <= MAX_HNSW_DIMENSION {
            ddl.push(format!(
                "CREATE INDEX IF NOT EXISTS {table}_embedding ON {table} USING hnsw (embedding vector_cosine_ops)"
            ));
        }
        for statement in ddl {
            sqlx::query(AssertSqlSafe(statement)).execute(&mut *tx).await.map_err(internal)?;
        }
        tx.commit().await.map_err(internal)?;
        Ok(PgVectorIndex {
            pool,
            dimension,
            iterative_scan: version >= (0, 8),
            sql: Arc::new(Statements::new(dimension)),
        })
    }
}

/// Creates the `vector` extension unless it exists, returning its (major, minor) version.
async fn ensure_extension(tx: &mut sqlx::PgConnection) -> Result<(u32, u32)> {
    let created: Option<String> =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(internal)?;
    if let Some(version) = created {
        return Ok(parse_version(&version));
    }
    let available: Option<String> =
        sqlx::query_scalar("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(internal)?;
    if available.is_none() {
        return Err(Error::unavailable(
            "pgvector is not installed in this database's PostgreSQL server (no `vector` extension \
             available); install pgvector there, or use the flat vector index",
        ));
    }
    if let Err(e) = sqlx::query("CREATE EXTENSION IF NOT EXISTS vector").execute(&mut *tx).await {
        tracing::error!(error = %e, "cannot create the vector extension");
        return Err(Error::unavailable(format!(
            "pgvector is installed in the server but not created in this database, and this role \
             cannot create it ({e}); run `CREATE EXTENSION vector` as a superuser"
        )));
    }
    let version: String = sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        .fetch_one(&mut *tx)
        .await
        .map_err(internal)?;
    Ok(parse_version(&version))
}

/// "0.8.0" → (0, 8); anything unreadable counts as the oldest version.
fn parse_version(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// `vector` in pgvector's text form, scaled to unit length (refused as
/// [`super::normalized`] refuses).
fn vector_literal(vector: &[f32], dimension: usize, what: &str) -> Result<String> {
    let unit = super::normalized(vector, dimension, what)?;
    let mut text = String::with_capacity(2 + dimension * 12);
    text.push('[');
    for (i, x) in unit.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        // Rust prints the shortest text that reads back as the same f32, which pgvector parses.
        let _ = write!(text, "{x}");
    }
    text.push(']');
    Ok(text)
}

/// One `INSERT` statement's worth of rows, as the arrays `UNNEST` takes.
#[derive(Default)]
struct Columns {
    chunks: Vec<Uuid>,
    files: Vec<Uuid>,
    owners: Vec<Uuid>,
    workspaces: Vec<Option<Uuid>>,
    vectors: Vec<String>,
}

#[async_trait]
impl VectorIndex for PgVectorIndex {
    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn upsert(&self, entries: Vec<VectorEntry>) -> Result<()> {
        // Validate the whole batch first so a bad entry stores none of it. A chunk listed
        // twice keeps its last entry, as if upserted one by one (one statement may not
        // update a row twice).
        let mut latest: HashMap<Uuid, (VectorEntry, String)> = HashMap::with_capacity(entries.len());
        for entry in entries {
            let literal = vector_literal(&entry.vector, self.dimension, "the vector")?;
            latest.insert(entry.chunk.as_uuid(), (entry, literal));
        }
        if latest.is_empty() {
            return Ok(());
        }
        // Rows locked in id order: concurrent batches touching the same chunks cannot deadlock.
        let mut rows: Vec<_> = latest.into_iter().collect();
        rows.sort_unstable_by_key(|(chunk, _)| *chunk);
        let mut tx = self.pool.begin().await.map_err(internal)?;
        for batch in rows.chunks(UPSERT_ROWS_PER_STATEMENT) {
            let mut c = Columns::default();
            for (chunk, (entry, literal)) in batch {
                c.chunks.push(*chunk);
                c.files.push(entry.file.as_uuid());
                c.owners.push(entry.visibility.owner.as_uuid());
                c.workspaces.push(entry.visibility.workspace.map(|w| w.as_uuid()));
                c.vectors.push(literal.clone());
            }
            sqlx::query(AssertSqlSafe(self.sql.upsert.clone()))
                .bind(c.chunks)
                .bind(c.files)
                .bind(c.owners)
                .bind(c.workspaces)
                .bind(c.vectors)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn search(&self, query: &[f32], filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>> {
        let query = vector_literal(query, self.dimension, "the query vector")?;
        let nothing_readable = filter.owners.is_empty() && filter.workspaces.is_empty();
        if nothing_readable || limit == 0 || filter.files.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let owners: Vec<Uuid> = filter.owners.iter().map(|o| o.as_uuid()).collect();
        let workspaces: Vec<Uuid> = filter.workspaces.iter().map(|w| w.as_uuid()).collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = if filter.files.is_some() { &self.sql.search_files } else { &self.sql.search };
        let files: Option<Vec<Uuid>> = filter.files.as_ref().map(|f| f.iter().map(|f| f.as_uuid()).collect());
        let statement = || {
            let statement = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(query.clone())
                .bind(owners.clone())
                .bind(workspaces.clone())
                .bind(limit);
            match &files {
                Some(files) => statement.bind(files.clone()),
                None => statement,
            }
        };

        // The settings below last for this transaction only, so pooled connections stay clean.
        let mut tx = self.pool.begin().await.map_err(internal)?;
        let setting = if self.iterative_scan {
            // Without it an HNSW scan yields `hnsw.ef_search` candidates and the filter may
            // drop most of them, returning fewer hits than exist.
            "SET LOCAL hnsw.iterative_scan = relaxed_order"
        } else {
            // Before 0.8 the same shortfall can only be avoided by not using the index.
            "SET LOCAL enable_indexscan = off"
        };
        sqlx::query(setting).execute(&mut *tx).await.map_err(internal)?;
        let mut rows = statement().fetch_all(&mut *tx).await.map_err(internal)?;
        if self.iterative_scan && (rows.len() as i64) < limit {
            // An iterative scan gives up after `hnsw.max_scan_tuples` rows, so in a large
            // table a selective filter can come back short. Fewer hits than asked is
            // confirmed with an exact scan (the filter's own indexes make it cheap).
            for exact in [
                "SET LOCAL enable_indexscan = off",
                "SET LOCAL enable_bitmapscan = on",
                "SET LOCAL enable_seqscan = on",
            ] {
                sqlx::query(exact).execute(&mut *tx).await.map_err(internal)?;
            }
            rows = statement().fetch_all(&mut *tx).await.map_err(internal)?;
        }
        tx.commit().await.map_err(internal)?;

        rows.iter()
            .map(|row| {
                let chunk: Uuid = row.try_get("chunk_id").map_err(internal)?;
                let file: Uuid = row.try_get("file_id").map_err(internal)?;
                let score: f64 = row.try_get("score").map_err(internal)?;
                Ok(SearchHit {
                    chunk: ChunkId::from_uuid(chunk),
                    file: FileId::from_uuid(file),
                    score: score as f32,
                })
            })
            .collect()
    }

    async fn delete_file(&self, file: FileId) -> Result<u64> {
        let done = sqlx::query(AssertSqlSafe(self.sql.delete_file.clone()))
            .bind(file.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(internal)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_sent_normalized_in_pgvectors_text_form() {
        assert_eq!(vector_literal(&[3.0, 4.0, 0.0], 3, "v").unwrap(), "[0.6,0.8,0]");
    }

    #[test]
    fn unusable_vectors_are_invalid_input() {
        for bad in
            [vec![1.0, 0.0], vec![0.0, 0.0, 0.0], vec![f32::NAN, 1.0, 0.0], vec![f32::INFINITY, 0.0, 0.0]]
        {
            let err = vector_literal(&bad, 3, "v").unwrap_err();
            assert_eq!(err.kind(), amp_core::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(parse_version("0.8.0"), (0, 8));
        assert!(parse_version("0.10.1") >= (0, 8));
        assert!(parse_version("0.7.4") < (0, 8));
        assert_eq!(parse_version("junk"), (0, 0));
    }
}

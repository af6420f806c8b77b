//! [`KeywordIndex`] on PostgreSQL full-text search, shared by every process on one database.
//!
//! Each passage is a row of `keyword_passages` (migration 0008): its English `tsvector`
//! (PostgreSQL's `english` configuration: lower-cased words, its stop words dropped, Snowball
//! stems) under a GIN index, beside the file, owner and workspace its access filter reads.
//! The text itself stays in `chunks`.
//!
//! A query matches a passage holding any of its words. Ranking is `ts_rank` with length
//! normalization 1 (the rank divided by 1 + the log of the passage's length): term frequency
//! saturates and long passages are discounted, as in BM25, but there is no inverse document
//! frequency, so a rare word does not outweigh a common one as strongly as with
//! [`TantivyKeywordIndex`](super::TantivyKeywordIndex). The access filter is in the same
//! `WHERE` as the match, so the `limit` best hits are the best readable ones.

use amp_core::{ChunkId, FileId, KeywordEntry, KeywordIndex, Result, SearchFilter, SearchHit};
use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

use crate::sql::error::internal;

/// Rows per `INSERT` statement.
const UPSERT_ROWS_PER_STATEMENT: usize = 500;
/// Query words used at most; a longer query is cut (its first words count).
const MAX_QUERY_WORDS: usize = 64;

/// The query's words as one OR `tsquery`: each word through `plainto_tsquery` (so its
/// stem, and nothing for a stop word), joined by `|`.
const QUERY: &str = "(SELECT string_agg('(' || q::text || ')', ' | ')::tsquery \
     FROM (SELECT plainto_tsquery('english', w) AS q FROM unnest($1::text[]) AS w) AS words \
     WHERE q::text <> '')";

/// PostgreSQL full-text search over passages (see the module docs).
#[derive(Debug, Clone)]
pub struct PgKeywordIndex {
    pool: PgPool,
}

impl PgKeywordIndex {
    /// The index in the pool's database, which must be migrated (opening
    /// [`PostgresStores`](crate::sql::PostgresStores) on it does that).
    pub fn new(pool: PgPool) -> Self {
        PgKeywordIndex { pool }
    }
}

/// The query's words: runs of letters and digits, at most [`MAX_QUERY_WORDS`], each once.
fn words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if !words.contains(&word) {
            words.push(word);
            if words.len() == MAX_QUERY_WORDS {
                break;
            }
        }
    }
    words
}

fn uuids<T>(ids: &[T], uuid: impl Fn(&T) -> Uuid) -> Vec<Uuid> {
    ids.iter().map(uuid).collect()
}

#[async_trait]
impl KeywordIndex for PgKeywordIndex {
    async fn upsert(&self, entries: Vec<KeywordEntry>) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(internal)?;
        for part in entries.chunks(UPSERT_ROWS_PER_STATEMENT) {
            // A chunk named twice in one statement would make ON CONFLICT fail: the last wins.
            let mut seen = std::collections::HashSet::new();
            let part: Vec<&KeywordEntry> = part
                .iter()
                .rev()
                .filter(|e| seen.insert(e.chunk))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            sqlx::query(
                "INSERT INTO keyword_passages (chunk_id, file_id, owner_id, workspace_id, terms) \
                 SELECT c, f, o, w, to_tsvector('english', t) \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[]) AS u(c, f, o, w, t) \
                 ON CONFLICT (chunk_id) DO UPDATE SET file_id = EXCLUDED.file_id, owner_id = EXCLUDED.owner_id, \
                 workspace_id = EXCLUDED.workspace_id, terms = EXCLUDED.terms",
            )
            .bind(part.iter().map(|e| e.chunk.as_uuid()).collect::<Vec<_>>())
            .bind(part.iter().map(|e| e.file.as_uuid()).collect::<Vec<_>>())
            .bind(part.iter().map(|e| e.visibility.owner.as_uuid()).collect::<Vec<_>>())
            .bind(part.iter().map(|e| e.visibility.workspace.map(|w| w.as_uuid())).collect::<Vec<_>>())
            // PostgreSQL text cannot hold NUL.
            .bind(part.iter().map(|e| e.text.replace('\0', " ")).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn search(&self, query: &str, filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>> {
        let words = words(query);
        if words.is_empty()
            || limit == 0
            || filter.files.as_ref().is_some_and(Vec::is_empty)
            || (filter.owners.is_empty() && filter.workspaces.is_empty())
        {
            return Ok(Vec::new());
        }
        let files = filter.files.as_ref().map(|f| uuids(f, |id| id.as_uuid()));
        let rows: Vec<(Uuid, Uuid, f32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH q AS (SELECT {QUERY} AS q) \
             SELECT chunk_id, file_id, ts_rank(terms, q.q, 1) AS score FROM keyword_passages, q \
             WHERE q.q IS NOT NULL AND terms @@ q.q \
             AND (owner_id = ANY($2) OR workspace_id = ANY($3)) AND ($4::uuid[] IS NULL OR file_id = ANY($4)) \
             ORDER BY score DESC, chunk_id LIMIT $5"
        )))
        .bind(&words)
        .bind(uuids(&filter.owners, |u| u.as_uuid()))
        .bind(uuids(&filter.workspaces, |w| w.as_uuid()))
        .bind(files)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        Ok(rows
            .into_iter()
            .map(|(chunk, file, score)| SearchHit {
                chunk: ChunkId::from_uuid(chunk),
                file: FileId::from_uuid(file),
                score,
            })
            .collect())
    }

    async fn delete_file(&self, file: FileId) -> Result<u64> {
        let done = sqlx::query("DELETE FROM keyword_passages WHERE file_id = $1")
            .bind(file.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(internal)?;
        Ok(done.rows_affected())
    }

    async fn missing_files(&self, files: &[FileId]) -> Result<Vec<FileId>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let held: Vec<Uuid> = sqlx::query_scalar(
            "SELECT f FROM unnest($1::uuid[]) AS f WHERE EXISTS (SELECT 1 FROM keyword_passages WHERE file_id = f)",
        )
        .bind(uuids(files, |id| id.as_uuid()))
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let held: std::collections::HashSet<Uuid> = held.into_iter().collect();
        Ok(files.iter().copied().filter(|f| !held.contains(&f.as_uuid())).collect())
    }
}

//! Vector and keyword indexes over passages, with access control built into every search.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::document::{SearchFilter, SearchHit, Visibility};
use crate::error::Result;
use crate::ids::{ChunkId, FileId};

/// A passage's vector, with what is needed to filter it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorEntry {
    /// The passage.
    pub chunk: ChunkId,
    /// Its file.
    pub file: FileId,
    /// Who may see it.
    pub visibility: Visibility,
    /// The embedding, of the index's dimension.
    pub vector: Vec<f32>,
}

/// Similarity search over passage vectors.
///
/// Promises, checked by the conformance kit: results are sorted by descending cosine
/// similarity and never include an entry the filter does not match (even if that returns
/// fewer than `limit`); upserting a chunk id again replaces it; deleting a file removes all
/// its entries; a vector of the wrong dimension is `InvalidInput`.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// The dimension every vector must have.
    fn dimension(&self) -> usize;

    /// Inserts or replaces entries.
    async fn upsert(&self, entries: Vec<VectorEntry>) -> Result<()>;

    /// The `limit` most similar entries the filter allows.
    async fn search(&self, query: &[f32], filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>>;

    /// Removes every entry of a file; returns how many were removed.
    async fn delete_file(&self, file: FileId) -> Result<u64>;
}

/// A passage's text for keyword search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordEntry {
    /// The passage.
    pub chunk: ChunkId,
    /// Its file.
    pub file: FileId,
    /// Who may see it.
    pub visibility: Visibility,
    /// The passage text.
    pub text: String,
}

/// Full-text search over passages (BM25 or the engine's equivalent).
///
/// Promises, checked by the conformance kit: only entries containing a query term are
/// returned, best first; the filter is always applied; upserting a chunk id replaces its
/// text; deleting a file removes its entries; a query with no searchable terms returns
/// nothing rather than an error; `missing_files` names exactly the files without entries.
#[async_trait]
pub trait KeywordIndex: Send + Sync {
    /// Inserts or replaces entries.
    async fn upsert(&self, entries: Vec<KeywordEntry>) -> Result<()>;

    /// The `limit` best matches the filter allows.
    async fn search(&self, query: &str, filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>>;

    /// Removes every entry of a file; returns how many were removed.
    async fn delete_file(&self, file: FileId) -> Result<u64>;

    /// Those of `files` that have no entry here, in their order: what a back-fill must
    /// still write.
    async fn missing_files(&self, files: &[FileId]) -> Result<Vec<FileId>>;
}

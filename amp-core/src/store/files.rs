use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::document::{Chunk, FileMeta, SearchFilter};
use crate::error::Result;
use crate::ids::{ChunkId, FileId, UserId, WorkspaceId};

/// File metadata and chunks.
///
/// Promises: a duplicate file id is `Conflict`; listing applies the filter exactly like a
/// search; inserting chunks for a missing file is `NotFound`; a chunk with the same file and
/// ordinal replaces the old one; deleting a file deletes its chunks.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Stores a new file's metadata.
    async fn create_file(&self, file: FileMeta) -> Result<()>;

    /// Reads one.
    async fn get_file(&self, id: FileId) -> Result<Option<FileMeta>>;

    /// Replaces everything but the id and owner; `NotFound` for a missing file.
    async fn update_file(&self, file: &FileMeta) -> Result<()>;

    /// Writes a file's processing state (status, job, size, hash, blob key, `updated_at`)
    /// and nothing else, so a share or rename made at the same time is kept; `NotFound` for
    /// a missing file.
    async fn update_processing(&self, file: &FileMeta) -> Result<()>;

    /// Moves a personal file into `workspace` and nothing else, so processing that finishes
    /// meanwhile keeps its state; returns `false` if it is missing or already in a
    /// workspace, or the workspace does not exist (a delete running at the same time either
    /// sees the share or the share sees no workspace).
    async fn share_file(&self, id: FileId, workspace: WorkspaceId, at: DateTime<Utc>) -> Result<bool>;

    /// Files the filter allows, newest first.
    async fn list_files(&self, filter: &SearchFilter) -> Result<Vec<FileMeta>>;

    /// The owner's files whose bytes hash to `sha256` (hex), newest first.
    async fn find_by_sha256(&self, owner: UserId, sha256: &str) -> Result<Vec<FileMeta>>;

    /// Up to `limit` files, of anyone, that are `Pending` or still being processed and were
    /// last changed before `updated_before`, oldest change first: what a sweep re-queues
    /// after a crash.
    async fn list_unfinished(&self, updated_before: DateTime<Utc>, limit: usize) -> Result<Vec<FileMeta>>;

    /// Up to `limit` `Ready` files, of anyone, with ids greater than `after`, in id order:
    /// pages over every searchable file (a back-fill of a new index walks them).
    async fn list_ready(&self, after: Option<FileId>, limit: usize) -> Result<Vec<FileMeta>>;

    /// Deletes every chunk of a file, keeping the file (re-processing starts clean).
    async fn delete_chunks(&self, file: FileId) -> Result<()>;

    /// Deletes a file and its chunks; returns whether it existed.
    async fn delete_file(&self, id: FileId) -> Result<bool>;

    /// Stores chunks (all of one file or several).
    async fn insert_chunks(&self, chunks: Vec<Chunk>) -> Result<()>;

    /// Chunks by id, in the order asked; unknown ids are skipped.
    async fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>>;

    /// A file's chunks by ordinal.
    async fn list_chunks(&self, file: FileId) -> Result<Vec<Chunk>>;
}

//! Files, their indexed passages, search hits and citations.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChunkId, DataSourceId, FileId, JobId, UserId, WorkspaceId};
use crate::traits::blob_store::BlobKey;

/// Where a file is in its life: announced, queued, going through the ingestion stages
/// (`scanning → extracting → chunking → embedding → indexing`), searchable, or failed.
///
/// Serialized as `{"state": "embedding", "done": 40, "total": 120}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FileStatus {
    /// An upload URL was issued, or the bytes are on their way; nothing to process yet.
    Pending,
    /// The bytes are stored and the file waits for a worker.
    #[serde(alias = "uploaded", alias = "processing")]
    Queued,
    /// Being checked for malware.
    Scanning,
    /// Text being read out of the document.
    Extracting,
    /// Text being cut into passages; `pages` is how many pages had text, of `total`.
    Chunking {
        /// Pages with text.
        pages: u32,
        /// Pages in the document (1 for unpaged formats).
        total: u32,
    },
    /// Passages being embedded: `done` of `total`.
    Embedding {
        /// Passages embedded so far.
        done: u32,
        /// Passages in the file.
        total: u32,
    },
    /// Passages and vectors being written to the indexes.
    Indexing,
    /// Searchable.
    Ready,
    /// Processing failed; the reason is safe to show its owner.
    Failed {
        /// Why.
        reason: String,
    },
}

impl FileStatus {
    /// Whether processing still has work to do on it (between upload and ready/failed).
    pub fn is_in_progress(&self) -> bool {
        !matches!(self, FileStatus::Pending | FileStatus::Ready | FileStatus::Failed { .. })
    }

    /// The stage's name as serialized (`queued`, `embedding`, …).
    pub fn stage(&self) -> &'static str {
        match self {
            FileStatus::Pending => "pending",
            FileStatus::Queued => "queued",
            FileStatus::Scanning => "scanning",
            FileStatus::Extracting => "extracting",
            FileStatus::Chunking { .. } => "chunking",
            FileStatus::Embedding { .. } => "embedding",
            FileStatus::Indexing => "indexing",
            FileStatus::Ready => "ready",
            FileStatus::Failed { .. } => "failed",
        }
    }
}

/// Metadata of one uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Its id.
    pub id: FileId,
    /// Who uploaded it.
    pub owner: UserId,
    /// The workspace it is shared into, if any.
    pub workspace: Option<WorkspaceId>,
    /// The file name as uploaded.
    pub name: String,
    /// The media type (detected from the bytes once they arrive).
    pub media_type: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Hex SHA-256 of the bytes, once known.
    pub sha256: Option<String>,
    /// Where it is in processing.
    pub status: FileStatus,
    /// Where its original bytes are in the blob store (set when the upload is announced;
    /// `None` for files stored before blobs were kept). Internal: never sent to clients.
    #[serde(default, skip_serializing)]
    pub blob_key: Option<BlobKey>,
    /// The ingestion job processing it, once queued.
    #[serde(default)]
    pub job: Option<JobId>,
    /// When the upload was requested.
    pub created_at: DateTime<Utc>,
    /// When anything above last changed.
    pub updated_at: DateTime<Utc>,
}

/// Where an indexed passage comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ChunkSource {
    /// An uploaded file.
    File(FileId),
    /// A record synced from a data source.
    DataSource(DataSourceId),
}

/// One passage of a document, as indexed and as cited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Its id.
    pub id: ChunkId,
    /// The file it was cut from.
    pub file: FileId,
    /// Its position in the file, from 0.
    pub ordinal: u32,
    /// The passage text.
    pub text: String,
    /// The page it starts on (1-based), for paged formats.
    pub page: Option<u32>,
    /// Byte offsets of the passage in the extracted text, `[start, end)`.
    pub byte_range: ByteRange,
    /// Its length in the embedder's tokens.
    pub token_count: u32,
}

/// A half-open byte range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// The number of bytes covered.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether it covers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Who may see an indexed entry: its owner, and members of its workspace if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Visibility {
    /// The owner.
    pub owner: UserId,
    /// The workspace it is shared into.
    pub workspace: Option<WorkspaceId>,
}

/// Which indexed entries a search may return.
///
/// An entry matches when its owner is in `owners` **or** its workspace is in `workspaces`,
/// **and**, when `files` is set, its file is one of them. An empty filter matches nothing:
/// searches are scoped to what the caller may read, never open by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFilter {
    /// Owners whose entries may be returned.
    pub owners: Vec<UserId>,
    /// Workspaces whose entries may be returned.
    pub workspaces: Vec<WorkspaceId>,
    /// When set, only entries of these files.
    pub files: Option<Vec<FileId>>,
}

impl SearchFilter {
    /// Entries a single user owns.
    pub fn owner(user: UserId) -> Self {
        SearchFilter { owners: vec![user], workspaces: Vec::new(), files: None }
    }

    /// Entries shared into one workspace.
    pub fn workspace(workspace: WorkspaceId) -> Self {
        SearchFilter { owners: Vec::new(), workspaces: vec![workspace], files: None }
    }

    /// Exactly these files, through their owners (a file is always readable by its owner's
    /// entries): the filter a search uses once the stores have decided which files the
    /// caller may read.
    pub fn of_files(files: &[FileMeta]) -> Self {
        let mut owners: Vec<UserId> = files.iter().map(|f| f.owner).collect();
        owners.sort_unstable();
        owners.dedup();
        SearchFilter { owners, workspaces: Vec::new(), files: Some(files.iter().map(|f| f.id).collect()) }
    }

    /// Restricts the filter to these files.
    pub fn with_files(mut self, files: Vec<FileId>) -> Self {
        self.files = Some(files);
        self
    }

    /// Adds a workspace whose entries may be returned.
    pub fn with_workspace(mut self, workspace: WorkspaceId) -> Self {
        self.workspaces.push(workspace);
        self
    }

    /// Whether an entry with this visibility and file matches.
    pub fn matches(&self, visibility: &Visibility, file: FileId) -> bool {
        let readable = self.owners.contains(&visibility.owner)
            || visibility.workspace.is_some_and(|w| self.workspaces.contains(&w));
        readable && self.files.as_ref().is_none_or(|files| files.contains(&file))
    }
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The passage.
    pub chunk: ChunkId,
    /// Its file.
    pub file: FileId,
    /// Higher is better; comparable only within one index and query.
    pub score: f32,
}

/// Where a retrieved or cited passage comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PassageOrigin {
    /// A passage of an uploaded file.
    File {
        /// The file.
        file: FileId,
        /// The passage.
        chunk: ChunkId,
    },
    /// A record read from a data source.
    Record {
        /// The source.
        data_source: DataSourceId,
        /// The record's id in the source.
        record: String,
        /// A link back to it in the source, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
}

/// A passage an answer cites, as `[n]` in its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    /// The `n` of `[n]`.
    pub source: u32,
    /// The cited file passage or data-source record.
    #[serde(flatten)]
    pub origin: PassageOrigin,
    /// The page it is on, for paged formats.
    pub page: Option<u32>,
    /// Where in the extracted text (a record: the whole of its text).
    pub byte_range: ByteRange,
    /// A short excerpt of the passage.
    pub snippet: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_filter_matches_nothing() {
        let vis = Visibility { owner: UserId::new(), workspace: None };
        assert!(!SearchFilter::default().matches(&vis, FileId::new()));
    }

    #[test]
    fn filter_reads_own_and_workspace_entries_within_listed_files() {
        let (me, other, ws) = (UserId::new(), UserId::new(), WorkspaceId::new());
        let (f1, f2) = (FileId::new(), FileId::new());
        let filter = SearchFilter::owner(me).with_workspace(ws);
        assert!(filter.matches(&Visibility { owner: me, workspace: None }, f1));
        assert!(filter.matches(&Visibility { owner: other, workspace: Some(ws) }, f1));
        assert!(!filter.matches(&Visibility { owner: other, workspace: Some(WorkspaceId::new()) }, f1));
        let only_f2 = filter.with_files(vec![f2]);
        assert!(!only_f2.matches(&Visibility { owner: me, workspace: None }, f1));
        assert!(only_f2.matches(&Visibility { owner: me, workspace: None }, f2));
    }
}

//! Searching the passages of the files a person may read, outside a chat turn.

use std::collections::{HashMap, HashSet};

use amp_core::{ByteRange, ChunkId, Error, FileId, FileStatus, Result, SearchFilter, WorkspaceId};
use serde::{Deserialize, Serialize};

use super::Storage;
use crate::principal::Principal;

/// Most results one search returns.
pub const MAX_RESULTS: usize = 100;

/// Most files one search may name.
pub const MAX_FILES: usize = 1_000;

/// `POST /agents/storage/search`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
    /// How many results (1 to 100, default 10).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only these files (each readable by the caller).
    #[serde(default)]
    pub files: Option<Vec<FileId>>,
    /// Only the caller's own files and this workspace's (members).
    #[serde(default)]
    pub workspace: Option<WorkspaceId>,
}

/// One passage found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    /// Its file.
    pub file: FileId,
    /// The file's name.
    pub name: String,
    /// The passage.
    pub chunk: ChunkId,
    /// The page it is on, for paged formats.
    pub page: Option<u32>,
    /// Where it is in the file's extracted text.
    pub byte_range: ByteRange,
    /// Its text.
    pub text: String,
    /// Cosine similarity to the query; higher is closer.
    pub score: f32,
}

impl Storage {
    /// The passages closest to the query among the `ready` files the caller may read: the
    /// named files (each must be readable, else `NotFound`), else their own and, with
    /// `workspace`, that workspace's (members only), else their own and every workspace's
    /// they belong to.
    pub async fn search(&self, principal: &Principal, request: SearchRequest) -> Result<Vec<SearchResult>> {
        let query = request.query.trim();
        if query.is_empty() || query.chars().count() > 4_000 {
            return Err(Error::invalid_input("query: 1 to 4000 characters"));
        }
        let limit = request.limit.unwrap_or(10);
        if !(1..=MAX_RESULTS).contains(&limit) {
            return Err(Error::invalid_input(format!("limit: 1 to {MAX_RESULTS}")));
        }
        let mut files = Vec::new();
        if let Some(named) = &request.files {
            if named.len() > MAX_FILES {
                return Err(Error::invalid_input(format!("files: at most {MAX_FILES}")));
            }
            let mut seen = HashSet::new();
            for &id in named.iter().filter(|id| seen.insert(**id)) {
                let file = self.files.get(principal, id).await?;
                if let Some(w) = request.workspace
                    && file.owner != principal.user
                    && file.workspace != Some(w)
                {
                    return Err(Error::invalid_input(format!("files: {id} is not in workspace {w}")));
                }
                files.push(file);
            }
        } else {
            let filter = match request.workspace {
                Some(w) => self.session.retrieval_scope(principal, Some(w)).await?,
                None => {
                    let mut filter = SearchFilter::owner(principal.user);
                    for mine in self.session.my_workspaces(principal).await? {
                        filter = filter.with_workspace(mine.workspace.id);
                    }
                    filter
                }
            };
            files = self.stores.files.list_files(&filter).await?;
        }
        files.retain(|f| f.status == FileStatus::Ready);
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let vector = self.embedder.embed(&[query.to_owned()]).await?.pop().unwrap_or_default();
        let filter = SearchFilter::of_files(&files);
        let hits = self.vectors.search(&vector, &filter, limit).await?;
        let ids: Vec<ChunkId> = hits.iter().map(|h| h.chunk).collect();
        let mut chunks: HashMap<ChunkId, amp_core::Chunk> =
            self.stores.files.get_chunks(&ids).await?.into_iter().map(|c| (c.id, c)).collect();
        let names: HashMap<FileId, &str> = files.iter().map(|f| (f.id, f.name.as_str())).collect();
        Ok(hits
            .into_iter()
            .filter_map(|hit| {
                let chunk = chunks.remove(&hit.chunk)?;
                Some(SearchResult {
                    file: hit.file,
                    name: names.get(&hit.file).copied().unwrap_or_default().to_owned(),
                    chunk: chunk.id,
                    page: chunk.page,
                    byte_range: chunk.byte_range,
                    text: chunk.text,
                    score: hit.score,
                })
            })
            .collect())
    }
}

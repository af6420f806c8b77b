//! `POST /agents/context/search`: the passages a chat turn would draw on, ranked, without
//! asking a model.

use amp_core::config::RetrievalMode;
use amp_core::{ByteRange, DataSourceId, Error, FileId, PassageOrigin, Result, WorkspaceId, WorkspaceRole};
use serde::{Deserialize, Serialize};

use super::{Context, Ranks};
use crate::principal::Principal;

/// Most results one search returns.
pub const MAX_RESULTS: usize = 100;
/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 4_000;

/// What to search for, and where: the body of a chat turn without the model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSearchRequest {
    /// What to look for.
    pub query: String,
    /// `vector`, `keyword` or `hybrid`; the deployment's default (hybrid) when absent.
    #[serde(default)]
    pub mode: Option<RetrievalMode>,
    /// How many passages, and how many records (1 to 100, default 10).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Exactly these files (each readable by the caller; at most 50, as a turn).
    #[serde(default)]
    pub files: Option<Vec<FileId>>,
    /// As in a conversation of this workspace (members only): its files, and records open
    /// to everyone.
    #[serde(default)]
    pub workspace: Option<WorkspaceId>,
    /// Exactly these data sources (at most 20, as a turn).
    #[serde(default)]
    pub data_sources: Option<Vec<DataSourceId>>,
}

/// One passage or record found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// A file's passage (`kind: file`, `file`, `chunk`) or a data-source record
    /// (`kind: record`, `data_source`, `record`, `url`).
    #[serde(flatten)]
    pub origin: PassageOrigin,
    /// The file's name, or the record's title.
    pub name: String,
    /// The page it starts on, for paged formats.
    pub page: Option<u32>,
    /// Where it is in the file's extracted text.
    pub byte_range: ByteRange,
    /// Its text.
    pub text: String,
    /// The fused score (hybrid), cosine similarity (vector) or BM25 (keyword); 0 for
    /// records.
    pub score: f32,
    /// Its rank in each retriever (from 1), where it was found.
    pub ranks: Ranks,
}

impl Context {
    /// The passages a turn asking `query` would read, ranked, authorized exactly as a turn
    /// is (see the module docs of [`Context`]): named files each readable by the caller,
    /// else the caller's own files, or with `workspace` that workspace's files (members
    /// only); records from the named data sources, filtered by their access lists.
    pub async fn search(&self, principal: &Principal, request: ContextSearchRequest) -> Result<Vec<Found>> {
        let query = request.query.trim();
        if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::invalid_input(format!("query: 1 to {MAX_QUERY_CHARS} characters")));
        }
        let limit = request.limit.unwrap_or(10);
        if !(1..=MAX_RESULTS).contains(&limit) {
            return Err(Error::invalid_input(format!("limit: 1 to {MAX_RESULTS}")));
        }
        // The bounds of a turn: each name costs a lookup, each source a query.
        let files = request
            .files
            .map(|f| crate::registry::distinct_at_most("files", f, crate::chat::MAX_TURN_FILES))
            .transpose()?;
        let data_sources = request
            .data_sources
            .map(|d| crate::registry::distinct_at_most("data_sources", d, crate::chat::MAX_TURN_DATA_SOURCES))
            .transpose()?;
        if let Some(w) = request.workspace {
            // A turn in a workspace conversation needs its membership; so does this.
            self.session.require_role(principal, w, WorkspaceRole::Viewer).await?;
        }
        let attached = (files.as_deref(), data_sources.as_deref());
        let scope = self.scope_in(principal, request.workspace, None, attached).await?;
        let sources = self.retrieve_with(principal, query, &scope, limit, request.mode).await?;
        Ok(sources
            .into_iter()
            .map(|s| Found {
                origin: s.origin,
                name: s.title,
                page: s.page,
                byte_range: s.byte_range,
                text: s.text,
                score: s.score,
                ranks: s.ranks,
            })
            .collect())
    }
}

//! The Context agent: decides which files a chat turn may draw on, finds the passages that
//! answer it, and lays out what the model reads.
//!
//! What a turn reads, decided here and never widened by a caller's wish:
//! - files or data sources attached to the turn: exactly those (each file must be
//!   readable by the caller and each source configured, else `NotFound`);
//! - else, with an agent that lists files, workspaces or data sources: exactly those, as
//!   far as the caller may read them (an agent shared into a workspace never shows a
//!   member a file they could not open themselves);
//! - else [`SessionAgent::retrieval_scope`]: the caller's own files in a personal
//!   conversation; that workspace's files in a workspace conversation.
//!
//! In a workspace conversation every member reads the stored answer and its citations, so
//! whatever the rule above yields is narrowed to that workspace's files — never the
//! asker's private ones (an attached file from elsewhere is refused: share it into the
//! workspace first) — and data-source records to those open to everyone (`*`).
//!
//! Only files in `Ready` are searched, by embedding similarity, keyword search or both
//! fused (see [`retrieval`]; hybrid by default). Data-source records come from the
//! DataSource agent, filtered by their access lists, after the file passages.

mod prompt;
pub mod retrieval;
mod search;

use std::collections::{HashMap, HashSet};

use amp_core::config::{RetrievalConfig, RetrievalMode};
use amp_core::conversation::Conversation;
use amp_core::{
    AgentConfig, AgentRetrieval, ByteRange, ChunkId, DataSourceId, FileId, FileMeta, FileStatus,
    PassageOrigin, Result, SearchFilter, Stores, WorkspaceId,
};
use serde::{Deserialize, Serialize};

pub use prompt::{fit_history, fit_sources, history, sources_prompt};
pub use retrieval::{Ranks, Retriever};
pub use search::{ContextSearchRequest, Found};

use crate::data_sources::DataSources;
use crate::files::Files;
use crate::principal::Principal;
use crate::session::SessionAgent;

/// The most characters of a data-source record given to the model.
const MAX_RECORD_CHARS: usize = 4_000;

/// A passage given to the model as source `[number]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The `n` the model cites it by, from 1.
    pub number: u32,
    /// The file passage or data-source record it is.
    #[serde(flatten)]
    pub origin: PassageOrigin,
    /// The file's name, or the record's title.
    pub title: String,
    /// The page it starts on, for paged formats.
    pub page: Option<u32>,
    /// Where it is in the file's extracted text (a record: the whole of its text).
    pub byte_range: ByteRange,
    /// The passage text.
    pub text: String,
    /// How well it answers the question (higher is better): the fused score in hybrid
    /// retrieval, else cosine similarity or BM25; records keep their source's order and
    /// score 0.
    pub score: f32,
    /// Where it stood in each retriever's ranking.
    #[serde(default)]
    pub ranks: Ranks,
}

/// What a turn may read: files and data sources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// Files, `Ready` ones only.
    pub files: Vec<FileMeta>,
    /// Data sources.
    pub data_sources: Vec<DataSourceId>,
    /// Whether the answer is shared with a workspace: then only data-source records open
    /// to everyone may be read, since every member reads the stored answer.
    pub shared: bool,
    /// The turn's agent's retrieval settings.
    pub retrieval: AgentRetrieval,
}

/// The Context agent. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    stores: Stores,
    session: SessionAgent,
    files: Files,
    retriever: Retriever,
    data_sources: DataSources,
    passages: usize,
}

impl Context {
    /// An agent finding file passages with `retriever` and reading `data_sources`, giving
    /// the model at most `passages` file passages and `passages` records per turn.
    pub fn new(
        stores: Stores,
        session: SessionAgent,
        retriever: Retriever,
        data_sources: DataSources,
        passages: usize,
    ) -> Self {
        let files = Files::new(stores.clone(), session.clone());
        Context { stores, session, files, retriever, data_sources, passages }
    }

    /// What a turn in `conversation` may read (see the module docs). `attached` is what the
    /// turn names itself: files and data sources.
    pub async fn scope(
        &self,
        principal: &Principal,
        conversation: &Conversation,
        agent: Option<&AgentConfig>,
        attached: (Option<&[FileId]>, Option<&[DataSourceId]>),
    ) -> Result<Scope> {
        self.scope_in(principal, conversation.workspace, agent, attached).await
    }

    /// What a turn in a conversation of `workspace` (or a personal one) may read.
    async fn scope_in(
        &self,
        principal: &Principal,
        workspace: Option<WorkspaceId>,
        agent: Option<&AgentConfig>,
        attached: (Option<&[FileId]>, Option<&[DataSourceId]>),
    ) -> Result<Scope> {
        let mut files = Vec::new();
        let mut data_sources = Vec::new();
        let (attached_files, attached_sources) = attached;
        if attached_files.is_some() || attached_sources.is_some() {
            // Exactly what the turn named.
            for &id in attached_files.unwrap_or_default() {
                let file = self.files.get(principal, id).await?;
                if !fits_conversation(&file, workspace) {
                    return Err(amp_core::Error::invalid_input(format!(
                        "files: {id} is not in this workspace; every member reads a workspace chat's \
                         answers, so it reads only the workspace's files (share the file there first)"
                    )));
                }
                files.push(file);
            }
            for &id in attached_sources.unwrap_or_default() {
                if !self.data_sources.exists(id) {
                    return Err(amp_core::Error::not_found(format!("data source {id}")));
                }
                data_sources.push(id);
            }
        } else if let Some(agent) =
            agent.filter(|a| !a.files.is_empty() || !a.workspaces.is_empty() || !a.data_sources.is_empty())
        {
            // A source removed from the configuration since the agent was saved is skipped.
            data_sources
                .extend(agent.data_sources.iter().copied().filter(|&id| self.data_sources.exists(id)));
            for &id in &agent.files {
                // A source deleted or unshared since the agent was saved is skipped, not
                // an error: the agent still answers from the rest.
                match self.files.get(principal, id).await {
                    Ok(file) => files.push(file),
                    Err(err) if err.kind() == amp_core::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
            for &w in &agent.workspaces {
                if self.session.is_member(principal, w).await? {
                    files.extend(self.stores.files.list_files(&SearchFilter::workspace(w)).await?);
                }
            }
        } else {
            let scope = self.session.retrieval_scope(principal, workspace).await?;
            files = self.stores.files.list_files(&scope).await?;
        }
        let mut seen = HashSet::new();
        files.retain(|f| {
            f.status == FileStatus::Ready && fits_conversation(f, workspace) && seen.insert(f.id)
        });
        let mut seen = HashSet::new();
        data_sources.retain(|id| seen.insert(*id));
        let retrieval = agent.map(|a| a.retrieval).unwrap_or_default();
        Ok(Scope { files, data_sources, shared: workspace.is_some(), retrieval })
    }

    /// The file passages that best answer `question`, found by `mode` (else the scope's
    /// agent's, else the deployment's), best first, then the data-source records the
    /// caller may read, numbered from 1.
    pub async fn retrieve(
        &self,
        principal: &Principal,
        question: &str,
        scope: &Scope,
        mode: Option<RetrievalMode>,
    ) -> Result<Vec<Source>> {
        self.retrieve_with(principal, question, scope, self.passages, mode).await
    }

    /// [`Context::retrieve`] with `limit` passages and records.
    async fn retrieve_with(
        &self,
        principal: &Principal,
        question: &str,
        scope: &Scope,
        limit: usize,
        mode: Option<RetrievalMode>,
    ) -> Result<Vec<Source>> {
        let mut settings = scope.retrieval.over(self.retriever.settings());
        if settings.vector_weight == 0.0 && settings.keyword_weight == 0.0 {
            // An agent's weight of 0 over a deployment's 0 for the other: nothing would rank.
            settings.vector_weight = self.retriever.settings().vector_weight;
            settings.keyword_weight = self.retriever.settings().keyword_weight;
        }
        if let Some(mode) = mode {
            settings.mode = mode;
        }
        let mut sources = self.retrieve_files(question, &scope.files, limit, &settings).await?;
        let hits =
            self.data_sources.search(principal, &scope.data_sources, question, limit, scope.shared).await?;
        for hit in hits {
            // A record is one row of someone's database and may be any size; the model
            // gets its beginning, as it gets one passage of a file.
            let mut text = hit.record.text;
            if let Some((cut, _)) = text.char_indices().nth(MAX_RECORD_CHARS) {
                text.truncate(cut);
            }
            sources.push(Source {
                number: u32::try_from(sources.len() + 1).unwrap_or(u32::MAX),
                origin: PassageOrigin::Record {
                    data_source: hit.source,
                    record: hit.record.external_id,
                    url: hit.record.url,
                },
                title: format!("{}: {}", hit.source_name, hit.record.title),
                page: None,
                byte_range: ByteRange { start: 0, end: text.len() as u64 },
                text,
                score: 0.0,
                ranks: Ranks::default(),
            });
        }
        Ok(sources)
    }

    /// The `limit` passages of `files` that best answer `question`, found as `settings`
    /// say. No files, no search (and no embedding).
    async fn retrieve_files(
        &self,
        question: &str,
        files: &[FileMeta],
        limit: usize,
        settings: &RetrievalConfig,
    ) -> Result<Vec<Source>> {
        if files.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let filter = SearchFilter::of_files(files);
        let hits = self.retriever.search(question, &filter, limit, settings).await?;
        let ids: Vec<ChunkId> = hits.iter().map(|h| h.chunk).collect();
        let mut chunks: HashMap<ChunkId, amp_core::Chunk> =
            self.stores.files.get_chunks(&ids).await?.into_iter().map(|c| (c.id, c)).collect();
        let names: HashMap<FileId, &str> = files.iter().map(|f| (f.id, f.name.as_str())).collect();
        let mut sources = Vec::with_capacity(hits.len());
        for hit in hits {
            // A passage whose file was deleted after the search has no record: skip it.
            let Some(chunk) = chunks.remove(&hit.chunk) else { continue };
            sources.push(Source {
                number: 0,
                origin: PassageOrigin::File { file: hit.file, chunk: chunk.id },
                title: names.get(&hit.file).copied().unwrap_or_default().to_owned(),
                page: chunk.page,
                byte_range: chunk.byte_range,
                text: chunk.text,
                score: hit.score,
                ranks: hit.ranks,
            });
        }
        let mut sources = Retriever::diversify(settings, sources, limit, |s| s.text.as_str());
        for (i, source) in sources.iter_mut().enumerate() {
            source.number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        Ok(sources)
    }
}

/// Whether `file` may be read into `conversation`: anything the caller may open, outside a
/// workspace; inside one, that workspace's files only, since every member of it reads the
/// stored answer and its citations.
fn fits_conversation(file: &FileMeta, workspace: Option<WorkspaceId>) -> bool {
    match workspace {
        None => true,
        Some(w) => file.workspace == Some(w),
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("passages", &self.passages).finish_non_exhaustive()
    }
}

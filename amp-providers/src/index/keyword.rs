//! [`KeywordIndex`] on tantivy: BM25 over passages, persisted in a directory.
//!
//! Each passage is one document: its chunk, file, owner and workspace as untokenized
//! terms, its text analysed as English: words lower-cased, a short list of stop words
//! (Lucene's 33) dropped, and each word cut to its Snowball stem, so "engines" matches
//! "engine" and "measured" matches "measuring". Scores are tantivy's BM25 (k1 1.2,
//! b 0.75).
//!
//! The access filter is applied inside the search, never by over-fetching: the `limit` best
//! hits are always the best readable ones, however few those are. Owner, workspace and file
//! are also kept as 128-bit fast fields, so a candidate is checked in constant time, and a
//! search is planned per segment by how many passages its filter can match:
//! - a filter matching a small share of the segment (a person's files among many, a scope
//!   of a few thousand files) reads those passages' postings and scores each of them;
//! - a broad one runs block-max WAND over the query's words, checking the filter on each
//!   candidate that could still enter the top `limit` (most are skipped unscored).
//!
//! Both paths give a passage the same score (the sum of its terms' BM25, up to the order
//! of float additions), so the plan changes no ranking beyond exact ties.
//!
//! Writes go through one writer behind a mutex and are committed before the call returns;
//! the reader is reloaded after each commit, so a search always sees every finished write.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv6Addr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use amp_core::{ChunkId, Error, FileId, KeywordEntry, KeywordIndex, Result, SearchFilter, SearchHit};

use super::Ordered;
use async_trait::async_trait;
use tantivy::collector::Count;
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, TermQuery, Weight};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
    TokenStream,
};
use tantivy::{
    DocAddress, DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader,
    TERMINATED, TantivyDocument, Term, doc,
};

/// Memory the writer may use before it flushes a segment.
const WRITER_MEMORY: usize = 50_000_000;
/// Query terms used at most; a longer query is cut (its first terms count).
const MAX_QUERY_TERMS: usize = 64;
/// A filter matching at most one passage in this many of a segment scores each of them
/// directly; a broader one goes through block-max WAND (see the module docs).
const FEW_SHARE: u64 = 8;
/// Files a filter may name for the direct path to list their passages (one term lookup
/// each per segment); longer lists are checked per candidate instead.
const MAX_LISTED_FILES: usize = 20_000;
/// The analyzer passage text and queries go through.
const ANALYZER: &str = "amp_english";
/// Lucene's English stop words: short, so only words that carry no meaning are dropped.
const STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no",
    "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to",
    "was", "will", "with",
];

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(STOP_WORDS.map(str::to_owned)))
        .filter(Stemmer::new(Language::English))
        .build()
}

#[derive(Clone, Copy)]
struct Fields {
    chunk: Field,
    file: Field,
    owner: Field,
    workspace: Field,
    text: Field,
    /// The same ids as 128-bit fast fields, for the filter check on a candidate.
    owner_key: Field,
    workspace_key: Field,
    file_key: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        chunk: builder.add_text_field("chunk", STRING | STORED),
        file: builder.add_text_field("file", STRING | STORED),
        owner: builder.add_text_field("owner", STRING),
        workspace: builder.add_text_field("workspace", STRING),
        text: builder.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(ANALYZER)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        ),
        owner_key: builder.add_ip_addr_field("owner_key", FAST),
        workspace_key: builder.add_ip_addr_field("workspace_key", FAST),
        file_key: builder.add_ip_addr_field("file_key", FAST),
    };
    (builder.build(), fields)
}

fn failed(what: &str) -> impl FnOnce(tantivy::TantivyError) -> Error + '_ {
    move |e| Error::internal(format!("keyword index: {what}"), e.to_string())
}

struct Inner {
    index: Index,
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
}

/// BM25 keyword search persisted under a directory (the embedded default).
#[derive(Clone)]
pub struct TantivyKeywordIndex {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TantivyKeywordIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyKeywordIndex").finish_non_exhaustive()
    }
}

impl TantivyKeywordIndex {
    /// Opens the index in `dir`, creating the directory and the index if needed.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("cannot create {}", dir.display()), e))?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| Error::internal(format!("cannot open {}", dir.display()), e.to_string()))?;
        let index = match Index::open_or_create(directory, schema.clone()) {
            Err(tantivy::TantivyError::SchemaError(reason)) => {
                // Written by a version that kept other fields. Its entries derive from the
                // stored passages, so it starts over empty and is back-filled at start.
                tracing::warn!(dir = %dir.display(), reason, "the keyword index has another schema; rebuilding it");
                std::fs::remove_dir_all(dir)
                    .and_then(|()| std::fs::create_dir_all(dir))
                    .map_err(|e| Error::internal(format!("cannot clear {}", dir.display()), e))?;
                Index::create_in_dir(dir, schema).map_err(failed("create"))?
            }
            opened => opened.map_err(failed("open"))?,
        };
        Self::over(index, fields)
    }

    /// Segments the index is read from now (each costs every search a few term lookups).
    pub fn segments(&self) -> usize {
        self.inner.reader.searcher().segment_readers().len()
    }

    /// An index in memory, for tests and short-lived tools.
    pub fn in_memory() -> Result<Self> {
        let (schema, fields) = schema();
        Self::over(Index::create_in_ram(schema), fields)
    }

    fn over(index: Index, fields: Fields) -> Result<Self> {
        index.tokenizers().register(ANALYZER, analyzer());
        let writer = index.writer(WRITER_MEMORY).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(tantivy::directory::error::LockError::LockBusy, _) => {
                Error::unavailable(
                    "the keyword index is already open in another process (one AMP process per data dir)",
                )
            }
            e => failed("open a writer")(e),
        })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(failed("open a reader"))?;
        Ok(TantivyKeywordIndex {
            inner: Arc::new(Inner { index, fields, writer: Mutex::new(writer), reader }),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::internal("keyword index task failed", e.to_string()))?
    }
}

impl Inner {
    fn commit(&self, writer: &mut IndexWriter) -> Result<()> {
        writer.commit().map_err(failed("commit"))?;
        self.reader.reload().map_err(failed("reload"))
    }

    /// The query's words, analysed as passage text is.
    fn terms(&self, query: &str) -> Result<Vec<Term>> {
        let mut analyzer = self.index.tokenizer_for_field(self.fields.text).map_err(failed("tokenizer"))?;
        let mut stream = analyzer.token_stream(query);
        let mut terms = Vec::new();
        while stream.advance() && terms.len() < MAX_QUERY_TERMS {
            let term = Term::from_field_text(self.fields.text, &stream.token().text);
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        Ok(terms)
    }

    /// The `limit` best passages for `query` that `filter` allows (see the module docs).
    fn search(&self, query: &str, filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>> {
        let terms = self.terms(query)?;
        let no_files = filter.files.as_ref().is_some_and(Vec::is_empty);
        if terms.is_empty()
            || limit == 0
            || no_files
            || (filter.owners.is_empty() && filter.workspaces.is_empty())
        {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let scoring = EnableScoring::enabled_from_searcher(&searcher);
        let words: Vec<TermQuery> =
            terms.into_iter().map(|t| TermQuery::new(t, IndexRecordOption::WithFreqs)).collect();
        let union = BooleanQuery::new(
            words.iter().map(|q| (Occur::Should, Box::new(q.clone()) as Box<dyn Query>)).collect(),
        )
        .weight(scoring)
        .map_err(failed("plan"))?;
        let each = words.iter().map(|q| q.weight(scoring)).collect::<tantivy::Result<Vec<_>>>();
        let each = each.map_err(failed("plan"))?;
        let allowed = Allowed::from(filter);
        let listing = self.listing(filter);
        let mut best = Best::new(limit);
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let ord = ord as u32;
            match Self::few(segment, &listing)? {
                Some(docs) => {
                    // Listed from the files' postings, every doc is of a named file already.
                    let check = Check::open(segment, self.fields, &allowed, listing.by_files)?;
                    let docs = docs.into_iter().filter(|&d| check.allows(d));
                    score_each(segment, &each, docs, |doc, score| best.offer(score, ord, doc))?
                }
                None => {
                    let check = Check::open(segment, self.fields, &allowed, false)?;
                    union
                        .for_each_pruning(best.threshold(), segment, &mut |doc, score| {
                            if check.allows(doc) {
                                best.offer(score, ord, doc);
                            }
                            best.threshold()
                        })
                        .map_err(failed("search"))?
                }
            }
        }
        let f = self.fields;
        let mut hits = Vec::with_capacity(limit);
        for (score, address) in best.into_sorted() {
            let doc: TantivyDocument = searcher.doc(address).map_err(failed("read a hit"))?;
            let id = |field| doc.get_first(field).and_then(|v| v.as_str()).and_then(|s| s.parse().ok());
            let (Some(chunk), Some(file)) = (id(f.chunk), id(f.file)) else {
                return Err(Error::bug("a keyword index entry without chunk or file"));
            };
            hits.push(SearchHit { chunk: ChunkId::from_uuid(chunk), file: FileId::from_uuid(file), score });
        }
        Ok(hits)
    }

    /// The terms whose postings hold every passage `filter` can match: its files' when it
    /// names them (and not too many), else its owners' and workspaces'.
    fn listing(&self, filter: &SearchFilter) -> Listing {
        let f = self.fields;
        let terms = |field, ids: Vec<String>| -> (Field, Vec<Term>) {
            (field, ids.iter().map(|id| Term::from_field_text(field, id)).collect())
        };
        match &filter.files {
            Some(files) if files.len() <= MAX_LISTED_FILES => Listing {
                by_files: true,
                groups: vec![terms(f.file, files.iter().map(ToString::to_string).collect())],
            },
            _ => Listing {
                by_files: false,
                groups: vec![
                    terms(f.owner, filter.owners.iter().map(ToString::to_string).collect()),
                    terms(f.workspace, filter.workspaces.iter().map(ToString::to_string).collect()),
                ],
            },
        }
    }

    /// The passages of `segment` the `listing` terms hold, when they are a small share of
    /// the segment; `None` when they are not (skipping through the rest is cheaper).
    fn few(segment: &SegmentReader, listing: &Listing) -> Result<Option<Vec<DocId>>> {
        let io = |e: std::io::Error| Error::internal("keyword index: postings", e);
        let mut count = 0u64;
        let mut found = Vec::new();
        for (field, keys) in &listing.groups {
            let postings = segment.inverted_index(*field).map_err(failed("postings"))?;
            for key in keys {
                let Some(info) = postings.get_term_info(key).map_err(io)? else { continue };
                count += u64::from(info.doc_freq);
                found.push((postings.clone(), info));
            }
        }
        if count * FEW_SHARE > u64::from(segment.max_doc()) {
            return Ok(None);
        }
        let mut docs = Vec::with_capacity(count as usize);
        for (postings, info) in &found {
            let mut list =
                postings.read_postings_from_terminfo(info, IndexRecordOption::Basic).map_err(io)?;
            while list.doc() != TERMINATED {
                docs.push(list.doc());
                list.advance();
            }
        }
        docs.sort_unstable();
        docs.dedup();
        Ok(Some(docs))
    }
}

/// Terms of some fields whose postings together hold every passage a filter can match.
struct Listing {
    /// Whether they are the filter's files (so a listed passage is of one of them).
    by_files: bool,
    groups: Vec<(Field, Vec<Term>)>,
}

/// A filter's ids as 128-bit keys, sorted for binary search.
struct Allowed {
    owners: Vec<Ipv6Addr>,
    workspaces: Vec<Ipv6Addr>,
    files: Option<Vec<Ipv6Addr>>,
}

fn key(uuid: uuid::Uuid) -> Ipv6Addr {
    Ipv6Addr::from(uuid.as_u128())
}

fn keys(ids: impl Iterator<Item = uuid::Uuid>) -> Vec<Ipv6Addr> {
    let mut keys: Vec<Ipv6Addr> = ids.map(key).collect();
    keys.sort_unstable();
    keys
}

impl From<&SearchFilter> for Allowed {
    fn from(filter: &SearchFilter) -> Self {
        Allowed {
            owners: keys(filter.owners.iter().map(|o| o.as_uuid())),
            workspaces: keys(filter.workspaces.iter().map(|w| w.as_uuid())),
            files: filter.files.as_ref().map(|files| keys(files.iter().map(|f| f.as_uuid()))),
        }
    }
}

/// [`Allowed`] against one segment's fast fields and deletes. Only the columns a check
/// needs are opened (opening one costs about as much as a term lookup).
struct Check<'a> {
    allowed: &'a Allowed,
    alive: Option<&'a tantivy::fastfield::AliveBitSet>,
    owner: Option<Column<Ipv6Addr>>,
    workspace: Option<Column<Ipv6Addr>>,
    /// The files to check against, unless the passages checked are known to be theirs.
    files: Option<(&'a [Ipv6Addr], Column<Ipv6Addr>)>,
}

impl<'a> Check<'a> {
    fn open(segment: &'a SegmentReader, f: Fields, allowed: &'a Allowed, of_files: bool) -> Result<Self> {
        let fast = segment.fast_fields();
        let column = |field: Field, wanted: bool| {
            if !wanted {
                return Ok(None);
            }
            fast.column_opt::<Ipv6Addr>(segment.schema().get_field_name(field)).map_err(failed("fast field"))
        };
        let files = match allowed.files.as_deref() {
            Some(files) if !of_files => {
                let file = column(f.file_key, true)?;
                Some((files, file.ok_or_else(|| Error::bug("a keyword index segment without files"))?))
            }
            _ => None,
        };
        Ok(Check {
            allowed,
            alive: segment.alive_bitset(),
            owner: column(f.owner_key, !allowed.owners.is_empty())?,
            workspace: column(f.workspace_key, !allowed.workspaces.is_empty())?,
            files,
        })
    }

    fn allows(&self, doc: DocId) -> bool {
        let within = |keys: &[Ipv6Addr], column: Option<&Column<Ipv6Addr>>| {
            column.and_then(|c| c.first(doc)).is_some_and(|k| keys.binary_search(&k).is_ok())
        };
        self.alive.is_none_or(|a| a.is_alive(doc))
            && (within(&self.allowed.owners, self.owner.as_ref())
                || within(&self.allowed.workspaces, self.workspace.as_ref()))
            && self.files.as_ref().is_none_or(|(files, column)| within(files, Some(column)))
    }
}

/// Scores each of `docs` (ascending) as the union of `words` would: the sum of the BM25 of
/// the words it holds. Documents holding none are not offered.
fn score_each(
    segment: &SegmentReader,
    words: &[Box<dyn Weight>],
    docs: impl Iterator<Item = DocId>,
    mut offer: impl FnMut(DocId, Score),
) -> Result<()> {
    let mut scorers = Vec::with_capacity(words.len());
    for word in words {
        scorers.push(word.scorer(segment, 1.0).map_err(failed("score"))?);
    }
    for doc in docs {
        let mut score = 0.0;
        let mut matched = false;
        for scorer in &mut scorers {
            if scorer.doc() < doc {
                scorer.seek(doc);
            }
            if scorer.doc() == doc {
                score += scorer.score();
                matched = true;
            }
        }
        if matched {
            offer(doc, score);
        }
    }
    Ok(())
}

/// The best `limit` hits across segments: ties go to the earlier document (segments are
/// read in order and documents ascending on both paths, so a tie never depends on the plan).
struct Best {
    limit: usize,
    /// The worst kept hit on top: lowest score, then latest address.
    heap: BinaryHeap<Reverse<(Ordered, Reverse<DocAddress>)>>,
}

impl Best {
    fn new(limit: usize) -> Self {
        Best { limit, heap: BinaryHeap::with_capacity(limit.min(1_024) + 1) }
    }

    /// What a hit must beat to enter (block-max WAND skips whatever cannot).
    fn threshold(&self) -> Score {
        match self.heap.peek() {
            Some(Reverse((Ordered(worst), _))) if self.heap.len() >= self.limit => *worst,
            _ => Score::MIN,
        }
    }

    fn offer(&mut self, score: Score, segment: u32, doc: DocId) {
        let entry = Reverse((Ordered(score), Reverse(DocAddress::new(segment, doc))));
        if self.heap.len() < self.limit {
            self.heap.push(entry);
        } else if self.heap.peek().is_some_and(|worst| entry < *worst) {
            self.heap.pop();
            self.heap.push(entry);
        }
    }

    /// Best first.
    fn into_sorted(self) -> Vec<(Score, DocAddress)> {
        let sorted = self.heap.into_sorted_vec();
        sorted.into_iter().map(|Reverse((Ordered(score), Reverse(address)))| (score, address)).collect()
    }
}

#[async_trait]
impl KeywordIndex for TantivyKeywordIndex {
    async fn upsert(&self, entries: Vec<KeywordEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.blocking(move |inner| {
            let f = inner.fields;
            let mut writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            for e in entries {
                let chunk = e.chunk.to_string();
                writer.delete_term(Term::from_field_text(f.chunk, &chunk));
                let mut document = doc!(
                    f.chunk => chunk,
                    f.file => e.file.to_string(),
                    f.owner => e.visibility.owner.to_string(),
                    f.text => e.text,
                );
                document.add_ip_addr(f.owner_key, key(e.visibility.owner.as_uuid()));
                document.add_ip_addr(f.file_key, key(e.file.as_uuid()));
                if let Some(ws) = e.visibility.workspace {
                    document.add_text(f.workspace, ws.to_string());
                    document.add_ip_addr(f.workspace_key, key(ws.as_uuid()));
                }
                writer.add_document(document).map_err(failed("add"))?;
            }
            inner.commit(&mut writer)
        })
        .await
    }

    async fn search(&self, query: &str, filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>> {
        let (query, filter) = (query.to_owned(), filter.clone());
        self.blocking(move |inner| inner.search(&query, &filter, limit)).await
    }

    async fn missing_files(&self, files: &[FileId]) -> Result<Vec<FileId>> {
        let files = files.to_vec();
        self.blocking(move |inner| {
            let searcher = inner.reader.searcher();
            let mut missing = Vec::new();
            for file in files {
                let term = Term::from_field_text(inner.fields.file, &file.to_string());
                let query = TermQuery::new(term, IndexRecordOption::Basic);
                if searcher.search(&query, &Count).map_err(failed("count"))? == 0 {
                    missing.push(file);
                }
            }
            Ok(missing)
        })
        .await
    }

    async fn delete_file(&self, file: FileId) -> Result<u64> {
        self.blocking(move |inner| {
            let term = Term::from_field_text(inner.fields.file, &file.to_string());
            let mut writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let count = inner
                .reader
                .searcher()
                .search(&TermQuery::new(term.clone(), IndexRecordOption::Basic), &Count)
                .map_err(failed("count"))?;
            if count > 0 {
                writer.delete_term(term);
                inner.commit(&mut writer)?;
            }
            Ok(count as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use amp_core::{UserId, Visibility, WorkspaceId};
    use tantivy::collector::TopDocs;

    use super::*;

    /// Tantivy's own ranking of the same search: the filter as clauses of a boolean query
    /// (scored zero), collected by `TopDocs`.
    fn reference(inner: &Inner, query: &str, filter: &SearchFilter, limit: usize) -> Vec<(ChunkId, Score)> {
        let f = inner.fields;
        let any_of = |field: Field, values: Vec<String>| -> Box<dyn Query> {
            let clauses = values
                .iter()
                .map(|v| {
                    let term = TermQuery::new(Term::from_field_text(field, v), IndexRecordOption::Basic);
                    (Occur::Should, Box::new(term) as Box<dyn Query>)
                })
                .collect();
            Box::new(tantivy::query::BoostQuery::new(Box::new(BooleanQuery::new(clauses)), 0.0))
        };
        let words = inner.terms(query).unwrap().into_iter().map(|t| {
            (Occur::Should, Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)) as Box<dyn Query>)
        });
        let owners = any_of(f.owner, filter.owners.iter().map(ToString::to_string).collect());
        let workspaces = any_of(f.workspace, filter.workspaces.iter().map(ToString::to_string).collect());
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, Box::new(BooleanQuery::new(words.collect()))),
            (
                Occur::Must,
                Box::new(BooleanQuery::new(vec![(Occur::Should, owners), (Occur::Should, workspaces)])),
            ),
        ];
        if let Some(files) = &filter.files {
            clauses.push((Occur::Must, any_of(f.file, files.iter().map(ToString::to_string).collect())));
        }
        let searcher = inner.reader.searcher();
        let top = searcher
            .search(&BooleanQuery::new(clauses), &TopDocs::with_limit(limit).order_by_score())
            .unwrap();
        top.into_iter()
            .map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address).unwrap();
                let chunk = doc.get_first(f.chunk).and_then(|v| v.as_str()).unwrap().parse().unwrap();
                (ChunkId::from_uuid(chunk), score)
            })
            .collect()
    }

    /// An index written with other fields (an earlier version's) is replaced by an empty
    /// one rather than refusing to start; the server back-fills it from stored passages.
    #[tokio::test]
    async fn an_index_of_another_schema_is_rebuilt_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keywords");
        std::fs::create_dir_all(&path).unwrap();
        let mut older = Schema::builder();
        let text = older.add_text_field("text", tantivy::schema::TEXT);
        let old = Index::create_in_dir(&path, older.build()).unwrap();
        let mut writer: IndexWriter = old.writer(15_000_000).unwrap();
        writer.add_document(doc!(text => "written before")).unwrap();
        writer.commit().unwrap();
        drop((writer, old));

        let index = TantivyKeywordIndex::open(&path).unwrap();
        let owner = UserId::new();
        let filter = SearchFilter::owner(owner);
        assert!(index.search("written", &filter, 5).await.unwrap().is_empty());
        let (chunk, file) = (ChunkId::new(), FileId::new());
        let visibility = Visibility { owner, workspace: None };
        let entry = KeywordEntry { chunk, file, visibility, text: "written after".to_owned() };
        index.upsert(vec![entry]).await.unwrap();
        let hits = index.search("written", &filter, 5).await.unwrap();
        assert_eq!(hits.iter().map(|h| h.chunk).collect::<Vec<_>>(), vec![chunk]);
    }

    /// Both plans (each passage of a narrow filter scored, block-max WAND with a check on
    /// each candidate for a broad one) over several segments with deletes give tantivy's
    /// own hits and scores.
    #[tokio::test]
    async fn each_plan_ranks_as_a_boolean_query_with_the_filter_as_clauses() {
        let index = TantivyKeywordIndex::in_memory().unwrap();
        // Segments stay as committed, so every search reads several.
        index.inner.writer.lock().unwrap().set_merge_policy(Box::new(tantivy::merge_policy::NoMergePolicy));
        let (busy, quiet, member) = (UserId::new(), UserId::new(), UserId::new());
        let ws = WorkspaceId::new();
        let files: Vec<FileId> = (0..200).map(|_| FileId::new()).collect();
        let mut seed = 17u64;
        let vocabulary: Vec<String> = (0..300).map(|i| format!("word{i}")).collect();
        // A word of skewed frequency: a uniform draw below a uniform bound, so low numbers
        // are common.
        let mut word = move || {
            let mut next = |n: usize| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((seed >> 33) as usize) % n
            };
            let bound = next(300) + 1;
            vocabulary[next(bound)].clone()
        };
        // Four commits, so four segments (the writer merges none this small by itself).
        for batch in 0..4 {
            let mut entries = Vec::new();
            for i in 0..1_000 {
                let file = files[(batch * 1_000 + i) / 20];
                // Most passages are one owner's; a few another's, some shared into a workspace.
                let owner = if file.as_uuid().as_u128().is_multiple_of(10) { quiet } else { busy };
                let workspace = i.is_multiple_of(13).then_some(ws);
                let text: Vec<String> = (0..12).map(|_| word()).collect();
                entries.push(KeywordEntry {
                    chunk: ChunkId::new(),
                    file,
                    visibility: Visibility { owner, workspace },
                    text: text.join(" "),
                });
            }
            index.upsert(entries).await.unwrap();
        }
        for file in &files[..5] {
            index.delete_file(*file).await.unwrap();
        }
        let filters = [
            ("broad (WAND)", SearchFilter::owner(busy)),
            ("narrow owner (each scored)", SearchFilter::owner(quiet)),
            ("workspace member", SearchFilter::owner(member).with_workspace(ws)),
            ("three files", SearchFilter::owner(busy).with_files(files[3..6].to_vec())),
            ("most files", SearchFilter::owner(busy).with_files(files[..180].to_vec())),
        ];
        let inner = &index.inner;
        let segments = inner.reader.searcher().segment_readers().len();
        assert!(segments > 1, "the test needs several segments, not {segments}");
        for (name, filter) in &filters {
            for _ in 0..30 {
                let query: Vec<String> = (0..3).map(|_| word()).collect();
                let query = query.join(" ");
                let ours: Vec<(ChunkId, Score)> =
                    inner.search(&query, filter, 10).unwrap().iter().map(|h| (h.chunk, h.score)).collect();
                let theirs = reference(inner, &query, filter, 10);
                assert_eq!(ours.len(), theirs.len(), "{name}: {query}");
                for ((_, x), (_, y)) in ours.iter().zip(&theirs) {
                    assert!((x - y).abs() <= 1e-4, "{name}: {query}: score {x} against {y}");
                }
                // Hits tied at the cut may differ; everything above it must be the same.
                let cut = theirs.last().map_or(0.0, |h| h.1) + 1e-4;
                let above = |hits: &[(ChunkId, Score)]| {
                    hits.iter().filter(|h| h.1 > cut).map(|h| h.0).collect::<std::collections::HashSet<_>>()
                };
                assert_eq!(above(&ours), above(&theirs), "{name}: {query}");
            }
        }
    }
}

//! [`KeywordIndex`] on tantivy: BM25 over passages, persisted in a directory.
//!
//! Each passage is one document: its chunk, file, owner and workspace as untokenized
//! terms, its text analysed as English: words lower-cased, a short list of stop words
//! (Lucene's 33) dropped, and each word cut to its Snowball stem, so "engines" matches
//! "engine" and "measured" matches "measuring". Scores are tantivy's BM25 (k1 1.2,
//! b 0.75). The access
//! filter is part of the query itself (a passage must match a query term *and* one of the
//! readable owners or workspaces *and*, when given, one of the files), so the `limit` best
//! hits are always the best readable ones, however few those are.
//!
//! Writes go through one writer behind a mutex and are committed before the call returns;
//! the reader is reloaded after each commit, so a search always sees every finished write.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use amp_core::{ChunkId, Error, FileId, KeywordEntry, KeywordIndex, Result, SearchFilter, SearchHit};
use async_trait::async_trait;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
    TokenStream,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

/// Memory the writer may use before it flushes a segment.
const WRITER_MEMORY: usize = 50_000_000;
/// Query terms used at most; a longer query is cut (its first terms count).
const MAX_QUERY_TERMS: usize = 64;
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
        let index = Index::open_or_create(directory, schema).map_err(failed("open"))?;
        Self::over(index, fields)
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

    /// Any of `values` in `field`.
    fn any_of(field: Field, values: impl Iterator<Item = String>) -> BooleanQuery {
        let clauses: Vec<(Occur, Box<dyn Query>)> = values
            .map(|v| {
                let term = TermQuery::new(Term::from_field_text(field, &v), IndexRecordOption::Basic);
                (Occur::Should, Box::new(term) as Box<dyn Query>)
            })
            .collect();
        BooleanQuery::new(clauses)
    }

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
        let f = self.fields;
        let words = BooleanQuery::new(
            terms
                .into_iter()
                .map(|t| {
                    (
                        Occur::Should,
                        Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)) as Box<dyn Query>,
                    )
                })
                .collect(),
        );
        let mut readable = Self::any_of(f.owner, filter.owners.iter().map(ToString::to_string));
        if !filter.workspaces.is_empty() {
            let owners = readable;
            let workspaces = Self::any_of(f.workspace, filter.workspaces.iter().map(ToString::to_string));
            readable = BooleanQuery::new(vec![
                (Occur::Should, Box::new(owners) as Box<dyn Query>),
                (Occur::Should, Box::new(workspaces)),
            ]);
        }
        // Only the words score; the filters are boosted to nothing.
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, Box::new(words)),
            (Occur::Must, Box::new(tantivy::query::BoostQuery::new(Box::new(readable), 0.0))),
        ];
        if let Some(files) = &filter.files {
            let files = Self::any_of(f.file, files.iter().map(ToString::to_string));
            clauses.push((Occur::Must, Box::new(tantivy::query::BoostQuery::new(Box::new(files), 0.0))));
        }
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&BooleanQuery::new(clauses), &TopDocs::with_limit(limit).order_by_score())
            .map_err(failed("search"))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(failed("read a hit"))?;
            let id = |field| doc.get_first(field).and_then(|v| v.as_str()).and_then(|s| s.parse().ok());
            let (Some(chunk), Some(file)) = (id(f.chunk), id(f.file)) else {
                return Err(Error::bug("a keyword index entry without chunk or file"));
            };
            hits.push(SearchHit { chunk: ChunkId::from_uuid(chunk), file: FileId::from_uuid(file), score });
        }
        Ok(hits)
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
                if let Some(ws) = e.visibility.workspace {
                    document.add_text(f.workspace, ws.to_string());
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

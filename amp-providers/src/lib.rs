//! # amp-providers
//!
//! Implementations of amp-core's traits. The in-process defaults need no set-up and run in
//! one process; remote and heavy backends sit behind cargo features of the same name (all on
//! by default but `mock`). Every backend passes its trait's conformance kit.
//!
//! | trait | backends (feature) |
//! |---|---|
//! | [`ChatModel`](amp_core::ChatModel) | [`chat::openai::OpenAiChat`] (`openai`: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp, LM Studio), [`chat::anthropic::AnthropicChat`] (`anthropic`), [`chat::local::LocalChatModel`] (`local-llm`: SmolLM2-135M-Instruct on candle, offline) |
//! | [`ChatModelFactory`](amp_core::ChatModelFactory) | [`chat::ProviderFactory`]: a client per registry deployment, by provider (the local model loads on first use) |
//! | [`Tokenizer`](amp_core::Tokenizer) | [`tokenize::TiktokenTokenizer`] and [`tokenize::EstimateTokenizer`] (`tiktoken`), [`chat::local::LocalTokenizer`] (`local-llm`), [`tokenize::HuggingFaceTokenizer`] (`fastembed`: the local embedder's word pieces, for sizing chunks); [`tokenize::tokenizer_for`] picks by [`TokenizerKind`](amp_core::TokenizerKind) |
//! | [`Embedder`](amp_core::Embedder) | [`embed::fastembed::LocalEmbedder`] (`fastembed`: all-MiniLM-L6-v2 on ONNX Runtime) and [`embed::lazy::LazyLocalEmbedder`] (the same, loaded on first use), [`embed::openai::OpenAiEmbedder`] (`openai`) |
//! | [`VectorIndex`](amp_core::VectorIndex) | `HnswVectorIndex` (`hnsw`: an HNSW graph over the flat index's file, exact under filters matching fewer than 20,000 passages or √(24,000 × passages); the embedded default), [`FlatVectorIndex`] (exact search, in memory or persisted to one file), `PgVectorIndex` (`postgres`: pgvector, shared by every process on one PostgreSQL) |
//! | [`KeywordIndex`](amp_core::KeywordIndex) | `TantivyKeywordIndex` (`tantivy`: BM25 persisted in a directory, English analysis, access filters inside the query; the embedded default), `PgKeywordIndex` (`postgres`: full-text search in PostgreSQL, shared by every process) |
//! | [`BlobStore`](amp_core::BlobStore) | [`blob::LocalBlobStore`] (a directory, with URLs it signs itself; the embedded default), `blob::S3BlobStore` (`s3`: S3 or any S3-compatible store, presigned URLs) |
//! | [`Extractor`](amp_core::Extractor) | `extract::DocumentExtractor` (`extract`: text, HTML, DOCX, PDF with pdftotext and OCR fallbacks, images by OCR; bounded per file) |
//! | [`Scanner`](amp_core::Scanner) | `scan::ClamAvScanner` (`clamav`: clamd's INSTREAM over TCP or a Unix socket) |
//! | [`JobQueue`](amp_core::JobQueue) | `sql::SqliteJobQueue` (`sqlite`), `sql::PostgresJobQueue` (`postgres`, `FOR UPDATE SKIP LOCKED`) |
//! | [`Cache`](amp_core::Cache) | [`MemoryCache`] (LRU, entry and byte bounds, TTL), [`redis::RedisCache`] (`redis`) |
//! | [`EventBus`](amp_core::EventBus) | [`MemoryEventBus`] (ordered ids, bounded replay, bounded subscribers), [`redis::RedisEventBus`] (`redis`) |
//! | [`RateLimiter`](amp_core::RateLimiter) | [`MemoryRateLimiter`], [`redis::RedisRateLimiter`] (`redis`) |
//! | [`MailSender`](amp_core::MailSender) | [`mail::LogMailSender`] (the embedded default: the log, for the operator), [`mail::PickupDirMailSender`] (one `.eml` file per message in a directory) |
//! | [`JwksSource`](amp_core::JwksSource) | `jwks::HttpJwksSource` (`http-client`: an OpenID Connect provider's published keys) |
//! | the store traits ([`Stores`](amp_core::Stores)) | [`sql::SqliteStores`] (`sqlite`, the embedded default), [`sql::PostgresStores`] (`postgres`); [`redis::RedisSessionStore`] for sessions (`redis`) |
//!
//! [`mock`] (feature `mock`) holds loopback servers that speak the OpenAI and Anthropic wire
//! formats byte for byte, including their errors, for tests and benches.

#![warn(missing_docs)]

pub mod blob;
pub mod cache;
pub mod chat;
#[cfg(feature = "sql-connector")]
pub mod connector;
pub mod embed;
pub mod event_bus;
#[cfg(feature = "extract")]
pub mod extract;
#[cfg(feature = "http-client")]
pub mod http;
pub mod index;
#[cfg(feature = "http-client")]
pub mod jwks;
pub mod mail;
#[cfg(feature = "mock")]
pub mod mock;
pub mod rate_limit;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "clamav")]
pub mod scan;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod sql;
pub mod tokenize;

pub use cache::memory::MemoryCache;
pub use event_bus::memory::MemoryEventBus;
pub use index::flat::FlatVectorIndex;
#[cfg(feature = "hnsw")]
pub use index::flat::hnsw::HnswVectorIndex;
#[cfg(feature = "tantivy")]
pub use index::keyword::TantivyKeywordIndex;
#[cfg(feature = "postgres")]
pub use index::pg_keyword::PgKeywordIndex;
#[cfg(feature = "postgres")]
pub use index::pgvector::PgVectorIndex;
pub use rate_limit::memory::MemoryRateLimiter;

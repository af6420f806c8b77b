//! # amp-core
//!
//! The vocabulary of AMP: domain types, the traits every backend implements, the error
//! type and the configuration types. It does no I/O, so it compiles fast and is safe to
//! depend on from anywhere.
//!
//! - [`ids`], [`chat`], [`model`], [`document`], [`people`], [`conversation`], [`audit`]:
//!   what AMP talks about.
//! - [`traits`]: the services agents depend on ([`ChatModel`], [`Embedder`], [`VectorIndex`],
//!   [`Cache`], [`EventBus`], …), all object-safe so agents hold `Arc<dyn …>`.
//! - [`store`]: persistence traits and the [`Stores`] bundle.
//! - [`Error`]: one error type whose [`ErrorKind`] maps to exactly one HTTP status.
//! - [`config`]: the `amp.toml` schema and its loader.
//! - `testkit` (feature): conformance suites that every backend of a trait runs.
//!
//! ```
//! use amp_core::{ChatMessage, ChatRequest, Error, ErrorKind, ModelId};
//!
//! let mut request = ChatRequest::new(vec![
//!     ChatMessage::system("Answer in one sentence."),
//!     ChatMessage::user("What is the capital of France?"),
//! ]);
//! request.model = Some(ModelId::new("local"));
//! request.validate()?;
//!
//! let err = Error::not_found("model gpt-5");
//! assert_eq!(err.kind(), ErrorKind::NotFound);
//! assert_eq!(err.kind().http_status(), 404);
//! # Ok::<(), Error>(())
//! ```

#![warn(missing_docs)]

pub mod audit;
pub mod chat;
pub mod config;
pub mod conversation;
pub mod data_source;
pub mod document;
pub mod error;
pub mod ids;
pub mod model;
pub mod people;
pub mod routing;
pub mod secret;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod traits;

pub use chat::{ChatMessage, ChatRequest, ChatResponse, FinishReason, Role, StreamEvent, ToolCall, Usage};
pub use config::AmpConfig;
pub use document::{
    ByteRange, Chunk, ChunkSource, Citation, FileMeta, FileStatus, PassageOrigin, SearchFilter, SearchHit,
    Visibility,
};
pub use error::{BoxError, Error, ErrorBody, ErrorKind, Result};
pub use ids::{
    AgentId, ApiKeyId, ChunkId, ConversationId, DataSourceId, DeviceId, FileId, JobId, MessageId, ModelId,
    SessionId, TokenFamilyId, UserId, WorkspaceId,
};
pub use model::{
    Deployment, LoadBalanceStrategy, ModelRegistryConfig, ModelSpec, Provider, Tier, TokenizerKind,
};
pub use people::{
    AccountStatus, AgentConfig, AgentRetrieval, AgentVisibility, CredentialId, DeviceSession, Invitation,
    Membership, Preferences, User, Workspace, WorkspaceRole,
};
pub use routing::{BreakerConfig, HealthCheckConfig, RetryConfig, RouterConfig};
pub use secret::Secret;
pub use store::Stores;
pub use traits::blob_store::{BlobKey, BlobMeta, BlobStore, ByteStream, PresignedRequest, UploadConstraints};
pub use traits::cache::Cache;
pub use traits::chat_model::{ChatModel, ChatModelFactory, ChatStream};
pub use traits::connector::{Connector, SourceRecord, SyncBatch};
pub use traits::embedder::Embedder;
pub use traits::event_bus::{Event, EventBus, EventId, EventStream};
pub use traits::extractor::{ExtractedDocument, ExtractedPage, Extractor};
pub use traits::index::{KeywordEntry, KeywordIndex, VectorEntry, VectorIndex};
pub use traits::job_queue::{Job, JobQueue, JobState, NewJob};
pub use traits::key_source::JwksSource;
pub use traits::mail::{Mail, MailSender};
pub use traits::rate_limiter::{RateDecision, RateLimit, RateLimiter};
pub use traits::scanner::{ScanVerdict, Scanner};
pub use traits::tokenizer::Tokenizer;

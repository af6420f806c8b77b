//! The service traits agents depend on. Each is small and object-safe so agents hold
//! `Arc<dyn Trait>`; implementations live in amp-providers.

pub mod blob_store;
pub mod cache;
pub mod chat_model;
pub mod connector;
pub mod embedder;
pub mod event_bus;
pub mod extractor;
pub mod index;
pub mod job_queue;
pub mod key_source;
pub mod mail;
pub mod rate_limiter;
pub mod scanner;
pub mod tokenizer;

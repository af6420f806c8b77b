//! # amp-providers
//!
//! Implementations of amp-core's traits. The in-process defaults need no set-up and run in
//! one process; remote and heavy backends sit behind cargo features (see `Cargo.toml`).
//!
//! | trait | in-process default |
//! |---|---|
//! | [`Cache`](amp_core::Cache) | [`MemoryCache`]: LRU, bounded by entries and bytes, per-entry TTL |
//! | [`EventBus`](amp_core::EventBus) | [`MemoryEventBus`]: ordered ids per topic, bounded replay window, bounded subscribers |

#![warn(missing_docs)]

pub mod cache;
pub mod chat;
pub mod embed;
pub mod event_bus;
#[cfg(feature = "http-client")]
pub mod http;
#[cfg(feature = "mock")]
pub mod mock;
pub mod tokenize;

pub use cache::memory::MemoryCache;
pub use event_bus::memory::MemoryEventBus;

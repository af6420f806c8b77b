//! # amp-providers
//!
//! Implementations of amp-core's traits. The in-process defaults need no set-up and run in
//! one process; scale-out backends (PostgreSQL, Redis, S3, remote model APIs) sit behind
//! cargo features of the same names.
//!
//! | trait | in-process default |
//! |---|---|
//! | [`Cache`](amp_core::Cache) | [`MemoryCache`]: LRU, bounded by entries and bytes, per-entry TTL |
//! | [`EventBus`](amp_core::EventBus) | [`MemoryEventBus`]: ordered ids per topic, bounded replay window, bounded subscribers |

#![warn(missing_docs)]

pub mod cache;
pub mod event_bus;

pub use cache::memory::MemoryCache;
pub use event_bus::memory::MemoryEventBus;

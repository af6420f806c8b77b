//! [`VectorIndex`](amp_core::VectorIndex) implementations.
//!
//! [`FlatVectorIndex`] searches exactly, in process, in memory or persisted to one file:
//! fine up to a few hundred thousand passages. pgvector is the scale-out beyond that.

pub mod flat;

pub use flat::FlatVectorIndex;

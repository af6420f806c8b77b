//! [`Embedder`](amp_core::Embedder) implementations.

#[cfg(feature = "fastembed")]
pub mod fastembed;
#[cfg(feature = "openai")]
pub mod openai;

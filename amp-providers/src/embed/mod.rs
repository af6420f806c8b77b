//! [`Embedder`](amp_core::Embedder) implementations.

#[cfg(feature = "fastembed")]
pub mod fastembed;
#[cfg(feature = "fastembed")]
pub mod lazy;
#[cfg(feature = "openai")]
pub mod openai;

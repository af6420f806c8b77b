//! Text to vectors.

use async_trait::async_trait;

use crate::error::Result;

/// Turns passages into vectors for similarity search.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The model's name, recorded with the vectors so an index never mixes models.
    fn model(&self) -> &str;

    /// Length of every vector returned.
    fn dimension(&self) -> usize;

    /// The longest input, in the model's own tokens, embedded without truncation.
    /// Chunkers must keep passages within it.
    fn max_input_tokens(&self) -> usize;

    /// The batch size the backend handles best; callers split larger inputs.
    fn preferred_batch_size(&self) -> usize {
        16
    }

    /// One vector per input, in input order, each L2-normalized.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

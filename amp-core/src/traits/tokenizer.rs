//! Token counting.

use crate::chat::ChatMessage;

/// Counts tokens the way a model does (or over-estimates them, never under).
///
/// Counting is synchronous and CPU-bound; callers count large documents off the async
/// runtime.
pub trait Tokenizer: Send + Sync {
    /// The tokenizer's name (`o200k_base`, `estimate`, …).
    fn name(&self) -> &str;

    /// Tokens in plain text. Special-token markers inside the text count as ordinary text.
    fn count(&self, text: &str) -> usize;

    /// Tokens a chat prompt costs, including the model's per-message overhead.
    fn count_chat(&self, messages: &[ChatMessage]) -> usize {
        messages.iter().map(|m| self.count(&m.content) + 4).sum::<usize>() + 3
    }
}

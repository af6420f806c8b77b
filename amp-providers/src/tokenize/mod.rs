//! [`Tokenizer`] implementations.
//!
//! | [`TokenizerKind`] | tokenizer | models |
//! |---|---|---|
//! | `O200kBase` | [`TiktokenTokenizer::o200k_base`] | GPT-4o, GPT-4.1, the o-series |
//! | `Cl100kBase` | [`TiktokenTokenizer::cl100k_base`] | GPT-4, GPT-3.5 |
//! | `Estimate` | [`EstimateTokenizer`]: cl100k plus a margin, never under | Claude, and any model with no public tokenizer |
//! | `Local` | the local chat model's own tokenizer, which comes with the loaded model | SmolLM2 |
//!
//! [`tokenizer_for`] picks one by kind. The tiktoken-based tokenizers need the `tiktoken`
//! feature; the chat framing arithmetic in [`chat_overhead`] is always available.
//!
//! Chunkers size passages for an embedder with its own tokenizer rather than a chat
//! model's: `HuggingFaceTokenizer` (feature `fastembed`) reads the local embedder's
//! `tokenizer.json` and counts its word pieces.
//!
//! ```
//! # #[cfg(feature = "tiktoken")] {
//! use amp_core::{ChatMessage, TokenizerKind};
//! use amp_providers::tokenize::tokenizer_for;
//!
//! let tokenizer = tokenizer_for(TokenizerKind::Cl100kBase)?;
//! assert_eq!(tokenizer.count("tiktoken is great!"), 6);
//! // Per message: 3 framing tokens, the role (1) and the text; then 3 priming the reply.
//! let prompt = [ChatMessage::system("You are a helpful assistant."), ChatMessage::user("Hello!")];
//! assert_eq!(tokenizer.count_chat(&prompt), (3 + 1 + 6) + (3 + 1 + 2) + 3);
//! # }
//! # Ok::<(), amp_core::Error>(())
//! ```

use std::sync::Arc;

use amp_core::{Error, Result, Tokenizer, TokenizerKind};

pub mod chat_overhead;
#[cfg(feature = "tiktoken")]
pub mod estimate;
#[cfg(feature = "fastembed")]
pub mod huggingface;
#[cfg(feature = "tiktoken")]
pub mod tiktoken;

#[cfg(feature = "tiktoken")]
pub use estimate::EstimateTokenizer;
#[cfg(feature = "fastembed")]
pub use huggingface::HuggingFaceTokenizer;
#[cfg(feature = "tiktoken")]
pub use tiktoken::{TiktokenEncoding, TiktokenTokenizer};

/// The tokenizer that counts tokens for models of `kind`.
///
/// The BPE tables behind `O200kBase`, `Cl100kBase` and `Estimate` are loaded once per
/// process, on first use (50–120 ms), and shared by every tokenizer returned here.
///
/// `Local` is refused with [`Error::InvalidInput`]: the local model's tokenizer is part of
/// the loaded local model (its GGUF file carries the vocabulary), so it is taken from the
/// local chat model once that model is loaded, not built here.
///
/// Without the `tiktoken` feature every kind but `Local` is [`Error::Unavailable`].
pub fn tokenizer_for(kind: TokenizerKind) -> Result<Arc<dyn Tokenizer>> {
    match kind {
        TokenizerKind::Local => Err(Error::invalid_input(
            "the local model's tokenizer comes from the loaded local model; \
             take it from the local chat model instead of building it by kind",
        )),
        #[cfg(feature = "tiktoken")]
        TokenizerKind::O200kBase => Ok(Arc::new(TiktokenTokenizer::o200k_base()?)),
        #[cfg(feature = "tiktoken")]
        TokenizerKind::Cl100kBase => Ok(Arc::new(TiktokenTokenizer::cl100k_base()?)),
        #[cfg(feature = "tiktoken")]
        TokenizerKind::Estimate => Ok(Arc::new(EstimateTokenizer::new()?)),
        #[cfg(not(feature = "tiktoken"))]
        other => Err(Error::unavailable(format!(
            "the {other:?} tokenizer needs amp-providers built with the `tiktoken` feature"
        ))),
    }
}

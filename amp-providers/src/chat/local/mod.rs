//! SmolLM2-135M-Instruct in-process on candle: AMP's offline, keyless default chat model.
//!
//! ```text
//! GGUF (Q4_1) ──weights──▶ Q8_0 weights (cached beside it) ──▶ worker thread ◀── bounded queue ◀── stream()
//!        └────tokenizer──▶ LocalTokenizer (fixed pre-tokenizer) + ChatML template
//! ```
//!
//! - `weights.rs`: loads the GGUF and re-quantizes its Q4_1 tensors to Q8_0, because candle
//!   has a SIMD kernel for Q8_0 and none for Q4_1 (~25× faster); the result is cached as a
//!   GGUF file beside the original.
//! - `tokenizer.rs`: the model's own tokenizer read from the GGUF, with the pre-tokenizer
//!   candle gets wrong for `pre=smollm` replaced, and byte-exact incremental decoding.
//! - `template.rs`: the ChatML chat template (`<|im_start|>role\n…<|im_end|>\n`).
//! - `worker.rs`: one OS thread per loaded model that generates one answer at a time, fed by a
//!   bounded queue; dropping a stream cancels its generation.
//! - `stop.rs`: stop sequences that may span token boundaries.
//! - `model.rs`: [`LocalChatModel`], the [`ChatModel`](amp_core::ChatModel) itself.
//!
//! ```no_run
//! use amp_core::{ChatMessage, ChatModel, ChatRequest};
//! use amp_providers::chat::local::{LocalChatModel, LocalModelOptions};
//!
//! # async fn run() -> amp_core::Result<()> {
//! let model = LocalChatModel::load(LocalModelOptions::from_model_dir(".amp-cache/models".as_ref())).await?;
//! let question = ChatRequest::new(vec![ChatMessage::user("What is the capital of France?")]);
//! let answer = model.complete(&question).await?;
//! assert!(answer.message.content.contains("Paris"));
//! # Ok(())
//! # }
//! ```

mod lazy;
mod model;
mod stop;
mod template;
mod tokenizer;
mod weights;
mod worker;

pub use lazy::LazyLocalChat;
pub use model::{LocalChatModel, LocalModelOptions};
pub use tokenizer::LocalTokenizer;
pub use weights::WeightsOrigin;
pub use worker::GenerationStats;

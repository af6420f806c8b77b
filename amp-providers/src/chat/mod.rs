//! [`ChatModel`](amp_core::ChatModel) implementations.

#[cfg(feature = "anthropic")]
pub mod anthropic;
#[cfg(feature = "local-llm")]
pub mod local;
#[cfg(feature = "openai")]
pub mod openai;

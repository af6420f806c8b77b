//! [`ChatModel`](amp_core::ChatModel) implementations.

#[cfg(feature = "anthropic")]
pub mod anthropic;
mod factory;
#[cfg(feature = "local-llm")]
pub mod local;
#[cfg(feature = "openai")]
pub mod openai;

pub use factory::ProviderFactory;

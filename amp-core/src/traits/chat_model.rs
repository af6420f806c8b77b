//! A model that answers chats.

use async_trait::async_trait;
use futures::stream::BoxStream;

use std::sync::Arc;

use crate::chat::{ChatRequest, ChatResponse, StreamEvent};
use crate::error::Result;
use crate::ids::ModelId;
use crate::model::{Deployment, ModelSpec};
use crate::traits::tokenizer::Tokenizer;

/// A stream of answer events. An `Err` item ends the stream: it means the answer broke off
/// after it started. Dropping the stream cancels the work behind it (the upstream request
/// or the local generation).
pub type ChatStream = BoxStream<'static, Result<StreamEvent>>;

/// One deployment of a model: an HTTP endpoint with its key, or a local model.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// A name for logs and metrics (provider and deployment), never containing secrets.
    fn name(&self) -> &str;

    /// Answers in one piece.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse>;

    /// Answers as a stream. Errors before the first event are returned here (so a router
    /// can still fall back); errors after it arrive as an `Err` item.
    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream>;
}

/// Turns registry entries into callable models, so the Router can add a model or a
/// deployment at runtime without naming a concrete provider.
pub trait ChatModelFactory: Send + Sync {
    /// The client for one deployment of a model. Cheap: no network call is made here, and a
    /// heavy local model is loaded on its first request rather than now.
    fn connect(
        &self,
        model: &ModelId,
        spec: &ModelSpec,
        deployment: &Deployment,
    ) -> Result<Arc<dyn ChatModel>>;

    /// The tokenizer that counts the model's prompts (exact, or an over-estimate).
    fn tokenizer(&self, model: &ModelId, spec: &ModelSpec) -> Result<Arc<dyn Tokenizer>>;
}

//! A model that answers chats.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::chat::{ChatRequest, ChatResponse, StreamEvent};
use crate::error::Result;

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

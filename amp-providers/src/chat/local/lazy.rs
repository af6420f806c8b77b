//! The local model, loaded on its first request instead of at start.

use amp_core::{ChatModel, ChatRequest, ChatResponse, ChatStream, Error, Result};
use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{LocalChatModel, LocalModelOptions};

/// A [`LocalChatModel`] that loads its weights when first asked, so a server whose registry
/// names the local model starts at once and spends the memory only if it is used. A failed
/// load is returned to that request and tried again by the next.
pub struct LazyLocalChat {
    name: String,
    options: LocalModelOptions,
    model: OnceCell<LocalChatModel>,
}

impl LazyLocalChat {
    /// Nothing is read until the first request.
    pub fn new(options: LocalModelOptions) -> Self {
        LazyLocalChat { name: options.name.clone(), options, model: OnceCell::new() }
    }

    /// The loaded model. A failed load is logged whole (paths and causes are for the
    /// operator) and reported to the caller as `Unavailable`.
    async fn model(&self) -> Result<&LocalChatModel> {
        self.model.get_or_try_init(|| LocalChatModel::load(self.options.clone())).await.map_err(|err| {
            tracing::error!(model = %self.name, error = %err, "loading the local chat model failed");
            Error::unavailable(format!("{} could not be loaded; the server log says why", self.name))
        })
    }
}

impl std::fmt::Debug for LazyLocalChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyLocalChat")
            .field("name", &self.name)
            .field("loaded", &self.model.initialized())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ChatModel for LazyLocalChat {
    fn name(&self) -> &str {
        &self.name
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        self.model().await?.complete(request).await
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream> {
        self.model().await?.stream(request).await
    }
}

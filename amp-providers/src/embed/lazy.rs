//! The local embedder, loaded on its first request instead of at start.

use amp_core::{Embedder, Error, Result};
use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::fastembed::{DIMENSION, LocalEmbedder, LocalEmbedderOptions, MAX_INPUT_TOKENS, MODEL_NAME};

/// A [`LocalEmbedder`] that loads ONNX Runtime and the model when first asked to embed, so
/// a server starts at once and spends the ~100 MB only if something is indexed or searched.
///
/// Its model, dimension and input limit are known without loading. Concurrent first calls
/// load once; a failed load is returned to that call (as `Unavailable`) and tried again by
/// the next.
///
/// ```no_run
/// use amp_core::Embedder;
/// use amp_providers::embed::fastembed::LocalEmbedderOptions;
/// use amp_providers::embed::lazy::LazyLocalEmbedder;
///
/// # async fn run() -> amp_core::Result<()> {
/// let embedder = LazyLocalEmbedder::new(LocalEmbedderOptions::new(".amp-cache/models"));
/// assert_eq!(embedder.dimension(), 384); // nothing loaded yet
/// let vectors = embedder.embed(&["loads the model now".to_owned()]).await?;
/// # Ok(())
/// # }
/// ```
pub struct LazyLocalEmbedder {
    options: LocalEmbedderOptions,
    embedder: OnceCell<LocalEmbedder>,
}

impl LazyLocalEmbedder {
    /// Nothing is read until the first `embed`.
    pub fn new(options: LocalEmbedderOptions) -> Self {
        LazyLocalEmbedder { options, embedder: OnceCell::new() }
    }

    /// The loaded embedder. Loading blocks for ~0.3 s, so it runs on the blocking pool. A
    /// failed load is logged whole (paths and causes are for the operator) and reported to
    /// the caller as `Unavailable`.
    async fn embedder(&self) -> Result<&LocalEmbedder> {
        self.embedder
            .get_or_try_init(|| {
                let options = self.options.clone();
                async move {
                    tokio::task::spawn_blocking(move || LocalEmbedder::load(options))
                        .await
                        .map_err(|e| Error::internal("the local embedder's loading task failed", e))?
                }
            })
            .await
            .map_err(|err| {
                tracing::error!(model = MODEL_NAME, error = %err, "loading the local embedder failed");
                Error::unavailable(format!(
                    "the {MODEL_NAME} embedder could not be loaded; the server log says why"
                ))
            })
    }
}

impl std::fmt::Debug for LazyLocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyLocalEmbedder")
            .field("model", &MODEL_NAME)
            .field("loaded", &self.embedder.initialized())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Embedder for LazyLocalEmbedder {
    fn model(&self) -> &str {
        MODEL_NAME
    }

    fn dimension(&self) -> usize {
        DIMENSION
    }

    fn max_input_tokens(&self) -> usize {
        MAX_INPUT_TOKENS
    }

    fn preferred_batch_size(&self) -> usize {
        self.options.batch_size
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.embedder().await?.embed(texts).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use amp_core::ErrorKind;

    use super::*;

    fn model_dir() -> PathBuf {
        crate::embed::test_model_dir()
    }

    #[tokio::test]
    async fn a_missing_model_is_unavailable_while_its_shape_is_still_known() {
        let dir = tempfile::tempdir().unwrap();
        let embedder = LazyLocalEmbedder::new(LocalEmbedderOptions::new(dir.path().join("no-models")));
        assert_eq!(
            (embedder.model(), embedder.dimension(), embedder.max_input_tokens()),
            (MODEL_NAME, 384, 256)
        );
        for _ in 0..2 {
            let err = embedder.embed(&["text".to_owned()]).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unavailable);
            assert!(!err.to_string().contains(&dir.path().display().to_string()), "{err}");
        }
        assert!(!embedder.embedder.initialized());
        assert_eq!(embedder.dimension(), DIMENSION);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_failed_load_is_retried_by_the_next_call() {
        let dir = tempfile::tempdir().unwrap();
        // The model directory fills in after the first call fails.
        let models = dir.path().join("models");
        let embedder = LazyLocalEmbedder::new(
            LocalEmbedderOptions::new(&models)
                .with_onnxruntime_path(model_dir().join(super::super::fastembed::DEFAULT_ONNXRUNTIME_FILE)),
        );
        assert_eq!(embedder.embed(&["text".to_owned()]).await.unwrap_err().kind(), ErrorKind::Unavailable);
        std::fs::create_dir_all(&models).unwrap();
        std::os::unix::fs::symlink(model_dir().join(MODEL_NAME), models.join(MODEL_NAME)).unwrap();
        let vectors = embedder.embed(&["text".to_owned()]).await.expect("the second call loads the model");
        assert_eq!(vectors[0].len(), DIMENSION);
    }

    #[tokio::test]
    async fn concurrent_first_calls_load_once_and_all_embed() {
        let embedder = std::sync::Arc::new(LazyLocalEmbedder::new(LocalEmbedderOptions::new(model_dir())));
        assert!(!embedder.embedder.initialized());
        let calls = (0..4).map(|i| {
            let embedder = std::sync::Arc::clone(&embedder);
            tokio::spawn(async move { embedder.embed(&[format!("passage {i}")]).await })
        });
        for call in futures::future::join_all(calls).await {
            let vectors =
                call.unwrap().unwrap_or_else(|e| panic!("embeds (run scripts/fetch-models.sh first): {e}"));
            assert_eq!(vectors.len(), 1);
            assert_eq!(vectors[0].len(), DIMENSION);
        }
        assert!(embedder.embedder.initialized());
    }
}

//! [`Embedder`](amp_core::Embedder) implementations.

#[cfg(feature = "fastembed")]
pub mod fastembed;
#[cfg(feature = "fastembed")]
pub mod lazy;
#[cfg(feature = "openai")]
pub mod openai;

/// Where unit tests find the local model files: `$AMP_MODEL_DIR` (set by scripts/test.sh),
/// else the repository's `.amp-cache/models`.
#[cfg(all(test, feature = "fastembed"))]
pub(crate) fn test_model_dir() -> std::path::PathBuf {
    std::env::var_os("AMP_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.amp-cache/models"))
}

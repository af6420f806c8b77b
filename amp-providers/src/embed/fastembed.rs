//! Local embeddings, fully offline: all-MiniLM-L6-v2 (ONNX, 384 dimensions) run by
//! fastembed on an ONNX Runtime library loaded from the model directory.
//!
//! `scripts/fetch-models.sh` lays the files out; nothing is downloaded at build or run
//! time:
//!
//! ```text
//! <model_dir>/onnxruntime/libonnxruntime.so.1.24.4
//! <model_dir>/all-minilm-l6-v2/{model.onnx, tokenizer.json, config.json,
//!                               special_tokens_map.json, tokenizer_config.json}
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use amp_core::{Embedder, Error, Result};
use async_trait::async_trait;
use fastembed::{
    InitOptionsUserDefined, Pooling, QuantizationMode, TextEmbedding, TokenizerFiles,
    UserDefinedEmbeddingModel,
};
use ort::environment::Environment;

/// The model's name, as recorded with its vectors, and its folder under the model directory.
pub const MODEL_NAME: &str = "all-minilm-l6-v2";

/// Length of every vector.
pub const DIMENSION: usize = 384;

/// Word pieces embedded without truncation, counting the `[CLS]` and `[SEP]` the
/// tokenizer adds (so 254 of text). MiniLM was trained at this length; longer input is
/// cut off silently, so chunkers size passages with this model's tokenizer to stay within.
pub const MAX_INPUT_TOKENS: usize = 256;

/// The batch size used unless configured: the best throughput measured on 2 cores.
pub const DEFAULT_BATCH_SIZE: usize = 16;

/// Where ONNX Runtime lives under the model directory unless configured.
pub const DEFAULT_ONNXRUNTIME_FILE: &str = "onnxruntime/libonnxruntime.so.1.24.4";

/// The tokenizer's file in the model's folder.
const TOKENIZER_FILE: &str = "tokenizer.json";

/// The files of the model's folder, in the order fastembed takes them.
const MODEL_FILES: [&str; 5] =
    ["model.onnx", TOKENIZER_FILE, "config.json", "special_tokens_map.json", "tokenizer_config.json"];

/// How to load a [`LocalEmbedder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEmbedderOptions {
    /// The model directory ([`AmpConfig::model_dir`](amp_core::AmpConfig)), holding
    /// `all-minilm-l6-v2/` and, by default, ONNX Runtime.
    pub model_dir: PathBuf,
    /// The ONNX Runtime library (1.24 or newer). Default:
    /// `<model_dir>/onnxruntime/libonnxruntime.so.1.24.4`. `ORT_DYLIB_PATH` is not read.
    pub onnxruntime_path: Option<PathBuf>,
    /// Threads ONNX Runtime uses within one batch. Default 1: on a shared 2-core machine
    /// two threads fell from 71 to 25–30 chunks/s under contention, while one held 40–45.
    pub intra_threads: usize,
    /// Texts run through the model at once; larger requests are split. Default 16.
    pub batch_size: usize,
}

impl LocalEmbedderOptions {
    /// Defaults for the model files under `model_dir`.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        LocalEmbedderOptions {
            model_dir: model_dir.into(),
            onnxruntime_path: None,
            intra_threads: 1,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// Loads ONNX Runtime from `path` instead of the model directory.
    pub fn with_onnxruntime_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.onnxruntime_path = Some(path.into());
        self
    }

    /// Sets the intra-op threads.
    pub fn with_intra_threads(mut self, threads: usize) -> Self {
        self.intra_threads = threads;
        self
    }

    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// The ONNX Runtime library that will be loaded.
    pub fn effective_onnxruntime_path(&self) -> PathBuf {
        self.onnxruntime_path.clone().unwrap_or_else(|| self.model_dir.join(DEFAULT_ONNXRUNTIME_FILE))
    }

    /// The model's `tokenizer.json` (`<model_dir>/all-minilm-l6-v2/tokenizer.json`), the one
    /// the embedder loads: chunkers count with it
    /// ([`HuggingFaceTokenizer`](crate::tokenize::HuggingFaceTokenizer)) to keep passages
    /// within [`MAX_INPUT_TOKENS`].
    pub fn tokenizer_path(&self) -> PathBuf {
        self.model_dir.join(MODEL_NAME).join(TOKENIZER_FILE)
    }

    fn validate(&self) -> Result<()> {
        if self.intra_threads == 0 {
            return Err(Error::invalid_input("local embedder intra_threads must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid_input("local embedder batch_size must be at least 1"));
        }
        Ok(())
    }

    fn fetch_hint(&self) -> String {
        format!(
            "run `AMP_MODEL_DIR={} scripts/fetch-models.sh` to fetch the model files",
            self.model_dir.display()
        )
    }
}

/// [`Embedder`] running all-MiniLM-L6-v2 in-process: 384-dimensional, L2-normalized
/// vectors, up to [`MAX_INPUT_TOKENS`] word pieces per text.
///
/// Embedding is CPU-bound (about 40–45 chunks of ~94 word pieces per second on one
/// thread of the reference machine), so [`Embedder::embed`] runs on tokio's blocking pool,
/// one batch at a time; callers elsewhere keep the async runtime free. Dropping the
/// `embed` future stops the work after the batch in progress.
///
/// ```no_run
/// use amp_core::Embedder;
/// use amp_providers::embed::fastembed::{LocalEmbedder, LocalEmbedderOptions};
///
/// # async fn run() -> amp_core::Result<()> {
/// let embedder = LocalEmbedder::load(LocalEmbedderOptions::new(".amp-cache/models"))?;
/// let vectors = embedder.embed(&["How do I reset my password?".to_owned()]).await?;
/// assert_eq!(vectors[0].len(), 384);
/// # Ok(())
/// # }
/// ```
pub struct LocalEmbedder {
    // fastembed's `embed` takes `&mut self`; the lock is held one batch at a time.
    model: Arc<Mutex<TextEmbedding>>,
    batch_size: usize,
    intra_threads: usize,
}

impl LocalEmbedder {
    /// Loads ONNX Runtime and the model (0.25–0.35 s; blocking, so call it at start-up or
    /// from `spawn_blocking`).
    ///
    /// Missing files are [`Error::Unavailable`], naming every missing path and how to
    /// fetch them; a library that is not a usable ONNX Runtime is an error too, never a
    /// panic. One process holds one ONNX Runtime: loading more embedders reuses it, and
    /// asking for a different library after the first is [`Error::InvalidInput`].
    pub fn load(options: LocalEmbedderOptions) -> Result<Self> {
        options.validate()?;
        let started = Instant::now();
        let folder = options.model_dir.join(MODEL_NAME);
        let runtime = options.effective_onnxruntime_path();

        let missing: Vec<PathBuf> = MODEL_FILES
            .iter()
            .map(|file| folder.join(file))
            .chain([runtime.clone()])
            .filter(|path| !path.is_file())
            .collect();
        if !missing.is_empty() {
            let paths: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
            return Err(Error::unavailable(format!(
                "the local embedder is missing {}; {}",
                paths.join(", "),
                options.fetch_hint()
            )));
        }

        let [onnx, tokenizer, config, special_tokens_map, tokenizer_config] =
            MODEL_FILES.map(|file| read_model_file(&folder.join(file)));
        let files = TokenizerFiles {
            tokenizer_file: tokenizer?,
            config_file: config?,
            special_tokens_map_file: special_tokens_map?,
            tokenizer_config_file: tokenizer_config?,
        };
        let model = UserDefinedEmbeddingModel::new(onnx?, files)
            .with_pooling(Pooling::Mean)
            .with_quantization(QuantizationMode::None);

        // The environment must exist before fastembed creates a session: without it
        // fastembed asks ort for a default one, which panics when the library is missing
        // or too old, instead of returning an error.
        let environment = onnx_runtime(&runtime, &options)?;
        let init = InitOptionsUserDefined::new()
            .with_environment(environment)
            .with_max_length(MAX_INPUT_TOKENS)
            .with_intra_threads(options.intra_threads);
        let model = TextEmbedding::try_new_from_user_defined(model, init).map_err(|e| {
            Error::unavailable(format!(
                "the local embedding model in {} could not be loaded: {e}; {}",
                folder.display(),
                options.fetch_hint()
            ))
        })?;

        tracing::debug!(
            model = MODEL_NAME,
            intra_threads = options.intra_threads,
            batch_size = options.batch_size,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "local embedder loaded"
        );
        Ok(LocalEmbedder {
            model: Arc::new(Mutex::new(model)),
            batch_size: options.batch_size,
            intra_threads: options.intra_threads,
        })
    }
}

impl fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model", &MODEL_NAME)
            .field("batch_size", &self.batch_size)
            .field("intra_threads", &self.intra_threads)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
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
        self.batch_size
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let model = Arc::clone(&self.model);
        let texts = texts.to_vec();
        let batch_size = self.batch_size;
        let abandoned = Arc::new(AtomicBool::new(false));
        let _stop_if_dropped = StopOnDrop(Arc::clone(&abandoned));
        tokio::task::spawn_blocking(move || embed_in_batches(&model, &texts, batch_size, &abandoned))
            .await
            .map_err(|e| Error::internal("the local embedding task failed", e))?
    }
}

/// Tells the blocking task its caller has gone, so it stops after the current batch.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn embed_in_batches(
    model: &Mutex<TextEmbedding>,
    texts: &[String],
    batch_size: usize,
    abandoned: &AtomicBool,
) -> Result<Vec<Vec<f32>>> {
    let started = Instant::now();
    let mut vectors = Vec::with_capacity(texts.len());
    for batch in texts.chunks(batch_size) {
        if abandoned.load(Ordering::Relaxed) {
            return Err(Error::unavailable("local embedding stopped: the caller went away"));
        }
        // Locked per batch so one large request does not hold every other caller off until
        // it is done. A panic inside a previous run leaves nothing half-written: the session
        // keeps no state between runs, so a poisoned lock is still safe to use.
        let embedded = model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .embed(batch, Some(batch.len()))
            .map_err(|e| Error::internal("local embedding failed", e))?;
        if embedded.len() != batch.len() || embedded.iter().any(|v| v.len() != DIMENSION) {
            return Err(Error::bug(format!(
                "the local embedding model returned {} vectors of {:?} dimensions for {} texts; expected {DIMENSION}",
                embedded.len(),
                embedded.first().map(Vec::len),
                batch.len()
            )));
        }
        vectors.extend(embedded);
    }
    tracing::debug!(
        model = MODEL_NAME,
        texts = texts.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "embedded"
    );
    Ok(vectors)
}

fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::unavailable(format!("cannot read {}: {e}", path.display())))
}

/// ONNX Runtime as loaded into this process. ort loads one library per process and
/// refuses a second environment, so the first is kept here and shared by every embedder.
struct LoadedRuntime {
    library: PathBuf,
    environment: Environment,
}

static RUNTIME: Mutex<Option<LoadedRuntime>> = Mutex::new(None);

fn onnx_runtime(library: &Path, options: &LocalEmbedderOptions) -> Result<Environment> {
    // Canonical, so the same file reached by two spellings counts as the same library.
    let library = std::fs::canonicalize(library)
        .map_err(|e| Error::unavailable(format!("cannot open ONNX Runtime at {}: {e}", library.display())))?;
    // Nothing is left half-done under this lock if a thread panics while holding it: the
    // slot is written only once the environment exists.
    let mut loaded = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(runtime) = loaded.as_ref() {
        if runtime.library == library {
            return Ok(runtime.environment.clone());
        }
        return Err(Error::invalid_input(format!(
            "ONNX Runtime is already loaded from {} in this process, so {} cannot be loaded too; \
             use one onnxruntime_path per process",
            runtime.library.display(),
            library.display()
        )));
    }
    let builder = ort::init_from(&library).map_err(|e| {
        Error::unavailable(format!(
            "{} is not a usable ONNX Runtime (1.24 or newer is needed): {e}; {}",
            library.display(),
            options.fetch_hint()
        ))
    })?;
    let environment = builder.with_name("amp").with_telemetry(false).build().map_err(|e| {
        Error::unavailable(format!("ONNX Runtime from {} did not start: {e}", library.display()))
    })?;
    *loaded = Some(LoadedRuntime { library, environment: environment.clone() });
    Ok(environment)
}

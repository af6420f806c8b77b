//! [`LocalChatModel`]: the [`ChatModel`] that answers with the in-process model.

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use amp_core::{
    ChatMessage, ChatModel, ChatRequest, ChatResponse, ChatStream, Error, MessageId, Result, StreamEvent,
};
use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::tokenizer::LocalTokenizer;
use super::weights::{self, WeightsOrigin};
use super::worker::{Counters, EVENT_BUFFER, GenerationStats, Job, Sampling, Worker};

/// How long a caller refused for a full queue is told to wait: about one short answer.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How to load a [`LocalChatModel`].
#[derive(Debug, Clone, PartialEq)]
pub struct LocalModelOptions {
    /// The model's GGUF file. Its Q4_1 tensors are re-quantized to Q8_0 and cached beside
    /// it (see [`WeightsOrigin`]), so its directory should be writable.
    pub gguf_path: PathBuf,
    /// Compute threads for the model's maths. Default 1: on a shared 2-core machine two
    /// threads collapse under contention (2–7 tokens/s against 55–60 for one).
    ///
    /// candle sizes its CPU pool once per process, from the `CANDLE_NUM_THREADS` environment
    /// variable (else `RAYON_NUM_THREADS`, else the number of physical cores), so this is
    /// the number the process is expected to be started with: when the pool differs, loading
    /// logs a warning naming the variable to set. [`LocalChatModel::compute_threads`] tells
    /// the number in effect.
    pub threads: usize,
    /// Requests that may wait while an answer is generated; beyond that, requests are
    /// refused at once with [`Error::Unavailable`] rather than waiting without bound.
    /// Default 4.
    pub queue_capacity: usize,
    /// The name for logs and metrics. Default `local/` followed by the model's file name
    /// up to its first dot (`local/SmolLM2-135M-Instruct`).
    pub name: String,
    /// The seed of sampled answers (temperature above 0). `Some` makes them reproducible;
    /// default `None`, a fresh seed per request. Greedy answers need no seed.
    pub seed: Option<u64>,
}

impl LocalModelOptions {
    /// Where `scripts/fetch-models.sh` puts the model, relative to the model directory.
    pub const MODEL_FILE: &'static str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

    /// The default options for the model in `model_dir` ([`amp_core::AmpConfig::model_dir`]).
    pub fn from_model_dir(model_dir: &Path) -> Self {
        Self::from_gguf_path(model_dir.join(Self::MODEL_FILE))
    }

    /// The default options for the model in the GGUF file at `gguf_path`.
    pub fn from_gguf_path(gguf_path: PathBuf) -> Self {
        let name = format!("local/{}", model_label(&gguf_path));
        LocalModelOptions { gguf_path, threads: 1, queue_capacity: 4, name, seed: None }
    }
}

/// The model's name as its file gives it: `SmolLM2-135M-Instruct.Q4_1.gguf` → `SmolLM2-135M-Instruct`.
fn model_label(gguf_path: &Path) -> String {
    let file = gguf_path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    file.split('.').next().unwrap_or_default().to_owned()
}

/// A small instruction-tuned model (SmolLM2-135M-Instruct) run in-process on the CPU:
/// AMP's chat model that needs no network and no key.
///
/// Answers are generated one at a time on a dedicated thread; up to
/// [`LocalModelOptions::queue_capacity`] further requests wait, and more are refused with
/// [`Error::Unavailable`]. Dropping a stream stops its generation. Dropping the model stops
/// its thread once the answers already queued are done.
///
/// Requests are greedy (the most likely token each step) unless `temperature` is above 0;
/// `top_p` then limits sampling to the most likely tokens. The prompt plus `max_tokens`
/// must fit [`LocalChatModel::context_window`]; without `max_tokens` an answer may run to
/// the end of the window.
pub struct LocalChatModel {
    name: String,
    label: String,
    tokenizer: LocalTokenizer,
    context_window: usize,
    jobs: SyncSender<Job>,
    counters: Arc<Counters>,
    queue_capacity: usize,
    origin: WeightsOrigin,
    compute_threads: usize,
    seed: Option<u64>,
}

impl std::fmt::Debug for LocalChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChatModel")
            .field("name", &self.name)
            .field("context_window", &self.context_window)
            .field("queue_capacity", &self.queue_capacity)
            .field("origin", &self.origin)
            .field("compute_threads", &self.compute_threads)
            .finish_non_exhaustive()
    }
}

impl LocalChatModel {
    /// Loads the model on a blocking thread (re-quantizing on first use takes about a
    /// second, loading from the cache a fraction of one) and starts its worker.
    pub async fn load(options: LocalModelOptions) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::load_blocking(options))
            .await
            .map_err(|e| Error::internal("loading the local model was interrupted", e))?
    }

    /// [`LocalChatModel::load`] on the calling thread, for callers outside an async runtime.
    pub fn load_blocking(options: LocalModelOptions) -> Result<Self> {
        if options.threads == 0 || options.queue_capacity == 0 {
            return Err(Error::invalid_input(
                "local model options: threads and queue_capacity must be at least 1",
            ));
        }
        let loaded = weights::load(&options.gguf_path)?;
        let compute_threads = candle_core::utils::barrier_pool().n_workers() + 1;
        if compute_threads != options.threads {
            tracing::warn!(
                wanted = options.threads,
                in_effect = compute_threads,
                "candle's compute pool is process-wide and sized at start; set CANDLE_NUM_THREADS={} in the \
                 environment of this process to use {} thread(s)",
                options.threads,
                options.threads,
            );
        }
        let counters = Arc::new(Counters::default());
        let label = model_label(&options.gguf_path);
        let jobs = Worker {
            model_name: label.clone(),
            weights: loaded.weights,
            tokenizer: loaded.tokenizer.clone(),
            counters: counters.clone(),
        }
        .spawn(options.queue_capacity)?;
        tracing::info!(
            name = %options.name,
            origin = ?loaded.origin,
            context_window = loaded.context_window,
            compute_threads,
            "local chat model loaded"
        );
        Ok(LocalChatModel {
            name: options.name,
            label,
            tokenizer: loaded.tokenizer,
            context_window: loaded.context_window,
            jobs,
            counters,
            queue_capacity: options.queue_capacity,
            origin: loaded.origin,
            compute_threads,
            seed: options.seed,
        })
    }

    /// The model's tokenizer, for counting prompts exactly as this model does.
    pub fn tokenizer(&self) -> &LocalTokenizer {
        &self.tokenizer
    }

    /// The most tokens a prompt and its answer may take together. The model was trained for
    /// 8,192; candle's implementation attends to at most 4,096 positions, the smaller wins.
    pub fn context_window(&self) -> usize {
        self.context_window
    }

    /// Where the running weights came from (the Q8_0 cache or a fresh re-quantization).
    pub fn weights_origin(&self) -> WeightsOrigin {
        self.origin
    }

    /// The compute threads candle actually uses in this process.
    pub fn compute_threads(&self) -> usize {
        self.compute_threads
    }

    /// What the model's worker has done so far.
    pub fn stats(&self) -> GenerationStats {
        self.counters.snapshot()
    }

    /// The prompt's ids and the answer's token budget, or why the request cannot run.
    async fn prepare(&self, request: &ChatRequest) -> Result<(Vec<u32>, usize)> {
        request.validate()?;
        let tokenizer = self.tokenizer.clone();
        let messages = request.messages.clone();
        // Long prompts take milliseconds to tokenize: not on the runtime's threads.
        let prompt = tokio::task::spawn_blocking(move || tokenizer.chat_prompt(&messages))
            .await
            .map_err(|e| Error::internal("tokenizing the prompt was interrupted", e))??;
        let limit = self.context_window;
        let max_tokens = request.max_tokens.map_or(limit.saturating_sub(prompt.len()), |m| m as usize);
        let needed = prompt.len() + max_tokens.max(1);
        if needed > limit {
            return Err(Error::ContextWindowExceeded { needed: needed as u64, limit: limit as u64 });
        }
        Ok((prompt, max_tokens))
    }
}

#[async_trait]
impl ChatModel for LocalChatModel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let mut events = self.stream(request).await?;
        let (mut id, mut model, mut text, mut usage, mut finish) =
            (String::new(), String::new(), String::new(), None, None);
        while let Some(event) = events.next().await {
            match event? {
                StreamEvent::Start { id: start_id, model: start_model } => {
                    (id, model) = (start_id, start_model)
                }
                StreamEvent::TextDelta { text: delta } => text.push_str(&delta),
                StreamEvent::Usage(u) => usage = Some(u),
                StreamEvent::Finish { reason } => finish = Some(reason),
                StreamEvent::Error { message, .. } => return Err(Error::bug(message)),
                StreamEvent::ToolCallDelta { .. } => {}
            }
        }
        let finish_reason =
            finish.ok_or_else(|| Error::bug("the local model's answer ended without finishing"))?;
        Ok(ChatResponse { id, model, message: ChatMessage::assistant(text), finish_reason, usage })
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream> {
        let (prompt, max_tokens) = self.prepare(request).await?;
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let job = Job {
            id: format!("local-{}", MessageId::new()),
            prompt,
            max_tokens,
            sampling: Sampling {
                temperature: request.temperature.map(f64::from).filter(|t| *t > 0.0),
                top_p: request.top_p.map(f64::from),
                // Distinct per call: RandomState draws fresh keys each time.
                seed: self.seed.unwrap_or_else(|| RandomState::new().hash_one(0u8)),
            },
            stop: request.stop.clone(),
            events,
        };
        // Counted before sending, so the worker's decrement can never run first.
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(refused) = self.jobs.try_send(job) {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(match refused {
                TrySendError::Full(_) => Error::Unavailable {
                    message: format!(
                        "the local model {} is busy: {} requests are already waiting",
                        self.label, self.queue_capacity
                    ),
                    retry_after: Some(RETRY_AFTER),
                },
                TrySendError::Disconnected(_) => Error::bug("the local model's worker has stopped"),
            });
        }
        Ok(answer_stream(receiver))
    }
}

/// The worker's events as a [`ChatStream`]: ends after `Finish` or an error, and reports an
/// error if the worker went away without finishing.
fn answer_stream(receiver: mpsc::Receiver<Result<StreamEvent>>) -> ChatStream {
    futures::stream::unfold((receiver, false), |(mut receiver, ended)| async move {
        if ended {
            return None;
        }
        let item = receiver
            .recv()
            .await
            .unwrap_or_else(|| Err(Error::bug("the local model's answer ended without finishing")));
        let ended = !matches!(item, Ok(ref event) if !matches!(event, StreamEvent::Finish { .. }));
        Some((item, (receiver, ended)))
    })
    .boxed()
}

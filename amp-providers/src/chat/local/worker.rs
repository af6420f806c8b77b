//! The generation worker: one OS thread per loaded model, generating one answer at a time
//! for the requests waiting in a bounded queue.
//!
//! Generation is seconds of pure CPU work, so it runs on its own thread and never on the
//! async runtime. One answer at a time because a second one would only split the same cores
//! (and candle's compute pool serializes callers anyway). Events go back through a small
//! bounded channel: a slow reader slows generation instead of growing a buffer, and a
//! dropped stream closes the channel, which the worker notices after at most one token
//! (or one prompt chunk) and abandons the answer.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

use amp_core::{Error, FinishReason, Result, StreamEvent, Usage};
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::quantized_llama::ModelWeights;
use tokio::sync::mpsc;

use super::stop::{Scan, StopScanner};
use super::tokenizer::{LocalTokenizer, Utf8Assembler};

/// Events buffered between the worker and a stream's reader. Small, so that a dropped
/// stream is noticed within a few tokens and a reader is never far behind.
pub(crate) const EVENT_BUFFER: usize = 8;

/// Prompt tokens run through the model per forward pass. Bounds the attention scores'
/// memory (heads × chunk × context floats, ~37 MB at a full window) and lets a dropped
/// stream interrupt a long prompt.
const PREFILL_CHUNK: usize = 256;

/// One request for an answer, as queued for the worker.
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) prompt: Vec<u32>,
    pub(crate) max_tokens: usize,
    pub(crate) sampling: Sampling,
    pub(crate) stop: Vec<String>,
    pub(crate) events: mpsc::Sender<Result<StreamEvent>>,
}

/// How the next token is chosen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sampling {
    /// `None` (or 0) picks the most likely token.
    pub(crate) temperature: Option<f64>,
    pub(crate) top_p: Option<f64>,
    pub(crate) seed: u64,
}

/// Counters a worker updates as it goes, read by [`GenerationStats`] snapshots.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    tokens: AtomicU64,
    finished: AtomicU64,
    cancelled: AtomicU64,
    failed: AtomicU64,
    pub(crate) queued: AtomicUsize,
    generating: AtomicBool,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> GenerationStats {
        GenerationStats {
            tokens_generated: self.tokens.load(Ordering::Relaxed),
            answers_finished: self.finished.load(Ordering::Relaxed),
            answers_cancelled: self.cancelled.load(Ordering::Relaxed),
            answers_failed: self.failed.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            generating: self.generating.load(Ordering::Relaxed),
        }
    }
}

/// What a local model's worker has done so far, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerationStats {
    /// Tokens generated since the model was loaded, end tokens included, prompts not.
    pub tokens_generated: u64,
    /// Answers that ended with an end token, a stop sequence or `max_tokens`.
    pub answers_finished: u64,
    /// Answers abandoned because their stream was dropped, while queued or generating.
    pub answers_cancelled: u64,
    /// Answers that broke off with an error (reported to their stream).
    pub answers_failed: u64,
    /// Requests waiting in the queue.
    pub queued: usize,
    /// Whether an answer is being generated right now.
    pub generating: bool,
}

/// How an answer ended, from the worker's side.
enum Ended {
    /// Every token is out; the closing events remain to be sent.
    Finished(Usage, FinishReason),
    Cancelled,
}

/// The thread that owns the model's weights.
pub(crate) struct Worker {
    pub(crate) model_name: String,
    /// Never run directly: each answer runs on a clone (the weights are shared, the
    /// key-value and mask caches are not), so answers never see each other's state.
    pub(crate) weights: ModelWeights,
    pub(crate) tokenizer: LocalTokenizer,
    pub(crate) counters: Arc<Counters>,
}

impl Worker {
    /// Starts the thread; it ends once every sender of the returned queue is dropped and
    /// the queue is drained.
    pub(crate) fn spawn(self, queue_capacity: usize) -> Result<SyncSender<Job>> {
        let (jobs, queue) = std::sync::mpsc::sync_channel(queue_capacity);
        std::thread::Builder::new()
            .name("amp-local-llm".to_owned())
            .spawn(move || self.run(queue))
            .map_err(|e| Error::internal("cannot start the local model's worker thread", e))?;
        Ok(jobs)
    }

    fn run(self, queue: Receiver<Job>) {
        while let Ok(job) = queue.recv() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.generating.store(true, Ordering::Relaxed);
            // A panic in the numeric code must cost one answer, not the model.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.answer(&job)))
                .unwrap_or_else(|_| Err(Error::bug("the local model's generation panicked")));
            // Counters change before the closing events go out, so a reader that has seen
            // the end of its answer sees the counters of it too.
            self.counters.generating.store(false, Ordering::Relaxed);
            match outcome {
                Ok(Ended::Finished(usage, reason)) => {
                    self.counters.finished.fetch_add(1, Ordering::Relaxed);
                    let _ = job.events.blocking_send(Ok(StreamEvent::Usage(usage)));
                    let _ = job.events.blocking_send(Ok(StreamEvent::Finish { reason }));
                }
                Ok(Ended::Cancelled) => {
                    self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    let source = std::error::Error::source(&e);
                    tracing::error!(id = %job.id, error = %e, ?source, "local generation failed");
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    let _ = job.events.blocking_send(Err(e));
                }
            }
        }
    }

    fn answer(&self, job: &Job) -> Result<Ended> {
        if job.events.is_closed() {
            return Ok(Ended::Cancelled);
        }
        let span = tracing::info_span!(
            "local_generation",
            id = %job.id,
            model = %self.model_name,
            prompt_tokens = job.prompt.len(),
            completion_tokens = tracing::field::Empty,
            finish = tracing::field::Empty,
        );
        let _entered = span.enter();
        let send = |event: StreamEvent| job.events.blocking_send(Ok(event)).is_ok();
        if !send(StreamEvent::Start { id: job.id.clone(), model: self.model_name.clone() }) {
            return Ok(Ended::Cancelled);
        }

        let started = Instant::now();
        let mut model = self.weights.clone();
        let Some(mut logits) = prefill(&mut model, job)? else {
            return Ok(Ended::Cancelled);
        };
        let mut position = job.prompt.len();
        let prefill = started.elapsed();

        let mut sampler =
            LogitsProcessor::new(job.sampling.seed, job.sampling.temperature, job.sampling.top_p);
        let mut text = Utf8Assembler::default();
        let mut stops = StopScanner::new(&job.stop);
        let mut generated = 0usize;
        let (mut finish, mut stopped_by_sequence) = (FinishReason::Length, false);
        loop {
            let next = sampler.sample(&logits).map_err(candle_failed)?;
            generated += 1;
            self.counters.tokens.fetch_add(1, Ordering::Relaxed);
            if self.tokenizer.is_end(next) {
                finish = FinishReason::Stop;
                break;
            }
            let piece = text.push(self.tokenizer.token_bytes(next));
            if !piece.is_empty() {
                let (delta, stopped) = match stops.push(&piece) {
                    Scan::Continue(delta) => (delta, false),
                    Scan::Stopped(delta) => (delta, true),
                };
                if !delta.is_empty() && !send(StreamEvent::TextDelta { text: delta }) {
                    return Ok(Ended::Cancelled);
                }
                if stopped {
                    (finish, stopped_by_sequence) = (FinishReason::Stop, true);
                    break;
                }
            }
            if generated >= job.max_tokens {
                break;
            }
            if job.events.is_closed() {
                return Ok(Ended::Cancelled);
            }
            logits = forward(&mut model, &[next], position)?;
            position += 1;
        }
        if job.events.is_closed() {
            return Ok(Ended::Cancelled);
        }
        if !stopped_by_sequence {
            let tail = match stops.push(&text.finish()) {
                Scan::Continue(delta) => delta + &stops.finish(),
                Scan::Stopped(delta) => {
                    finish = FinishReason::Stop;
                    delta
                }
            };
            if !tail.is_empty() && !send(StreamEvent::TextDelta { text: tail }) {
                return Ok(Ended::Cancelled);
            }
        }

        let usage = Usage {
            prompt_tokens: u32::try_from(job.prompt.len()).unwrap_or(u32::MAX),
            completion_tokens: u32::try_from(generated).unwrap_or(u32::MAX),
        };
        span.record("completion_tokens", generated);
        span.record("finish", tracing::field::debug(finish));
        let decode = started.elapsed().saturating_sub(prefill).as_secs_f64();
        tracing::debug!(
            prefill_ms = prefill.as_millis() as u64,
            tokens_per_s = if decode > 0.0 { generated as f64 / decode } else { 0.0 },
            "local generation finished"
        );
        Ok(Ended::Finished(usage, finish))
    }
}

/// Runs the prompt through the model in chunks and returns the first answer token's
/// logits, or `None` when the stream was dropped meanwhile.
fn prefill(model: &mut ModelWeights, job: &Job) -> Result<Option<Tensor>> {
    let mut logits = None;
    for (i, chunk) in job.prompt.chunks(PREFILL_CHUNK).enumerate() {
        if job.events.is_closed() {
            return Ok(None);
        }
        logits = Some(forward(model, chunk, i * PREFILL_CHUNK)?);
    }
    logits.map(Some).ok_or_else(|| Error::bug("the chat template rendered an empty prompt"))
}

/// Runs `tokens` at `position` and returns the next token's logits.
fn forward(model: &mut ModelWeights, tokens: &[u32], position: usize) -> Result<Tensor> {
    let step = |model: &mut ModelWeights| -> candle_core::Result<Tensor> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        model.forward(&input, position)?.squeeze(0)
    };
    step(model).map_err(candle_failed)
}

fn candle_failed(e: candle_core::Error) -> Error {
    Error::internal("the local model failed while generating", e)
}

//! The local chat model, SmolLM2-135M-Instruct on candle (Q8_0 weights), on one compute
//! thread: time to the first token of a short chat prompt, prompt processing for a longer
//! one, and generation throughput. Needs the model file (`scripts/fetch-models.sh`); reads
//! `AMP_MODEL_DIR`, else `.amp-cache/models` in the repository.
//!
//! candle sizes its compute pool once per process from `CANDLE_NUM_THREADS`, so run this
//! with `CANDLE_NUM_THREADS=1` for the one-thread figures; the bench says when it is not.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use amp_core::{ChatMessage, ChatModel, ChatRequest, ChatStream, FinishReason, StreamEvent, Tokenizer};
use amp_providers::chat::local::{LocalChatModel, LocalModelOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;

fn model_dir() -> PathBuf {
    std::env::var_os("AMP_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.amp-cache/models"))
}

fn request(content: String, max_tokens: u32) -> ChatRequest {
    ChatRequest { max_tokens: Some(max_tokens), ..ChatRequest::new(vec![ChatMessage::user(content)]) }
}

/// Waits for the first text delta; `None` if the answer had no text.
async fn until_first_delta(stream: &mut ChatStream) -> Option<()> {
    while let Some(event) = stream.next().await {
        if let StreamEvent::TextDelta { .. } = event.expect("the answer streams") {
            return Some(());
        }
    }
    None
}

/// Reads the rest of an answer and returns its finish reason and completion tokens.
async fn until_finish(stream: &mut ChatStream) -> (Option<FinishReason>, u32) {
    let (mut finish, mut tokens) = (None, 0);
    while let Some(event) = stream.next().await {
        match event.expect("the answer streams") {
            StreamEvent::Usage(usage) => tokens = usage.completion_tokens,
            StreamEvent::Finish { reason } => finish = Some(reason),
            _ => {}
        }
    }
    (finish, tokens)
}

fn local_chat(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime builds");
    let model = rt
        .block_on(LocalChatModel::load(LocalModelOptions::from_model_dir(&model_dir())))
        .unwrap_or_else(|e| panic!("the local chat model loads (run scripts/fetch-models.sh first): {e}"));
    if model.compute_threads() != 1 {
        eprintln!(
            "note: candle runs {} compute threads here; set CANDLE_NUM_THREADS=1 for the one-thread figures",
            model.compute_threads()
        );
    }

    let short = request("What is the capital of France?".to_owned(), 1);
    let long_prompt = request(
        "Summarize the following notes in two sentences. ".to_owned()
            + &"The nightly deploy broke large uploads because the storage worker timed out while \
                waiting for the virus scanner, and users saw a generic error. "
                .repeat(5),
        1,
    );
    let story = request("Write a long story about a dragon.".to_owned(), 65);
    let prompt_tokens = |r: &ChatRequest| model.tokenizer().count_chat(&r.messages) as u64;
    eprintln!(
        "prompt tokens: short {}, long {}, story {}",
        prompt_tokens(&short),
        prompt_tokens(&long_prompt),
        prompt_tokens(&story)
    );

    let mut group = c.benchmark_group("local_chat");
    group.sample_size(10);

    // Prompt processing plus one generated token, as a client waiting for the first word sees it.
    group.bench_function("time_to_first_token_short_prompt", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (model, short) = (&model, &short);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let mut stream = model.stream(short).await.expect("the request is accepted");
                    until_first_delta(&mut stream).await.expect("the first token is text");
                    total += started.elapsed();
                    until_finish(&mut stream).await;
                }
                total
            }
        })
    });

    group.throughput(Throughput::Elements(prompt_tokens(&long_prompt)));
    group.bench_function("prompt_processing", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (model, long_prompt) = (&model, &long_prompt);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let mut stream = model.stream(long_prompt).await.expect("the request is accepted");
                    until_first_delta(&mut stream).await.expect("the first token is text");
                    total += started.elapsed();
                    until_finish(&mut stream).await;
                }
                total
            }
        })
    });

    // From the first token to the 65th: 64 forward passes of one token each.
    group.throughput(Throughput::Elements(64));
    group.bench_function("generation", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (model, story) = (&model, &story);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut stream = model.stream(story).await.expect("the request is accepted");
                    until_first_delta(&mut stream).await.expect("the first token is text");
                    let started = Instant::now();
                    let (finish, tokens) = until_finish(&mut stream).await;
                    total += started.elapsed();
                    assert_eq!(
                        (finish, tokens),
                        (Some(FinishReason::Length), 65),
                        "the story runs past 65 tokens"
                    );
                }
                total
            }
        })
    });
    group.finish();
}

criterion_group!(benches, local_chat);
criterion_main!(benches);

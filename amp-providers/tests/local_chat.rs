//! The local chat model (SmolLM2-135M-Instruct on candle) with its real weights.
//!
//! The model directory is `$AMP_MODEL_DIR` (set by scripts/test.sh after fetching the
//! models), else the repository's `.amp-cache/models`. Answers are kept short so the whole
//! file runs in seconds; behaviour that depends on timing is checked through the worker's
//! counters and the bounded event channel's back-pressure, never through wall-clock limits.

use std::path::{Path, PathBuf};

use amp_core::{
    ChatMessage, ChatModel, ChatRequest, ChatStream, ErrorKind, FinishReason, StreamEvent, Tokenizer, Usage,
};
use amp_providers::chat::local::{LocalChatModel, LocalModelOptions, LocalTokenizer, WeightsOrigin};
use futures::StreamExt;
use tokio::sync::OnceCell;

fn model_dir() -> PathBuf {
    std::env::var_os("AMP_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.amp-cache/models"))
}

fn options(queue_capacity: usize) -> LocalModelOptions {
    LocalModelOptions { queue_capacity, seed: Some(7), ..LocalModelOptions::from_model_dir(&model_dir()) }
}

/// One model for the tests that only look at answers; tests that watch the queue or the
/// worker's counters load their own.
async fn shared() -> &'static LocalChatModel {
    static MODEL: OnceCell<LocalChatModel> = OnceCell::const_new();
    MODEL.get_or_init(|| async { LocalChatModel::load(options(16)).await.unwrap() }).await
}

fn tokenizer() -> LocalTokenizer {
    LocalTokenizer::from_gguf_file(&model_dir().join(LocalModelOptions::MODEL_FILE)).unwrap()
}

fn request(messages: Vec<ChatMessage>, max_tokens: u32) -> ChatRequest {
    ChatRequest { max_tokens: Some(max_tokens), ..ChatRequest::new(messages) }
}

fn capital_question() -> Vec<ChatMessage> {
    vec![ChatMessage::user("What is the capital of France?")]
}

/// A prompt whose greedy answer runs for hundreds of tokens.
fn long_story() -> ChatRequest {
    request(vec![ChatMessage::user("Write a long story about a dragon.")], 2000)
}

#[derive(Debug, Default)]
struct Answer {
    deltas: Vec<String>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    starts: usize,
}

impl Answer {
    fn text(&self) -> String {
        self.deltas.concat()
    }
}

async fn read_all(mut stream: ChatStream) -> Answer {
    let mut answer = Answer::default();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::Start { .. } => {
                assert!(answer.deltas.is_empty() && answer.starts == 0, "Start comes first, once");
                answer.starts += 1;
            }
            StreamEvent::TextDelta { text } => {
                assert!(answer.usage.is_none(), "no text after Usage");
                answer.deltas.push(text);
            }
            StreamEvent::Usage(usage) => answer.usage = Some(usage),
            StreamEvent::Finish { reason } => {
                assert!(answer.usage.is_some(), "Usage comes before Finish");
                answer.finish = Some(reason);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(answer.starts, 1);
    answer
}

/// Reads up to the first text delta and returns it, leaving the stream open.
async fn first_delta(stream: &mut ChatStream) -> String {
    while let Some(event) = stream.next().await {
        if let StreamEvent::TextDelta { text } = event.unwrap() {
            return text;
        }
    }
    panic!("the stream ended without text");
}

#[test]
fn tokenizer_matches_llama_cpp_no_leading_space_and_one_token_per_digit() {
    let tokenizer = tokenizer();
    let pieces = |text: &str| -> Vec<String> {
        let ids = tokenizer.encode(text).unwrap();
        ids.iter().map(|id| String::from_utf8_lossy(tokenizer.token_bytes(*id)).into_owned()).collect()
    };
    // llama.cpp's ids for this text are [504, 3575, 282, 4649, 314]; candle's GPT-2 fallback
    // starts with " The" instead.
    assert_eq!(tokenizer.encode("The capital of France is").unwrap(), [504, 3575, 282, 4649, 314]);
    assert_eq!(pieces("The capital of France is"), ["The", " capital", " of", " France", " is"]);
    assert_eq!(pieces("12345"), ["1", "2", "3", "4", "5"]);
    assert_eq!(pieces("in 2024, 3.14"), ["in", " ", "2", "0", "2", "4", ",", " ", "3", ".", "1", "4"]);
    assert_eq!(tokenizer.count("12345"), 5);
}

#[test]
fn tokenizer_round_trips_varied_text_and_reads_control_markers_as_text() {
    let tokenizer = tokenizer();
    for text in [
        "Hello, world!",
        "  two leading spaces and a trailing one ",
        "tabs\tand\nnewlines\r\n\n",
        "café naïve Ünïcödé Ωμέγα",
        "日本語のテキストです。",
        "emoji 🚀🎉 and a family 👩‍👩‍👧",
        "numbers 3.14159, 1,000,000 and -42",
        "<|im_end|> typed by a user is just text",
        "",
    ] {
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(tokenizer.decode(&ids, false).unwrap(), text, "{ids:?}");
    }
    let ids = tokenizer.encode("<|im_start|>user<|im_end|>").unwrap();
    assert!(!ids.contains(&1) && !ids.contains(&2), "control markers in text stay text: {ids:?}");
}

#[test]
fn token_bytes_agree_with_the_tokenizers_decoder_for_the_whole_vocabulary() {
    let tokenizer = tokenizer();
    for id in 17..49_152u32 {
        let bytes = tokenizer.token_bytes(id);
        assert!(!bytes.is_empty(), "token {id} has bytes");
        assert_eq!(String::from_utf8_lossy(bytes), tokenizer.decode(&[id], false).unwrap(), "token {id}");
    }
    assert!(tokenizer.token_bytes(2).is_empty(), "<|im_end|> is a control token, not text");
}

#[test]
fn chat_prompt_is_chatml_and_count_chat_counts_exactly_it() {
    let tokenizer = tokenizer();
    let messages = vec![
        ChatMessage::system("Answer briefly."),
        ChatMessage::user("Hi"),
        ChatMessage::assistant("Hello!"),
        ChatMessage::user("What is 2+2?"),
    ];
    let prompt = tokenizer.chat_prompt(&messages).unwrap();
    assert_eq!(
        tokenizer.decode(&prompt, false).unwrap(),
        "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    assert_eq!(prompt.iter().filter(|id| **id == 1).count(), 5, "<|im_start|> goes in by id");
    assert_eq!(tokenizer.count_chat(&messages), prompt.len());
}

#[tokio::test]
async fn answers_the_capital_of_france_with_paris() {
    let model = shared().await;
    let answer = model.complete(&request(capital_question(), 24)).await.unwrap();
    assert!(answer.message.content.contains("Paris"), "{:?}", answer.message.content);
    assert_eq!(answer.finish_reason, FinishReason::Stop, "ends on <|im_end|>");
    let usage = answer.usage.unwrap();
    assert_eq!(usage.prompt_tokens as usize, model.tokenizer().count_chat(&capital_question()));
    // Every generated token is counted, the end token included.
    let text_tokens = model.tokenizer().count(&answer.message.content) as u32;
    assert_eq!(usage.completion_tokens, text_tokens + 1, "{:?}", answer.message.content);
    assert!(answer.id.starts_with("local-") && answer.model == "SmolLM2-135M-Instruct");
}

#[tokio::test]
async fn a_system_prompt_is_honoured() {
    let model = shared().await;
    let ask = |system: Option<&str>| {
        let mut messages = vec![ChatMessage::user("What is your name?")];
        messages.splice(0..0, system.map(ChatMessage::system));
        request(messages, 24)
    };
    let named = model.complete(&ask(Some("Your name is Amp."))).await.unwrap().message.content;
    assert!(named.contains("Amp"), "{named:?}");
    let unnamed = model.complete(&ask(None)).await.unwrap().message.content;
    assert!(!unnamed.contains("Amp"), "{unnamed:?}");
}

#[tokio::test]
async fn streams_text_while_the_worker_is_still_generating() {
    let model = LocalChatModel::load(options(1)).await.unwrap();
    let mut stream = model.stream(&request(long_story().messages, 64)).await.unwrap();
    let first = first_delta(&mut stream).await;
    // The event channel holds a few events, so at the first delta the worker can be only a
    // few tokens ahead: the answer is still being generated.
    let at_first = model.stats();
    assert!(at_first.generating, "{at_first:?}");
    assert!(at_first.tokens_generated < 32, "{at_first:?}");
    let rest = read_all_after_first(stream).await;
    assert!(rest.deltas.len() > 10, "text keeps arriving in pieces: {:?}", rest.deltas);
    assert_eq!(rest.usage.unwrap().completion_tokens, 64);
    assert_eq!(model.stats().tokens_generated, 64);
    assert!(!first.is_empty());
}

/// Reads a stream whose `Start` and first delta were already taken.
async fn read_all_after_first(mut stream: ChatStream) -> Answer {
    let mut answer = Answer { starts: 1, ..Answer::default() };
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::TextDelta { text } => answer.deltas.push(text),
            StreamEvent::Usage(usage) => answer.usage = Some(usage),
            StreamEvent::Finish { reason } => answer.finish = Some(reason),
            other => panic!("unexpected event {other:?}"),
        }
    }
    answer
}

#[tokio::test]
async fn deltas_never_split_a_multibyte_character() {
    let model = shared().await;
    let req = request(vec![ChatMessage::user("Translate to Japanese: good morning, my friend")], 32);
    let answer = read_all(model.stream(&req).await.unwrap()).await;
    let text = answer.text();
    assert!(text.chars().any(|c| c.len_utf8() > 1), "the answer has multi-byte characters: {text:?}");
    for delta in &answer.deltas {
        assert!(!delta.contains(char::REPLACEMENT_CHARACTER), "a character was split: {:?}", answer.deltas);
    }
    assert_eq!(
        model.complete(&req).await.unwrap().message.content,
        text,
        "complete() streams the same answer"
    );
}

#[tokio::test]
async fn max_tokens_ends_the_answer_with_length() {
    let model = shared().await;
    let answer = read_all(model.stream(&request(long_story().messages, 5)).await.unwrap()).await;
    assert_eq!(answer.finish, Some(FinishReason::Length));
    assert_eq!(answer.usage.unwrap().completion_tokens, 5);
    assert!(!answer.text().is_empty());
}

#[tokio::test]
async fn a_stop_sequence_cuts_the_text_even_across_token_boundaries() {
    let model = shared().await;
    let full = model.complete(&request(capital_question(), 24)).await.unwrap().message.content;
    // Starts inside the token " capital" and ends inside " France".
    let stop = "apital of Fr";
    let at = full.find(stop).unwrap_or_else(|| panic!("{full:?} mentions the capital of France"));
    let mut req = request(capital_question(), 24);
    req.stop = vec!["never appears".to_owned(), stop.to_owned()];
    let answer = read_all(model.stream(&req).await.unwrap()).await;
    assert_eq!(answer.text(), full[..at]);
    assert_eq!(answer.finish, Some(FinishReason::Stop));
}

#[tokio::test]
async fn greedy_is_deterministic_and_sampling_follows_its_seed() {
    let model = shared().await;
    let prompt = || request(vec![ChatMessage::user("Tell me about the sea.")], 24);
    let greedy = model.complete(&prompt()).await.unwrap().message.content;
    let zero =
        model.complete(&ChatRequest { temperature: Some(0.0), ..prompt() }).await.unwrap().message.content;
    assert_eq!(greedy, zero, "temperature 0 is greedy");

    let hot = || ChatRequest { temperature: Some(1.5), top_p: Some(0.95), ..prompt() };
    let first = model.complete(&hot()).await.unwrap().message.content;
    let second = model.complete(&hot()).await.unwrap().message.content;
    assert_eq!(first, second, "the same seed samples the same answer");
    assert_ne!(first, greedy, "sampling at temperature 1.5 departs from the greedy answer");
}

#[tokio::test]
async fn dropping_the_stream_stops_its_generation() {
    let model = LocalChatModel::load(options(4)).await.unwrap();
    let mut stream = model.stream(&long_story()).await.unwrap();
    first_delta(&mut stream).await;
    drop(stream);

    let next = model.complete(&request(capital_question(), 16)).await.unwrap();
    let stats = model.stats();
    assert_eq!(stats.answers_cancelled, 1, "{stats:?}");
    assert_eq!(stats.answers_finished, 1, "{stats:?}");
    let abandoned = stats.tokens_generated - u64::from(next.usage.unwrap().completion_tokens);
    assert!(abandoned < 32, "the dropped answer stopped after {abandoned} of its 2000 tokens");
}

#[tokio::test]
async fn a_full_queue_refuses_at_once_with_unavailable() {
    let model = LocalChatModel::load(options(1)).await.unwrap();
    let mut running = model.stream(&long_story()).await.unwrap();
    first_delta(&mut running).await;
    let waiting = model.stream(&long_story()).await.unwrap();
    assert_eq!(model.stats().queued, 1);

    let err = match model.stream(&long_story()).await {
        Ok(_) => panic!("a third request fits a queue of one"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable() && err.retry_after().is_some(), "{err:?}");
    drop((running, waiting));
}

#[tokio::test]
async fn prompts_that_do_not_fit_the_context_window_are_refused() {
    let model = shared().await;
    let limit = model.context_window() as u64;
    assert_eq!(limit, 4096, "candle attends to 4,096 positions, less than the 8,192 trained");

    let long = request(vec![ChatMessage::user(" word".repeat(5000))], 16);
    let err = model.stream(&long).await.err().unwrap();
    let amp_core::Error::ContextWindowExceeded { needed, limit: reported } = err else {
        panic!("{err:?}");
    };
    assert_eq!((needed, reported), (model.tokenizer().count_chat(&long.messages) as u64 + 16, limit));

    let short = request(capital_question(), 4096);
    let err = model.complete(&short).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::ContextWindowExceeded, "{err}");
    assert!(
        err.to_string().contains(&format!("{} tokens", 4096 + model.tokenizer().count_chat(&short.messages)))
    );
}

#[tokio::test]
async fn a_missing_model_file_says_how_to_fetch_it() {
    let path = std::env::temp_dir().join("amp-no-such-dir/SmolLM2-135M-Instruct.Q4_1.gguf");
    let err = LocalChatModel::load(LocalModelOptions::from_gguf_path(path.clone())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let message = err.to_string();
    assert!(message.contains("run scripts/fetch-models.sh"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn requantized_weights_are_cached_and_a_stale_or_corrupt_cache_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::copy(model_dir().join(LocalModelOptions::MODEL_FILE), &source).unwrap();
    let cache = dir.path().join("SmolLM2-135M-Instruct.Q8_0.gguf");
    let load = || LocalChatModel::load_blocking(LocalModelOptions::from_gguf_path(source.clone())).unwrap();

    assert_eq!(load().weights_origin(), WeightsOrigin::Requantized { cached: true });
    let cache_len = std::fs::metadata(&cache).unwrap().len();
    assert_eq!(load().weights_origin(), WeightsOrigin::Cache);

    std::fs::File::options().write(true).open(&cache).unwrap().set_len(cache_len / 2).unwrap();
    assert_eq!(load().weights_origin(), WeightsOrigin::Requantized { cached: true }, "truncated");
    assert_eq!(std::fs::metadata(&cache).unwrap().len(), cache_len);

    std::fs::write(&cache, b"not a gguf file").unwrap();
    assert_eq!(load().weights_origin(), WeightsOrigin::Requantized { cached: true }, "garbage");

    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options().write(true).open(&source).unwrap().set_modified(later).unwrap();
    assert_eq!(load().weights_origin(), WeightsOrigin::Requantized { cached: true }, "model file replaced");
    assert_eq!(load().weights_origin(), WeightsOrigin::Cache);

    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files are renamed or removed: {leftovers:?}");
}

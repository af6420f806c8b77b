//! Token counting: tiktoken's encodings, OpenAI's chat framing, the conservative
//! estimator, and the factory that picks one by kind.

use amp_core::{ChatMessage, ErrorKind, Tokenizer, TokenizerKind};
use amp_providers::tokenize::{EstimateTokenizer, TiktokenTokenizer, tokenizer_for};

fn o200k() -> TiktokenTokenizer {
    TiktokenTokenizer::o200k_base().expect("o200k_base is compiled in")
}

fn cl100k() -> TiktokenTokenizer {
    TiktokenTokenizer::cl100k_base().expect("cl100k_base is compiled in")
}

fn named(mut message: ChatMessage, name: &str) -> ChatMessage {
    message.name = Some(name.to_owned());
    message
}

#[test]
fn tiktoken_counts_match_openai_reference_tokenizations() {
    // OpenAI's cookbook: "tiktoken is great!" is ["t", "ik", "token", " is", " great", "!"]
    // in cl100k_base; "お誕生日おめでとう" is 9 tokens in cl100k_base and 8 in o200k_base.
    assert_eq!(cl100k().count("tiktoken is great!"), 6);
    assert_eq!(cl100k().count("お誕生日おめでとう"), 9);
    assert_eq!(o200k().count("お誕生日おめでとう"), 8);
    assert_eq!(o200k().count(""), 0);
    assert_eq!(o200k().name(), "o200k_base");
    assert_eq!(cl100k().name(), "cl100k_base");
}

#[test]
fn a_literal_endoftext_in_a_document_counts_as_text_not_as_a_special_token() {
    let document = "before <|endoftext|> after";
    for tokenizer in [o200k(), cl100k()] {
        let as_special = tokenizer.bpe().encode_with_special_tokens("<|endoftext|>").len();
        assert_eq!(as_special, 1, "{}: the marker is one special token", tokenizer.name());
        let as_text = tokenizer.count("<|endoftext|>");
        assert!(as_text > 1, "{}: the marker counted as {as_text} token(s)", tokenizer.name());
        assert_eq!(
            tokenizer.count(document),
            tokenizer.bpe().encode_ordinary(document).len(),
            "{}",
            tokenizer.name()
        );
    }
}

#[test]
fn each_encoding_is_loaded_once_and_shared() {
    assert!(std::ptr::eq(o200k().bpe(), o200k().bpe()));
    assert!(std::ptr::eq(cl100k().bpe(), cl100k().bpe()));
    assert!(!std::ptr::eq(o200k().bpe(), cl100k().bpe()));
}

/// The example prompt of OpenAI's cookbook, "How to count tokens with tiktoken", §6.
fn cookbook_example() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system(
            "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
        ),
        named(ChatMessage::system("New synergies will help drive top-line growth."), "example_user"),
        named(
            ChatMessage::system("Things working well together will increase revenue."),
            "example_assistant",
        ),
        named(
            ChatMessage::system(
                "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
            ),
            "example_user",
        ),
        named(
            ChatMessage::system("Let's talk later when we're less busy about how to do better."),
            "example_assistant",
        ),
        ChatMessage::user(
            "This late pivot means we don't have time to boil the ocean for the client deliverable.",
        ),
    ]
}

#[test]
fn chat_counts_match_the_openai_cookbook_and_the_api_usage_it_reports() {
    // The cookbook's function and the API's `usage.prompt_tokens` both gave 129 for
    // gpt-3.5-turbo and gpt-4 (cl100k) and 124 for gpt-4o and gpt-4o-mini (o200k).
    assert_eq!(cl100k().count_chat(&cookbook_example()), 129);
    assert_eq!(o200k().count_chat(&cookbook_example()), 124);
}

#[test]
fn chat_count_is_framing_plus_role_plus_content_plus_reply_priming() {
    let tokenizer = cl100k();
    // The pieces, each checked so the total below is computed by hand, not by the code.
    assert_eq!(tokenizer.count("system"), 1);
    assert_eq!(tokenizer.count("user"), 1);
    assert_eq!(tokenizer.count("You are a helpful assistant."), 6);
    assert_eq!(tokenizer.count("Hello!"), 2);
    assert_eq!(tokenizer.count("ann"), 1);
    let prompt = [ChatMessage::system("You are a helpful assistant."), ChatMessage::user("Hello!")];
    // (3 + 1 + 6) + (3 + 1 + 2) + 3
    assert_eq!(tokenizer.count_chat(&prompt), 19);
    // A name costs its own token and one more: (3 + 1 + 6) + (3 + 1 + 2 + 1 + 1) + 3.
    let prompt = [prompt[0].clone(), named(prompt[1].clone(), "ann")];
    assert_eq!(tokenizer.count_chat(&prompt), 21);
    assert_eq!(tokenizer.count_chat(&[]), 3);
}

/// A small deterministic generator (xorshift64*), so the property test is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Texts mixing the shapes that tokenize most differently: prose, code, CJK, emoji with
/// joiners, long numbers, whitespace and punctuation runs, other scripts, control tokens.
fn varied_texts(count: usize) -> Vec<String> {
    const PROSE: &[&str] =
        &["The quick brown fox", " jumps over", " the lazy dog.", " Context windows", " matter."];
    const CODE: &[&str] = &[
        "fn main() {\n    println!(\"{}\", x);\n}\n",
        "for (i = 0; i < n; ++i) { a[i] ^= b[i]; }",
        "SELECT id, name FROM users WHERE org_id = $1;",
        "<div class=\"x\"><span>&nbsp;</span></div>",
        "{\"key\": [1, 2.5e-3, null, true]}",
    ];
    const CJK: &[&str] = &["お誕生日おめでとう", "上下文窗口", "한국어 텍스트", "東京都渋谷区", "鑫龘靐齉"];
    const EMOJI: &[&str] = &["🙂", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇩🇪", "✨🔥💯", "👍🏽"];
    const NUMBERS: &[&str] =
        &["3.14159265358979", "1,000,000", "0xDEADBEEF", "2026-11-24T12:00:00Z", "9999999999999"];
    const OTHER: &[&str] = &["Привет, мир", "مرحبا بالعالم", "नमस्ते दुनिया", "Ελληνικά", "Ünïcödé façade"];
    const SPECIAL: &[&str] = &["<|endoftext|>", "<|im_start|>", "<|fim_prefix|>", "\u{0}", "\u{FEFF}"];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..count)
        .map(|_| {
            let mut text = String::new();
            for _ in 0..rng.below(60) {
                match rng.below(9) {
                    0 => text.push_str(rng.pick(PROSE)),
                    1 => text.push_str(rng.pick(CODE)),
                    2 => text.push_str(rng.pick(CJK)),
                    3 => text.push_str(rng.pick(EMOJI)),
                    4 => text.push_str(rng.pick(NUMBERS)),
                    5 => text.push_str(rng.pick(OTHER)),
                    6 => text.push_str(rng.pick(SPECIAL)),
                    7 => {
                        let run = rng.pick(&[" ", "\t", "\n", "\r\n", "=", "-", "*", "a", "0"]);
                        text.push_str(&run.repeat(1 + rng.below(300)));
                    }
                    _ => {
                        // Arbitrary scalar values, surrogates skipped by `from_u32`.
                        for _ in 0..1 + rng.below(20) {
                            text.extend(char::from_u32(rng.below(0x3_0000) as u32));
                        }
                    }
                }
            }
            text
        })
        .collect()
}

#[test]
fn the_estimate_is_never_below_cl100k_on_varied_text() {
    let cl100k = cl100k();
    for margin in [0.0, 0.1, EstimateTokenizer::DEFAULT_MARGIN_RATIO, 1.0] {
        let estimate = EstimateTokenizer::with_margin_ratio(margin).expect("a valid margin");
        for text in varied_texts(400) {
            let (exact, estimated) = (cl100k.count(&text), estimate.count(&text));
            let scaled = exact + (exact as f64 * margin).ceil() as usize;
            assert!(estimated >= scaled, "margin {margin}: {estimated} < {scaled} for {text:?}");
        }
    }
}

#[test]
fn the_chat_estimate_is_never_below_the_cl100k_chat_count() {
    let cl100k = cl100k();
    let estimate = EstimateTokenizer::new().expect("the default margin is valid");
    let texts = varied_texts(60);
    for pair in texts.chunks(3) {
        let prompt: Vec<_> = pair.iter().map(|t| named(ChatMessage::user(t.clone()), "ann")).collect();
        assert!(estimate.count_chat(&prompt) >= cl100k.count_chat(&prompt));
    }
    assert!(estimate.count_chat(&cookbook_example()) > 129);
}

#[test]
fn the_factory_builds_each_kind_with_a_public_tokenizer() {
    let cases = [
        (TokenizerKind::O200kBase, "o200k_base"),
        (TokenizerKind::Cl100kBase, "cl100k_base"),
        (TokenizerKind::Estimate, "estimate"),
    ];
    for (kind, name) in cases {
        let tokenizer = tokenizer_for(kind).expect("the kind has a tokenizer");
        assert_eq!(tokenizer.name(), name);
        assert!(tokenizer.count("hello world") >= 2);
    }
}

#[test]
fn the_factory_sends_the_local_kind_to_the_loaded_local_model() {
    let err = tokenizer_for(TokenizerKind::Local).err().expect("Local is not built by kind");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("loaded local model"), "{err}");
    assert!(!err.is_retryable());
}

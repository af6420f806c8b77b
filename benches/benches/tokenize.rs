//! Token counting throughput on 1 MiB of mixed English prose and code, for o200k_base,
//! cl100k_base and the conservative estimator. The text is generated deterministically,
//! so runs compare; the token count of each is printed to stderr beside the bytes.

use std::hint::black_box;

use amp_core::Tokenizer;
use amp_providers::tokenize::{EstimateTokenizer, TiktokenTokenizer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SIZE: usize = 1 << 20;

/// ~1 MiB alternating paragraphs of prose and code, varied by a fixed-seed generator so
/// the encoder sees many distinct words rather than one paragraph repeated.
fn mixed_text() -> String {
    const WORDS: [&str; 48] = [
        "the",
        "model",
        "context",
        "window",
        "answer",
        "passage",
        "citation",
        "retrieval",
        "workspace",
        "user",
        "request",
        "streams",
        "tokens",
        "budget",
        "history",
        "upload",
        "document",
        "index",
        "vector",
        "search",
        "router",
        "fallback",
        "deployment",
        "latency",
        "quickly",
        "carefully",
        "before",
        "after",
        "between",
        "because",
        "although",
        "every",
        "several",
        "enterprise",
        "platform",
        "session",
        "device",
        "sync",
        "policy",
        "audit",
        "storage",
        "embedding",
        "chunk",
        "overlap",
        "ranking",
        "hybrid",
        "keyword",
        "server",
    ];
    const IDENTS: [&str; 12] = [
        "budget", "chunks", "hits", "scores", "tokens", "messages", "request", "window", "offset", "limit",
        "deadline", "retries",
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n as u64) as usize
    };
    let mut text = String::with_capacity(SIZE + 4096);
    while text.len() < SIZE {
        for sentence in 0..4 + next(4) {
            let length = 8 + next(14);
            for w in 0..length {
                let word = WORDS[next(WORDS.len())];
                if w == 0 {
                    let mut chars = word.chars();
                    text.extend(chars.next().map(|c| c.to_ascii_uppercase()));
                    text.push_str(chars.as_str());
                } else {
                    text.push(' ');
                    text.push_str(word);
                }
            }
            text.push_str(if sentence % 3 == 2 { ", 2026.\n" } else { ". " });
        }
        text.push_str("\n\n");
        let (a, b) = (IDENTS[next(IDENTS.len())], IDENTS[next(IDENTS.len())]);
        let n = next(10_000);
        text.push_str(&format!(
            "fn fit_{a}_{n}({a}: &[usize], {b}: usize) -> Option<usize> {{\n    \
             let mut total = 0;\n    for (i, x) in {a}.iter().enumerate() {{\n        \
             if total + x > {b} {{\n            return Some(i);\n        }}\n        total += x;\n    }}\n    \
             None\n}}\n\n"
        ));
    }
    // ASCII only, so any byte index is a character boundary.
    text.truncate(SIZE);
    text
}

fn tokenize(c: &mut Criterion) {
    let text = mixed_text();
    let tokenizers: [Box<dyn Tokenizer>; 3] = [
        Box::new(TiktokenTokenizer::o200k_base().expect("o200k_base is compiled in")),
        Box::new(TiktokenTokenizer::cl100k_base().expect("cl100k_base is compiled in")),
        Box::new(EstimateTokenizer::new().expect("the default margin is valid")),
    ];
    let mut group = c.benchmark_group("tokenize_1MiB_mixed");
    group.sample_size(10).throughput(Throughput::Bytes(text.len() as u64));
    for tokenizer in &tokenizers {
        eprintln!("{}: {} tokens in {} bytes", tokenizer.name(), tokenizer.count(&text), text.len());
        group.bench_function(tokenizer.name(), |b| b.iter(|| tokenizer.count(black_box(&text))));
    }
    group.finish();
}

criterion_group!(benches, tokenize);
criterion_main!(benches);

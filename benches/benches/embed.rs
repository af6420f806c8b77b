//! Local embedding throughput: chunks of 94 word pieces (counting `[CLS]` and `[SEP]`)
//! embedded per second by all-MiniLM-L6-v2 on one ONNX Runtime thread, at batch sizes 1,
//! 16 and 64. Needs the model files (`scripts/fetch-models.sh`); reads `AMP_MODEL_DIR`,
//! else `.amp-cache/models` in the repository.

use std::path::PathBuf;
use std::time::Duration;

use amp_core::Embedder;
use amp_providers::embed::fastembed::{LocalEmbedder, LocalEmbedderOptions};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn model_dir() -> PathBuf {
    std::env::var_os("AMP_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.amp-cache/models"))
}

/// Distinct chunks of exactly 94 word pieces each: every filler is one word piece in
/// MiniLM's vocabulary (checked with its tokenizer.json when the bench was written).
fn chunks(count: usize) -> Vec<String> {
    const NAMES: [&str; 15] = [
        "alpha", "bravo", "delta", "echo", "golf", "hotel", "india", "lima", "mike", "oscar", "papa",
        "quebec", "romeo", "sierra", "tango",
    ];
    const SERVICES: [&str; 6] = ["billing", "search", "export", "payment", "email", "report"];
    const DAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    (0..count)
        .map(|i| {
            format!(
                "Ticket {}: after the nightly deploy, the {} service started rejecting uploads larger than ten \
                 megabytes. The gateway logs show timeouts while the storage worker waits for the virus scanner, \
                 and users see a generic error instead of the size limit. Rolling back the scanner image fixed it \
                 on staging; production still needs the patch and a regression test before the release on {}. \
                 The on-call engineer should also check the dashboard for errors in other regions.",
                NAMES[i % NAMES.len()],
                SERVICES[i % SERVICES.len()],
                DAYS[i % DAYS.len()]
            )
        })
        .collect()
}

fn embed(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime builds");
    // One embedder whose batch is the largest measured, so each request below runs as a
    // single batch of exactly its own size.
    let options = LocalEmbedderOptions::new(model_dir()).with_intra_threads(1).with_batch_size(64);
    let embedder = LocalEmbedder::load(options)
        .unwrap_or_else(|e| panic!("the local embedder loads (run scripts/fetch-models.sh first): {e}"));
    let mut group = c.benchmark_group("local_embed_94_tokens_1_thread");
    group.sample_size(10).warm_up_time(Duration::from_secs(3));
    for batch in [1usize, 16, 64] {
        let texts = chunks(batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.measurement_time(Duration::from_secs(if batch == 64 { 25 } else { 10 }));
        group.bench_with_input(BenchmarkId::new("batch", batch), &texts, |b, texts| {
            b.to_async(&rt).iter(|| async { embedder.embed(texts).await.expect("embedding succeeds") })
        });
    }
    group.finish();
}

criterion_group!(benches, embed);
criterion_main!(benches);

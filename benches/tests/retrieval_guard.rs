//! A guard on ranking quality: 50 SciFact training claims over their abstracts and 250
//! others, through the real server on its defaults (uploads, chunking, the local embedder,
//! both indexes, `POST /agents/context/search`). A change that breaks ranking in any mode
//! drops these scores below their floors and fails CI; the full evaluation is
//! `cargo run --release -p amp-benches --bin amp-eval -- scifact` (see benches/RESULTS.md).
//!
//! SciFact is not shipped with AMP (CC BY-NC 2.0); it is read from `AMP_SCIFACT_DIR`, else
//! `../shared/data/scifact` beside the workspace.

use std::path::PathBuf;

use amp_benches::retrieval::{Dataset, Server, evaluate};

/// Floors a little under what the defaults scored on this sample (keyword 0.792, vector
/// 0.860, hybrid 0.838; see benches/RESULTS.md).
const FLOOR_KEYWORD: f64 = 0.75;
const FLOOR_VECTOR: f64 = 0.82;
const FLOOR_HYBRID: f64 = 0.80;

fn data_dir() -> PathBuf {
    std::env::var_os("AMP_SCIFACT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/scifact"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranking_on_a_fixed_scifact_sample_stays_above_its_floors() {
    let dir = data_dir();
    let data = Dataset::load(&dir)
        .unwrap_or_else(|e| panic!("SciFact is needed at {} (or set AMP_SCIFACT_DIR): {e}", dir.display()))
        .sample(50, 250);
    let server = Server::start(|c| c.storage.embed_threads = 1).await.unwrap();
    server.ingest(&data.docs).await.unwrap();
    let mut scores = Vec::new();
    for (mode, floor) in [("keyword", FLOOR_KEYWORD), ("vector", FLOOR_VECTOR), ("hybrid", FLOOR_HYBRID)] {
        let s = evaluate(&server, &data, mode).await.unwrap();
        scores.push((mode, s.ndcg_10, floor));
    }
    eprintln!("nDCG@10 on the sample: {scores:?}");
    for (mode, ndcg, floor) in &scores {
        assert!(*ndcg >= *floor, "{mode}: nDCG@10 {ndcg:.3} fell below {floor} (all: {scores:?})");
    }
}

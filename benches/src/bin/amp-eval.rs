//! `amp-eval`: retrieval quality on BEIR SciFact through the real server (see
//! `amp_benches::retrieval`), per mode, beside the published figures.
//!
//! ```text
//! cargo run --release -p amp-benches --bin amp-eval -- scifact
//! cargo run --release -p amp-benches --bin amp-eval -- scifact --queries 100 --modes hybrid
//! ```

#![allow(clippy::print_stdout, reason = "a command-line harness reports on stdout")]

use std::path::PathBuf;
use std::time::Instant;

use amp_benches::retrieval::{BoxError, Dataset, Server, evaluate};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "amp-eval", about = "Retrieval quality of AMP on public benchmarks")]
struct Cli {
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Debug, Subcommand)]
enum Benchmark {
    /// BEIR SciFact's training claims over its 5,183 abstracts: nDCG@10 and recall@100.
    Scifact {
        /// The directory holding corpus.jsonl, queries-train.jsonl and qrels/train.tsv.
        #[arg(long, default_value = "../shared/data/scifact")]
        data: PathBuf,
        /// The first N queries only (0: all).
        #[arg(long, default_value_t = 0)]
        queries: usize,
        /// The modes to score, comma-separated.
        #[arg(long, default_value = "keyword,vector,hybrid")]
        modes: String,
        /// Embedder threads (0: every core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Keep the server's data here; a later run with the same directory skips the
        /// upload when every abstract is already ready there.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let Benchmark::Scifact { data, queries, modes, threads, keep } = Cli::parse().benchmark;
    let mut dataset = Dataset::load(&data)?;
    if queries > 0 {
        dataset.queries.truncate(queries);
    }
    println!(
        "SciFact: {} abstracts, {} training queries with judgements",
        dataset.docs.len(),
        dataset.queries.len()
    );
    let configure = |c: &mut amp_core::AmpConfig| c.storage.embed_threads = threads;
    let server = match &keep {
        Some(dir) => Server::start_in(dir, configure).await?,
        None => Server::start(configure).await?,
    };
    if server.ready_files().await? >= dataset.docs.len() {
        println!(
            "the {} abstracts are already ingested in {}",
            dataset.docs.len(),
            keep.unwrap_or_default().display()
        );
    } else {
        let took = server.ingest(&dataset.docs).await?;
        println!(
            "ingested {} files in {:.0} s through the Storage pipeline",
            dataset.docs.len(),
            took.as_secs_f64()
        );
    }
    println!("| mode | nDCG@10 | recall@100 | query time (mean) |");
    println!("|---|---|---|---|");
    for mode in modes.split(',').map(str::trim) {
        let started = Instant::now();
        let scores = evaluate(&server, &dataset, mode).await?;
        let per_query = started.elapsed().as_secs_f64() * 1000.0 / dataset.queries.len().max(1) as f64;
        println!("| {mode} | {:.3} | {:.3} | {per_query:.1} ms |", scores.ndcg_10, scores.recall_100);
    }
    println!(
        "published (SciFact test split): BM25 0.665, all-MiniLM-L6-v2 0.645, BM25 + MiniLM hybrid 0.707, \
         bge-small-en-v1.5 0.713"
    );
    Ok(())
}

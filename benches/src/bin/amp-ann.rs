//! `amp-ann`: a bounded bench of the embedded vector index (HNSW over the flat file) and of
//! BM25 keyword search at scale, on loopback only and stopping by itself.
//!
//! Vectors are synthetic but clustered like embeddings (unit vectors around `n / 100`
//! random centres), 384 dimensions, 20 passages a file; one owner holds 99 % of them and
//! another 1 %. For each scope (the first owner unfiltered, 20, 1,000 and 5,000 of their
//! files, the second owner's 1 %) it reports top-10 latency p50 / p95 / p99 and recall@10
//! against exact search of the same entries, the larger scopes again with the graph forced,
//! then the build rate, memory per vector and the time to reopen the persisted index.
//! `--pg URL` runs the same searches against pgvector; `--bm25` times tantivy over `n`
//! synthetic passages (`--only-bm25` only that).
//!
//! ```text
//! cargo run --release -p amp-benches --bin amp-ann -- --n 100000
//! cargo run --release -p amp-benches --bin amp-ann -- --n 1000000 --bm25
//! ```

#![allow(clippy::print_stdout, reason = "a command-line harness reports on stdout")]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_core::{
    ChunkId, FileId, KeywordEntry, KeywordIndex, SearchFilter, UserId, VectorEntry, VectorIndex, Visibility,
};
use amp_providers::{FlatVectorIndex, HnswVectorIndex, TantivyKeywordIndex};
use clap::Parser;
use hdrhistogram::Histogram;

#[derive(Debug, Parser)]
#[command(name = "amp-ann", about = "Vector and keyword search at scale")]
struct Cli {
    /// Passages.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Queries per scope.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Dimensions.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Also search pgvector at this PostgreSQL URL.
    #[arg(long)]
    pg: Option<String>,
    /// Also time BM25 (tantivy) over `n` synthetic passages.
    #[arg(long)]
    bm25: bool,
    /// Time only BM25 (no vector indexes).
    #[arg(long)]
    only_bm25: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// splitmix64: a fixed stream of pseudo-random numbers, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Roughly normal (the sum of four uniforms, centred).
    fn normal(&mut self) -> f32 {
        (0..4).map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32).sum::<f32>() - 2.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Clustered vectors: each a random centre plus noise a third of its length.
struct Data {
    centres: Vec<Vec<f32>>,
    dim: usize,
    rng: Rng,
}

impl Data {
    fn new(n: usize, dim: usize) -> Self {
        let mut rng = Rng(42);
        let centres =
            (0..(n / 100).max(10)).map(|_| unit((0..dim).map(|_| rng.normal()).collect())).collect();
        Data { centres, dim, rng }
    }

    fn point(&mut self) -> Vec<f32> {
        let c = self.rng.below(self.centres.len());
        let noise = 0.35 / (self.dim as f32).sqrt();
        unit((0..self.dim).map(|d| self.centres[c][d] + noise * self.rng.normal() * 1.7).collect())
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// One row of the results table: latency percentiles in ms and recall@10.
fn row(index: &str, scope: &str, latency: &Histogram<u64>, recall: f64) {
    let (p50, p95, p99) = (ms(latency, 0.5), ms(latency, 0.95), ms(latency, 0.99));
    println!("| {index} | {scope} | {p50:.2} | {p95:.2} | {p99:.2} | {recall:.3} |");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Searches `index` with each query under `filter`: latency and recall@10 against `exact`.
async fn measure(
    index: &dyn VectorIndex,
    exact: &FlatVectorIndex,
    queries: &[Vec<f32>],
    filter: &SearchFilter,
) -> Result<(Histogram<u64>, f64), BoxError> {
    let mut latency = histogram();
    let mut recalled = 0usize;
    let mut wanted = 0usize;
    for q in queries {
        let truth: HashSet<ChunkId> = exact.search(q, filter, 10).await?.iter().map(|h| h.chunk).collect();
        let started = Instant::now();
        let found = index.search(q, filter, 10).await?;
        latency.record(started.elapsed().as_micros().max(1) as u64)?;
        recalled += found.iter().filter(|h| truth.contains(&h.chunk)).count();
        wanted += truth.len();
    }
    Ok((latency, recalled as f64 / wanted.max(1) as f64))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "amp-ann: {} passages of {} dimensions, {} queries a scope, {cores} cores",
        cli.n, cli.dim, cli.queries
    );
    if cli.only_bm25 {
        return bm25(cli.n, cli.queries).await;
    }
    // One owner holds 99 % of the passages, another the files whose number ends in 00.
    let (owner, another) = (UserId::new(), UserId::new());
    let visibility = |file: usize| Visibility {
        owner: if file.is_multiple_of(100) { another } else { owner },
        workspace: None,
    };
    let files: Vec<FileId> = (0..cli.n.div_ceil(20)).map(|_| FileId::new()).collect();
    let mut data = Data::new(cli.n, cli.dim);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("vectors.flat");
    let exact = FlatVectorIndex::in_memory(cli.dim);
    let rss_before = rss_kib();
    let index = HnswVectorIndex::open(&path, cli.dim)?;
    let mut build = Duration::ZERO;
    let mut kept = Vec::new();
    for start in (0..cli.n).step_by(1_000) {
        let batch: Vec<VectorEntry> = (start..(start + 1_000).min(cli.n))
            .map(|i| VectorEntry {
                chunk: ChunkId::new(),
                file: files[i / 20],
                visibility: visibility(i / 20),
                vector: data.point(),
            })
            .collect();
        exact.upsert(batch.clone()).await?;
        if cli.pg.is_some() {
            kept.extend(batch.iter().cloned());
        }
        let started = Instant::now();
        index.upsert(batch).await?;
        build += started.elapsed();
    }
    let rss_after = rss_kib();
    println!(
        "build: {:.0} vectors/s ({:.1} s; the flat log and the graph, one writer); graph {:.0} bytes/vector; \
         process RSS grew {:.0} bytes/vector (both indexes)",
        cli.n as f64 / build.as_secs_f64(),
        build.as_secs_f64(),
        index.graph_bytes() as f64 / cli.n as f64,
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / cli.n as f64,
    );

    let queries: Vec<Vec<f32>> = (0..cli.queries).map(|_| data.point()).collect();
    let mut rng = Rng(7);
    let mut pick = |k: usize| -> Vec<FileId> {
        let mut chosen = HashSet::new();
        while chosen.len() < k.min(files.len()) {
            chosen.insert(files[rng.below(files.len())]);
        }
        chosen.into_iter().collect()
    };
    let scopes = [
        ("unfiltered", SearchFilter::owner(owner)),
        ("20 files", SearchFilter::owner(owner).with_files(pick(20))),
        ("1,000 files", SearchFilter::owner(owner).with_files(pick(1_000))),
        ("5,000 files", SearchFilter::owner(owner).with_files(pick(5_000))),
        ("a person's 1 %", SearchFilter::owner(another)),
    ];
    println!("| index | scope | p50 ms | p95 ms | p99 ms | recall@10 |");
    println!("|---|---|---|---|---|---|");
    for (name, filter) in &scopes {
        let (latency, recall) = measure(&index, &exact, &queries, filter).await?;
        row("hnsw", name, &latency, recall);
    }
    // The same scopes through the graph whatever their size, to place the exact threshold.
    let graph = index.clone().exact_below(0);
    // (Not the 20-file scope: its filtered walk of the graph takes seconds at a million.)
    for (name, filter) in scopes.iter().skip(2) {
        let (latency, recall) = measure(&graph, &exact, &queries, filter).await?;
        row("hnsw, graph only", name, &latency, recall);
    }
    drop(graph);
    for (name, filter) in &scopes {
        let (latency, _) = measure(&exact, &exact, &queries[..queries.len().min(50)], filter).await?;
        row("flat (exact)", name, &latency, 1.0);
    }
    index.save()?;
    drop(index);
    let started = Instant::now();
    let reopened = tokio::task::spawn_blocking(move || HnswVectorIndex::open(&path, cli.dim)).await??;
    println!(
        "reopen: {:.2} s for {} vectors (log replay and graph load)",
        started.elapsed().as_secs_f64(),
        reopened.len()
    );
    drop(reopened);

    if let Some(url) = &cli.pg {
        // The same entries, owner and scopes, so the exact index is the truth for both.
        let pool = sqlx::PgPool::connect(url).await?;
        let pg = amp_providers::PgVectorIndex::open(pool, cli.dim).await?;
        let started = Instant::now();
        for batch in kept.chunks(1_000) {
            pg.upsert(batch.to_vec()).await?;
        }
        println!("pgvector build: {:.0} vectors/s", cli.n as f64 / started.elapsed().as_secs_f64());
        for (name, filter) in &scopes {
            let (latency, recall) = measure(&pg, &exact, &queries, filter).await?;
            row("pgvector", name, &latency, recall);
        }
        for file in &files {
            pg.delete_file(*file).await?;
        }
    }

    if cli.bm25 {
        bm25(cli.n, cli.queries).await?;
    }
    Ok(())
}

/// BM25 over `n` passages of 60 words drawn from a Zipf-like vocabulary of 50,000 words.
async fn bm25(n: usize, queries: usize) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let index = Arc::new(TantivyKeywordIndex::open(&dir.path().join("keywords"))?);
    // One owner holds 99 % of the passages, another the files whose number ends in 00.
    let (owner, another) = (UserId::new(), UserId::new());
    let visibility = |file: usize| Visibility {
        owner: if file.is_multiple_of(100) { another } else { owner },
        workspace: None,
    };
    let files: Vec<FileId> = (0..n.div_ceil(20)).map(|_| FileId::new()).collect();
    let mut rng = Rng(3);
    let vocabulary: Vec<String> = (0..50_000).map(|i| format!("w{i:x}")).collect();
    // Rank r is drawn with probability ~ 1/r: the inverse of a log-uniform draw.
    let word = |rng: &mut Rng| {
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let rank = (50_000f64.powf(u) as usize).clamp(1, 50_000) - 1;
        vocabulary[rank].clone()
    };
    let started = Instant::now();
    for start in (0..n).step_by(10_000) {
        let batch: Vec<KeywordEntry> = (start..(start + 10_000).min(n))
            .map(|i| KeywordEntry {
                chunk: ChunkId::new(),
                file: files[i / 20],
                visibility: visibility(i / 20),
                text: (0..60).map(|_| word(&mut rng)).collect::<Vec<_>>().join(" "),
            })
            .collect();
        index.upsert(batch).await?;
    }
    println!(
        "bm25 build: {n} passages in {:.1} s; {} segments",
        started.elapsed().as_secs_f64(),
        index.segments()
    );
    let mut pick = HashSet::new();
    while pick.len() < 1_000.min(files.len()) {
        pick.insert(files[rng.below(files.len())]);
    }
    let scopes = [
        ("unfiltered", SearchFilter::owner(owner)),
        ("1,000 files", SearchFilter::owner(owner).with_files(pick.into_iter().collect())),
        ("a person's 1 %", SearchFilter::owner(another)),
    ];
    for (name, filter) in &scopes {
        let mut latency = histogram();
        for _ in 0..queries {
            let query = (0..4).map(|_| word(&mut rng)).collect::<Vec<_>>().join(" ");
            let started = Instant::now();
            index.search(&query, filter, 10).await?;
            latency.record(started.elapsed().as_micros().max(1) as u64)?;
        }
        println!(
            "| bm25 (tantivy) | {name} | p50 {:.2} ms | p95 {:.2} ms | p99 {:.2} ms |",
            ms(&latency, 0.5),
            ms(&latency, 0.95),
            ms(&latency, 0.99)
        );
    }
    Ok(())
}

//! Retrieval's index cost: one filtered top-5 search in `FlatVectorIndex` (exact cosine
//! over 384-dimensional vectors, the local embedder's) at 10,000 and 100,000 passages,
//! against the seed's query target of 10–50 ms. Two filters: what a chat turn sends (one
//! owner and the file ids in scope, here 20 of the caller's among 1,000 files), and the
//! worst case where every passage is readable.
//!
//! `cargo bench -p amp-benches --bench vector_index`

use amp_core::{ChunkId, FileId, SearchFilter, UserId, VectorEntry, VectorIndex, Visibility};
use amp_providers::FlatVectorIndex;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const DIMENSION: usize = 384;

/// A deterministic pseudo-random unit-ish vector (xorshift), so runs compare.
fn vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..DIMENSION)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2_000) as f32 / 1_000.0 - 1.0
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("vector_index_search_top5");
    group.sample_size(30);
    for passages in [10_000_u64, 100_000] {
        let index = FlatVectorIndex::in_memory(DIMENSION);
        let owners: Vec<UserId> = (0..50).map(|_| UserId::new()).collect();
        let files: Vec<FileId> = (0..1_000).map(|_| FileId::new()).collect();
        let me = owners[0];
        runtime.block_on(async {
            for batch in (0..passages).collect::<Vec<_>>().chunks(1_000) {
                let entries = batch
                    .iter()
                    .map(|&i| {
                        let file = (i % 1_000) as usize;
                        // Files 0..20 are the caller's; the rest belong to others.
                        let owner = if file < 20 { me } else { owners[1 + file % 49] };
                        VectorEntry {
                            chunk: ChunkId::new(),
                            file: files[file],
                            visibility: Visibility { owner, workspace: None },
                            vector: vector(i),
                        }
                    })
                    .collect();
                index.upsert(entries).await.unwrap();
            }
        });
        let query = vector(u64::MAX / 3);
        let scoped = SearchFilter::owner(me).with_files(files[..20].to_vec());
        group.bench_with_input(BenchmarkId::new("20_files_in_scope", passages), &passages, |b, _| {
            b.iter(|| runtime.block_on(index.search(&query, &scoped, 5)).unwrap());
        });
        // A workspace-sized scope: every one of the 1,000 files listed by id.
        let listed =
            SearchFilter { owners: owners.clone(), workspaces: Vec::new(), files: Some(files.clone()) };
        group.bench_with_input(BenchmarkId::new("1000_files_in_scope", passages), &passages, |b, _| {
            b.iter(|| runtime.block_on(index.search(&query, &listed, 5)).unwrap());
        });
        // The worst case: every passage readable, so every one is scored.
        let everything = SearchFilter { owners: owners.clone(), workspaces: Vec::new(), files: None };
        group.bench_with_input(BenchmarkId::new("all_readable", passages), &passages, |b, _| {
            b.iter(|| runtime.block_on(index.search(&query, &everything, 5)).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The [`VectorIndex`] kit.

use std::sync::Arc;

use super::Open;
use crate::document::{SearchFilter, Visibility};
use crate::error::ErrorKind;
use crate::ids::{ChunkId, FileId, UserId, WorkspaceId};
use crate::traits::index::{VectorEntry, VectorIndex};

/// A unit vector of `dim` dimensions pointing between axes `a` and `b` by `weights`.
fn unit(dim: usize, parts: &[(usize, f32)]) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    for (axis, w) in parts {
        v[*axis] = *w;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn entry(
    chunk: ChunkId,
    file: FileId,
    owner: UserId,
    workspace: Option<WorkspaceId>,
    vector: Vec<f32>,
) -> VectorEntry {
    VectorEntry { chunk, file, visibility: Visibility { owner, workspace }, vector }
}

/// Checks every promise of [`VectorIndex`]. The index's dimension must be at least 4.
pub async fn run(index: Arc<dyn VectorIndex>) {
    let dim = index.dimension();
    assert!(dim >= 4, "[vector_index] the kit needs a dimension of at least 4");
    let (me, other, ws) = (UserId::new(), UserId::new(), WorkspaceId::new());
    let (f1, f2, f_other) = (FileId::new(), FileId::new(), FileId::new());
    let [exact, close, orthogonal, opposite, theirs, shared] = std::array::from_fn(|_| ChunkId::new());
    index
        .upsert(vec![
            entry(exact, f1, me, None, unit(dim, &[(0, 1.0)])),
            entry(close, f1, me, None, unit(dim, &[(0, 1.0), (1, 1.0)])),
            entry(orthogonal, f2, me, None, unit(dim, &[(1, 1.0)])),
            entry(opposite, f2, me, None, unit(dim, &[(0, -1.0)])),
            entry(theirs, f_other, other, None, unit(dim, &[(0, 1.0), (2, 0.1)])),
            entry(shared, f_other, other, Some(ws), unit(dim, &[(0, 1.0), (3, 0.5)])),
        ])
        .await
        .unwrap();
    let query = unit(dim, &[(0, 1.0)]);

    let hits = index.search(&query, &SearchFilter::owner(me), 10).await.unwrap();
    let order: Vec<_> = hits.iter().map(|h| h.chunk).collect();
    assert_eq!(
        order,
        vec![exact, close, orthogonal, opposite],
        "[vector_index] results must be by descending similarity"
    );
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "[vector_index] scores must not increase");
    assert!((hits[0].score - 1.0).abs() < 0.01, "[vector_index] an identical vector must score ~1 (cosine)");
    assert_eq!(hits[0].file, f1, "[vector_index] hits must carry their file");

    let top2 = index.search(&query, &SearchFilter::owner(me), 2).await.unwrap();
    assert_eq!(
        top2.iter().map(|h| h.chunk).collect::<Vec<_>>(),
        vec![exact, close],
        "[vector_index] limit must cut the tail"
    );

    let with_ws = index.search(&query, &SearchFilter::owner(me).with_workspace(ws), 10).await.unwrap();
    let ids: Vec<_> = with_ws.iter().map(|h| h.chunk).collect();
    assert!(ids.contains(&shared), "[vector_index] entries shared into a readable workspace must match");
    assert!(!ids.contains(&theirs), "[vector_index] another user's private entry must never match");

    let only_f2 = index.search(&query, &SearchFilter::owner(me).with_files(vec![f2]), 10).await.unwrap();
    assert_eq!(
        only_f2.iter().map(|h| h.chunk).collect::<Vec<_>>(),
        vec![orthogonal, opposite],
        "[vector_index] the file filter must apply"
    );

    assert!(
        index.search(&query, &SearchFilter::default(), 10).await.unwrap().is_empty(),
        "[vector_index] an empty filter must match nothing"
    );
    let stranger = index.search(&query, &SearchFilter::owner(UserId::new()), 10).await.unwrap();
    assert!(
        stranger.is_empty(),
        "[vector_index] a user with no entries must get nothing, not others' entries"
    );

    // Upsert replaces: `exact` now points away from the query.
    index.upsert(vec![entry(exact, f1, me, None, unit(dim, &[(1, 1.0), (2, 1.0)]))]).await.unwrap();
    let hits = index.search(&query, &SearchFilter::owner(me), 10).await.unwrap();
    assert_eq!(hits.len(), 4, "[vector_index] upserting an existing chunk must not duplicate it");
    assert_eq!(hits[0].chunk, close, "[vector_index] upserting an existing chunk must replace its vector");

    let wrong = vec![0.5; dim + 1];
    let err = index.upsert(vec![entry(ChunkId::new(), f1, me, None, wrong.clone())]).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "[vector_index] a wrong-dimension upsert must be InvalidInput"
    );
    let err = index.search(&wrong, &SearchFilter::owner(me), 1).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "[vector_index] a wrong-dimension query must be InvalidInput"
    );

    assert_eq!(
        index.delete_file(f1).await.unwrap(),
        2,
        "[vector_index] delete_file must report what it removed"
    );
    let hits = index.search(&query, &SearchFilter::owner(me), 10).await.unwrap();
    assert!(hits.iter().all(|h| h.file != f1), "[vector_index] a deleted file's entries must be gone");
    assert_eq!(index.delete_file(f1).await.unwrap(), 0, "[vector_index] deleting twice removes nothing");

    concurrent_upserts(index, dim).await;
}

async fn concurrent_upserts(index: Arc<dyn VectorIndex>, dim: usize) {
    let owner = UserId::new();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let index = index.clone();
        tasks.push(tokio::spawn(async move {
            let file = FileId::new();
            for i in 0..10 {
                let v = unit(dim, &[(t % dim, 1.0), ((t + 1) % dim, i as f32 / 10.0)]);
                index.upsert(vec![entry(ChunkId::new(), file, owner, None, v)]).await.unwrap();
            }
            file
        }));
    }
    for t in tasks {
        let file = t.await.unwrap();
        let hits = index
            .search(&unit(dim, &[(0, 1.0)]), &SearchFilter::owner(owner).with_files(vec![file]), 10)
            .await
            .unwrap();
        assert_eq!(hits.len(), 10, "[vector_index] every concurrent upsert must be searchable");
    }
    filtered_recall(&*index, dim).await;
}

/// A fixed pseudo-random unit vector per `seed`, leaning towards axis 0 by `lean`.
fn scattered(dim: usize, seed: u64, lean: f32) -> Vec<f32> {
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            z ^= z << 13;
            z ^= z >> 7;
            z ^= z << 17;
            (z % 2_001) as f32 / 1_000.0 - 1.0
        })
        .collect();
    v[0] += lean * (dim as f32).sqrt();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Filtered recall: a person's few entries sit behind two thousand closer ones they may
/// not read, and behind their own other files; the search must still return their true
/// ten nearest, in order, for their whole scope and for a two-file scope.
async fn filtered_recall(index: &dyn VectorIndex, dim: usize) {
    let (me, crowd) = (UserId::new(), UserId::new());
    let query = scattered(dim, 1, 1.0);
    let crowd_file = FileId::new();
    let crowded: Vec<VectorEntry> = (0..2_000)
        .map(|i| entry(ChunkId::new(), crowd_file, crowd, None, scattered(dim, 10 + i, 1.0)))
        .collect();
    index.upsert(crowded).await.unwrap();
    let files: Vec<FileId> = (0..6).map(|_| FileId::new()).collect();
    let mine: Vec<VectorEntry> = (0..60)
        .map(|i| entry(ChunkId::new(), files[i as usize % 6], me, None, scattered(dim, 5_000 + i, 0.2)))
        .collect();
    index.upsert(mine.clone()).await.unwrap();
    let truth = |scope: &[FileId]| {
        let mut ranked: Vec<&VectorEntry> = mine.iter().filter(|e| scope.contains(&e.file)).collect();
        ranked.sort_by(|a, b| cosine(&b.vector, &query).total_cmp(&cosine(&a.vector, &query)));
        ranked.iter().take(10).map(|e| e.chunk).collect::<Vec<_>>()
    };
    for (filter, scope) in [
        (SearchFilter::owner(me), files.clone()),
        (SearchFilter::owner(me).with_files(files[..2].to_vec()), files[..2].to_vec()),
    ] {
        let hits = index.search(&query, &filter, 10).await.unwrap();
        assert_eq!(
            hits.iter().map(|h| h.chunk).collect::<Vec<_>>(),
            truth(&scope),
            "[vector_index] a restrictive filter must still return the true nearest readable entries"
        );
    }
    index.delete_file(crowd_file).await.unwrap();
    for file in files {
        index.delete_file(file).await.unwrap();
    }
}

/// Checks that entries survive closing and reopening the index.
pub async fn persists(open: Open<dyn VectorIndex>) {
    let owner = UserId::new();
    let (file, chunk) = (FileId::new(), ChunkId::new());
    let index = open().await;
    let dim = index.dimension();
    index.upsert(vec![entry(chunk, file, owner, None, unit(dim, &[(0, 1.0)]))]).await.unwrap();
    drop(index);
    let reopened = open().await;
    let hits = reopened.search(&unit(dim, &[(0, 1.0)]), &SearchFilter::owner(owner), 5).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.chunk).collect::<Vec<_>>(),
        vec![chunk],
        "[vector_index] entries must survive a reopen"
    );
}

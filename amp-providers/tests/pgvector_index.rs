//! [`PgVectorIndex`] keeps every [`VectorIndex`] promise, and several indexes on one database
//! (several server processes) share their vectors.
//!
//! Runs against the PostgreSQL `scripts/test.sh` starts (with pgvector) and names in
//! `AMP_TEST_POSTGRES_URL`; the kits write only fresh ids, so tests share the database.

use std::sync::Arc;

use amp_core::testkit::{self, Open};
use amp_core::{
    ChunkId, ErrorKind, FileId, SearchFilter, UserId, VectorEntry, VectorIndex, Visibility, WorkspaceId,
};
use amp_providers::PgVectorIndex;
use futures::FutureExt;
use sqlx::PgPool;

const DIM: usize = 8;

fn postgres_url() -> String {
    std::env::var("AMP_TEST_POSTGRES_URL").expect(
        "AMP_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL with pgvector",
    )
}

/// A pool of its own, as a separate server process would have.
async fn pool() -> PgPool {
    PgPool::connect(&postgres_url()).await.expect("the test PostgreSQL is reachable")
}

fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[i] = 1.0;
    v
}

fn entry(file: FileId, owner: UserId, workspace: Option<WorkspaceId>, vector: Vec<f32>) -> VectorEntry {
    VectorEntry { chunk: ChunkId::new(), file, visibility: Visibility { owner, workspace }, vector }
}

#[tokio::test]
async fn pgvector_index_keeps_every_vector_index_promise() {
    let index = PgVectorIndex::open(pool().await, DIM).await.unwrap();
    testkit::vector_index::run(Arc::new(index)).await;
}

#[tokio::test]
async fn pgvector_entries_survive_reopening() {
    let open: Open<dyn VectorIndex> = Box::new(|| {
        async { Arc::new(PgVectorIndex::open(pool().await, DIM).await.unwrap()) as Arc<dyn VectorIndex> }
            .boxed()
    });
    testkit::vector_index::persists(open).await;
}

#[tokio::test]
async fn indexes_sharing_a_database_see_each_others_changes() {
    let (a, b) = tokio::join!(async { PgVectorIndex::open(pool().await, DIM).await.unwrap() }, async {
        PgVectorIndex::open(pool().await, DIM).await.unwrap()
    },);
    let (owner, file) = (UserId::new(), FileId::new());
    let written = entry(file, owner, None, axis(0));
    a.upsert(vec![written.clone()]).await.unwrap();

    let hits = b.search(&axis(0), &SearchFilter::owner(owner), 5).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.chunk).collect::<Vec<_>>(), vec![written.chunk]);

    assert_eq!(b.delete_file(file).await.unwrap(), 1);
    assert!(a.search(&axis(0), &SearchFilter::owner(owner), 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn filtered_searches_fill_the_limit_past_many_closer_unreadable_vectors() {
    let index = PgVectorIndex::open(pool().await, DIM).await.unwrap();
    let (me, stranger, ws) = (UserId::new(), UserId::new(), WorkspaceId::new());
    // Thousands of vectors right next to the query that the caller may not read, and a few
    // far from it that they may: an index scan that filters after the fact finds none.
    let mut near = 0.0f32;
    let crowd: Vec<_> = (0..3_000)
        .map(|_| {
            near += 1e-4;
            let mut v = axis(0);
            v[1] = near;
            entry(FileId::new(), stranger, None, v)
        })
        .collect();
    index.upsert(crowd).await.unwrap();
    let mine: Vec<_> = (2..DIM).map(|i| entry(FileId::new(), me, None, axis(i))).collect();
    let shared = entry(FileId::new(), stranger, Some(ws), axis(1));
    index.upsert(mine.iter().cloned().chain([shared.clone()]).collect()).await.unwrap();

    let hits = index.search(&axis(0), &SearchFilter::owner(me).with_workspace(ws), 100).await.unwrap();
    let mut found: Vec<_> = hits.iter().map(|h| h.chunk).collect();
    let mut expected: Vec<_> = mine.iter().chain([&shared]).map(|e| e.chunk).collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "every readable entry, and only those");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
}

#[tokio::test]
async fn a_rejected_batch_stores_none_of_its_entries() {
    let index = PgVectorIndex::open(pool().await, DIM).await.unwrap();
    let (owner, file) = (UserId::new(), FileId::new());
    for bad in [vec![0.0; DIM], vec![f32::NAN; DIM], vec![1.0; DIM + 1]] {
        let batch = vec![entry(file, owner, None, axis(0)), entry(file, owner, None, bad)];
        assert_eq!(index.upsert(batch).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    assert!(index.search(&axis(0), &SearchFilter::owner(owner), 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_chunk_listed_twice_in_one_batch_keeps_its_last_entry() {
    let index = PgVectorIndex::open(pool().await, DIM).await.unwrap();
    let owner = UserId::new();
    let first = entry(FileId::new(), owner, None, axis(0));
    let last = VectorEntry { vector: axis(1), file: FileId::new(), ..first.clone() };
    index.upsert(vec![first, last.clone()]).await.unwrap();
    let hits = index.search(&axis(1), &SearchFilter::owner(owner), 5).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].chunk, hits[0].file), (last.chunk, last.file));
    assert!((hits[0].score - 1.0).abs() < 1e-4);
}

#[tokio::test]
async fn opening_creates_the_extension_in_a_database_without_it() {
    let admin = pool().await;
    let name = format!("amp_pgvector_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    let url = postgres_url();
    let fresh_url = format!("{}/{name}", &url[..url.rfind('/').unwrap()]);
    let fresh = PgPool::connect(&fresh_url).await.unwrap();

    let index = PgVectorIndex::open(fresh.clone(), DIM).await.unwrap();
    let owner = UserId::new();
    let e = entry(FileId::new(), owner, None, axis(3));
    index.upsert(vec![e.clone()]).await.unwrap();
    assert_eq!(index.search(&axis(3), &SearchFilter::owner(owner), 1).await.unwrap()[0].chunk, e.chunk);

    fresh.close().await;
    drop(index);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_role_that_cannot_create_the_extension_gets_a_clear_unavailable() {
    let admin = pool().await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (db, role) = (format!("amp_pgvector_{suffix}"), format!("amp_plain_{suffix}"));
    for sql in [format!("CREATE ROLE {role} LOGIN"), format!("CREATE DATABASE {db}")] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await.unwrap();
    }
    let url = postgres_url();
    let rest = &url[url.find('@').unwrap()..url.rfind('/').unwrap()];
    let plain = PgPool::connect(&format!("postgres://{role}{rest}/{db}")).await.unwrap();

    let err = PgVectorIndex::open(plain.clone(), DIM).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("CREATE EXTENSION vector"), "{err}");

    plain.close().await;
    for sql in [format!("DROP DATABASE {db} WITH (FORCE)"), format!("DROP ROLE {role}")] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await.unwrap();
    }
}

#[tokio::test]
async fn a_search_the_index_scan_gives_up_on_is_finished_exactly() {
    // Connections that prefer the HNSW index and let an iterative scan read only 10 rows,
    // as a huge shared table would make it stop early.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .after_connect(|conn, _| {
            Box::pin(async move {
                for setting in [
                    "SET enable_seqscan = off",
                    "SET enable_bitmapscan = off",
                    "SET hnsw.max_scan_tuples = 10",
                ] {
                    sqlx::query(setting).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(&postgres_url())
        .await
        .unwrap();
    let index = PgVectorIndex::open(pool, DIM).await.unwrap();
    let (me, stranger) = (UserId::new(), UserId::new());
    let crowd: Vec<_> = (0..500).map(|_| entry(FileId::new(), stranger, None, axis(0))).collect();
    index.upsert(crowd).await.unwrap();
    let mine: Vec<_> = (1..4).map(|i| entry(FileId::new(), me, None, axis(i))).collect();
    index.upsert(mine.clone()).await.unwrap();

    let hits = index.search(&axis(0), &SearchFilter::owner(me), 10).await.unwrap();
    assert_eq!(hits.len(), mine.len(), "every readable entry, though the index scan stopped early");
}

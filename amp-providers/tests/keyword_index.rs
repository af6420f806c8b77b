//! Both keyword backends keep every [`KeywordIndex`] promise: [`TantivyKeywordIndex`] in
//! memory and on disk (its entries survive reopening the directory), and [`PgKeywordIndex`]
//! on the PostgreSQL at `AMP_TEST_POSTGRES_URL` (scripts/test.sh starts one), shared by
//! two indexes on one database.

use std::sync::Arc;

use amp_core::KeywordIndex;
use amp_core::testkit::{self, Open};
use amp_providers::sql::{PoolOptions, PostgresStores};
use amp_providers::{PgKeywordIndex, TantivyKeywordIndex};
use futures::FutureExt;

#[tokio::test]
async fn tantivy_keeps_every_keyword_index_promise_in_memory() {
    testkit::keyword_index::run(Arc::new(TantivyKeywordIndex::in_memory().unwrap())).await;
}

#[tokio::test]
async fn tantivy_keeps_every_keyword_index_promise_on_disk_and_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    testkit::keyword_index::run(Arc::new(TantivyKeywordIndex::open(&dir.path().join("keyword")).unwrap()))
        .await;
    let path = dir.path().join("reopened");
    let open: Open<dyn KeywordIndex> = Box::new(move || {
        let path = path.clone();
        async move { Arc::new(TantivyKeywordIndex::open(&path).unwrap()) as Arc<dyn KeywordIndex> }.boxed()
    });
    testkit::keyword_index::persists(open).await;
}

async fn postgres() -> PostgresStores {
    let url = std::env::var("AMP_TEST_POSTGRES_URL").expect(
        "AMP_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL",
    );
    // Connecting migrates the schema, keyword_passages included.
    PostgresStores::connect(&url, &PoolOptions::default()).await.expect("the test PostgreSQL is reachable")
}

#[tokio::test]
async fn postgres_full_text_search_keeps_every_keyword_index_promise() {
    let stores = postgres().await;
    testkit::keyword_index::run(Arc::new(PgKeywordIndex::new(stores.pool().clone()))).await;
}

#[tokio::test]
async fn postgres_entries_are_seen_by_every_index_on_the_database() {
    let open: Open<dyn KeywordIndex> = Box::new(move || {
        async move { Arc::new(PgKeywordIndex::new(postgres().await.pool().clone())) as Arc<dyn KeywordIndex> }
            .boxed()
    });
    testkit::keyword_index::persists(open).await;
}

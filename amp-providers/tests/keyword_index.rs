//! [`TantivyKeywordIndex`] keeps every [`KeywordIndex`] promise, in memory and on disk, and
//! its entries survive reopening the directory.

use std::sync::Arc;

use amp_core::KeywordIndex;
use amp_core::testkit::{self, Open};
use amp_providers::TantivyKeywordIndex;
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

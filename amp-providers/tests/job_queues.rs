//! The SQL job queues keep every [`JobQueue`] promise on SQLite and on PostgreSQL.
//!
//! PostgreSQL runs against the server `scripts/test.sh` starts and names in
//! `AMP_TEST_POSTGRES_URL`; the kit writes only fresh kinds, so tests share the database.

use std::sync::Arc;

use amp_core::JobQueue;
use amp_core::testkit;
use amp_providers::sql::{PoolOptions, PostgresStores, SqliteStores};

fn postgres_url() -> String {
    std::env::var("AMP_TEST_POSTGRES_URL").expect(
        "AMP_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL",
    )
}

async fn postgres_queue() -> Arc<dyn JobQueue> {
    let stores = PostgresStores::connect(&postgres_url(), &PoolOptions::default()).await.unwrap();
    Arc::new(stores.job_queue())
}

#[tokio::test]
async fn sqlite_job_queue_keeps_every_promise() {
    let dir = tempfile::tempdir().unwrap();
    let stores = SqliteStores::open(&dir.path().join("amp.db"), &PoolOptions::default()).await.unwrap();
    testkit::job_queue::run(Arc::new(stores.job_queue())).await;
}

#[tokio::test]
async fn sqlite_jobs_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amp.db");
    testkit::job_queue::persists(Box::new(move || {
        let path = path.clone();
        Box::pin(async move {
            let stores = SqliteStores::open(&path, &PoolOptions::default()).await.unwrap();
            Arc::new(stores.job_queue()) as Arc<dyn JobQueue>
        })
    }))
    .await;
}

#[tokio::test]
async fn sqlite_queues_of_two_pools_on_one_file_never_claim_a_job_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amp.db");
    let mut queues: Vec<Arc<dyn JobQueue>> = Vec::new();
    for _ in 0..2 {
        let stores = SqliteStores::open(&path, &PoolOptions::default()).await.unwrap();
        queues.push(Arc::new(stores.job_queue()));
    }
    testkit::job_queue::claims_across(&queues, 200).await;
}

#[tokio::test]
async fn postgres_job_queue_keeps_every_promise() {
    testkit::job_queue::run(postgres_queue().await).await;
}

#[tokio::test]
async fn postgres_jobs_survive_reconnecting() {
    testkit::job_queue::persists(Box::new(|| Box::pin(postgres_queue()))).await;
}

/// Two pools stand for two server processes sharing one database.
#[tokio::test]
async fn postgres_queues_of_two_processes_never_claim_a_job_twice() {
    let queues = [postgres_queue().await, postgres_queue().await];
    testkit::job_queue::claims_across(&queues, 200).await;
}

#[tokio::test]
async fn open_job_queue_opens_the_database_the_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = amp_core::AmpConfig { data_dir: dir.path().to_owned(), ..Default::default() };
    let queue = amp_providers::sql::open_job_queue(&config).await.unwrap();
    let stores = SqliteStores::open(&dir.path().join("amp.db"), &PoolOptions::default()).await.unwrap();
    let job = amp_core::NewJob {
        kind: testkit::unique("kind"),
        payload: serde_json::json!({}),
        max_attempts: 1,
        owner: None,
    };
    let id = queue.enqueue(job.clone()).await.unwrap();
    assert!(stores.job_queue().get(id).await.unwrap().is_some(), "the default is amp.db under the data dir");

    config.database.url = Some(amp_core::Secret::new(postgres_url()));
    let queue = amp_providers::sql::open_job_queue(&config).await.unwrap();
    let id = queue.enqueue(job).await.unwrap();
    assert!(postgres_queue().await.get(id).await.unwrap().is_some(), "a postgres:// URL opens PostgreSQL");

    config.database.url = Some(amp_core::Secret::new("mysql://nowhere/db".to_owned()));
    let err = amp_providers::sql::open_job_queue(&config).await.err().expect("an unknown scheme is refused");
    assert_eq!(err.kind(), amp_core::ErrorKind::InvalidInput);
}

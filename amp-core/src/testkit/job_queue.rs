//! The [`JobQueue`] kit.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Open, unique};
use crate::error::ErrorKind;
use crate::traits::job_queue::{JobQueue, JobState, NewJob};

const LONG: Duration = Duration::from_secs(60);

fn job(kind: &str, n: u32, max_attempts: u32) -> NewJob {
    NewJob { kind: kind.to_owned(), payload: json!({ "n": n }), max_attempts }
}

/// Checks every promise of [`JobQueue`].
pub async fn run(queue: Arc<dyn JobQueue>) {
    let kind = unique("kind");
    let k = kind.as_str();

    assert!(
        queue.claim(&[k], LONG).await.unwrap().is_none(),
        "[job_queue] an empty kind has nothing to claim"
    );
    let err = queue.enqueue(job(k, 0, 0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "[job_queue] max_attempts of 0 must be InvalidInput");

    let ids = [queue.enqueue(job(k, 1, 3)).await.unwrap(), queue.enqueue(job(k, 2, 3)).await.unwrap()];
    let other_kind = unique("kind");
    queue.enqueue(job(&other_kind, 9, 1)).await.unwrap();

    let first = queue.claim(&[k], LONG).await.unwrap().expect("[job_queue] a queued job must be claimable");
    assert_eq!(first.id, ids[0], "[job_queue] jobs must be claimed oldest first");
    assert_eq!(first.state, JobState::Running, "[job_queue] a claimed job is Running");
    assert_eq!(first.attempts, 1, "[job_queue] a claim counts as an attempt");
    assert_eq!(first.payload, json!({ "n": 1 }), "[job_queue] the payload must come back intact");
    assert!(first.lease_expires_at.is_some(), "[job_queue] a claimed job has a lease");
    let second = queue.claim(&[k], LONG).await.unwrap().expect("[job_queue] the next job must be claimable");
    assert_eq!(second.id, ids[1]);
    assert!(
        queue.claim(&[k], LONG).await.unwrap().is_none(),
        "[job_queue] a running job must not be claimed twice"
    );

    queue.complete(first.id, first.attempts).await.unwrap();
    let done = queue.get(first.id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "[job_queue] complete must mark the job Succeeded");

    // Failing re-queues while attempts remain; the back-off delays the next claim.
    let state = queue.fail(second.id, second.attempts, "boom", Duration::ZERO).await.unwrap();
    assert_eq!(state, JobState::Queued, "[job_queue] a failure with attempts left re-queues");
    let retry =
        queue.claim(&[k], LONG).await.unwrap().expect("[job_queue] a re-queued job must be claimable");
    assert_eq!((retry.id, retry.attempts), (second.id, 2));
    assert_eq!(retry.last_error.as_deref(), Some("boom"), "[job_queue] the last error must be kept");
    let state = queue.fail(retry.id, retry.attempts, "boom again", Duration::from_secs(600)).await.unwrap();
    assert_eq!(state, JobState::Queued);
    assert!(
        queue.claim(&[k], LONG).await.unwrap().is_none(),
        "[job_queue] a job must not run before its back-off ends"
    );

    let last = queue.enqueue(job(k, 3, 1)).await.unwrap();
    let claimed = queue.claim(&[k], LONG).await.unwrap().unwrap();
    assert_eq!(claimed.id, last);
    let state = queue.fail(last, claimed.attempts, "fatal", Duration::ZERO).await.unwrap();
    assert_eq!(state, JobState::Failed, "[job_queue] a failure on the last attempt must mark the job Failed");
    assert!(queue.claim(&[k], LONG).await.unwrap().is_none(), "[job_queue] a failed job must not be claimed");

    leases(&*queue).await;
    concurrent_claims(queue.clone()).await;
    assert!(
        queue.get(crate::ids::JobId::new()).await.unwrap().is_none(),
        "[job_queue] get of an unknown id is None"
    );
}

async fn leases(queue: &dyn JobQueue) {
    let kind = unique("kind");
    let id = queue.enqueue(job(&kind, 1, 5)).await.unwrap();
    let stale = queue.claim(&[&kind], Duration::from_millis(300)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let fresh = queue
        .claim(&[&kind], LONG)
        .await
        .unwrap()
        .expect("[job_queue] a job whose lease expired must be claimable again");
    assert_eq!((fresh.id, fresh.attempts), (id, 2));
    let err = queue.complete(id, stale.attempts).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "[job_queue] a worker whose lease was taken over must get Conflict"
    );
    let err = queue.fail(id, stale.attempts, "late", Duration::ZERO).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[job_queue] a stale failure report must get Conflict");
    queue.complete(id, fresh.attempts).await.unwrap();
    let err = queue.complete(id, fresh.attempts).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[job_queue] completing a finished job must get Conflict");
}

async fn concurrent_claims(queue: Arc<dyn JobQueue>) {
    let kind = unique("kind");
    let mut enqueued = BTreeSet::new();
    for n in 0..20 {
        enqueued.insert(queue.enqueue(job(&kind, n, 1)).await.unwrap());
    }
    let mut workers = Vec::new();
    for _ in 0..6 {
        let (queue, kind) = (queue.clone(), kind.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = queue.claim(&[&kind], LONG).await.unwrap() {
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for w in workers {
        claimed.extend(w.await.unwrap());
    }
    let unique_claims: BTreeSet<_> = claimed.iter().copied().collect();
    assert_eq!(
        claimed.len(),
        20,
        "[job_queue] under concurrent claims every job must be claimed exactly once"
    );
    assert_eq!(unique_claims, enqueued, "[job_queue] concurrent workers must claim each job once");
}

/// Checks that queued jobs survive closing and reopening the queue.
pub async fn persists(open: Open<dyn JobQueue>) {
    let kind = unique("kind");
    let queue = open().await;
    let id = queue.enqueue(job(&kind, 7, 2)).await.unwrap();
    drop(queue);
    let claimed = open().await.claim(&[&kind], LONG).await.unwrap();
    assert_eq!(claimed.map(|j| j.id), Some(id), "[job_queue] queued jobs must survive a reopen");
}

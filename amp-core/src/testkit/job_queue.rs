//! The [`JobQueue`] kit.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Open, unique};
use crate::error::ErrorKind;
use crate::ids::{JobId, UserId};
use crate::traits::job_queue::{Job, JobQueue, JobState, NewJob};

const LONG: Duration = Duration::from_secs(60);
/// A lease the kit lets run out, and how long it waits for that.
const SHORT: Duration = Duration::from_millis(300);
const PAST_SHORT: Duration = Duration::from_millis(900);

fn job(kind: &str, n: u32, max_attempts: u32) -> NewJob {
    NewJob { kind: kind.to_owned(), payload: json!({ "n": n }), max_attempts, owner: None }
}

fn owned(kind: &str, n: u32, owner: Option<UserId>) -> NewJob {
    NewJob { owner, ..job(kind, n, 3) }
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

    let owner = UserId::new();
    let ids =
        [queue.enqueue(owned(k, 1, Some(owner))).await.unwrap(), queue.enqueue(job(k, 2, 3)).await.unwrap()];
    let other_kind = unique("kind");
    queue.enqueue(job(&other_kind, 9, 1)).await.unwrap();

    let first = queue.claim(&[k], LONG).await.unwrap().expect("[job_queue] a queued job must be claimable");
    assert_eq!(first.id, ids[0], "[job_queue] jobs must be claimed oldest first");
    assert_eq!(first.kind, kind, "[job_queue] the kind must come back intact");
    assert_eq!(first.state, JobState::Running, "[job_queue] a claimed job is Running");
    assert_eq!(first.attempts, 1, "[job_queue] a claim counts as an attempt");
    assert_eq!(first.max_attempts, 3, "[job_queue] max_attempts must come back intact");
    assert_eq!(first.payload, json!({ "n": 1 }), "[job_queue] the payload must come back intact");
    assert_eq!(first.owner, Some(owner), "[job_queue] the owner must come back intact");
    assert!(first.lease_expires_at.is_some(), "[job_queue] a claimed job has a lease");
    let second = queue.claim(&[k], LONG).await.unwrap().expect("[job_queue] the next job must be claimable");
    assert_eq!(second.id, ids[1]);
    assert_eq!(second.owner, None, "[job_queue] a job without an owner has none");
    assert!(
        queue.claim(&[k], LONG).await.unwrap().is_none(),
        "[job_queue] a running job must not be claimed twice"
    );
    assert!(
        queue.claim(&[], LONG).await.unwrap().is_none(),
        "[job_queue] a claim of no kinds claims nothing"
    );

    queue.complete(first.id, first.attempts).await.unwrap();
    let done = queue.get(first.id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "[job_queue] complete must mark the job Succeeded");
    assert_eq!(done.lease_expires_at, None, "[job_queue] a finished job holds no lease");

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
    let waiting = queue.get(second.id).await.unwrap().unwrap();
    assert!(
        waiting.run_after > crate::testkit::now_ms() + chrono::Duration::seconds(500),
        "[job_queue] a back-off must show in run_after"
    );

    let last = queue.enqueue(job(k, 3, 1)).await.unwrap();
    let claimed = queue.claim(&[k], LONG).await.unwrap().unwrap();
    assert_eq!(claimed.id, last);
    let state = queue.fail(last, claimed.attempts, "fatal", Duration::ZERO).await.unwrap();
    assert_eq!(state, JobState::Failed, "[job_queue] a failure on the last attempt must mark the job Failed");
    assert!(queue.claim(&[k], LONG).await.unwrap().is_none(), "[job_queue] a failed job must not be claimed");
    let failed = queue.get(last).await.unwrap().unwrap();
    assert_eq!(
        (failed.state, failed.last_error.as_deref()),
        (JobState::Failed, Some("fatal")),
        "[job_queue] a failed job keeps its error"
    );

    let a = queue.enqueue(job(&unique("kind"), 1, 1)).await.unwrap();
    let b_kind = unique("kind");
    let b = queue.enqueue(job(&b_kind, 2, 1)).await.unwrap();
    let either = queue.claim(&[&b_kind, "kit-no-such-kind"], LONG).await.unwrap().map(|j| j.id);
    assert_eq!(either, Some(b), "[job_queue] a claim takes only the kinds it names");
    assert_eq!(queue.get(a).await.unwrap().unwrap().state, JobState::Queued);

    leases(&*queue).await;
    extend(&*queue).await;
    poison(&*queue).await;
    list(&*queue).await;
    concurrent_claims(queue.clone()).await;
    assert!(queue.get(JobId::new()).await.unwrap().is_none(), "[job_queue] get of an unknown id is None");
}

async fn leases(queue: &dyn JobQueue) {
    let kind = unique("kind");
    let id = queue.enqueue(job(&kind, 1, 5)).await.unwrap();
    let stale = queue.claim(&[&kind], SHORT).await.unwrap().unwrap();
    tokio::time::sleep(PAST_SHORT).await;
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
    let err = queue.extend(id, stale.attempts, LONG).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "[job_queue] a worker whose lease was taken over must not extend it"
    );
    queue.complete(id, fresh.attempts).await.unwrap();
    let err = queue.complete(id, fresh.attempts).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[job_queue] completing a finished job must get Conflict");
}

/// A worker that renews its lease keeps the job; renewing with a stale token or after the
/// job finished is refused.
async fn extend(queue: &dyn JobQueue) {
    let kind = unique("kind");
    let id = queue.enqueue(job(&kind, 1, 3)).await.unwrap();
    let held = queue.claim(&[&kind], SHORT).await.unwrap().unwrap();
    let first_lease = held.lease_expires_at.unwrap();
    queue.extend(id, held.attempts, LONG).await.unwrap();
    let extended = queue.get(id).await.unwrap().unwrap();
    assert!(
        extended.lease_expires_at.is_some_and(|at| at > first_lease),
        "[job_queue] extend must move the lease's end"
    );
    assert_eq!(
        (extended.state, extended.attempts),
        (JobState::Running, held.attempts),
        "[job_queue] extend must not change the job's state or attempts"
    );
    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        queue.claim(&[&kind], LONG).await.unwrap().is_none(),
        "[job_queue] a job whose lease was extended must not be claimed when the first lease would have run out"
    );
    let err = queue.extend(id, held.attempts + 1, LONG).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[job_queue] extend with a stale attempt must get Conflict");
    let err = queue.extend(id, held.attempts - 1, LONG).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[job_queue] extend with a stale attempt must get Conflict");
    queue.complete(id, held.attempts).await.unwrap();
    let err = queue.extend(id, held.attempts, LONG).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[job_queue] extending a finished job must get Conflict");
    assert_eq!(queue.get(id).await.unwrap().unwrap().state, JobState::Succeeded);
}

/// A job whose worker dies on every attempt (say, it crashes the process) must end Failed,
/// not be handed out forever.
async fn poison(queue: &dyn JobQueue) {
    let alone = unique("kind");
    let poisoned = queue.enqueue(job(&alone, 1, 1)).await.unwrap();
    let doomed = queue.claim(&[&alone], SHORT).await.unwrap().unwrap();
    assert_eq!(doomed.id, poisoned);

    // A poison job ahead of a healthy one must not hold the healthy one up.
    let shared = unique("kind");
    let ahead = queue.enqueue(job(&shared, 2, 1)).await.unwrap();
    queue.claim(&[&shared], SHORT).await.unwrap().unwrap();
    let behind = queue.enqueue(job(&shared, 3, 1)).await.unwrap();

    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        queue.claim(&[&alone], LONG).await.unwrap().is_none(),
        "[job_queue] a job whose lease expired on its last attempt must not be claimed again"
    );
    let failed = queue.get(poisoned).await.unwrap().unwrap();
    assert_eq!(
        failed.state,
        JobState::Failed,
        "[job_queue] a job whose lease expired on its last attempt must be Failed"
    );
    assert!(
        failed.last_error.as_deref().is_some_and(|e| !e.trim().is_empty()),
        "[job_queue] a job failed for an expired last lease must say why"
    );
    assert_eq!(failed.lease_expires_at, None, "[job_queue] a failed job holds no lease");
    let err = queue.complete(poisoned, doomed.attempts).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "[job_queue] a job failed for an expired lease must refuse its late worker"
    );

    let next = queue.claim(&[&shared], LONG).await.unwrap().map(|j| j.id);
    assert_eq!(next, Some(behind), "[job_queue] a claim must skip past a poison job to the next one");
    assert_eq!(queue.get(ahead).await.unwrap().unwrap().state, JobState::Failed);
}

async fn list(queue: &dyn JobQueue) {
    let kind = unique("kind");
    let (ada, bob) = (UserId::new(), UserId::new());
    let mut ids = Vec::new();
    for (n, owner) in [Some(ada), Some(bob), Some(ada), None, Some(ada)].into_iter().enumerate() {
        let n = u32::try_from(n).unwrap();
        ids.push(queue.enqueue(owned(&kind, n, owner)).await.unwrap());
    }
    queue.enqueue(owned(&unique("kind"), 9, Some(ada))).await.unwrap();
    let id_list = |jobs: &[Job]| jobs.iter().map(|j| j.id).collect::<Vec<_>>();

    let all = queue.list(&kind, None, 10).await.unwrap();
    assert_eq!(
        id_list(&all),
        [ids[4], ids[3], ids[2], ids[1], ids[0]],
        "[job_queue] list must return every job of the kind, newest first"
    );
    assert_eq!(all[4].payload, json!({ "n": 0 }), "[job_queue] list must return whole jobs");
    assert_eq!(all[3].owner, Some(bob), "[job_queue] list must return each job's owner");

    let adas = queue.list(&kind, Some(ada), 10).await.unwrap();
    assert_eq!(
        id_list(&adas),
        [ids[4], ids[2], ids[0]],
        "[job_queue] list with an owner must return only that owner's jobs, newest first"
    );
    let newest = queue.list(&kind, Some(ada), 2).await.unwrap();
    assert_eq!(id_list(&newest), [ids[4], ids[2]], "[job_queue] list must return at most `limit` jobs");
    let newest = queue.list(&kind, None, 1).await.unwrap();
    assert_eq!(id_list(&newest), [ids[4]], "[job_queue] list must return at most `limit` jobs");
    assert!(queue.list(&kind, None, 0).await.unwrap().is_empty(), "[job_queue] a limit of 0 lists nothing");
    assert!(
        queue.list(&kind, Some(UserId::new()), 10).await.unwrap().is_empty(),
        "[job_queue] a person with no jobs lists none"
    );
    assert!(
        queue.list(&unique("kind"), None, 10).await.unwrap().is_empty(),
        "[job_queue] a kind with no jobs lists none"
    );

    let claimed = queue.claim(&[&kind], LONG).await.unwrap().unwrap();
    let listed = queue.list(&kind, Some(ada), 10).await.unwrap();
    let seen = listed.iter().find(|j| j.id == claimed.id).expect("[job_queue] a claimed job is still listed");
    assert_eq!(seen.state, JobState::Running, "[job_queue] list must show each job's current state");
}

async fn concurrent_claims(queue: Arc<dyn JobQueue>) {
    claims_across(&[queue], 20).await;
}

/// Checks that several workers claiming at once, spread over `queues` (separately opened
/// queues on one shared storage, as several server processes would hold), claim each of
/// `jobs` jobs exactly once.
pub async fn claims_across(queues: &[Arc<dyn JobQueue>], jobs: u32) {
    assert!(!queues.is_empty(), "claims_across needs at least one queue");
    let kind = unique("kind");
    let mut enqueued = BTreeSet::new();
    for n in 0..jobs {
        let queue = &queues[n as usize % queues.len()];
        enqueued.insert(queue.enqueue(job(&kind, n, 1)).await.unwrap());
    }
    let mut workers = Vec::new();
    for w in 0..6.max(queues.len() * 3) {
        let (queue, kind) = (queues[w % queues.len()].clone(), kind.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = queue.claim(&[&kind], LONG).await.unwrap() {
                // Completing proves the claim was this worker's alone: a double claim would
                // leave one of the two holding a token the other already spent.
                queue.complete(job.id, job.attempts).await.unwrap_or_else(|e| {
                    panic!("[job_queue] a job must be claimed by one worker at a time (its claimer could not complete it: {e})")
                });
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
        enqueued.len(),
        "[job_queue] under concurrent claims every job must be claimed exactly once"
    );
    assert_eq!(unique_claims, enqueued, "[job_queue] concurrent workers must claim each job once");
    for queue in queues {
        assert!(queue.claim(&[&kind], LONG).await.unwrap().is_none(), "[job_queue] every job was claimed");
    }
}

/// Checks that queued jobs survive closing and reopening the queue.
pub async fn persists(open: Open<dyn JobQueue>) {
    let kind = unique("kind");
    let owner = UserId::new();
    let queue = open().await;
    let id = queue.enqueue(owned(&kind, 7, Some(owner))).await.unwrap();
    let running = queue.enqueue(job(&kind, 8, 2)).await.unwrap();
    drop(queue);
    let queue = open().await;
    let claimed =
        queue.claim(&[&kind], SHORT).await.unwrap().expect("[job_queue] queued jobs must survive a reopen");
    assert_eq!(
        (claimed.id, claimed.owner),
        (id, Some(owner)),
        "[job_queue] queued jobs must survive a reopen"
    );
    assert_eq!(claimed.payload, json!({ "n": 7 }));
    let second = queue.claim(&[&kind], SHORT).await.unwrap().unwrap();
    assert_eq!(second.id, running);
    queue.complete(claimed.id, claimed.attempts).await.unwrap();
    drop(queue);

    // A job whose process stopped while running it is claimable again once its lease ran out.
    let queue = open().await;
    assert_eq!(queue.get(id).await.unwrap().map(|j| j.state), Some(JobState::Succeeded));
    tokio::time::sleep(PAST_SHORT).await;
    let again = queue.claim(&[&kind], LONG).await.unwrap().map(|j| (j.id, j.attempts));
    assert_eq!(again, Some((running, 2)), "[job_queue] a lease of a stopped process must run out");
}

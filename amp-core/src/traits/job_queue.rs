//! A durable queue of background jobs (ingestion, data-source sync).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{JobId, UserId};

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// What kind of work (`ingest_file`, `sync_source`); workers claim by kind.
    pub kind: String,
    /// The work's parameters.
    pub payload: serde_json::Value,
    /// Attempts before the job is failed for good (at least 1).
    pub max_attempts: u32,
    /// The person the work is for, so they can list their jobs.
    pub owner: Option<UserId>,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker (new, or retrying after a failure).
    Queued,
    /// Claimed by a worker whose lease has not run out.
    Running,
    /// Done.
    Succeeded,
    /// Failed on its last attempt.
    Failed,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// Its parameters.
    pub payload: serde_json::Value,
    /// The person the work is for.
    pub owner: Option<UserId>,
    /// Where it is.
    pub state: JobState,
    /// Claims so far.
    pub attempts: u32,
    /// Claims allowed.
    pub max_attempts: u32,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// Not claimable before this time (retry back-off).
    pub run_after: DateTime<Utc>,
    /// When the current lease runs out (while `Running`).
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
}

/// A durable job queue with leases.
///
/// Promises, checked by the conformance kit: jobs of a kind are claimed oldest first;
/// a job is held by at most one worker at a time, even under concurrent claims; a claim
/// whose lease expires makes the job claimable again; `fail` re-queues until `max_attempts`
/// claims were made, then marks it `Failed`; completing or failing needs the current lease
/// (a worker whose lease ran out, and whose job was claimed again, gets `Conflict`). The
/// job's `attempts` at claim time is the fencing token that proves the lease; `extend`
/// with a stale token is `Conflict` too, so a worker checks it still holds the job before
/// each write it must not make twice. `list` returns newest first.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Adds a job; it is claimable at once.
    async fn enqueue(&self, job: NewJob) -> Result<JobId>;

    /// Claims the oldest claimable job of one of `kinds`, holding it for `lease`.
    async fn claim(&self, kinds: &[&str], lease: Duration) -> Result<Option<Job>>;

    /// Marks a claimed job done. `attempt` is the job's `attempts` as returned by `claim`.
    async fn complete(&self, id: JobId, attempt: u32) -> Result<()>;

    /// Records a failed attempt; the job runs again after `retry_after` if attempts remain.
    /// Returns the job's new state.
    async fn fail(&self, id: JobId, attempt: u32, error: &str, retry_after: Duration) -> Result<JobState>;

    /// Extends a claimed job's lease to `lease` from now; `Conflict` when `attempt` no
    /// longer holds it (it expired and was claimed again, or it finished).
    async fn extend(&self, id: JobId, attempt: u32, lease: Duration) -> Result<()>;

    /// Reads a job, e.g. for a status endpoint.
    async fn get(&self, id: JobId) -> Result<Option<Job>>;

    /// The newest `limit` jobs of `kind`, only `owner`'s when set.
    async fn list(&self, kind: &str, owner: Option<UserId>, limit: usize) -> Result<Vec<Job>>;
}

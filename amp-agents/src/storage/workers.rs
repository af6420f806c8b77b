//! The ingestion worker pool, and the sweep that finishes what a crash left undone.
//!
//! Workers claim jobs from the shared [`JobQueue`](amp_core::JobQueue), so any number of
//! processes can run them against one database; a job held by a process that died is taken
//! over when its lease runs out. The sweep covers the gaps a queue cannot see: an upload
//! announced but never queued, and a file whose job ended without the file saying so.

use std::sync::Arc;
use std::time::Duration;

use amp_core::{ErrorKind, FileStatus, JobState, Result};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::Storage;
use crate::clock::now;

/// How often an idle worker looks for jobs other processes queued (jobs queued by this
/// process wake a worker at once).
const POLL: Duration = Duration::from_millis(500);

/// How often the sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A running worker pool; dropping it stops the workers (a job in progress stops where it
/// is and is taken over after its lease, by this process's successor or another one).
#[derive(Debug)]
pub struct IngestWorkers {
    tasks: JoinSet<()>,
}

impl IngestWorkers {
    /// Starts `count` workers and the sweep on the current runtime.
    pub fn spawn(storage: &Storage, count: usize) -> IngestWorkers {
        let mut tasks = JoinSet::new();
        for n in 0..count.max(1) {
            let storage = storage.clone();
            tasks.spawn(async move { storage.work(n).await });
        }
        let storage = storage.clone();
        tasks.spawn(async move {
            loop {
                if let Err(err) = storage.sweep().await {
                    tracing::warn!(error = %err, "the ingestion sweep failed; it runs again shortly");
                }
                tokio::time::sleep(SWEEP_EVERY).await;
            }
        });
        IngestWorkers { tasks }
    }

    /// Stops every worker now.
    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

impl Storage {
    /// One worker: claim, run, repeat; sleep when there is nothing to do.
    async fn work(&self, n: usize) {
        let wake = Arc::clone(&self.wake);
        loop {
            match self.queue.claim(&[self.settings.job_kind.as_str()], self.settings.lease).await {
                Ok(Some(job)) => {
                    let span =
                        tracing::info_span!("ingest", worker = n, job = %job.id, attempt = job.attempts);
                    let renew = self.keep_lease(&job);
                    self.run_job(job).instrument(span).await;
                    renew.abort();
                }
                Ok(None) => {
                    let _ = tokio::time::timeout(POLL, wake.notified()).await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "claiming an ingestion job failed");
                    tokio::time::sleep(POLL * 4).await;
                }
            }
        }
    }

    /// Renews a job's lease every third of its length while the job runs, so a long file
    /// is not taken over by another worker; stops when the lease is lost.
    fn keep_lease(&self, job: &amp_core::Job) -> tokio::task::JoinHandle<()> {
        let (queue, id, attempt, lease) = (self.queue.clone(), job.id, job.attempts, self.settings.lease);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match queue.extend(id, attempt, lease).await {
                    Ok(()) => {}
                    // Another worker has it, or it is finished: nothing left to renew.
                    Err(err) if matches!(err.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => return,
                    // A store hiccup: the lease still has two thirds to run; try again.
                    Err(err) => tracing::warn!(job = %id, error = %err, "renewing a lease failed; retrying"),
                }
            }
        })
    }

    /// Finishes what crashes left: uploads announced and never queued (queued when their
    /// bytes are there, dropped when they never came), and files whose job ended without
    /// the file being marked (failed with the job's last error).
    pub async fn sweep(&self) -> Result<usize> {
        let quiet = chrono::TimeDelta::from_std(self.settings.lease * 3).unwrap_or(chrono::TimeDelta::MAX);
        let mut fixed = 0;
        for mut file in self.stores.files.list_unfinished(now() - quiet, 500).await? {
            match (&file.status, file.job) {
                (FileStatus::Pending, _) => {
                    let abandoned = now() - file.updated_at
                        > chrono::TimeDelta::from_std(self.settings.pending_ttl)
                            .unwrap_or(chrono::TimeDelta::MAX);
                    let kept = match &file.blob_key {
                        Some(key) => self.blobs.head(key).await?.is_some(),
                        None => false,
                    };
                    if kept {
                        // A direct upload whose process died after storing the bytes.
                        self.enqueue(&mut file).await?;
                        fixed += 1;
                    } else if abandoned {
                        // A presigned upload whose client never said it was complete is
                        // completed if its bytes came, else dropped.
                        if self.finish_upload(file.clone()).await.is_err() {
                            self.remove(&file).await?;
                        }
                        fixed += 1;
                    }
                }
                (_, Some(job)) => match self.queue.get(job).await? {
                    Some(j) if matches!(j.state, JobState::Queued | JobState::Running) => {}
                    ended => {
                        let reason = ended
                            .and_then(|j| j.last_error)
                            .unwrap_or_else(|| "processing stopped; process the file again".to_owned());
                        self.set_status(&mut file, FileStatus::Failed { reason }).await?;
                        fixed += 1;
                    }
                },
                (_, None) => {
                    // Left mid-processing by a version that processed in the request.
                    if file.blob_key.is_some() {
                        self.enqueue(&mut file).await?;
                    } else {
                        let reason = "processing stopped; upload the file again".to_owned();
                        self.set_status(&mut file, FileStatus::Failed { reason }).await?;
                    }
                    fixed += 1;
                }
            }
        }
        if fixed > 0 {
            tracing::info!(files = fixed, "the ingestion sweep finished files left by a stopped process");
        }
        Ok(fixed)
    }
}

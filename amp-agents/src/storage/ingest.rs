//! One ingestion job: `scan → extract → chunk → embed → index → ready`, each stage shown
//! on the file's status and on its owner's devices.
//!
//! A job may run more than once (its worker died, or lost its lease and another process took
//! it over), so every write is idempotent: a run starts by clearing what an earlier run may
//! have left, passage ids follow from the file and the ordinal, and before each write the
//! worker proves it still holds the lease (a worker whose lease was taken gets `Conflict`
//! and stops without writing).

use std::time::{Duration, Instant};

use amp_core::audit::{AuditAction, NewAuditEvent};
use amp_core::{
    Chunk, Error, ErrorKind, FileId, FileMeta, FileStatus, Job, JobQueue, KeywordEntry, Result, ScanVerdict,
    VectorEntry, Visibility,
};
use bytes::Bytes;
use serde_json::json;

use super::{Storage, sniff};
use crate::clock::now;

/// The job kind workers claim.
pub const INGEST_FILE: &str = "ingest_file";

/// How often embedding progress is written, at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Times each stage of one file into `amp_ingest_stage_seconds{stage}`, so operators (and
/// the ingestion bench) see where the time goes.
struct StageClock {
    stage: &'static str,
    since: Instant,
}

impl StageClock {
    fn start(stage: &'static str) -> Self {
        StageClock { stage, since: Instant::now() }
    }

    /// Ends the current stage and starts `next`.
    fn next(&mut self, next: &'static str) {
        metrics::histogram!("amp_ingest_stage_seconds", "stage" => self.stage).record(self.since.elapsed());
        *self = StageClock::start(next);
    }
}

/// The lease a worker holds on one job.
pub(crate) struct Lease<'a> {
    queue: &'a dyn JobQueue,
    job: &'a Job,
    length: Duration,
}

impl Lease<'_> {
    /// Renews the lease, proving it is still ours; `Conflict` when another worker has it.
    async fn hold(&self) -> Result<()> {
        self.queue.extend(self.job.id, self.job.attempts, self.length).await
    }
}

/// How one run of a job ended.
pub(crate) enum Outcome {
    /// The file is ready, or there was nothing to do (deleted, already done).
    Done,
    /// The file failed for good, with a reason its owner can act on.
    Failed(String),
    /// Worth another attempt after a pause (a dependency is down).
    Retry(Error),
}

impl Storage {
    /// Runs one claimed job to its end and reports it to the queue.
    pub(crate) async fn run_job(&self, job: Job) {
        let lease = Lease { queue: self.queue.as_ref(), job: &job, length: self.settings.lease };
        let file = job.payload.get("file").and_then(|v| v.as_str()).and_then(|s| s.parse::<FileId>().ok());
        let outcome = match file {
            Some(file) => self.ingest(file, &lease).await,
            None => Ok(Outcome::Failed("the job names no file".to_owned())),
        };
        let result = match &outcome {
            Ok(Outcome::Done) => "done",
            Ok(Outcome::Failed(_)) => "failed",
            Ok(Outcome::Retry(_)) | Err(_) => "retried",
        };
        metrics::counter!("amp_ingest_jobs_total", "outcome" => result).increment(1);
        let reported = match outcome {
            Ok(Outcome::Done) => self.queue.complete(job.id, job.attempts).await,
            Ok(Outcome::Failed(reason)) => {
                if let Some(file) = file {
                    self.mark_failed(file, &job, &reason).await;
                }
                self.queue.complete(job.id, job.attempts).await
            }
            Ok(Outcome::Retry(err)) => self.retry(file, &job, &err).await,
            Err(err) if err.kind() == ErrorKind::Conflict => {
                // Another worker holds the job now (or the file was deleted under us):
                // it reports the outcome, not us.
                tracing::info!(job = %job.id, error = %err, "ingestion stopped: the lease was lost");
                Ok(())
            }
            Err(err) => self.retry(file, &job, &err).await,
        };
        if let Err(err) = reported {
            tracing::warn!(job = %job.id, error = %err, "reporting an ingestion job failed");
        }
    }

    /// A failed attempt: re-queued with back-off while attempts remain, else the file fails.
    async fn retry(&self, file: Option<FileId>, job: &Job, err: &Error) -> Result<()> {
        tracing::warn!(job = %job.id, attempt = job.attempts, error = %err, "ingestion attempt failed");
        let backoff = err.retry_after().unwrap_or(Duration::from_secs(2u64.pow(job.attempts.min(8))));
        let state = self.queue.fail(job.id, job.attempts, &err.public_message(), backoff).await?;
        if state == amp_core::JobState::Failed
            && let Some(file) = file
        {
            let reason = format!("processing failed {} times; last: {}", job.attempts, err.public_message());
            self.mark_failed(file, job, &reason).await;
        }
        Ok(())
    }

    async fn mark_failed(&self, id: FileId, job: &Job, reason: &str) {
        match self.stores.files.get_file(id).await {
            Ok(Some(mut file)) if file.job == Some(job.id) || file.job.is_none() => {
                if let Err(err) =
                    self.set_status(&mut file, FileStatus::Failed { reason: reason.to_owned() }).await
                {
                    tracing::error!(file = %id, error = %err, "marking a file failed did not work");
                }
            }
            Ok(_) => {}
            Err(err) => tracing::error!(file = %id, error = %err, "reading a failed file did not work"),
        }
    }

    /// The stages for one file.
    async fn ingest(&self, id: FileId, lease: &Lease<'_>) -> Result<Outcome> {
        let Some(mut file) = self.stores.files.get_file(id).await? else {
            return Ok(Outcome::Done); // deleted since it was queued
        };
        if file.job.is_some_and(|j| j != lease.job.id) || matches!(file.status, FileStatus::Ready) {
            // Re-processed since (a newer job owns it), or finished by an earlier run.
            return Ok(Outcome::Done);
        }
        if let FileStatus::Failed { .. } = file.status {
            return Ok(Outcome::Done);
        }
        let Some(key) = file.blob_key.clone() else {
            return Ok(Outcome::Failed("the original bytes were not kept; upload the file again".into()));
        };
        lease.hold().await?;
        let mut clock = StageClock::start("scanning");
        self.set_status(&mut file, FileStatus::Scanning).await?;
        let bytes = match self.read_original(&file, &key).await {
            Ok(bytes) => bytes,
            Err(err) if err.is_retryable() => return Ok(Outcome::Retry(err)),
            Err(err) => return Ok(Outcome::Failed(err.public_message())),
        };
        if let Some(scanner) = &self.scanner {
            match scanner.scan(bytes.clone()).await {
                Ok(ScanVerdict::Clean) => {}
                Ok(ScanVerdict::Infected { signature }) => {
                    return self.quarantine(&mut file, &key, &signature).await;
                }
                Err(err) if !err.is_retryable() => {
                    // The scanner answered but refused the file (over its size limit): the
                    // same bytes fail the same way, so the file fails, never unscanned.
                    let reason = format!("the virus scanner refused the file: {}", err.public_message());
                    return Ok(Outcome::Failed(reason));
                }
                Err(err) => {
                    let reason = format!("the virus scanner could not be reached: {}", err.public_message());
                    return Ok(match self.settings.scanner_unavailable {
                        amp_core::config::ScannerUnavailable::Wait => {
                            Outcome::Retry(Error::unavailable(reason))
                        }
                        amp_core::config::ScannerUnavailable::Fail => Outcome::Failed(reason),
                    });
                }
            }
        }

        clock.next("extracting");
        self.set_status(&mut file, FileStatus::Extracting).await?;
        let extraction = self.extractor.extract(&file.media_type, bytes);
        let document = match tokio::time::timeout(self.settings.extraction_timeout, extraction).await {
            Ok(Ok(document)) => document,
            Ok(Err(err)) if matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Internal) => {
                return Ok(Outcome::Retry(err));
            }
            Ok(Err(err)) => return Ok(Outcome::Failed(err.public_message())),
            Err(_) => {
                let limit = self.settings.extraction_timeout.as_secs();
                return Ok(Outcome::Failed(format!("reading the document took longer than {limit} s")));
            }
        };
        if !document.has_text() {
            let mut reason = "the file has no readable text".to_owned();
            if !document.unreadable_pages.is_empty() {
                reason.push_str(" (its pages have no text layer and OCR could not read them)");
            }
            return Ok(Outcome::Failed(reason));
        }
        let total = u32::try_from(document.pages.len()).unwrap_or(u32::MAX);
        let pages = total.saturating_sub(u32::try_from(document.unreadable_pages.len()).unwrap_or(0));
        clock.next("chunking");
        self.set_status(&mut file, FileStatus::Chunking { pages, total }).await?;
        let chunker = self.chunker.clone();
        let (text, chunks) = tokio::task::spawn_blocking(move || chunker.split_document(id, &document))
            .await
            .map_err(|e| Error::internal("chunking a file panicked", e))?;
        if chunks.is_empty() {
            return Ok(Outcome::Failed("the file has no readable text".to_owned()));
        }

        lease.hold().await?;
        // A clean slate: whatever an earlier, interrupted run wrote goes first.
        self.vectors.delete_file(id).await?;
        self.keywords.delete_file(id).await?;
        self.stores.files.delete_chunks(id).await?;
        self.blobs
            .put(&self.processed_key(&file, "text.txt")?, Bytes::from(text), Some("text/plain"))
            .await?;
        clock.next("embedding");
        self.embed(&mut file, &chunks, lease).await?;

        clock.next("indexing");
        self.set_status(&mut file, FileStatus::Indexing).await?;
        lease.hold().await?;
        let visibility = Visibility { owner: file.owner, workspace: file.workspace };
        let entries: Vec<KeywordEntry> = chunks
            .iter()
            .map(|c| KeywordEntry { chunk: c.id, file: id, visibility, text: c.text.clone() })
            .collect();
        if let Err(err) = self.stores.files.insert_chunks(chunks).await {
            // Deleted under us: its vectors must not outlive it.
            self.vectors.delete_file(id).await?;
            return Err(err);
        }
        self.keywords.upsert(entries).await?;
        if self.stores.files.get_file(id).await?.is_none() {
            // Deleted while its passages were indexed: they must not outlive it.
            self.vectors.delete_file(id).await?;
            self.keywords.delete_file(id).await?;
            return Err(Error::conflict(format!("file {id} was deleted while it was processed")));
        }
        lease.hold().await?;
        self.set_status(&mut file, FileStatus::Ready).await?;
        clock.next("ready");
        Ok(Outcome::Done)
    }

    /// The original bytes, refusing objects that grew past the limit (a presigned upload
    /// that lied about its size) or that are not what they claim to be.
    async fn read_original(&self, file: &FileMeta, key: &amp_core::BlobKey) -> Result<Bytes> {
        let Some(meta) = self.blobs.head(key).await? else {
            return Err(Error::invalid_input("the uploaded bytes are missing; upload the file again"));
        };
        self.settings.policy.check_size(meta.size_bytes)?;
        let bytes = self.blobs.get(key).await?;
        sniff::check(&file.name, &file.media_type, &bytes[..bytes.len().min(sniff::HEAD_BYTES)])?;
        Ok(bytes)
    }

    /// Embeds passages in batches, writing their vectors and the progress as it goes.
    async fn embed(&self, file: &mut FileMeta, chunks: &[Chunk], lease: &Lease<'_>) -> Result<()> {
        let total = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        self.set_status(file, FileStatus::Embedding { done: 0, total }).await?;
        let visibility = Visibility { owner: file.owner, workspace: file.workspace };
        let batch = self.embedder.preferred_batch_size().max(1);
        let mut reported = Instant::now();
        let mut done = 0u32;
        for part in chunks.chunks(batch) {
            let texts: Vec<String> = part.iter().map(|c| c.text.clone()).collect();
            let vectors = self.embedder.embed(&texts).await?;
            if vectors.len() != part.len() {
                return Err(Error::bug("the embedder returned a different number of vectors"));
            }
            let entries = part
                .iter()
                .zip(vectors)
                .map(|(chunk, vector)| VectorEntry { chunk: chunk.id, file: file.id, visibility, vector })
                .collect();
            self.vectors.upsert(entries).await?;
            let pieces: u64 = part.iter().map(|c| u64::from(c.token_count)).sum();
            metrics::counter!("amp_ingest_passages_total").increment(part.len() as u64);
            metrics::counter!("amp_ingest_word_pieces_total").increment(pieces);
            done += u32::try_from(part.len()).unwrap_or(u32::MAX);
            if reported.elapsed() >= PROGRESS_EVERY && done < total {
                lease.hold().await?;
                self.set_status(file, FileStatus::Embedding { done, total }).await?;
                reported = Instant::now();
            }
        }
        Ok(())
    }

    /// An infected file: its bytes are deleted at once (never indexed or served), the
    /// record says why, and the audit log has it.
    async fn quarantine(
        &self,
        file: &mut FileMeta,
        key: &amp_core::BlobKey,
        signature: &str,
    ) -> Result<Outcome> {
        self.blobs.delete(key).await?;
        let event = NewAuditEvent {
            actor: Some(file.owner),
            action: AuditAction::Infected,
            target: format!("file:{}", file.id),
            workspace: file.workspace,
            success: false,
            client_addr: None,
            detail: json!({"file": file.id, "name": file.name, "signature": signature}),
        };
        if let Err(err) = self.stores.audit.append(event).await {
            tracing::error!(error = %err, "writing the audit log failed");
        }
        tracing::warn!(file = %file.id, signature, "an upload was infected; its bytes are deleted");
        Ok(Outcome::Failed(format!("the file is infected ({signature}); it was deleted")))
    }

    /// Records a new stage and tells the owner's devices.
    pub(crate) async fn set_status(&self, file: &mut FileMeta, status: FileStatus) -> Result<()> {
        file.status = status;
        file.updated_at = now();
        self.stores.files.update_processing(file).await.map_err(|err| {
            if err.kind() == ErrorKind::NotFound {
                Error::conflict(format!("file {} was deleted while it was processed", file.id))
            } else {
                err
            }
        })?;
        let data = json!({"file": file.id, "status": file.status});
        if let Err(err) = self.session.publish_to(file.owner, None, "file_status", data).await {
            tracing::debug!(error = %err, "could not publish a file's stage");
        }
        Ok(())
    }
}

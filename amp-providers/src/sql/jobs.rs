//! [`JobQueue`] on SQL: a `jobs` table beside the stores, on the same database and pool.
//!
//! Every operation is one statement, so each is atomic on both databases without an
//! explicit transaction. That matters on SQLite: a transaction that reads before it writes
//! can fail at once with `SQLITE_BUSY` when another connection wrote in between, while a
//! single writing statement waits out the pool's busy timeout instead. A claim is one
//! `UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING …`: SQLite runs one writer at a time,
//! and PostgreSQL adds `FOR UPDATE SKIP LOCKED` to the inner select, so concurrent claimers,
//! in one process or many, skip each other's rows instead of claiming one twice.
//!
//! A job whose lease ran out on its last attempt (its worker died, perhaps because the job
//! kills it) is not handed out again: the claim that finds it marks it `Failed` and moves on.
//! A failure's error is kept up to 4 KiB.
//!
//! ```no_run
//! # async fn run() -> amp_core::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use amp_core::{JobQueue, NewJob};
//! use amp_providers::sql::{PoolOptions, SqliteStores};
//! let db = Arc::new(SqliteStores::open("amp-data/amp.db".as_ref(), &PoolOptions::default()).await?);
//! let queue: Arc<dyn JobQueue> = Arc::new(db.job_queue());
//! let kind = "ingest_file";
//! queue.enqueue(NewJob { kind: kind.into(), payload: serde_json::json!({}), max_attempts: 3, owner: None }).await?;
//! if let Some(job) = queue.claim(&[kind], Duration::from_secs(60)).await? {
//!     // … the work, calling `extend` now and then …
//!     queue.complete(job.id, job.attempts).await?;
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use amp_core::{Error, Job, JobId, JobQueue, JobState, NewJob, Result, UserId};
use sqlx::types::Json;
use uuid::Uuid;

use super::{PoolOptions, error, now_ms, rows};

/// What a job failed with when its lease ran out on its last attempt.
const LEASE_EXPIRED_ON_LAST_ATTEMPT: &str =
    "the worker holding it stopped (lease expired) on its last attempt";

/// The longest `last_error` kept, in bytes; longer errors are cut at a character boundary.
const MAX_ERROR_BYTES: usize = 4096;

/// The columns of [`JobRow`], in order.
const COLUMNS: &str = "id, kind, payload, owner_id, state, attempts, max_attempts, last_error, run_after, \
                       lease_expires_at, created_at, updated_at";

type JobRow = (
    Uuid,
    String,
    Json<serde_json::Value>,
    Option<Uuid>,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    Option<i64>,
    i64,
    i64,
);

fn job(row: JobRow) -> Result<Job> {
    let (
        id,
        kind,
        Json(payload),
        owner,
        state,
        attempts,
        max_attempts,
        last_error,
        run_after,
        lease,
        created,
        updated,
    ) = row;
    let count = |v: i64, what: &str| {
        u32::try_from(v).map_err(|_| Error::bug(format!("stored {what} {v} does not fit u32")))
    };
    Ok(Job {
        id: JobId::from_uuid(id),
        kind,
        payload,
        owner: owner.map(UserId::from_uuid),
        state: rows::enum_from_text(&state)?,
        attempts: count(attempts, "attempts")?,
        max_attempts: count(max_attempts, "max_attempts")?,
        last_error,
        run_after: rows::time(run_after)?,
        lease_expires_at: lease.map(rows::time).transpose()?,
        created_at: rows::time(created)?,
        updated_at: rows::time(updated)?,
    })
}

/// The claim statement for `kinds` kinds (bound from `$4` on). `lock` is appended to the
/// inner select: `FOR UPDATE SKIP LOCKED` on PostgreSQL, nothing on SQLite.
///
/// Every `SET` expression reads the row as it was before the update, so one row either
/// becomes the caller's (`running`, one more attempt, a lease) or, when it is a running job
/// whose lease ran out with no attempts left, `failed` with the reason.
fn claim_sql(kinds: usize, lock: &str) -> String {
    format!(
        "UPDATE jobs SET \
             state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'running' END, \
             attempts = CASE WHEN attempts >= max_attempts THEN attempts ELSE attempts + 1 END, \
             last_error = CASE WHEN attempts >= max_attempts THEN $3 ELSE last_error END, \
             lease_expires_at = CASE WHEN attempts >= max_attempts THEN NULL ELSE $2 END, \
             updated_at = $1 \
         WHERE id = (\
             SELECT id FROM jobs \
             WHERE kind IN ({kinds}) \
               AND ((state = 'queued' AND run_after <= $1) OR (state = 'running' AND lease_expires_at <= $1)) \
             ORDER BY seq LIMIT 1{lock}\
         ) RETURNING {COLUMNS}",
        kinds = rows::placeholders(4, kinds),
    )
}

/// `now + d` in stored milliseconds; a duration too long to represent is bad input.
fn after(now: i64, d: Duration, what: &str) -> Result<i64> {
    i64::try_from(d.as_millis())
        .ok()
        .and_then(|ms| now.checked_add(ms))
        .filter(|&at| chrono::DateTime::from_timestamp_millis(at).is_some())
        .ok_or_else(|| Error::invalid_input(format!("{what} of {d:?} is too long")))
}

fn capped(error: &str) -> &str {
    if error.len() <= MAX_ERROR_BYTES {
        return error;
    }
    let mut end = MAX_ERROR_BYTES;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

fn validate(job: &NewJob) -> Result<()> {
    if job.max_attempts == 0 {
        return Err(Error::invalid_input("max_attempts must be at least 1"));
    }
    if job.kind.trim().is_empty() {
        return Err(Error::invalid_input("a job's kind must not be empty"));
    }
    Ok(())
}

/// The error for a write by `attempt` that matched no running job: `NotFound` when there is
/// no such job, else `Conflict` saying where the job is now.
fn not_held_error(id: JobId, attempt: u32, now: Option<(String, i64)>) -> Error {
    match now {
        None => Error::not_found(format!("job {id}")),
        Some((state, attempts)) => Error::conflict(format!(
            "job {id} is no longer held by attempt {attempt}: it is {state} at attempt {attempts}"
        )),
    }
}

/// Implements [`JobQueue`] for a queue type with a `pool`; `$lock` ends the claim's inner
/// select.
macro_rules! impl_job_queue {
    ($queue:ty, $lock:literal) => {
        impl $queue {
            async fn why_not_held(&self, id: JobId, attempt: u32) -> Error {
                let now: std::result::Result<Option<(String, i64)>, _> =
                    sqlx::query_as("SELECT state, attempts FROM jobs WHERE id = $1")
                        .bind(id.as_uuid())
                        .fetch_optional(&self.pool)
                        .await;
                match now {
                    Ok(now) => not_held_error(id, attempt, now),
                    Err(e) => error::internal(e),
                }
            }
        }

        #[async_trait::async_trait]
        impl JobQueue for $queue {
            async fn enqueue(&self, job: NewJob) -> Result<JobId> {
                validate(&job)?;
                let id = JobId::new();
                let now = rows::ms(now_ms());
                sqlx::query(
                    "INSERT INTO jobs (id, kind, payload, owner_id, state, attempts, max_attempts, \
                     last_error, run_after, lease_expires_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'queued', 0, $5, NULL, $6, NULL, $6, $6)",
                )
                .bind(id.as_uuid())
                .bind(&job.kind)
                .bind(Json(&job.payload))
                .bind(job.owner.map(|o| o.as_uuid()))
                .bind(i64::from(job.max_attempts))
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(error::internal)?;
                Ok(id)
            }

            async fn claim(&self, kinds: &[&str], lease: Duration) -> Result<Option<Job>> {
                if kinds.is_empty() {
                    return Ok(None);
                }
                let sql = claim_sql(kinds.len(), $lock);
                // Each round either claims a job or fails one poison job for good, so the
                // loop ends after at most as many rounds as there are poison jobs.
                loop {
                    let now = rows::ms(now_ms());
                    let mut query = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(now)
                        .bind(after(now, lease, "a lease")?)
                        .bind(LEASE_EXPIRED_ON_LAST_ATTEMPT);
                    for kind in kinds {
                        query = query.bind(*kind);
                    }
                    let Some(row) = query.fetch_optional(&self.pool).await.map_err(error::internal)? else {
                        return Ok(None);
                    };
                    let job = job(row)?;
                    if job.state == JobState::Running {
                        return Ok(Some(job));
                    }
                    tracing::warn!(
                        job = %job.id,
                        kind = %job.kind,
                        attempts = job.attempts,
                        "job failed: its worker stopped (lease expired) on its last attempt"
                    );
                }
            }

            async fn complete(&self, id: JobId, attempt: u32) -> Result<()> {
                let done = sqlx::query(
                    "UPDATE jobs SET state = 'succeeded', lease_expires_at = NULL, updated_at = $3 \
                     WHERE id = $1 AND attempts = $2 AND state = 'running'",
                )
                .bind(id.as_uuid())
                .bind(i64::from(attempt))
                .bind(rows::ms(now_ms()))
                .execute(&self.pool)
                .await
                .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(self.why_not_held(id, attempt).await);
                }
                Ok(())
            }

            async fn fail(&self, id: JobId, attempt: u32, error: &str, retry_after: Duration) -> Result<JobState> {
                let now = rows::ms(now_ms());
                let state: Option<(String,)> = sqlx::query_as(
                    "UPDATE jobs SET \
                         state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, \
                         run_after = CASE WHEN attempts >= max_attempts THEN run_after ELSE $4 END, \
                         last_error = $3, lease_expires_at = NULL, updated_at = $5 \
                     WHERE id = $1 AND attempts = $2 AND state = 'running' \
                     RETURNING state",
                )
                .bind(id.as_uuid())
                .bind(i64::from(attempt))
                .bind(capped(error))
                .bind(after(now, retry_after, "a retry back-off")?)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                match state {
                    Some((state,)) => rows::enum_from_text(&state),
                    None => Err(self.why_not_held(id, attempt).await),
                }
            }

            async fn extend(&self, id: JobId, attempt: u32, lease: Duration) -> Result<()> {
                let until = after(rows::ms(now_ms()), lease, "a lease")?;
                let done = sqlx::query(
                    "UPDATE jobs SET lease_expires_at = $3 WHERE id = $1 AND attempts = $2 AND state = 'running'",
                )
                .bind(id.as_uuid())
                .bind(i64::from(attempt))
                .bind(until)
                .execute(&self.pool)
                .await
                .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(self.why_not_held(id, attempt).await);
                }
                Ok(())
            }

            async fn get(&self, id: JobId) -> Result<Option<Job>> {
                let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM jobs WHERE id = $1"
                )))
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                row.map(job).transpose()
            }

            async fn list(&self, kind: &str, owner: Option<UserId>, limit: usize) -> Result<Vec<Job>> {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows: Vec<JobRow> = match owner {
                    Some(owner) => {
                        sqlx::query_as(sqlx::AssertSqlSafe(format!(
                            "SELECT {COLUMNS} FROM jobs WHERE kind = $1 AND owner_id = $2 ORDER BY seq DESC LIMIT $3"
                        )))
                        .bind(kind)
                        .bind(owner.as_uuid())
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await
                    }
                    None => {
                        sqlx::query_as(sqlx::AssertSqlSafe(format!(
                            "SELECT {COLUMNS} FROM jobs WHERE kind = $1 ORDER BY seq DESC LIMIT $2"
                        )))
                        .bind(kind)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await
                    }
                }
                .map_err(error::internal)?;
                rows.into_iter().map(job).collect()
            }
        }
    };
}

/// The job queue on a SQLite database, sharing the pool of the [`SqliteStores`](super::SqliteStores)
/// it came from.
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone)]
pub struct SqliteJobQueue {
    pool: sqlx::SqlitePool,
}

#[cfg(feature = "sqlite")]
impl super::SqliteStores {
    /// The job queue on this database, sharing its connection pool (and so its busy
    /// timeout, which concurrent claims wait out).
    pub fn job_queue(&self) -> SqliteJobQueue {
        SqliteJobQueue { pool: self.pool.clone() }
    }
}

#[cfg(feature = "sqlite")]
impl_job_queue!(SqliteJobQueue, "");

/// The job queue on a PostgreSQL database, sharing the pool of the
/// [`PostgresStores`](super::PostgresStores) it came from. Any number of processes may claim
/// from one database at once.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone)]
pub struct PostgresJobQueue {
    pool: sqlx::PgPool,
}

#[cfg(feature = "postgres")]
impl super::PostgresStores {
    /// The job queue on this database, sharing its connection pool.
    pub fn job_queue(&self) -> PostgresJobQueue {
        PostgresJobQueue { pool: self.pool.clone() }
    }
}

#[cfg(feature = "postgres")]
impl_job_queue!(PostgresJobQueue, " FOR UPDATE SKIP LOCKED");

/// Opens the job queue on the database the configuration names, the one
/// [`open_stores`](super::open_stores) opens: PostgreSQL for a `postgres://` URL, else
/// SQLite at the URL's path (default `amp.db` under the data dir). Migrations run as for
/// the stores. This opens a pool of its own; with a [`SqliteStores`](super::SqliteStores)
/// or [`PostgresStores`](super::PostgresStores) at hand, its `job_queue()` shares theirs.
pub async fn open_job_queue(config: &amp_core::AmpConfig) -> Result<Arc<dyn JobQueue>> {
    let options = PoolOptions::from(&config.database);
    match config.database.url.as_ref().map(|u| u.expose()) {
        #[cfg(feature = "postgres")]
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(super::PostgresStores::connect(url, &options).await?.job_queue()))
        }
        #[cfg(feature = "sqlite")]
        Some(url) if url.starts_with("sqlite://") => {
            let path = std::path::Path::new(url.trim_start_matches("sqlite://"));
            Ok(Arc::new(super::SqliteStores::open(path, &options).await?.job_queue()))
        }
        Some(_) => Err(Error::invalid_input(
            "database.url must start with sqlite:// or postgres:// (and the matching feature must be enabled)",
        )),
        #[cfg(feature = "sqlite")]
        None => Ok(Arc::new(
            super::SqliteStores::open(&config.data_dir.join("amp.db"), &options).await?.job_queue(),
        )),
        #[cfg(not(feature = "sqlite"))]
        None => Err(Error::invalid_input("database.url is required when the sqlite feature is off")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_states_in_the_sql_are_the_stored_names() {
        let names: Vec<String> = [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed]
            .iter()
            .map(|s| rows::enum_text(s).unwrap())
            .collect();
        assert_eq!(names, ["queued", "running", "succeeded", "failed"]);
        let sql = claim_sql(2, "");
        assert!(sql.contains("kind IN ($4, $5)"), "{sql}");
    }

    #[test]
    fn long_errors_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_BYTES);
        let cut = capped(&long);
        assert!(cut.len() <= MAX_ERROR_BYTES && cut.len() >= MAX_ERROR_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(capped("short"), "short");
    }

    #[test]
    fn a_lease_too_long_to_store_is_bad_input() {
        assert_eq!(after(1_000, Duration::from_millis(500), "a lease").unwrap(), 1_500);
        let err = after(1_000, Duration::MAX, "a lease").unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::InvalidInput);
    }
}

//! The one place database errors become [`amp_core::Error`]s.

use amp_core::Error;

/// Maps a database error: a unique violation becomes `Conflict` (`on_conflict` says what
/// already exists), a foreign-key violation `NotFound` (`on_missing` says what the record
/// refers to), an exhausted pool `Unavailable`; everything else is `Internal` with the
/// cause kept for logs.
pub(crate) fn db_error(err: sqlx::Error, on_conflict: &str, on_missing: &str) -> Error {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return Error::conflict(on_conflict.to_owned());
        }
        if db.is_foreign_key_violation() {
            return Error::not_found(on_missing.to_owned());
        }
    }
    match err {
        sqlx::Error::PoolTimedOut => Error::Unavailable {
            message: "the database is busy; try again".into(),
            retry_after: Some(std::time::Duration::from_secs(1)),
        },
        other => Error::internal("database query failed", other),
    }
}

/// [`db_error`] for queries where neither a conflict nor a dangling reference can occur.
pub(crate) fn internal(err: sqlx::Error) -> Error {
    db_error(err, "record already exists", "referenced record")
}

//! Password hashing with Argon2id, off the async runtime, a bounded number at a time.

use std::sync::Arc;
use std::time::Duration;

use amp_core::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// The shortest password accepted.
pub(crate) const MIN_PASSWORD_LEN: usize = 10;

/// How long a hash waits for its turn before the request is refused as busy.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Runs hashes and checks at most `permits` at a time: each takes ~19 MiB and a core for
/// tens of milliseconds, so a flood of sign-ins must queue rather than pin every core.
#[derive(Clone)]
pub(crate) struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    pub(crate) fn new(concurrency: u32) -> Self {
        let permits = usize::try_from(concurrency.max(1)).unwrap_or(1);
        Hasher { permits: Arc::new(Semaphore::new(permits)) }
    }

    /// Hashes a password (PHC string).
    pub(crate) async fn hash(&self, password: String) -> Result<String> {
        let _turn = self.turn().await?;
        hash(password).await
    }

    /// Whether `password` matches the stored hash (see [`verify`]).
    pub(crate) async fn verify(&self, password: String, stored: Option<String>) -> Result<bool> {
        let _turn = self.turn().await?;
        verify(password, stored).await
    }

    async fn turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        match tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Error::bug("the password hashing semaphore was closed")),
            Err(_) => Err(Error::unavailable("too many sign-ins at once; try again shortly")),
        }
    }
}

/// Hashes a password (PHC string). Takes tens of milliseconds of CPU by design, so it runs
/// on the blocking pool.
async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::internal("password hashing failed", e.to_string()))
    })
    .await
    .map_err(|e| Error::internal("password hashing task failed", e))?
}

/// Whether `password` matches the stored hash. With no hash (unknown account, or an account
/// that only signs in through SSO) a dummy hash is checked, so both cases take as long as a
/// real check and do not reveal which accounts exist.
async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY.to_owned());
        let parsed = PasswordHash::new(&phc)
            .map_err(|e| Error::internal("stored password hash is malformed", e.to_string()))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && real)
    })
    .await
    .map_err(|e| Error::internal("password check task failed", e))?
}

/// An Argon2id hash (default parameters) of a random string nobody knows.
const DUMMY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0hR6yC4cS0n7xLkR+2Pq3N5Xb2pG8v5YwCqvO7wqS8M";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(h.clone())).await.unwrap());
        assert!(!verify("wrong horse battery".into(), Some(h)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn no_more_than_the_permitted_hashes_run_at_once() {
        let hasher = Hasher::new(1);
        let held = hasher.turn().await.unwrap();
        assert_eq!(hasher.permits.available_permits(), 0);
        let waiting = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash("correct horse battery".into()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a second hash waits for the first");
        drop(held);
        assert!(waiting.await.unwrap().unwrap().starts_with("$argon2id$"));
    }
}

//! [`BlobStore`](amp_core::BlobStore) backends.
//!
//! - [`LocalBlobStore`]: files in a directory, the embedded default; it signs its own
//!   presigned URLs, which the HTTP server answers.
//! - [`S3BlobStore`] (feature `s3`): Amazon S3 or an S3-compatible store (MinIO, Ceph,
//!   s3s), whose presigned URLs clients use directly.
//!
//! Both take the same prefixes in `list` and `delete_prefix`: whole segments ending in `/`
//! (`users/u1/`), so `a/` never matches `ab/`; `list` also takes `""` for every key.

mod local;
#[cfg(feature = "s3")]
mod s3;
mod signing;

use std::time::Duration;

use amp_core::{BlobKey, Error, Result};

pub use local::LocalBlobStore;
#[cfg(feature = "s3")]
pub use s3::{S3BlobStore, S3Options};

/// The longest a presigned URL may live: S3's limit, kept by the local store too so the two
/// accept the same requests.
const MAX_URL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

fn check_url_lifetime(expires_in: Duration) -> Result<()> {
    if expires_in < Duration::from_secs(1) || expires_in > MAX_URL_LIFETIME {
        return Err(Error::invalid_input("a presigned URL must live between 1 second and 7 days"));
    }
    Ok(())
}

/// A prefix is `""` or whole key segments ending in `/`. Returns it without the `/`.
fn check_prefix(prefix: &str) -> Result<Option<&str>> {
    if prefix.is_empty() {
        return Ok(None);
    }
    let segments = prefix
        .strip_suffix('/')
        .ok_or_else(|| Error::invalid_input(format!("blob prefix {prefix:?} must end with `/`")))?;
    BlobKey::new(segments)
        .map_err(|_| Error::invalid_input(format!("blob prefix {prefix:?} is not made of key segments")))?;
    Ok(Some(segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_whole_segments() {
        assert_eq!(check_prefix("").unwrap(), None);
        assert_eq!(check_prefix("users/u1/").unwrap(), Some("users/u1"));
        for bad in ["users/u1", "/", "a//", "../", "a/../b/"] {
            assert!(check_prefix(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn url_lifetimes_are_bounded() {
        assert!(check_url_lifetime(Duration::from_secs(1)).is_ok());
        assert!(check_url_lifetime(MAX_URL_LIFETIME).is_ok());
        assert!(check_url_lifetime(Duration::from_millis(999)).is_err());
        assert!(check_url_lifetime(MAX_URL_LIFETIME + Duration::from_secs(1)).is_err());
    }
}

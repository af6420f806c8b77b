//! Object storage for uploaded bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A validated object key: relative, `/`-separated, no empty, `.` or `..` segments, at most
/// 1024 bytes, printable characters only. Keys follow the seed's layout
/// (`users/{user}/files/{file}`, `workspaces/{workspace}/files/{file}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobKey(String);

impl BlobKey {
    /// Validates and wraps a key.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let bad = |why: &str| Err(Error::invalid_input(format!("invalid blob key: {why}")));
        if key.is_empty() || key.len() > 1024 {
            return bad("length must be 1 to 1024 bytes");
        }
        if key.chars().any(|c| c.is_control() || c == '\\') {
            return bad("control characters and backslashes are not allowed");
        }
        if key.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            return bad("empty, `.` and `..` segments are not allowed");
        }
        Ok(BlobKey(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BlobKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        BlobKey::new(s)
    }
}

impl From<BlobKey> for String {
    fn from(k: BlobKey) -> String {
        k.0
    }
}

/// An object's bytes as they are read, in pieces, so a large object never sits in memory
/// whole.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// What a store knows about an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    /// Its key.
    pub key: BlobKey,
    /// Size in bytes.
    pub size_bytes: u64,
    /// The media type it was stored with.
    pub media_type: Option<String>,
}

/// Limits a presigned upload enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadConstraints {
    /// The media type the client must send.
    pub media_type: String,
    /// The declared size of the upload, in bytes: the largest body accepted. S3 signs it
    /// as the exact `Content-Length`, so pass the size the client announced.
    pub max_bytes: u64,
}

/// A request a client can make directly against the store, without our credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignedRequest {
    /// `PUT` or `GET`.
    pub method: String,
    /// The full URL, signature included.
    pub url: String,
    /// Headers the client must send exactly.
    pub headers: BTreeMap<String, String>,
    /// When the URL stops working.
    pub expires_at: DateTime<Utc>,
}

/// Object storage.
///
/// Promises, checked by the conformance kit: `get` (and `get_stream`) return exactly what
/// `put` (or `put_file`) stored; a write on an existing key replaces it, and a reader never
/// sees half an object; `get` of a missing key is `NotFound`; `delete` is idempotent;
/// `delete_prefix` removes exactly the keys under a prefix; `list` returns exactly the keys
/// under a prefix, sorted; presigned URLs expire when they say.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores bytes under a key.
    async fn put(&self, key: &BlobKey, bytes: Bytes, media_type: Option<&str>) -> Result<()>;

    /// Stores the contents of a local file under a key, streaming it: memory stays bounded
    /// whatever the file's size. The file is left in place.
    async fn put_file(&self, key: &BlobKey, path: &Path, media_type: Option<&str>) -> Result<()>;

    /// Reads an object.
    async fn get(&self, key: &BlobKey) -> Result<Bytes>;

    /// Reads an object as a stream of pieces; a missing key is `NotFound` before the first
    /// piece.
    async fn get_stream(&self, key: &BlobKey) -> Result<ByteStream>;

    /// An object's metadata, or `None` if it does not exist.
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>>;

    /// Removes an object; removing a missing key succeeds.
    async fn delete(&self, key: &BlobKey) -> Result<()>;

    /// Removes every object under a prefix (a whole-segment prefix ending in `/`, such as
    /// `users/{id}/processed/{file}/`); returns how many were removed.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;

    /// Keys under a prefix (`""` for every key, or whole segments ending in `/` such as
    /// `users/{id}/`), sorted. A key is never also a prefix of another key (a file system
    /// cannot hold both `a/b` and `a/b/c`); AMP's key layout never asks for it.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobKey>>;

    /// A URL the client can upload one object to, directly. The store itself refuses an
    /// upload after the expiry, one over `constraints.max_bytes`, and one whose
    /// `Content-Type` is not `constraints.media_type`.
    async fn presign_upload(
        &self,
        key: &BlobKey,
        constraints: &UploadConstraints,
        expires_in: Duration,
    ) -> Result<PresignedRequest>;

    /// A URL the client can download one object from, directly.
    async fn presign_download(&self, key: &BlobKey, expires_in: Duration) -> Result<PresignedRequest>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_escape_or_are_malformed_are_rejected() {
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a/", "a\\b", "a\nb"] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(BlobKey::new("users/u1/files/f1").unwrap().as_str(), "users/u1/files/f1");
    }
}

//! Receiving an upload's bytes: streamed to a temporary file, hashed on the way, cut off
//! the moment it passes the size limit, so memory stays bounded whatever is sent.

use std::path::{Path, PathBuf};

use amp_core::{ByteStream, Error, Result};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::sniff::HEAD_BYTES;

/// An upload's bytes on local disk, removed when dropped.
#[derive(Debug)]
pub(crate) struct Spooled {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// The first bytes, for sniffing.
    pub head: Vec<u8>,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        // Best effort: a leftover is removed by the next start's clean-up anyway.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes spool files a stopped process left behind.
pub(crate) fn clean(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `body` to a new file in `dir`, refusing it as soon as it passes `max_bytes`.
pub(crate) async fn receive(dir: &Path, mut body: ByteStream, max_bytes: u64) -> Result<Spooled> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Error::internal(format!("creating the upload spool {}", dir.display()), e))?;
    let path = dir.join(format!("{}.upload", uuid::Uuid::new_v4().simple()));
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| Error::internal(format!("creating a spool file in {}", dir.display()), e))?;
    // From here on, dropping `spooled` removes the file, whichever way this ends.
    let mut spooled = Spooled { path, size: 0, sha256: String::new(), head: Vec::new() };
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut hasher = Sha256::new();
    while let Some(piece) = body.next().await {
        let piece = piece?;
        spooled.size += piece.len() as u64;
        if spooled.size > max_bytes {
            return Err(Error::PayloadTooLarge { limit: max_bytes, actual: spooled.size });
        }
        if spooled.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - spooled.head.len()).min(piece.len());
            spooled.head.extend_from_slice(&piece[..take]);
        }
        hasher.update(&piece);
        out.write_all(&piece).await.map_err(|e| Error::internal("writing an upload to the spool", e))?;
    }
    out.flush().await.map_err(|e| Error::internal("writing an upload to the spool", e))?;
    spooled.sha256 = hex(&hasher.finalize());
    Ok(spooled)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use amp_core::ErrorKind;
    use bytes::Bytes;

    use super::*;

    fn body(pieces: Vec<&'static [u8]>) -> ByteStream {
        futures::stream::iter(pieces.into_iter().map(|p| Ok(Bytes::from_static(p)))).boxed()
    }

    #[tokio::test]
    async fn bytes_are_hashed_and_kept_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let spooled = receive(dir.path(), body(vec![b"hello ", b"world"]), 100).await.unwrap();
        assert_eq!(spooled.size, 11);
        assert_eq!(spooled.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(spooled.head, b"hello world");
        let path = spooled.path.clone();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        drop(spooled);
        assert!(!path.exists(), "the spool file goes with its handle");
    }

    #[tokio::test]
    async fn an_oversized_body_is_cut_off_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let err = receive(dir.path(), body(vec![b"12345", b"67890", b"x"]), 8).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PayloadTooLarge);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no spool file is left");
    }
}

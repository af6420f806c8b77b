//! The [`BlobStore`] kit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;

use super::{Open, unique};
use crate::error::ErrorKind;
use crate::traits::blob_store::{BlobKey, BlobStore, UploadConstraints};

fn key(s: &str) -> BlobKey {
    BlobKey::new(s).expect("kit keys are valid")
}

/// A file in the system's temp dir, removed when dropped (also when a check fails).
struct TempFile(PathBuf);

impl TempFile {
    fn with(bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(unique("blob-upload"));
        std::fs::write(&path, bytes).expect("[blob_store] the kit must be able to write a temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Every piece of an object's stream, concatenated.
async fn read_stream(store: &dyn BlobStore, key: &BlobKey) -> Vec<u8> {
    let mut stream =
        store.get_stream(key).await.expect("[blob_store] get_stream of a stored key must succeed");
    let mut all = Vec::new();
    while let Some(piece) = stream.next().await {
        all.extend_from_slice(&piece.expect("[blob_store] a stream piece must not fail"));
    }
    all
}

/// Checks every promise of [`BlobStore`].
pub async fn run(store: Arc<dyn BlobStore>) {
    let root = unique("blobs");
    let k = |s: &str| key(&format!("{root}/{s}"));

    let big: Bytes = (0..1_048_576u32).map(|i| (i % 251) as u8).collect::<Vec<_>>().into();
    store.put(&k("a/big.bin"), big.clone(), Some("application/octet-stream")).await.unwrap();
    assert_eq!(
        store.get(&k("a/big.bin")).await.unwrap(),
        big,
        "[blob_store] get must return exactly what put stored"
    );
    let meta =
        store.head(&k("a/big.bin")).await.unwrap().expect("[blob_store] head of a stored key must be Some");
    assert_eq!(meta.size_bytes, big.len() as u64, "[blob_store] head must report the size");
    assert_eq!(meta.key, k("a/big.bin"));

    assert_eq!(
        read_stream(&*store, &k("a/big.bin")).await,
        big,
        "[blob_store] get_stream's pieces must concatenate to the object"
    );

    store.put(&k("a/doc.txt"), Bytes::from_static(b"first"), Some("text/html")).await.unwrap();
    store.put(&k("a/doc.txt"), Bytes::from_static(b"second"), Some("text/plain")).await.unwrap();
    assert_eq!(
        store.get(&k("a/doc.txt")).await.unwrap().as_ref(),
        b"second",
        "[blob_store] put must replace"
    );
    assert_eq!(
        store.head(&k("a/doc.txt")).await.unwrap().and_then(|m| m.media_type).as_deref(),
        Some("text/plain"),
        "[blob_store] head must report the media type of the last write"
    );
    store.put(&k("a/empty"), Bytes::new(), None).await.unwrap();
    assert!(store.get(&k("a/empty")).await.unwrap().is_empty(), "[blob_store] an empty object is an object");

    let err = store.get(&k("missing")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[blob_store] get of a missing key must be NotFound");
    let err = store
        .get_stream(&k("missing"))
        .await
        .err()
        .expect("[blob_store] get_stream of a missing key must fail");
    assert_eq!(err.kind(), ErrorKind::NotFound, "[blob_store] get_stream of a missing key must be NotFound");
    assert_eq!(
        store.head(&k("missing")).await.unwrap(),
        None,
        "[blob_store] head of a missing key must be None"
    );

    store.put(&k("ab/other"), Bytes::from_static(b"x"), None).await.unwrap();
    let listed = store.list(&format!("{root}/a/")).await.unwrap();
    assert_eq!(
        listed,
        vec![k("a/big.bin"), k("a/doc.txt"), k("a/empty")],
        "[blob_store] list must return exactly the keys under the prefix, sorted"
    );

    store.delete(&k("a/doc.txt")).await.unwrap();
    assert_eq!(
        store.head(&k("a/doc.txt")).await.unwrap(),
        None,
        "[blob_store] a deleted object must be gone"
    );
    store.delete(&k("a/doc.txt")).await.expect("[blob_store] deleting a missing key must succeed");

    let now = Utc::now();
    let up = store
        .presign_upload(
            &k("a/upload.pdf"),
            &UploadConstraints { media_type: "application/pdf".into(), max_bytes: 1 << 20 },
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    assert_eq!(up.method, "PUT", "[blob_store] a presigned upload is a PUT");
    assert!(up.url.starts_with("http"), "[blob_store] a presigned URL must be absolute");
    let lifetime = (up.expires_at - now).num_seconds();
    assert!(
        (295..=305).contains(&lifetime),
        "[blob_store] a presigned URL must expire when asked, got {lifetime}s"
    );
    let down = store.presign_download(&k("a/big.bin"), Duration::from_secs(60)).await.unwrap();
    assert_eq!(down.method, "GET", "[blob_store] a presigned download is a GET");
    assert_ne!(down.url, up.url);

    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let (store, key) = (store.clone(), k(&format!("par/{i}")));
        tasks.push(tokio::spawn(async move {
            store.put(&key, Bytes::from(vec![i; 10_000]), None).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for i in 0..8u8 {
        let v = store.get(&k(&format!("par/{i}"))).await.unwrap();
        assert_eq!(v, Bytes::from(vec![i; 10_000]), "[blob_store] concurrent puts must all land intact");
    }

    put_file(&*store, &k).await;
    delete_prefix(&*store, &root, &k).await;
}

/// `put_file` streams a file of several MiB in, byte for byte, and leaves it in place.
async fn put_file(store: &dyn BlobStore, k: &impl Fn(&str) -> BlobKey) {
    // Not a multiple of any likely piece size, so the last piece is a short one.
    let contents: Vec<u8> =
        (0..3 * 1_048_576 + 12_345u32).map(|i| (i.wrapping_mul(31) % 253) as u8).collect();
    let file = TempFile::with(&contents);
    store.put(&k("file/upload.bin"), Bytes::from_static(b"old"), None).await.unwrap();
    store.put_file(&k("file/upload.bin"), &file.0, Some("application/octet-stream")).await.unwrap();
    assert!(
        store.get(&k("file/upload.bin")).await.unwrap() == contents,
        "[blob_store] put_file must store the file byte for byte, replacing what was there"
    );
    assert!(
        read_stream(store, &k("file/upload.bin")).await == contents,
        "[blob_store] get_stream of a put_file object must return the file byte for byte"
    );
    let meta = store.head(&k("file/upload.bin")).await.unwrap().expect("[blob_store] put_file must store");
    assert_eq!(meta.size_bytes, contents.len() as u64, "[blob_store] head must report put_file's size");
    assert!(file.0.exists(), "[blob_store] put_file must leave the file in place");
}

/// `delete_prefix` removes exactly the keys under a prefix: not `ab/…` beside `a/…`.
async fn delete_prefix(store: &dyn BlobStore, root: &str, k: &impl Fn(&str) -> BlobKey) {
    for name in ["d/x", "d/y/z", "d/y/deeper/w", "dd/keep", "d-keep"] {
        store.put(&k(name), Bytes::from_static(b"x"), None).await.unwrap();
    }
    let removed = store.delete_prefix(&format!("{root}/d/")).await.unwrap();
    assert_eq!(removed, 3, "[blob_store] delete_prefix must report how many objects it removed");
    assert_eq!(
        store.list(&format!("{root}/d/")).await.unwrap(),
        Vec::<BlobKey>::new(),
        "[blob_store] delete_prefix must remove every key under the prefix"
    );
    for gone in ["d/x", "d/y/z", "d/y/deeper/w"] {
        assert_eq!(
            store.head(&k(gone)).await.unwrap(),
            None,
            "[blob_store] delete_prefix must remove {gone}"
        );
    }
    for kept in ["dd/keep", "d-keep", "a/big.bin"] {
        assert!(
            store.get(&k(kept)).await.is_ok(),
            "[blob_store] delete_prefix must not touch {kept}, which only shares characters with the prefix"
        );
    }
    assert_eq!(
        store.delete_prefix(&format!("{root}/d/")).await.unwrap(),
        0,
        "[blob_store] delete_prefix of an empty prefix must remove nothing"
    );
    store.put(&k("d/x"), Bytes::from_static(b"again"), None).await.unwrap();
    assert_eq!(
        store.get(&k("d/x")).await.unwrap().as_ref(),
        b"again",
        "[blob_store] a key under a removed prefix must be writable again"
    );
}

/// Checks that objects survive closing and reopening the store.
pub async fn persists(open: Open<dyn BlobStore>) {
    let k = key(&format!("{}/durable", unique("blobs")));
    let store = open().await;
    store.put(&k, Bytes::from_static(b"still here"), None).await.unwrap();
    drop(store);
    assert_eq!(
        open().await.get(&k).await.unwrap().as_ref(),
        b"still here",
        "[blob_store] objects must survive a reopen"
    );
}

//! The [`BlobStore`] kit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;

use super::{Open, unique};
use crate::error::ErrorKind;
use crate::traits::blob_store::{BlobKey, BlobStore, UploadConstraints};

fn key(s: &str) -> BlobKey {
    BlobKey::new(s).expect("kit keys are valid")
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

    store.put(&k("a/doc.txt"), Bytes::from_static(b"first"), Some("text/plain")).await.unwrap();
    store.put(&k("a/doc.txt"), Bytes::from_static(b"second"), Some("text/plain")).await.unwrap();
    assert_eq!(
        store.get(&k("a/doc.txt")).await.unwrap().as_ref(),
        b"second",
        "[blob_store] put must replace"
    );
    store.put(&k("a/empty"), Bytes::new(), None).await.unwrap();
    assert!(store.get(&k("a/empty")).await.unwrap().is_empty(), "[blob_store] an empty object is an object");

    let err = store.get(&k("missing")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[blob_store] get of a missing key must be NotFound");
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

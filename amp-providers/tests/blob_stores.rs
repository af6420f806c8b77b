//! The two [`BlobStore`] backends: the conformance kit, durability across a reopen, and
//! presigned URLs used over real HTTP.
//!
//! [`LocalBlobStore`] runs in a temp dir behind a small loopback HTTP front that answers
//! `PUT`/`GET /blobs/{key}` the way amp-server does. [`S3BlobStore`] runs against a real
//! s3s-fs server (which checks signatures, expiries and signed headers) named by
//! `AMP_TEST_S3_ENDPOINT`, `AMP_TEST_S3_ACCESS_KEY`, `AMP_TEST_S3_SECRET_KEY` and
//! `AMP_TEST_S3_BUCKET` (an existing bucket); `scripts/services.sh` starts one and exports
//! them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use amp_core::testkit::{blob_store as kit, unique};
use amp_core::{BlobKey, BlobStore, Error, ErrorKind, PresignedRequest, Secret, UploadConstraints};
use amp_providers::blob::{LocalBlobStore, S3BlobStore, S3Options};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SIGNING_KEY: &[u8] = b"blob-stores-test-signing-key-0123456789";

fn key(s: &str) -> BlobKey {
    BlobKey::new(s).unwrap()
}

fn pdf(max_bytes: u64) -> UploadConstraints {
    UploadConstraints { media_type: "application/pdf".into(), max_bytes }
}

/// Waits until a presigned URL has certainly expired on a clock with whole seconds.
async fn sleep_past(request: &PresignedRequest) {
    let left = (request.expires_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(1100)).await;
}

/// Sends a presigned request with every header it lists, except those named in `skip`, and
/// any in `extra` (which replace listed ones).
async fn send(
    request: &PresignedRequest,
    skip: &[&str],
    extra: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        if !skip.contains(&name.as_str()) && !extra.iter().any(|(n, _)| n == name) {
            builder = builder.header(name, value);
        }
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    if request.method == "PUT" {
        builder = builder.body(body);
    }
    builder.send().await.expect("the store must answer")
}

// ---------------------------------------------------------------------------------------
// LocalBlobStore

async fn open_local(dir: &Path, base_url: &str) -> LocalBlobStore {
    LocalBlobStore::open(dir.to_owned(), SIGNING_KEY.to_vec(), base_url.to_owned()).await.unwrap()
}

#[tokio::test]
async fn local_blob_store_keeps_the_blob_store_promises() {
    let dir = tempfile::tempdir().unwrap();
    kit::run(Arc::new(open_local(dir.path(), "http://127.0.0.1:9").await)).await;
}

#[tokio::test]
async fn local_blob_store_keeps_objects_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().to_owned();
    kit::persists(Box::new(move || {
        let root = root.clone();
        Box::pin(async move { Arc::new(open_local(&root, "http://127.0.0.1:9").await) as Arc<dyn BlobStore> })
    }))
    .await;
}

/// A loopback HTTP/1.1 front answering `/blobs/{key}` with the store's verify and
/// receive/stream methods, one request per connection, errors as their HTTP status.
struct LocalFront {
    url: String,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for LocalFront {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl LocalFront {
    /// A store under `dir` whose URLs point at a front that serves it.
    async fn start(dir: &Path) -> (LocalFront, LocalBlobStore) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let store = open_local(dir, &url).await;
        let served = store.clone();
        let accept = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, served.clone()));
            }
        });
        (LocalFront { url, accept }, store)
    }
}

async fn serve(mut conn: TcpStream, store: LocalBlobStore) {
    let mut buf = BytesMut::new();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if conn.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    };
    let head = String::from_utf8(buf.split_to(head_end + 4).to_vec()).unwrap();
    let mut request_line = head.lines().next().unwrap().split(' ');
    let (method, target) = (request_line.next().unwrap().to_owned(), request_line.next().unwrap().to_owned());
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let (content_type, length) = (header("content-type"), header("content-length"));
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let blob = percent_decode(path.strip_prefix("/blobs/").unwrap_or_default());

    let answer = match method.as_str() {
        "PUT" => {
            // The whole body is read first, so even a refusal leaves no unread bytes behind
            // (closing on those would reset the connection before the client reads the
            // status); receive's own streaming is checked by the store's unit tests.
            let length = length.and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
            while buf.len() < length {
                if conn.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
            }
            let body = buf.split_to(length).freeze();
            let pieces: Vec<Result<Bytes, std::io::Error>> =
                body.chunks(16 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            match store.verify_upload(&blob, query) {
                Ok((key, constraints)) => store
                    .receive(&key, &constraints, content_type.as_deref(), futures::stream::iter(pieces))
                    .await
                    .map(|meta| serde_json::to_vec(&meta).unwrap()),
                Err(e) => Err(e),
            }
        }
        "GET" => match store.verify_download(&blob, query) {
            Ok(key) => read_all(&store, &key).await,
            Err(e) => Err(e),
        },
        _ => Err(Error::invalid_input("method not allowed")),
    };
    match answer {
        Ok(body) => respond(&mut conn, 200, &body).await,
        Err(e) => respond(&mut conn, e.kind().http_status(), e.to_string().as_bytes()).await,
    }
}

async fn read_all(store: &LocalBlobStore, key: &BlobKey) -> Result<Vec<u8>, Error> {
    let mut stream = store.get_stream(key).await?;
    let mut body = Vec::new();
    while let Some(piece) = stream.next().await {
        body.extend_from_slice(&piece?);
    }
    Ok(body)
}
async fn respond(conn: &mut TcpStream, status: u16, body: &[u8]) {
    let head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    let _ = conn.write_all(head.as_bytes()).await;
    let _ = conn.write_all(body).await;
    let _ = conn.shutdown().await;
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn local_presigned_upload_and_download_work_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (front, store) = LocalFront::start(dir.path()).await;
    let blob = key("users/u1/files/report (final)+v2.pdf");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let up = store.presign_upload(&blob, &pdf(300_000), Duration::from_secs(60)).await.unwrap();
    assert!(up.url.starts_with(&front.url), "{}", up.url);
    let answer = send(&up, &[], &[], body.clone()).await;
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    assert_eq!(store.get(&blob).await.unwrap(), body);
    assert_eq!(store.head(&blob).await.unwrap().unwrap().media_type.as_deref(), Some("application/pdf"));

    let down = store.presign_download(&blob, Duration::from_secs(60)).await.unwrap();
    let answer = send(&down, &[], &[], Vec::new()).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.bytes().await.unwrap(), body);

    // Refusals travel as their statuses.
    let flipped = if up.url.ends_with('0') { '1' } else { '0' };
    let tampered =
        PresignedRequest { url: format!("{}{flipped}", &up.url[..up.url.len() - 1]), ..up.clone() };
    assert_eq!(send(&tampered, &[], &[], body.clone()).await.status(), 403);
    assert_eq!(send(&up, &[], &[("content-type", "text/html")], body.clone()).await.status(), 415);
}

#[tokio::test]
async fn local_presigned_uploads_refuse_expired_oversized_retyped_and_tampered_requests() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_local(dir.path(), "http://127.0.0.1:9").await;
    let blob = key(&format!("{}/upload.pdf", unique("blobs")));
    let query = |req: &PresignedRequest| req.url.split_once('?').unwrap().1.to_owned();
    let body = |n: usize| futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(vec![b'%'; n]))]);

    let up = store.presign_upload(&blob, &pdf(100), Duration::from_secs(60)).await.unwrap();
    let (verified, constraints) = store.verify_upload(blob.as_str(), &query(&up)).unwrap();
    assert_eq!((&verified, &constraints), (&blob, &pdf(100)));

    let err = store.receive(&verified, &constraints, Some("application/pdf"), body(101)).await.unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { limit: 100, .. }), "{err:?}");
    let err = store.receive(&verified, &constraints, Some("image/png"), body(10)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
    assert!(err.to_string().contains("image/png") && err.to_string().contains("application/pdf"), "{err}");

    let sig = query(&up).rsplit_once("sig=").unwrap().1.to_owned();
    let flipped = format!("{}{}", &sig[..sig.len() - 1], if sig.ends_with('a') { 'b' } else { 'a' });
    let err = store.verify_upload(blob.as_str(), &query(&up).replace(&sig, &flipped)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert!(!err.to_string().contains(&sig) && !err.to_string().contains(&flipped));
    let err = store.verify_upload(blob.as_str(), &query(&up).replace("max=100", "max=1000000")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "a raised limit must not verify");
    assert_eq!(store.head(&blob).await.unwrap(), None, "no refused upload may store anything");

    let short = store.presign_upload(&blob, &pdf(100), Duration::from_secs(1)).await.unwrap();
    assert!(store.verify_upload(blob.as_str(), &query(&short)).is_ok());
    sleep_past(&short).await;
    let err = store.verify_upload(blob.as_str(), &query(&short)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "no temp file may remain");
}

#[tokio::test]
async fn local_presigned_downloads_work_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (_front, store) = LocalFront::start(dir.path()).await;
    let blob = key(&format!("{}/doc.txt", unique("blobs")));
    store.put(&blob, Bytes::from_static(b"hello"), Some("text/plain")).await.unwrap();
    let down = store.presign_download(&blob, Duration::from_secs(1)).await.unwrap();
    let answer = send(&down, &[], &[], Vec::new()).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.bytes().await.unwrap().as_ref(), b"hello");
    sleep_past(&down).await;
    assert_eq!(send(&down, &[], &[], Vec::new()).await.status(), 403, "an expired download must be refused");
}

// ---------------------------------------------------------------------------------------
// S3BlobStore on s3s-fs

fn s3_options() -> S3Options {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: the S3 tests need an S3-compatible server (scripts/services.sh starts \
                 s3s-fs and exports AMP_TEST_S3_ENDPOINT, AMP_TEST_S3_ACCESS_KEY, AMP_TEST_S3_SECRET_KEY \
                 and AMP_TEST_S3_BUCKET)"
            )
        })
    };
    S3Options {
        endpoint: Some(var("AMP_TEST_S3_ENDPOINT")),
        force_path_style: true,
        access_key: Some(Secret::new(var("AMP_TEST_S3_ACCESS_KEY"))),
        secret_key: Some(Secret::new(var("AMP_TEST_S3_SECRET_KEY"))),
        ..S3Options::new(var("AMP_TEST_S3_BUCKET"))
    }
}

fn s3_store() -> S3BlobStore {
    S3BlobStore::new(s3_options()).unwrap()
}

#[tokio::test]
async fn s3_blob_store_keeps_the_blob_store_promises() {
    kit::run(Arc::new(s3_store())).await;
}

#[tokio::test]
async fn s3_blob_store_with_a_key_prefix_keeps_the_blob_store_promises() {
    let prefix = format!("{}/", unique("s3-prefix"));
    let store = S3BlobStore::new(S3Options { prefix: Some(prefix.clone()), ..s3_options() }).unwrap();
    kit::run(Arc::new(store)).await;
    // Everything it wrote sits under the prefix, and its keys come back without it.
    let plain = s3_store();
    let under = plain.list(&prefix).await.unwrap();
    assert!(!under.is_empty() && under.iter().all(|k| k.as_str().starts_with(&prefix)));
    assert_eq!(plain.delete_prefix(&prefix).await.unwrap(), under.len() as u64);
}

#[tokio::test]
async fn s3_blob_store_keeps_objects_across_a_reopen() {
    kit::persists(Box::new(|| Box::pin(async { Arc::new(s3_store()) as Arc<dyn BlobStore> }))).await;
}

#[tokio::test]
async fn s3_presigned_upload_works_over_http() {
    let store = s3_store();
    let blob = key(&format!("{}/report (final)+v2.pdf", unique("blobs")));
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let up = store.presign_upload(&blob, &pdf(body.len() as u64), Duration::from_secs(60)).await.unwrap();
    assert_eq!(up.method, "PUT");
    assert_eq!(up.headers.get("content-type").map(String::as_str), Some("application/pdf"));
    assert_eq!(up.headers.get("content-length"), Some(&body.len().to_string()));
    let answer = send(&up, &[], &[], body.clone()).await;
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    assert_eq!(store.get(&blob).await.unwrap(), body);
    let meta = store.head(&blob).await.unwrap().unwrap();
    assert_eq!((meta.size_bytes, meta.media_type.as_deref()), (body.len() as u64, Some("application/pdf")));
}

#[tokio::test]
async fn s3_presigned_uploads_refuse_expired_oversized_retyped_and_tampered_requests() {
    let store = s3_store();
    let blob = key(&format!("{}/upload.pdf", unique("blobs")));
    let up = store.presign_upload(&blob, &pdf(1000), Duration::from_secs(60)).await.unwrap();

    // The client's own, true Content-Length for 1001 bytes, not the signed 1000.
    let answer = send(&up, &["content-length"], &[], vec![7; 1001]).await;
    assert_eq!(answer.status(), 403, "an oversized body must be refused: {:?}", answer.text().await);
    let answer = send(&up, &[], &[("content-type", "text/html")], vec![7; 1000]).await;
    assert_eq!(answer.status(), 403, "another media type must be refused: {:?}", answer.text().await);
    let (base, sig) = up.url.split_once("X-Amz-Signature=").unwrap();
    let (sig, rest) = sig.split_once('&').unwrap_or((sig, ""));
    let flipped = format!("{}{}", &sig[..sig.len() - 1], if sig.ends_with('a') { 'b' } else { 'a' });
    let sep = if rest.is_empty() { "" } else { "&" };
    let tampered =
        PresignedRequest { url: format!("{base}X-Amz-Signature={flipped}{sep}{rest}"), ..up.clone() };
    let answer = send(&tampered, &[], &[], vec![7; 1000]).await;
    assert_eq!(answer.status(), 403, "a tampered signature must be refused: {:?}", answer.text().await);
    assert_eq!(store.head(&blob).await.unwrap(), None, "no refused upload may store anything");

    let short = store.presign_upload(&blob, &pdf(10), Duration::from_secs(1)).await.unwrap();
    sleep_past(&short).await;
    let answer = send(&short, &[], &[], vec![7; 10]).await;
    assert_eq!(answer.status(), 403, "an expired URL must be refused: {:?}", answer.text().await);
    assert_eq!(store.head(&blob).await.unwrap(), None, "no refused upload may store anything");

    // The same URL, used as signed, works: the refusals above were the store's checks.
    let answer = send(&up, &[], &[], vec![7; 1000]).await;
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    assert_eq!(store.head(&blob).await.unwrap().map(|m| m.size_bytes), Some(1000));
}

#[tokio::test]
async fn s3_presigned_downloads_work_until_they_expire() {
    let store = s3_store();
    let blob = key(&format!("{}/doc.txt", unique("blobs")));
    store.put(&blob, Bytes::from_static(b"hello"), Some("text/plain")).await.unwrap();
    let down = store.presign_download(&blob, Duration::from_secs(1)).await.unwrap();
    let answer = send(&down, &[], &[], Vec::new()).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.bytes().await.unwrap().as_ref(), b"hello");
    sleep_past(&down).await;
    assert_eq!(send(&down, &[], &[], Vec::new()).await.status(), 403, "an expired download must be refused");
}

#[tokio::test]
async fn s3_errors_never_show_the_secret_key() {
    let options = s3_options();
    let secret = options.secret_key.clone().unwrap();
    let wrong =
        S3BlobStore::new(S3Options { secret_key: Some(Secret::new("wrong-secret-xyz")), ..options }).unwrap();
    let err = wrong.get(&key("any/key")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Upstream, "{err}");
    for shown in [err.to_string(), format!("{err:?}"), format!("{wrong:?}")] {
        assert!(!shown.contains(secret.expose()) && !shown.contains("wrong-secret-xyz"), "{shown}");
    }
    let err = s3_store().get(&key(&format!("{}/missing", unique("blobs")))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

//! [`LocalBlobStore`]: objects as files in a directory, with upload and download URLs the
//! store signs itself.

use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use amp_core::traits::blob_store::ByteStream;
use amp_core::{BlobKey, BlobMeta, BlobStore, Error, PresignedRequest, Result, UploadConstraints};

use super::signing::UrlSigner;
use super::{check_prefix, check_url_lifetime};

/// The size of the pieces [`BlobStore::get_stream`] reads and [`LocalBlobStore::receive`]
/// writes.
const PIECE_BYTES: usize = 64 * 1024;

/// Writers to one key are serialized on one of this many locks, so an object and its
/// media type always come from the same write.
const KEY_LOCKS: usize = 64;

/// The embedded [`BlobStore`]: each object is a file under a root directory, and the store
/// signs its own upload and download URLs, so the presigned-upload flow works without S3.
///
/// Layout under the root: `objects/{key}` holds the bytes (key `a/b/c` is
/// `objects/a/b/c`), `meta/{key}` a JSON sidecar with the media type, and `tmp/` writes in
/// progress. Every write goes to a file in `tmp/`, is synced, and is renamed into place, so
/// a reader never sees half an object and a crash leaves no partial object under a key;
/// [`LocalBlobStore::open`] removes what a crash left in `tmp/`, so one root belongs to one
/// process at a time.
///
/// Unlike S3, a file system cannot hold both an object `a/b` and an object `a/b/c`; the
/// second write is a `Conflict`. The seed's key layout never does this.
///
/// Presigned URLs are `{base_url}/blobs/{key}?expires=…&sig=…`; the HTTP server answers
/// them with [`LocalBlobStore::verify_upload`] and [`LocalBlobStore::receive`] for `PUT`, and
/// [`LocalBlobStore::verify_download`] and [`BlobStore::get_stream`] for `GET`.
///
/// ```no_run
/// # async fn demo() -> amp_core::Result<()> {
/// use amp_core::{BlobKey, BlobStore};
/// use amp_providers::blob::LocalBlobStore;
///
/// let store = LocalBlobStore::open("/var/lib/amp/blobs".into(), vec![0x5a; 32], "https://amp.example".into()).await?;
/// store.put(&BlobKey::new("users/u1/files/f1")?, "hello".into(), Some("text/plain")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LocalBlobStore {
    dirs: Arc<Dirs>,
    signer: UrlSigner,
}

struct Dirs {
    root: PathBuf,
    objects: PathBuf,
    meta: PathBuf,
    tmp: PathBuf,
    locks: [Mutex<()>; KEY_LOCKS],
    lock_hasher: RandomState,
}

impl fmt::Debug for LocalBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signing key stays out, whatever else is added here.
        f.debug_struct("LocalBlobStore")
            .field("root", &self.dirs.root)
            .field("base_url", &self.signer.base_url())
            .finish_non_exhaustive()
    }
}

/// The sidecar beside each object.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    media_type: Option<String>,
}

impl LocalBlobStore {
    /// Opens (creating if need be) the store under `root`, removing writes a crash left
    /// unfinished. `signing_key` (at least 32 bytes) signs the presigned URLs, which point
    /// at `base_url` (`https://host[:port]`, where the server answers `/blobs/…`).
    pub async fn open(root: PathBuf, signing_key: Vec<u8>, base_url: String) -> Result<Self> {
        let signer = UrlSigner::new(&signing_key, &base_url)?;
        let dirs = Dirs {
            objects: root.join("objects"),
            meta: root.join("meta"),
            tmp: root.join("tmp"),
            root,
            locks: std::array::from_fn(|_| Mutex::new(())),
            lock_hasher: RandomState::new(),
        };
        let dirs = blocking(move || {
            for dir in [&dirs.objects, &dirs.meta, &dirs.tmp] {
                std::fs::create_dir_all(dir).map_err(|e| cannot("create", dir, e))?;
            }
            remove_stale_temp_files(&dirs.tmp)?;
            Ok(dirs)
        })
        .await?;
        Ok(LocalBlobStore { dirs: Arc::new(dirs), signer })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.dirs.root
    }

    /// Checks a presigned upload URL: `key` is the decoded path after `/blobs/`, `query` the
    /// raw query string. A missing or wrong signature, or an expired URL, is `Forbidden`
    /// (as on S3); the signature never appears in the error. Returns the key and the limits
    /// to hand to [`LocalBlobStore::receive`].
    pub fn verify_upload(&self, key: &str, query: &str) -> Result<(BlobKey, UploadConstraints)> {
        self.signer.verify_upload(key, query, Utc::now().timestamp())
    }

    /// Checks a presigned download URL, as [`LocalBlobStore::verify_upload`] does.
    pub fn verify_download(&self, key: &str, query: &str) -> Result<BlobKey> {
        self.signer.verify_download(key, query, Utc::now().timestamp())
    }

    /// Stores the body of a verified upload under `key`, with the media type it was signed
    /// for.
    ///
    /// A `content_type` other than `constraints.media_type` (parameters such as `charset`
    /// aside) is `UnsupportedMediaType`, before any byte is read. A body that passes
    /// `constraints.max_bytes` is `PayloadTooLarge` as soon as it does: reading stops and
    /// nothing is stored (`actual` is then what had arrived, at least one byte over). The
    /// body goes to a temporary file that is renamed into place only once it is whole, so
    /// an upload that breaks off, or whose future is dropped, stores nothing either.
    pub async fn receive<S, E>(
        &self,
        key: &BlobKey,
        constraints: &UploadConstraints,
        content_type: Option<&str>,
        body: S,
    ) -> Result<BlobMeta>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::error::Error + Send + Sync + 'static,
    {
        let signed = &constraints.media_type;
        if content_type.is_none_or(|sent| essence(sent) != essence(signed)) {
            let sent = content_type.unwrap_or("no content type");
            return Err(Error::UnsupportedMediaType {
                media_type: format!("{sent} (this upload URL accepts only {signed})"),
            });
        }
        let limit = constraints.max_bytes;
        let dirs = Arc::clone(&self.dirs);
        let (temp, mut file) = blocking(move || dirs.temp_file()).await?;
        let mut body = std::pin::pin!(body);
        let mut pending = Vec::with_capacity(PIECE_BYTES);
        let mut received = 0u64;
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| Error::invalid_input(format!("the upload body broke off: {e}")))?;
            received += piece.len() as u64;
            if received > limit {
                // `temp` is dropped here, which removes the partial file.
                return Err(Error::PayloadTooLarge { limit, actual: received });
            }
            pending.extend_from_slice(&piece);
            if pending.len() >= PIECE_BYTES {
                let (full, key) =
                    (std::mem::replace(&mut pending, Vec::with_capacity(PIECE_BYTES)), key.clone());
                file = blocking(move || {
                    file.write_all(&full).map_err(|e| write_error(&key, e))?;
                    Ok(file)
                })
                .await?;
            }
        }
        let (dirs, owned_key, media_type) = (Arc::clone(&self.dirs), key.clone(), signed.clone());
        blocking(move || {
            file.write_all(&pending).map_err(|e| write_error(&owned_key, e))?;
            dirs.commit(&owned_key, temp, file, Some(&media_type))
        })
        .await?;
        Ok(BlobMeta { key: key.clone(), size_bytes: received, media_type: Some(signed.clone()) })
    }

    /// When a URL asked to live `expires_in` stops working: whole seconds, rounded up, so it
    /// lives at least as long as asked.
    fn expiry(expires_in: Duration) -> Result<DateTime<Utc>> {
        check_url_lifetime(expires_in)?;
        let at = Utc::now() + expires_in;
        let expires = at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0);
        DateTime::from_timestamp(expires, 0).ok_or_else(|| Error::bug("presigned URL expiry out of range"))
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, media_type: Option<&str>) -> Result<()> {
        let (dirs, key, media_type) = (Arc::clone(&self.dirs), key.clone(), media_type.map(str::to_owned));
        blocking(move || {
            let (temp, mut file) = dirs.temp_file()?;
            file.write_all(&bytes).map_err(|e| write_error(&key, e))?;
            dirs.commit(&key, temp, file, media_type.as_deref())
        })
        .await
    }

    async fn put_file(&self, key: &BlobKey, path: &Path, media_type: Option<&str>) -> Result<()> {
        let (dirs, key, media_type) = (Arc::clone(&self.dirs), key.clone(), media_type.map(str::to_owned));
        let source = path.to_owned();
        blocking(move || {
            let mut input = File::open(&source).map_err(|e| cannot("read", &source, e))?;
            let (temp, mut file) = dirs.temp_file()?;
            // `io::copy` moves the bytes through a small buffer (or in the kernel), never the
            // whole file through memory.
            io::copy(&mut input, &mut file).map_err(|e| write_error(&key, e))?;
            dirs.commit(&key, temp, file, media_type.as_deref())
        })
        .await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        let (dirs, key) = (Arc::clone(&self.dirs), key.clone());
        blocking(move || {
            let mut file = dirs.open_object(&key)?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(|e| cannot("read", &dirs.object_path(&key), e))?;
            Ok(Bytes::from(bytes))
        })
        .await
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<ByteStream> {
        let (dirs, key) = (Arc::clone(&self.dirs), key.clone());
        let file = blocking(move || dirs.open_object(&key)).await?;
        // One short blocking task per piece, so a slow reader holds an open file, not a
        // thread; dropping the stream closes the file.
        let pieces = futures::stream::try_unfold(Some(file), |file| async move {
            let Some(mut file) = file else { return Ok(None) };
            let (file, piece) = blocking(move || {
                let mut piece = vec![0u8; PIECE_BYTES];
                let n = read_up_to(&mut file, &mut piece)
                    .map_err(|e| Error::internal("local blob store: a read failed", e))?;
                piece.truncate(n);
                Ok((file, piece))
            })
            .await?;
            Ok(match piece.len() {
                0 => None,
                n if n < PIECE_BYTES => Some((Bytes::from(piece), None)),
                _ => Some((Bytes::from(piece), Some(file))),
            })
        });
        Ok(pieces.boxed())
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        let (dirs, key) = (Arc::clone(&self.dirs), key.clone());
        blocking(move || {
            let path = dirs.object_path(&key);
            let size_bytes = match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => meta.len(),
                Ok(_) => return Ok(None),
                Err(e) if is_missing(&e) => return Ok(None),
                Err(e) => return Err(cannot("read", &path, e)),
            };
            Ok(Some(BlobMeta { media_type: dirs.media_type(&key), key, size_bytes }))
        })
        .await
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        let (dirs, key) = (Arc::clone(&self.dirs), key.clone());
        blocking(move || dirs.remove(&key).map(drop)).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let Some(under) = check_prefix(prefix)?.map(str::to_owned) else {
            return Err(Error::invalid_input("delete_prefix needs a non-empty prefix, such as `users/u1/`"));
        };
        let dirs = Arc::clone(&self.dirs);
        blocking(move || {
            let mut removed = 0;
            for key in walk(&dirs.objects, &dirs.objects.join(&under))? {
                removed += u64::from(dirs.remove(&key)?);
            }
            for tree in [&dirs.objects, &dirs.meta] {
                let top = tree.join(&under);
                remove_empty_dirs(&top);
                prune_empty_parents(&top, tree);
            }
            Ok(removed)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobKey>> {
        let under = check_prefix(prefix)?.unwrap_or_default().to_owned();
        let dirs = Arc::clone(&self.dirs);
        blocking(move || {
            let start = dirs.objects.join(under);
            let mut keys = walk(&dirs.objects, &start)?;
            keys.sort();
            Ok(keys)
        })
        .await
    }

    async fn presign_upload(
        &self,
        key: &BlobKey,
        constraints: &UploadConstraints,
        expires_in: Duration,
    ) -> Result<PresignedRequest> {
        let media = &constraints.media_type;
        if media.is_empty() || media.len() > 255 || media.chars().any(|c| c.is_control()) {
            return Err(Error::invalid_input(format!("{media:?} is not a media type")));
        }
        let expires_at = Self::expiry(expires_in)?;
        Ok(PresignedRequest {
            method: "PUT".to_owned(),
            url: self.signer.upload_url(key, constraints, expires_at.timestamp()),
            headers: [("content-type".to_owned(), media.clone())].into(),
            expires_at,
        })
    }

    async fn presign_download(&self, key: &BlobKey, expires_in: Duration) -> Result<PresignedRequest> {
        let expires_at = Self::expiry(expires_in)?;
        Ok(PresignedRequest {
            method: "GET".to_owned(),
            url: self.signer.download_url(key, expires_at.timestamp()),
            headers: Default::default(),
            expires_at,
        })
    }
}

impl Dirs {
    fn object_path(&self, key: &BlobKey) -> PathBuf {
        self.objects.join(key.as_str())
    }

    fn meta_path(&self, key: &BlobKey) -> PathBuf {
        self.meta.join(key.as_str())
    }

    fn lock(&self, key: &BlobKey) -> std::sync::MutexGuard<'_, ()> {
        let slot = self.lock_hasher.hash_one(key) as usize % KEY_LOCKS;
        self.locks[slot].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn temp_file(&self) -> Result<(TempPath, File)> {
        let path = self.tmp.join(uuid::Uuid::new_v4().simple().to_string());
        let file = File::create_new(&path).map_err(|e| cannot("create", &path, e))?;
        Ok((TempPath(Some(path)), file))
    }

    fn open_object(&self, key: &BlobKey) -> Result<File> {
        let path = self.object_path(key);
        let missing = || Error::not_found(format!("blob {key}"));
        let file = File::open(&path)
            .map_err(|e| if is_missing(&e) { missing() } else { cannot("read", &path, e) })?;
        match file.metadata() {
            Ok(meta) if meta.is_file() => Ok(file),
            Ok(_) => Err(missing()),
            Err(e) => Err(cannot("read", &path, e)),
        }
    }

    fn media_type(&self, key: &BlobKey) -> Option<String> {
        let text = std::fs::read(self.meta_path(key)).ok()?;
        serde_json::from_slice::<Sidecar>(&text).ok()?.media_type
    }

    /// Syncs a finished temporary file and renames it, with its sidecar, into place.
    fn commit(&self, key: &BlobKey, temp: TempPath, file: File, media_type: Option<&str>) -> Result<()> {
        // Synced before the rename, so after a crash the key holds the old object or the
        // new one, never a prefix of the new one.
        file.sync_all().map_err(|e| write_error(key, e))?;
        drop(file);
        let (sidecar, mut sidecar_file) = self.temp_file()?;
        let json = serde_json::to_vec(&Sidecar { media_type: media_type.map(str::to_owned) })
            .map_err(|e| Error::internal("local blob store: cannot encode a sidecar", e))?;
        sidecar_file.write_all(&json).map_err(|e| write_error(key, e))?;
        drop(sidecar_file);

        let (object_path, meta_path) = (self.object_path(key), self.meta_path(key));
        let _guard = self.lock(key);
        if object_path.is_dir() {
            return Err(prefix_conflict(key));
        }
        // The sidecar lands first: once the new object is visible under its key, so is its
        // media type.
        sidecar.rename_into(&meta_path, key)?;
        temp.rename_into(&object_path, key)
    }

    /// Removes an object and its sidecar; `true` if there was an object.
    fn remove(&self, key: &BlobKey) -> Result<bool> {
        let (object_path, meta_path) = (self.object_path(key), self.meta_path(key));
        let _guard = self.lock(key);
        let existed = match std::fs::remove_file(&object_path) {
            Ok(()) => true,
            Err(e) if is_missing(&e) || object_path.is_dir() => false,
            Err(e) => return Err(cannot("remove", &object_path, e)),
        };
        match std::fs::remove_file(&meta_path) {
            Ok(()) => {}
            Err(e) if is_missing(&e) || meta_path.is_dir() => {}
            Err(e) => return Err(cannot("remove", &meta_path, e)),
        }
        // Empty directories go too, so a key that was a prefix can become an object.
        prune_empty_parents(&object_path, &self.objects);
        prune_empty_parents(&meta_path, &self.meta);
        Ok(existed)
    }
}

/// A file in `tmp/`, removed when dropped unless it was renamed into place. Removal in
/// `Drop` is one `unlink`, cheap enough to run wherever the drop happens.
struct TempPath(Option<PathBuf>);

impl TempPath {
    fn rename_into(mut self, target: &Path, key: &BlobKey) -> Result<()> {
        let Some(from) = self.0.take() else { return Err(Error::bug("temporary file renamed twice")) };
        let result = rename_creating_parents(&from, target, key);
        if result.is_err() {
            self.0 = Some(from);
        }
        result
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn rename_creating_parents(from: &Path, to: &Path, key: &BlobKey) -> Result<()> {
    // A concurrent delete may remove an emptied parent between our mkdir and rename; the
    // retry recreates it.
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Some(parent) = to.parent() {
            match std::fs::create_dir_all(parent) {
                Ok(()) => {}
                Err(e) if is_name_taken(&e) => return Err(prefix_conflict(key)),
                Err(e) => return Err(write_error(key, e)),
            }
        }
        match std::fs::rename(from, to) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => continue,
            Err(e) if is_name_taken(&e) || e.kind() == io::ErrorKind::IsADirectory => {
                return Err(prefix_conflict(key));
            }
            Err(e) => return Err(write_error(key, e)),
        }
    }
}

/// Every object under `start`, as keys relative to `objects`; a missing `start` is empty.
fn walk(objects: &Path, start: &Path) -> Result<Vec<BlobKey>> {
    let mut keys = Vec::new();
    let mut pending = vec![start.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(cannot("list", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| cannot("list", &dir, e))?;
            let kind = entry.file_type().map_err(|e| cannot("list", &entry.path(), e))?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                // Files this store did not write (names that are not keys) are not objects.
                let key = path.strip_prefix(objects).ok().and_then(|rel| {
                    let segments = rel.iter().map(|s| s.to_str()).collect::<Option<Vec<_>>>()?;
                    BlobKey::new(segments.join("/")).ok()
                });
                keys.extend(key);
            }
        }
    }
    Ok(keys)
}

/// Removes `dir` and every directory below it that holds no file.
fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Removes the empty directories from `path`'s parent up to, not including, `tree`.
fn prune_empty_parents(path: &Path, tree: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == tree || !d.starts_with(tree) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

fn remove_stale_temp_files(tmp: &Path) -> Result<()> {
    let entries = std::fs::read_dir(tmp).map_err(|e| cannot("list", tmp, e))?;
    for entry in entries {
        let path = entry.map_err(|e| cannot("list", tmp, e))?.path();
        let removed =
            if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.map_err(|e| cannot("remove", &path, e))?;
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends, so every piece but the last is whole.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The media type without parameters, lower-cased: `Text/Plain; charset=utf-8` is `text/plain`.
fn essence(media_type: &str) -> String {
    media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

fn is_name_taken(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory)
}

fn prefix_conflict(key: &BlobKey) -> Error {
    Error::conflict(format!(
        "blob {key} cannot be stored: the local store cannot hold a key that is also a prefix of another"
    ))
}

fn write_error(key: impl fmt::Display, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            Error::unavailable("local blob store: the disk is full")
        }
        io::ErrorKind::InvalidFilename => {
            Error::invalid_input(format!("blob key {key} has a segment longer than the file system allows"))
        }
        _ => Error::internal(format!("local blob store: cannot write {key}"), e),
    }
}

fn cannot(what: &str, path: &Path, e: io::Error) -> Error {
    Error::internal(format!("local blob store: cannot {what} {}", path.display()), e)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal("a blob store file task failed", e))?
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use amp_core::ErrorKind;

    use super::*;

    const SIGNING_KEY: [u8; 32] = [0x42; 32];

    async fn store(dir: &Path) -> LocalBlobStore {
        LocalBlobStore::open(dir.to_owned(), SIGNING_KEY.to_vec(), "http://127.0.0.1:9".into()).await.unwrap()
    }

    fn pdf(max_bytes: u64) -> UploadConstraints {
        UploadConstraints { media_type: "application/pdf".into(), max_bytes }
    }

    fn pieces(n: usize, size: usize) -> Vec<std::result::Result<Bytes, io::Error>> {
        (0..n).map(|i| Ok(Bytes::from(vec![i as u8; size]))).collect()
    }

    fn temp_files(store: &LocalBlobStore) -> usize {
        std::fs::read_dir(store.root().join("tmp")).unwrap().count()
    }

    #[tokio::test]
    async fn a_body_over_the_limit_stops_being_read_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let key = BlobKey::new("u/f.pdf").unwrap();
        let polled = AtomicUsize::new(0);
        // 10 pieces of 100 bytes against a limit of 250: the third passes it.
        let body = futures::stream::iter(pieces(10, 100)).inspect(|_| {
            polled.fetch_add(1, Ordering::SeqCst);
        });
        let err = store.receive(&key, &pdf(250), Some("application/pdf"), body).await.unwrap_err();
        assert!(matches!(err, Error::PayloadTooLarge { limit: 250, actual: 300 }), "{err:?}");
        assert_eq!(polled.load(Ordering::SeqCst), 3, "reading must stop at the piece that passes the limit");
        assert_eq!(store.head(&key).await.unwrap(), None);
        assert_eq!(temp_files(&store), 0, "the partial upload must be removed");
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_stored_with_the_signed_media_type() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let key = BlobKey::new("u/f.pdf").unwrap();
        // Pieces larger than the write buffer, and an odd tail, exercise both writes.
        let mut body = pieces(3, PIECE_BYTES + 7);
        body.push(Ok(Bytes::from_static(b"tail")));
        let total = 3 * (PIECE_BYTES as u64 + 7) + 4;
        let meta = store
            .receive(&key, &pdf(total), Some("Application/PDF; charset=binary"), futures::stream::iter(body))
            .await
            .unwrap();
        assert_eq!(
            meta,
            BlobMeta { key: key.clone(), size_bytes: total, media_type: Some("application/pdf".into()) }
        );
        assert_eq!(store.head(&key).await.unwrap(), Some(meta));
        let stored = store.get(&key).await.unwrap();
        assert_eq!(stored.len() as u64, total);
        assert!(stored.ends_with(b"tail") && stored[..PIECE_BYTES + 7].iter().all(|&b| b == 0));
        assert_eq!(temp_files(&store), 0);
    }

    #[tokio::test]
    async fn another_media_type_is_refused_naming_both_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let key = BlobKey::new("u/f.pdf").unwrap();
        for sent in [Some("text/html"), None] {
            let body = futures::stream::iter(pieces(1, 10)).inspect(|_| panic!("the body must not be read"));
            let err = store.receive(&key, &pdf(100), sent, body).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
            let message = err.to_string();
            assert!(
                message.contains(sent.unwrap_or("no content type")) && message.contains("application/pdf"),
                "{message}"
            );
        }
        assert_eq!(store.head(&key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_body_that_breaks_off_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let key = BlobKey::new("u/f.pdf").unwrap();
        let mut body = pieces(2, 10);
        body.push(Err(io::Error::new(io::ErrorKind::ConnectionReset, "client went away")));
        let err = store
            .receive(&key, &pdf(100), Some("application/pdf"), futures::stream::iter(body))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(store.head(&key).await.unwrap(), None);
        assert_eq!(temp_files(&store), 0);
    }

    #[tokio::test]
    async fn stale_temp_files_are_removed_at_open_and_sidecars_are_not_keys() {
        let dir = tempfile::tempdir().unwrap();
        let first = store(dir.path()).await;
        first.put(&BlobKey::new("a/b").unwrap(), Bytes::from_static(b"x"), Some("text/plain")).await.unwrap();
        std::fs::write(dir.path().join("tmp/left-by-a-crash"), b"half an obj").unwrap();
        std::fs::create_dir(dir.path().join("tmp/a-dir")).unwrap();
        drop(first);
        let reopened = store(dir.path()).await;
        assert_eq!(temp_files(&reopened), 0);
        assert_eq!(reopened.list("").await.unwrap(), vec![BlobKey::new("a/b").unwrap()]);
    }

    #[tokio::test]
    async fn a_key_that_is_also_a_prefix_is_a_conflict_until_the_prefix_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let (parent, child) = (BlobKey::new("a/b").unwrap(), BlobKey::new("a/b/c").unwrap());
        store.put(&child, Bytes::from_static(b"child"), None).await.unwrap();
        assert_eq!(store.put(&parent, Bytes::new(), None).await.unwrap_err().kind(), ErrorKind::Conflict);
        store.delete(&child).await.unwrap();
        store.put(&parent, Bytes::from_static(b"parent"), None).await.unwrap();
        assert_eq!(store.put(&child, Bytes::new(), None).await.unwrap_err().kind(), ErrorKind::Conflict);
        assert_eq!(store.get(&parent).await.unwrap().as_ref(), b"parent");
        assert_eq!(store.get(&child).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(temp_files(&store), 0, "a refused write leaves no temp file");
    }

    #[tokio::test]
    async fn bad_prefixes_keys_and_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        assert_eq!(store.list("a").await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(store.delete_prefix("").await.unwrap_err().kind(), ErrorKind::InvalidInput);
        let long = BlobKey::new(format!("a/{}", "x".repeat(300))).unwrap();
        assert_eq!(store.put(&long, Bytes::new(), None).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        let short_key = LocalBlobStore::open(dir.path().to_owned(), vec![1; 16], "http://x".into()).await;
        assert_eq!(short_key.unwrap_err().kind(), ErrorKind::InvalidInput);
        let bad_type = UploadConstraints { media_type: "text/plain\nx".into(), max_bytes: 1 };
        let key = BlobKey::new("a/b").unwrap();
        let err = store.presign_upload(&key, &bad_type, Duration::from_secs(60)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = store.presign_download(&key, Duration::ZERO).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn debug_shows_no_signing_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = b"very-secret-signing-key-0123456789".to_vec();
        let store = LocalBlobStore::open(dir.path().to_owned(), key, "http://x".into()).await.unwrap();
        let shown = format!("{store:?}");
        assert!(shown.contains("LocalBlobStore") && !shown.contains("very-secret"), "{shown}");
    }

    #[tokio::test]
    async fn presigned_urls_verify_against_the_store_that_made_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let key = BlobKey::new("users/u1/files/f 1.pdf").unwrap();
        let up = store.presign_upload(&key, &pdf(10), Duration::from_secs(60)).await.unwrap();
        assert_eq!(up.headers.get("content-type").map(String::as_str), Some("application/pdf"));
        let rest = up.url.strip_prefix("http://127.0.0.1:9/blobs/").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        assert_eq!(path, "users/u1/files/f%201.pdf");
        let (verified, constraints) = store.verify_upload("users/u1/files/f 1.pdf", query).unwrap();
        assert_eq!((verified, constraints), (key.clone(), pdf(10)));
        assert_eq!(
            store.verify_download("users/u1/files/f 1.pdf", query).unwrap_err().kind(),
            ErrorKind::Forbidden
        );
    }
}

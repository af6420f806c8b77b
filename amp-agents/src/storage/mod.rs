//! The Storage agent: takes files in (streamed directly, or straight to the blob store
//! through presigned URLs), keeps their original bytes, makes them searchable in the
//! background, and takes them out again without leaving anything behind.
//!
//! An upload is checked before anything is processed (name, size, an allow-list of types,
//! the bytes sniffed against the declared type and extension), stored in the
//! [`BlobStore`] under the seed's layout (`users/{user}/files/{file}` or
//! `workspaces/{workspace}/files/{file}`), and queued as a durable job. Workers
//! ([`IngestWorkers`]) run each file through `scanning → extracting → chunking → embedding
//! → indexing → ready` (see `ingest`), and survive crashes: a job held by a dead process
//! is taken over when its lease runs out, and every write is idempotent. A file is `ready`
//! once both the vector index and the keyword index hold every passage of it; files made
//! searchable before the keyword index existed are written to it by
//! [`Storage::backfill_keywords`].
//!
//! The same bytes uploaded twice by one owner into the same place are stored once: the
//! second upload answers with the existing file.

mod backfill;
mod chunker;
mod ingest;
mod search;
mod sniff;
mod spool;
mod upload;
mod workers;
mod workspace;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use amp_core::audit::{AuditAction, NewAuditEvent};
use amp_core::config::{ScannerUnavailable, StorageConfig};
use amp_core::{
    BlobKey, BlobStore, ByteStream, Embedder, Error, Extractor, FileId, FileMeta, FileStatus, Job, JobQueue,
    KeywordIndex, NewJob, PresignedRequest, Result, Scanner, SessionId, Stores, UploadConstraints, UserId,
    VectorIndex, WorkspaceId, WorkspaceRole,
};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;

pub use chunker::{Chunker, passage_id};
pub use ingest::INGEST_FILE;
pub use search::{SearchRequest, SearchResult};
pub use sniff::{DOCX, HTML, JPEG, PDF, PNG, TIFF};
pub use upload::Announced;
pub use workers::IngestWorkers;
pub use workspace::WorkspaceDeleted;

use crate::clock::now;
use crate::files::Files;
use crate::principal::Principal;
use crate::session::SessionAgent;

/// Every media type AMP can read, when the extractor supports it.
pub const MEDIA_TYPES: &[&str] =
    &["text/plain", "text/markdown", "text/csv", "application/json", HTML, PDF, DOCX, PNG, JPEG, TIFF];

/// Validations that scan at once (each holds its file in memory for the scanner).
const MAX_VALIDATIONS_SCANNING: usize = 4;

/// Most files one `upload-urls` request may announce.
pub const MAX_FILES_PER_REQUEST: usize = 20;

/// How long a file may sit in a processing stage without a change before a delete may go
/// ahead anyway (its worker died and nothing took it over yet).
const STALE_PROCESSING: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// The backends the Storage agent works through.
#[derive(Clone)]
pub struct StorageBackends {
    /// Where original bytes and processed text live.
    pub blobs: Arc<dyn BlobStore>,
    /// The durable queue of ingestion jobs.
    pub queue: Arc<dyn JobQueue>,
    /// Text out of documents.
    pub extractor: Arc<dyn Extractor>,
    /// Malware scanning; `None` turns scanning off.
    pub scanner: Option<Arc<dyn Scanner>>,
    /// Passages to vectors.
    pub embedder: Arc<dyn Embedder>,
    /// Where vectors are searched.
    pub vectors: Arc<dyn VectorIndex>,
    /// Where passage text is searched by keyword.
    pub keywords: Arc<dyn KeywordIndex>,
    /// How text is cut into passages.
    pub chunker: Chunker,
}

/// What the agent was configured with.
#[derive(Debug, Clone)]
struct Settings {
    /// The kind of this agent's ingestion jobs: [`INGEST_FILE`], or pinned to one node
    /// when the original bytes live on that node's disk.
    job_kind: String,
    policy: upload::Policy,
    spool: PathBuf,
    lease: Duration,
    max_attempts: u32,
    upload_url_ttl: Duration,
    pending_ttl: Duration,
    scanner_unavailable: ScannerUnavailable,
    extraction_timeout: Duration,
}

/// The Storage agent. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    stores: Stores,
    session: SessionAgent,
    files: Files,
    blobs: Arc<dyn BlobStore>,
    queue: Arc<dyn JobQueue>,
    extractor: Arc<dyn Extractor>,
    scanner: Option<Arc<dyn Scanner>>,
    embedder: Arc<dyn Embedder>,
    vectors: Arc<dyn VectorIndex>,
    keywords: Arc<dyn KeywordIndex>,
    chunker: Chunker,
    settings: Arc<Settings>,
    /// Wakes an idle worker of this process when a job is queued here.
    wake: Arc<Notify>,
    /// Bounds the validations scanning at once: each holds a whole file in memory.
    validating: Arc<tokio::sync::Semaphore>,
    /// Uploads per hour and bytes per day, per person and key; `None` limits nothing.
    quotas: Option<crate::quotas::Quotas>,
}

/// A direct upload's result: the file, and whether it is new (`false`: the same bytes
/// were already uploaded by this owner into the same place, and this is that file).
#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    /// The file.
    pub file: FileMeta,
    /// Whether this upload created it.
    pub created: bool,
}

/// What `validate` found: the upload would be accepted as this.
#[derive(Debug, Clone, Serialize)]
pub struct Validated {
    /// The name it would be stored under.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size_bytes: u64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// Whether it was scanned for malware (a scanner is configured) and found clean.
    pub scanned: bool,
    /// The caller's existing file with the same bytes, which an upload would answer with.
    pub duplicate_of: Option<FileId>,
}

/// One presigned upload: the file's record (`pending`) and how to send its bytes.
#[derive(Debug, Clone, Serialize)]
pub struct UploadUrl {
    /// The announced file.
    pub file: FileMeta,
    /// The request to send the bytes with: method, URL, headers, expiry.
    pub upload: PresignedRequest,
}

/// The state of the Storage agent's dependencies, for a status endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct StorageStatus {
    /// Media types accepted.
    pub media_types: Vec<String>,
    /// Largest file accepted.
    pub max_file_bytes: u64,
    /// Whether uploads are scanned for malware.
    pub scanning: bool,
}

impl Storage {
    /// An agent over `stores` and `backends`, configured by `config`, receiving uploads
    /// into files under `spool` (removed after each upload; leftovers removed now).
    pub fn new(
        stores: Stores,
        session: SessionAgent,
        backends: StorageBackends,
        config: &StorageConfig,
        spool: PathBuf,
    ) -> Result<Self> {
        let StorageBackends { blobs, queue, extractor, scanner, embedder, vectors, keywords, chunker } =
            backends;
        if embedder.dimension() != vectors.dimension() {
            return Err(Error::invalid_input(format!(
                "the embedder makes {}-dimensional vectors but the vector index holds {}",
                embedder.dimension(),
                vectors.dimension()
            )));
        }
        config.validate()?;
        let allowed: Vec<String> = if config.allowed_media_types.is_empty() {
            MEDIA_TYPES.iter().filter(|t| extractor.supports(t)).map(|t| (*t).to_owned()).collect()
        } else {
            for t in &config.allowed_media_types {
                if !MEDIA_TYPES.contains(&t.as_str()) || !extractor.supports(t) {
                    return Err(Error::invalid_input(format!(
                        "config: storage.allowed_media_types: AMP cannot read {t:?} (it reads {})",
                        MEDIA_TYPES.join(", ")
                    )));
                }
            }
            config.allowed_media_types.clone()
        };
        spool::clean(&spool);
        let settings = Settings {
            job_kind: INGEST_FILE.to_owned(),
            policy: upload::Policy { max_bytes: config.max_file_bytes, allowed },
            spool,
            lease: Duration::from_secs(config.lease_secs),
            max_attempts: config.max_attempts,
            upload_url_ttl: Duration::from_secs(config.upload_url_ttl_secs),
            pending_ttl: Duration::from_secs(config.pending_ttl_secs),
            scanner_unavailable: config.scanner.on_unavailable,
            extraction_timeout: Duration::from_secs(config.extraction.timeout_secs),
        };
        let files = Files::new(stores.clone(), session.clone());
        Ok(Storage {
            stores,
            session,
            files,
            blobs,
            queue,
            extractor,
            scanner,
            embedder,
            vectors,
            keywords,
            chunker,
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
            validating: Arc::new(tokio::sync::Semaphore::new(MAX_VALIDATIONS_SCANNING)),
            quotas: None,
        })
    }

    /// Counts every upload against the caller's quotas (uploads per hour, bytes per day);
    /// without this, uploads are limited only by `storage.max_file_bytes`.
    pub fn with_quotas(mut self, quotas: crate::quotas::Quotas) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// Pins this agent's ingestion jobs to `node`: with a blob store on local disk and a job
    /// queue shared by several processes (PostgreSQL), only the process that holds a file's
    /// bytes may process it, so jobs are queued and claimed under a kind of their own.
    pub fn pin_jobs_to(mut self, node: &str) -> Self {
        let mut settings = (*self.settings).clone();
        settings.job_kind = format!("{INGEST_FILE}@{node}");
        self.settings = Arc::new(settings);
        self
    }

    /// The blob store the original bytes are kept in.
    pub fn blob_store(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }

    /// The largest file accepted, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.settings.policy.max_bytes
    }

    /// What is accepted, and whether uploads are scanned.
    pub fn status(&self) -> StorageStatus {
        StorageStatus {
            media_types: self.settings.policy.allowed.clone(),
            max_file_bytes: self.settings.policy.max_bytes,
            scanning: self.scanner.is_some(),
        }
    }

    /// Receives `body` as the caller's file (in `workspace` for its editors and owners),
    /// keeps its bytes and queues it for processing. Returns the file (`queued`), or the
    /// caller's existing file with the same bytes in the same place.
    ///
    /// Refusals come before anything is stored: a bad name or empty file is
    /// `InvalidInput`, one over the limit `PayloadTooLarge` (as soon as the body passes
    /// it), a type not accepted or bytes that are not what the type and name say
    /// `UnsupportedMediaType`.
    pub async fn upload(
        &self,
        principal: &Principal,
        workspace: Option<WorkspaceId>,
        announced: Announced,
        body: ByteStream,
    ) -> Result<Uploaded> {
        if let Some(quotas) = &self.quotas {
            quotas.begin_upload(principal, announced.size_bytes.unwrap_or(0)).await?;
        }
        let (accepted, spooled) = self.receive(principal, workspace, &announced, body).await?;
        if let Some(quotas) = &self.quotas {
            quotas.charge_upload(principal, spooled.size).await;
        }

        let existing = self.stores.files.find_by_sha256(principal.user, &spooled.sha256).await?;
        let same_place = existing.into_iter().find(|f| f.workspace == workspace);
        let mut file = match same_place {
            Some(file) if file.status != FileStatus::Pending => return Ok(Uploaded { file, created: false }),
            // An earlier attempt whose process died before storing the bytes: finish it.
            Some(file) => file,
            None => {
                let file =
                    self.new_file(principal, workspace, accepted, spooled.size, Some(spooled.sha256.clone()));
                self.stores.files.create_file(file.clone()).await?;
                file
            }
        };
        let key = file.blob_key.clone().ok_or_else(|| Error::bug("a new file has no blob key"))?;
        self.blobs.put_file(&key, &spooled.path, Some(&file.media_type)).await?;
        drop(spooled);
        self.enqueue(&mut file).await?;
        self.announce_created(principal.user, principal.session(), &file).await;
        Ok(Uploaded { file, created: true })
    }

    /// The checks every upload passes, in order: the caller may write there, the
    /// announcement is acceptable, the body arrives within the limit, and its bytes are
    /// what they claim to be.
    async fn receive(
        &self,
        principal: &Principal,
        workspace: Option<WorkspaceId>,
        announced: &Announced,
        body: ByteStream,
    ) -> Result<(upload::Accepted, spool::Spooled)> {
        if let Some(w) = workspace {
            self.session.require_role(principal, w, WorkspaceRole::Editor).await?;
        }
        let accepted = self.settings.policy.accept(announced)?;
        let spooled = spool::receive(&self.settings.spool, body, self.settings.policy.max_bytes).await?;
        self.settings.policy.check_size(spooled.size)?;
        self.settings.policy.check_bytes(&accepted, &spooled.head, spooled.size)?;
        Ok((accepted, spooled))
    }

    /// Waits until a file the caller may read is ready or failed (or `limit` passes), and
    /// returns its record then. Works across processes: it reads the store.
    pub async fn wait(&self, principal: &Principal, id: FileId, limit: Duration) -> Result<FileMeta> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let file = self.files.get(principal, id).await?;
            if !file.status.is_in_progress() || tokio::time::Instant::now() >= deadline {
                return Ok(file);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs every check an upload would pass through (size, type, sniffing, name, malware
    /// when a scanner is configured) without storing anything.
    pub async fn validate(
        &self,
        principal: &Principal,
        workspace: Option<WorkspaceId>,
        announced: Announced,
        body: ByteStream,
    ) -> Result<Validated> {
        let (accepted, spooled) = self.receive(principal, workspace, &announced, body).await?;
        if let Some(scanner) = &self.scanner {
            let _permit = self
                .validating
                .acquire()
                .await
                .map_err(|_| Error::unavailable("the server is shutting down"))?;
            let bytes = tokio::fs::read(&spooled.path)
                .await
                .map_err(|e| Error::internal("reading a spooled upload", e))?;
            if let amp_core::ScanVerdict::Infected { signature } = scanner.scan(bytes.into()).await? {
                return Err(Error::invalid_input(format!("the file is infected ({signature})")));
            }
        }
        let duplicate_of = self
            .stores
            .files
            .find_by_sha256(principal.user, &spooled.sha256)
            .await?
            .into_iter()
            .find(|f| f.workspace == workspace && f.status != FileStatus::Pending)
            .map(|f| f.id);
        Ok(Validated {
            name: accepted.name,
            media_type: accepted.media_type,
            size_bytes: spooled.size,
            sha256: spooled.sha256.clone(),
            scanned: self.scanner.is_some(),
            duplicate_of,
        })
    }

    /// Announces files whose bytes the client sends straight to the blob store: per file a
    /// record (`pending`) and a presigned upload that only accepts that media type and
    /// size, until it expires. Processing starts once the upload is complete
    /// ([`Storage::complete`]). All files are checked before any is announced.
    pub async fn upload_urls(
        &self,
        principal: &Principal,
        workspace: Option<WorkspaceId>,
        announced: Vec<Announced>,
    ) -> Result<Vec<UploadUrl>> {
        if announced.is_empty() || announced.len() > MAX_FILES_PER_REQUEST {
            return Err(Error::invalid_input(format!("files: announce 1 to {MAX_FILES_PER_REQUEST} files")));
        }
        if let Some(w) = workspace {
            self.session.require_role(principal, w, WorkspaceRole::Editor).await?;
        }
        let mut checked = Vec::with_capacity(announced.len());
        for (i, a) in announced.iter().enumerate() {
            let size = a
                .size_bytes
                .ok_or_else(|| Error::invalid_input(format!("files[{i}].size_bytes: required")))?;
            let accepted = self.settings.policy.accept(a).map_err(|e| match e {
                Error::InvalidInput { message } => Error::invalid_input(format!("files[{i}]: {message}")),
                other => other,
            })?;
            checked.push((accepted, size));
        }
        if let Some(quotas) = &self.quotas {
            let total = checked.iter().map(|(_, size)| *size).sum();
            quotas.begin_upload(principal, total).await?;
            quotas.charge_upload(principal, total).await;
        }
        let mut urls = Vec::with_capacity(checked.len());
        for (accepted, size) in checked {
            let file = self.new_file(principal, workspace, accepted, size, None);
            self.stores.files.create_file(file.clone()).await?;
            let constraints = UploadConstraints { media_type: file.media_type.clone(), max_bytes: size };
            // The URL writes a staging object: the kept bytes are only ever the ones the
            // file was completed with.
            let staging = staging_key(&file).ok_or_else(|| Error::bug("a new file has no staging key"))?;
            let upload =
                self.blobs.presign_upload(&staging, &constraints, self.settings.upload_url_ttl).await?;
            urls.push(UploadUrl { file, upload });
        }
        Ok(urls)
    }

    /// Starts processing a presigned upload once its bytes are in the blob store. Only the
    /// uploader may; a file whose bytes have not arrived is `Conflict`.
    pub async fn complete(&self, principal: &Principal, id: FileId) -> Result<FileMeta> {
        let file = self.files.get(principal, id).await?;
        if file.owner != principal.user {
            return Err(Error::forbidden(format!("only the uploader completes file {id}")));
        }
        self.finish_upload(file).await
    }

    /// Whether a URL this store signed for `key` may still deliver bytes: its file must be
    /// announced and not yet complete. The local blob store's own upload endpoint asks
    /// before it stores anything, so a URL used once (or one whose file was deleted) stores
    /// nothing more.
    pub async fn accepts_signed_upload(&self, key: &BlobKey) -> Result<FileMeta> {
        let id: FileId = key
            .as_str()
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::not_found(format!("upload {key}")))?;
        match self.stores.files.get_file(id).await? {
            Some(file) if staging_key(&file).as_ref() == Some(key) => {
                if file.status == FileStatus::Pending {
                    Ok(file)
                } else {
                    Err(Error::conflict(format!("file {id} was uploaded already")))
                }
            }
            _ => Err(Error::not_found(format!("upload {key}"))),
        }
    }

    /// Completes the upload to `key` that a URL this store signed was used for: the local
    /// blob store's own upload endpoint calls this once the bytes are in.
    pub async fn complete_signed(&self, key: &BlobKey) -> Result<FileMeta> {
        let file = self.accepts_signed_upload(key).await?;
        self.finish_upload(file).await
    }

    /// Moves a presigned upload's bytes from where the URL wrote them to where the file
    /// keeps them, hashing them on the way, and queues the file. The URL can be used again
    /// until it expires, but only to write the staging object, which is never served or
    /// processed once the file is complete.
    async fn finish_upload(&self, mut file: FileMeta) -> Result<FileMeta> {
        if file.status != FileStatus::Pending {
            return Ok(file); // completed already: answering twice is harmless
        }
        let key = file.blob_key.clone().ok_or_else(|| Error::bug("a pending file has no blob key"))?;
        let staging = staging_key(&file).ok_or_else(|| Error::bug("a pending file has no staging key"))?;
        let Some(meta) = self.blobs.head(&staging).await? else {
            return Err(Error::conflict(format!("file {}: no bytes were uploaded yet", file.id)));
        };
        if let Err(err) = self.settings.policy.check_size(meta.size_bytes) {
            self.blobs.delete(&staging).await?;
            self.set_status(&mut file, FileStatus::Failed { reason: err.public_message() }).await?;
            return Err(err);
        }
        let body = self.blobs.get_stream(&staging).await?;
        let spooled = spool::receive(&self.settings.spool, body, self.settings.policy.max_bytes).await?;
        self.blobs.put_file(&key, &spooled.path, Some(&file.media_type)).await?;
        self.blobs.delete(&staging).await?;
        file.size_bytes = spooled.size;
        file.sha256 = Some(spooled.sha256.clone());
        drop(spooled);
        self.enqueue(&mut file).await?;
        self.announce_created(file.owner, None, &file).await;
        Ok(file)
    }

    /// Processes a file again from its kept bytes (after a failure, or to pick up a better
    /// extractor): its owner may, and an owner of its workspace.
    pub async fn process(&self, principal: &Principal, id: FileId) -> Result<FileMeta> {
        let mut file = self.files.get(principal, id).await?;
        self.require_manager(principal, &file).await?;
        if file.status.is_in_progress() {
            return Err(Error::conflict(format!("file {id} is being processed already")));
        }
        if file.status == FileStatus::Pending {
            return Err(Error::conflict(format!("file {id}: its upload is not complete")));
        }
        let kept = match &file.blob_key {
            Some(key) => self.blobs.head(key).await?.is_some(),
            None => false,
        };
        if !kept {
            return Err(Error::conflict(format!(
                "file {id}: its original bytes are not kept; upload it again"
            )));
        }
        self.enqueue(&mut file).await?;
        Ok(file)
    }

    /// The original bytes of a file the caller may read, as a stream, with its record.
    /// Only a `ready` file is served (with a scanner configured, that means scanned clean);
    /// one still in processing is `Conflict`; a failed one is served only when no scanner
    /// is configured, since its bytes may never have been scanned, and an infected one
    /// never (its bytes are deleted).
    pub async fn content(&self, principal: &Principal, id: FileId) -> Result<(FileMeta, ByteStream)> {
        let file = self.files.get(principal, id).await?;
        let servable = match &file.status {
            FileStatus::Ready => true,
            FileStatus::Failed { .. } => self.scanner.is_none(),
            FileStatus::Pending => false,
            _ => return Err(Error::conflict(format!("file {id} is still being processed"))),
        };
        let key = file.blob_key.clone().filter(|_| servable);
        let Some(key) = key else {
            return Err(Error::not_found(format!("the content of file {id}")));
        };
        if self.blobs.head(&key).await?.is_none() {
            return Err(Error::not_found(format!("the content of file {id}")));
        }
        let stream = self.blobs.get_stream(&key).await?;
        Ok((file, stream))
    }

    /// The name a download is saved under: the file's name, with the extension of its
    /// media type added when the name's own says otherwise (`setup.bat` sent as text
    /// downloads as `setup.bat.txt`), so a download never turns into a program.
    pub fn download_name(file: &FileMeta) -> String {
        sniff::download_name(&file.name, &file.media_type)
    }

    /// The caller's ingestion jobs, newest first (an administrator's: everyone's).
    pub async fn jobs(&self, principal: &Principal, limit: usize) -> Result<Vec<Job>> {
        let owner = match self.session.admin(principal).await {
            Ok(_) => None,
            Err(err) if err.kind() == amp_core::ErrorKind::Forbidden => Some(principal.user),
            Err(err) => return Err(err),
        };
        self.queue.list(&self.settings.job_kind, owner, limit.clamp(1, 500)).await
    }

    /// Deletes a file with everything made from it: original bytes, processed text,
    /// passages, vectors. Its owner may, and so may an owner of the workspace it is in.
    /// Others who can read it get `Forbidden`; anyone else `NotFound`; a file in the middle
    /// of processing `Conflict` (until its worker has been silent for ten minutes).
    pub async fn delete(&self, principal: &Principal, id: FileId) -> Result<()> {
        let file = self.files.get(principal, id).await?;
        let busy = file.status.is_in_progress() && file.status != FileStatus::Queued;
        if busy && now() - file.updated_at < STALE_PROCESSING {
            return Err(Error::conflict(format!("file {id} is being processed; try again shortly")));
        }
        self.require_manager(principal, &file).await?;
        self.remove(&file).await?;
        let event = NewAuditEvent {
            actor: Some(principal.user),
            action: AuditAction::Deleted,
            target: format!("file:{id}"),
            workspace: file.workspace,
            success: true,
            client_addr: None,
            detail: json!({"file": id, "owner": file.owner}),
        };
        // The delete already happened; a failed audit write must not report it as kept.
        if let Err(err) = self.stores.audit.append(event).await {
            tracing::error!(error = %err, "writing the audit log failed");
        }
        self.announce(principal, "file_deleted", json!({ "id": id })).await;
        Ok(())
    }

    /// Removes everything of a file. Derived data goes first and the record last, so a
    /// failure part-way leaves the record for a retry to finish, never data no record
    /// points to.
    async fn remove(&self, file: &FileMeta) -> Result<()> {
        self.vectors.delete_file(file.id).await?;
        self.keywords.delete_file(file.id).await?;
        self.stores.files.delete_chunks(file.id).await?;
        self.blobs.delete_prefix(&self.processed_prefix(file)).await?;
        if let Some(key) = &file.blob_key {
            self.blobs.delete(key).await?;
        }
        if let Some(staging) = staging_key(file) {
            self.blobs.delete(&staging).await?;
        }
        self.stores.files.delete_file(file.id).await?;
        // A back-fill that read the file before the record went may have written its
        // passages again meanwhile; with the record gone, none can come back.
        self.keywords.delete_file(file.id).await?;
        Ok(())
    }

    /// Owners of a file, and owners of its workspace, manage it.
    async fn require_manager(&self, principal: &Principal, file: &FileMeta) -> Result<()> {
        if file.owner == principal.user {
            return Ok(());
        }
        // Readable but not theirs: only workspace files get here.
        let w = file.workspace.ok_or_else(|| Error::not_found(format!("file {}", file.id)))?;
        self.session.require_role(principal, w, WorkspaceRole::Owner).await.map(|_| ())
    }

    fn new_file(
        &self,
        principal: &Principal,
        workspace: Option<WorkspaceId>,
        accepted: upload::Accepted,
        size_bytes: u64,
        sha256: Option<String>,
    ) -> FileMeta {
        let id = FileId::new();
        let key = match workspace {
            Some(w) => format!("workspaces/{w}/files/{id}"),
            None => format!("users/{}/files/{id}", principal.user),
        };
        let at = now();
        FileMeta {
            id,
            owner: principal.user,
            workspace,
            name: accepted.name,
            media_type: accepted.media_type,
            size_bytes,
            sha256,
            status: FileStatus::Pending,
            // Ids and the fixed layout always make a valid key.
            blob_key: BlobKey::new(key).ok(),
            job: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// Where a file's processed artefacts live: `users/{owner}/processed/{file}/`.
    fn processed_prefix(&self, file: &FileMeta) -> String {
        format!("users/{}/processed/{}/", file.owner, file.id)
    }

    fn processed_key(&self, file: &FileMeta, name: &str) -> Result<BlobKey> {
        BlobKey::new(format!("{}{name}", self.processed_prefix(file)))
    }

    /// Queues a file for processing and wakes a worker.
    async fn enqueue(&self, file: &mut FileMeta) -> Result<()> {
        let job = NewJob {
            kind: self.settings.job_kind.clone(),
            payload: json!({ "file": file.id }),
            max_attempts: self.settings.max_attempts,
            owner: Some(file.owner),
        };
        file.job = Some(self.queue.enqueue(job).await?);
        self.set_status(file, FileStatus::Queued).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Records a new file in its workspace's activity and tells the uploader's devices
    /// (but `from`, the device that uploaded it).
    async fn announce_created(&self, uploader: UserId, from: Option<SessionId>, file: &FileMeta) {
        if let Some(w) = file.workspace {
            let detail = json!({"file": file.id, "name": file.name});
            self.session.workspace_activity(uploader, w, AuditAction::Uploaded, detail).await;
        }
        if let Err(err) =
            self.session.publish_to(uploader, from, "file_created", json!({ "file": file })).await
        {
            tracing::warn!(error = %err, "could not publish a sync event");
        }
    }

    /// Tells the caller's other devices; the change is stored, so a failure only logs.
    async fn announce(&self, principal: &Principal, kind: &str, data: serde_json::Value) {
        if let Err(err) = self.session.publish(principal, kind, data).await {
            tracing::warn!(error = %err, kind, "could not publish a sync event");
        }
    }
}

/// Where a presigned upload writes a file's bytes before it is complete:
/// `…/uploads/{file}` beside the kept `…/files/{file}`.
fn staging_key(file: &FileMeta) -> Option<BlobKey> {
    let key = file.blob_key.as_ref()?.as_str();
    let (place, id) = key.rsplit_once("/files/")?;
    BlobKey::new(format!("{place}/uploads/{id}")).ok()
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("chunker", &self.chunker)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

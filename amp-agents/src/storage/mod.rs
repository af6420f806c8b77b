//! The Storage agent: takes a file in, makes it searchable, and takes it out again without
//! leaving passages or vectors behind.
//!
//! Today it accepts text files (plain text, Markdown, CSV, JSON) uploaded directly, and
//! processes them before answering: check → chunk with the embedder's tokenizer → embed in
//! batches → index → record the passages → `Ready`. PDFs, OCR, virus scanning, presigned
//! uploads and the background job queue are not built yet; other media types are refused
//! with `415`.

mod chunker;
mod upload;

use std::sync::Arc;

use amp_core::audit::{AuditAction, NewAuditEvent};
use amp_core::{
    Chunk, Embedder, Error, FileId, FileMeta, FileStatus, Result, Stores, VectorEntry, VectorIndex,
    Visibility, WorkspaceId, WorkspaceRole,
};
use serde_json::json;

pub use chunker::Chunker;
pub use upload::{TEXT_MEDIA_TYPES, Upload};

use crate::files::Files;
use crate::principal::Principal;
use crate::session::SessionAgent;

/// How long a file may sit in `Processing` before it counts as abandoned (a server stopped
/// mid-upload) and may be deleted.
const STALE_PROCESSING: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// The Storage agent. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    stores: Stores,
    session: SessionAgent,
    files: Files,
    embedder: Arc<dyn Embedder>,
    vectors: Arc<dyn VectorIndex>,
    chunker: Chunker,
    max_file_bytes: u64,
}

impl Storage {
    /// An agent storing passages in `stores`, vectors from `embedder` in `vectors`, cut by
    /// `chunker`, accepting files up to `max_file_bytes`.
    pub fn new(
        stores: Stores,
        session: SessionAgent,
        embedder: Arc<dyn Embedder>,
        vectors: Arc<dyn VectorIndex>,
        chunker: Chunker,
        max_file_bytes: u64,
    ) -> Result<Self> {
        if embedder.dimension() != vectors.dimension() {
            return Err(Error::invalid_input(format!(
                "the embedder makes {}-dimensional vectors but the vector index holds {}",
                embedder.dimension(),
                vectors.dimension()
            )));
        }
        let files = Files::new(stores.clone(), session.clone());
        Ok(Storage { stores, session, files, embedder, vectors, chunker, max_file_bytes })
    }

    /// The largest file accepted, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Stores `upload` as the caller's file (in `workspace` for its editors and owners)
    /// and makes it searchable. Returns the file in `Ready`.
    ///
    /// Refusals happen before anything is stored: a bad name or empty file is
    /// `InvalidInput`, one over the limit `PayloadTooLarge`, a media type we cannot read,
    /// or bytes that are not what the type says, `UnsupportedMediaType`. If processing
    /// fails later (the embedder is unavailable, say), the file stays listed as `Failed`
    /// with the reason, nothing of it is searchable, and the error is returned.
    pub async fn upload(
        &self,
        principal: &Principal,
        workspace: Option<WorkspaceId>,
        upload: Upload,
    ) -> Result<FileMeta> {
        if let Some(w) = workspace {
            self.session.require_role(principal, w, WorkspaceRole::Editor).await?;
        }
        let checked = upload::check(&upload, self.max_file_bytes)?;
        let now = crate::clock::now();
        let mut file = FileMeta {
            id: FileId::new(),
            owner: principal.user,
            workspace,
            name: checked.name,
            media_type: checked.media_type,
            size_bytes: upload.bytes.len() as u64,
            sha256: Some(crate::digest::sha256_hex(&upload.bytes)),
            status: FileStatus::Processing,
            created_at: now,
            updated_at: now,
        };
        self.stores.files.create_file(file.clone()).await?;
        // Processing runs in its own task, so a client that hangs up mid-upload still
        // leaves the file `Ready` or `Failed`, never stuck in `Processing`.
        let storage = self.clone();
        let outcome = tokio::spawn(async move {
            let outcome = storage.index(&file, checked.text).await;
            file.status = match &outcome {
                Ok(()) => FileStatus::Ready,
                Err(err) => FileStatus::Failed { reason: err.public_message() },
            };
            file.updated_at = crate::clock::now();
            if outcome.is_err() {
                // Nothing half-indexed may stay searchable.
                if let Err(err) = storage.vectors.delete_file(file.id).await {
                    tracing::error!(error = %err, file = %file.id, "removing the vectors of a failed file failed");
                }
            }
            storage.stores.files.update_file(&file).await?;
            outcome.map(|()| file)
        })
        .await
        .map_err(|e| Error::internal("processing an upload panicked", e))?;
        let file = outcome?;
        if let Some(w) = workspace {
            let detail = json!({"file": file.id, "name": file.name});
            self.session.workspace_activity(principal, w, AuditAction::Uploaded, detail).await;
        }
        self.announce(principal, "file_created", json!({ "file": file })).await;
        Ok(file)
    }

    /// Deletes a file, its passages and its vectors: its owner may, and so may an owner of
    /// the workspace it is in. Others who can read it get `Forbidden`; anyone else
    /// `NotFound`; a file still being processed `Conflict`.
    pub async fn delete(&self, principal: &Principal, id: FileId) -> Result<()> {
        let file = self.files.get(principal, id).await?;
        if file.status == FileStatus::Processing && crate::clock::now() - file.updated_at < STALE_PROCESSING {
            // Its vectors are being written: deleting now could strand some of them. One
            // left in `Processing` by a server that stopped mid-upload can go once stale.
            return Err(Error::conflict(format!("file {id} is still being processed; try again shortly")));
        }
        if file.owner != principal.user {
            // Readable but not theirs: only workspace files get here.
            let w = file.workspace.ok_or_else(|| Error::not_found(format!("file {id}")))?;
            self.session.require_role(principal, w, WorkspaceRole::Owner).await?;
        }
        // Vectors first: if the record delete then fails, a retry finishes the job, while
        // the other order could leave vectors no record points to.
        self.vectors.delete_file(id).await?;
        if !self.stores.files.delete_file(id).await? {
            return Err(Error::not_found(format!("file {id}")));
        }
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

    /// Chunks, embeds and indexes a file's text, then records its passages.
    async fn index(&self, file: &FileMeta, text: String) -> Result<()> {
        let chunker = self.chunker.clone();
        let id = file.id;
        let chunks = tokio::task::spawn_blocking(move || chunker.split(id, &text))
            .await
            .map_err(|e| Error::internal("chunking a file panicked", e))?;
        if chunks.is_empty() {
            // `upload::check` refuses blank text, so the splitter found none in non-blank.
            return Err(Error::bug("the splitter found no passage in a file with text"));
        }
        let visibility = Visibility { owner: file.owner, workspace: file.workspace };
        let batch = self.embedder.preferred_batch_size().max(1);
        for part in chunks.chunks(batch) {
            let texts: Vec<String> = part.iter().map(|c| c.text.clone()).collect();
            let vectors = self.embedder.embed(&texts).await?;
            if vectors.len() != part.len() {
                return Err(Error::bug("the embedder returned a different number of vectors"));
            }
            let entries = part
                .iter()
                .zip(vectors)
                .map(|(chunk, vector): (&Chunk, _)| VectorEntry {
                    chunk: chunk.id,
                    file: id,
                    visibility,
                    vector,
                })
                .collect();
            self.vectors.upsert(entries).await?;
        }
        self.stores.files.insert_chunks(chunks).await
    }

    /// Tells the caller's other devices; the change is stored, so a failure only logs.
    async fn announce(&self, principal: &Principal, kind: &str, data: serde_json::Value) {
        if let Err(err) = self.session.publish(principal, kind, data).await {
            tracing::warn!(error = %err, kind, "could not publish a sync event");
        }
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("chunker", &self.chunker)
            .field("max_file_bytes", &self.max_file_bytes)
            .finish_non_exhaustive()
    }
}

//! Files as people see them: their own, and those shared into workspaces they belong to.
//! Uploading, extracting and indexing are the Storage agent's; this agent decides who may
//! read a file's record and who may share it into a workspace.

use amp_core::audit::AuditAction;
use amp_core::{Error, FileId, FileMeta, Result, SearchFilter, Stores, WorkspaceId, WorkspaceRole};
use serde_json::json;

use crate::principal::Principal;
use crate::session::SessionAgent;

/// The files agent. Cheap to clone.
#[derive(Clone)]
pub struct Files {
    stores: Stores,
    session: SessionAgent,
}

fn not_found(id: FileId) -> Error {
    Error::not_found(format!("file {id}"))
}

impl Files {
    /// An agent over these stores, checking workspace roles through `session`.
    pub fn new(stores: Stores, session: SessionAgent) -> Self {
        Files { stores, session }
    }

    /// A file the caller may read: their own, or one in a workspace where they are a
    /// member. Anything else is `NotFound`, so ids reveal nothing.
    pub async fn get(&self, principal: &Principal, id: FileId) -> Result<FileMeta> {
        let file = self.stores.files.get_file(id).await?.ok_or_else(|| not_found(id))?;
        let readable = file.owner == principal.user
            || match file.workspace {
                Some(w) => self.session.is_member(principal, w).await?,
                None => false,
            };
        if readable { Ok(file) } else { Err(not_found(id)) }
    }

    /// The caller's own files, or with `workspace` that workspace's files (members only),
    /// newest first.
    pub async fn list(&self, principal: &Principal, workspace: Option<WorkspaceId>) -> Result<Vec<FileMeta>> {
        let filter = match workspace {
            None => SearchFilter::owner(principal.user),
            Some(w) => {
                self.session.require_role(principal, w, WorkspaceRole::Viewer).await?;
                SearchFilter::workspace(w)
            }
        };
        self.stores.files.list_files(&filter).await
    }

    /// Shares one of the caller's files into a workspace where they are at least an editor,
    /// so its members read it and chats in that workspace retrieve from it. Someone else's
    /// file is `NotFound` (even to members who can read it); a file already in a workspace
    /// is `Conflict`. The owner's other devices hear of it, and the workspace's activity log
    /// records it.
    pub async fn share(&self, principal: &Principal, id: FileId, workspace: WorkspaceId) -> Result<FileMeta> {
        let file = self.get(principal, id).await?;
        if file.owner != principal.user {
            return Err(not_found(id));
        }
        if file.workspace.is_some() {
            return Err(Error::conflict(format!("file {id} is already in a workspace")));
        }
        self.session.require_role(principal, workspace, WorkspaceRole::Editor).await?;
        // Only the workspace changes: processing that finishes meanwhile keeps its state.
        let now = crate::clock::now();
        if !self.stores.files.share_file(id, workspace, now).await? {
            return Err(Error::conflict(format!("file {id} is already in a workspace")));
        }
        let shared = self.get(principal, id).await?;
        self.session
            .workspace_activity(
                principal.user,
                workspace,
                AuditAction::Shared,
                json!({"file": id, "name": shared.name}),
            )
            .await;
        if let Err(err) = self.session.publish(principal, "file_shared", json!({ "file": shared })).await {
            tracing::warn!(error = %err, "could not publish a sync event");
        }
        Ok(shared)
    }
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files").finish_non_exhaustive()
    }
}

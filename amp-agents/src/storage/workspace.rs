//! Deleting a workspace with what lived in it.

use amp_core::{AgentVisibility, FileStatus, Result, SearchFilter, WorkspaceId, WorkspaceRole};
use serde::Serialize;

use super::Storage;
use crate::conversations::Conversations;
use crate::principal::Principal;

/// What deleting a workspace did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkspaceDeleted {
    /// Files uploaded into the workspace, deleted with their bytes, passages and vectors.
    pub files_deleted: usize,
    /// Personal files that had been shared into it, back in their owners' own files.
    pub files_returned: usize,
    /// Its conversations, deleted with their messages and cached answers.
    pub conversations_deleted: usize,
    /// Agents shared into it, private to their owners again.
    pub agents_returned: usize,
}

impl Storage {
    /// Deletes a workspace (owners only) and what lived in it: files uploaded into it go
    /// with everything made from them; personal files shared into it go back to their
    /// owners; its conversations are deleted; agents shared into it become private to their
    /// owners again; then the workspace and its memberships. Each step can be repeated, so
    /// a delete cut short (a crash, a store failure) is finished by deleting again: the
    /// workspace is the last thing to go, and until then its owner can still reach it.
    pub async fn delete_workspace(
        &self,
        principal: &Principal,
        id: WorkspaceId,
        conversations: &Conversations,
    ) -> Result<WorkspaceDeleted> {
        self.session.require_role(principal, id, WorkspaceRole::Owner).await?;
        let mut done = WorkspaceDeleted::default();
        for mut file in self.stores.files.list_files(&SearchFilter::workspace(id)).await? {
            let uploaded_here = file.blob_key.as_ref().is_some_and(|k| k.as_str().starts_with("workspaces/"));
            if uploaded_here || file.status == FileStatus::Pending {
                self.remove(&file).await?;
                done.files_deleted += 1;
            } else {
                // Search goes by the stores' file lists, so the vectors need no change.
                file.workspace = None;
                file.updated_at = crate::clock::now();
                self.stores.files.update_file(&file).await?;
                done.files_returned += 1;
            }
        }
        loop {
            let page = self.stores.conversations.list_workspace_conversations(id, None, 100).await?;
            if page.is_empty() {
                break;
            }
            for conversation in page {
                conversations.delete(principal, conversation.id).await?;
                done.conversations_deleted += 1;
            }
        }
        for mut agent in self.stores.agents.list_agents(principal.user, &[id]).await? {
            if agent.visibility == AgentVisibility::Workspace(id) {
                agent.visibility = AgentVisibility::Private;
                agent.workspaces.retain(|w| *w != id);
                agent.updated_at = crate::clock::now();
                self.stores.agents.update_agent(&agent).await?;
                done.agents_returned += 1;
            }
        }
        self.session.delete_workspace(principal, id).await?;
        Ok(done)
    }
}

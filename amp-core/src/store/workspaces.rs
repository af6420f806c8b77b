use async_trait::async_trait;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::ids::{UserId, WorkspaceId};
use crate::people::{Invitation, Membership, Workspace, WorkspaceRole};

/// Workspaces, memberships and invitations.
///
/// Promises: creating a workspace makes its creator an owner in the same step; adding a
/// member twice updates the role; members of a missing workspace are `NotFound`; deleting
/// a workspace removes its memberships and invitations; a workspace always keeps an owner:
/// a change that would leave it none is `Conflict`, however many such changes race.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Stores a new workspace and its creator's owner membership.
    async fn create_workspace(&self, workspace: Workspace) -> Result<()>;

    /// Reads one.
    async fn get_workspace(&self, id: WorkspaceId) -> Result<Option<Workspace>>;

    /// Replaces name and context; `NotFound` for a missing one.
    async fn update_workspace(&self, workspace: &Workspace) -> Result<()>;

    /// Deletes a workspace with its memberships and invitations, in one transaction that
    /// also hands files and conversations still in it back to their owners (personal
    /// again); returns whether it existed.
    async fn delete_workspace(&self, id: WorkspaceId) -> Result<bool>;

    /// Adds a member or changes their role; `Conflict` if that demotes the last owner.
    async fn upsert_member(&self, membership: Membership) -> Result<()>;

    /// Removes a member; returns whether they were one; `Conflict` for the last owner.
    async fn remove_member(&self, workspace: WorkspaceId, user: UserId) -> Result<bool>;

    /// A user's role in a workspace, if a member.
    async fn member_role(&self, workspace: WorkspaceId, user: UserId) -> Result<Option<WorkspaceRole>>;

    /// A workspace's members, earliest first.
    async fn list_members(&self, workspace: WorkspaceId) -> Result<Vec<Membership>>;

    /// The workspaces a user belongs to, with their role, by name.
    async fn list_workspaces_for(&self, user: UserId) -> Result<Vec<(Workspace, WorkspaceRole)>>;

    /// Stores an invitation, replacing one for the same workspace and email; `NotFound`
    /// for a missing workspace.
    async fn upsert_invitation(&self, invitation: Invitation) -> Result<()>;

    /// A workspace's invitations (expired ones included), oldest first.
    async fn list_invitations(&self, workspace: WorkspaceId) -> Result<Vec<Invitation>>;

    /// The invitations addressed to `email` (ignoring case), oldest first.
    async fn invitations_for(&self, email: &str) -> Result<Vec<Invitation>>;

    /// Deletes an invitation; returns whether it existed.
    async fn delete_invitation(&self, workspace: WorkspaceId, email: &str) -> Result<bool>;

    /// In one step, deletes the invitation for `email` into `workspace` and, if it had not
    /// expired at `at`, makes `user` a member with its role. `None` when there was no live
    /// invitation.
    async fn accept_invitation(
        &self,
        workspace: WorkspaceId,
        email: &str,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<Option<Membership>>;
}

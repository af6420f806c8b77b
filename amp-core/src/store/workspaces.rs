use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{UserId, WorkspaceId};
use crate::people::{Membership, Workspace, WorkspaceRole};

/// Workspaces and memberships.
///
/// Promises: creating a workspace makes its creator an owner in the same step; adding a
/// member twice updates the role; members of a missing workspace are `NotFound`; deleting
/// a workspace removes its memberships.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Stores a new workspace and its creator's owner membership.
    async fn create_workspace(&self, workspace: Workspace) -> Result<()>;

    /// Reads one.
    async fn get_workspace(&self, id: WorkspaceId) -> Result<Option<Workspace>>;

    /// Replaces name and context; `NotFound` for a missing one.
    async fn update_workspace(&self, workspace: &Workspace) -> Result<()>;

    /// Deletes a workspace and its memberships; returns whether it existed.
    async fn delete_workspace(&self, id: WorkspaceId) -> Result<bool>;

    /// Adds a member or changes their role.
    async fn upsert_member(&self, membership: Membership) -> Result<()>;

    /// Removes a member; returns whether they were one.
    async fn remove_member(&self, workspace: WorkspaceId, user: UserId) -> Result<bool>;

    /// A user's role in a workspace, if a member.
    async fn member_role(&self, workspace: WorkspaceId, user: UserId) -> Result<Option<WorkspaceRole>>;

    /// A workspace's members, earliest first.
    async fn list_members(&self, workspace: WorkspaceId) -> Result<Vec<Membership>>;

    /// The workspaces a user belongs to, with their role, by name.
    async fn list_workspaces_for(&self, user: UserId) -> Result<Vec<(Workspace, WorkspaceRole)>>;
}

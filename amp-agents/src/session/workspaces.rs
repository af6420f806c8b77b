//! Workspaces and their members. Every method checks the caller's role here, in the agent:
//! a non-member gets `NotFound` (a workspace's existence is not revealed), a member whose
//! role is too low gets `Forbidden`.

use amp_core::audit::{AuditAction, AuditEvent, AuditQuery, NewAuditEvent};
use amp_core::{Error, Invitation, Membership, Result, UserId, Workspace, WorkspaceId, WorkspaceRole};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::SessionAgent;
use crate::principal::Principal;

/// The longest workspace name accepted.
const MAX_NAME_CHARS: usize = 200;
/// Open invitations one workspace may hold.
pub const MAX_PENDING_INVITATIONS: usize = 200;

/// What [`SessionAgent::set_member`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum MemberChange {
    /// The person was not a member: they are invited and join once they accept.
    Invited {
        /// The invitation.
        invitation: Invitation,
    },
    /// An existing member's role changed.
    Updated {
        /// The membership now.
        membership: Membership,
    },
}

/// An invitation waiting for the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingInvitation {
    /// The invitation.
    #[serde(flatten)]
    pub invitation: Invitation,
    /// The workspace's name.
    pub workspace_name: String,
}

/// A workspace as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyWorkspace {
    /// The workspace.
    #[serde(flatten)]
    pub workspace: Workspace,
    /// The caller's role in it.
    pub role: WorkspaceRole,
}

fn valid_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid_input(format!("a workspace name needs 1 to {MAX_NAME_CHARS} characters")));
    }
    Ok(name.to_owned())
}

impl SessionAgent {
    /// The caller's role in `workspace`, required to be at least `needed`.
    pub async fn require_role(
        &self,
        principal: &Principal,
        workspace: WorkspaceId,
        needed: WorkspaceRole,
    ) -> Result<WorkspaceRole> {
        match self.stores.workspaces.member_role(workspace, principal.user).await? {
            None => Err(Error::not_found(format!("workspace {workspace}"))),
            Some(role) if role.allows(needed) => Ok(role),
            Some(_) => Err(Error::forbidden(
                format!("this needs the {needed:?} role in the workspace").to_lowercase(),
            )),
        }
    }

    /// Whether the caller is a member of `workspace` (any role reads). Store failures are
    /// errors, never a quiet "no".
    pub async fn is_member(&self, principal: &Principal, workspace: WorkspaceId) -> Result<bool> {
        Ok(self.stores.workspaces.member_role(workspace, principal.user).await?.is_some())
    }

    /// Creates a workspace; the caller becomes its owner.
    pub async fn create_workspace(
        &self,
        principal: &Principal,
        name: &str,
        context: Option<String>,
    ) -> Result<Workspace> {
        let workspace = Workspace {
            id: WorkspaceId::new(),
            name: valid_name(name)?,
            context,
            created_by: principal.user,
            created_at: crate::clock::now(),
        };
        self.stores.workspaces.create_workspace(workspace.clone()).await?;
        self.workspace_activity(
            principal.user,
            workspace.id,
            AuditAction::MemberChanged,
            json!({"created": true, "role": "owner"}),
        )
        .await;
        Ok(workspace)
    }

    /// The workspaces the caller belongs to, with their role.
    pub async fn my_workspaces(&self, principal: &Principal) -> Result<Vec<MyWorkspace>> {
        let all = self.stores.workspaces.list_workspaces_for(principal.user).await?;
        Ok(all.into_iter().map(|(workspace, role)| MyWorkspace { workspace, role }).collect())
    }

    /// One workspace, for any member.
    pub async fn workspace(&self, principal: &Principal, id: WorkspaceId) -> Result<MyWorkspace> {
        let role = self.require_role(principal, id, WorkspaceRole::Viewer).await?;
        let workspace = self
            .stores
            .workspaces
            .get_workspace(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("workspace {id}")))?;
        Ok(MyWorkspace { workspace, role })
    }

    /// Renames a workspace or changes its context (owners only).
    pub async fn update_workspace(
        &self,
        principal: &Principal,
        id: WorkspaceId,
        name: Option<String>,
        context: Option<String>,
    ) -> Result<Workspace> {
        self.require_role(principal, id, WorkspaceRole::Owner).await?;
        let mut workspace = self
            .stores
            .workspaces
            .get_workspace(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("workspace {id}")))?;
        if let Some(name) = name {
            workspace.name = valid_name(&name)?;
        }
        if let Some(context) = context {
            workspace.context = Some(context).filter(|c| !c.trim().is_empty());
        }
        self.stores.workspaces.update_workspace(&workspace).await?;
        Ok(workspace)
    }

    /// Deletes a workspace and its memberships (owners only).
    pub async fn delete_workspace(&self, principal: &Principal, id: WorkspaceId) -> Result<()> {
        self.require_role(principal, id, WorkspaceRole::Owner).await?;
        self.stores.workspaces.delete_workspace(id).await?;
        self.workspace_activity(principal.user, id, AuditAction::Deleted, json!({"workspace": id})).await;
        Ok(())
    }

    /// Invites someone by email, or changes an existing member's role (owners only).
    ///
    /// Nobody is placed in a workspace without consent: a person who is not a member yet
    /// gets an invitation that takes effect when they accept it
    /// ([`SessionAgent::accept_invitation`]), from an account whose email is verified to be
    /// that address. Whether an account exists for the address is not revealed.
    pub async fn set_member(
        &self,
        principal: &Principal,
        id: WorkspaceId,
        email: &str,
        role: WorkspaceRole,
    ) -> Result<MemberChange> {
        self.require_role(principal, id, WorkspaceRole::Owner).await?;
        let email = super::accounts::valid_email(email)?.to_lowercase();
        let account = self.stores.users.find_user_by_email(&email).await?;
        let member = match &account {
            Some(user) => self.stores.workspaces.member_role(id, user.id).await?.map(|_| user),
            None => None,
        };
        if let Some(user) = member {
            if user.id == principal.user && role != WorkspaceRole::Owner {
                self.ensure_another_owner(id, user.id).await?;
            }
            let membership = Membership { workspace: id, user: user.id, role, added_at: crate::clock::now() };
            self.stores.workspaces.upsert_member(membership.clone()).await?;
            self.workspace_activity(
                principal.user,
                id,
                AuditAction::MemberChanged,
                json!({"user": user.id, "role": role}),
            )
            .await;
            return Ok(MemberChange::Updated { membership });
        }
        let pending = self.stores.workspaces.list_invitations(id).await?;
        let now = crate::clock::now();
        let live = pending.iter().filter(|i| i.expires_at > now && i.email != email).count();
        if live >= MAX_PENDING_INVITATIONS {
            return Err(Error::conflict(format!(
                "a workspace holds at most {MAX_PENDING_INVITATIONS} open invitations; withdraw some first"
            )));
        }
        let invitation = Invitation {
            workspace: id,
            email: email.clone(),
            role,
            invited_by: principal.user,
            created_at: now,
            expires_at: now + super::accounts::secs(self.config.invitation_ttl_secs),
        };
        self.stores.workspaces.upsert_invitation(invitation.clone()).await?;
        self.workspace_activity(
            principal.user,
            id,
            AuditAction::Invited,
            json!({"email": email, "role": role}),
        )
        .await;
        // Tell the invitee's devices, if the address is theirs for certain.
        if let Some(user) = account
            && user.email_verified
            && let Err(err) =
                self.publish_to(user.id, None, "invitation", json!({"workspace": id, "role": role})).await
        {
            tracing::warn!(error = %err, "telling an invitee's devices failed");
        }
        Ok(MemberChange::Invited { invitation })
    }

    /// The workspace's open invitations (owners only).
    pub async fn invitations(&self, principal: &Principal, id: WorkspaceId) -> Result<Vec<Invitation>> {
        self.require_role(principal, id, WorkspaceRole::Owner).await?;
        let now = crate::clock::now();
        Ok(self
            .stores
            .workspaces
            .list_invitations(id)
            .await?
            .into_iter()
            .filter(|i| i.expires_at > now)
            .collect())
    }

    /// Withdraws an invitation (owners only); `NotFound` if there was none.
    pub async fn withdraw_invitation(
        &self,
        principal: &Principal,
        id: WorkspaceId,
        email: &str,
    ) -> Result<()> {
        self.require_role(principal, id, WorkspaceRole::Owner).await?;
        if !self.stores.workspaces.delete_invitation(id, email).await? {
            return Err(Error::not_found(format!("invitation for {}", email.trim())));
        }
        self.workspace_activity(
            principal.user,
            id,
            AuditAction::InvitationAnswered,
            json!({"email": email.trim().to_lowercase(), "answer": "withdrawn"}),
        )
        .await;
        Ok(())
    }

    /// The invitations waiting for the caller, with the workspaces' names. Empty until the
    /// caller's email is verified: an invitation names an address, not an account.
    pub async fn my_invitations(&self, principal: &Principal) -> Result<Vec<PendingInvitation>> {
        let me = self.me(principal).await?;
        if !me.email_verified {
            return Ok(Vec::new());
        }
        let now = crate::clock::now();
        let mut out = Vec::new();
        for invitation in self.stores.workspaces.invitations_for(&me.email).await? {
            if invitation.expires_at <= now {
                continue;
            }
            if let Some(workspace) = self.stores.workspaces.get_workspace(invitation.workspace).await? {
                out.push(PendingInvitation { workspace_name: workspace.name, invitation });
            }
        }
        Ok(out)
    }

    /// Accepts an invitation into `id`: the caller becomes a member with its role. Needs a
    /// verified email (`Forbidden` otherwise); `NotFound` when no open invitation names it.
    pub async fn accept_invitation(&self, principal: &Principal, id: WorkspaceId) -> Result<Membership> {
        let email = self.verified_email(principal).await?;
        let membership = self
            .stores
            .workspaces
            .accept_invitation(id, &email, principal.user, crate::clock::now())
            .await?
            .ok_or_else(|| Error::not_found(format!("invitation to workspace {id}")))?;
        self.workspace_activity(
            principal.user,
            id,
            AuditAction::InvitationAnswered,
            json!({"user": principal.user, "role": membership.role, "answer": "accepted"}),
        )
        .await;
        Ok(membership)
    }

    /// Declines an invitation into `id`; `NotFound` when none names the caller.
    pub async fn decline_invitation(&self, principal: &Principal, id: WorkspaceId) -> Result<()> {
        let email = self.verified_email(principal).await?;
        if !self.stores.workspaces.delete_invitation(id, &email).await? {
            return Err(Error::not_found(format!("invitation to workspace {id}")));
        }
        self.workspace_activity(
            principal.user,
            id,
            AuditAction::InvitationAnswered,
            json!({"user": principal.user, "answer": "declined"}),
        )
        .await;
        Ok(())
    }

    async fn verified_email(&self, principal: &Principal) -> Result<String> {
        let me = self.me(principal).await?;
        if !me.email_verified {
            return Err(Error::forbidden("verify your email address first: invitations name an address"));
        }
        Ok(me.email.to_lowercase())
    }

    /// Removes a member (owners only; members may also leave on their own). The last owner
    /// cannot leave or be removed: delete the workspace instead.
    pub async fn remove_member(&self, principal: &Principal, id: WorkspaceId, user: UserId) -> Result<()> {
        let needed = if user == principal.user { WorkspaceRole::Viewer } else { WorkspaceRole::Owner };
        self.require_role(principal, id, needed).await?;
        if self.stores.workspaces.member_role(id, user).await? == Some(WorkspaceRole::Owner) {
            self.ensure_another_owner(id, user).await?;
        }
        if !self.stores.workspaces.remove_member(id, user).await? {
            return Err(Error::not_found(format!("member {user}")));
        }
        self.workspace_activity(principal.user, id, AuditAction::MemberRemoved, json!({"user": user})).await;
        Ok(())
    }

    async fn ensure_another_owner(&self, id: WorkspaceId, leaving: UserId) -> Result<()> {
        let members = self.stores.workspaces.list_members(id).await?;
        if members.iter().any(|m| m.role == WorkspaceRole::Owner && m.user != leaving) {
            Ok(())
        } else {
            Err(Error::conflict("a workspace needs an owner: make someone else owner first, or delete it"))
        }
    }

    /// The members, for any member.
    pub async fn members(&self, principal: &Principal, id: WorkspaceId) -> Result<Vec<Membership>> {
        self.require_role(principal, id, WorkspaceRole::Viewer).await?;
        self.stores.workspaces.list_members(id).await
    }

    /// The workspace's activity log, newest first, for any member.
    pub async fn workspace_activity_log(
        &self,
        principal: &Principal,
        id: WorkspaceId,
        limit: u32,
    ) -> Result<Vec<AuditEvent>> {
        self.require_role(principal, id, WorkspaceRole::Viewer).await?;
        let query = AuditQuery { workspace: Some(id), limit: limit.clamp(1, 500), ..AuditQuery::default() };
        self.stores.audit.query(&query).await
    }

    /// Appends to the workspace's activity log; a failure is logged, not returned, since
    /// the change it records has already happened.
    pub(crate) async fn workspace_activity(
        &self,
        actor: UserId,
        workspace: WorkspaceId,
        action: AuditAction,
        detail: serde_json::Value,
    ) {
        let event = NewAuditEvent {
            actor: Some(actor),
            action,
            target: format!("workspace:{workspace}"),
            workspace: Some(workspace),
            success: true,
            client_addr: None,
            detail,
        };
        if let Err(err) = self.stores.audit.append(event).await {
            tracing::error!(error = %err, ?action, "writing the workspace activity log failed");
        }
    }
}

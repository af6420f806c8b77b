//! Users, workspaces and roles, device sessions, preferences and agent configurations.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, DataSourceId, DeviceId, FileId, ModelId, SessionId, UserId, WorkspaceId};

/// A person with an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Login email, unique (compared case-insensitively).
    pub email: String,
    /// The name shown to others.
    pub display_name: String,
    /// Their preferences.
    pub preferences: Preferences,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// Whether `email` is proven to be theirs: confirmed through a verification link,
    /// vouched for by the single sign-on provider, or set by the administrator who made the
    /// account. Privileges granted by email (administrator rights in `auth.admins`,
    /// data-source access lists, workspace invitations) apply only when it is.
    pub email_verified: bool,
    /// Whether the account may be used.
    pub status: AccountStatus,
    /// Whether they administer this installation: the first account, or one another
    /// administrator promoted. (People named in `auth.admins` are administrators too, once
    /// their email is verified.)
    pub admin: bool,
}

impl User {
    /// Whether the account may sign in and act.
    pub fn is_active(&self) -> bool {
        self.status == AccountStatus::Active
    }
}

/// Whether an account may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Signs in and acts.
    Active,
    /// Registered itself and waits for an administrator's approval; cannot sign in.
    Pending,
    /// Turned off by an administrator; nothing it holds works.
    Disabled,
}

impl AccountStatus {
    /// The name stored and shown (`active`, `pending`, `disabled`).
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Pending => "pending",
            AccountStatus::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for AccountStatus {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "active" => Ok(AccountStatus::Active),
            "pending" => Ok(AccountStatus::Pending),
            "disabled" => Ok(AccountStatus::Disabled),
            other => Err(crate::Error::invalid_input(format!(
                "unknown account status `{other}` (active, pending, disabled)"
            ))),
        }
    }
}

/// A person's settings, synced to all their devices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The model to use when a chat names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<ModelId>,
    /// The agent to use when a chat names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_agent: Option<AgentId>,
    /// UI theme (`light`, `dark`, `system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    /// Preferred answer language (BCP 47 tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Free-text guidance added to every prompt ("answer briefly").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// A member's role in a workspace. Roles are ordered: an owner can do all an editor can,
/// an editor all a viewer can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceRole {
    /// Reads files and conversations.
    Viewer,
    /// Also adds files and chats.
    Editor,
    /// Also manages members and the workspace itself.
    Owner,
}

impl WorkspaceRole {
    /// Whether this role grants at least what `needed` grants.
    pub fn allows(self, needed: WorkspaceRole) -> bool {
        self >= needed
    }
}

/// A shared workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Its id.
    pub id: WorkspaceId,
    /// Its name.
    pub name: String,
    /// Context added to every chat inside it.
    pub context: Option<String>,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A user's membership in a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The member.
    pub user: UserId,
    /// Their role.
    pub role: WorkspaceRole,
    /// Since when.
    pub added_at: DateTime<Utc>,
}

/// An invitation into a workspace, waiting for the invitee to accept it. It names an email
/// address and is honoured only for an account whose email is verified to be that address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The invitee's address, lower-cased.
    pub email: String,
    /// The role they get on accepting.
    pub role: WorkspaceRole,
    /// Who invited them.
    pub invited_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it lapses unanswered.
    pub expires_at: DateTime<Utc>,
}

/// One signed-in device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSession {
    /// The session id.
    pub id: SessionId,
    /// Whose.
    pub user: UserId,
    /// Which device.
    pub device: DeviceId,
    /// A label the person recognizes (`Firefox on Linux`).
    pub device_name: String,
    /// When it signed in.
    pub created_at: DateTime<Utc>,
    /// When it was last used (for the idle timeout).
    pub last_seen_at: DateTime<Utc>,
    /// When it ends regardless of use (absolute lifetime).
    pub expires_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The credential that opened it without a password (`POST /session/create`), if one
    /// did; revoking that credential ends this session too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_by: Option<CredentialId>,
}

/// A credential by kind and id: what minted a session or an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum CredentialId {
    /// A device session.
    Session(SessionId),
    /// An API key.
    ApiKey(crate::ids::ApiKeyId),
}

impl std::fmt::Display for CredentialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialId::Session(id) => write!(f, "session:{id}"),
            CredentialId::ApiKey(id) => write!(f, "api_key:{id}"),
        }
    }
}

impl std::str::FromStr for CredentialId {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s.split_once(':') {
            Some(("session", id)) => Ok(CredentialId::Session(id.parse()?)),
            Some(("api_key", id)) => Ok(CredentialId::ApiKey(id.parse()?)),
            _ => Err(crate::Error::invalid_input(format!("`{s}` names no credential"))),
        }
    }
}

impl DeviceSession {
    /// Whether the session may still be used at `now` with the given idle timeout.
    pub fn is_live(&self, now: DateTime<Utc>, idle_timeout: chrono::Duration) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && now - self.last_seen_at < idle_timeout
    }
}

/// Who may see and use a configured agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", content = "workspace", rename_all = "snake_case")]
pub enum AgentVisibility {
    /// Only its owner.
    Private,
    /// Every member of a workspace.
    Workspace(WorkspaceId),
}

/// An agent's own retrieval settings, over the deployment's `context.retrieval`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRetrieval {
    /// `vector`, `keyword` or `hybrid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::config::RetrievalMode>,
    /// The vector retriever's weight in hybrid fusion (0 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_weight: Option<f32>,
    /// The keyword retriever's weight in hybrid fusion (0 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword_weight: Option<f32>,
}

impl AgentRetrieval {
    /// The deployment's settings with these over them.
    pub fn over(&self, deployment: &crate::config::RetrievalConfig) -> crate::config::RetrievalConfig {
        crate::config::RetrievalConfig {
            mode: self.mode.unwrap_or(deployment.mode),
            vector_weight: self.vector_weight.unwrap_or(deployment.vector_weight),
            keyword_weight: self.keyword_weight.unwrap_or(deployment.keyword_weight),
            ..deployment.clone()
        }
    }
}

/// A user-defined agent: instructions, model choice, sampling and readable sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// Its id.
    pub id: AgentId,
    /// Who created it.
    pub owner: UserId,
    /// Its name, shown in pickers.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The system instructions it adds to every chat.
    pub instructions: String,
    /// Its model; `None` uses the caller's or the server's default.
    pub model: Option<ModelId>,
    /// Models to fall back to, in order.
    pub fallbacks: Vec<ModelId>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Answer length limit.
    pub max_tokens: Option<u32>,
    /// Files it may read.
    pub files: Vec<FileId>,
    /// Workspaces whose files it may read.
    pub workspaces: Vec<WorkspaceId>,
    /// Data sources it may query.
    pub data_sources: Vec<DataSourceId>,
    /// Who may use it.
    pub visibility: AgentVisibility,
    /// How its turns find passages; what it leaves unset follows the deployment.
    #[serde(default)]
    pub retrieval: AgentRetrieval,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_what_they_allow() {
        assert!(WorkspaceRole::Owner.allows(WorkspaceRole::Editor));
        assert!(WorkspaceRole::Editor.allows(WorkspaceRole::Viewer));
        assert!(!WorkspaceRole::Viewer.allows(WorkspaceRole::Editor));
    }

    #[test]
    fn session_liveness_honours_revocation_idle_and_absolute_limits() {
        let now = Utc::now();
        let mut s = DeviceSession {
            id: SessionId::new(),
            user: UserId::new(),
            device: DeviceId::new(),
            device_name: "laptop".into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + chrono::Duration::hours(8),
            revoked_at: None,
            minted_by: None,
        };
        let idle = chrono::Duration::minutes(30);
        assert!(s.is_live(now, idle));
        assert!(!s.is_live(now + chrono::Duration::minutes(31), idle));
        assert!(!s.is_live(now + chrono::Duration::hours(9), chrono::Duration::days(1)));
        s.revoked_at = Some(now);
        assert!(!s.is_live(now, idle));
    }
}

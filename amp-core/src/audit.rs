//! The append-only audit log's records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{UserId, WorkspaceId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A successful sign-in.
    Login,
    /// A refused sign-in.
    LoginFailed,
    /// A sign-out.
    Logout,
    /// A session, token family or API key was revoked.
    TokenRevoked,
    /// An already-used refresh token was presented again.
    TokenReuseDetected,
    /// An API key was created.
    ApiKeyCreated,
    /// A member joined a workspace or changed role.
    MemberChanged,
    /// A member left or was removed.
    MemberRemoved,
    /// Something was deleted (file, conversation, workspace, agent).
    Deleted,
    /// A data source was read.
    DataSourceRead,
    /// An administrator changed server-wide settings (the model registry, routing).
    ConfigChanged,
    /// A file or conversation was shared into a workspace.
    Shared,
    /// A file was uploaded (into a workspace, for its activity log).
    Uploaded,
    /// An upload was found infected by the virus scanner; its bytes were deleted.
    Infected,
    /// An account was made (self-registered, by an administrator, or at a first single
    /// sign-on).
    AccountCreated,
    /// An administrator approved a pending account.
    AccountApproved,
    /// An administrator disabled an account.
    AccountDisabled,
    /// An administrator re-enabled an account.
    AccountEnabled,
    /// An administrator granted or withdrew administrator rights.
    AdminChanged,
    /// An administrator ended every session of an account.
    SessionsReset,
    /// An administrator read the audit log.
    AuditRead,
    /// A verification link was sent for an email address.
    EmailVerificationSent,
    /// An email address was verified.
    EmailVerified,
    /// Someone was invited into a workspace (they join once they accept).
    Invited,
    /// An invitation was accepted, declined or withdrawn.
    InvitationAnswered,
    /// A single sign-on identity was linked to an existing account.
    IdentityLinked,
}

/// An audit record to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEvent {
    /// Who acted; `None` for anonymous attempts.
    pub actor: Option<UserId>,
    /// What happened.
    pub action: AuditAction,
    /// What it happened to (`file:…`, `user:…`).
    pub target: String,
    /// The workspace involved, if any.
    pub workspace: Option<WorkspaceId>,
    /// Whether it succeeded.
    pub success: bool,
    /// The client's address, if known.
    pub client_addr: Option<String>,
    /// More detail; never secrets.
    pub detail: serde_json::Value,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the log: strictly increasing in append order.
    pub seq: u64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// The record.
    #[serde(flatten)]
    pub event: NewAuditEvent,
}

/// Which audit records to read. All set fields must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only this actor's.
    pub actor: Option<UserId>,
    /// Only this workspace's.
    pub workspace: Option<WorkspaceId>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only records with `seq` below this (for paging backwards).
    pub before_seq: Option<u64>,
    /// Only records appended at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only records appended before this.
    pub until: Option<DateTime<Utc>>,
    /// At most this many, newest first.
    pub limit: u32,
}

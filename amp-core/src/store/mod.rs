//! Persistence traits, one per aggregate, and [`Stores`], the bundle agents receive.
//!
//! Every store is implemented on SQLite (the embedded default) and PostgreSQL, and both
//! pass the same conformance kits. Stores keep data consistent (cascading deletes,
//! uniqueness); who may do what is decided by the agents above them.

mod agents;
mod audit;
mod conversations;
mod files;
mod sessions;
mod users;
mod workspaces;

use std::sync::Arc;

pub use agents::AgentStore;
pub use audit::AuditLog;
pub use conversations::ConversationStore;
pub use files::FileStore;
pub use sessions::{RefreshToken, RefreshTokenUse, SessionStore};
pub use users::{
    ApiKeyRecord, ApiKeyScope, CredentialStore, EmailToken, ExternalIdentity, NewUser, UserQuery, UserStore,
};
pub use workspaces::WorkspaceStore;

/// Every store, as the agents hold them. One backend usually implements them all on one
/// connection pool; the fields may still point at different backends.
#[derive(Clone)]
pub struct Stores {
    /// Accounts and preferences.
    pub users: Arc<dyn UserStore>,
    /// Password hashes, external identities and API keys.
    pub credentials: Arc<dyn CredentialStore>,
    /// Device sessions and refresh tokens.
    pub sessions: Arc<dyn SessionStore>,
    /// Conversations and messages.
    pub conversations: Arc<dyn ConversationStore>,
    /// File metadata and chunks.
    pub files: Arc<dyn FileStore>,
    /// Workspaces and memberships.
    pub workspaces: Arc<dyn WorkspaceStore>,
    /// User-defined agents.
    pub agents: Arc<dyn AgentStore>,
    /// The audit log.
    pub audit: Arc<dyn AuditLog>,
}

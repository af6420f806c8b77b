use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{ApiKeyId, UserId};
use crate::people::{Preferences, User};

/// An account to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Login email.
    pub email: String,
    /// Name shown to others.
    pub display_name: String,
}

/// A login at an external OpenID Connect provider, linked to a local user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExternalIdentity {
    /// The provider's `iss`.
    pub issuer: String,
    /// The user's `sub` at that provider.
    pub subject: String,
}

/// A stored API key. Only its hash is kept; the key itself is shown once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: ApiKeyId,
    /// Whose key it is.
    pub user: UserId,
    /// A label chosen by the user.
    pub name: String,
    /// The first characters of the key, so people can tell keys apart.
    pub prefix: String,
    /// Hash of the whole key (looked up on every request).
    pub hash: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Accounts.
///
/// Promises: emails are unique compared case-insensitively (`Conflict` otherwise) and are
/// found case-insensitively; updates of a missing user are `NotFound`.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates an account with default preferences.
    async fn create_user(&self, new: NewUser) -> Result<User>;

    /// Reads an account.
    async fn get_user(&self, id: UserId) -> Result<Option<User>>;

    /// Finds an account by email, ignoring case.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>>;

    /// Replaces a user's preferences; returns the updated user.
    async fn update_preferences(&self, id: UserId, preferences: Preferences) -> Result<User>;

    /// Enables or disables an account.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()>;
}

/// Credentials: password hashes, external identities and API keys.
///
/// Promises: one password hash per user (setting replaces it); an identity links to one
/// user only (`Conflict` when linked to another); API-key hashes are unique.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Sets a user's password hash (PHC string); `NotFound` for a missing user.
    async fn set_password_hash(&self, user: UserId, hash: &str) -> Result<()>;

    /// A user's password hash, if they have a password.
    async fn password_hash(&self, user: UserId) -> Result<Option<String>>;

    /// Links an external identity to a user.
    async fn link_identity(&self, user: UserId, identity: &ExternalIdentity) -> Result<()>;

    /// The user an external identity is linked to.
    async fn find_user_by_identity(&self, identity: &ExternalIdentity) -> Result<Option<UserId>>;

    /// Stores a new API key.
    async fn insert_api_key(&self, key: ApiKeyRecord) -> Result<()>;

    /// Finds a key by its hash (revoked keys included; the caller checks).
    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKeyRecord>>;

    /// A user's keys, oldest first.
    async fn list_api_keys(&self, user: UserId) -> Result<Vec<ApiKeyRecord>>;

    /// Revokes one of `user`'s keys; `NotFound` if the key is not theirs.
    async fn revoke_api_key(&self, user: UserId, id: ApiKeyId, at: DateTime<Utc>) -> Result<()>;
}

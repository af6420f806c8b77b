use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{ApiKeyId, UserId};
use crate::people::{AccountStatus, Preferences, User};

/// An account to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Login email.
    pub email: String,
    /// Name shown to others.
    pub display_name: String,
    /// Whether the email is already proven (see [`User::email_verified`]).
    pub email_verified: bool,
    /// Its status; ignored when this account claims the installation.
    pub status: AccountStatus,
    /// Whether this account claims the installation if no account has yet: the claim is
    /// taken at most once per store, atomically with the insert, and the account that takes
    /// it is stored as an active administrator.
    pub claims_installation: bool,
}

impl NewUser {
    /// An active account with an unverified email that claims nothing.
    pub fn active(email: impl Into<String>, display_name: impl Into<String>) -> Self {
        NewUser {
            email: email.into(),
            display_name: display_name.into(),
            email_verified: false,
            status: AccountStatus::Active,
            claims_installation: false,
        }
    }
}

/// Which accounts [`UserStore::list_users`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserQuery {
    /// Only accounts in this status.
    pub status: Option<AccountStatus>,
    /// Only accounts made after this one (for paging; ids grow with creation time).
    pub after: Option<UserId>,
    /// At most this many, oldest first.
    pub limit: u32,
}

/// An email-verification link's token, stored hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailToken {
    /// Hash of the token in the link.
    pub hash: String,
    /// Whose address it proves.
    pub user: UserId,
    /// The address it was sent to; it proves nothing once the account's email changed.
    pub email: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A login at an external OpenID Connect provider, linked to a local user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExternalIdentity {
    /// The provider's `iss`.
    pub issuer: String,
    /// The user's `sub` at that provider.
    pub subject: String,
}

/// What an API key may do beyond acting for its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// Open device sessions (`POST /session/create`).
    Sessions,
    /// Create API keys (with at most its own scopes).
    Keys,
}

impl ApiKeyScope {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyScope::Sessions => "sessions",
            ApiKeyScope::Keys => "keys",
        }
    }
}

impl std::str::FromStr for ApiKeyScope {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sessions" => Ok(ApiKeyScope::Sessions),
            "keys" => Ok(ApiKeyScope::Keys),
            other => {
                Err(crate::Error::invalid_input(format!("unknown API key scope `{other}` (sessions, keys)")))
            }
        }
    }
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
    /// What it may do beyond acting for its owner; none by default.
    #[serde(default)]
    pub scopes: Vec<ApiKeyScope>,
    /// The credential it was made with; revoking that credential revokes this key too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_by: Option<crate::people::CredentialId>,
    /// Model tokens this key may spend per day, when its owner set a budget lower than the
    /// per-key quota (`quotas.tokens_per_day`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_token_budget: Option<u64>,
}

/// Accounts.
///
/// Promises: emails are unique compared case-insensitively (`Conflict` otherwise) and are
/// found case-insensitively; updates of a missing user are `NotFound`; of all accounts
/// created with `claims_installation`, at most one (the first) becomes an administrator.
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

    /// Sets an account's status.
    async fn set_status(&self, id: UserId, status: AccountStatus) -> Result<()>;

    /// Grants or withdraws administrator rights.
    async fn set_admin(&self, id: UserId, admin: bool) -> Result<()>;

    /// Marks the account's email verified if it still is `email` (ignoring case); returns
    /// whether it did.
    async fn mark_email_verified(&self, id: UserId, email: &str) -> Result<bool>;

    /// Accounts, oldest first, a page at a time.
    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>>;
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

    /// Revokes every key of `user`; returns how many were live.
    async fn revoke_api_keys_of(&self, user: UserId, at: DateTime<Utc>) -> Result<u64>;

    /// Stores an email-verification token (replacing the user's earlier ones).
    async fn insert_email_token(&self, token: EmailToken) -> Result<()>;

    /// Uses an email-verification token: deletes it and returns it if it exists and has not
    /// expired at `now`. Each token works once.
    async fn take_email_token(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<EmailToken>>;

    /// Records the single-use `id` of `kind` until `expires_at`. Returns `false`, recording
    /// nothing, when the same id is already recorded and has not expired at `now`: what a
    /// replay cache needs. Expired ids of every kind are forgotten on the way.
    async fn claim_once(
        &self,
        kind: &str,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Removes a recorded id; returns whether it was recorded and not expired at `now`. Each
    /// id is taken once.
    async fn take_once(&self, kind: &str, id: &str, now: DateTime<Utc>) -> Result<bool>;
}

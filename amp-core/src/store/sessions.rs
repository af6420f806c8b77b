use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{SessionId, TokenFamilyId, UserId};
use crate::people::DeviceSession;

/// A refresh token as stored (by hash). Each use rotates it: the used token is marked and a
/// new one of the same family is issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    /// Hash of the opaque token.
    pub hash: String,
    /// The family: every token descending from one login.
    pub family: TokenFamilyId,
    /// The session it refreshes.
    pub session: SessionId,
    /// Whose.
    pub user: UserId,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was used, if it was.
    pub used_at: Option<DateTime<Utc>>,
    /// When its family was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefreshTokenUse {
    /// First use: it is now marked used.
    Fresh(RefreshToken),
    /// It had been used before: a replay, so the caller revokes the family.
    Replayed(RefreshToken),
    /// No such token.
    Unknown,
}

/// Device sessions and refresh tokens.
///
/// Promises: marking a refresh token used is atomic, so of two concurrent uses exactly one
/// is `Fresh`; revoking a family marks every token in it.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, session: DeviceSession) -> Result<()>;

    /// Reads a session (revoked and expired ones included; the caller checks).
    async fn get_session(&self, id: SessionId) -> Result<Option<DeviceSession>>;

    /// Records use of a session; `NotFound` for a missing one.
    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<()>;

    /// Revokes a session; returns whether it was live before.
    async fn revoke_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<bool>;

    /// A user's sessions that are not revoked, oldest first.
    async fn list_sessions(&self, user: UserId) -> Result<Vec<DeviceSession>>;

    /// Stores a refresh token.
    async fn insert_refresh_token(&self, token: RefreshToken) -> Result<()>;

    /// Presents a refresh token: atomically marks it used if it was not.
    async fn use_refresh_token(&self, hash: &str, at: DateTime<Utc>) -> Result<RefreshTokenUse>;

    /// Revokes every token of a family; returns how many were newly revoked.
    async fn revoke_token_family(&self, family: TokenFamilyId, at: DateTime<Utc>) -> Result<u64>;
}

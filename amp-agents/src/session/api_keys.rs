//! API keys for programmatic use: shown once, stored hashed, scoped to one user, revocable.

use amp_core::audit::AuditAction;
use amp_core::store::ApiKeyRecord;
use amp_core::{ApiKeyId, Error, Result};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{SessionAgent, secrets};
use crate::principal::{AuthMethod, Principal};

/// Every API key starts with this, which is how a bearer credential is told apart from a JWT.
pub(crate) const API_KEY_PREFIX: &str = "amp_";

/// A key as returned once at creation: the only time its secret is visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    /// The full key; store it now, it cannot be shown again.
    pub key: String,
    /// The stored record (hash, prefix, name).
    pub record: ApiKeyRecord,
}

impl SessionAgent {
    /// Creates an API key for the caller.
    pub async fn create_api_key(&self, principal: &Principal, name: &str) -> Result<NewApiKey> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(Error::invalid_input("an API key needs a name of 1 to 100 characters"));
        }
        let key = secrets::new_token(API_KEY_PREFIX)?;
        let record = ApiKeyRecord {
            id: ApiKeyId::new(),
            user: principal.user,
            name: name.to_owned(),
            prefix: key.chars().take(12).collect(),
            hash: secrets::hash_token(&key),
            created_at: crate::clock::now(),
            revoked_at: None,
        };
        self.stores.credentials.insert_api_key(record.clone()).await?;
        self.audit(
            Some(principal.user),
            AuditAction::ApiKeyCreated,
            &format!("api_key:{}", record.id),
            true,
            &None,
        )
        .await;
        Ok(NewApiKey { key, record })
    }

    /// The caller's keys (hashes included, secrets never).
    pub async fn list_api_keys(&self, principal: &Principal) -> Result<Vec<ApiKeyRecord>> {
        self.stores.credentials.list_api_keys(principal.user).await
    }

    /// Revokes one of the caller's keys; another person's key is `NotFound`. The key stops
    /// working at once, in every process sharing the cache.
    pub async fn revoke_api_key(&self, principal: &Principal, id: ApiKeyId) -> Result<()> {
        let hash = self.list_api_keys(principal).await?.into_iter().find(|k| k.id == id).map(|k| k.hash);
        self.stores.credentials.revoke_api_key(principal.user, id, crate::clock::now()).await?;
        if let (Some(cache), Some(hash)) = (&self.cache, hash)
            && let Err(err) = cache.delete(&cache_key(&hash)).await
        {
            // The entry would outlive the revocation by up to its TTL: say so loudly.
            tracing::error!(error = %err, "dropping a revoked API key from the cache failed");
        }
        self.audit(Some(principal.user), AuditAction::TokenRevoked, &format!("api_key:{id}"), true, &None)
            .await;
        Ok(())
    }

    /// Programmatic clients send a key with every request, so a valid key is remembered in
    /// the cache for [`API_KEY_CACHE_TTL`] (by its hash, never the key itself); revoking
    /// removes it at once.
    pub(crate) async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        let hash = secrets::hash_token(key);
        if let Some(cache) = &self.cache
            && let Ok(Some(hit)) = cache.get(&cache_key(&hash)).await
            && let Some(principal) = decode(&hit)
        {
            return Ok(principal);
        }
        let record = self.stores.credentials.find_api_key(&hash).await?;
        let r = match record {
            Some(r) if r.revoked_at.is_none() => r,
            _ => return Err(Error::unauthenticated("invalid API key")),
        };
        let user = self.stores.users.get_user(r.user).await?;
        if user.is_none_or(|u| u.disabled) {
            return Err(Error::unauthenticated("invalid API key"));
        }
        let principal = Principal { user: r.user, method: AuthMethod::ApiKey(r.id) };
        if let Some(cache) = &self.cache {
            let value = Bytes::from(format!("{} {}", r.user, r.id));
            if let Err(err) = cache.set(&cache_key(&hash), value, Some(API_KEY_CACHE_TTL)).await {
                tracing::warn!(error = %err, "caching an API key failed");
            }
        }
        Ok(principal)
    }
}

/// How long a checked API key is trusted without asking the store again. A revocation
/// through this agent takes effect at once; an account disabled in the store, within
/// this time.
pub const API_KEY_CACHE_TTL: Duration = Duration::from_secs(60);

fn cache_key(hash: &str) -> String {
    format!("auth:api_key:{hash}")
}

fn decode(value: &[u8]) -> Option<Principal> {
    let text = std::str::from_utf8(value).ok()?;
    let (user, key) = text.split_once(' ')?;
    Some(Principal { user: user.parse().ok()?, method: AuthMethod::ApiKey(key.parse().ok()?) })
}

//! API keys for programmatic use: shown once, stored hashed, scoped to one user, revocable.

use amp_core::audit::AuditAction;
use amp_core::store::ApiKeyRecord;
use amp_core::{ApiKeyId, Error, Result};
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

    /// Revokes one of the caller's keys; another person's key is `NotFound`.
    pub async fn revoke_api_key(&self, principal: &Principal, id: ApiKeyId) -> Result<()> {
        self.stores.credentials.revoke_api_key(principal.user, id, crate::clock::now()).await?;
        self.audit(Some(principal.user), AuditAction::TokenRevoked, &format!("api_key:{id}"), true, &None)
            .await;
        Ok(())
    }

    pub(crate) async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        let record = self.stores.credentials.find_api_key(&secrets::hash_token(key)).await?;
        match record {
            Some(r) if r.revoked_at.is_none() => {
                let user = self.stores.users.get_user(r.user).await?;
                if user.is_none_or(|u| u.disabled) {
                    return Err(Error::unauthenticated("invalid API key"));
                }
                Ok(Principal { user: r.user, method: AuthMethod::ApiKey(r.id) })
            }
            _ => Err(Error::unauthenticated("invalid API key")),
        }
    }
}

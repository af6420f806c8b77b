//! API keys for programmatic use: shown once, stored hashed, scoped to one user, revocable.

use amp_core::audit::AuditAction;
use amp_core::store::{ApiKeyRecord, ApiKeyScope};
use amp_core::{ApiKeyId, CredentialId, Error, Result, UserId};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{SessionAgent, secrets};
use crate::principal::{AuthMethod, Principal};

/// Every API key starts with this, which is how a bearer credential is told apart from a JWT.
pub(crate) const API_KEY_PREFIX: &str = "amp_";
/// Live API keys one person may hold.
pub const MAX_LIVE_KEYS: usize = 100;

/// The credential a principal acts with.
pub(crate) fn credential_of(principal: &Principal) -> CredentialId {
    match principal.method {
        AuthMethod::Session(id) => CredentialId::Session(id),
        AuthMethod::ApiKey(id) => CredentialId::ApiKey(id),
    }
}

/// A key as returned once at creation: the only time its secret is visible (`Debug` leaves
/// it out).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    /// The full key; store it now, it cannot be shown again.
    pub key: String,
    /// The stored record (hash, prefix, name).
    pub record: ApiKeyRecord,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey").field("key", &"<redacted>").field("record", &self.record).finish()
    }
}

impl SessionAgent {
    /// Creates an API key for the caller, with `scopes` beyond acting for them. A key can
    /// make another key only if it has the `keys` scope, and never with a scope it lacks
    /// itself. The new key is revoked with the credential that made it.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: &[ApiKeyScope],
    ) -> Result<NewApiKey> {
        self.create_api_key_with_budget(principal, name, scopes, None).await
    }

    /// Like [`SessionAgent::create_api_key`], with a daily model-token budget of its own
    /// below the per-key quota every key has (`quotas.tokens_per_day`): a key for one script
    /// or one customer that must not spend more. Such a key has neither the `sessions` nor
    /// the `keys` scope, so nothing it mints can spend past its budget.
    pub async fn create_api_key_with_budget(
        &self,
        principal: &Principal,
        name: &str,
        scopes: &[ApiKeyScope],
        daily_token_budget: Option<u64>,
    ) -> Result<NewApiKey> {
        if daily_token_budget == Some(0) {
            return Err(Error::invalid_input(
                "daily_token_budget must be positive (omit it for no budget of its own)",
            ));
        }
        // A budgeted key that could open sessions or make keys would escape its budget
        // through them: each would count on its own.
        if daily_token_budget.is_some()
            && scopes.iter().any(|s| matches!(s, ApiKeyScope::Sessions | ApiKeyScope::Keys))
        {
            return Err(Error::invalid_input(
                "a key with a daily_token_budget cannot have the `sessions` or `keys` scope",
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(Error::invalid_input("an API key needs a name of 1 to 100 characters"));
        }
        let mut scopes = scopes.to_vec();
        scopes.sort_by_key(|s| s.as_str());
        scopes.dedup();
        if let Some(granted) = self.delegated_scopes(principal).await? {
            if !granted.contains(&ApiKeyScope::Keys) {
                return Err(Error::forbidden(
                    "this credential may not create keys (it lacks the `keys` scope)",
                ));
            }
            if let Some(missing) = scopes.iter().find(|s| !granted.contains(s)) {
                return Err(Error::forbidden(format!(
                    "a key cannot grant the `{}` scope it does not have itself",
                    missing.as_str()
                )));
            }
        }
        let live = self.list_api_keys(principal).await?.iter().filter(|k| k.revoked_at.is_none()).count();
        if live >= MAX_LIVE_KEYS {
            return Err(Error::conflict(format!("at most {MAX_LIVE_KEYS} live API keys; revoke some first")));
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
            scopes,
            minted_by: Some(credential_of(principal)),
            daily_token_budget,
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

    /// What the caller may do beyond acting for its owner, when it acts for a key: `None`
    /// for a session opened with a password or single sign-on (it may do everything);
    /// otherwise the scopes of the API key it is, or of the key that opened its session
    /// (through any chain of sessions opened from sessions). A session minted by a key is
    /// never more than that key.
    pub(crate) async fn delegated_scopes(&self, principal: &Principal) -> Result<Option<Vec<ApiKeyScope>>> {
        let mut current = credential_of(principal);
        // Chains are short (each link is a sign-in or a created session); bound the walk.
        for _ in 0..32 {
            match current {
                CredentialId::ApiKey(id) => {
                    let keys = self.stores.credentials.list_api_keys(principal.user).await?;
                    return keys
                        .into_iter()
                        .find(|k| k.id == id && k.revoked_at.is_none())
                        .map(|k| Some(k.scopes))
                        .ok_or_else(|| Error::unauthenticated("the API key was revoked"));
                }
                CredentialId::Session(id) => match self.stores.sessions.get_session(id).await? {
                    Some(session) if session.user == principal.user => match session.minted_by {
                        None => return Ok(None),
                        Some(parent) => current = parent,
                    },
                    // The opener is gone: the session keeps no more than a plain key.
                    _ => return Ok(Some(Vec::new())),
                },
            }
        }
        Ok(Some(Vec::new()))
    }

    /// Revokes one of the caller's keys; another person's key is `NotFound`. The key stops
    /// working at once, in every process sharing the cache, and so does every session and
    /// key it made.
    pub async fn revoke_api_key(&self, principal: &Principal, id: ApiKeyId) -> Result<()> {
        let hash = self.list_api_keys(principal).await?.into_iter().find(|k| k.id == id).map(|k| k.hash);
        self.stores.credentials.revoke_api_key(principal.user, id, crate::clock::now()).await?;
        if let Some(hash) = hash {
            self.forget_cached_key(&hash).await;
        }
        self.audit(Some(principal.user), AuditAction::TokenRevoked, &format!("api_key:{id}"), true, &None)
            .await;
        self.revoke_minted(principal.user, CredentialId::ApiKey(id)).await
    }

    async fn forget_cached_key(&self, hash: &str) {
        if let Some(cache) = &self.cache
            && let Err(err) = cache.delete(&cache_key(hash)).await
        {
            // The entry would outlive the revocation by up to its TTL: say so loudly.
            tracing::error!(error = %err, "dropping a revoked API key from the cache failed");
        }
    }

    /// Revokes everything `root` minted, and what that minted, and so on: sessions opened
    /// with it and keys made with it. Call after revoking `root` itself.
    pub(crate) async fn revoke_minted(&self, user: UserId, root: CredentialId) -> Result<()> {
        let mut revoked = vec![root];
        let mut next = 0;
        while next < revoked.len() {
            let parent = revoked[next];
            next += 1;
            let at = crate::clock::now();
            for session in self.stores.sessions.list_sessions(user).await? {
                if session.minted_by == Some(parent)
                    && self.stores.sessions.revoke_session(session.id, at).await?
                {
                    self.announce_sign_out(user, session.id).await?;
                    self.audit(
                        Some(user),
                        AuditAction::TokenRevoked,
                        &format!("session:{}", session.id),
                        true,
                        &None,
                    )
                    .await;
                    revoked.push(CredentialId::Session(session.id));
                }
            }
            for key in self.stores.credentials.list_api_keys(user).await? {
                if key.minted_by == Some(parent) && key.revoked_at.is_none() {
                    self.stores.credentials.revoke_api_key(user, key.id, at).await?;
                    self.forget_cached_key(&key.hash).await;
                    self.audit(
                        Some(user),
                        AuditAction::TokenRevoked,
                        &format!("api_key:{}", key.id),
                        true,
                        &None,
                    )
                    .await;
                    revoked.push(CredentialId::ApiKey(key.id));
                }
            }
        }
        Ok(())
    }

    /// Drops every key of `user` from the cache, so a change to the account (disabled) is
    /// seen on the next request in every process sharing the cache.
    pub(crate) async fn forget_cached_keys(&self, user: amp_core::UserId) -> Result<()> {
        let Some(cache) = &self.cache else { return Ok(()) };
        for key in self.stores.credentials.list_api_keys(user).await? {
            cache.delete(&cache_key(&key.hash)).await?;
        }
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
        if user.is_none_or(|u| !u.is_active()) {
            return Err(Error::unauthenticated("invalid API key"));
        }
        let principal = Principal {
            user: r.user,
            method: AuthMethod::ApiKey(r.id),
            key_token_budget: r.daily_token_budget,
        };
        if let Some(cache) = &self.cache {
            let budget = r.daily_token_budget.map(|b| b.to_string()).unwrap_or_default();
            let value = Bytes::from(format!("{} {} {budget}", r.user, r.id));
            if let Err(err) = cache.set(&cache_key(&hash), value, Some(API_KEY_CACHE_TTL)).await {
                tracing::warn!(error = %err, "caching an API key failed");
            }
        }
        Ok(principal)
    }
}

/// How long a checked API key is trusted without asking the store again. A revocation or
/// an account disabled through this agent takes effect at once; a change made in the store
/// behind the agent's back, within this time.
pub const API_KEY_CACHE_TTL: Duration = Duration::from_secs(60);

fn cache_key(hash: &str) -> String {
    format!("auth:api_key:{hash}")
}

fn decode(value: &[u8]) -> Option<Principal> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(' ');
    let (user, key, budget) = (parts.next()?, parts.next()?, parts.next()?);
    let key_token_budget = if budget.is_empty() { None } else { Some(budget.parse().ok()?) };
    Some(Principal {
        user: user.parse().ok()?,
        method: AuthMethod::ApiKey(key.parse().ok()?),
        key_token_budget,
    })
}

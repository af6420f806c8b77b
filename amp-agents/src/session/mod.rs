//! The Session agent: accounts, sign-in and tokens, device sessions and API keys.
//!
//! Single sign-on: ID tokens of the external OpenID Connect provider in `auth.oidc` are
//! checked against its published keys, and the person is matched to a local account (by
//! linked identity, then by verified email) or given a new one.
//!
//! Tokens: a short-lived JWT access token (15 minutes by default) names the user and the
//! device session, and every request checks that session is still live, so signing out
//! ends access at once. Opaque refresh tokens rotate on every use; presenting one that was
//! already used is taken as theft: the whole token family and its session are revoked.

mod access_token;
mod accounts;
mod api_keys;
mod oidc;
mod passwords;
pub mod scope;
mod secrets;
mod sso;
pub mod sync;
pub mod workspaces;

use std::sync::Arc;

use amp_core::config::AuthConfig;
use amp_core::{Cache, DeviceSession, EventBus, JwksSource, RateLimiter, Result, Secret, Stores};
use serde::{Deserialize, Serialize};

use access_token::AccessTokens;
pub use accounts::{DeviceLogin, Registration};
pub use api_keys::NewApiKey;
use oidc::OidcVerifier;

/// What a successful sign-in or refresh returns to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPair {
    /// The bearer token for API calls.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The single-use token that gets the next pair.
    pub refresh_token: String,
    /// The device session these tokens belong to.
    pub session: DeviceSession,
}

/// The Session agent. Cheap to clone; holds no state of its own beyond the signing key.
#[derive(Clone)]
pub struct SessionAgent {
    stores: Stores,
    limiter: Arc<dyn RateLimiter>,
    events: Arc<dyn EventBus>,
    config: Arc<AuthConfig>,
    tokens: Arc<AccessTokens>,
    /// Set when `auth.oidc` is configured and a key source was given.
    oidc: Option<Arc<OidcVerifier>>,
    /// Remembers checked API keys; see [`SessionAgent::with_cache`].
    cache: Option<Arc<dyn Cache>>,
}

impl SessionAgent {
    /// An agent over these stores, counters and event bus. Without `auth.jwt_secret`, a
    /// random signing key is made (see [`AuthConfig::jwt_secret`]).
    pub fn new(
        stores: Stores,
        limiter: Arc<dyn RateLimiter>,
        events: Arc<dyn EventBus>,
        config: AuthConfig,
    ) -> Result<Self> {
        let secret = match &config.jwt_secret {
            Some(s) => s.clone(),
            None => {
                tracing::warn!("auth.jwt_secret is not set: using a random key; restarts sign everyone out");
                Secret::new(secrets::new_token("")?)
            }
        };
        let tokens = Arc::new(AccessTokens::new(&secret, &config.issuer));
        Ok(SessionAgent {
            stores,
            limiter,
            events,
            config: Arc::new(config),
            tokens,
            oidc: None,
            cache: None,
        })
    }

    /// Remembers checked API keys in `cache` for a minute, so programmatic clients that
    /// send one with every request do not cost two store reads each time. Use the cache
    /// every server process shares (Redis in a cluster) so a revocation reaches all of them.
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Enables single sign-on ([`SessionAgent::login_with_id_token`]) with the provider of
    /// `auth.oidc`, whose signing keys `keys` fetches. Without `auth.oidc` this changes
    /// nothing: which provider to trust is configuration, never a default.
    ///
    /// ```no_run
    /// # fn wire(agent: amp_agents::SessionAgent, keys: std::sync::Arc<dyn amp_core::JwksSource>) {
    /// let agent = agent.with_oidc(keys);
    /// # let _ = agent; }
    /// ```
    pub fn with_oidc(mut self, keys: Arc<dyn JwksSource>) -> Self {
        match &self.config.oidc {
            Some(oidc) => self.oidc = Some(Arc::new(OidcVerifier::new(keys, oidc.clone()))),
            None => {
                tracing::warn!("a JWKS source was given but auth.oidc is not set; single sign-on stays off")
            }
        }
        self
    }
}

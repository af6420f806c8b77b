//! The Session agent: accounts, sign-in and tokens, device sessions and API keys.
//!
//! Tokens: a short-lived JWT access token (15 minutes by default) names the user and the
//! device session, and every request checks that session is still live, so signing out
//! ends access at once. Opaque refresh tokens rotate on every use; presenting one that was
//! already used is taken as theft: the whole token family and its session are revoked.

mod access_token;
mod accounts;
mod api_keys;
mod passwords;
mod secrets;
pub mod sync;

use std::sync::Arc;

use amp_core::config::AuthConfig;
use amp_core::{DeviceSession, EventBus, RateLimiter, Result, Secret, Stores};
use serde::{Deserialize, Serialize};

use access_token::AccessTokens;
pub use accounts::{DeviceLogin, Registration};
pub use api_keys::NewApiKey;

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
        Ok(SessionAgent { stores, limiter, events, config: Arc::new(config), tokens })
    }
}

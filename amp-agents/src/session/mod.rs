//! The Session agent: accounts, sign-in and tokens, device sessions and API keys.
//!
//! Identity: an email address is not proof of who someone is. Privileges granted by email
//! (administrator rights in `auth.admins`, data-source access lists, workspace invitations)
//! apply only to an address that is verified: by a link mailed to it, by the single sign-on
//! provider, or by the administrator who made the account. The first account of a fresh
//! installation becomes its administrator; later self-registrations wait for approval
//! unless `auth.registration = "open"`.
//!
//! Single sign-on: ID tokens of the external OpenID Connect provider in `auth.oidc` are
//! checked against its published keys, and the person is matched to a local account (by
//! linked identity, then by an email both sides verified) or given a new one.
//!
//! SAML 2.0: AMP is a service provider for the identity provider in `auth.saml`; its
//! signed assertions are checked against the certificates of the provider's metadata and
//! exchanged for AMP's own token pair, with the same account matching as OpenID Connect.
//!
//! Tokens: a short-lived JWT access token (15 minutes by default) names the user and the
//! device session, and every request checks that session is still live, so signing out
//! ends access at once. Opaque refresh tokens rotate on every use; presenting one that was
//! already used, after a short grace for retries, is taken as theft: the whole token
//! family and its session are revoked.

mod access_token;
mod accounts;
pub mod admin;
mod api_keys;
mod oidc;
mod passwords;
mod saml;
pub mod scope;
mod secrets;
mod sso;
pub mod sync;
mod verification;
pub mod workspaces;

use std::sync::Arc;

use amp_core::config::AuthConfig;
use amp_core::{Cache, DeviceSession, EventBus, JwksSource, MailSender, RateLimiter, Result, Secret, Stores};
use serde::{Deserialize, Serialize};

use access_token::AccessTokens;
pub use accounts::{DeviceLogin, Registration};
pub use admin::NewAccount;
pub use api_keys::NewApiKey;
use oidc::OidcVerifier;

/// What a successful sign-in or refresh returns to the client. `Debug` leaves the tokens out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"<redacted>")
            .field("session", &self.session)
            .finish()
    }
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
    /// Set by [`SessionAgent::with_saml`].
    saml: Option<Arc<saml::SamlProvider>>,
    /// Remembers checked API keys; see [`SessionAgent::with_cache`].
    cache: Option<Arc<dyn Cache>>,
    /// Sends verification links; see [`SessionAgent::with_mail`].
    mail: Option<Arc<dyn MailSender>>,
    /// Bounds how many password hashes run at once.
    hasher: passwords::Hasher,
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
        let hasher = passwords::Hasher::new(config.password_hash_concurrency);
        Ok(SessionAgent {
            stores,
            limiter,
            events,
            config: Arc::new(config),
            tokens,
            oidc: None,
            saml: None,
            cache: None,
            mail: None,
            hasher,
        })
    }

    /// Sends email-verification links through `mail` (at registration and on request).
    /// Without one, addresses are verified only by single sign-on or by an administrator.
    pub fn with_mail(mut self, mail: Arc<dyn MailSender>) -> Self {
        self.mail = Some(mail);
        self
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

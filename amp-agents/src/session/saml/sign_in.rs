//! Signing in with the SAML identity provider of `auth.saml`.

use std::sync::Arc;
use std::time::Duration;

use amp_core::audit::AuditAction;
use amp_core::{Error, RateLimit, Result};

use super::SamlProvider;
use crate::session::{DeviceLogin, SessionAgent, TokenPair, secrets};

/// Store kinds of the single-use ids SAML needs.
const REQUEST: &str = "saml_request";
const ASSERTION: &str = "saml_assertion";
/// Sign-ins started per `auth.saml.request_ttl_secs` by everyone together, so requests
/// nobody answers (each is a stored row) stay bounded whatever addresses they come from.
const MAX_PENDING_REQUESTS: u32 = 10_000;

fn invalid() -> Error {
    Error::unauthenticated("invalid SAML response")
}

impl SessionAgent {
    /// Enables SAML sign-in with the identity provider that `metadata` (its
    /// `EntityDescriptor` XML) describes, configured by `auth.saml`. `InvalidInput`, naming
    /// the key, when `auth.saml` is unset or the metadata unusable.
    pub fn with_saml(mut self, metadata: &str) -> Result<Self> {
        let (Some(config), Some(public_url)) = (&self.config.saml, &self.config.public_url) else {
            return Err(Error::invalid_input("config: auth.saml: needs auth.saml and auth.public_url"));
        };
        let provider = SamlProvider::new(config.clone(), metadata, public_url)
            .map_err(|e| Error::invalid_input(format!("config: auth.saml.idp_metadata: {e}")))?;
        self.saml = Some(Arc::new(provider));
        Ok(self)
    }

    fn saml(&self) -> Result<&SamlProvider> {
        self.saml.as_deref().ok_or_else(|| Error::not_found("SAML sign-in is not configured"))
    }

    /// AMP's service-provider metadata, for the identity provider's administrator.
    pub fn saml_metadata(&self) -> Result<String> {
        Ok(self.saml()?.metadata())
    }

    /// Starts a SAML sign-in: the identity provider's URL to send the browser to, carrying a
    /// new request that AMP remembers for `auth.saml.request_ttl_secs`. Throttled per client
    /// address like password sign-in, since each start stores a request.
    pub async fn saml_login_url(&self, client_addr: Option<&str>) -> Result<String> {
        let provider = self.saml()?;
        self.throttle_address(client_addr).await?;
        let window = provider.request_ttl().to_std().unwrap_or(Duration::from_secs(600));
        self.throttle("saml:requests", RateLimit { limit: MAX_PENDING_REQUESTS, window }).await?;
        let id = secrets::new_token("_")?;
        let now = chrono::Utc::now();
        self.stores.credentials.claim_once(REQUEST, &id, now + provider.request_ttl(), now).await?;
        provider.login_url(&id, now).map_err(|e| Error::internal("could not encode the SAML request", e))
    }

    /// Signs in with the `SAMLResponse` the identity provider posted and opens a device
    /// session, as [`SessionAgent::login_with_id_token`] does for OpenID Connect. Every
    /// check is described in [`crate::session`]'s SAML module; a response that fails one is
    /// `Unauthenticated` (the reason is logged, never returned), as is a response to a
    /// request AMP did not make or no longer waits for, and an assertion seen before.
    pub async fn login_with_saml_response(
        &self,
        saml_response: &str,
        device: DeviceLogin,
    ) -> Result<TokenPair> {
        let provider = self.saml.clone().ok_or_else(|| Error::not_found("SAML sign-in is not configured"))?;
        self.throttle_address(device.client_addr.as_deref()).await?;
        let now = chrono::Utc::now();
        let refuse = async |why: &str| {
            tracing::info!(reason = why, "SAML response refused");
            self.audit(None, AuditAction::LoginFailed, "saml", false, &device.client_addr).await;
            invalid()
        };
        // Parsing and canonicalizing is CPU work: off the async workers.
        let (checker, encoded) = (provider.clone(), saml_response.to_owned());
        let checked = tokio::task::spawn_blocking(move || checker.check_response(&encoded, now))
            .await
            .map_err(|e| Error::internal("checking a SAML response failed", e.to_string()))?;
        let checked = match checked {
            Ok(checked) => checked,
            Err(why) => return Err(refuse(&why).await),
        };
        let credentials = &self.stores.credentials;
        if !credentials.take_once(REQUEST, &checked.in_response_to, now).await? {
            return Err(refuse("it answers no request AMP is waiting for (unknown, used or expired)").await);
        }
        if !credentials.claim_once(ASSERTION, &checked.assertion_id, checked.usable_until, now).await? {
            return Err(refuse("its assertion was used before (replay)").await);
        }
        // Never linked by email: SAML cannot say an address is verified, and a link from
        // inside the account would need the browser bound to the request.
        self.external_sign_in(&checked.identity, false, "saml", device).await
    }
}

//! Signing in with an ID token from the external OpenID Connect provider.

use std::time::Duration;

use amp_core::audit::AuditAction;
use amp_core::store::NewUser;
use amp_core::{Error, ErrorKind, RateLimit, Result, User};

use super::oidc::VerifiedIdToken;
use super::{DeviceLogin, SessionAgent, TokenPair};

impl SessionAgent {
    /// Signs in with an ID token of the provider in `auth.oidc` and opens a device session.
    ///
    /// The person is found by their linked identity (`iss`, `sub`); failing that, by the
    /// token's email when the provider has verified it, and the identity is linked; failing
    /// that, a new account is made and linked. Errors: `InvalidInput` when single sign-on is
    /// not configured, `Unauthenticated` for a token that fails any check (the reason is
    /// logged, never returned), `Forbidden` for a disabled account or an email that cannot
    /// be trusted, `Unavailable` when the provider's keys cannot be fetched.
    pub async fn login_with_id_token(&self, id_token: &str, device: DeviceLogin) -> Result<TokenPair> {
        let Some(verifier) = &self.oidc else {
            return Err(Error::invalid_input("single sign-on is not configured"));
        };
        if let Some(addr) = &device.client_addr {
            let window = Duration::from_secs(self.config.login_window_secs);
            let per_addr = RateLimit { limit: self.config.login_attempts_per_address, window };
            self.throttle(&format!("login:addr:{addr}"), per_addr).await?;
        }
        let token = match verifier.verify(id_token).await {
            Ok(token) => token,
            Err(err) => {
                if err.kind() == ErrorKind::Unauthenticated {
                    self.audit(None, AuditAction::LoginFailed, "sso", false, &device.client_addr).await;
                }
                return Err(err);
            }
        };
        let user = self.sso_account(&token).await?;
        if user.disabled {
            self.audit(Some(user.id), AuditAction::LoginFailed, "sso", false, &device.client_addr).await;
            return Err(Error::forbidden("this account is disabled"));
        }
        self.start_session(user.id, device).await
    }

    /// The local account of the person the token names, linked or made on first sign-in.
    async fn sso_account(&self, token: &VerifiedIdToken) -> Result<User> {
        if let Some(id) = self.stores.credentials.find_user_by_identity(&token.identity).await? {
            return self
                .stores
                .users
                .get_user(id)
                .await?
                .ok_or_else(|| Error::bug(format!("identity linked to missing user {id}")));
        }
        let Some(email) = &token.email else {
            return Err(Error::forbidden(
                "the single sign-on provider did not share an email address, which a first sign-in needs",
            ));
        };
        let user = match self.stores.users.find_user_by_email(email).await? {
            // An unverified email could be anyone's: linking on it would hand the existing
            // account to whoever typed that address at the provider.
            Some(_) if !token.email_verified => {
                return Err(Error::forbidden(
                    "an account with this email exists, but the provider has not verified the email",
                ));
            }
            Some(existing) => existing,
            None => {
                let display_name = token
                    .name
                    .clone()
                    .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
                self.stores.users.create_user(NewUser { email: email.clone(), display_name }).await?
            }
        };
        self.stores.credentials.link_identity(user.id, &token.identity).await?;
        tracing::info!(user = %user.id, issuer = %token.identity.issuer, "linked a single sign-on identity");
        Ok(user)
    }
}

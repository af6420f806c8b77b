//! Signing in with an ID token from the external OpenID Connect provider.

use std::time::Duration;

use amp_core::audit::AuditAction;
use amp_core::store::NewUser;
use amp_core::{AccountStatus, Error, ErrorKind, RateLimit, Result, User};
use serde_json::json;

use super::oidc::VerifiedIdToken;
use super::{DeviceLogin, SessionAgent, TokenPair};
use crate::principal::Principal;

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
        self.throttle_address(device.client_addr.as_deref()).await?;
        let token = match verifier.verify(id_token).await {
            Ok(token) => token,
            Err(err) => {
                if err.kind() == ErrorKind::Unauthenticated {
                    self.audit(None, AuditAction::LoginFailed, "sso", false, &device.client_addr).await;
                }
                return Err(err);
            }
        };
        let link_allowed = self.config.oidc.as_ref().is_some_and(|o| o.link_verified_emails);
        self.external_sign_in(&token, link_allowed, "sso", device).await
    }

    /// Counts a single sign-on attempt (OpenID Connect or SAML) against the client
    /// address's sign-in limit.
    pub(crate) async fn throttle_address(&self, client_addr: Option<&str>) -> Result<()> {
        if let Some(addr) = client_addr {
            let window = Duration::from_secs(self.config.login_window_secs);
            let per_addr = RateLimit { limit: self.config.login_attempts_per_address, window };
            self.throttle(&format!("login:addr:{addr}"), per_addr).await?;
        }
        Ok(())
    }

    /// Opens a session for the person a provider vouched for (an ID token or a SAML
    /// assertion), once their account is found or made and is active.
    pub(crate) async fn external_sign_in(
        &self,
        token: &VerifiedIdToken,
        link_allowed: bool,
        via: &str,
        device: DeviceLogin,
    ) -> Result<TokenPair> {
        let user = self.sso_account(token, link_allowed).await?;
        if !user.is_active() {
            self.audit(Some(user.id), AuditAction::LoginFailed, via, false, &device.client_addr).await;
            return Err(Error::forbidden(match user.status {
                AccountStatus::Pending => "this account waits for an administrator's approval",
                _ => "this account is disabled",
            }));
        }
        self.start_session(user.id, device).await
    }

    /// Links the provider identity in `id_token` to the caller's own account: the way to
    /// join single sign-on to an account that already has a password (the caller proves the
    /// account by being signed in to it, the token proves the identity). Needs a device
    /// session, not an API key. `Conflict` when the identity belongs to another account.
    pub async fn link_id_token(&self, principal: &Principal, id_token: &str) -> Result<()> {
        let Some(verifier) = &self.oidc else {
            return Err(Error::invalid_input("single sign-on is not configured"));
        };
        if self.delegated_scopes(principal).await?.is_some() {
            return Err(Error::forbidden(
                "linking single sign-on needs a signed-in session, not an API key or a session a key opened",
            ));
        }
        let token = verifier.verify(id_token).await?;
        self.stores.credentials.link_identity(principal.user, &token.identity).await?;
        self.audit_detail(
            Some(principal.user),
            AuditAction::IdentityLinked,
            &format!("user:{}", principal.user),
            json!({"issuer": token.identity.issuer, "via": "signed_in"}),
            None,
        )
        .await;
        Ok(())
    }

    /// The local account of the person the token names, linked or made on first sign-in.
    ///
    /// An existing account with the token's email is linked only when both sides have
    /// verified that address and the provider's `link_verified_emails` allows it; otherwise the
    /// sign-in is `Conflict` and the person links from inside their account
    /// ([`SessionAgent::link_id_token`]). A new account is active, its email verified as the
    /// provider says, and it is the administrator if it is the installation's first.
    async fn sso_account(&self, token: &VerifiedIdToken, link_allowed: bool) -> Result<User> {
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
        let (user, via) = match self.stores.users.find_user_by_email(email).await? {
            // An email either side has not verified could be anyone's: linking on it would
            // hand the existing account to whoever typed that address somewhere.
            Some(existing) if !(token.email_verified && existing.email_verified && link_allowed) => {
                return Err(Error::conflict(
                    "an account with this email exists: sign in to it and link single sign-on from there",
                ));
            }
            Some(existing) => (existing, "verified_email"),
            None => {
                // A first SSO sign-in is a registration: the same rules apply.
                let status = self.new_account_status().await?;
                let email = super::accounts::valid_email(email)?;
                let display_name = token
                    .name
                    .clone()
                    .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
                let new = NewUser {
                    email,
                    display_name: display_name.chars().filter(|c| !c.is_control()).take(100).collect(),
                    email_verified: token.email_verified,
                    status,
                    claims_installation: true,
                };
                let user = self.stores.users.create_user(new).await?;
                let detail = json!({"via": "sso", "admin": user.admin});
                self.audit_detail(
                    Some(user.id),
                    AuditAction::AccountCreated,
                    &format!("user:{}", user.id),
                    detail,
                    None,
                )
                .await;
                (user, "first_sign_in")
            }
        };
        self.stores.credentials.link_identity(user.id, &token.identity).await?;
        self.audit_detail(
            Some(user.id),
            AuditAction::IdentityLinked,
            &format!("user:{}", user.id),
            json!({"issuer": token.identity.issuer, "via": via}),
            None,
        )
        .await;
        tracing::info!(user = %user.id, issuer = %token.identity.issuer, "linked a single sign-on identity");
        Ok(user)
    }
}

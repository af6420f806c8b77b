//! Proving an email address: a one-time link sent to it.

use std::time::Duration;

use amp_core::audit::AuditAction;
use amp_core::store::EmailToken;
use amp_core::{Error, Mail, RateLimit, Result, User};
use serde_json::json;

use super::accounts::secs;
use super::{SessionAgent, secrets};
use crate::clock::now;
use crate::principal::Principal;

/// Prefix of verification tokens, so a leaked one is recognizable.
const EMAIL_TOKEN_PREFIX: &str = "ampev_";
/// Verification links one account may ask for per hour.
const LINKS_PER_HOUR: u32 = 5;

impl SessionAgent {
    /// Sends a new verification link to the caller's address (earlier links stop working).
    /// `Conflict` when it is already verified; `RateLimited` beyond a few links an hour.
    pub async fn request_email_verification(&self, principal: &Principal) -> Result<()> {
        let user = self.me(principal).await?;
        if user.email_verified {
            return Err(Error::conflict("this email address is already verified"));
        }
        let hourly = RateLimit { limit: LINKS_PER_HOUR, window: Duration::from_secs(3600) };
        let decision = self.limiter.hit(&format!("verify:user:{}", user.id), hourly).await?;
        if !decision.allowed {
            return Err(Error::RateLimited {
                message: "too many verification links; try again later".into(),
                retry_after: decision.retry_after,
            });
        }
        self.send_verification(&user).await
    }

    /// Mails `user` a link that proves their address.
    pub(crate) async fn send_verification(&self, user: &User) -> Result<()> {
        let Some(mail) = &self.mail else {
            return Err(Error::unavailable("no mail sender is configured, so no link can be sent"));
        };
        let token = secrets::new_token(EMAIL_TOKEN_PREFIX)?;
        let expires_at = now() + secs(self.config.email_token_ttl_secs);
        self.stores
            .credentials
            .insert_email_token(EmailToken {
                hash: secrets::hash_token(&token),
                user: user.id,
                email: user.email.clone(),
                expires_at,
            })
            .await?;
        let base = self.config.public_url.as_deref().unwrap_or("").trim_end_matches('/');
        let text = format!(
            "Hello {name},\n\nto confirm that {email} is your address on AMP, sign in to AMP and open \
             this link there:\n\n{base}/auth/verify-email?token={token}\n\nIt works once, until {expires_at}, \
             and only for the account that asked for it. If you did not create an account, ignore this \
             message: nobody can use it without that account's password.\n",
            name = user.display_name,
            email = user.email,
            expires_at = expires_at.format("%Y-%m-%d %H:%M UTC"),
        );
        mail.send(&Mail { to: user.email.clone(), subject: "Confirm your email address".into(), text })
            .await?;
        self.audit_detail(
            Some(user.id),
            AuditAction::EmailVerificationSent,
            &format!("user:{}", user.id),
            json!({}),
            None,
        )
        .await;
        Ok(())
    }

    /// Confirms an address with the token from its link, signed in as the account it was
    /// sent for: the token proves the mailbox, the sign-in proves the account, so the owner
    /// of an address who clicks a link for an account someone else registered in their
    /// name verifies nothing. Each link works once, before it expires, and only while the
    /// account still has the address it was sent to.
    pub async fn verify_email(&self, principal: &Principal, token: &str) -> Result<User> {
        let invalid = || Error::invalid_input("this verification link is invalid, used or expired");
        if !token.starts_with(EMAIL_TOKEN_PREFIX) || token.len() > 200 {
            return Err(invalid());
        }
        let taken = self
            .stores
            .credentials
            .take_email_token(&secrets::hash_token(token), now())
            .await?
            .ok_or_else(invalid)?;
        if taken.user != principal.user
            || !self.stores.users.mark_email_verified(taken.user, &taken.email).await?
        {
            return Err(invalid());
        }
        self.audit_detail(
            Some(taken.user),
            AuditAction::EmailVerified,
            &format!("user:{}", taken.user),
            json!({}),
            None,
        )
        .await;
        self.stores.users.get_user(taken.user).await?.ok_or_else(invalid)
    }
}

//! Registration, sign-in, refresh, sign-out, and turning a bearer credential into a
//! [`Principal`].

use std::time::Duration;

use amp_core::audit::{AuditAction, NewAuditEvent};
use amp_core::store::{NewUser, RefreshToken, RefreshTokenUse};
use amp_core::{
    DeviceId, DeviceSession, Error, Preferences, RateLimit, Result, SessionId, TokenFamilyId, User, UserId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{SessionAgent, TokenPair, passwords, secrets};
use crate::clock::now;
use crate::principal::{Admin, AuthMethod, Principal};

/// Prefix of refresh tokens, so a leaked one is recognizable in logs and scanners.
const REFRESH_PREFIX: &str = "amprt_";
/// A session's `last_seen_at` is written at most this often, not on every request.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// A new local account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Login email.
    pub email: String,
    /// Password, at least 10 characters.
    pub password: String,
    /// Name shown to others; defaults to the email's local part.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// The device a sign-in comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLogin {
    /// The device's id, if it has signed in before; a new one is made otherwise.
    #[serde(default)]
    pub device: Option<DeviceId>,
    /// A label the person recognizes (`Firefox on Linux`).
    #[serde(default)]
    pub device_name: Option<String>,
    /// The client's network address, for throttling and the audit log.
    #[serde(default)]
    pub client_addr: Option<String>,
}

fn secs(s: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

impl SessionAgent {
    /// Creates a local account. Refused when `auth.open_registration` is off.
    pub async fn register(&self, r: Registration) -> Result<User> {
        if !self.config.open_registration {
            return Err(Error::forbidden("registration is closed; ask an administrator for an account"));
        }
        if r.password.chars().count() < passwords::MIN_PASSWORD_LEN {
            return Err(Error::invalid_input(format!(
                "password must be at least {} characters",
                passwords::MIN_PASSWORD_LEN
            )));
        }
        let email = r.email.trim().to_owned();
        let display_name = r
            .display_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
        let hash = passwords::hash(r.password).await?;
        let user = self.stores.users.create_user(NewUser { email, display_name }).await?;
        self.stores.credentials.set_password_hash(user.id, &hash).await?;
        Ok(user)
    }

    /// Signs in with email and password on a device. Throttled per account (consecutive
    /// failures) and per client address (all attempts); the error never says whether the
    /// account exists.
    pub async fn login(&self, email: &str, password: &str, device: DeviceLogin) -> Result<TokenPair> {
        let window = Duration::from_secs(self.config.login_window_secs);
        let account_key = format!("login:account:{}", email.trim().to_lowercase());
        if let Some(addr) = &device.client_addr {
            let per_addr = RateLimit { limit: self.config.login_attempts_per_address, window };
            self.throttle(&format!("login:addr:{addr}"), per_addr).await?;
        }
        self.throttle(&account_key, RateLimit { limit: self.config.login_attempts_per_account, window })
            .await?;

        let user = self.stores.users.find_user_by_email(email).await?;
        let stored = match &user {
            Some(u) => self.stores.credentials.password_hash(u.id).await?,
            None => None,
        };
        let matches = passwords::verify(password.to_owned(), stored).await?;
        let user = match user {
            Some(u) if matches && !u.disabled => u,
            other => {
                self.audit(
                    other.map(|u| u.id),
                    AuditAction::LoginFailed,
                    "login",
                    false,
                    &device.client_addr,
                )
                .await;
                return Err(Error::unauthenticated("invalid email or password"));
            }
        };
        self.limiter.reset(&account_key).await?;
        self.start_session(user.id, device).await
    }

    /// Opens another device session for an already authenticated caller (by access token
    /// or API key), e.g. to hand a new device its own tokens without a password. It counts
    /// toward `auth.max_sessions_per_user` exactly like a sign-in, so the oldest sessions
    /// beyond the cap end.
    pub async fn create_session(&self, principal: &Principal, device: DeviceLogin) -> Result<TokenPair> {
        let user = self.me(principal).await?;
        if user.disabled {
            return Err(Error::unauthenticated("account disabled"));
        }
        self.start_session(user.id, device).await
    }

    pub(crate) async fn throttle(&self, key: &str, limit: RateLimit) -> Result<()> {
        let decision = self.limiter.hit(key, limit).await?;
        if decision.allowed {
            Ok(())
        } else {
            Err(Error::RateLimited {
                message: "too many sign-in attempts; try again later".into(),
                retry_after: decision.retry_after,
            })
        }
    }

    /// Opens a device session for an authenticated user (after a password or SSO check, or
    /// for an already signed-in caller), ending the oldest sessions beyond the per-user cap,
    /// and records the sign-in in the audit log.
    pub(crate) async fn start_session(&self, user: UserId, device: DeviceLogin) -> Result<TokenPair> {
        let now = now();
        let client_addr = device.client_addr.clone();
        let session = DeviceSession {
            id: SessionId::new(),
            user,
            device: device.device.unwrap_or_default(),
            device_name: device.device_name.unwrap_or_else(|| "unnamed device".into()),
            created_at: now,
            last_seen_at: now,
            expires_at: now + secs(self.config.session_lifetime_secs),
            revoked_at: None,
        };
        self.stores.sessions.create_session(session.clone()).await?;
        let live = self.stores.sessions.list_sessions(user).await?;
        let cap = usize::try_from(self.config.max_sessions_per_user).unwrap_or(usize::MAX);
        for old in live.iter().take(live.len().saturating_sub(cap)) {
            self.stores.sessions.revoke_session(old.id, now).await?;
            self.audit(Some(user), AuditAction::TokenRevoked, &format!("session:{}", old.id), true, &None)
                .await;
            self.announce_sign_out(user, old.id).await?;
        }
        let pair = self.issue(session, TokenFamilyId::new(), now).await?;
        self.audit(
            Some(user),
            AuditAction::Login,
            &format!("session:{}", pair.session.id),
            true,
            &client_addr,
        )
        .await;
        Ok(pair)
    }

    async fn issue(
        &self,
        session: DeviceSession,
        family: TokenFamilyId,
        now: DateTime<Utc>,
    ) -> Result<TokenPair> {
        let refresh_token = secrets::new_token(REFRESH_PREFIX)?;
        let expires_at = (now + secs(self.config.refresh_token_ttl_secs)).min(session.expires_at);
        self.stores
            .sessions
            .insert_refresh_token(RefreshToken {
                hash: secrets::hash_token(&refresh_token),
                family,
                session: session.id,
                user: session.user,
                issued_at: now,
                expires_at,
                used_at: None,
                revoked_at: None,
            })
            .await?;
        let ttl = secs(self.config.access_token_ttl_secs);
        let access_token = self.tokens.issue(session.user, session.id, now, ttl)?;
        Ok(TokenPair {
            access_token,
            token_type: "Bearer".into(),
            expires_in: self.config.access_token_ttl_secs,
            refresh_token,
            session,
        })
    }

    /// Trades a refresh token for a new pair. A token presented twice revokes its whole
    /// family and session: one of the two presenters is not the owner.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let now = now();
        let invalid = || Error::unauthenticated("invalid or expired refresh token");
        let token =
            match self.stores.sessions.use_refresh_token(&secrets::hash_token(refresh_token), now).await? {
                RefreshTokenUse::Unknown => return Err(invalid()),
                RefreshTokenUse::Replayed(t) => {
                    self.stores.sessions.revoke_token_family(t.family, now).await?;
                    self.stores.sessions.revoke_session(t.session, now).await?;
                    self.announce_sign_out(t.user, t.session).await?;
                    self.audit(
                        Some(t.user),
                        AuditAction::TokenReuseDetected,
                        &format!("session:{}", t.session),
                        false,
                        &None,
                    )
                    .await;
                    return Err(Error::unauthenticated(
                        "refresh token was already used; the session has been ended",
                    ));
                }
                RefreshTokenUse::Fresh(t) => t,
            };
        if token.revoked_at.is_some() || token.expires_at <= now {
            return Err(invalid());
        }
        let session = self.live_session(token.session, now).await?;
        self.stores.sessions.touch_session(session.id, now).await?;
        let session = DeviceSession { last_seen_at: now, ..session };
        self.issue(session, token.family, now).await
    }

    /// Ends the caller's device session at once; its access and refresh tokens stop working.
    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        let Some(session) = principal.session() else {
            return Err(Error::invalid_input(
                "API keys have no session to sign out of; revoke the key instead",
            ));
        };
        self.stores.sessions.revoke_session(session, now()).await?;
        self.audit(Some(principal.user), AuditAction::Logout, &format!("session:{session}"), true, &None)
            .await;
        self.announce_sign_out(principal.user, session).await?;
        Ok(())
    }

    /// Turns a bearer credential (an access token or an API key) into the caller.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        if bearer.starts_with(super::api_keys::API_KEY_PREFIX) {
            return self.authenticate_api_key(bearer).await;
        }
        let (user, session) = self.tokens.verify(bearer)?;
        let now = now();
        let live = self.live_session(session, now).await?;
        if live.user != user {
            return Err(Error::unauthenticated("invalid access token"));
        }
        if now - live.last_seen_at >= TOUCH_EVERY {
            self.stores.sessions.touch_session(session, now).await?;
        }
        Ok(Principal { user, method: AuthMethod::Session(session) })
    }

    /// The session if it is neither revoked, expired nor idle too long.
    async fn live_session(&self, id: SessionId, now: DateTime<Utc>) -> Result<DeviceSession> {
        let session = self
            .stores
            .sessions
            .get_session(id)
            .await?
            .ok_or_else(|| Error::unauthenticated("session ended"))?;
        if !session.is_live(now, secs(self.config.session_idle_timeout_secs)) {
            return Err(Error::unauthenticated("session ended"));
        }
        Ok(session)
    }

    /// The caller's current device session.
    pub async fn current_session(&self, principal: &Principal) -> Result<DeviceSession> {
        let id =
            principal.session().ok_or_else(|| Error::invalid_input("API keys have no device session"))?;
        self.live_session(id, now()).await
    }

    /// The caller's signed-in devices, oldest first.
    pub async fn devices(&self, principal: &Principal) -> Result<Vec<DeviceSession>> {
        let idle = secs(self.config.session_idle_timeout_secs);
        let now = now();
        let all = self.stores.sessions.list_sessions(principal.user).await?;
        Ok(all.into_iter().filter(|s| s.is_live(now, idle)).collect())
    }

    /// Signs one of the caller's devices out. Another person's session is `NotFound`, so
    /// session ids of others cannot be probed.
    pub async fn revoke_device(&self, principal: &Principal, session: SessionId) -> Result<()> {
        match self.stores.sessions.get_session(session).await? {
            Some(s) if s.user == principal.user => {
                self.stores.sessions.revoke_session(session, now()).await?;
                self.announce_sign_out(principal.user, session).await?;
                self.audit(
                    Some(principal.user),
                    AuditAction::TokenRevoked,
                    &format!("session:{session}"),
                    true,
                    &None,
                )
                .await;
                Ok(())
            }
            _ => Err(Error::not_found(format!("session {session}"))),
        }
    }

    /// The caller's account.
    pub async fn me(&self, principal: &Principal) -> Result<User> {
        self.stores
            .users
            .get_user(principal.user)
            .await?
            .ok_or_else(|| Error::unauthenticated("account not found"))
    }

    /// Replaces the caller's preferences and tells their other devices.
    pub async fn update_preferences(&self, principal: &Principal, preferences: Preferences) -> Result<User> {
        let user = self.stores.users.update_preferences(principal.user, preferences).await?;
        self.publish(principal, "preferences", json!(user.preferences)).await?;
        Ok(user)
    }

    /// Records an audit event. Failing to audit must not fail the action, but is logged loudly.
    /// Proof that the caller is an administrator (their email is in `auth.admins`);
    /// anyone else is refused with `Forbidden`.
    pub async fn admin(&self, principal: &Principal) -> Result<Admin> {
        let user = self.me(principal).await?;
        if self.config.admins.iter().any(|a| a.eq_ignore_ascii_case(&user.email)) {
            Ok(Admin::person(user.id))
        } else {
            Err(Error::forbidden("only administrators may change the model registry or routing"))
        }
    }

    pub(crate) async fn audit(
        &self,
        actor: Option<UserId>,
        action: AuditAction,
        target: &str,
        success: bool,
        client_addr: &Option<String>,
    ) {
        let event = NewAuditEvent {
            actor,
            action,
            target: target.to_owned(),
            workspace: None,
            success,
            client_addr: client_addr.clone(),
            detail: json!({}),
        };
        if let Err(err) = self.stores.audit.append(event).await {
            tracing::error!(error = %err, ?action, "writing the audit log failed");
        }
    }
}

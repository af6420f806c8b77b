//! Registration, sign-in, refresh, sign-out, and turning a bearer credential into a
//! [`Principal`].

use std::time::Duration;

use amp_core::audit::{AuditAction, NewAuditEvent};
use amp_core::config::RegistrationMode;
use amp_core::store::{NewUser, RefreshToken, RefreshTokenUse, UserQuery};
use amp_core::{
    AccountStatus, DeviceId, DeviceSession, Error, Preferences, RateLimit, Result, SessionId, TokenFamilyId,
    User, UserId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{SessionAgent, TokenPair, passwords, secrets};
use crate::clock::now;
use crate::principal::{Admin, AuthMethod, Principal};

/// Prefix of refresh tokens, so a leaked one is recognizable in logs and scanners.
const REFRESH_PREFIX: &str = "amprt_";
/// How long a wrong password waits before its answer once the account has had more than
/// `auth.login_attempts_per_account` of them in the window.
const FAILURE_DELAY: Duration = Duration::from_secs(2);
/// The longest email address accepted (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;
/// The longest display name accepted.
const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// The longest password accepted: Argon2 takes any length, but nobody needs a megabyte.
const MAX_PASSWORD_BYTES: usize = 1024;
/// A session's `last_seen_at` is written at most this often, not on every request.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// A new local account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Login email.
    pub email: String,
    /// Password, at least 10 characters.
    pub password: String,
    /// Name shown to others; defaults to the email's local part.
    #[serde(default)]
    pub display_name: Option<String>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("display_name", &self.display_name)
            .finish()
    }
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

/// The address trimmed, if it is one address of sane length.
pub(crate) fn valid_email(email: &str) -> Result<String> {
    let email = email.trim();
    let well_formed = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed || email.chars().count() > MAX_EMAIL_CHARS {
        return Err(Error::invalid_input(format!(
            "email must be one address of at most {MAX_EMAIL_CHARS} characters"
        )));
    }
    Ok(email.to_owned())
}

pub(crate) fn valid_password(password: &str) -> Result<()> {
    if password.chars().count() < passwords::MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid_input(format!(
            "password must be {} to {MAX_PASSWORD_BYTES} characters",
            passwords::MIN_PASSWORD_LEN
        )));
    }
    Ok(())
}

/// The name to show: the one given, or the email's local part.
pub(crate) fn display_name(given: Option<String>, email: &str) -> Result<String> {
    let name = given
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "display_name must be at most {MAX_DISPLAY_NAME_CHARS} characters, none of them control characters"
        )));
    }
    Ok(name)
}

pub(crate) fn secs(s: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

impl SessionAgent {
    /// Creates a local account, as `auth.registration` allows: the first account of a fresh
    /// installation becomes its administrator whatever the mode; after it, `open` makes
    /// active accounts, `approval` pending ones (an administrator approves them) and `closed`
    /// none. Throttled per client address before any password is hashed. A verification
    /// link is sent to the address when a mail sender is set.
    pub async fn register(&self, r: Registration, client_addr: Option<&str>) -> Result<User> {
        if let Some(addr) = client_addr {
            let window = Duration::from_secs(self.config.login_window_secs);
            let limit = RateLimit { limit: self.config.registrations_per_address, window };
            self.throttle(&format!("register:addr:{addr}"), limit).await?;
        }
        let status = self.new_account_status().await?;
        let email = valid_email(&r.email)?;
        valid_password(&r.password)?;
        let display_name = display_name(r.display_name, &email)?;
        let hash = self.hasher.hash(r.password).await?;
        let new = NewUser { email, display_name, email_verified: false, status, claims_installation: true };
        let user = self.stores.users.create_user(new).await?;
        self.stores.credentials.set_password_hash(user.id, &hash).await?;
        let detail = json!({"via": "registration", "status": user.status, "admin": user.admin});
        self.audit_detail(
            Some(user.id),
            AuditAction::AccountCreated,
            &format!("user:{}", user.id),
            detail,
            client_addr,
        )
        .await;
        if self.mail.is_some()
            && let Err(err) = self.send_verification(&user).await
        {
            tracing::warn!(error = %err, user = %user.id, "sending the verification link failed");
        }
        Ok(user)
    }

    /// The status a self-registered account (by password or a first SSO sign-in) starts in,
    /// as `auth.registration` says; `Forbidden` when registration is closed and the
    /// installation already has an account (an installation with any account has been
    /// claimed).
    pub(crate) async fn new_account_status(&self) -> Result<AccountStatus> {
        Ok(match self.config.registration {
            RegistrationMode::Open => AccountStatus::Active,
            RegistrationMode::Approval => AccountStatus::Pending,
            RegistrationMode::Closed => {
                let any =
                    self.stores.users.list_users(&UserQuery { limit: 1, ..UserQuery::default() }).await?;
                if !any.is_empty() {
                    return Err(Error::forbidden(
                        "registration is closed; ask an administrator for an account",
                    ));
                }
                // Pending only matters to the loser of two first registrations at once.
                AccountStatus::Pending
            }
        })
    }

    /// Signs in with email and password on a device. Throttled per client address (every
    /// attempt) and per account and address (attempts until one succeeds), so a stranger
    /// who guesses wrong locks only themselves out; wrong passwords beyond
    /// `auth.login_attempts_per_account` from anywhere slow further answers for that
    /// account down instead. The error never says whether the account exists; a pending or
    /// disabled account is named only to whoever knows its password.
    pub async fn login(&self, email: &str, password: &str, device: DeviceLogin) -> Result<TokenPair> {
        let window = Duration::from_secs(self.config.login_window_secs);
        let account = email.trim().to_lowercase();
        let addr = device.client_addr.clone().unwrap_or_else(|| "-".to_owned());
        let per_addr = RateLimit { limit: self.config.login_attempts_per_address, window };
        self.throttle(&format!("login:addr:{addr}"), per_addr).await?;
        let pair_key = format!("login:account:{account}:addr:{addr}");
        self.throttle(&pair_key, RateLimit { limit: self.config.login_attempts_per_account, window }).await?;

        let user = self.stores.users.find_user_by_email(email).await?;
        let stored = match &user {
            Some(u) => self.stores.credentials.password_hash(u.id).await?,
            None => None,
        };
        let matches = self.hasher.verify(password.to_owned(), stored).await?;
        let user = match user {
            Some(u) if matches => u,
            other => {
                self.audit(
                    other.map(|u| u.id),
                    AuditAction::LoginFailed,
                    "login",
                    false,
                    &device.client_addr,
                )
                .await;
                let failures = RateLimit { limit: self.config.login_attempts_per_account, window };
                if !self.limiter.hit(&format!("login:failures:{account}"), failures).await?.allowed {
                    tokio::time::sleep(FAILURE_DELAY).await;
                }
                return Err(Error::unauthenticated("invalid email or password"));
            }
        };
        self.limiter.reset(&pair_key).await?;
        match user.status {
            AccountStatus::Active => self.start_session(user.id, device).await,
            AccountStatus::Pending => {
                Err(Error::forbidden("this account waits for an administrator's approval"))
            }
            AccountStatus::Disabled => Err(Error::forbidden("this account is disabled")),
        }
    }

    /// Opens another device session for an already authenticated caller (by access token
    /// or API key), e.g. to hand a new device its own tokens without a password. It counts
    /// toward `auth.max_sessions_per_user` exactly like a sign-in, so the oldest sessions
    /// beyond the cap end.
    ///
    /// An API key may do this only if it has the `sessions` scope (and a session a key
    /// opened, only if that key has it). The new session ends when the credential that
    /// opened it is revoked.
    pub async fn create_session(&self, principal: &Principal, device: DeviceLogin) -> Result<TokenPair> {
        let user = self.me(principal).await?;
        if !user.is_active() {
            return Err(Error::unauthenticated("account disabled"));
        }
        if let Some(scopes) = self.delegated_scopes(principal).await?
            && !scopes.contains(&amp_core::store::ApiKeyScope::Sessions)
        {
            return Err(Error::forbidden(
                "this credential may not open sessions (it lacks the `sessions` scope)",
            ));
        }
        self.open_session(user.id, device, Some(super::api_keys::credential_of(principal))).await
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
        self.open_session(user, device, None).await
    }

    async fn open_session(
        &self,
        user: UserId,
        device: DeviceLogin,
        minted_by: Option<amp_core::CredentialId>,
    ) -> Result<TokenPair> {
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
            minted_by,
        };
        self.stores.sessions.create_session(session.clone()).await?;
        // An administrator may have disabled the account while this sign-in waited (for its
        // password hash, say): the session must not outlive that.
        if !self.stores.users.get_user(user).await?.is_some_and(|u| u.is_active()) {
            self.stores.sessions.revoke_session(session.id, now).await?;
            return Err(Error::forbidden("this account is not active"));
        }
        let live = self.stores.sessions.list_sessions(user).await?;
        let cap = usize::try_from(self.config.max_sessions_per_user).unwrap_or(usize::MAX);
        for old in live.iter().take(live.len().saturating_sub(cap)) {
            self.stores.sessions.revoke_session(old.id, now).await?;
            self.audit(Some(user), AuditAction::TokenRevoked, &format!("session:{}", old.id), true, &None)
                .await;
            // Pushed out by the cap, not revoked: what it opened for other devices lives on.
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

    /// Trades a refresh token for a new pair. A token presented again within
    /// `auth.refresh_reuse_grace_secs` of its first use is a retry and gets another pair of
    /// the same session; presented later, it revokes its whole family and session: one of
    /// the two presenters is not the owner.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let now = now();
        let invalid = || Error::unauthenticated("invalid or expired refresh token");
        let grace = secs(self.config.refresh_reuse_grace_secs);
        let token =
            match self.stores.sessions.use_refresh_token(&secrets::hash_token(refresh_token), now).await? {
                RefreshTokenUse::Unknown => return Err(invalid()),
                RefreshTokenUse::Replayed(t) if t.used_at.is_some_and(|used| now - used < grace) => t,
                RefreshTokenUse::Replayed(t) => {
                    self.stores.sessions.revoke_token_family(t.family, now).await?;
                    self.stores.sessions.revoke_session(t.session, now).await?;
                    self.announce_sign_out(t.user, t.session).await?;
                    self.revoke_minted(t.user, amp_core::CredentialId::Session(t.session)).await?;
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
        if !self.stores.users.get_user(session.user).await?.is_some_and(|u| u.is_active()) {
            return Err(Error::unauthenticated("account disabled"));
        }
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
        self.revoke_minted(principal.user, amp_core::CredentialId::Session(session)).await
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
        Ok(Principal { user, method: AuthMethod::Session(session), key_token_budget: None })
    }

    /// The session if it is neither revoked, expired nor idle too long.
    pub(crate) async fn live_session_of(&self, id: SessionId) -> Result<DeviceSession> {
        self.live_session(id, now()).await
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
                self.revoke_minted(principal.user, amp_core::CredentialId::Session(session)).await
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

    /// Proof that the caller administers the installation: an active account that is an
    /// administrator (the first account, or promoted), or whose verified email is in
    /// `auth.admins`, signed in with a password or single sign-on (an API key, or a session
    /// one opened, never administers). Anyone else is refused with `Forbidden`.
    pub async fn admin(&self, principal: &Principal) -> Result<Admin> {
        if self.delegated_scopes(principal).await?.is_some() {
            return Err(Error::forbidden(
                "administration needs a signed-in session, not an API key or a session a key opened",
            ));
        }
        let user = self.me(principal).await?;
        if user.is_active() && self.is_admin(&user) {
            Ok(Admin::person(user.id))
        } else {
            Err(Error::forbidden("this needs an administrator"))
        }
    }

    /// Whether `user` holds administrator rights (status aside).
    pub(crate) fn is_admin(&self, user: &User) -> bool {
        user.admin
            || (user.email_verified
                && self.config.admins.iter().any(|a| a.trim().eq_ignore_ascii_case(&user.email)))
    }

    /// Records an audit event. Failing to audit must not fail the action, but is logged loudly.
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
        self.record(event).await;
    }

    /// Records a successful action with detail (see [`SessionAgent::audit`]).
    pub(crate) async fn audit_detail(
        &self,
        actor: Option<UserId>,
        action: AuditAction,
        target: &str,
        detail: serde_json::Value,
        client_addr: Option<&str>,
    ) {
        let event = NewAuditEvent {
            actor,
            action,
            target: target.to_owned(),
            workspace: None,
            success: true,
            client_addr: client_addr.map(str::to_owned),
            detail,
        };
        self.record(event).await;
    }

    /// Appends to the audit log; a failure is logged loudly, not returned, since the change
    /// it records has already happened.
    pub(crate) async fn record(&self, event: NewAuditEvent) {
        let action = event.action;
        if let Err(err) = self.stores.audit.append(event).await {
            tracing::error!(error = %err, ?action, "writing the audit log failed");
        }
    }
}

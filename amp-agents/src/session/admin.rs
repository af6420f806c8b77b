//! What administrators do with accounts and the audit log. Every method takes an
//! [`Admin`], which only [`SessionAgent::admin`] makes for a person, and is itself audited.

use amp_core::audit::{AuditAction, AuditEvent, AuditQuery};
use amp_core::store::{NewUser, UserQuery};
use amp_core::{AccountStatus, Error, Result, User, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::SessionAgent;
use super::accounts::{display_name, valid_email, valid_password};
use crate::clock::now;
use crate::principal::Admin;

/// The most accounts or audit records one page holds.
pub const MAX_PAGE: u32 = 500;

/// An account an administrator creates. Its email counts as verified: the administrator
/// vouches for it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Login email.
    pub email: String,
    /// A first password (at least 10 characters); none for accounts that sign in only
    /// through single sign-on.
    #[serde(default)]
    pub password: Option<String>,
    /// Name shown to others; defaults to the email's local part.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether the account administers the installation too.
    #[serde(default)]
    pub admin: bool,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("display_name", &self.display_name)
            .field("admin", &self.admin)
            .finish()
    }
}

impl SessionAgent {
    /// Accounts, oldest first, a page at a time (at most [`MAX_PAGE`]).
    pub async fn list_accounts(&self, _admin: &Admin, query: UserQuery) -> Result<Vec<User>> {
        let query = UserQuery { limit: query.limit.clamp(1, MAX_PAGE), ..query };
        self.stores.users.list_users(&query).await
    }

    /// One account.
    pub async fn account(&self, _admin: &Admin, user: UserId) -> Result<User> {
        self.stores.users.get_user(user).await?.ok_or_else(|| Error::not_found(format!("user {user}")))
    }

    /// Creates an active account with a verified email.
    pub async fn create_account(&self, admin: &Admin, new: NewAccount) -> Result<User> {
        let email = valid_email(&new.email)?;
        if let Some(password) = &new.password {
            valid_password(password)?;
        }
        let display_name = display_name(new.display_name, &email)?;
        let hash = match new.password {
            Some(password) => Some(self.hasher.hash(password).await?),
            None => None,
        };
        let record = NewUser {
            email,
            display_name,
            email_verified: true,
            status: AccountStatus::Active,
            claims_installation: false,
        };
        let user = self.stores.users.create_user(record).await?;
        if let Some(hash) = hash {
            self.stores.credentials.set_password_hash(user.id, &hash).await?;
        }
        if new.admin {
            self.stores.users.set_admin(user.id, true).await?;
        }
        self.admin_audit(
            admin,
            AuditAction::AccountCreated,
            user.id,
            json!({"via": "administrator", "admin": new.admin}),
        )
        .await;
        self.account(admin, user.id).await
    }

    /// Lets a pending account sign in. `Conflict` unless it is pending.
    pub async fn approve_account(&self, admin: &Admin, user: UserId) -> Result<User> {
        let account = self.account(admin, user).await?;
        if account.status != AccountStatus::Pending {
            return Err(Error::conflict(format!("the account is {}, not pending", account.status.as_str())));
        }
        self.stores.users.set_status(user, AccountStatus::Active).await?;
        self.admin_audit(admin, AuditAction::AccountApproved, user, json!({})).await;
        self.account(admin, user).await
    }

    /// Turns an account off everywhere at once: its sessions end (their devices are told),
    /// and with them every key and session they made; its other API keys stop working until
    /// it is re-enabled.
    /// An administrator cannot disable themselves.
    pub async fn disable_account(&self, admin: &Admin, user: UserId) -> Result<User> {
        if admin.user() == Some(user) {
            return Err(Error::conflict("administrators cannot disable their own account"));
        }
        self.account(admin, user).await?;
        self.stores.users.set_status(user, AccountStatus::Disabled).await?;
        let sessions = self.end_all_sessions(user).await?;
        self.forget_cached_keys(user).await?;
        self.admin_audit(admin, AuditAction::AccountDisabled, user, json!({"sessions_ended": sessions}))
            .await;
        self.account(admin, user).await
    }

    /// Lets a disabled (or pending) account sign in again. Keys that outlived the disabling
    /// work again; ended sessions, and what they made, stay ended.
    pub async fn enable_account(&self, admin: &Admin, user: UserId) -> Result<User> {
        self.account(admin, user).await?;
        self.stores.users.set_status(user, AccountStatus::Active).await?;
        self.admin_audit(admin, AuditAction::AccountEnabled, user, json!({})).await;
        self.account(admin, user).await
    }

    /// Ends every session of an account (each device must sign in again); returns how many
    /// were live.
    pub async fn reset_sessions(&self, admin: &Admin, user: UserId) -> Result<usize> {
        self.account(admin, user).await?;
        let ended = self.end_all_sessions(user).await?;
        self.admin_audit(admin, AuditAction::SessionsReset, user, json!({"sessions_ended": ended})).await;
        Ok(ended)
    }

    /// Grants or withdraws administrator rights. An administrator cannot demote themselves,
    /// so an installation never loses its last one by accident.
    pub async fn set_account_admin(&self, admin: &Admin, user: UserId, grant: bool) -> Result<User> {
        if admin.user() == Some(user) && !grant {
            return Err(Error::conflict("administrators cannot withdraw their own rights"));
        }
        self.account(admin, user).await?;
        self.stores.users.set_admin(user, grant).await?;
        self.admin_audit(admin, AuditAction::AdminChanged, user, json!({"admin": grant})).await;
        self.account(admin, user).await
    }

    /// The audit log, newest first, filtered (at most [`MAX_PAGE`] records). Reading it is
    /// audited too.
    pub async fn audit_log(&self, admin: &Admin, query: AuditQuery) -> Result<Vec<AuditEvent>> {
        let query = AuditQuery { limit: query.limit.clamp(1, MAX_PAGE), ..query };
        let events = self.stores.audit.query(&query).await?;
        let detail = json!({
            "actor": query.actor,
            "action": query.action,
            "workspace": query.workspace,
            "since": query.since,
            "until": query.until,
            "returned": events.len(),
        });
        self.audit_detail(admin.user(), AuditAction::AuditRead, "audit_log", detail, None).await;
        Ok(events)
    }

    /// Revokes every live session of `user` and tells their devices; returns how many.
    pub(crate) async fn end_all_sessions(&self, user: UserId) -> Result<usize> {
        let at = now();
        let mut ended = 0;
        for session in self.stores.sessions.list_sessions(user).await? {
            if session.revoked_at.is_none() && self.stores.sessions.revoke_session(session.id, at).await? {
                ended += 1;
                self.announce_sign_out(user, session.id).await?;
                self.revoke_minted(user, amp_core::CredentialId::Session(session.id)).await?;
            }
        }
        Ok(ended)
    }

    async fn admin_audit(&self, admin: &Admin, action: AuditAction, user: UserId, detail: serde_json::Value) {
        self.audit_detail(admin.user(), action, &format!("user:{user}"), detail, None).await;
    }
}

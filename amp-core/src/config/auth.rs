//! `[auth]`: accounts, registration, tokens, sessions and single sign-on.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Who may create a local account with `POST /auth/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone; the account is active at once.
    Open,
    /// Anyone, but the account waits for an administrator's approval before it can sign in.
    /// The first account of a fresh installation is the exception: it becomes the
    /// administrator.
    Approval,
    /// Nobody but the first account of a fresh installation; administrators create the
    /// others (`POST /admin/users`).
    Closed,
}

/// Accounts, tokens, sessions and single sign-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The key that signs access tokens (HS256), at least 32 bytes; write it as
    /// `${AMP_JWT_SECRET}`. Without one, a random key is made at start: fine for one process,
    /// but every restart signs everyone out and replicas reject each other's tokens.
    pub jwt_secret: Option<Secret>,
    /// The `iss` of access tokens. Default `amp`.
    pub issuer: String,
    /// Access-token lifetime in seconds. Default 900 (15 minutes).
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime in seconds; each use rotates it. Default 1,209,600 (14 days).
    pub refresh_token_ttl_secs: u64,
    /// A refresh token presented again within this many seconds of its first use (a client
    /// retrying after a lost response, two tabs refreshing at once) gets a new pair of the
    /// same session instead of ending it; presented later, it is taken as theft and ends
    /// the session. 0 turns the grace off. Default 10.
    pub refresh_reuse_grace_secs: u64,
    /// A session unused this long ends. Default 604,800 (7 days).
    pub session_idle_timeout_secs: u64,
    /// A session ends this long after sign-in, used or not. Default 2,592,000 (30 days).
    pub session_lifetime_secs: u64,
    /// Concurrent sessions per person; signing in beyond it ends the oldest. Default 10.
    pub max_sessions_per_user: u32,
    /// Who may create a local account. Default `approval`: the first account of a fresh
    /// installation becomes its administrator, later ones wait for an administrator.
    pub registration: RegistrationMode,
    /// Registrations per client address per `login_window_secs`, counted before any
    /// password is hashed. Default 10.
    pub registrations_per_address: u32,
    /// Failed sign-ins per account per window before it is throttled. Only attempts with a
    /// wrong password count, and the throttle slows sign-ins down for everyone but never
    /// stops the right password from an address that has not failed. Default 5.
    pub login_attempts_per_account: u32,
    /// Sign-in attempts per client address per window. Default 30.
    pub login_attempts_per_address: u32,
    /// The throttling window in seconds. Default 900.
    pub login_window_secs: u64,
    /// Password hashes computed at once (each takes ~19 MiB and a core for tens of
    /// milliseconds); more wait up to 10 s, then get 503. Default 2.
    pub password_hash_concurrency: u32,
    /// Where people reach AMP (`https://amp.example.com`), for the links AMP sends
    /// (email verification). Default none: links are paths (`/auth/verify-email?token=…`).
    pub public_url: Option<String>,
    /// Write each mail AMP sends (verification links) as an `.eml` file into this directory
    /// — a mail server's pickup directory, or for a script to forward — instead of to the
    /// log. Default none: mails go to the log at `info`, for the operator to pass on.
    pub mail_dir: Option<std::path::PathBuf>,
    /// How long an email-verification link works, in seconds. Default 86,400 (a day).
    pub email_token_ttl_secs: u64,
    /// How long a workspace invitation waits for an answer, in seconds. Default 1,209,600
    /// (14 days).
    pub invitation_ttl_secs: u64,
    /// An open sync stream (`GET /session/sync`) checks its credential and account again
    /// this often, and closes once either was revoked or disabled. Default 60.
    pub sync_recheck_secs: u64,
    /// State pushes (`POST /session/sync`) per person per minute. Default 120.
    pub sync_pushes_per_minute: u32,
    /// Single sign-on with an external OpenID Connect provider (`POST /auth/sso`). Default
    /// none: SSO is off.
    pub oidc: Option<OidcConfig>,
    /// SAML 2.0 single sign-on with an identity provider (PingFederate, Okta, Entra ID,
    /// ADFS), AMP being the service provider (`/auth/saml/*`). Default none: SAML is off.
    pub saml: Option<SamlConfig>,
    /// Emails of people who administer the installation besides its first account and the
    /// people administrators promote. An entry counts only for an account whose email is
    /// verified to be exactly that address. Default none.
    pub admins: Vec<String>,
}

/// An external OpenID Connect provider whose ID tokens sign people in.
///
/// ```toml
/// [auth.oidc]
/// issuer = "https://sso.example.com"
/// audience = "amp"
/// jwks_url = "https://sso.example.com/pf/JWKS"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's `iss`, exactly as it appears in its tokens.
    pub issuer: String,
    /// The client id AMP is registered under; ID tokens must name it in `aud` (and in
    /// `azp` when they carry one).
    pub audience: String,
    /// Where the provider publishes its signing keys (JWKS).
    pub jwks_url: String,
    /// The claim holding the person's email, used to match existing accounts and to
    /// create new ones. Default `email`.
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    /// The JWKS is fetched again when a token names a key not seen yet (the provider
    /// rotated its keys), but at most once per this many seconds, so tokens with made-up
    /// key ids cannot make AMP hammer the provider. Default 30.
    #[serde(default = "default_jwks_refresh_min_secs")]
    pub jwks_refresh_min_secs: u64,
    /// Treat an email as verified when the token has no `email_verified` claim at all (for
    /// providers that only release addresses they verified). A claim that says `false` is
    /// never trusted. Default false.
    #[serde(default)]
    pub assume_email_verified: bool,
    /// Whether a first SSO sign-in may link to an existing local account with a password
    /// when both sides have verified the same email. Otherwise the person signs in with
    /// their password and links the identity (`POST /auth/sso/link`). Default true.
    #[serde(default = "yes")]
    pub link_verified_emails: bool,
    /// Tokens issued (`iat`) longer ago than this many seconds are refused, whatever their
    /// `exp`. Default 3,600.
    #[serde(default = "default_max_token_age_secs")]
    pub max_token_age_secs: u64,
}

/// A SAML 2.0 identity provider whose signed assertions sign people in.
///
/// AMP is the service provider: its metadata is at `GET /auth/saml/metadata`, sign-in
/// starts at `GET /auth/saml/login` (HTTP-Redirect binding) and the provider posts its
/// answer to `POST /auth/saml/acs` (HTTP-POST binding). Needs `auth.public_url`, from which
/// both AMP's entity id and its assertion consumer URL are made.
///
/// ```toml
/// [auth.saml]
/// idp_metadata = "/etc/amp/pingfederate-metadata.xml"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlConfig {
    /// A file holding the identity provider's metadata (`EntityDescriptor`): its entity id,
    /// its sign-in URL and the certificates its signatures are checked against. Read at
    /// start; the certificates a message carries itself are never trusted.
    pub idp_metadata: std::path::PathBuf,
    /// AMP's entity id, the audience assertions must name. Default
    /// `{auth.public_url}/auth/saml/metadata`.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// The attribute holding the person's email. Default: the `NameID` when its format is
    /// `emailAddress`, else the first of the usual attributes (`email`, `mail`, the LDAP
    /// `mail` OID, the WS-Federation email claim).
    #[serde(default)]
    pub email_attribute: Option<String>,
    /// Treat the email an assertion carries as verified. SAML has no way to say so; set
    /// this only for a provider whose addresses are the organisation's own and cannot be
    /// edited by the people themselves: a verified address satisfies `auth.admins` and
    /// data-source access lists. Default false. Either way a first SAML sign-in never
    /// links to an existing local account with the same email (`409`).
    #[serde(default)]
    pub assume_email_verified: bool,
    /// Assertions issued longer ago than this many seconds are refused. Default 300.
    #[serde(default = "default_max_assertion_age_secs")]
    pub max_assertion_age_secs: u64,
    /// Clock difference tolerated with the provider on every time check. Default 60.
    #[serde(default = "default_clock_skew_secs")]
    pub clock_skew_secs: u64,
    /// How long a sign-in started at `/auth/saml/login` waits for the provider's answer.
    /// Default 600. Answers to no request of AMP's (IdP-initiated sign-in) are refused.
    #[serde(default = "default_saml_request_ttl_secs")]
    pub request_ttl_secs: u64,
}

fn default_max_assertion_age_secs() -> u64 {
    300
}

fn default_clock_skew_secs() -> u64 {
    60
}

fn default_saml_request_ttl_secs() -> u64 {
    600
}

fn default_jwks_refresh_min_secs() -> u64 {
    30
}

fn default_max_token_age_secs() -> u64 {
    3600
}

fn yes() -> bool {
    true
}

fn default_email_claim() -> String {
    "email".to_owned()
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            issuer: "amp".to_owned(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 14 * 24 * 3600,
            refresh_reuse_grace_secs: 10,
            session_idle_timeout_secs: 7 * 24 * 3600,
            session_lifetime_secs: 30 * 24 * 3600,
            max_sessions_per_user: 10,
            registration: RegistrationMode::Approval,
            registrations_per_address: 10,
            login_attempts_per_account: 5,
            login_attempts_per_address: 30,
            login_window_secs: 900,
            password_hash_concurrency: 2,
            public_url: None,
            mail_dir: None,
            email_token_ttl_secs: 24 * 3600,
            invitation_ttl_secs: 14 * 24 * 3600,
            sync_recheck_secs: 60,
            sync_pushes_per_minute: 120,
            oidc: None,
            saml: None,
            admins: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// Refuses settings that would let an address nobody verified claim a privilege, naming
    /// the key.
    pub(crate) fn validate(&self) -> Result<()> {
        for (i, admin) in self.admins.iter().enumerate() {
            if !is_plain_address(admin) {
                return Err(Error::invalid_input(format!(
                    "config: auth.admins[{i}]: `{admin}` is not one email address; administrators are \
                     named by their full address (no patterns or domains), matched only once verified"
                )));
            }
        }
        if let Some(oidc) = &self.oidc
            && oidc.assume_email_verified
            && oidc.link_verified_emails
        {
            return Err(Error::invalid_input(
                "config: auth.oidc.assume_email_verified: cannot be combined with \
                 auth.oidc.link_verified_emails = true: an address the provider never verified could \
                 take over the local account that has it",
            ));
        }
        if let Some(saml) = &self.saml {
            if self.public_url.is_none() {
                return Err(Error::invalid_input(
                    "config: auth.saml: needs auth.public_url, from which AMP's entity id and its \
                     assertion consumer URL are made",
                ));
            }
            let bounded = [
                ("auth.saml.request_ttl_secs", saml.request_ttl_secs, 1, 86_400),
                ("auth.saml.max_assertion_age_secs", saml.max_assertion_age_secs, 1, 86_400),
                ("auth.saml.clock_skew_secs", saml.clock_skew_secs, 0, 3_600),
            ];
            for (key, value, min, max) in bounded {
                if !(min..=max).contains(&value) {
                    return Err(Error::invalid_input(format!("config: {key}: must be {min} to {max}")));
                }
            }
        }
        let positive = [
            ("auth.password_hash_concurrency", u64::from(self.password_hash_concurrency)),
            ("auth.email_token_ttl_secs", self.email_token_ttl_secs),
            ("auth.invitation_ttl_secs", self.invitation_ttl_secs),
            ("auth.sync_recheck_secs", self.sync_recheck_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(Error::invalid_input(format!("config: {key}: must be positive")));
            }
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(Error::invalid_input("config: auth.public_url: must start with https:// or http://"));
        }
        Ok(())
    }
}

/// One address: `local@domain`, nothing else.
fn is_plain_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    let clean = |part: &str| {
        !part.is_empty()
            && !part.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '*' | '?' | '@'))
    };
    clean(local)
        && clean(domain)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrators_are_named_by_whole_addresses() {
        for bad in ["@example.com", "*@example.com", "admin", "a@b", "a @example.com", "a@x@example.com"] {
            let config =
                AuthConfig { admins: vec!["ok@example.com".into(), bad.into()], ..AuthConfig::default() };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("auth.admins[1]"), "{bad}: {err}");
        }
        let fine =
            AuthConfig { admins: vec!["Ada.Lovelace+ops@example.co.uk".into()], ..AuthConfig::default() };
        fine.validate().unwrap();
    }

    #[test]
    fn trusting_unverified_provider_emails_for_linking_is_refused() {
        let oidc = OidcConfig {
            issuer: "https://sso.example.com".into(),
            audience: "amp".into(),
            jwks_url: "https://sso.example.com/jwks".into(),
            email_claim: "email".into(),
            jwks_refresh_min_secs: 30,
            assume_email_verified: true,
            link_verified_emails: true,
            max_token_age_secs: 3600,
        };
        let config = AuthConfig { oidc: Some(oidc.clone()), ..AuthConfig::default() };
        assert!(config.validate().unwrap_err().to_string().contains("auth.oidc.assume_email_verified"));
        let config = AuthConfig {
            oidc: Some(OidcConfig { link_verified_emails: false, ..oidc }),
            ..AuthConfig::default()
        };
        config.validate().unwrap();
    }
}

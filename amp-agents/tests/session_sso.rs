//! Single sign-on with ID tokens of an external OpenID Connect provider, on real SQLite
//! stores, with the provider's JWKS served by a test-local key source.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use amp_agents::SessionAgent;
use amp_agents::session::{DeviceLogin, Registration};
use amp_core::audit::{AuditAction, AuditQuery};
use amp_core::config::{AuthConfig, OidcConfig};
use amp_core::store::ExternalIdentity;
use amp_core::{Error, ErrorKind, JwksSource, Result, Secret, Stores};
use amp_providers::sql::{PoolOptions, SqliteStores};
use amp_providers::{MemoryEventBus, MemoryRateLimiter};
use async_trait::async_trait;
use serde_json::Value;
use support::oidc::{self, AUDIENCE, ISSUER, KEY_1, KEY_2, KID_1, KID_2};

/// The provider's JWKS endpoint: serves whatever document the test put there, or is down,
/// and counts fetches.
struct TestJwks {
    document: Mutex<Option<Value>>,
    fetches: AtomicUsize,
}

impl TestJwks {
    fn serving(document: Value) -> Arc<Self> {
        Arc::new(TestJwks { document: Mutex::new(Some(document)), fetches: AtomicUsize::new(0) })
    }
    fn down() -> Arc<Self> {
        Arc::new(TestJwks { document: Mutex::new(None), fetches: AtomicUsize::new(0) })
    }
    fn publish(&self, document: Value) {
        *self.document.lock().unwrap() = Some(document);
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl JwksSource for TestJwks {
    async fn fetch(&self) -> Result<Value> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.document.lock().unwrap().clone().ok_or_else(|| Error::unavailable("JWKS endpoint is down"))
    }
}

struct Fixture {
    agent: SessionAgent,
    stores: Stores,
    _dir: tempfile::TempDir,
}

fn oidc_config(refresh_min_secs: u64) -> OidcConfig {
    OidcConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: "http://unused.test/jwks".into(),
        email_claim: "email".into(),
        jwks_refresh_min_secs: refresh_min_secs,
        assume_email_verified: false,
        link_verified_emails: true,
        max_token_age_secs: 3600,
    }
}

async fn fixture_with(oidc: Option<OidcConfig>, keys: Arc<TestJwks>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sql =
        Arc::new(SqliteStores::open(&dir.path().join("amp.db"), &PoolOptions::default()).await.unwrap());
    let stores = sql.stores();
    let config = AuthConfig {
        jwt_secret: Some(Secret::new("test-signing-key-".repeat(3))),
        oidc,
        registration: amp_core::config::RegistrationMode::Open,
        ..AuthConfig::default()
    };
    let events = Arc::new(MemoryEventBus::new(&amp_core::config::EventBusConfig::default()));
    let agent = SessionAgent::new(stores.clone(), Arc::new(MemoryRateLimiter::new()), events, config)
        .unwrap()
        .with_oidc(keys);
    Fixture { agent, stores, _dir: dir }
}

/// SSO on, refreshing the JWKS whenever a token names an unknown key.
async fn fixture(keys: Arc<TestJwks>) -> Fixture {
    fixture_with(Some(oidc_config(0)), keys).await
}

fn device() -> DeviceLogin {
    DeviceLogin { device: None, device_name: Some("laptop".into()), client_addr: Some("10.0.0.9".into()) }
}

fn ada() -> Value {
    oidc::claims("ping-user-1", "ada@example.test")
}

async fn sso(f: &Fixture, token: &str) -> Result<amp_agents::session::TokenPair> {
    f.agent.login_with_id_token(token, device()).await
}

#[tokio::test]
async fn first_sso_login_creates_and_links_a_user_and_the_second_finds_the_same_user() {
    let f = fixture(TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]))).await;
    let first = sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap();
    let me = f.agent.authenticate(&first.access_token).await.unwrap();
    let user = f.stores.users.get_user(me.user).await.unwrap().unwrap();
    assert_eq!((user.email.as_str(), user.display_name.as_str()), ("ada@example.test", "Ada Lovelace"));
    let identity = ExternalIdentity { issuer: ISSUER.into(), subject: "ping-user-1".into() };
    assert_eq!(f.stores.credentials.find_user_by_identity(&identity).await.unwrap(), Some(user.id));

    // The email changed at the provider; the linked identity still finds the account.
    let moved = oidc::claims("ping-user-1", "ada.lovelace@example.test");
    let second = sso(&f, &oidc::sign(&moved, KEY_1, KID_1)).await.unwrap();
    assert_eq!(second.session.user, user.id);
    assert_ne!(second.session.id, first.session.id, "each sign-in is its own device session");
    let logins = f
        .stores
        .audit
        .query(&AuditQuery { action: Some(AuditAction::Login), limit: 10, ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(logins.len(), 2);
}

async fn local_ada(f: &Fixture) -> amp_core::User {
    f.agent
        .register(
            Registration {
                email: "Ada@Example.test".into(),
                password: "correct horse battery".into(),
                display_name: None,
            },
            None,
        )
        .await
        .unwrap()
}

async fn linked(f: &Fixture) -> Option<amp_core::UserId> {
    let identity = ExternalIdentity { issuer: ISSUER.into(), subject: "ping-user-1".into() };
    f.stores.credentials.find_user_by_identity(&identity).await.unwrap()
}

#[tokio::test]
async fn an_existing_account_is_linked_only_when_both_sides_verified_the_email() {
    let f = fixture(TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]))).await;
    let local = local_ada(&f).await;
    // The local address was never verified: whoever registered it may not own it.
    let err = sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(linked(&f).await, None);

    f.stores.users.mark_email_verified(local.id, "ada@example.test").await.unwrap();
    let pair = sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap();
    assert_eq!(pair.session.user, local.id);
    assert_eq!(linked(&f).await, Some(local.id));
    let links = f
        .stores
        .audit
        .query(&AuditQuery { action: Some(AuditAction::IdentityLinked), limit: 10, ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(links.len(), 1, "a link is audited");
}

#[tokio::test]
async fn an_unverified_email_never_links_to_an_existing_account() {
    let f = fixture(TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]))).await;
    let local = local_ada(&f).await;
    f.stores.users.mark_email_verified(local.id, "ada@example.test").await.unwrap();
    let mut claims = ada();
    claims["email_verified"] = Value::Bool(false);
    let err = sso(&f, &oidc::sign(&claims, KEY_1, KID_1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    // A token without the claim is unverified too, unless the operator says otherwise.
    claims.as_object_mut().unwrap().remove("email_verified");
    let err = sso(&f, &oidc::sign(&claims, KEY_1, KID_1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(linked(&f).await, None);
}

#[tokio::test]
async fn without_linking_by_email_a_signed_in_person_links_their_identity() {
    let config = OidcConfig { link_verified_emails: false, ..oidc_config(0) };
    let f = fixture_with(Some(config), TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]))).await;
    let local = local_ada(&f).await;
    f.stores.users.mark_email_verified(local.id, "ada@example.test").await.unwrap();
    let token = oidc::sign(&ada(), KEY_1, KID_1);
    assert_eq!(sso(&f, &token).await.unwrap_err().kind(), ErrorKind::Conflict, "never linked silently");

    let pair = f.agent.login("ada@example.test", "correct horse battery", device()).await.unwrap();
    let me = f.agent.authenticate(&pair.access_token).await.unwrap();
    let key = f.agent.create_api_key(&me, "ci", &[]).await.unwrap();
    let by_key = f.agent.authenticate(&key.key).await.unwrap();
    assert_eq!(f.agent.link_id_token(&by_key, &token).await.unwrap_err().kind(), ErrorKind::Forbidden);
    f.agent.link_id_token(&me, &token).await.unwrap();
    assert_eq!(sso(&f, &token).await.unwrap().session.user, local.id);

    // The identity is Ada's now: nobody else can link it to their account.
    let bob_user = f
        .agent
        .register(
            Registration {
                email: "bob@example.test".into(),
                password: "correct horse battery".into(),
                display_name: None,
            },
            None,
        )
        .await
        .unwrap();
    let bob_pair = f.agent.login("bob@example.test", "correct horse battery", device()).await.unwrap();
    let bob = f.agent.authenticate(&bob_pair.access_token).await.unwrap();
    assert_eq!(bob.user, bob_user.id);
    assert_eq!(f.agent.link_id_token(&bob, &token).await.unwrap_err().kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn a_first_sso_account_keeps_the_providers_word_on_its_email() {
    let f = fixture(TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]))).await;
    let mut claims = ada();
    claims.as_object_mut().unwrap().remove("email_verified");
    let pair = sso(&f, &oidc::sign(&claims, KEY_1, KID_1)).await.unwrap();
    let user = f.stores.users.get_user(pair.session.user).await.unwrap().unwrap();
    assert!(!user.email_verified, "a missing claim is not a verified address");

    let config = OidcConfig { assume_email_verified: true, link_verified_emails: false, ..oidc_config(0) };
    let g = fixture_with(Some(config), TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]))).await;
    let pair = sso(&g, &oidc::sign(&claims, KEY_1, KID_1)).await.unwrap();
    let user = g.stores.users.get_user(pair.session.user).await.unwrap().unwrap();
    assert!(user.email_verified, "unless the operator vouches for this provider");
}

#[tokio::test]
async fn tokens_failing_any_check_are_unauthenticated_with_a_generic_message() {
    let f = fixture(TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]))).await;
    let with = |key: &str, value: Value| {
        let mut c = ada();
        c[key] = value;
        c
    };
    let now = jsonwebtoken::get_current_timestamp();
    let mut no_sub = ada();
    no_sub.as_object_mut().unwrap().remove("sub");
    let mut no_iat = ada();
    no_iat.as_object_mut().unwrap().remove("iat");
    let cases = [
        ("not yet valid", oidc::sign(&with("nbf", (now + 600).into()), KEY_1, KID_1)),
        ("issued to another client", oidc::sign(&with("azp", "someone-else".into()), KEY_1, KID_1)),
        ("issued too long ago", oidc::sign(&with("iat", (now - 7200).into()), KEY_1, KID_1)),
        ("issued in the future", oidc::sign(&with("iat", (now + 600).into()), KEY_1, KID_1)),
        ("no issue time", oidc::sign(&no_iat, KEY_1, KID_1)),
        ("wrong issuer", oidc::sign(&with("iss", "https://evil.test".into()), KEY_1, KID_1)),
        ("wrong audience", oidc::sign(&with("aud", "someone-else".into()), KEY_1, KID_1)),
        ("expired", oidc::sign(&with("exp", (now - 300).into()), KEY_1, KID_1)),
        ("no subject", oidc::sign(&no_sub, KEY_1, KID_1)),
        ("bad signature", oidc::sign(&ada(), KEY_2, KID_1)),
        ("alg none", oidc::unsigned(&ada(), KID_1)),
        ("HS256 with the public key", oidc::hs256_with_public_key(&ada(), KID_1)),
        ("unknown kid", oidc::sign(&ada(), KEY_2, KID_2)),
        ("not a JWT", "not.a.jwt".to_owned()),
    ];
    for (case, token) in cases {
        let err = sso(&f, &token).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{case}");
        assert_eq!(err.to_string(), "invalid ID token", "{case}: the reason must not reach the caller");
    }
    let failures = f
        .stores
        .audit
        .query(&AuditQuery { action: Some(AuditAction::LoginFailed), limit: 20, ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(failures.len(), 14, "every refused token is audited");
    // `azp` naming AMP itself is fine.
    sso(&f, &oidc::sign(&with("azp", AUDIENCE.into()), KEY_1, KID_1)).await.unwrap();
}

#[tokio::test]
async fn a_rotated_key_is_accepted_after_one_refresh_of_the_jwks() {
    let keys = TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]));
    let f = fixture(keys.clone()).await;
    sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap();
    sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap();
    assert_eq!(keys.fetches(), 1, "known keys are served from the cache");

    keys.publish(oidc::jwks(&[(KEY_1, KID_1), (KEY_2, KID_2)]));
    sso(&f, &oidc::sign(&ada(), KEY_2, KID_2)).await.unwrap();
    assert_eq!(keys.fetches(), 2, "the new kid costs exactly one refresh");
    sso(&f, &oidc::sign(&ada(), KEY_2, KID_2)).await.unwrap();
    assert_eq!(keys.fetches(), 2);
}

#[tokio::test]
async fn unknown_kids_refresh_the_jwks_at_most_once_per_interval() {
    let keys = TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]));
    let f = fixture_with(Some(oidc_config(30)), keys.clone()).await;
    sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap();
    for i in 0..5 {
        let forged = oidc::sign(&ada(), KEY_2, &format!("made-up-{i}"));
        assert_eq!(sso(&f, &forged).await.unwrap_err().kind(), ErrorKind::Unauthenticated);
    }
    assert_eq!(keys.fetches(), 1, "forged kids must not make AMP hammer the provider");
}

#[tokio::test]
async fn a_jwks_endpoint_that_is_down_is_unavailable_not_unauthenticated() {
    let f = fixture(TestJwks::down()).await;
    let err = sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn a_disabled_user_is_refused() {
    let f = fixture(TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]))).await;
    let pair = sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap();
    f.stores.users.set_status(pair.session.user, amp_core::AccountStatus::Disabled).await.unwrap();
    let err = sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
}

#[tokio::test]
async fn sso_without_oidc_configuration_is_invalid_input() {
    let keys = TestJwks::serving(oidc::jwks(&[(KEY_1, KID_1)]));
    let f = fixture_with(None, keys.clone()).await;
    let err = sso(&f, &oidc::sign(&ada(), KEY_1, KID_1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "single sign-on is not configured");
    assert_eq!(keys.fetches(), 0);
}

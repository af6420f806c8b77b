//! The Session agent's accounts and tokens, on real SQLite stores.

use std::sync::Arc;
use std::time::Duration;

use amp_agents::SessionAgent;
use amp_agents::session::{DeviceLogin, Registration};
use amp_core::audit::{AuditAction, AuditQuery};
use amp_core::config::{AuthConfig, RegistrationMode};
use amp_core::{ErrorKind, Secret, Stores};
use amp_providers::sql::{PoolOptions, SqliteStores};
use amp_providers::{MemoryEventBus, MemoryRateLimiter};

struct Fixture {
    agent: SessionAgent,
    stores: Stores,
    _dir: tempfile::TempDir,
}

/// Registration open, so every test account is active at once.
fn open() -> AuthConfig {
    AuthConfig { registration: RegistrationMode::Open, ..AuthConfig::default() }
}

async fn fixture(config: AuthConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sql =
        Arc::new(SqliteStores::open(&dir.path().join("amp.db"), &PoolOptions::default()).await.unwrap());
    let stores = sql.stores();
    let config = AuthConfig { jwt_secret: Some(Secret::new("test-signing-key-".repeat(3))), ..config };
    let events = Arc::new(MemoryEventBus::new(&amp_core::config::EventBusConfig::default()));
    let agent =
        SessionAgent::new(stores.clone(), Arc::new(MemoryRateLimiter::new()), events, config).unwrap();
    Fixture { agent, stores, _dir: dir }
}

fn device(addr: &str) -> DeviceLogin {
    DeviceLogin { device: None, device_name: Some("laptop".into()), client_addr: Some(addr.into()) }
}

async fn register(agent: &SessionAgent, email: &str) {
    agent
        .register(
            Registration {
                email: email.into(),
                password: "correct horse battery".into(),
                display_name: None,
            },
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn login_gives_tokens_that_authenticate_and_logout_ends_them_at_once() {
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    let pair = f.agent.login("Ada@Example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    let me = f.agent.authenticate(&pair.access_token).await.unwrap();
    assert_eq!(me.session(), Some(pair.session.id));

    f.agent.logout(&me).await.unwrap();
    let err = f.agent.authenticate(&pair.access_token).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Unauthenticated,
        "an access token inside its lifetime must die with its session"
    );
    let err = f.agent.refresh(&pair.refresh_token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "the refresh token must die with its session");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_account_fail_alike() {
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    let wrong = f.agent.login("ada@example.test", "not the password", device("10.0.0.1")).await.unwrap_err();
    let unknown =
        f.agent.login("nobody@example.test", "not the password", device("10.0.0.1")).await.unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Unauthenticated);
    assert_eq!(wrong.to_string(), unknown.to_string(), "the error must not reveal which accounts exist");
    let failures = f
        .stores
        .audit
        .query(&AuditQuery { action: Some(AuditAction::LoginFailed), limit: 10, ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(failures.len(), 2, "failed sign-ins are audited");
}

#[tokio::test]
async fn repeated_failures_throttle_that_address_for_the_account_until_the_window_ends() {
    let f = fixture(AuthConfig { login_attempts_per_account: 3, ..open() }).await;
    register(&f.agent, "ada@example.test").await;
    for _ in 0..3 {
        let err =
            f.agent.login("ada@example.test", "guess guess guess", device("10.0.0.1")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    }
    let err =
        f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::RateLimited,
        "even the right password waits at the address that kept guessing"
    );
    assert!(err.retry_after().is_some_and(|d| d > Duration::ZERO), "a throttled sign-in says when to retry");
}

#[tokio::test]
async fn a_stranger_guessing_cannot_lock_the_owner_out() {
    let f = fixture(AuthConfig { login_attempts_per_account: 3, ..open() }).await;
    register(&f.agent, "ada@example.test").await;
    for _ in 0..6 {
        f.agent.login("ada@example.test", "guess guess guess", device("203.0.113.66")).await.unwrap_err();
    }
    // Beyond the limit the account's wrong answers come slowly, but Ada signs in from her
    // own address at once.
    let started = std::time::Instant::now();
    f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "the right password is not delayed");
}

#[tokio::test]
async fn a_successful_login_clears_the_account_failure_count() {
    let f = fixture(AuthConfig { login_attempts_per_account: 3, ..open() }).await;
    register(&f.agent, "ada@example.test").await;
    for _ in 0..2 {
        f.agent.login("ada@example.test", "guess guess guess", device("10.0.0.1")).await.unwrap_err();
    }
    f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    for _ in 0..2 {
        let err =
            f.agent.login("ada@example.test", "guess guess guess", device("10.0.0.1")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "the count starts over after a success");
    }
}

#[tokio::test]
async fn one_client_address_is_throttled_across_accounts() {
    let f = fixture(AuthConfig { login_attempts_per_address: 4, ..open() }).await;
    for i in 0..4 {
        let err = f
            .agent
            .login(&format!("u{i}@example.test"), "whatever pw", device("203.0.113.7"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    }
    let err = f.agent.login("u9@example.test", "whatever pw", device("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let other = f.agent.login("u9@example.test", "whatever pw", device("198.51.100.1")).await.unwrap_err();
    assert_eq!(other.kind(), ErrorKind::Unauthenticated, "other addresses are not affected");
}

#[tokio::test]
async fn refresh_rotates_and_a_replayed_token_ends_the_whole_family() {
    let f = fixture(AuthConfig { refresh_reuse_grace_secs: 0, ..open() }).await;
    register(&f.agent, "ada@example.test").await;
    let first = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let second = f.agent.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token, "every use rotates the refresh token");
    assert_eq!(second.session.id, first.session.id);
    f.agent.authenticate(&second.access_token).await.unwrap();

    // An attacker replays the first token: both the thief and the owner lose the session.
    let err = f.agent.refresh(&first.refresh_token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert_eq!(f.agent.refresh(&second.refresh_token).await.unwrap_err().kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        f.agent.authenticate(&second.access_token).await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
    let reuse = f
        .stores
        .audit
        .query(&AuditQuery {
            action: Some(AuditAction::TokenReuseDetected),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(reuse.len(), 1, "a replay is audited");
}

#[tokio::test]
async fn two_refreshes_within_the_grace_window_keep_the_session() {
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    let pair = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    // Two tabs refreshing at once, or a client retrying after it lost the first answer.
    let (a, b) = tokio::join!(f.agent.refresh(&pair.refresh_token), f.agent.refresh(&pair.refresh_token));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.session.id, b.session.id), (pair.session.id, pair.session.id));
    assert_ne!(a.refresh_token, b.refresh_token);
    f.agent.authenticate(&a.access_token).await.unwrap();
    f.agent.authenticate(&b.access_token).await.unwrap();
    f.agent.refresh(&b.refresh_token).await.unwrap();
    let reuse = f
        .stores
        .audit
        .query(&AuditQuery {
            action: Some(AuditAction::TokenReuseDetected),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(reuse.is_empty(), "a retry is not theft");
}

#[tokio::test]
async fn a_replay_after_the_grace_window_ends_the_session() {
    let f = fixture(AuthConfig { refresh_reuse_grace_secs: 1, ..open() }).await;
    register(&f.agent, "ada@example.test").await;
    let pair = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let next = f.agent.refresh(&pair.refresh_token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = f.agent.refresh(&pair.refresh_token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        f.agent.authenticate(&next.access_token).await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
    assert_eq!(f.agent.refresh(&next.refresh_token).await.unwrap_err().kind(), ErrorKind::Unauthenticated);
}

#[tokio::test]
async fn signing_in_beyond_the_cap_ends_the_oldest_session() {
    let f = fixture(AuthConfig { max_sessions_per_user: 2, ..open() }).await;
    register(&f.agent, "ada@example.test").await;
    let mut pairs = Vec::new();
    for _ in 0..3 {
        pairs.push(
            f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap(),
        );
    }
    assert_eq!(
        f.agent.authenticate(&pairs[0].access_token).await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
    let me = f.agent.authenticate(&pairs[2].access_token).await.unwrap();
    let devices: Vec<_> = f.agent.devices(&me).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(devices, vec![pairs[1].session.id, pairs[2].session.id]);
}

#[tokio::test]
async fn idle_sessions_and_expired_access_tokens_are_refused() {
    let f = fixture(AuthConfig { session_idle_timeout_secs: 1, access_token_ttl_secs: 1, ..open() }).await;
    register(&f.agent, "ada@example.test").await;
    let pair = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = f.agent.authenticate(&pair.access_token).await.unwrap_err();
    assert_eq!(err.to_string(), "access token expired");
    let err = f.agent.refresh(&pair.refresh_token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "an idle session cannot be refreshed");
}

#[tokio::test]
async fn api_keys_authenticate_until_revoked_and_only_their_owner_revokes_them() {
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    register(&f.agent, "bob@example.test").await;
    let ada_pair =
        f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let ada = f.agent.authenticate(&ada_pair.access_token).await.unwrap();
    let bob_pair =
        f.agent.login("bob@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let bob = f.agent.authenticate(&bob_pair.access_token).await.unwrap();

    let key = f.agent.create_api_key(&ada, "ci", &[]).await.unwrap();
    assert!(key.key.starts_with("amp_"));
    let via_key = f.agent.authenticate(&key.key).await.unwrap();
    assert_eq!(via_key.user, ada.user);
    assert_eq!(via_key.session(), None);
    let listed = f.agent.list_api_keys(&ada).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!serde_json::to_string(&listed).unwrap().contains(&key.key), "listings never show the key");

    let err = f.agent.revoke_api_key(&bob, key.record.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "another user's key is not even acknowledged");
    f.agent.authenticate(&key.key).await.unwrap();
    f.agent.revoke_api_key(&ada, key.record.id).await.unwrap();
    assert_eq!(f.agent.authenticate(&key.key).await.unwrap_err().kind(), ErrorKind::Unauthenticated);
    assert_eq!(f.agent.authenticate("amp_forged").await.unwrap_err().kind(), ErrorKind::Unauthenticated);
}

#[tokio::test]
async fn a_device_of_another_person_cannot_be_revoked() {
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    register(&f.agent, "bob@example.test").await;
    let ada_pair =
        f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let bob_pair =
        f.agent.login("bob@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let bob = f.agent.authenticate(&bob_pair.access_token).await.unwrap();
    let err = f.agent.revoke_device(&bob, ada_pair.session.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    f.agent.authenticate(&ada_pair.access_token).await.unwrap();
}

#[tokio::test]
async fn registration_checks_input_and_can_be_closed() {
    let f = fixture(open()).await;
    let short =
        Registration { email: "ada@example.test".into(), password: "short".into(), display_name: None };
    assert_eq!(f.agent.register(short, None).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    register(&f.agent, "ada@example.test").await;
    let dup = Registration {
        email: "ADA@example.test".into(),
        password: "another long one".into(),
        display_name: None,
    };
    assert_eq!(f.agent.register(dup, None).await.unwrap_err().kind(), ErrorKind::Conflict);

    let closed = fixture(AuthConfig { registration: RegistrationMode::Closed, ..open() }).await;
    let r = |email: &str| Registration {
        email: email.into(),
        password: "long enough pw".into(),
        display_name: None,
    };
    let first = closed.agent.register(r("first@example.test"), None).await.unwrap();
    assert!(first.admin, "a closed installation still gets its first account, the administrator");
    assert_eq!(
        closed.agent.register(r("x@example.test"), None).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );
}

#[tokio::test]
async fn a_disabled_account_cannot_sign_in_or_use_its_keys() {
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    let pair = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let ada = f.agent.authenticate(&pair.access_token).await.unwrap();
    let key = f.agent.create_api_key(&ada, "ci", &[]).await.unwrap();
    f.stores.users.set_status(ada.user, amp_core::AccountStatus::Disabled).await.unwrap();
    let err =
        f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "the right password learns the account is disabled");
    let err = f.agent.login("ada@example.test", "wrong password!", device("10.0.0.1")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "a wrong one learns nothing");
    assert_eq!(f.agent.authenticate(&key.key).await.unwrap_err().kind(), ErrorKind::Unauthenticated);
}

#[tokio::test]
async fn a_change_on_one_device_reaches_the_others_in_order_and_resumes_after_a_reconnect() {
    use futures::StreamExt;
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    let laptop =
        f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let phone = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.2")).await.unwrap();
    let laptop = f.agent.authenticate(&laptop.access_token).await.unwrap();
    let phone = f.agent.authenticate(&phone.access_token).await.unwrap();

    let mut on_phone = f.agent.follow(&phone, None).await.unwrap();
    let prefs = amp_core::Preferences { theme: Some("dark".into()), ..Default::default() };
    f.agent.update_preferences(&laptop, prefs).await.unwrap();
    let first = on_phone.next().await.unwrap().unwrap();
    assert_eq!(first.payload["type"], "preferences");
    assert_eq!(first.payload["data"]["theme"], "dark");
    assert_eq!(first.payload["from_session"], serde_json::json!(laptop.session()));
    drop(on_phone);

    f.agent.push(&laptop, serde_json::json!({"open_conversation": "c1"})).await.unwrap();
    f.agent.push(&laptop, serde_json::json!({"open_conversation": "c2"})).await.unwrap();
    let mut resumed = f.agent.follow(&phone, Some(first.id)).await.unwrap();
    for want in ["c1", "c2"] {
        let ev = resumed.next().await.unwrap().unwrap();
        assert_eq!(ev.payload["data"]["open_conversation"], want, "missed events replay in order");
    }
}

#[tokio::test]
async fn another_persons_changes_never_reach_my_devices_and_bad_pushes_are_refused() {
    use futures::StreamExt;
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    register(&f.agent, "bob@example.test").await;
    let ada = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let bob = f.agent.login("bob@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let ada = f.agent.authenticate(&ada.access_token).await.unwrap();
    let bob = f.agent.authenticate(&bob.access_token).await.unwrap();
    let mut ada_feed = f.agent.follow(&ada, None).await.unwrap();
    f.agent.push(&bob, serde_json::json!({"secret": "bob's"})).await.unwrap();
    let mine = f.agent.push(&ada, serde_json::json!({"mine": true})).await.unwrap();
    assert_eq!(ada_feed.next().await.unwrap().unwrap().id, mine, "only my own events arrive");

    assert_eq!(
        f.agent.push(&ada, serde_json::json!([1, 2])).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let huge = serde_json::json!({"blob": "x".repeat(70_000)});
    assert_eq!(f.agent.push(&ada, huge).await.unwrap_err().kind(), ErrorKind::PayloadTooLarge);
}

#[tokio::test]
async fn sessions_ended_by_the_cap_or_by_a_replayed_refresh_token_are_announced_to_devices() {
    use futures::StreamExt;
    let f = fixture(AuthConfig { max_sessions_per_user: 2, refresh_reuse_grace_secs: 0, ..open() }).await;
    register(&f.agent, "ada@example.test").await;
    let first = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let second =
        f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let watcher = f.agent.authenticate(&second.access_token).await.unwrap();
    let mut feed = f.agent.follow(&watcher, None).await.unwrap();

    // A third sign-in pushes the first session out.
    f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let ev = feed.next().await.unwrap().unwrap();
    assert_eq!(ev.payload["type"], "device_signed_out");
    assert_eq!(ev.payload["data"]["session"], serde_json::json!(first.session.id));

    // A replayed refresh token ends the second session.
    f.agent.refresh(&second.refresh_token).await.unwrap();
    f.agent.refresh(&second.refresh_token).await.unwrap_err();
    let ev = feed.next().await.unwrap().unwrap();
    assert_eq!(ev.payload["type"], "device_signed_out");
    assert_eq!(ev.payload["data"]["session"], serde_json::json!(second.session.id));
}

#[tokio::test]
async fn a_key_mints_sessions_or_keys_only_with_that_scope_and_never_more_than_it_has() {
    use amp_core::store::ApiKeyScope;
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    let pair = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let ada = f.agent.authenticate(&pair.access_token).await.unwrap();
    let plain = f.agent.create_api_key(&ada, "plain", &[]).await.unwrap();
    let plain = f.agent.authenticate(&plain.key).await.unwrap();
    let err = f.agent.create_session(&plain, DeviceLogin::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!(f.agent.create_api_key(&plain, "child", &[]).await.unwrap_err().kind(), ErrorKind::Forbidden);

    let keys_only = f.agent.create_api_key(&ada, "keys", &[ApiKeyScope::Keys]).await.unwrap();
    let keys_only = f.agent.authenticate(&keys_only.key).await.unwrap();
    let err = f.agent.create_api_key(&keys_only, "escalate", &[ApiKeyScope::Sessions]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "a key cannot grant what it lacks");
    f.agent.create_api_key(&keys_only, "child", &[ApiKeyScope::Keys]).await.unwrap();

    let opener = f.agent.create_api_key(&ada, "opener", &[ApiKeyScope::Sessions]).await.unwrap();
    let opener = f.agent.authenticate(&opener.key).await.unwrap();
    let minted = f.agent.create_session(&opener, DeviceLogin::default()).await.unwrap();
    assert_eq!(
        minted.session.minted_by,
        Some(amp_core::CredentialId::ApiKey(match opener.method {
            amp_agents::AuthMethod::ApiKey(id) => id,
            _ => unreachable!("authenticated by key"),
        }))
    );
}

#[tokio::test]
async fn revoking_a_credential_revokes_everything_it_minted() {
    use amp_core::store::ApiKeyScope;
    let f = fixture(open()).await;
    register(&f.agent, "ada@example.test").await;
    let pair = f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.1")).await.unwrap();
    let ada = f.agent.authenticate(&pair.access_token).await.unwrap();
    // session → key (may mint keys and sessions) → key and session → key.
    let root =
        f.agent.create_api_key(&ada, "root", &[ApiKeyScope::Keys, ApiKeyScope::Sessions]).await.unwrap();
    let root_p = f.agent.authenticate(&root.key).await.unwrap();
    let child = f.agent.create_api_key(&root_p, "child", &[]).await.unwrap();
    let minted = f.agent.create_session(&root_p, DeviceLogin::default()).await.unwrap();
    let minted_p = f.agent.authenticate(&minted.access_token).await.unwrap();
    let grandchild = f.agent.create_api_key(&minted_p, "grandchild", &[]).await.unwrap();
    let unrelated =
        f.agent.login("ada@example.test", "correct horse battery", device("10.0.0.2")).await.unwrap();
    let unrelated_p = f.agent.authenticate(&unrelated.access_token).await.unwrap();
    let unrelated_key = f.agent.create_api_key(&unrelated_p, "mine", &[]).await.unwrap();

    // Ending the first session ends every credential that descends from it.
    f.agent.logout(&ada).await.unwrap();
    for token in [&root.key, &child.key, &minted.access_token, &grandchild.key] {
        assert_eq!(f.agent.authenticate(token).await.unwrap_err().kind(), ErrorKind::Unauthenticated);
    }
    assert_eq!(f.agent.refresh(&minted.refresh_token).await.unwrap_err().kind(), ErrorKind::Unauthenticated);
    f.agent.authenticate(&unrelated.access_token).await.unwrap();
    f.agent.authenticate(&unrelated_key.key).await.unwrap();
}

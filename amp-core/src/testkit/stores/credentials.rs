use super::new_user;
use crate::error::ErrorKind;
use crate::ids::{ApiKeyId, UserId};
use crate::store::{ApiKeyRecord, ExternalIdentity, Stores};
use crate::testkit::{now_ms, unique};

/// Checks every promise of [`CredentialStore`](crate::store::CredentialStore).
pub async fn credentials(stores: &Stores) {
    let c = &stores.credentials;
    let (alice, bob) = (new_user(stores).await, new_user(stores).await);

    assert_eq!(c.password_hash(alice).await.unwrap(), None, "[credentials] a new user has no password");
    c.set_password_hash(alice, "$argon2id$v=19$first").await.unwrap();
    c.set_password_hash(alice, "$argon2id$v=19$second").await.unwrap();
    assert_eq!(
        c.password_hash(alice).await.unwrap().as_deref(),
        Some("$argon2id$v=19$second"),
        "[credentials] setting a password hash must replace the old one"
    );
    let err = c.set_password_hash(UserId::new(), "$argon2id$x").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "[credentials] a password for a missing user must be NotFound"
    );

    let identity = ExternalIdentity { issuer: "https://idp.example.test".into(), subject: unique("sub") };
    assert_eq!(c.find_user_by_identity(&identity).await.unwrap(), None);
    c.link_identity(alice, &identity).await.unwrap();
    c.link_identity(alice, &identity)
        .await
        .expect("[credentials] linking the same identity again is idempotent");
    assert_eq!(
        c.find_user_by_identity(&identity).await.unwrap(),
        Some(alice),
        "[credentials] identity lookup"
    );
    let err = c.link_identity(bob, &identity).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "[credentials] an identity linked to another user must be Conflict"
    );
    let other_issuer =
        ExternalIdentity { issuer: "https://other.example.test".into(), subject: identity.subject.clone() };
    assert_eq!(
        c.find_user_by_identity(&other_issuer).await.unwrap(),
        None,
        "[credentials] issuer and subject both count"
    );

    let key = |user, name: &str| ApiKeyRecord {
        id: ApiKeyId::new(),
        user,
        name: name.into(),
        prefix: "amp_1234".into(),
        hash: unique("hash"),
        created_at: now_ms(),
        revoked_at: None,
        scopes: Vec::new(),
        minted_by: None,
        daily_token_budget: None,
    };
    let first = key(alice, "ci");
    // Scopes, the minting credential and the budget must survive the store.
    let second = ApiKeyRecord {
        daily_token_budget: Some(50_000),
        scopes: vec![crate::store::ApiKeyScope::Sessions, crate::store::ApiKeyScope::Keys],
        minted_by: Some(crate::people::CredentialId::Session(crate::ids::SessionId::new())),
        ..key(alice, "laptop")
    };
    c.insert_api_key(first.clone()).await.unwrap();
    c.insert_api_key(second.clone()).await.unwrap();
    c.insert_api_key(key(bob, "bob's")).await.unwrap();
    assert_eq!(
        c.find_api_key(&first.hash).await.unwrap(),
        Some(first.clone()),
        "[credentials] keys are found by hash"
    );
    assert_eq!(c.find_api_key("no-such-hash").await.unwrap(), None);
    let listed = c.list_api_keys(alice).await.unwrap();
    assert_eq!(
        listed,
        vec![first.clone(), second.clone()],
        "[credentials] a user's keys, oldest first, only theirs"
    );

    let mut dup = key(bob, "dup");
    dup.hash = first.hash.clone();
    let err = c.insert_api_key(dup).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[credentials] a duplicate key hash must be Conflict");

    let err = c.revoke_api_key(bob, first.id, now_ms()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[credentials] revoking another user's key must be NotFound");
    assert_eq!(c.find_api_key(&first.hash).await.unwrap().unwrap().revoked_at, None);
    let at = now_ms();
    c.revoke_api_key(alice, first.id, at).await.unwrap();
    assert_eq!(
        c.find_api_key(&first.hash).await.unwrap().unwrap().revoked_at,
        Some(at),
        "[credentials] revoking must record when"
    );
    assert_eq!(c.revoke_api_keys_of(alice, now_ms()).await.unwrap(), 1, "[credentials] only live keys count");
    assert!(c.list_api_keys(alice).await.unwrap().iter().all(|k| k.revoked_at.is_some()));
    assert!(
        c.list_api_keys(bob).await.unwrap().iter().all(|k| k.revoked_at.is_none()),
        "[credentials] revoking one user's keys leaves others' alone"
    );
    super::users::email_tokens(stores).await;
    super::users::one_time_ids(stores).await;
}

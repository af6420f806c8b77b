use std::sync::Arc;

use chrono::Duration;

use super::new_user;
use crate::error::ErrorKind;
use crate::ids::{DeviceId, SessionId, TokenFamilyId, UserId};
use crate::people::DeviceSession;
use crate::store::{RefreshToken, RefreshTokenUse, Stores};
use crate::testkit::{now_ms, unique};

fn session(user: UserId, name: &str) -> DeviceSession {
    let now = now_ms();
    DeviceSession {
        id: SessionId::new(),
        user,
        device: DeviceId::new(),
        device_name: name.into(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::hours(12),
        revoked_at: None,
        // One of the kit's sessions was minted by a key: the store must keep that.
        minted_by: (name == "phone")
            .then(|| crate::people::CredentialId::ApiKey(crate::ids::ApiKeyId::new())),
    }
}

fn token(user: UserId, session: SessionId, family: TokenFamilyId) -> RefreshToken {
    let now = now_ms();
    RefreshToken {
        hash: unique("rt"),
        family,
        session,
        user,
        issued_at: now,
        expires_at: now + Duration::days(14),
        used_at: None,
        revoked_at: None,
    }
}

/// Checks every promise of [`SessionStore`](crate::store::SessionStore).
pub async fn sessions(stores: &Stores) {
    let s = &stores.sessions;
    let user = new_user(stores).await;
    let (laptop, phone) = (session(user, "laptop"), session(user, "phone"));
    s.create_session(laptop.clone()).await.unwrap();
    s.create_session(phone.clone()).await.unwrap();
    assert_eq!(
        s.get_session(laptop.id).await.unwrap(),
        Some(laptop.clone()),
        "[sessions] a session reads back intact"
    );
    assert_eq!(
        s.get_session(phone.id).await.unwrap(),
        Some(phone.clone()),
        "[sessions] a minted session reads back intact, minter included"
    );
    assert_eq!(s.get_session(SessionId::new()).await.unwrap(), None);

    let later = now_ms() + Duration::minutes(5);
    s.touch_session(laptop.id, later).await.unwrap();
    assert_eq!(
        s.get_session(laptop.id).await.unwrap().unwrap().last_seen_at,
        later,
        "[sessions] touch must record use"
    );
    let err = s.touch_session(SessionId::new(), later).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[sessions] touching a missing session must be NotFound");

    let ids: Vec<_> = s.list_sessions(user).await.unwrap().into_iter().map(|x| x.id).collect();
    assert_eq!(ids, vec![laptop.id, phone.id], "[sessions] a user's sessions, oldest first");
    assert!(
        s.revoke_session(laptop.id, later).await.unwrap(),
        "[sessions] revoking a live session reports true"
    );
    assert!(!s.revoke_session(laptop.id, later).await.unwrap(), "[sessions] revoking twice reports false");
    assert_eq!(s.get_session(laptop.id).await.unwrap().unwrap().revoked_at, Some(later));
    let ids: Vec<_> = s.list_sessions(user).await.unwrap().into_iter().map(|x| x.id).collect();
    assert_eq!(ids, vec![phone.id], "[sessions] revoked sessions are not listed");

    let family = TokenFamilyId::new();
    let first = token(user, phone.id, family);
    s.insert_refresh_token(first.clone()).await.unwrap();
    let at = now_ms();
    match s.use_refresh_token(&first.hash, at).await.unwrap() {
        RefreshTokenUse::Fresh(t) => assert_eq!(t.used_at, Some(at), "[sessions] a fresh use is marked used"),
        other => panic!("[sessions] the first use of a refresh token must be Fresh, got {other:?}"),
    }
    assert!(
        matches!(s.use_refresh_token(&first.hash, at).await.unwrap(), RefreshTokenUse::Replayed(_)),
        "[sessions] a second use must be reported as a replay"
    );
    assert_eq!(s.use_refresh_token("unknown", at).await.unwrap(), RefreshTokenUse::Unknown);

    // Of concurrent uses of one token, exactly one wins.
    let contested = token(user, phone.id, family);
    s.insert_refresh_token(contested.clone()).await.unwrap();
    let store = Arc::clone(s);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, hash) = (store.clone(), contested.hash.clone());
        tasks.push(tokio::spawn(async move { store.use_refresh_token(&hash, now_ms()).await.unwrap() }));
    }
    let mut fresh = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), RefreshTokenUse::Fresh(_)) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "[sessions] exactly one of concurrent uses of a refresh token may be Fresh");

    let unused = token(user, phone.id, family);
    s.insert_refresh_token(unused.clone()).await.unwrap();
    let other_family = token(user, phone.id, TokenFamilyId::new());
    s.insert_refresh_token(other_family.clone()).await.unwrap();
    assert_eq!(
        s.revoke_token_family(family, at).await.unwrap(),
        3,
        "[sessions] revoking a family must mark all its tokens"
    );
    assert_eq!(
        s.revoke_token_family(family, at).await.unwrap(),
        0,
        "[sessions] revoking twice marks nothing new"
    );
    match s.use_refresh_token(&unused.hash, at).await.unwrap() {
        RefreshTokenUse::Fresh(t) | RefreshTokenUse::Replayed(t) => {
            assert_eq!(t.revoked_at, Some(at), "[sessions] a revoked family's tokens must say so")
        }
        RefreshTokenUse::Unknown => panic!("[sessions] revoked tokens must still be found"),
    }
    match s.use_refresh_token(&other_family.hash, at).await.unwrap() {
        RefreshTokenUse::Fresh(t) => {
            assert_eq!(t.revoked_at, None, "[sessions] other families must be untouched")
        }
        other => panic!("[sessions] another family's token must be Fresh, got {other:?}"),
    }
}

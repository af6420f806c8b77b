use crate::error::ErrorKind;
use crate::ids::{ModelId, UserId};
use crate::people::{AccountStatus, Preferences};
use crate::store::{EmailToken, NewUser, Stores, UserQuery};
use crate::testkit::unique;

/// Checks every promise of [`UserStore`](crate::store::UserStore).
pub async fn users(stores: &Stores) {
    let s = &stores.users;
    let local = unique("Alice");
    let email = format!("{local}@Example.TEST");
    let user = s.create_user(NewUser::active(email.clone(), "Alice")).await.unwrap();
    assert_eq!(user.email, email, "[users] the email must be stored as given");
    assert_eq!(user.display_name, "Alice");
    assert_eq!(user.preferences, Preferences::default(), "[users] a new user has default preferences");
    assert!(
        user.is_active() && !user.email_verified && !user.admin,
        "[users] NewUser::active is stored as given"
    );

    let got = s.get_user(user.id).await.unwrap().expect("[users] a created user must be readable");
    assert_eq!(got.id, user.id);
    let found = s.find_user_by_email(&email.to_lowercase()).await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(user.id), "[users] email lookup must ignore case");
    assert!(s.find_user_by_email("nobody@example.test").await.unwrap().is_none());
    assert!(s.get_user(UserId::new()).await.unwrap().is_none(), "[users] an unknown id reads as None");

    let dup = NewUser::active(email.to_uppercase(), "Imposter");
    let err = s.create_user(dup).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[users] a duplicate email (any case) must be Conflict");

    let prefs = Preferences {
        default_model: Some(ModelId::new("local")),
        theme: Some("dark".into()),
        instructions: Some("be brief".into()),
        ..Preferences::default()
    };
    let updated = s.update_preferences(user.id, prefs.clone()).await.unwrap();
    assert_eq!(updated.preferences, prefs, "[users] update_preferences must return the new preferences");
    assert_eq!(
        s.get_user(user.id).await.unwrap().unwrap().preferences,
        prefs,
        "[users] preferences must persist"
    );
    let err = s.update_preferences(UserId::new(), prefs).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[users] updating a missing user must be NotFound");

    s.set_status(user.id, AccountStatus::Disabled).await.unwrap();
    assert_eq!(
        s.get_user(user.id).await.unwrap().unwrap().status,
        AccountStatus::Disabled,
        "[users] set_status must persist"
    );
    s.set_status(user.id, AccountStatus::Active).await.unwrap();
    assert!(s.get_user(user.id).await.unwrap().unwrap().is_active());
    let err = s.set_status(UserId::new(), AccountStatus::Disabled).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[users] changing a missing user must be NotFound");
    s.set_admin(user.id, true).await.unwrap();
    assert!(s.get_user(user.id).await.unwrap().unwrap().admin, "[users] set_admin must persist");
    s.set_admin(user.id, false).await.unwrap();
    assert_eq!(s.set_admin(UserId::new(), true).await.unwrap_err().kind(), ErrorKind::NotFound);

    assert!(
        !s.mark_email_verified(user.id, "someone.else@example.test").await.unwrap(),
        "[users] a token for another address verifies nothing"
    );
    assert!(!s.get_user(user.id).await.unwrap().unwrap().email_verified);
    assert!(s.mark_email_verified(user.id, &email.to_uppercase()).await.unwrap());
    assert!(s.get_user(user.id).await.unwrap().unwrap().email_verified, "[users] verification must persist");

    let pending = s
        .create_user(NewUser {
            status: AccountStatus::Pending,
            ..NewUser::active(format!("{}@example.test", unique("p")), "P")
        })
        .await
        .unwrap();
    assert_eq!(pending.status, AccountStatus::Pending);
    let page = s
        .list_users(&UserQuery { status: Some(AccountStatus::Pending), limit: 1000, ..UserQuery::default() })
        .await
        .unwrap();
    assert!(page.iter().any(|u| u.id == pending.id), "[users] list_users filters by status");
    assert!(page.iter().all(|u| u.status == AccountStatus::Pending));
    let after =
        s.list_users(&UserQuery { after: Some(user.id), limit: 1000, ..UserQuery::default() }).await.unwrap();
    assert!(after.iter().all(|u| u.id > user.id), "[users] list_users pages by id");
    assert!(after.iter().any(|u| u.id == pending.id));
    let one = s.list_users(&UserQuery { limit: 1, ..UserQuery::default() }).await.unwrap();
    assert_eq!(one.len(), 1, "[users] list_users honours the limit");

    // Of accounts that claim the installation, at most one ever becomes administrator.
    let claims = (0..3).map(|i| {
        s.create_user(NewUser {
            claims_installation: true,
            status: AccountStatus::Pending,
            ..NewUser::active(format!("{}@example.test", unique(&format!("c{i}"))), "C")
        })
    });
    let claimed = futures::future::try_join_all(claims).await.unwrap();
    assert!(claimed.iter().filter(|u| u.admin).count() <= 1, "[users] the installation is claimed once");
    for u in &claimed {
        let stored = s.get_user(u.id).await.unwrap().unwrap();
        assert_eq!((stored.admin, stored.status), (u.admin, u.status), "[users] the claim is stored");
        assert_eq!(
            u.admin,
            u.status == AccountStatus::Active,
            "[users] the claimant is active, others as given"
        );
    }
    let later = s
        .create_user(NewUser {
            claims_installation: true,
            ..NewUser::active(format!("{}@example.test", unique("l")), "L")
        })
        .await
        .unwrap();
    assert!(!later.admin, "[users] a claim after the first never wins");
}

/// Checks the email-token promises of [`CredentialStore`](crate::store::CredentialStore).
pub async fn email_tokens(stores: &Stores) {
    let c = &stores.credentials;
    let user = stores
        .users
        .create_user(NewUser::active(format!("{}@example.test", unique("e")), "E"))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let token = |hash: &str, expires_at| EmailToken {
        hash: hash.into(),
        user: user.id,
        email: user.email.clone(),
        expires_at,
    };
    let first = unique("first-hash");
    c.insert_email_token(token(&first, now + chrono::Duration::hours(1))).await.unwrap();
    let second = unique("second-hash");
    c.insert_email_token(token(&second, now + chrono::Duration::hours(1))).await.unwrap();
    assert!(
        c.take_email_token(&first, now).await.unwrap().is_none(),
        "[credentials] a newer token replaces older ones"
    );
    let taken = c.take_email_token(&second, now).await.unwrap().expect("[credentials] a live token is taken");
    assert_eq!((taken.user, taken.email.as_str()), (user.id, user.email.as_str()));
    assert!(c.take_email_token(&second, now).await.unwrap().is_none(), "[credentials] a token works once");
    let stale = unique("stale-hash");
    c.insert_email_token(token(&stale, now - chrono::Duration::seconds(1))).await.unwrap();
    assert!(
        c.take_email_token(&stale, now).await.unwrap().is_none(),
        "[credentials] an expired token is refused"
    );
    assert!(c.take_email_token("never-issued", now).await.unwrap().is_none());
}

/// Checks the single-use id promises of [`CredentialStore`](crate::store::CredentialStore).
pub async fn one_time_ids(stores: &Stores) {
    let c = &stores.credentials;
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::minutes(5);
    let id = unique("assertion");
    assert!(c.claim_once("replay", &id, later, now).await.unwrap(), "[credentials] a new id is claimed");
    assert!(
        !c.claim_once("replay", &id, later, now).await.unwrap(),
        "[credentials] a claimed id is refused again"
    );
    assert!(c.claim_once("other-kind", &id, later, now).await.unwrap(), "[credentials] kinds are separate");
    let after = later + chrono::Duration::seconds(1);
    assert!(
        c.claim_once("replay", &id, after + chrono::Duration::minutes(5), after).await.unwrap(),
        "[credentials] an expired id may be claimed again"
    );

    let request = unique("request");
    assert!(c.claim_once("request", &request, later, now).await.unwrap());
    assert!(c.take_once("request", &request, now).await.unwrap(), "[credentials] a live id is taken");
    assert!(!c.take_once("request", &request, now).await.unwrap(), "[credentials] an id is taken once");
    assert!(!c.take_once("request", "never-recorded", now).await.unwrap());
    let stale = unique("stale-request");
    assert!(c.claim_once("request", &stale, now + chrono::Duration::seconds(1), now).await.unwrap());
    assert!(
        !c.take_once("request", &stale, later).await.unwrap(),
        "[credentials] an expired id is not taken"
    );
}

use crate::error::ErrorKind;
use crate::ids::{ModelId, UserId};
use crate::people::Preferences;
use crate::store::{NewUser, Stores};
use crate::testkit::unique;

/// Checks every promise of [`UserStore`](crate::store::UserStore).
pub async fn users(stores: &Stores) {
    let s = &stores.users;
    let local = unique("Alice");
    let email = format!("{local}@Example.TEST");
    let user = s.create_user(NewUser { email: email.clone(), display_name: "Alice".into() }).await.unwrap();
    assert_eq!(user.email, email, "[users] the email must be stored as given");
    assert_eq!(user.display_name, "Alice");
    assert_eq!(user.preferences, Preferences::default(), "[users] a new user has default preferences");
    assert!(!user.disabled);

    let got = s.get_user(user.id).await.unwrap().expect("[users] a created user must be readable");
    assert_eq!(got.id, user.id);
    let found = s.find_user_by_email(&email.to_lowercase()).await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(user.id), "[users] email lookup must ignore case");
    assert!(s.find_user_by_email("nobody@example.test").await.unwrap().is_none());
    assert!(s.get_user(UserId::new()).await.unwrap().is_none(), "[users] an unknown id reads as None");

    let dup = NewUser { email: email.to_uppercase(), display_name: "Imposter".into() };
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

    s.set_disabled(user.id, true).await.unwrap();
    assert!(s.get_user(user.id).await.unwrap().unwrap().disabled, "[users] set_disabled must persist");
    s.set_disabled(user.id, false).await.unwrap();
    assert!(!s.get_user(user.id).await.unwrap().unwrap().disabled);
    let err = s.set_disabled(UserId::new(), true).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[users] disabling a missing user must be NotFound");
}

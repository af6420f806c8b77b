//! Identity over HTTP, each test written as the attack it stops: the stranger who registers
//! the administrator's address, the invitee placed in a workspace without consent, the
//! disabled account whose credentials keep working.

mod support;

use amp_core::config::RegistrationMode;
use axum::Router;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{JsonResponse, TestApp, request_raw, send, test_app_with};

const PASSWORD: &str = "correct horse battery";

/// A server whose mails land as files in `<data dir>/mail`.
async fn app_with(adjust: impl FnOnce(&mut amp_core::AmpConfig)) -> (TestApp, Router) {
    let t = test_app_with(|c| {
        c.auth.mail_dir = Some("mail".into());
        adjust(c);
    })
    .await;
    let app = amp_server::router(t.state.clone());
    (t, app)
}

async fn register(app: &Router, email: &str) -> JsonResponse {
    let body = json!({"email": email, "password": PASSWORD});
    send(app.clone(), Method::POST, "/auth/register", None, Some(body)).await
}

async fn login(app: &Router, email: &str) -> JsonResponse {
    let body = json!({"email": email, "password": PASSWORD});
    send(app.clone(), Method::POST, "/auth/login", None, Some(body)).await
}

async fn token_of(app: &Router, email: &str) -> String {
    let r = login(app, email).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn call(app: &Router, method: Method, path: &str, token: &str, body: Option<Value>) -> JsonResponse {
    send(app.clone(), method, path, Some(token), body).await
}

/// The verification token in the newest mail to `to`.
fn mailed_token(t: &TestApp, to: &str) -> String {
    let dir = t.state.config().data_dir.join("mail");
    let mut mails: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    mails.sort();
    let mail = mails
        .iter()
        .rev()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|m| m.starts_with(&format!("To: {to}\r\n")))
        .unwrap_or_else(|| panic!("no mail to {to} in {}", dir.display()));
    let at = mail.find("token=").expect("the mail carries a link") + "token=".len();
    mail[at..].split_whitespace().next().unwrap().to_owned()
}

async fn open_link(app: &Router, token: &str) -> (StatusCode, String) {
    let (status, _, body) = request_raw(
        app,
        Method::GET,
        &format!("/auth/verify-email?token={token}"),
        &[],
        axum::body::Body::empty(),
    )
    .await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_stranger_who_registers_the_administrators_address_gets_no_rights() {
    let (t, app) = app_with(|c| {
        c.auth.registration = RegistrationMode::Approval;
        c.auth.admins = vec!["boss@example.test".into()];
    })
    .await;
    // The operator sets the installation up: the first account administers it.
    let first = register(&app, "operator@example.test").await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!((first.body["admin"].clone(), first.body["status"].clone()), (json!(true), json!("active")));
    let operator = token_of(&app, "operator@example.test").await;

    // A stranger registers the address the config names as an administrator.
    let stranger = register(&app, "BOSS@example.test").await;
    assert_eq!(stranger.status, StatusCode::CREATED);
    assert_eq!(
        (stranger.body["admin"].clone(), stranger.body["status"].clone()),
        (json!(false), json!("pending"))
    );
    assert_eq!(stranger.body["email_verified"], json!(false));
    let r = login(&app, "boss@example.test").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a pending account cannot sign in: {}", r.body);
    assert!(r.body.get("access_token").is_none());

    // Even approved, an unverified address claims nothing.
    let id = stranger.body["id"].as_str().unwrap();
    let r = call(&app, Method::POST, &format!("/admin/users/{id}/approve"), &operator, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let token = token_of(&app, "boss@example.test").await;
    for (method, path, body) in [
        (Method::GET, "/admin/users", None),
        (Method::GET, "/admin/audit", None),
        (Method::DELETE, "/models/local", None),
    ] {
        let r = call(&app, method, path, &token, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
    // The link went to the address's mailbox, not to the stranger; guessing fails.
    for guess in ["ampev_guess", "", "../../etc/passwd"] {
        let r = call(&app, Method::POST, "/auth/verify-email", &token, Some(json!({"token": guess}))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{guess}: {}", r.body);
    }
    // The owner of the mailbox who opens the link, without the stranger's password,
    // verifies nothing.
    let link = mailed_token(&t, "BOSS@example.test");
    assert_eq!(open_link(&app, &link).await.0, StatusCode::OK);
    let owner =
        send(app.clone(), Method::POST, "/auth/verify-email", None, Some(json!({"token": link}))).await;
    assert_eq!(owner.status, StatusCode::UNAUTHORIZED);
    let me = call(&app, Method::GET, "/session/current", &token, None).await;
    assert_eq!(me.body["user"]["admin"], json!(false));
}

#[tokio::test]
async fn of_two_first_registrations_at_once_exactly_one_administers() {
    let (_t, app) = app_with(|c| c.auth.registration = RegistrationMode::Approval).await;
    let (a, b) = tokio::join!(register(&app, "a@example.test"), register(&app, "b@example.test"));
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::CREATED));
    let admins = [&a, &b].iter().filter(|r| r.body["admin"] == json!(true)).count();
    assert_eq!(admins, 1, "{} / {}", a.body, b.body);
    let later = register(&app, "c@example.test").await;
    assert_eq!((later.body["admin"].clone(), later.body["status"].clone()), (json!(false), json!("pending")));
}

#[tokio::test]
async fn closed_registration_admits_only_the_first_account() {
    let (_t, app) = app_with(|c| c.auth.registration = RegistrationMode::Closed).await;
    let first = register(&app, "operator@example.test").await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body["admin"], json!(true));
    let r = register(&app, "ada@example.test").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(login(&app, "ada@example.test").await.status, StatusCode::UNAUTHORIZED, "nothing was stored");
    // The administrator creates accounts directly; their addresses count as verified.
    let operator = token_of(&app, "operator@example.test").await;
    let body = json!({"email": "ada@example.test", "password": PASSWORD, "display_name": "Ada"});
    let r = call(&app, Method::POST, "/admin/users", &operator, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["email_verified"].clone(), r.body["status"].clone()), (json!(true), json!("active")));
    token_of(&app, "ada@example.test").await;
    let r = call(
        &app,
        Method::POST,
        "/admin/users",
        &operator,
        Some(json!({"email": "x@example.test", "root": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown fields are refused");
}

#[tokio::test]
async fn an_address_is_verified_by_its_link_once_and_only_by_its_own_account() {
    let (t, app) = app_with(|_| {}).await;
    assert_eq!(register(&app, "ada@example.test").await.status, StatusCode::CREATED);
    let ada = token_of(&app, "ada@example.test").await;
    register(&app, "mallory@example.test").await;
    let mallory = token_of(&app, "mallory@example.test").await;
    let link = mailed_token(&t, "ada@example.test");
    assert!(link.starts_with("ampev_"));

    // Opening the link (a person, or a mail scanner) changes nothing by itself.
    let (status, page) = open_link(&app, &link).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("sign in"), "{page}");
    let unsigned =
        send(app.clone(), Method::POST, "/auth/verify-email", None, Some(json!({"token": link}))).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED, "confirming needs the account's sign-in");
    let me = call(&app, Method::GET, "/session/current", &ada, None).await;
    assert_eq!(me.body["user"]["email_verified"], json!(false));
    // Someone else's account cannot use it (and the link is spent).
    let r = call(&app, Method::POST, "/auth/verify-email", &mallory, Some(json!({"token": link}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let me = call(&app, Method::GET, "/session/current", &mallory, None).await;
    assert_eq!(me.body["user"]["email_verified"], json!(false));

    // A new link replaces the old one; the account that asked confirms it, once.
    assert_eq!(
        call(&app, Method::POST, "/auth/verify-email/send", &ada, None).await.status,
        StatusCode::ACCEPTED
    );
    let fresh = mailed_token(&t, "ada@example.test");
    assert_ne!(fresh, link);
    let r = call(&app, Method::POST, "/auth/verify-email", &ada, Some(json!({"token": fresh}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["email_verified"], json!(true));
    let r = call(&app, Method::POST, "/auth/verify-email", &ada, Some(json!({"token": fresh}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a link works once");
    let r = call(&app, Method::POST, "/auth/verify-email/send", &ada, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "already verified");

    // Asking too often is throttled, and an older link stops working.
    register(&app, "bob@example.test").await;
    let bob = token_of(&app, "bob@example.test").await;
    let old = mailed_token(&t, "bob@example.test");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(call(&app, Method::POST, "/auth/verify-email/send", &bob, None).await.status);
    }
    assert_eq!(statuses[..5], [StatusCode::ACCEPTED; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    let r = call(&app, Method::POST, "/auth/verify-email", &bob, Some(json!({"token": old}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "an older link stops working");
}

#[tokio::test]
async fn a_disabled_account_loses_every_credential_at_once() {
    let (_t, app) = app_with(|_| {}).await;
    register(&app, "operator@example.test").await;
    let operator = token_of(&app, "operator@example.test").await;
    let ada = register(&app, "ada@example.test").await;
    let ada_id = ada.body["id"].as_str().unwrap().to_owned();
    let pair = login(&app, "ada@example.test").await.body;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let key = call(&app, Method::POST, "/auth/api-keys", &access, Some(json!({"name": "ci"}))).await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    assert_eq!(call(&app, Method::GET, "/auth/verify", &key, None).await.status, StatusCode::OK);

    // Not for her to do.
    let r = call(&app, Method::POST, &format!("/admin/users/{ada_id}/enable"), &access, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = call(&app, Method::POST, &format!("/admin/users/{ada_id}/disable"), &operator, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], json!("disabled"));
    assert_eq!(call(&app, Method::GET, "/auth/verify", &access, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, Method::GET, "/auth/verify", &key, None).await.status, StatusCode::UNAUTHORIZED);
    let refresh = json!({"refresh_token": pair["refresh_token"]});
    let r = send(app.clone(), Method::POST, "/auth/refresh", None, Some(refresh)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "ada@example.test").await.status, StatusCode::FORBIDDEN);

    let r = call(&app, Method::POST, &format!("/admin/users/{ada_id}/enable"), &operator, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        call(&app, Method::GET, "/auth/verify", &key, None).await.status,
        StatusCode::UNAUTHORIZED,
        "the keys the ended sessions made stay revoked"
    );
    assert_eq!(
        call(&app, Method::GET, "/auth/verify", &access, None).await.status,
        StatusCode::UNAUTHORIZED,
        "ended sessions stay ended"
    );

    // Resetting sessions signs every device out; administrators cannot lock themselves out.
    let again = token_of(&app, "ada@example.test").await;
    let r = call(&app, Method::POST, &format!("/admin/users/{ada_id}/reset-sessions"), &operator, None).await;
    assert_eq!(r.body["sessions_ended"], json!(1));
    assert_eq!(call(&app, Method::GET, "/auth/verify", &again, None).await.status, StatusCode::UNAUTHORIZED);
    let me = call(&app, Method::GET, "/session/current", &operator, None).await;
    let operator_id = me.body["user"]["id"].as_str().unwrap().to_owned();
    let r = call(&app, Method::POST, &format!("/admin/users/{operator_id}/disable"), &operator, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn administrators_list_accounts_and_read_an_audit_log_that_records_the_reading() {
    let (_t, app) = app_with(|c| c.auth.registration = RegistrationMode::Approval).await;
    register(&app, "operator@example.test").await;
    let operator = token_of(&app, "operator@example.test").await;
    let pending = register(&app, "p@example.test").await.body["id"].as_str().unwrap().to_owned();
    let r = call(&app, Method::GET, "/admin/users?status=pending", &operator, None).await;
    let ids: Vec<&str> = r.body.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![pending.as_str()]);
    let all = call(&app, Method::GET, "/admin/users?limit=1", &operator, None).await;
    assert_eq!(all.body.as_array().unwrap().len(), 1);
    let first = all.body[0]["id"].as_str().unwrap();
    let rest = call(&app, Method::GET, &format!("/admin/users?after={first}"), &operator, None).await;
    assert_eq!(rest.body[0]["id"], json!(pending), "pages follow on");

    call(&app, Method::POST, &format!("/admin/users/{pending}/approve"), &operator, None).await;
    let r = call(&app, Method::POST, &format!("/admin/users/{pending}/approve"), &operator, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "only pending accounts are approved");
    let r = call(&app, Method::GET, "/admin/audit?action=account_approved", &operator, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events = r.body.as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["target"], json!(format!("user:{pending}")));
    let since = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let r = call(
        &app,
        Method::GET,
        &format!("/admin/audit?since={}", since.replace('+', "%2B")),
        &operator,
        None,
    )
    .await;
    assert_eq!(r.body, json!([]), "time filters apply");
    let r = call(&app, Method::GET, "/admin/audit?action=audit_read", &operator, None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2, "each reading of the log is itself audited");
    let r = call(&app, Method::GET, "/admin/audit?action=no_such_action", &operator, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn nobody_joins_a_workspace_without_accepting_from_a_verified_address() {
    let (t, app) = app_with(|_| {}).await;
    register(&app, "owner@example.test").await;
    let owner = token_of(&app, "owner@example.test").await;
    let ws = call(&app, Method::POST, "/workspaces", &owner, Some(json!({"name": "Research"}))).await;
    let ws = ws.body["id"].as_str().unwrap().to_owned();
    register(&app, "bob@example.test").await;
    let bob = token_of(&app, "bob@example.test").await;

    let invite = json!({"email": "Bob@Example.test", "role": "editor"});
    let r = call(&app, Method::POST, &format!("/workspaces/{ws}/members"), &owner, Some(invite)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["result"], json!("invited"));
    // Invited is not a member: the workspace stays invisible to him.
    assert_eq!(
        call(&app, Method::GET, &format!("/workspaces/{ws}"), &bob, None).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = call(&app, Method::GET, "/workspaces", &bob, None).await;
    assert_eq!(listed.body, json!([]));
    // Unverified, the invitation is not his to see or take.
    assert_eq!(call(&app, Method::GET, "/session/invitations", &bob, None).await.body, json!([]));
    let accept = format!("/session/invitations/{ws}/accept");
    assert_eq!(call(&app, Method::POST, &accept, &bob, None).await.status, StatusCode::FORBIDDEN);

    // A stranger who registers the address of someone invited gets nothing either.
    let invite = json!({"email": "carol@example.test", "role": "viewer"});
    call(&app, Method::POST, &format!("/workspaces/{ws}/members"), &owner, Some(invite)).await;
    register(&app, "carol@example.test").await;
    let fake_carol = token_of(&app, "carol@example.test").await;
    assert_eq!(call(&app, Method::POST, &accept, &fake_carol, None).await.status, StatusCode::FORBIDDEN);

    // Bob proves his address, sees the invitation and accepts it.
    let link = mailed_token(&t, "bob@example.test");
    let r = call(&app, Method::POST, "/auth/verify-email", &bob, Some(json!({"token": link}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mine = call(&app, Method::GET, "/session/invitations", &bob, None).await;
    assert_eq!(mine.body[0]["workspace"], json!(ws));
    assert_eq!(mine.body[0]["workspace_name"], json!("Research"));
    let r = call(&app, Method::POST, &accept, &bob, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], json!("editor"));
    assert_eq!(
        call(&app, Method::GET, &format!("/workspaces/{ws}"), &bob, None).await.status,
        StatusCode::OK
    );
    assert_eq!(call(&app, Method::POST, &accept, &bob, None).await.status, StatusCode::NOT_FOUND, "once");

    // For a member, the same call changes the role at once; the owner sees what is open.
    let change = json!({"email": "bob@example.test", "role": "viewer"});
    let r = call(&app, Method::POST, &format!("/workspaces/{ws}/members"), &owner, Some(change)).await;
    assert_eq!((r.status, r.body["result"].clone()), (StatusCode::OK, json!("updated")));
    let open = call(&app, Method::GET, &format!("/workspaces/{ws}/invitations"), &owner, None).await;
    let emails: Vec<&str> =
        open.body.as_array().unwrap().iter().map(|i| i["email"].as_str().unwrap()).collect();
    assert_eq!(emails, vec!["carol@example.test"]);
    let r = call(&app, Method::GET, &format!("/workspaces/{ws}/invitations"), &bob, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only owners see invitations");
    let r =
        call(&app, Method::DELETE, &format!("/workspaces/{ws}/invitations/carol@example.test"), &owner, None)
            .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let open = call(&app, Method::GET, &format!("/workspaces/{ws}/invitations"), &owner, None).await;
    assert_eq!(open.body, json!([]));
}

#[tokio::test]
async fn a_config_that_lets_an_unverified_address_claim_a_privilege_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    for (adjust, key) in [
        (
            Box::new(|c: &mut amp_core::AmpConfig| c.auth.admins = vec!["*@example.com".into()])
                as Box<dyn FnOnce(&mut amp_core::AmpConfig)>,
            "auth.admins[0]",
        ),
        (
            Box::new(|c: &mut amp_core::AmpConfig| {
                c.auth.oidc = Some(amp_core::config::OidcConfig {
                    issuer: "https://sso.example.test".into(),
                    audience: "amp".into(),
                    jwks_url: "https://sso.example.test/jwks".into(),
                    email_claim: "email".into(),
                    jwks_refresh_min_secs: 30,
                    assume_email_verified: true,
                    link_verified_emails: true,
                    max_token_age_secs: 3600,
                })
            }),
            "auth.oidc.assume_email_verified",
        ),
    ] {
        let mut config =
            amp_core::AmpConfig { data_dir: dir.path().to_owned(), ..amp_core::AmpConfig::default() };
        adjust(&mut config);
        let Err(err) = amp_server::AppState::open(config).await else { panic!("{key}: the server started") };
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
}

//! Accounts, tokens, devices and API keys over HTTP.

mod support;

use axum::http::{Method, StatusCode, header};
use serde_json::json;
use support::{send, test_app, test_app_with};

async fn register_and_login(app: &axum::Router, email: &str) -> serde_json::Value {
    let r = send(
        app.clone(),
        Method::POST,
        "/auth/register",
        None,
        Some(json!({"email": email, "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = send(
        app.clone(),
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": email, "password": "correct horse battery", "device_name": "test"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

#[tokio::test]
async fn a_person_registers_signs_in_uses_the_api_and_signs_out() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let pair = register_and_login(&app, "ada@example.test").await;
    let token = pair["access_token"].as_str().unwrap();
    assert_eq!(pair["token_type"], "Bearer");

    let verify = send(app.clone(), Method::GET, "/auth/verify", Some(token), None).await;
    assert_eq!(verify.status, StatusCode::OK);
    assert_eq!(verify.body["valid"], true);

    let current = send(app.clone(), Method::GET, "/session/current", Some(token), None).await;
    assert_eq!(current.body["user"]["email"], "ada@example.test");
    assert_eq!(current.body["session"]["id"], pair["session"]["id"]);

    let prefs = json!({"preferences": {"theme": "dark", "default_model": "local"}});
    let updated = send(app.clone(), Method::PUT, "/session/update", Some(token), Some(prefs)).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["preferences"]["theme"], "dark");

    let devices = send(app.clone(), Method::GET, "/agents/session/devices", Some(token), None).await;
    assert_eq!(devices.body.as_array().unwrap().len(), 1);
    let status = send(app.clone(), Method::GET, "/agents/session/status", Some(token), None).await;
    assert_eq!(status.body["active_devices"], 1);

    let out = send(app.clone(), Method::DELETE, "/auth/logout", Some(token), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = send(app, Method::GET, "/auth/verify", Some(token), None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "logout must end the access token at once");
    assert_eq!(after.headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(after.body["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn missing_and_forged_credentials_are_401() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let none = send(app.clone(), Method::GET, "/session/current", None, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.body["error"]["message"], "missing bearer token");
    for forged in ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.e30.sig", "amp_forgedkey"] {
        let r = send(app.clone(), Method::GET, "/session/current", Some(forged), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{forged}");
    }
}

#[tokio::test]
async fn bad_bodies_get_the_error_shape_and_store_nothing() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/auth/register")
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{\"email\": \"ada@example.test\", \"password\": "))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/auth/login")
        .header("content-type", "text/plain")
        .body(axum::body::Body::from("email=ada"))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let unknown_field = json!({"email": "a@example.test", "password": "long enough pw", "admin": true});
    let r = send(app.clone(), Method::POST, "/auth/login", None, Some(unknown_field)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown fields are refused, not ignored");
    assert!(t.state.stores().users.find_user_by_email("ada@example.test").await.unwrap().is_none());
}

#[tokio::test]
async fn a_replayed_refresh_token_is_401_and_ends_the_session() {
    let t = test_app_with(|c| c.auth.refresh_reuse_grace_secs = 0).await;
    let app = amp_server::router(t.state.clone());
    let pair = register_and_login(&app, "ada@example.test").await;
    let body = json!({"refresh_token": pair["refresh_token"]});
    let next = send(app.clone(), Method::POST, "/auth/refresh", None, Some(body.clone())).await;
    assert_eq!(next.status, StatusCode::OK);
    let replay = send(app.clone(), Method::POST, "/auth/refresh", None, Some(body)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    let token = next.body["access_token"].as_str().unwrap();
    let r = send(app, Method::GET, "/auth/verify", Some(token), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_keys_are_shown_once_work_as_bearer_and_are_private_to_their_owner() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let ada = register_and_login(&app, "ada@example.test").await;
    let bob = register_and_login(&app, "bob@example.test").await;
    let (ada_t, bob_t) = (ada["access_token"].as_str().unwrap(), bob["access_token"].as_str().unwrap());

    let created =
        send(app.clone(), Method::POST, "/auth/api-keys", Some(ada_t), Some(json!({"name": "ci"}))).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let id = created.body["record"]["id"].as_str().unwrap().to_owned();

    let listed = send(app.clone(), Method::GET, "/auth/api-keys", Some(ada_t), None).await;
    assert!(!listed.body.to_string().contains(&key), "the key is never listed");
    let bobs = send(app.clone(), Method::GET, "/auth/api-keys", Some(bob_t), None).await;
    assert_eq!(bobs.body, json!([]), "another user's keys are invisible");

    let verify = send(app.clone(), Method::GET, "/auth/verify", Some(&key), None).await;
    assert_eq!(verify.status, StatusCode::OK);
    assert_eq!(verify.body["auth"]["method"], "api_key");

    let path = format!("/auth/api-keys/{id}");
    let theft = send(app.clone(), Method::DELETE, &path, Some(bob_t), None).await;
    assert_eq!(theft.status, StatusCode::NOT_FOUND);
    let revoked = send(app.clone(), Method::DELETE, &path, Some(ada_t), None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let verify = send(app.clone(), Method::GET, "/auth/verify", Some(&key), None).await;
    assert_eq!(verify.status, StatusCode::UNAUTHORIZED);
    let bad_id = send(app, Method::DELETE, "/auth/api-keys/not-an-id", Some(ada_t), None).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn another_persons_device_is_404_and_stays_signed_in() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let ada = register_and_login(&app, "ada@example.test").await;
    let bob = register_and_login(&app, "bob@example.test").await;
    let path = format!("/agents/session/devices/{}", ada["session"]["id"].as_str().unwrap());
    let r = send(app.clone(), Method::DELETE, &path, bob["access_token"].as_str(), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let still = send(app, Method::GET, "/auth/verify", ada["access_token"].as_str(), None).await;
    assert_eq!(still.status, StatusCode::OK);
}

#[tokio::test]
async fn throttled_sign_ins_are_429_with_retry_after() {
    let t = test_app_with(|c| c.auth.login_attempts_per_account = 2).await;
    let app = amp_server::router(t.state.clone());
    register_and_login(&app, "ada@example.test").await;
    let wrong = json!({"email": "ada@example.test", "password": "not it at all"});
    for _ in 0..2 {
        let r = send(app.clone(), Method::POST, "/auth/login", None, Some(wrong.clone())).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = send(app, Method::POST, "/auth/login", None, Some(wrong)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"]["code"], "rate_limited");
    let after: u64 = r.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(after >= 1);
}

#[tokio::test]
async fn closed_registration_is_403_after_the_first_account() {
    let t = test_app_with(|c| c.auth.registration = amp_core::config::RegistrationMode::Closed).await;
    let app = amp_server::router(t.state.clone());
    let body = json!({"email": "operator@example.test", "password": "correct horse battery"});
    let r = send(app.clone(), Method::POST, "/auth/register", None, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = json!({"email": "ada@example.test", "password": "correct horse battery"});
    let r = send(app, Method::POST, "/auth/register", None, Some(body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

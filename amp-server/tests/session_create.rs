//! `POST /session/create` over HTTP: an authenticated caller opens another device session,
//! which works on its own and counts toward the per-user cap like a sign-in.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{send, test_app, test_app_with};

async fn person(app: &axum::Router, email: &str) -> String {
    let body = json!({"email": email, "password": "correct horse battery", "device_name": "laptop"});
    let creds = json!({"email": email, "password": "correct horse battery"});
    send(app.clone(), Method::POST, "/auth/register", None, Some(creds)).await;
    let login = send(app.clone(), Method::POST, "/auth/login", None, Some(body)).await;
    login.body["access_token"].as_str().unwrap().to_owned()
}

fn device_names(devices: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        devices.as_array().unwrap().iter().map(|d| d["device_name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_created_session_has_working_tokens_and_is_listed_beside_the_first() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let me = person(&app, "me@example.test").await;

    let body = json!({"device_name": "phone"});
    let created = send(app.clone(), Method::POST, "/session/create", Some(&me), Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["token_type"], json!("Bearer"));
    assert!(created.body["refresh_token"].as_str().is_some_and(|r| !r.is_empty()));
    let phone = created.body["access_token"].as_str().unwrap().to_owned();

    let current = send(app.clone(), Method::GET, "/session/current", Some(&phone), None).await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.body["session"]["id"], created.body["session"]["id"]);
    assert_eq!(current.body["session"]["device_name"], json!("phone"));

    let devices = send(app.clone(), Method::GET, "/agents/session/devices", Some(&me), None).await;
    assert_eq!(devices.status, StatusCode::OK);
    assert_eq!(device_names(&devices.body), ["laptop", "phone"]);
}

#[tokio::test]
async fn an_api_key_can_create_a_session_only_with_the_sessions_scope() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let me = person(&app, "me@example.test").await;
    let plain =
        send(app.clone(), Method::POST, "/auth/api-keys", Some(&me), Some(json!({"name": "ci"}))).await;
    let plain = plain.body["key"].as_str().unwrap().to_owned();
    let refused = send(app.clone(), Method::POST, "/session/create", Some(&plain), Some(json!({}))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let scoped = json!({"name": "provisioner", "scopes": ["sessions"]});
    let key = send(app.clone(), Method::POST, "/auth/api-keys", Some(&me), Some(scoped)).await;
    assert_eq!(key.body["record"]["scopes"], json!(["sessions"]));
    let key = key.body["key"].as_str().unwrap().to_owned();
    let r =
        send(app.clone(), Method::POST, "/auth/api-keys", Some(&key), Some(json!({"name": "child"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "nor keys without the keys scope");

    let created = send(app.clone(), Method::POST, "/session/create", Some(&key), Some(json!({}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.body["access_token"].as_str().unwrap();
    let verify = send(app.clone(), Method::GET, "/auth/verify", Some(token), None).await;
    assert_eq!(verify.status, StatusCode::OK);
}

#[tokio::test]
async fn created_sessions_count_toward_the_cap_and_end_the_oldest() {
    let t = test_app_with(|c| c.auth.max_sessions_per_user = 2).await;
    let app = amp_server::router(t.state.clone());
    let first = person(&app, "me@example.test").await;
    let second = send(app.clone(), Method::POST, "/session/create", Some(&first), Some(json!({}))).await;
    let second = second.body["access_token"].as_str().unwrap().to_owned();
    let third = send(app.clone(), Method::POST, "/session/create", Some(&second), Some(json!({}))).await;
    assert_eq!(third.status, StatusCode::CREATED);

    let gone = send(app.clone(), Method::GET, "/session/current", Some(&first), None).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "the oldest session ended");
    let devices = send(app.clone(), Method::GET, "/agents/session/devices", Some(&second), None).await;
    assert_eq!(devices.body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn creating_a_session_needs_a_bearer_credential() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let body = Some(json!({"device_name": "phone"}));
    let r = send(app.clone(), Method::POST, "/session/create", None, body.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], json!("unauthenticated"));
    let forged = send(app.clone(), Method::POST, "/session/create", Some("not-a-token"), body).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

//! Cross-device sync over Server-Sent Events.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use support::{send, test_app};
use tower::ServiceExt;

async fn login(app: &axum::Router, email: &str, register: bool) -> String {
    if register {
        let body = json!({"email": email, "password": "correct horse battery"});
        send(app.clone(), Method::POST, "/auth/register", None, Some(body)).await;
    }
    let body = json!({"email": email, "password": "correct horse battery"});
    let r = send(app.clone(), Method::POST, "/auth/login", None, Some(body)).await;
    r.body["access_token"].as_str().unwrap().to_owned()
}

/// Opens the SSE stream and returns its body.
async fn follow(app: &axum::Router, token: &str, last_event_id: Option<&str>) -> (StatusCode, Body) {
    let mut request =
        Request::builder().uri("/session/sync").header("authorization", format!("Bearer {token}"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    (response.status(), response.into_body())
}

/// Reads SSE text until `count` `event: change` frames have arrived; returns (id, data) pairs.
async fn changes(body: &mut Body, count: usize) -> Vec<(String, serde_json::Value)> {
    let mut text = String::new();
    let mut found = Vec::new();
    while found.len() < count {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event within 5 s")
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        found.clear();
        for block in text.split("\n\n").filter(|b| b.contains("event: change")) {
            let id = block.lines().find_map(|l| l.strip_prefix("id: ")).unwrap_or_default().to_owned();
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            found.push((id, serde_json::from_str(data).unwrap()));
        }
    }
    found
}

#[tokio::test]
async fn a_preference_change_on_the_laptop_streams_to_the_phone_and_resumes_by_last_event_id() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let laptop = login(&app, "ada@example.test", true).await;
    let phone = login(&app, "ada@example.test", false).await;

    let (status, mut stream) = follow(&app, &phone, None).await;
    assert_eq!(status, StatusCode::OK);
    let prefs = json!({"preferences": {"theme": "dark"}});
    send(app.clone(), Method::PUT, "/session/update", Some(&laptop), Some(prefs)).await;
    let first = changes(&mut stream, 1).await;
    assert_eq!(first[0].1["type"], "preferences");
    assert_eq!(first[0].1["data"]["theme"], "dark");
    drop(stream);

    for n in ["c1", "c2"] {
        let r = send(
            app.clone(),
            Method::POST,
            "/session/sync",
            Some(&laptop),
            Some(json!({"state": {"open": n}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let (_, mut resumed) = follow(&app, &phone, Some(&first[0].0)).await;
    let missed = changes(&mut resumed, 2).await;
    assert_eq!(missed[0].1["data"]["open"], "c1");
    assert_eq!(missed[1].1["data"]["open"], "c2");
}

#[tokio::test]
async fn a_stale_or_malformed_last_event_id_is_refused() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let token = login(&app, "ada@example.test", true).await;
    let (status, _) = follow(&app, &token, Some("yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let window = t.state.config().events.replay_window;
    for _ in 0..window + 2 {
        send(app.clone(), Method::POST, "/agents/session/sync", Some(&token), Some(json!({"state": {}})))
            .await;
    }
    let (status, _) = follow(&app, &token, Some("1")).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "resuming from before the replay window must ask for a full reload"
    );
}

#[tokio::test]
async fn signing_a_device_out_closes_its_stream_and_strangers_see_nothing() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let ada = login(&app, "ada@example.test", true).await;
    let bob = login(&app, "bob@example.test", true).await;
    let (_, mut bob_stream) = follow(&app, &bob, None).await;
    let (_, mut ada_stream) = follow(&app, &ada, None).await;
    send(app.clone(), Method::POST, "/session/sync", Some(&ada), Some(json!({"state": {"private": true}})))
        .await;
    send(app.clone(), Method::POST, "/session/sync", Some(&bob), Some(json!({"state": {"bob": true}}))).await;
    let bobs = changes(&mut bob_stream, 1).await;
    assert_eq!(bobs[0].1["data"], json!({"bob": true}), "another person's changes never reach my devices");

    changes(&mut ada_stream, 1).await;
    let out = send(app.clone(), Method::DELETE, "/auth/logout", Some(&ada), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = ada_stream.frame().await {
            frame.unwrap();
        }
    })
    .await;
    assert!(closed.is_ok(), "the signed-out device's stream must end");
}

/// Reads the stream until it ends; returns everything it said. Fails if it stays open
/// longer than `within`.
async fn until_closed(body: &mut Body, within: Duration) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await.expect("the stream closes in time");
        match frame {
            None => return text,
            Some(frame) => {
                if let Ok(data) = frame.unwrap().into_data() {
                    text.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
        }
    }
}

#[tokio::test]
async fn a_stream_opened_with_a_key_that_is_then_revoked_closes() {
    let t = support::test_app_with(|c| c.auth.sync_recheck_secs = 1).await;
    let app = amp_server::router(t.state.clone());
    let session = login(&app, "ada@example.test", true).await;
    let key =
        send(app.clone(), Method::POST, "/auth/api-keys", Some(&session), Some(json!({"name": "sync"})))
            .await;
    let (id, key) =
        (key.body["record"]["id"].as_str().unwrap().to_owned(), key.body["key"].as_str().unwrap().to_owned());
    let (status, mut stream) = follow(&app, &key, None).await;
    assert_eq!(status, StatusCode::OK);
    let r = send(app.clone(), Method::DELETE, &format!("/auth/api-keys/{id}"), Some(&session), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let said = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(said.contains("event: error") && said.contains("unauthenticated"), "{said}");
    assert_eq!(follow(&app, &key, None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_stream_of_an_account_that_is_disabled_closes() {
    let t = support::test_app_with(|c| c.auth.sync_recheck_secs = 1).await;
    let app = amp_server::router(t.state.clone());
    let admin = login(&app, "operator@example.test", true).await;
    let ada = login(&app, "ada@example.test", true).await;
    let key =
        send(app.clone(), Method::POST, "/auth/api-keys", Some(&ada), Some(json!({"name": "sync"}))).await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    let (_, mut by_session) = follow(&app, &ada, None).await;
    let (_, mut by_key) = follow(&app, &key, None).await;
    let me = send(app.clone(), Method::GET, "/session/current", Some(&ada), None).await;
    let user = me.body["user"]["id"].as_str().unwrap().to_owned();
    let r =
        send(app.clone(), Method::POST, &format!("/admin/users/{user}/disable"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let said = until_closed(&mut by_session, Duration::from_secs(5)).await;
    assert!(said.contains("device_signed_out"), "{said}");
    let said = until_closed(&mut by_key, Duration::from_secs(5)).await;
    assert!(said.contains("event: error"), "{said}");
}

//! Liveness and readiness probes.

mod support;

use axum::http::{Method, StatusCode, header};
use serde_json::json;
use support::{call, test_app};

#[tokio::test]
async fn healthz_answers_200_with_status_ok_json() {
    let app = test_app().await;
    let response = call(amp_server::router(app.state.clone()), Method::GET, "/healthz").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(response.body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_answers_200_ready_while_serving() {
    let app = test_app().await;
    let response = call(amp_server::router(app.state.clone()), Method::GET, "/readyz").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, json!({"status": "ready"}));
}

#[tokio::test]
async fn readyz_answers_503_once_draining() {
    let app = test_app().await;
    let state = app.state.clone();
    let app = amp_server::router(state.clone());
    assert_eq!(call(app.clone(), Method::GET, "/readyz").await.status, StatusCode::OK);

    state.begin_draining();
    let response = call(app, Method::GET, "/readyz").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.body["error"]["code"], "unavailable");
    assert_eq!(response.body["error"]["message"], "shutting down");
}

#[tokio::test]
async fn healthz_stays_200_while_draining() {
    let app = test_app().await;
    let state = app.state.clone();
    state.begin_draining();
    let response = call(amp_server::router(state), Method::GET, "/healthz").await;
    assert_eq!(response.status, StatusCode::OK);
}

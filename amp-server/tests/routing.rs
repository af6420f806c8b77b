//! Requests that match no route get the same JSON error shape as every other error.

mod support;

use axum::http::{Method, StatusCode, header};
use support::{call, test_app};

#[tokio::test]
async fn unknown_path_answers_404_json_naming_the_path() {
    let app = test_app().await;
    let response = call(amp_server::router(app.state.clone()), Method::GET, "/no/such/thing?x=1").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(response.body["error"]["code"], "not_found");
    let message = response.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/no/such/thing"), "{message}");
}

#[tokio::test]
async fn wrong_method_on_a_known_path_answers_405_json_with_allow() {
    let app = test_app().await;
    let response = call(amp_server::router(app.state.clone()), Method::POST, "/healthz").await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.body["error"]["code"], "method_not_allowed");
    let message = response.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("POST") && message.contains("/healthz"), "{message}");
    let allow = response.headers[header::ALLOW].to_str().unwrap_or_default();
    assert!(allow.contains("GET"), "{allow}");
}

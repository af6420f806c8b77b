//! Per-person and per-key quotas over HTTP: the account that floods chat, spends its
//! tokens, or uploads without end is stopped with 429 and `Retry-After`, and one key's
//! spending is limited on its own.

mod support;

use amp_providers::mock::MockServer;
use amp_providers::mock::openai;
use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::{call_as, loopback_registry, person, send, test_app_with};

fn hello() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16})
}

async fn quota(app: &axum::Router, token: &str, name: &str) -> Value {
    let (status, all) = call_as(app, Method::GET, "/session/quotas", token, None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    all.as_array().unwrap().iter().find(|q| q["quota"] == name).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn chat_beyond_the_per_minute_quota_is_429_with_retry_after_and_each_key_counts_alone() {
    let upstream = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let models = loopback_registry(&upstream, 8192, 1024);
    let t = test_app_with(|c| {
        c.models = models;
        c.quotas.chat_requests_per_minute = 3;
    })
    .await;
    let app = amp_server::router(t.state.clone());
    let ada = person(&app, "ada@example.test").await;
    let (_, key) = call_as(&app, Method::POST, "/auth/api-keys", &ada, Some(json!({"name": "ci"}))).await;
    let key = key["key"].as_str().unwrap().to_owned();

    // The key spends 3 of its own, which are also the person's 3.
    for _ in 0..3 {
        let r = send(app.clone(), Method::POST, "/v1/chat/completions", Some(&key), Some(hello())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = send(app.clone(), Method::POST, "/v1/chat/completions", Some(&key), Some(hello())).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let retry: u64 = r.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The person's own allowance is spent too: the native chat is refused the same way.
    let (status, body) =
        call_as(&app, Method::POST, "/chat/send", &ada, Some(json!({"message": "Hello?"}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Another person is not affected.
    let bob = person(&app, "bob@example.test").await;
    let r = send(app.clone(), Method::POST, "/v1/chat/completions", Some(&bob), Some(hello())).await;
    assert_eq!(r.status, StatusCode::OK);

    let used = quota(&app, &ada, "chat_requests_per_minute").await;
    assert_eq!((used["limit"].clone(), used["used"].clone()), (json!(3), json!(3)), "{used}");
}

#[tokio::test]
async fn a_spent_daily_token_budget_stops_further_turns() {
    let upstream = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let models = loopback_registry(&upstream, 8192, 1024);
    // The mock reports 12 tokens an answer.
    let t = test_app_with(|c| {
        c.models = models;
        c.quotas.tokens_per_day = 20;
    })
    .await;
    let app = amp_server::router(t.state.clone());
    let ada = person(&app, "ada@example.test").await;
    for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        let r = send(app.clone(), Method::POST, "/v1/chat/completions", Some(&ada), Some(hello())).await;
        assert_eq!(r.status, expected, "{}", r.body);
    }
    let used = quota(&app, &ada, "tokens_per_day").await;
    assert_eq!(used["used"], json!(24), "{used}");
    assert!(used["resets_in_secs"].as_u64().unwrap() > 80_000);
}

#[tokio::test]
async fn a_key_with_a_budget_of_its_own_stops_at_it_while_its_owner_goes_on() {
    let upstream = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let models = loopback_registry(&upstream, 8192, 1024);
    let t = test_app_with(|c| c.models = models).await;
    let app = amp_server::router(t.state.clone());
    let ada = person(&app, "ada@example.test").await;
    let (status, body) = call_as(
        &app,
        Method::POST,
        "/auth/api-keys",
        &ada,
        Some(json!({"name": "script", "daily_token_budget": 20})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["record"]["daily_token_budget"], 20);
    let key = body["key"].as_str().unwrap().to_owned();
    // The mock reports 12 tokens an answer: two turns spend the budget.
    for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        let r = send(app.clone(), Method::POST, "/v1/chat/completions", Some(&key), Some(hello())).await;
        assert_eq!(r.status, expected, "{}", r.body);
    }
    let shown = quota(&app, &key, "tokens_per_day").await;
    assert_eq!((shown["limit"].clone(), shown["used"].clone()), (json!(20), json!(24)), "{shown}");
    // Its owner's own allowance is the default one, far from spent.
    let r = send(app.clone(), Method::POST, "/v1/chat/completions", Some(&ada), Some(hello())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A budgeted key cannot mint what would escape its budget: other keys, sessions.
    for scope in ["keys", "sessions"] {
        let asked = json!({"name": "escape", "daily_token_budget": 20, "scopes": [scope]});
        let (status, body) = call_as(&app, Method::POST, "/auth/api-keys", &ada, Some(asked)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scope}: {body}");
    }
    let (status, _) =
        call_as(&app, Method::POST, "/auth/api-keys", &key, Some(json!({"name": "child"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a budgeted key has no `keys` scope");
    // A budget of nothing is a mistake, not a key that can never chat.
    let (status, body) = call_as(
        &app,
        Method::POST,
        "/auth/api-keys",
        &ada,
        Some(json!({"name": "x", "daily_token_budget": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn uploads_beyond_the_hourly_count_or_the_daily_bytes_are_refused() {
    let t = test_app_with(|c| {
        c.quotas.uploads_per_hour = 2;
        c.quotas.upload_bytes_per_day = 1_000;
    })
    .await;
    let app = amp_server::router(t.state.clone());
    let ada = person(&app, "ada@example.test").await;
    let announce =
        |size: u64| json!({"files": [{"name": "a.txt", "media_type": "text/plain", "size_bytes": size}]});
    // More bytes than a day allows are refused before anything is stored.
    let (status, body) = call_as(&app, Method::POST, "/files/upload-urls", &ada, Some(announce(5_000))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    for _ in 0..2 {
        let (status, body) =
            call_as(&app, Method::POST, "/files/upload-urls", &ada, Some(announce(10))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = call_as(&app, Method::POST, "/files/upload-urls", &ada, Some(announce(10))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the third upload in an hour: {body}");
    let (_, files) = call_as(&app, Method::GET, "/files", &ada, None).await;
    assert_eq!(files.as_array().map(Vec::len), Some(2), "refused uploads stored nothing: {files}");
    let used = quota(&app, &ada, "upload_bytes_per_day").await;
    assert_eq!(used["used"], json!(20));
}

//! The OpenAI-compatible gateway and the Router's endpoints, over loopback mock providers.

mod support;

use amp_core::{ModelId, ModelRegistryConfig};
use amp_providers::mock::openai::{self, ChatCompletionStream};
use amp_providers::mock::{MockResponse, MockServer};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{call_as, person, post_text, send, test_app_with};

const ADMIN: &str = "ops@example.com";

fn registry(models: Value) -> ModelRegistryConfig {
    serde_json::from_value(models).unwrap()
}

fn openai_model(server: &MockServer, extra: Value) -> Value {
    let mut m = json!({"provider": "OpenAICompatible", "context_window": 8192, "max_tokens": 1024, "tier": "Balanced",
        "deployments": [{"name": "loopback", "endpoint": format!("{}/v1", server.url())}]});
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    m
}

struct Gateway {
    app: axum::Router,
    key: String,
    token: String,
    _app: support::TestApp,
}

/// A server whose registry is `models`, with a signed-in administrator holding an API key.
async fn gateway(models: Value) -> Gateway {
    let test_app = test_app_with(|c| {
        c.models = registry(models);
        c.auth.admins = vec![ADMIN.to_owned()];
        c.router.retry.retries_per_model = 0;
    })
    .await;
    let app = amp_server::router(test_app.state.clone());
    let token = person(&app, ADMIN).await;
    let (status, created) =
        call_as(&app, Method::POST, "/auth/api-keys", &token, Some(json!({"name": "ci"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    Gateway { app, key, token, _app: test_app }
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16})
}

#[tokio::test]
async fn chat_completions_answer_in_openai_shape_with_an_api_key() {
    let upstream = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let g = gateway(json!({"default_model": "m", "models": {"m": openai_model(&upstream, json!({}))}})).await;
    let r = send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("m"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["object"], "chat.completion");
    assert_eq!(r.body["model"], "m");
    assert_eq!(r.body["choices"][0]["message"]["content"], "Hello from the mock.");
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop");
    assert_eq!(r.body["usage"]["total_tokens"], 12);
    assert_eq!(r.headers["x-amp-deployment"], "loopback");
    // The upstream saw the request with the deployment's model name.
    assert_eq!(upstream.last_request().unwrap().json().unwrap()["model"], "m");
    // Access tokens work as well as API keys.
    let r = send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.token), Some(hello("m"))).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn streams_end_with_usage_then_done_when_asked() {
    let upstream = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let g = gateway(json!({"models": {"m": openai_model(&upstream, json!({}))}})).await;
    let mut body = hello("m");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, headers, text) = post_text(&g.app, "/v1/chat/completions", &g.key, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let payloads: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(payloads.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> =
        payloads[..payloads.len() - 1].iter().map(|p| serde_json::from_str(p).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "Hello from the mock.");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");

    // Without stream_options there is no usage chunk.
    let mut body = hello("m");
    body["stream"] = json!(true);
    let (_, _, text) = post_text(&g.app, "/v1/chat/completions", &g.key, body).await;
    assert!(!text.contains("\"usage\""), "{text}");
}

#[tokio::test]
async fn a_stream_broken_after_its_first_token_ends_with_an_error_object() {
    let frames = ChatCompletionStream::new("c1", "m").text("Hel").frames();
    let upstream =
        MockServer::always(MockResponse::sse(frames.into_iter().take(2)).then_reset()).await.unwrap();
    let g = gateway(json!({"models": {"m": openai_model(&upstream, json!({}))}})).await;
    let mut body = hello("m");
    body["stream"] = json!(true);
    let (status, _, text) = post_text(&g.app, "/v1/chat/completions", &g.key, body).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains(r#""content":"Hel""#), "{text}");
    let last = text.lines().filter_map(|l| l.strip_prefix("data: ")).next_back().unwrap();
    let error: Value = serde_json::from_str(last).unwrap();
    assert_eq!(error["error"]["type"], "server_error", "{last}");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn wrong_keys_and_unknown_models_get_openai_errors() {
    let upstream = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let g = gateway(json!({"models": {"m": openai_model(&upstream, json!({}))}})).await;
    let r =
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some("amp_wrong"), Some(hello("m"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["type"], "authentication_error");
    assert_eq!(r.body["error"]["code"], "invalid_api_key");
    assert!(r.headers.contains_key("www-authenticate"));

    let r =
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("gpt-9"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "model_not_found", "{}", r.body);

    let bad = json!({"model": "m", "messages": "not a list"});
    let r = send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(bad)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert_eq!(upstream.request_count(), 0);
}

#[tokio::test]
async fn exhausted_options_map_to_429_502_503_and_504() {
    let limited = MockServer::always(
        openai::error_response(429, "Rate limit reached", "requests", Some("rate_limit_exceeded"))
            .with_header("retry-after", "7"),
    )
    .await
    .unwrap();
    let broken = MockServer::always(openai::error_response(500, "boom", "server_error", None)).await.unwrap();
    let stalled = MockServer::always(MockResponse::stall()).await.unwrap();
    let slow = json!({"deployments": [{"name": "slow", "endpoint": format!("{}/v1", stalled.url()),
        "timeouts": {"first_token_ms": 100}}]});
    let g = gateway(json!({"models": {
        "limited": openai_model(&limited, json!({})),
        "broken": openai_model(&broken, json!({})),
        "stalled": openai_model(&stalled, slow)}}))
    .await;
    let r =
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("limited"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.headers["retry-after"], "7");
    assert_eq!(r.body["error"]["code"], "rate_limit_exceeded");
    // The deployment now cools down: the next request is refused without a call.
    let r =
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("limited"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(limited.request_count(), 1);

    let r =
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("broken"))).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("broken/loopback"), "{}", r.body);

    let r =
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("stalled"))).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.body);

    // Five failures open the breaker of `broken`: then it is unavailable (503).
    for _ in 0..4 {
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("broken"))).await;
    }
    let r =
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("broken"))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    let (_, status) = call_as(&g.app, Method::GET, "/agents/router/status", &g.token, None).await;
    let broken_status =
        status["models"].as_array().unwrap().iter().find(|m| m["id"] == "broken").unwrap().clone();
    assert_eq!(broken_status["deployments"][0]["breaker"]["state"], "open", "{broken_status}");
}

#[tokio::test]
async fn an_agent_named_as_the_model_applies_its_instructions_model_and_sampling() {
    let primary =
        MockServer::always(openai::error_response(503, "overloaded", "server_error", None)).await.unwrap();
    let backup = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let g = gateway(json!({"models": {
        "primary": openai_model(&primary, json!({})),
        "backup": openai_model(&backup, json!({}))}}))
    .await;
    let spec = json!({"name": "Pirate", "instructions": "Answer like a pirate.", "model": "primary",
        "fallbacks": ["backup"], "temperature": 0.3, "max_tokens": 50});
    let (status, agent) = call_as(&g.app, Method::POST, "/agents/registry", &g.token, Some(spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");

    for name in [json!("pirate"), agent["id"].clone()] {
        let body = json!({"model": name, "messages": [{"role": "user", "content": "Hi"}]});
        let r = send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["model"], "backup");
        let sent = backup.last_request().unwrap().json().unwrap();
        assert_eq!(sent["messages"][0], json!({"role": "system", "content": "Answer like a pirate."}));
        assert_eq!(sent["messages"][1]["content"], "Hi");
        assert!((sent["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6, "{sent}");
        assert_eq!(sent["max_tokens"], 50);
    }

    // An agent naming a model that is not in the registry is refused.
    let bad = json!({"name": "Ghost", "model": "gpt-9"});
    let (status, body) = call_as(&g.app, Method::POST, "/agents/registry", &g.token, Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Another person cannot use this agent: it is an unknown model to them.
    let other = person(&g.app, "eve@example.com").await;
    let body = json!({"model": agent["id"], "messages": [{"role": "user", "content": "Hi"}]});
    let r = send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&other), Some(body)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

#[tokio::test]
async fn models_are_listed_selected_and_changed_by_administrators_only() {
    let a = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let b = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let g = gateway(json!({"default_model": "a", "models": {
        "a": openai_model(&a, json!({"tier": "Economical"})), "b": openai_model(&b, json!({"tier": "Premium"}))}}))
    .await;

    let (_, listed) = call_as(&g.app, Method::GET, "/v1/models", &g.key, None).await;
    let ids: Vec<&str> =
        listed["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b"]);
    let (_, available) = call_as(&g.app, Method::GET, "/models/available", &g.key, None).await;
    assert_eq!(available[0]["is_default"], true);
    assert_eq!(available[1]["available"], true);
    let (status, _) = call_as(&g.app, Method::GET, "/models/nope/status", &g.token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // No model named: the configured default, until the person selects another.
    let no_model = json!({"messages": [{"role": "user", "content": "Hi"}]});
    let r =
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(no_model.clone())).await;
    assert_eq!(r.body["model"], "a");
    let (status, _) =
        call_as(&g.app, Method::POST, "/models/select", &g.token, Some(json!({"model": "b"}))).await;
    assert_eq!(status, StatusCode::OK);
    let r = send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(no_model)).await;
    assert_eq!(r.body["model"], "b");
    // A tier works as a model name.
    let r =
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("premium"))).await;
    assert_eq!(r.body["model"], "b");

    // Changes need an administrator.
    let someone = person(&g.app, "someone@example.com").await;
    let balance = json!({"model": "a", "strategy": "round_robin"});
    let (status, _) =
        call_as(&g.app, Method::POST, "/agents/router/balance", &someone, Some(balance.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, changed) =
        call_as(&g.app, Method::POST, "/agents/router/balance", &g.token, Some(balance)).await;
    assert_eq!((status, &changed["strategy"]), (StatusCode::OK, &json!("round_robin")));

    let new_model = openai_model(&b, json!({"tier": "Balanced"}));
    let (status, _) = call_as(&g.app, Method::PUT, "/models/c", &someone, Some(new_model.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call_as(&g.app, Method::PUT, "/models/c", &g.token, Some(new_model)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("c"))).await;
    assert_eq!(r.status, StatusCode::OK);
    let (status, _) = call_as(&g.app, Method::DELETE, "/models/c", &g.token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("c"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (status, _) = call_as(&g.app, Method::DELETE, "/models/a", &g.token, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "the default cannot be removed");
}

#[tokio::test]
async fn router_metrics_are_readable_as_json_and_in_prometheus_format() {
    let upstream = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let g = gateway(json!({"models": {"metered": openai_model(&upstream, json!({}))}})).await;
    for _ in 0..3 {
        send(g.app.clone(), Method::POST, "/v1/chat/completions", Some(&g.key), Some(hello("metered"))).await;
    }
    // Per-deployment figures are for administrators signed in, not for keys.
    let (status, _) = call_as(&g.app, Method::GET, "/agents/router/metrics", &g.key, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, metrics) = call_as(&g.app, Method::GET, "/agents/router/metrics", &g.token, None).await;
    assert_eq!(status, StatusCode::OK);
    let d = &metrics["models"]["metered"]["loopback"];
    assert_eq!(
        (d["requests"].as_u64(), d["successes"].as_u64(), d["completion_tokens"].as_u64()),
        (Some(3), Some(3), Some(12))
    );
    assert_eq!(d["latency"]["count"], 3);

    let anonymous = axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(g.app.clone(), anonymous).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "/metrics is not for everyone");
    let request = axum::http::Request::get("/metrics")
        .header("authorization", format!("Bearer {}", g.token))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(g.app.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let line = text
        .lines()
        .find(|l| l.starts_with("amp_router_requests_total") && l.contains("model=\"metered\""))
        .unwrap_or_else(|| panic!("no request counter for `metered` in:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(text.contains("amp_router_request_duration_seconds_bucket"), "{text}");
    let _ = ModelId::new("metered");
}

#[tokio::test]
async fn with_no_models_configured_the_local_model_is_the_default() {
    let test_app = test_app_with(|_| {}).await;
    let app = amp_server::router(test_app.state.clone());
    let token = person(&app, "new@example.com").await;
    let (_, available) = call_as(&app, Method::GET, "/models/available", &token, None).await;
    assert_eq!(available[0]["id"], ModelRegistryConfig::LOCAL_MODEL);
    assert_eq!(available[0]["is_default"], true);
    assert_eq!(available[0]["provider"], "Local");
}

#[tokio::test]
async fn a_newcomer_chats_with_the_local_model_on_embedded_defaults() {
    // The tests run in the crate's directory; the model files are where scripts/test.sh
    // put them.
    let model_dir = std::env::var("AMP_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.amp-cache/models"));
    let test_app = test_app_with(|c| c.model_dir = model_dir).await;
    let app = amp_server::router(test_app.state.clone());
    let token = person(&app, "newcomer@example.com").await;
    let body = json!({"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 12});
    let r = send(app.clone(), Method::POST, "/v1/chat/completions", Some(&token), Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["model"], ModelRegistryConfig::LOCAL_MODEL);
    assert!(!r.body["choices"][0]["message"]["content"].as_str().unwrap().trim().is_empty(), "{}", r.body);
    assert!(r.body["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_local_model_whose_files_are_missing_is_unavailable_without_revealing_paths() {
    let missing = tempfile::tempdir().unwrap();
    let test_app = test_app_with(|c| c.model_dir = missing.path().to_owned()).await;
    let app = amp_server::router(test_app.state.clone());
    let token = person(&app, "early@example.com").await;
    let body = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4});
    let r = send(app.clone(), Method::POST, "/v1/chat/completions", Some(&token), Some(body)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(!message.contains(&missing.path().display().to_string()), "{message}");
}

#[tokio::test]
async fn deployment_figures_are_for_administrators_and_the_scraper_token_only() {
    let upstream = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let models = registry(json!({"models": {"m": openai_model(&upstream, json!({}))}}));
    let t = test_app_with(|c| {
        c.models = models;
        c.server.metrics_token = Some(amp_core::Secret::new("scraper-token-0123456789"));
    })
    .await;
    let app = amp_server::router(t.state.clone());
    let _admin = person(&app, ADMIN).await;
    let someone = person(&app, "someone@example.test").await;
    for path in ["/agents/router/status", "/agents/router/metrics", "/models/m/status", "/metrics"] {
        let (status, body) = call_as(&app, Method::GET, path, &someone, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(!body.to_string().contains(&upstream.url()), "{path} leaks the deployment's host");
    }
    let scrape = |token: &str| {
        axum::http::Request::get("/metrics")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let ok = tower::ServiceExt::oneshot(app.clone(), scrape("scraper-token-0123456789")).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let wrong = tower::ServiceExt::oneshot(app.clone(), scrape("scraper-token-0123456780")).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

//! The Router against loopback deployments that speak OpenAI's wire format: balancing,
//! breakers, retries, fallbacks, streams and counts under concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use amp_agents::Admin;
use amp_agents::router::{Balance, BreakerState, Router, Target};
use amp_core::{
    BreakerConfig, ChatMessage, ChatRequest, ErrorKind, LoadBalanceStrategy, ModelId, ModelRegistryConfig,
    ModelSpec, RetryConfig, RouterConfig, StreamEvent,
};
use amp_providers::chat::ProviderFactory;
use amp_providers::mock::openai::{self, ChatCompletionStream};
use amp_providers::mock::{MockResponse, MockServer};
use futures::StreamExt;
use serde_json::{Value, json};

/// A deployment entry pointing at a mock server.
fn deployment(name: &str, server: &MockServer, extra: Value) -> Value {
    let mut d = json!({"name": name, "endpoint": format!("{}/v1", server.url())});
    if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
        d.extend(extra.clone());
    }
    d
}

fn model(deployments: Vec<Value>, extra: Value) -> Value {
    let mut m = json!({"provider": "OpenAICompatible", "context_window": 8192, "max_tokens": 1024,
        "tier": "Balanced", "deployments": deployments});
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    m
}

fn quick() -> RouterConfig {
    RouterConfig {
        breaker: BreakerConfig { consecutive_failures: 2, cooldown_ms: 300, ..BreakerConfig::default() },
        retry: RetryConfig {
            retries_per_model: 0,
            base_delay_ms: 1,
            max_delay_ms: 10,
            ..RetryConfig::default()
        },
        ..RouterConfig::default()
    }
}

fn router(registry: Value, config: RouterConfig) -> Router {
    let registry: ModelRegistryConfig = serde_json::from_value(registry).unwrap();
    Router::new(registry, config, Arc::new(ProviderFactory::new("unused"))).unwrap()
}

fn ask(text: &str) -> ChatRequest {
    let mut request = ChatRequest::new(vec![ChatMessage::user(text)]);
    request.max_tokens = Some(16);
    request
}

fn named(name: &str) -> Target {
    Target::Named(name.to_owned())
}

async fn instant() -> MockServer {
    MockServer::start(openai::instant_upstream(4)).await.unwrap()
}

fn server_error() -> MockResponse {
    openai::error_response(500, "The server had an error", "server_error", None)
}

#[tokio::test]
async fn weighted_random_follows_the_weights_within_four_points() {
    let servers = [instant().await, instant().await, instant().await];
    let deployments = servers
        .iter()
        .zip([1, 2, 7])
        .enumerate()
        .map(|(i, (s, w))| deployment(&format!("d{i}"), s, json!({"weight": w})));
    let router = router(json!({"models": {"m": model(deployments.collect(), json!({}))}}), quick());
    let total = 2_000;
    for _ in 0..total {
        router.complete(&named("m"), &ask("hi")).await.unwrap();
    }
    for (server, weight) in servers.iter().zip([1.0, 2.0, 7.0]) {
        let share = server.request_count() as f64 / f64::from(total);
        assert!((share - weight / 10.0).abs() < 0.04, "weight {weight}: share {share}");
    }
}

#[tokio::test]
async fn round_robin_takes_turns_exactly() {
    let servers = [instant().await, instant().await, instant().await];
    let deployments = servers.iter().enumerate().map(|(i, s)| deployment(&format!("d{i}"), s, json!({})));
    let router = router(
        json!({"models": {"m": model(deployments.collect(), json!({"strategy": "round_robin"}))}}),
        quick(),
    );
    for _ in 0..99 {
        router.complete(&named("m"), &ask("hi")).await.unwrap();
    }
    assert!(servers.iter().all(|s| s.request_count() == 33), "{:?}", servers.map(|s| s.request_count()));
}

#[tokio::test]
async fn lowest_latency_prefers_the_faster_deployment() {
    let fast = instant().await;
    let slow = MockServer::start(|r: &amp_providers::mock::RecordedRequest| {
        openai::instant_upstream(4)(r).delayed(Duration::from_millis(40))
    })
    .await
    .unwrap();
    let deployments = vec![deployment("fast", &fast, json!({})), deployment("slow", &slow, json!({}))];
    let router =
        router(json!({"models": {"m": model(deployments, json!({"strategy": "lowest_latency"}))}}), quick());
    for _ in 0..60 {
        router.complete(&named("m"), &ask("hi")).await.unwrap();
    }
    assert!(fast.request_count() >= 50, "fast {} slow {}", fast.request_count(), slow.request_count());
}

#[tokio::test]
async fn least_in_flight_sends_concurrent_calls_away_from_a_busy_deployment() {
    let busy = MockServer::start(|r: &amp_providers::mock::RecordedRequest| {
        openai::instant_upstream(4)(r).delayed(Duration::from_millis(300))
    })
    .await
    .unwrap();
    let idle = instant().await;
    let deployments = vec![deployment("busy", &busy, json!({})), deployment("idle", &idle, json!({}))];
    let router =
        router(json!({"models": {"m": model(deployments, json!({"strategy": "least_in_flight"}))}}), quick());
    // Two slow calls occupy `busy` (the first goes to either; the rotation sends one there).
    let background: Vec<_> = (0..2)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move { router.complete(&named("m"), &ask("hi")).await.unwrap() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let busy_before = busy.request_count();
    for _ in 0..10 {
        router.complete(&named("m"), &ask("hi")).await.unwrap();
    }
    assert_eq!(busy.request_count(), busy_before, "calls went to the deployment with calls in flight");
    for task in background {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn breaker_opens_skips_half_opens_and_closes() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let server = MockServer::start(move |r: &amp_providers::mock::RecordedRequest| {
        if flag.load(Ordering::SeqCst) { openai::instant_upstream(4)(r) } else { server_error() }
    })
    .await
    .unwrap();
    let router = router(
        json!({"models": {"m": model(vec![deployment("only", &server, json!({}))], json!({}))}}),
        quick(),
    );
    let state =
        |router: &Router| router.model_status(&ModelId::new("m")).unwrap().deployments[0].breaker.state;

    for _ in 0..2 {
        assert_eq!(router.complete(&named("m"), &ask("hi")).await.unwrap_err().kind(), ErrorKind::Upstream);
    }
    assert_eq!(state(&router), BreakerState::Open);
    // Open: skipped without a call.
    let err = router.complete(&named("m"), &ask("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("circuit open"), "{err}");
    assert!(err.retry_after().is_some());
    assert_eq!(server.request_count(), 2);

    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(320)).await;
    // Half-open: the probe goes through and closes the breaker.
    router.complete(&named("m"), &ask("hi")).await.unwrap();
    assert_eq!(state(&router), BreakerState::Closed);
    assert_eq!(server.request_count(), 3);
    let status = router.status();
    assert_eq!(status.models[0].deployments[0].breaker.times_opened, 1);
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    let server = MockServer::always(server_error()).await.unwrap();
    let router = router(
        json!({"models": {"m": model(vec![deployment("only", &server, json!({}))], json!({}))}}),
        quick(),
    );
    for _ in 0..2 {
        router.complete(&named("m"), &ask("hi")).await.unwrap_err();
    }
    tokio::time::sleep(Duration::from_millis(320)).await;
    router.complete(&named("m"), &ask("hi")).await.unwrap_err();
    let status = router.model_status(&ModelId::new("m")).unwrap();
    assert_eq!(status.deployments[0].breaker.state, BreakerState::Open);
    assert_eq!(status.deployments[0].breaker.times_opened, 2);
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn retry_after_is_honoured_before_the_retry() {
    let server = MockServer::scripted([
        openai::error_response(429, "Rate limit reached", "requests", Some("rate_limit_exceeded"))
            .with_header("retry-after", "1"),
        MockResponse::json_text(200, openai::chat_completion("c1", "m", "Hello", &[], "stop", (8, 4))),
    ])
    .await
    .unwrap();
    let mut config = quick();
    config.retry.retries_per_model = 1;
    let router = router(
        json!({"models": {"m": model(vec![deployment("only", &server, json!({}))], json!({}))}}),
        config,
    );
    let started = Instant::now();
    let answer = router.complete(&named("m"), &ask("hi")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "retried after {:?}", started.elapsed());
    assert_eq!(answer.failed_attempts.len(), 1);
    assert_eq!(answer.failed_attempts[0].kind, ErrorKind::RateLimited);
}

#[tokio::test]
async fn a_retry_after_beyond_the_time_budget_moves_on_to_the_fallback() {
    let limited = MockServer::always(
        openai::error_response(429, "Rate limit reached", "requests", None).with_header("retry-after", "60"),
    )
    .await
    .unwrap();
    let backup = instant().await;
    let mut config = quick();
    config.retry.retries_per_model = 3;
    config.retry.max_total_ms = 2_000;
    let router = router(
        json!({"models": {
            "a": model(vec![deployment("only", &limited, json!({}))], json!({"fallbacks": ["b"]})),
            "b": model(vec![deployment("only", &backup, json!({}))], json!({}))}}),
        config,
    );
    let started = Instant::now();
    let answer = router.complete(&named("a"), &ask("hi")).await.unwrap();
    assert_eq!(answer.model, ModelId::new("b"));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(limited.request_count(), 1);
}

#[tokio::test]
async fn server_errors_fall_back_down_the_chain() {
    let broken = MockServer::always(server_error()).await.unwrap();
    let backup = instant().await;
    let router = router(
        json!({"models": {
            "a": model(vec![deployment("east", &broken, json!({}))], json!({"fallbacks": ["b"]})),
            "b": model(vec![deployment("west", &backup, json!({}))], json!({}))}}),
        quick(),
    );
    let answer = router.complete(&named("a"), &ask("hi")).await.unwrap();
    assert_eq!((answer.model.as_str(), answer.deployment.as_str()), ("b", "west"));
    let failed = &answer.failed_attempts[0];
    assert_eq!((failed.model.as_str(), failed.deployment.as_deref()), ("a", Some("east")));
    assert!(failed.reason.contains("500"), "{}", failed.reason);
}

#[tokio::test]
async fn a_timeout_falls_back() {
    let stalled = MockServer::always(MockResponse::stall()).await.unwrap();
    let backup = instant().await;
    let router = router(
        json!({"models": {
            "a": model(vec![deployment("slow", &stalled, json!({"timeouts": {"first_token_ms": 200}}))],
                json!({"fallbacks": ["b"]})),
            "b": model(vec![deployment("ok", &backup, json!({}))], json!({}))}}),
        quick(),
    );
    let answer = router.complete(&named("a"), &ask("hi")).await.unwrap();
    assert_eq!(answer.model.as_str(), "b");
    assert_eq!(answer.failed_attempts[0].kind, ErrorKind::Timeout);
}

#[tokio::test]
async fn a_prompt_too_long_for_a_window_skips_to_a_larger_one_without_calling() {
    let small = instant().await;
    let large = instant().await;
    let router = router(
        json!({"models": {
            "small": model(vec![deployment("d", &small, json!({}))],
                json!({"context_window": 64, "max_tokens": 16, "fallbacks": ["large"]})),
            "large": model(vec![deployment("d", &large, json!({}))], json!({}))}}),
        quick(),
    );
    let long = "word ".repeat(200);
    let answer = router.complete(&named("small"), &ask(&long)).await.unwrap();
    assert_eq!(answer.model.as_str(), "large");
    assert_eq!(answer.failed_attempts[0].kind, ErrorKind::ContextWindowExceeded);
    assert_eq!(small.request_count(), 0);
    // A short prompt still fits the small model.
    assert_eq!(router.complete(&named("small"), &ask("hi")).await.unwrap().model.as_str(), "small");
}

#[tokio::test]
async fn an_upstream_context_error_falls_back_to_a_larger_window_and_not_a_smaller_one() {
    let refusing = MockServer::always(openai::context_length_exceeded(8192, 9000)).await.unwrap();
    let smaller = instant().await;
    let larger = instant().await;
    let router = router(
        json!({"models": {
            "a": model(vec![deployment("d", &refusing, json!({}))], json!({"fallbacks": ["smaller", "larger"]})),
            "smaller": model(vec![deployment("d", &smaller, json!({}))], json!({"context_window": 4096})),
            "larger": model(vec![deployment("d", &larger, json!({}))], json!({"context_window": 32768}))}}),
        quick(),
    );
    let answer = router.complete(&named("a"), &ask("hi")).await.unwrap();
    assert_eq!(answer.model.as_str(), "larger");
    assert_eq!(smaller.request_count(), 0);
    // A context error says nothing about the deployment's health.
    let status = router.model_status(&ModelId::new("a")).unwrap();
    assert_eq!(status.deployments[0].breaker.consecutive_failures, 0);
}

#[tokio::test]
async fn a_stream_failing_before_its_first_token_fails_over_invisibly() {
    let broken = MockServer::always(server_error()).await.unwrap();
    let backup = instant().await;
    let router = router(
        json!({"models": {
            "a": model(vec![deployment("d", &broken, json!({}))], json!({"fallbacks": ["b"]})),
            "b": model(vec![deployment("d", &backup, json!({}))], json!({}))}}),
        quick(),
    );
    let routed = router.stream(&named("a"), &ask("hi")).await.unwrap();
    assert_eq!(routed.model.as_str(), "b");
    let events: Vec<_> = routed.value.collect().await;
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::TextDelta { text }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Hello from the mock.");
    assert!(matches!(events.last(), Some(Ok(StreamEvent::Finish { .. }))));
}

#[tokio::test]
async fn after_the_first_token_an_error_reaches_the_stream_and_nothing_is_spliced() {
    let breaking = MockServer::always(
        MockResponse::sse(
            ChatCompletionStream::new("c1", "a").text("Hello").text(" wor").frames().into_iter().take(3),
        )
        .then_reset(),
    )
    .await
    .unwrap();
    let backup = instant().await;
    let router = router(
        json!({"models": {
            "a": model(vec![deployment("d", &breaking, json!({}))], json!({"fallbacks": ["b"]})),
            "b": model(vec![deployment("d", &backup, json!({}))], json!({}))}}),
        quick(),
    );
    let routed = router.stream(&named("a"), &ask("hi")).await.unwrap();
    assert_eq!(routed.model.as_str(), "a");
    let events: Vec<_> = routed.value.collect().await;
    assert!(events.iter().any(|e| matches!(e, Ok(StreamEvent::TextDelta { text }) if text == "Hello")));
    assert!(events.last().unwrap().is_err(), "{events:?}");
    assert_eq!(backup.request_count(), 0, "no second answer was started");
    let metrics = router.metrics();
    let a = &metrics.models[&ModelId::new("a")]["d"];
    assert_eq!((a.requests, a.successes, a.in_flight), (1, 0, 0));
    assert_eq!(a.errors.values().sum::<u64>(), 1);
}

#[tokio::test]
async fn when_every_option_fails_one_error_lists_each_attempt() {
    let broken = MockServer::always(server_error()).await.unwrap();
    let stalled = MockServer::always(MockResponse::stall()).await.unwrap();
    let router = router(
        json!({"models": {
            "a": model(vec![deployment("east", &broken, json!({}))], json!({"fallbacks": ["b"]})),
            "b": model(vec![deployment("west", &stalled, json!({"timeouts": {"first_token_ms": 100}}))], json!({}))}}),
        quick(),
    );
    let err = router.complete(&named("a"), &ask("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Upstream);
    assert_eq!(err.kind().http_status(), 502);
    let message = err.to_string();
    assert!(message.contains("a/east:") && message.contains("500"), "{message}");
    assert!(message.contains("b/west:") && message.contains("timed out"), "{message}");
}

#[tokio::test]
async fn counts_are_exact_under_concurrency() {
    let servers = [instant().await, instant().await];
    let deployments = servers.iter().enumerate().map(|(i, s)| deployment(&format!("d{i}"), s, json!({})));
    let router = router(
        json!({"models": {"m": model(deployments.collect(), json!({"strategy": "round_robin"}))}}),
        quick(),
    );
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let router = router.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    router.complete(&named("m"), &ask("hi")).await.map(|_| ())
                } else {
                    let routed = router.stream(&named("m"), &ask("hi")).await?;
                    routed.value.for_each(|_| async {}).await;
                    Ok(())
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let metrics = router.metrics();
    let per = &metrics.models[&ModelId::new("m")];
    let requests: u64 = per.values().map(|d| d.requests).sum();
    let successes: u64 = per.values().map(|d| d.successes).sum();
    let in_flight: u64 = per.values().map(|d| d.in_flight).sum();
    let completion: u64 = per.values().map(|d| d.completion_tokens).sum();
    assert_eq!((requests, successes, in_flight, completion), (200, 200, 0, 800));
    assert_eq!(servers.iter().map(MockServer::request_count).sum::<usize>(), 200);
    assert_eq!(per["d0"].requests, 100);
    assert_eq!(per.values().map(|d| d.latency.count).sum::<u64>(), 200);
}

#[tokio::test]
async fn rpm_limits_are_enforced_per_deployment() {
    let limited = instant().await;
    let router = router(
        json!({"models": {"m": model(vec![deployment("d", &limited, json!({"rpm": 3}))], json!({}))}}),
        quick(),
    );
    for _ in 0..3 {
        router.complete(&named("m"), &ask("hi")).await.unwrap();
    }
    let err = router.complete(&named("m"), &ask("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert!(err.retry_after().is_some());
    assert_eq!(limited.request_count(), 3);

    // With a second deployment, the overflow goes there instead.
    let spare = instant().await;
    let spec: ModelSpec = serde_json::from_value(model(
        vec![deployment("d", &limited, json!({"rpm": 3})), deployment("spare", &spare, json!({}))],
        json!({}),
    ))
    .unwrap();
    router.upsert_model(&Admin::embedding_application(), ModelId::new("m"), spec).await.unwrap();
    router.complete(&named("m"), &ask("hi")).await.unwrap();
    assert_eq!((limited.request_count(), spare.request_count()), (3, 1));
}

#[tokio::test]
async fn tiers_defaults_and_agent_chains_resolve_through_the_registry() {
    let server = instant().await;
    let d = || vec![deployment("d", &server, json!({}))];
    let router = router(
        json!({"default_model": "cheap", "models": {
            "cheap": model(d(), json!({"tier": "Economical"})),
            "best": model(d(), json!({"tier": "Premium", "fallbacks": ["cheap"]}))}}),
        quick(),
    );
    assert_eq!(router.resolve(&named("premium")).unwrap(), [ModelId::new("best"), ModelId::new("cheap")]);
    assert_eq!(router.resolve(&Target::Default { preferred: None }).unwrap(), [ModelId::new("cheap")]);
    let preferred = Target::Default { preferred: Some(ModelId::new("best")) };
    assert_eq!(router.resolve(&preferred).unwrap()[0], ModelId::new("best"));
    let agent = Target::Chain(vec![ModelId::new("cheap"), ModelId::new("best")]);
    assert_eq!(router.resolve(&agent).unwrap(), [ModelId::new("cheap"), ModelId::new("best")]);
    assert_eq!(router.resolve(&named("gpt-9")).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(router.complete(&named("economical"), &ask("hi")).await.unwrap().model.as_str(), "cheap");
}

#[tokio::test]
async fn models_are_added_rebalanced_and_removed_at_runtime() {
    let one = instant().await;
    let two = instant().await;
    let router = router(
        json!({"default_model": "m", "models": {"m": model(vec![deployment("one", &one, json!({}))], json!({}))}}),
        quick(),
    );
    let admin = Admin::embedding_application();
    assert_eq!(router.resolve(&named("n")).unwrap_err().kind(), ErrorKind::NotFound);

    let spec: ModelSpec = serde_json::from_value(model(
        vec![deployment("one", &one, json!({})), deployment("two", &two, json!({}))],
        json!({"strategy": "round_robin"}),
    ))
    .unwrap();
    router.upsert_model(&admin, ModelId::new("n"), spec).await.unwrap();
    for _ in 0..4 {
        router.complete(&named("n"), &ask("hi")).await.unwrap();
    }
    assert_eq!((one.request_count(), two.request_count()), (2, 2));

    // All traffic to `two`: weight 0 is refused, so `one` gets a tiny weight.
    let balance = Balance {
        strategy: Some(LoadBalanceStrategy::WeightedRandom),
        weights: [("one".to_owned(), 1), ("two".to_owned(), 1_000_000)].into(),
    };
    let status = router.set_balance(&admin, &ModelId::new("n"), balance).await.unwrap();
    assert_eq!(status.strategy, LoadBalanceStrategy::WeightedRandom);
    // The deployments kept their counters across the change.
    assert_eq!(router.metrics().models[&ModelId::new("n")]["one"].requests, 2);
    for _ in 0..20 {
        router.complete(&named("n"), &ask("hi")).await.unwrap();
    }
    assert!(two.request_count() >= 21, "two got {}", two.request_count());

    let unknown = Balance { strategy: None, weights: [("three".to_owned(), 1)].into() };
    assert_eq!(
        router.set_balance(&admin, &ModelId::new("n"), unknown).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        router.remove_model(&admin, &ModelId::new("m")).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    router.remove_model(&admin, &ModelId::new("n")).await.unwrap();
    assert_eq!(router.complete(&named("n"), &ask("hi")).await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn active_health_checks_open_a_breaker_without_traffic() {
    let broken = MockServer::always(server_error()).await.unwrap();
    let mut config = quick();
    config.health_check.interval_secs = Some(1);
    let router =
        router(json!({"models": {"m": model(vec![deployment("d", &broken, json!({}))], json!({}))}}), config);
    let checks = router.spawn_health_checks().unwrap();
    // Checks run at once and then every second; two failures open the breaker.
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = router.model_status(&ModelId::new("m")).unwrap();
        if status.deployments[0].breaker.state == BreakerState::Open || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.deployments[0].breaker.state, BreakerState::Open);
    assert!(!status.model.available);
    assert_eq!(status.deployments[0].breaker.consecutive_failures, 2);
    checks.abort();
}

#[tokio::test]
async fn a_request_every_model_refuses_as_bad_is_400_without_retries() {
    let refusing =
        || openai::error_response(400, "Invalid 'messages': too many", "invalid_request_error", None);
    let a = MockServer::always(refusing()).await.unwrap();
    let b = MockServer::always(refusing()).await.unwrap();
    let mut config = quick();
    config.retry.retries_per_model = 3;
    let router = router(
        json!({"models": {
            "a": model(vec![deployment("d", &a, json!({}))], json!({"fallbacks": ["b"]})),
            "b": model(vec![deployment("d", &b, json!({}))], json!({}))}}),
        config,
    );
    let err = router.complete(&named("a"), &ask("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("too many"), "{err}");
    assert_eq!((a.request_count(), b.request_count()), (1, 1));
    // A refused request says nothing about the deployment's health.
    assert_eq!(
        router.model_status(&ModelId::new("a")).unwrap().deployments[0].breaker.consecutive_failures,
        0
    );
}

#[tokio::test]
async fn usage_based_sends_traffic_where_the_limits_leave_most_room() {
    let small = instant().await;
    let large = instant().await;
    let deployments = vec![
        deployment("small", &small, json!({"rpm": 10})),
        deployment("large", &large, json!({"rpm": 100})),
    ];
    let router =
        router(json!({"models": {"m": model(deployments, json!({"strategy": "usage_based"}))}}), quick());
    for _ in 0..20 {
        router.complete(&named("m"), &ask("hi")).await.unwrap();
    }
    // `small` loses a tenth of its room per call, `large` a hundredth.
    assert!(small.request_count() <= 3, "small {} large {}", small.request_count(), large.request_count());
    let status = router.model_status(&ModelId::new("m")).unwrap();
    assert_eq!(status.deployments.iter().map(|d| d.requests_last_minute).sum::<u64>(), 20);
}

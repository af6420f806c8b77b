//! The OpenAI-compatible chat client against the loopback mock speaking OpenAI's wire format.

mod support;

use std::time::{Duration, SystemTime};

use amp_core::model::{Deployment, DeploymentTimeouts, ModelSpec};
use amp_core::{
    ChatMessage, ChatModel, ChatRequest, Error, ErrorKind, FinishReason, ModelId, Role, Secret, StreamEvent,
    ToolCall, Usage,
};
use amp_providers::chat::openai::{OpenAiChat, OpenAiConfig};
use amp_providers::mock::openai::{self as wire, ChatCompletionStream};
use amp_providers::mock::{MockResponse, MockServer, UnreachableEndpoint};
use futures::StreamExt;
use serde_json::json;
use support::{KEY, assert_no_key, collect, generous, split, timeout_operation, upstream};

fn config(server: &MockServer) -> OpenAiConfig {
    let mut config = OpenAiConfig::openai("openai:test", "gpt-4o-mini", Secret::new(KEY));
    config.base_url = format!("{}/v1", server.url());
    config.timeouts = generous();
    config
}

fn client(server: &MockServer) -> OpenAiChat {
    OpenAiChat::new(config(server)).unwrap()
}

fn client_with(server: &MockServer, timeouts: DeploymentTimeouts) -> OpenAiChat {
    OpenAiChat::new(OpenAiConfig { timeouts, ..config(server) }).unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::user("Say hello")])
}

fn spec(provider: &str) -> ModelSpec {
    serde_json::from_value(
        json!({"provider": provider, "context_window": 8192, "max_tokens": 1024, "tier": "Premium"}),
    )
    .unwrap()
}

fn role_chunk() -> String {
    ChatCompletionStream::new("chatcmpl-1", "gpt-4o-mini").frames().remove(0)
}

fn text_chunk(text: &str) -> String {
    ChatCompletionStream::new("chatcmpl-1", "gpt-4o-mini").text(text).frames().remove(1)
}

#[tokio::test]
async fn streamed_answer_arrives_in_order_with_usage_then_finish() {
    let server = MockServer::always(
        ChatCompletionStream::new("chatcmpl-9", "gpt-4o-mini-2024-07-18")
            .text("Hel")
            .text("lo!")
            .usage(9, 2)
            .into_response(),
    )
    .await
    .unwrap();
    let stream = client(&server).stream(&hello()).await.unwrap();
    let (events, err) = split(collect(stream).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        events,
        vec![
            StreamEvent::Start { id: "chatcmpl-9".into(), model: "gpt-4o-mini-2024-07-18".into() },
            StreamEvent::TextDelta { text: "Hel".into() },
            StreamEvent::TextDelta { text: "lo!".into() },
            StreamEvent::Usage(Usage { prompt_tokens: 9, completion_tokens: 2 }),
            StreamEvent::Finish { reason: FinishReason::Stop },
        ]
    );
}

#[tokio::test]
async fn request_carries_bearer_key_mapped_fields_and_asks_for_stream_usage() {
    let server =
        MockServer::always(ChatCompletionStream::new("c", "m").text("ok").into_response()).await.unwrap();
    let mut call = ChatMessage::assistant("");
    call.tool_calls.push(ToolCall {
        id: "call_1".into(),
        name: "lookup".into(),
        arguments: r#"{"q":"x"}"#.into(),
    });
    let mut result = ChatMessage::new(Role::Tool, "found");
    result.tool_call_id = Some("call_1".into());
    let mut named = ChatMessage::user("find x");
    named.name = Some("ada".into());
    let mut request = ChatRequest::new(vec![ChatMessage::system("be brief"), named, call, result]);
    request.max_tokens = Some(77);
    request.temperature = Some(0.25);
    request.top_p = Some(0.5);
    request.stop = vec!["END".into()];
    request.user = Some("user-7".into());

    let stream = client(&server).stream(&request).await.unwrap();
    collect(stream).await;

    let sent = server.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.target, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json().unwrap(),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "find x", "name": "ada"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}
                ]},
                {"role": "tool", "content": "found", "tool_call_id": "call_1"}
            ],
            "temperature": 0.25,
            "top_p": 0.5,
            "stop": ["END"],
            "max_completion_tokens": 77,
            "user": "user-7",
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[tokio::test]
async fn unstreamed_answer_parses_content_tool_calls_finish_and_usage() {
    let body = wire::chat_completion(
        "chatcmpl-2",
        "gpt-4o",
        "",
        &[("call_a", "get_weather", r#"{"city":"Paris"}"#)],
        "tool_calls",
        (20, 7),
    );
    let server = MockServer::always(MockResponse::json_text(200, body)).await.unwrap();
    let answer = client(&server).complete(&hello()).await.unwrap();
    assert_eq!(answer.id, "chatcmpl-2");
    assert_eq!(answer.model, "gpt-4o");
    assert_eq!(answer.message.role, Role::Assistant);
    assert_eq!(answer.message.content, "");
    assert_eq!(
        answer.message.tool_calls,
        vec![ToolCall {
            id: "call_a".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into()
        }]
    );
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.usage, Some(Usage { prompt_tokens: 20, completion_tokens: 7 }));

    let sent = server.last_request().unwrap().json().unwrap();
    assert!(sent.get("stream").is_none() && sent.get("stream_options").is_none(), "{sent}");
}

#[tokio::test]
async fn tool_call_deltas_pass_through_intact() {
    let answer = ChatCompletionStream::new("c", "m")
        .tool_call(0, "call_a", "get_weather")
        .tool_call(1, "call_b", "get_time")
        .tool_arguments(0, "{\"city\":")
        .tool_arguments(1, "{}")
        .tool_arguments(0, "\"Paris\"}")
        .finish("tool_calls");
    let server = MockServer::always(answer.into_response()).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    let delta = |index, id: Option<&str>, name: Option<&str>, arguments: &str| StreamEvent::ToolCallDelta {
        index,
        id: id.map(Into::into),
        name: name.map(Into::into),
        arguments: arguments.into(),
    };
    assert_eq!(
        events[1..],
        [
            delta(0, Some("call_a"), Some("get_weather"), ""),
            delta(1, Some("call_b"), Some("get_time"), ""),
            delta(0, None, None, "{\"city\":"),
            delta(1, None, None, "{}"),
            delta(0, None, None, "\"Paris\"}"),
            StreamEvent::Finish { reason: FinishReason::ToolCalls },
        ]
    );
}

#[tokio::test]
async fn azure_uses_the_deployment_url_api_key_header_and_api_version() {
    let server = MockServer::always(ChatCompletionStream::new("c", "gpt-4o").text("hi").into_response())
        .await
        .unwrap();
    let mut deployment = Deployment::named("east");
    deployment.endpoint = Some(format!("{}/openai/deployments/gpt4o-prod", server.url()));
    deployment.api_key = Some(Secret::new(KEY));
    deployment.api_version = Some("2024-06-01".into());
    deployment.headers.insert("x-ms-client-request-id".into(), "abc".into());
    deployment.timeouts = generous();
    let azure =
        OpenAiChat::from_deployment(&ModelId::new("gpt-4o"), &spec("AzureOpenAI"), &deployment).unwrap();
    assert_eq!(azure.name(), "azure:gpt-4o/east");
    let mut request = hello();
    request.max_tokens = Some(5);
    collect(azure.stream(&request).await.unwrap()).await;

    let sent = server.last_request().unwrap();
    assert_eq!(sent.path(), "/openai/deployments/gpt4o-prod/chat/completions");
    assert_eq!(sent.query(), Some("api-version=2024-06-01"));
    assert_eq!(sent.header("api-key"), Some(KEY));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.header("x-ms-client-request-id"), Some("abc"));
    let body = sent.json().unwrap();
    assert_eq!(body["max_tokens"], json!(5));
    assert!(body.get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn compatible_server_without_a_key_gets_no_authorization_but_extra_headers() {
    let server = MockServer::always(ChatCompletionStream::new("c", "llama3.2").text("hi").into_response())
        .await
        .unwrap();
    let mut deployment = Deployment::named("local");
    deployment.endpoint = Some(format!("{}/v1", server.url()));
    deployment.upstream_model = Some("llama3.2:3b".into());
    deployment.headers.insert("x-tenant".into(), "acme".into());
    deployment.timeouts = generous();
    let ollama =
        OpenAiChat::from_deployment(&ModelId::new("llama"), &spec("OpenAICompatible"), &deployment).unwrap();
    let mut request = hello();
    request.max_tokens = Some(12);
    let answer = collect(ollama.stream(&request).await.unwrap()).await;
    assert!(answer.iter().all(Result::is_ok));

    let sent = server.last_request().unwrap();
    assert_eq!(sent.target, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.header("x-tenant"), Some("acme"));
    let body = sent.json().unwrap();
    assert_eq!(body["model"], json!("llama3.2:3b"));
    assert_eq!(body["max_tokens"], json!(12));
}

#[tokio::test]
async fn azure_and_compatible_deployments_need_an_endpoint() {
    for provider in ["AzureOpenAI", "OpenAICompatible"] {
        let err =
            OpenAiChat::from_deployment(&ModelId::new("m"), &spec(provider), &Deployment::named("nowhere"))
                .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("`nowhere`"), "{err}");
    }
}

#[tokio::test]
async fn length_and_content_filter_finish_reasons_map() {
    for (wire_reason, reason) in
        [("length", FinishReason::Length), ("content_filter", FinishReason::ContentFilter)]
    {
        let server = MockServer::always(
            ChatCompletionStream::new("c", "m").text("x").finish(wire_reason).into_response(),
        )
        .await
        .unwrap();
        let (events, _) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
        assert_eq!(events.last(), Some(&StreamEvent::Finish { reason }));
    }
}

#[tokio::test]
async fn azure_prompt_filter_chunk_before_the_answer_is_skipped() {
    let mut frames = vec![
        "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}}}]}\n\n".to_owned(),
    ];
    frames.extend(ChatCompletionStream::new("chatcmpl-az", "gpt-4o").text("hi").frames());
    let server = MockServer::always(MockResponse::sse(frames)).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events[0], StreamEvent::Start { id: "chatcmpl-az".into(), model: "gpt-4o".into() });
}

#[tokio::test]
async fn context_length_exceeded_maps_to_context_window_exceeded() {
    let server = MockServer::always(wire::context_length_exceeded(8192, 9000)).await.unwrap();
    let chat = client(&server);
    let err = chat.stream(&hello()).await.err().unwrap();
    assert!(matches!(err, Error::ContextWindowExceeded { needed: 9000, limit: 8192 }), "{err:?}");
    assert!(!err.is_retryable());
    let err = chat.complete(&hello()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextWindowExceeded);
}

#[tokio::test]
async fn auth_and_not_found_errors_keep_their_status_and_are_not_retryable() {
    let server = MockServer::scripted([
        wire::error_response(
            401,
            "Incorrect API key provided.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        wire::error_response(
            403,
            "You are not allowed to sample from this model",
            "invalid_request_error",
            None,
        ),
        wire::error_response(
            404,
            "The model `gpt-9` does not exist",
            "invalid_request_error",
            Some("model_not_found"),
        ),
    ])
    .await
    .unwrap();
    let chat = client(&server);
    for status in [401, 403, 404] {
        let err = chat.stream(&hello()).await.err().unwrap();
        assert_eq!(upstream(&err), (Some(status), false, None), "{err:?}");
        assert!(err.to_string().contains("openai:test"), "{err}");
    }
    assert!(chat.complete(&hello()).await.is_err(), "the script is exhausted: a 500");
}

#[tokio::test]
async fn rate_limit_honours_retry_after_in_seconds() {
    let server = MockServer::always(
        wire::error_response(
            429,
            "Rate limit reached for gpt-4o-mini",
            "requests",
            Some("rate_limit_exceeded"),
        )
        .with_header("retry-after", "17"),
    )
    .await
    .unwrap();
    let err = client(&server).stream(&hello()).await.err().unwrap();
    assert_eq!(upstream(&err), (Some(429), true, Some(Duration::from_secs(17))));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(17)));
    assert!(err.to_string().contains("Rate limit reached"), "{err}");
}

#[tokio::test]
async fn rate_limit_honours_retry_after_as_an_http_date() {
    let at = SystemTime::now() + Duration::from_secs(120);
    let server = MockServer::always(
        wire::error_response(429, "slow down", "requests", None)
            .with_header("retry-after", &httpdate_fmt(at)),
    )
    .await
    .unwrap();
    let err = client(&server).complete(&hello()).await.unwrap_err();
    let (_, retryable, retry_after) = upstream(&err);
    assert!(retryable);
    let wait = retry_after.expect("a retry-after");
    assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");
}

fn httpdate_fmt(at: SystemTime) -> String {
    // The mock speaks for the server; formatting the date is the test's job.
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    chrono::DateTime::from_timestamp(secs, 0).unwrap().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[tokio::test]
async fn request_timeouts_conflicts_and_server_errors_are_retryable() {
    let statuses = [408, 409, 500, 502, 503];
    let server = MockServer::scripted(
        statuses.map(|s| wire::error_response(s, "The server had an error", "server_error", None)),
    )
    .await
    .unwrap();
    let chat = client(&server);
    for status in statuses {
        let err = chat.stream(&hello()).await.err().unwrap();
        assert_eq!(upstream(&err), (Some(status), true, None), "{err:?}");
    }
}

#[tokio::test]
async fn api_key_echoed_by_the_upstream_never_reaches_the_error() {
    let echo = format!(
        "Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com."
    );
    let server = MockServer::always(wire::error_response(
        401,
        &echo,
        "invalid_request_error",
        Some("invalid_api_key"),
    ))
    .await
    .unwrap();
    let chat = client(&server);
    let err = chat.stream(&hello()).await.err().unwrap();
    assert_no_key(&err);
    assert!(err.to_string().contains("Incorrect API key provided: ***"), "{err}");
    assert_no_key(&chat.complete(&hello()).await.unwrap_err());
    assert!(!format!("{chat:?}").contains(KEY));
}

#[tokio::test]
async fn no_first_token_in_time_is_a_timeout_returned_from_stream() {
    let server = MockServer::always(MockResponse::stall()).await.unwrap();
    let chat = client_with(&server, DeploymentTimeouts { first_token_ms: 300, ..generous() });
    let err = chat.stream(&hello()).await.err().unwrap();
    assert!(err.is_retryable());
    assert!(timeout_operation(&err).contains("first token from openai:test"), "{err}");
}

#[tokio::test]
async fn a_role_only_chunk_does_not_count_as_the_first_token() {
    let server = MockServer::always(MockResponse::sse([role_chunk()]).then_stall()).await.unwrap();
    let chat = client_with(&server, DeploymentTimeouts { first_token_ms: 300, ..generous() });
    let err = chat.stream(&hello()).await.err().unwrap();
    assert!(timeout_operation(&err).contains("first token"), "{err}");
}

#[tokio::test]
async fn unstreamed_answer_not_in_time_is_a_timeout() {
    let server = MockServer::always(MockResponse::stall()).await.unwrap();
    let chat = client_with(&server, DeploymentTimeouts { first_token_ms: 300, ..generous() });
    let err = chat.complete(&hello()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_idle_timeout_item() {
    let server =
        MockServer::always(MockResponse::sse([role_chunk(), text_chunk("Hel")]).then_stall()).await.unwrap();
    let chat = client_with(&server, DeploymentTimeouts { idle_ms: 200, ..generous() });
    let (events, err) = split(collect(chat.stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2, "{events:?}");
    let err = err.expect("an idle timeout");
    assert!(timeout_operation(&err).contains("(idle)"), "{err}");
    assert_eq!(err.to_string(), "waiting for the next chunk from openai:test (idle) timed out after 200ms");
}

#[tokio::test]
async fn a_slow_stream_ends_with_a_total_timeout_item() {
    let answer = (0..200).fold(ChatCompletionStream::new("c", "m"), |s, i| s.text(&format!("{i} ")));
    let server = MockServer::always(answer.into_response().with_delay_between(Duration::from_millis(50)))
        .await
        .unwrap();
    let chat = client_with(&server, DeploymentTimeouts { total_ms: 3_000, ..generous() });
    let (events, err) = split(collect(chat.stream(&hello()).await.unwrap()).await);
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Finish { .. })));
    assert!(timeout_operation(&err.expect("a total timeout")).contains("(total)"));
}

#[tokio::test]
async fn an_unreachable_host_is_a_connect_timeout() {
    let unreachable = UnreachableEndpoint::bind().await.unwrap();
    let mut config = OpenAiConfig::compatible("openai:unreachable", format!("{}/v1", unreachable.url()), "m");
    config.timeouts = DeploymentTimeouts { connect_ms: 300, ..generous() };
    let chat = OpenAiChat::new(config).unwrap();
    let started = std::time::Instant::now();
    let err = chat.stream(&hello()).await.err().unwrap();
    assert!(timeout_operation(&err).contains("connecting to openai:unreachable"), "{err}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn a_malformed_json_chunk_is_an_error_item() {
    let server = MockServer::always(MockResponse::sse([
        role_chunk(),
        text_chunk("ok"),
        "data: {\"id\":\"c\",\"choices\":[{\n\n".to_owned(),
    ]))
    .await
    .unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2);
    let err = err.expect("a malformed-chunk error");
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[tokio::test]
async fn invalid_utf8_in_the_event_stream_is_an_error_item() {
    let bad: &'static [u8] = b"data: {\"x\":\"\xff\xfe\"}\n\n";
    let frames: Vec<bytes::Bytes> =
        vec![role_chunk().into(), text_chunk("ok").into(), bytes::Bytes::from_static(bad)];
    let server = MockServer::always(MockResponse::sse(frames)).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2);
    assert_eq!(err.expect("a UTF-8 error").kind(), ErrorKind::Upstream);
}

#[tokio::test]
async fn a_connection_closed_mid_stream_is_an_error_item() {
    let server =
        MockServer::always(MockResponse::sse([role_chunk(), text_chunk("Hel")]).then_close()).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2);
    let err = err.expect("a broken-connection error");
    assert!(err.is_retryable(), "{err:?}");
    assert_no_key(&err);
}

#[tokio::test]
async fn a_connection_reset_mid_stream_is_an_error_not_a_truncated_answer() {
    let frames = vec![role_chunk(), text_chunk("Hel"), String::new()];
    let server = MockServer::always(
        MockResponse::sse(frames).with_delay_before(2, Duration::from_millis(300)).then_reset(),
    )
    .await
    .unwrap();
    // A reset may destroy frames in flight, so the error can come before or after the first token.
    match client(&server).stream(&hello()).await {
        Err(err) => assert_eq!(err.kind(), ErrorKind::Upstream),
        Ok(stream) => {
            let (events, err) = split(collect(stream).await);
            assert!(!events.iter().any(|e| matches!(e, StreamEvent::Finish { .. })));
            assert_eq!(err.expect("a reset error").kind(), ErrorKind::Upstream);
        }
    }
}

#[tokio::test]
async fn a_connection_closed_before_the_answer_is_a_retryable_error() {
    let server = MockServer::always(MockResponse::hang_up()).await.unwrap();
    let err = client(&server).stream(&hello()).await.err().unwrap();
    assert_eq!(upstream(&err).0, None, "{err:?}");
    assert!(err.is_retryable());
    assert_no_key(&err);
}

#[tokio::test]
async fn a_stream_that_ends_without_a_finish_is_an_error_item() {
    let server = MockServer::always(MockResponse::sse([role_chunk(), text_chunk("Hel")])).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2);
    assert!(err.expect("a truncation error").to_string().contains("before the answer finished"));
}

#[tokio::test]
async fn an_error_object_mid_stream_is_an_error_item() {
    let error = "data: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";
    let server = MockServer::always(MockResponse::sse([role_chunk(), text_chunk("Hel"), error.to_owned()]))
        .await
        .unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2);
    let err = err.expect("the upstream's error");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("while processing your request"), "{err}");
}

#[tokio::test]
async fn a_malformed_unstreamed_answer_is_an_error() {
    let server =
        MockServer::always(MockResponse::json_text(200, "{\"id\": \"x\", \"choices\": [")).await.unwrap();
    let err = client(&server).complete(&hello()).await.unwrap_err();
    assert!(!upstream(&err).1);
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[tokio::test]
async fn dropping_the_stream_disconnects_from_the_upstream() {
    let answer = (0..200).fold(ChatCompletionStream::new("c", "m"), |s, i| s.text(&format!("{i} ")));
    let server = MockServer::always(answer.into_response().with_delay_between(Duration::from_millis(20)))
        .await
        .unwrap();
    let mut stream = client(&server).stream(&hello()).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(StreamEvent::Start { .. }))));
    assert!(matches!(stream.next().await, Some(Ok(StreamEvent::TextDelta { .. }))));
    assert_eq!(server.disconnects(), 0);
    drop(stream);
    assert!(server.wait_for_disconnect(Duration::from_secs(10)).await, "the mock never saw the client leave");
}

#[tokio::test]
async fn finished_streams_leave_the_connection_reusable() {
    let server =
        MockServer::always(ChatCompletionStream::new("c", "m").text("hi").usage(1, 1).into_response())
            .await
            .unwrap();
    let chat = client(&server);
    for _ in 0..3 {
        let (events, err) = split(collect(chat.stream(&hello()).await.unwrap()).await);
        assert!(err.is_none() && events.len() == 4, "{events:?} {err:?}");
    }
    assert_eq!(server.request_count(), 3);
    assert_eq!(server.connection_count(), 1, "keep-alive: one connection for every answer");
    assert_eq!(server.disconnects(), 0, "a finished answer must not be cut off");
}

#[tokio::test]
async fn the_instant_upstream_serves_many_answers_over_one_kept_alive_connection() {
    let server = MockServer::start_unrecorded(wire::instant_upstream(8)).await.unwrap();
    let chat = client(&server);
    let started = std::time::Instant::now();
    for _ in 0..500 {
        assert_eq!(chat.complete(&hello()).await.unwrap().message.content, "Hello from the mock.");
    }
    let (events, err) = split(collect(chat.stream(&hello()).await.unwrap()).await);
    assert!(err.is_none() && matches!(events.last(), Some(StreamEvent::Finish { .. })), "{events:?} {err:?}");
    assert_eq!(server.request_count(), 501);
    assert_eq!(server.connection_count(), 1);
    assert!(server.requests().is_empty(), "an unrecorded server keeps nothing");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}

//! The Anthropic Messages client against the loopback mock speaking Anthropic's wire format.

mod support;

use std::time::Duration;

use amp_core::model::{Deployment, DeploymentTimeouts, ModelSpec};
use amp_core::{
    ChatMessage, ChatModel, ChatRequest, Error, ErrorKind, FinishReason, ModelId, Role, Secret, StreamEvent,
    ToolCall, Usage,
};
use amp_providers::chat::anthropic::{AnthropicChat, AnthropicConfig, DEFAULT_MAX_TOKENS};
use amp_providers::mock::anthropic::{self as wire, MessageStream};
use amp_providers::mock::{MockResponse, MockServer};
use futures::StreamExt;
use serde_json::json;
use support::{KEY, assert_no_key, collect, generous, split, timeout_operation, upstream};

const MODEL: &str = "claude-sonnet-4-20250514";

fn config(server: &MockServer) -> AnthropicConfig {
    let mut config = AnthropicConfig::new("anthropic:test", MODEL, Secret::new(KEY));
    config.base_url = server.url();
    config.timeouts = generous();
    config
}

fn client(server: &MockServer) -> AnthropicChat {
    AnthropicChat::new(config(server)).unwrap()
}

fn client_with(server: &MockServer, timeouts: DeploymentTimeouts) -> AnthropicChat {
    AnthropicChat::new(AnthropicConfig { timeouts, ..config(server) }).unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::user("Say hello")])
}

/// The first `n` frames of a text answer (message_start, block start, ping, deltas…).
fn opening(n: usize) -> Vec<String> {
    MessageStream::new("msg_1", MODEL).text(&["Hel", "lo", "!"]).frames().into_iter().take(n).collect()
}

#[tokio::test]
async fn the_full_event_set_streams_text_usage_and_finish() {
    let answer =
        MessageStream::new("msg_01XFDUDYJgAACzvnptvVoYEL", MODEL).text(&["Hello", "!"]).usage(25, 15);
    let server = MockServer::always(answer.into_response()).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        events,
        vec![
            StreamEvent::Start { id: "msg_01XFDUDYJgAACzvnptvVoYEL".into(), model: MODEL.into() },
            StreamEvent::TextDelta { text: "Hello".into() },
            StreamEvent::TextDelta { text: "!".into() },
            StreamEvent::Usage(Usage { prompt_tokens: 25, completion_tokens: 15 }),
            StreamEvent::Finish { reason: FinishReason::Stop },
        ]
    );
}

#[tokio::test]
async fn request_lifts_the_system_prompt_merges_roles_and_sends_anthropic_headers() {
    let server =
        MockServer::always(MessageStream::new("m", MODEL).text(&["ok"]).into_response()).await.unwrap();
    let mut request = ChatRequest::new(vec![
        ChatMessage::system("Be brief."),
        ChatMessage::user("Hi"),
        ChatMessage::user("Are you there?"),
        ChatMessage::system("Answer in French."),
        ChatMessage::assistant("Oui."),
        ChatMessage::assistant("Bonjour."),
        ChatMessage::user("Merci"),
    ]);
    request.max_tokens = Some(300);
    request.temperature = Some(0.3);
    request.stop = vec!["\n\nHuman:".into()];
    request.user = Some("user-7".into());
    collect(client(&server).stream(&request).await.unwrap()).await;

    let sent = server.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.target, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.json().unwrap(),
        json!({
            "model": MODEL,
            "max_tokens": 300,
            "system": "Be brief.\n\nAnswer in French.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Are you there?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Oui."}, {"type": "text", "text": "Bonjour."}]},
                {"role": "user", "content": [{"type": "text", "text": "Merci"}]}
            ],
            "temperature": 0.3,
            "stop_sequences": ["\n\nHuman:"],
            "metadata": {"user_id": "user-7"},
            "stream": true
        })
    );
}

#[tokio::test]
async fn max_tokens_falls_back_to_the_spec_then_to_the_default() {
    let server = MockServer::always(MockResponse::json_text(
        200,
        wire::message("m", MODEL, "hi", &[], "end_turn", (1, 1)),
    ))
    .await
    .unwrap();
    let spec: ModelSpec = serde_json::from_value(
        json!({"provider": "Anthropic", "context_window": 200000, "max_tokens": 2048, "tier": "Balanced"}),
    )
    .unwrap();
    let mut deployment = Deployment::named("primary");
    deployment.endpoint = Some(server.url());
    deployment.api_key = Some(Secret::new(KEY));
    deployment.upstream_model = Some(MODEL.into());
    let from_spec = AnthropicChat::from_deployment(&ModelId::new("claude"), &spec, &deployment).unwrap();
    assert_eq!(from_spec.name(), "anthropic:claude/primary");
    from_spec.complete(&hello()).await.unwrap();
    assert_eq!(server.last_request().unwrap().json().unwrap()["max_tokens"], json!(2048));

    client(&server).complete(&hello()).await.unwrap();
    assert_eq!(server.last_request().unwrap().json().unwrap()["max_tokens"], json!(DEFAULT_MAX_TOKENS));
}

#[tokio::test]
async fn tool_use_blocks_stream_as_tool_call_deltas() {
    let answer = MessageStream::new("msg_t", MODEL).text(&["Checking."]).tool_use(
        "toolu_01A",
        "get_weather",
        &["{\"location\":", " \"Paris\"}"],
    );
    let server = MockServer::always(answer.into_response()).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        events[1..],
        [
            StreamEvent::TextDelta { text: "Checking.".into() },
            StreamEvent::ToolCallDelta {
                index: 0,
                id: Some("toolu_01A".into()),
                name: Some("get_weather".into()),
                arguments: String::new()
            },
            StreamEvent::ToolCallDelta { index: 0, id: None, name: None, arguments: "{\"location\":".into() },
            StreamEvent::ToolCallDelta { index: 0, id: None, name: None, arguments: " \"Paris\"}".into() },
            StreamEvent::Usage(Usage { prompt_tokens: 25, completion_tokens: 15 }),
            StreamEvent::Finish { reason: FinishReason::ToolCalls },
        ]
    );
}

#[tokio::test]
async fn tool_calls_and_results_in_history_become_content_blocks() {
    let server =
        MockServer::always(MessageStream::new("m", MODEL).text(&["ok"]).into_response()).await.unwrap();
    let mut call = ChatMessage::assistant("");
    call.tool_calls.push(ToolCall {
        id: "toolu_1".into(),
        name: "lookup".into(),
        arguments: r#"{"q":"x"}"#.into(),
    });
    let mut result = ChatMessage::new(Role::Tool, "found it");
    result.tool_call_id = Some("toolu_1".into());
    collect(
        client(&server)
            .stream(&ChatRequest::new(vec![ChatMessage::user("find x"), call, result]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        server.last_request().unwrap().json().unwrap()["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "find x"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "found it"}]}
        ])
    );
}

#[tokio::test]
async fn stop_reasons_map_to_finish_reasons() {
    for (stop, reason) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
    ] {
        let server =
            MockServer::always(MessageStream::new("m", MODEL).text(&["x"]).stop_reason(stop).into_response())
                .await
                .unwrap();
        let (events, _) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
        assert_eq!(events.last(), Some(&StreamEvent::Finish { reason }), "{stop}");
    }
}

#[tokio::test]
async fn unstreamed_answer_parses_text_tool_use_stop_reason_and_usage() {
    let body = wire::message(
        "msg_2",
        MODEL,
        "Let me check.",
        &[("toolu_9", "get_time", r#"{"tz":"UTC"}"#)],
        "tool_use",
        (40, 12),
    );
    let server = MockServer::always(MockResponse::json_text(200, body)).await.unwrap();
    let answer = client(&server).complete(&hello()).await.unwrap();
    assert_eq!(answer.id, "msg_2");
    assert_eq!(answer.model, MODEL);
    assert_eq!(answer.message.content, "Let me check.");
    assert_eq!(
        answer.message.tool_calls,
        vec![ToolCall { id: "toolu_9".into(), name: "get_time".into(), arguments: r#"{"tz":"UTC"}"#.into() }]
    );
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.usage, Some(Usage { prompt_tokens: 40, completion_tokens: 12 }));
    assert!(server.last_request().unwrap().json().unwrap().get("stream").is_none());
}

#[tokio::test]
async fn an_overloaded_error_event_mid_stream_is_a_retryable_error_item() {
    let mut frames = opening(4);
    frames.push(wire::error_event("overloaded_error", "Overloaded"));
    let server = MockServer::always(MockResponse::sse(frames)).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2, "{events:?}");
    let err = err.expect("the overloaded error");
    assert_eq!(upstream(&err), (Some(529), true, None));
    assert!(err.to_string().contains("Overloaded"), "{err}");
}

#[tokio::test]
async fn an_error_event_before_any_token_is_returned_from_stream() {
    let server = MockServer::always(MockResponse::sse([wire::error_event("overloaded_error", "Overloaded")]))
        .await
        .unwrap();
    let err = client(&server).stream(&hello()).await.err().unwrap();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn prompt_too_long_maps_to_context_window_exceeded() {
    let server = MockServer::always(wire::error_response(
        400,
        "invalid_request_error",
        "prompt is too long: 208310 tokens > 200000 maximum",
    ))
    .await
    .unwrap();
    let err = client(&server).stream(&hello()).await.err().unwrap();
    assert!(matches!(err, Error::ContextWindowExceeded { needed: 208_310, limit: 200_000 }), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn other_invalid_requests_stay_upstream_errors() {
    let server = MockServer::always(wire::error_response(
        400,
        "invalid_request_error",
        "messages: roles must alternate",
    ))
    .await
    .unwrap();
    let err = client(&server).complete(&hello()).await.unwrap_err();
    assert_eq!(upstream(&err), (Some(400), false, None));
    assert!(err.to_string().contains("roles must alternate"), "{err}");
}

#[tokio::test]
async fn overloaded_529_and_rate_limits_are_retryable_with_retry_after() {
    let server = MockServer::scripted([
        wire::error_response(529, "overloaded_error", "Overloaded").with_header("retry-after", "3"),
        wire::error_response(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        )
        .with_header("retry-after", "20"),
        wire::error_response(500, "api_error", "Internal server error"),
    ])
    .await
    .unwrap();
    let chat = client(&server);
    let expected = [(529, Some(3)), (429, Some(20)), (500, None)];
    for (status, secs) in expected {
        let err = chat.stream(&hello()).await.err().unwrap();
        assert_eq!(upstream(&err), (Some(status), true, secs.map(Duration::from_secs)), "{err:?}");
    }
}

#[tokio::test]
async fn authentication_errors_are_not_retryable_and_never_show_the_key() {
    let server = MockServer::always(wire::error_response(
        401,
        "authentication_error",
        &format!("invalid x-api-key: {KEY}"),
    ))
    .await
    .unwrap();
    let chat = client(&server);
    let err = chat.stream(&hello()).await.err().unwrap();
    assert_eq!(upstream(&err), (Some(401), false, None));
    assert_no_key(&err);
    assert_no_key(&chat.complete(&hello()).await.unwrap_err());
}

#[tokio::test]
async fn no_first_token_in_time_is_a_timeout_returned_from_stream() {
    // message_start and a ping arrive, the first text never does.
    let server = MockServer::always(MockResponse::sse(opening(3)).then_stall()).await.unwrap();
    let chat = client_with(&server, DeploymentTimeouts { first_token_ms: 300, ..generous() });
    let err = chat.stream(&hello()).await.err().unwrap();
    assert!(timeout_operation(&err).contains("first token from anthropic:test"), "{err}");
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_idle_timeout_item() {
    let server = MockServer::always(MockResponse::sse(opening(4)).then_stall()).await.unwrap();
    let chat = client_with(&server, DeploymentTimeouts { idle_ms: 200, ..generous() });
    let (events, err) = split(collect(chat.stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(timeout_operation(&err.expect("an idle timeout")).contains("(idle)"));
}

#[tokio::test]
async fn a_slow_stream_ends_with_a_total_timeout_item() {
    let pieces: Vec<String> = (0..200).map(|i| format!("{i} ")).collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let answer = MessageStream::new("m", MODEL)
        .text(&pieces)
        .into_response()
        .with_delay_between(Duration::from_millis(50));
    let server = MockServer::always(answer).await.unwrap();
    let chat = client_with(&server, DeploymentTimeouts { total_ms: 3_000, ..generous() });
    let (_, err) = split(collect(chat.stream(&hello()).await.unwrap()).await);
    assert!(timeout_operation(&err.expect("a total timeout")).contains("(total)"));
}

#[tokio::test]
async fn a_connection_closed_mid_stream_is_an_error_item() {
    let server = MockServer::always(MockResponse::sse(opening(4)).then_close()).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2);
    assert!(err.expect("a broken-connection error").is_retryable());
}

#[tokio::test]
async fn a_stream_without_message_stop_is_an_error_item() {
    let mut frames = MessageStream::new("m", MODEL).text(&["Hi"]).frames();
    frames.pop();
    let server = MockServer::always(MockResponse::sse(frames)).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Finish { .. })));
    assert!(err.expect("a truncation error").to_string().contains("before message_stop"));
}

#[tokio::test]
async fn malformed_event_data_is_an_error_item() {
    let mut frames = opening(4);
    frames.push(
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":\n\n"
            .into(),
    );
    let server = MockServer::always(MockResponse::sse(frames)).await.unwrap();
    let (events, err) = split(collect(client(&server).stream(&hello()).await.unwrap()).await);
    assert_eq!(events.len(), 2);
    assert_eq!(err.expect("a malformed-event error").kind(), ErrorKind::Upstream);
}

#[tokio::test]
async fn dropping_the_stream_disconnects_from_the_upstream() {
    let pieces: Vec<String> = (0..200).map(|i| format!("{i} ")).collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let answer = MessageStream::new("m", MODEL)
        .text(&pieces)
        .into_response()
        .with_delay_between(Duration::from_millis(20));
    let server = MockServer::always(answer).await.unwrap();
    let mut stream = client(&server).stream(&hello()).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(StreamEvent::Start { .. }))));
    assert!(matches!(stream.next().await, Some(Ok(StreamEvent::TextDelta { .. }))));
    drop(stream);
    assert!(server.wait_for_disconnect(Duration::from_secs(10)).await, "the mock never saw the client leave");
}

#[tokio::test]
async fn the_instant_upstream_answers_streamed_and_unstreamed_requests() {
    let server = MockServer::start(wire::instant_upstream()).await.unwrap();
    let chat = client(&server);
    assert_eq!(chat.complete(&hello()).await.unwrap().message.content, "Hello from the mock.");
    let (events, err) = split(collect(chat.stream(&hello()).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Hello from the mock.");
    assert_eq!(server.connection_count(), 1);
}

//! [`ChatRequest`] → the Chat Completions request body.

use amp_core::{ChatMessage, ChatRequest, Role};
use serde::Serialize;

use super::config::OpenAiFlavor;

/// The request body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(crate) struct CompletionRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    /// OpenAI deprecated `max_tokens` for `max_completion_tokens` (the o-series rejects the
    /// old name); Azure's older API versions and most compatible servers know only `max_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    /// Asks for the final usage-only chunk; without it a stream reports no token counts.
    include_usage: bool,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// `null` for an assistant turn that only calls tools, as the API expects.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    r#type: &'static str,
    function: WireFunction<'a>,
}

#[derive(Debug, Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

impl<'a> CompletionRequest<'a> {
    /// The body for `request`, sent to `model` in `flavor`'s dialect.
    pub(crate) fn new(request: &'a ChatRequest, model: &'a str, flavor: &OpenAiFlavor, stream: bool) -> Self {
        let (max_tokens, max_completion_tokens) = match flavor {
            OpenAiFlavor::OpenAi => (None, request.max_tokens),
            OpenAiFlavor::Azure { .. } | OpenAiFlavor::Compatible => (request.max_tokens, None),
        };
        CompletionRequest {
            model,
            messages: request.messages.iter().map(WireMessage::from).collect(),
            temperature: request.temperature,
            top_p: request.top_p,
            stop: &request.stop,
            max_tokens,
            max_completion_tokens,
            user: request.user.as_deref(),
            stream,
            stream_options: stream.then_some(StreamOptions { include_usage: true }),
        }
    }
}

impl<'a> From<&'a ChatMessage> for WireMessage<'a> {
    fn from(m: &'a ChatMessage) -> Self {
        let only_calls_tools = m.content.is_empty() && !m.tool_calls.is_empty();
        WireMessage {
            role: role_name(m.role),
            content: (!only_calls_tools).then_some(m.content.as_str()),
            name: m.name.as_deref(),
            tool_calls: m
                .tool_calls
                .iter()
                .map(|c| WireToolCall {
                    id: &c.id,
                    r#type: "function",
                    function: WireFunction { name: &c.name, arguments: &c.arguments },
                })
                .collect(),
            tool_call_id: m.tool_call_id.as_deref(),
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amp_core::ToolCall;
    use serde_json::json;

    #[test]
    fn messages_and_options_map_to_the_wire() {
        let mut call = ChatMessage::assistant("");
        call.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "lookup".into(),
            arguments: "{\"q\":1}".into(),
        });
        let mut result = ChatMessage::new(Role::Tool, "42");
        result.tool_call_id = Some("call_1".into());
        let mut named = ChatMessage::user("hi");
        named.name = Some("ada".into());
        let mut req = ChatRequest::new(vec![ChatMessage::system("be brief"), named, call, result]);
        req.max_tokens = Some(64);
        req.temperature = Some(0.5);
        req.stop = vec!["\n\n".into()];
        req.user = Some("u-1".into());

        let body = serde_json::to_value(CompletionRequest::new(&req, "gpt-4o", &OpenAiFlavor::OpenAi, true))
            .unwrap();
        assert_eq!(
            body,
            json!({
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi", "name": "ada"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":1}"}}
                    ]},
                    {"role": "tool", "content": "42", "tool_call_id": "call_1"}
                ],
                "temperature": 0.5,
                "stop": ["\n\n"],
                "max_completion_tokens": 64,
                "user": "u-1",
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn compatible_servers_get_max_tokens_and_no_stream_fields_unstreamed() {
        let mut req = ChatRequest::new(vec![ChatMessage::user("hi")]);
        req.max_tokens = Some(10);
        let body =
            serde_json::to_value(CompletionRequest::new(&req, "llama3", &OpenAiFlavor::Compatible, false))
                .unwrap();
        assert_eq!(
            body,
            json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10})
        );
    }
}

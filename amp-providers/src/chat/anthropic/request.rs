//! [`ChatRequest`] → the Messages API request body.
//!
//! Anthropic differs from the OpenAI shape in ways that need mapping, not renaming:
//! system prompts are a top-level field, roles must alternate (consecutive same-role
//! messages are merged into one with several content blocks), tool results are `user`
//! content blocks, and `max_tokens` is required.

use amp_core::{ChatMessage, ChatRequest, Error, Result, Role};
use serde::Serialize;
use serde_json::Value;

/// The request body of `POST /v1/messages`.
#[derive(Debug, Serialize)]
pub(crate) struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    ToolUse { id: &'a str, name: &'a str, input: Value },
    ToolResult { tool_use_id: &'a str, content: &'a str },
}

impl<'a> MessagesRequest<'a> {
    /// The body for `request`. `default_max_tokens` applies when the request sets none.
    ///
    /// Temperatures above 1 are clamped to 1, Anthropic's maximum, because AMP accepts
    /// OpenAI's 0–2 range and a fallback to Claude must not fail on it.
    pub(crate) fn new(
        request: &'a ChatRequest,
        model: &'a str,
        default_max_tokens: u32,
        stream: bool,
    ) -> Result<Self> {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System && !m.content.is_empty())
            .map(|m| m.content.as_str())
            .collect();
        let mut messages: Vec<WireMessage<'a>> = Vec::new();
        for message in request.messages.iter().filter(|m| m.role != Role::System) {
            let (role, blocks) = blocks(message)?;
            if blocks.is_empty() {
                continue;
            }
            match messages.last_mut() {
                Some(last) if last.role == role => last.content.extend(blocks),
                _ => messages.push(WireMessage { role, content: blocks }),
            }
        }
        if messages.is_empty() {
            return Err(Error::invalid_input(
                "Anthropic needs at least one non-empty user or assistant message",
            ));
        }
        Ok(MessagesRequest {
            model,
            max_tokens: request.max_tokens.unwrap_or(default_max_tokens),
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages,
            temperature: request.temperature.map(|t| t.min(1.0)),
            top_p: request.top_p,
            stop_sequences: &request.stop,
            metadata: request.user.as_deref().map(|user_id| Metadata { user_id }),
            stream,
        })
    }
}

/// A message's role on the wire and its content blocks. Empty text is left out: the API
/// rejects empty text blocks.
fn blocks(message: &ChatMessage) -> Result<(&'static str, Vec<Block<'_>>)> {
    let text = (!message.content.is_empty()).then_some(Block::Text { text: &message.content });
    Ok(match message.role {
        Role::User | Role::System => ("user", text.into_iter().collect()),
        Role::Assistant => {
            let mut blocks: Vec<Block<'_>> = text.into_iter().collect();
            for call in &message.tool_calls {
                let input = match call.arguments.trim() {
                    "" => Value::Object(Default::default()),
                    args => serde_json::from_str::<Value>(args).ok().filter(Value::is_object).ok_or_else(|| {
                        Error::invalid_input(format!(
                            "tool call `{}` has arguments that are not a JSON object; Anthropic needs one",
                            call.id
                        ))
                    })?,
                };
                blocks.push(Block::ToolUse { id: &call.id, name: &call.name, input });
            }
            ("assistant", blocks)
        }
        Role::Tool => {
            let id = message.tool_call_id.as_deref().ok_or_else(|| {
                Error::invalid_input("a tool message needs the `tool_call_id` of the call it answers")
            })?;
            ("user", vec![Block::ToolResult { tool_use_id: id, content: &message.content }])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use amp_core::ToolCall;
    use serde_json::json;

    #[test]
    fn tool_calls_and_results_become_blocks() {
        let mut call = ChatMessage::assistant("Let me look.");
        call.tool_calls.push(ToolCall {
            id: "toolu_1".into(),
            name: "lookup".into(),
            arguments: r#"{"q":"x"}"#.into(),
        });
        let mut result = ChatMessage::new(Role::Tool, "found");
        result.tool_call_id = Some("toolu_1".into());
        let req =
            ChatRequest::new(vec![ChatMessage::user("find x"), call, result, ChatMessage::user("thanks")]);
        let body = serde_json::to_value(MessagesRequest::new(&req, "claude", 100, false).unwrap()).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "find x"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found"},
                    {"type": "text", "text": "thanks"}
                ]}
            ])
        );
    }

    #[test]
    fn arguments_that_are_not_an_object_are_refused() {
        let mut call = ChatMessage::assistant("");
        call.tool_calls.push(ToolCall { id: "t".into(), name: "f".into(), arguments: "[1".into() });
        let req = ChatRequest::new(vec![ChatMessage::user("hi"), call]);
        let err = MessagesRequest::new(&req, "claude", 100, false).unwrap_err();
        assert!(err.to_string().contains("`t`"), "{err}");
    }

    #[test]
    fn temperature_is_clamped_to_anthropics_range() {
        let mut req = ChatRequest::new(vec![ChatMessage::user("hi")]);
        req.temperature = Some(1.7);
        let body = serde_json::to_value(MessagesRequest::new(&req, "claude", 100, false).unwrap()).unwrap();
        assert_eq!(body["temperature"], json!(1.0));
    }
}

//! The Chat Completions response body → [`ChatResponse`].

use amp_core::{ChatMessage, ChatResponse, FinishReason, Result, ToolCall, Usage};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Completion {
    id: Option<String>,
    model: Option<String>,
    choices: Option<Vec<Choice>>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    content: Option<String>,
    /// Set instead of `content` when the model declines (structured-output models).
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

/// Token counts as every OpenAI-compatible server reports them.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens }
    }
}

/// Maps `finish_reason`; unknown values (servers invent their own) count as a normal stop.
pub(crate) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

pub(crate) use crate::http::malformed;

/// Parses a complete (unstreamed) answer. Only the first choice is read: AMP never asks for more.
pub(crate) fn parse_completion(body: &[u8], service: &str, fallback_model: &str) -> Result<ChatResponse> {
    let completion: Completion = serde_json::from_slice(body).map_err(|e| malformed(service, e))?;
    let choice = completion
        .choices
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.index == 0)
        .ok_or_else(|| malformed(service, "no choices"))?;
    let mut message =
        ChatMessage::assistant(choice.message.content.or(choice.message.refusal).unwrap_or_default());
    message.tool_calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|c| ToolCall { id: c.id, name: c.function.name, arguments: c.function.arguments })
        .collect();
    Ok(ChatResponse {
        id: completion.id.unwrap_or_default(),
        model: completion.model.filter(|m| !m.is_empty()).unwrap_or_else(|| fallback_model.to_owned()),
        message,
        finish_reason: choice.finish_reason.as_deref().map_or(FinishReason::Stop, finish_reason),
        usage: completion.usage.map(Usage::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_and_null_content_parse() {
        let body = br#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        let r = parse_completion(body, "s", "m").unwrap();
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.message.tool_calls[0].name, "f");
        assert_eq!(r.message.content, "");
        assert_eq!(r.usage, Some(Usage { prompt_tokens: 3, completion_tokens: 4 }));
    }

    #[test]
    fn missing_choices_is_malformed() {
        let err = parse_completion(br#"{"id":"x","choices":[]}"#, "s", "m").unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("no choices"));
    }
}

//! The Messages API response body → [`ChatResponse`].

use amp_core::{ChatMessage, ChatResponse, FinishReason, Result, ToolCall, Usage};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct Message {
    id: String,
    model: Option<String>,
    #[serde(default)]
    content: Vec<ContentBlock>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// Thinking and server-tool blocks: not part of the answer AMP passes on.
    #[serde(other)]
    Other,
}

/// Token counts. Cached prompt tokens are reported apart from `input_tokens`; AMP counts
/// them all as prompt.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct WireUsage {
    pub(crate) input_tokens: Option<u32>,
    pub(crate) output_tokens: Option<u32>,
    pub(crate) cache_creation_input_tokens: Option<u32>,
    pub(crate) cache_read_input_tokens: Option<u32>,
}

impl WireUsage {
    /// All prompt tokens, when the input count is present.
    pub(crate) fn prompt_tokens(&self) -> Option<u32> {
        self.input_tokens.map(|input| {
            input
                .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
                .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
        })
    }
}

/// Maps `stop_reason`; unknown values count as a normal stop.
pub(crate) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn
        _ => FinishReason::Stop,
    }
}

pub(crate) use crate::http::malformed;

/// Parses a complete (unstreamed) answer: text blocks concatenated, tool-use blocks as
/// tool calls with their input as JSON text.
pub(crate) fn parse_message(body: &[u8], service: &str, fallback_model: &str) -> Result<ChatResponse> {
    let message: Message = serde_json::from_slice(body).map_err(|e| malformed(service, e))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in message.content {
        match block {
            ContentBlock::Text { text: t } => text.push_str(&t),
            ContentBlock::ToolUse { id, name, input } => {
                tool_calls.push(ToolCall { id, name, arguments: input.to_string() });
            }
            ContentBlock::Other => {}
        }
    }
    let mut answer = ChatMessage::assistant(text);
    answer.tool_calls = tool_calls;
    Ok(ChatResponse {
        id: message.id,
        model: message.model.filter(|m| !m.is_empty()).unwrap_or_else(|| fallback_model.to_owned()),
        message: answer,
        finish_reason: message.stop_reason.as_deref().map_or(FinishReason::Stop, finish_reason),
        usage: message.usage.map(|u| Usage {
            prompt_tokens: u.prompt_tokens().unwrap_or(0),
            completion_tokens: u.output_tokens.unwrap_or(0),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_prompt_tokens_count_as_prompt() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"thinking","thinking":"hm","signature":"s"},{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":3}}"#;
        let r = parse_message(body, "s", "m").unwrap();
        assert_eq!(r.message.content, "Hi");
        assert_eq!(r.usage, Some(Usage { prompt_tokens: 115, completion_tokens: 3 }));
    }
}

//! Chat requests, responses and stream events.
//!
//! The shapes follow the OpenAI Chat Completions vocabulary (roles, `max_tokens`, `stop`,
//! `finish_reason`) because that is what most clients and servers already speak; providers
//! with other wire formats map to and from these types.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::ids::ModelId;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, passed back to the model.
    Tool,
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// An optional author name (OpenAI's `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls the assistant asked for; AMP passes them through and does not run them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message with just a role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage { role, content: content.into(), name: None, tool_calls: Vec::new(), tool_call_id: None }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call.
    pub id: String,
    /// The function to call.
    pub name: String,
    /// The arguments as the model wrote them (JSON text, possibly invalid).
    pub arguments: String,
}

/// A request for one model answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model, tier or agent asked for; `None` lets the router choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelId>,
    /// The conversation so far, oldest first.
    pub messages: Vec<ChatMessage>,
    /// The most tokens the answer may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sequences that end the answer when generated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Whether the caller wants the answer streamed.
    #[serde(default)]
    pub stream: bool,
    /// An end-user id passed to the provider for abuse tracking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl ChatRequest {
    /// A request with these messages and every option at its default.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        ChatRequest {
            model: None,
            messages,
            max_tokens: None,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
            stream: false,
            user: None,
        }
    }

    /// Checks what every provider needs: at least one message, sane sampling values.
    pub fn validate(&self) -> Result<(), Error> {
        if self.messages.is_empty() {
            return Err(Error::invalid_input("messages must not be empty"));
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(Error::invalid_input(format!("temperature must be between 0 and 2, got {t}")));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(Error::invalid_input(format!("top_p must be in (0, 1], got {p}")));
        }
        if self.max_tokens == Some(0) {
            return Err(Error::invalid_input("max_tokens must be at least 1"));
        }
        Ok(())
    }
}

/// Why a model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// The model asked for tool calls.
    ToolCalls,
    /// The provider filtered the content.
    ContentFilter,
    /// The caller cancelled.
    Cancelled,
}

/// Token usage of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens in the answer.
    pub completion_tokens: u32,
}

impl Usage {
    /// Prompt plus completion.
    pub fn total_tokens(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// A complete, non-streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The provider's response id.
    pub id: String,
    /// The model that answered (as the provider names it).
    pub model: String,
    /// The answer.
    pub message: ChatMessage,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Token usage, when the provider reports it.
    pub usage: Option<Usage>,
}

/// One event of a streamed answer, in order: one `Start`, any number of deltas, at most one
/// `Usage`, then exactly one `Finish` or one `Error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The answer has begun.
    Start {
        /// The provider's response id.
        id: String,
        /// The model that answers.
        model: String,
    },
    /// More answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// A piece of a tool call, passed through as the provider streamed it.
    ToolCallDelta {
        /// Which call (providers stream several interleaved).
        index: u32,
        /// The call id, on the first delta of a call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The function name, on the first delta of a call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// More of the JSON arguments text.
        arguments: String,
    },
    /// Token usage of the whole answer.
    Usage(Usage),
    /// The answer ended normally.
    Finish {
        /// Why.
        reason: FinishReason,
    },
    /// The answer broke off after it had started; no more events follow.
    Error {
        /// The error's kind.
        kind: ErrorKind,
        /// A message safe to show.
        message: String,
    },
}

impl StreamEvent {
    /// The event that reports `err` to a client mid-stream.
    pub fn from_error(err: &Error) -> Self {
        StreamEvent::Error { kind: err.kind(), message: err.public_message() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_style_request_parses() {
        let req: ChatRequest = serde_json::from_str(
            r#"{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":64,"stop":["\n\n"],"stream":true}"#,
        )
        .unwrap();
        assert_eq!(req.model, Some(ModelId::new("gpt-4o")));
        assert_eq!(req.messages[0].role, Role::System);
        assert!(req.stream);
        req.validate().unwrap();
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut req = ChatRequest::new(vec![ChatMessage::user("hi")]);
        req.temperature = Some(3.5);
        assert!(req.validate().unwrap_err().to_string().contains("temperature"));
        let empty = ChatRequest::new(vec![]);
        assert_eq!(empty.validate().unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn stream_events_are_tagged_for_the_wire() {
        let ev = StreamEvent::TextDelta { text: "Hel".into() };
        assert_eq!(serde_json::to_string(&ev).unwrap(), r#"{"type":"text_delta","text":"Hel"}"#);
        let err = StreamEvent::from_error(&Error::unavailable("model overloaded"));
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            serde_json::json!({"type": "error", "kind": "unavailable", "message": "model overloaded"})
        );
    }
}

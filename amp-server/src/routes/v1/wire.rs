//! OpenAI's Chat Completions wire format: what clients send, what they get back, and the
//! error shape their libraries parse.

use amp_core::{
    ChatMessage, ChatRequest, ChatResponse, FinishReason, ModelId, Role, StreamEvent, ToolCall, Usage,
};
use serde::{Deserialize, Serialize};

/// A Chat Completions request. Fields AMP does not act on (penalties, logit bias, seed, …)
/// are accepted and ignored, as clients send them by default; `n` above 1 and tools are
/// refused rather than silently dropped.
#[derive(Debug, Deserialize)]
pub(crate) struct CompletionRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<WireMessage>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    pub(crate) stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    tools: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    role: Role,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

/// A message's content: a string, or an array of parts of which AMP reads the text ones.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl CompletionRequest {
    /// Whether the client asked for a final usage chunk.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|o| o.include_usage)
    }

    /// The request in AMP's terms, or why it cannot be served.
    pub(crate) fn into_chat_request(self) -> amp_core::Result<ChatRequest> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(amp_core::Error::invalid_input("n: only 1 choice per request is supported"));
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_null()) {
            return Err(amp_core::Error::invalid_input(
                "tools: function calling is not supported by this gateway",
            ));
        }
        let mut messages = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.into_iter().enumerate() {
            let content = match m.content {
                None => String::new(),
                Some(Content::Text(text)) => text,
                Some(Content::Parts(parts)) => {
                    if let Some(other) = parts.iter().find(|p| p.kind != "text") {
                        return Err(amp_core::Error::invalid_input(format!(
                            "messages[{i}].content: `{}` parts are not supported; send text",
                            other.kind
                        )));
                    }
                    parts.into_iter().filter_map(|p| p.text).collect::<Vec<_>>().join("")
                }
            };
            messages.push(ChatMessage {
                name: m.name,
                tool_call_id: m.tool_call_id,
                ..ChatMessage::new(m.role, content)
            });
        }
        let mut request = ChatRequest::new(messages);
        request.model = self.model.filter(|m| !m.is_empty()).map(ModelId::new);
        request.max_tokens = self.max_completion_tokens.or(self.max_tokens);
        request.temperature = self.temperature;
        request.top_p = self.top_p;
        request.stop = match self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        };
        request.stream = self.stream;
        request.user = self.user;
        Ok(request)
    }
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::Cancelled => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct WireUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

impl From<Usage> for WireUsage {
    fn from(u: Usage) -> Self {
        WireUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens(),
        }
    }
}

#[derive(Debug, Serialize)]
struct WireFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Debug, Serialize)]
struct WireToolCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: WireFunction<'a>,
}

#[derive(Debug, Serialize)]
struct WireAnswer<'a> {
    role: &'static str,
    content: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
}

#[derive(Debug, Serialize)]
struct Choice<'a> {
    index: u32,
    message: WireAnswer<'a>,
    finish_reason: &'static str,
    logprobs: Option<()>,
}

/// A whole answer (`object: chat.completion`).
#[derive(Debug, Serialize)]
pub(crate) struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<WireUsage>,
}

impl<'a> Completion<'a> {
    pub(crate) fn new(response: &'a ChatResponse, model: &'a str, created: i64) -> Self {
        let tool_calls = response.message.tool_calls.iter().map(tool_call).collect();
        Completion {
            id: &response.id,
            object: "chat.completion",
            created,
            model,
            choices: [Choice {
                index: 0,
                message: WireAnswer { role: "assistant", content: &response.message.content, tool_calls },
                finish_reason: finish_reason(response.finish_reason),
                logprobs: None,
            }],
            usage: response.usage.map(WireUsage::from),
        }
    }
}

fn tool_call(call: &ToolCall) -> WireToolCall<'_> {
    WireToolCall {
        index: None,
        id: Some(&call.id),
        kind: Some("function"),
        function: WireFunction { name: Some(&call.name), arguments: &call.arguments },
    }
}

#[derive(Debug, Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
}

#[derive(Debug, Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

/// One streamed piece (`object: chat.completion.chunk`).
#[derive(Debug, Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<WireUsage>,
}

/// Turns stream events into `data:` payloads, in OpenAI's order: a role chunk, content
/// chunks, a chunk with `finish_reason`, then (if asked) a usage chunk with no choices.
pub(crate) struct ChunkWriter {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    usage: Option<Usage>,
}

impl ChunkWriter {
    pub(crate) fn new(model: String, created: i64, include_usage: bool) -> Self {
        ChunkWriter { id: String::new(), model, created, include_usage, usage: None }
    }

    fn chunk(&self, delta: Delta<'_>, finish: Option<&'static str>) -> String {
        self.serialize(vec![ChunkChoice { index: 0, delta, finish_reason: finish }], None)
    }

    fn serialize(&self, choices: Vec<ChunkChoice<'_>>, usage: Option<WireUsage>) -> String {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        // Plain structs of strings and numbers always serialize.
        serde_json::to_string(&chunk).unwrap_or_default()
    }

    /// The payloads one event becomes (none, one, or two at the end).
    pub(crate) fn write(&mut self, event: StreamEvent) -> Vec<String> {
        match event {
            StreamEvent::Start { id, .. } => {
                self.id = id;
                vec![
                    self.chunk(
                        Delta { role: Some("assistant"), content: Some(""), ..Delta::default() },
                        None,
                    ),
                ]
            }
            StreamEvent::TextDelta { text } => {
                vec![self.chunk(Delta { content: Some(&text), ..Delta::default() }, None)]
            }
            StreamEvent::ToolCallDelta { index, id, name, arguments } => {
                let call = WireToolCall {
                    index: Some(index),
                    id: id.as_deref(),
                    kind: id.as_ref().map(|_| "function"),
                    function: WireFunction { name: name.as_deref(), arguments: &arguments },
                };
                vec![self.chunk(Delta { tool_calls: vec![call], ..Delta::default() }, None)]
            }
            StreamEvent::Usage(usage) => {
                self.usage = Some(usage);
                Vec::new()
            }
            StreamEvent::Finish { reason } => {
                let mut out = vec![self.chunk(Delta::default(), Some(finish_reason(reason)))];
                if self.include_usage {
                    out.push(self.serialize(Vec::new(), Some(self.usage.unwrap_or_default().into())));
                }
                out
            }
            StreamEvent::Error { kind, message } => {
                vec![error_body(kind.http_status(), &message, kind.code())]
            }
        }
    }
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`, typed by status
/// the way OpenAI's own errors are.
pub(crate) fn error_body(status: u16, message: &str, code: &str) -> String {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    let code = match (status, code) {
        (401, _) => "invalid_api_key",
        (404, _) if message.starts_with("model `") => "model_not_found",
        (422, _) => "context_length_exceeded",
        (429, _) => "rate_limit_exceeded",
        (_, code) => code,
    };
    serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_with_content_parts_and_a_single_stop_parse() {
        let request: CompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "gpt-4o", "stop": "END", "max_completion_tokens": 9, "presence_penalty": 0.5,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}]
        }))
        .unwrap();
        let chat = request.into_chat_request().unwrap();
        assert_eq!(chat.messages[0].content, "Hello");
        assert_eq!((chat.stop, chat.max_tokens), (vec!["END".to_owned()], Some(9)));
    }

    #[test]
    fn image_parts_and_several_choices_are_refused() {
        let request: CompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
        }))
        .unwrap();
        assert!(request.into_chat_request().unwrap_err().to_string().contains("image_url"));
        let request: CompletionRequest = serde_json::from_value(
            serde_json::json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
        assert!(request.into_chat_request().unwrap_err().to_string().starts_with("n:"));
    }

    #[test]
    fn the_usage_chunk_follows_the_finish_chunk_when_asked() {
        let mut writer = ChunkWriter::new("m".into(), 1, true);
        assert_eq!(writer.write(StreamEvent::Start { id: "c1".into(), model: "up".into() }).len(), 1);
        assert!(
            writer.write(StreamEvent::Usage(Usage { prompt_tokens: 3, completion_tokens: 2 })).is_empty()
        );
        let end = writer.write(StreamEvent::Finish { reason: FinishReason::Stop });
        assert!(end[0].contains(r#""finish_reason":"stop""#), "{}", end[0]);
        assert!(end[1].contains(r#""choices":[]"#) && end[1].contains(r#""total_tokens":5"#), "{}", end[1]);
    }
}

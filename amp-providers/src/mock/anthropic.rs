//! Anthropic's Messages wire format, byte for byte: the streamed event set, messages, errors.

use serde_json::Value;

use super::request::RecordedRequest;
use super::response::MockResponse;

fn js(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

fn event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

#[derive(Debug, Clone)]
enum Block {
    Text(Vec<String>),
    ToolUse { id: String, name: String, json_pieces: Vec<String> },
}

/// A streamed Messages answer, built block by block.
///
/// [`MessageStream::frames`] yields the full event set Anthropic sends: `message_start`,
/// per block `content_block_start` / `content_block_delta`s / `content_block_stop` (with a
/// `ping` after the first block starts, as the API does), `message_delta` with the stop
/// reason and output tokens, and `message_stop`.
///
/// ```
/// use amp_providers::mock::anthropic::MessageStream;
/// let frames = MessageStream::new("msg_1", "claude-sonnet-4-20250514").text(&["Hel", "lo"]).frames();
/// assert!(frames[0].starts_with("event: message_start\ndata: "));
/// assert_eq!(frames.last().map(String::as_str), Some("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
/// ```
#[derive(Debug, Clone)]
pub struct MessageStream {
    id: String,
    model: String,
    blocks: Vec<Block>,
    stop_reason: String,
    input_tokens: u32,
    output_tokens: u32,
}

impl MessageStream {
    /// An answer with this id and model, ending with `end_turn`.
    pub fn new(id: &str, model: &str) -> Self {
        MessageStream {
            id: id.into(),
            model: model.into(),
            blocks: Vec::new(),
            stop_reason: "end_turn".into(),
            input_tokens: 25,
            output_tokens: 15,
        }
    }

    /// A text block streamed in these pieces.
    pub fn text(mut self, pieces: &[&str]) -> Self {
        self.blocks.push(Block::Text(pieces.iter().map(|p| (*p).to_owned()).collect()));
        self
    }

    /// A tool-use block whose input JSON is streamed in these pieces; it also sets the
    /// stop reason to `tool_use`.
    pub fn tool_use(mut self, id: &str, name: &str, json_pieces: &[&str]) -> Self {
        self.blocks.push(Block::ToolUse {
            id: id.into(),
            name: name.into(),
            json_pieces: json_pieces.iter().map(|p| (*p).to_owned()).collect(),
        });
        self.stop_reason = "tool_use".into();
        self
    }

    /// The stop reason (`end_turn`, `max_tokens`, `stop_sequence`, `tool_use`).
    pub fn stop_reason(mut self, reason: &str) -> Self {
        self.stop_reason = reason.into();
        self
    }

    /// Input tokens (in `message_start`) and output tokens (in `message_delta`).
    pub fn usage(mut self, input_tokens: u32, output_tokens: u32) -> Self {
        self.input_tokens = input_tokens;
        self.output_tokens = output_tokens;
        self
    }

    /// The SSE frames, each `event: …\ndata: …\n\n`.
    pub fn frames(&self) -> Vec<String> {
        let mut frames = vec![event(
            "message_start",
            &format!(
                r#"{{"type":"message_start","message":{{"id":{},"type":"message","role":"assistant","model":{},"content":[],"stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":{},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}}}}"#,
                js(&self.id),
                js(&self.model),
                self.input_tokens
            ),
        )];
        for (index, block) in self.blocks.iter().enumerate() {
            match block {
                Block::Text(pieces) => {
                    frames.push(event(
                        "content_block_start",
                        &format!(r#"{{"type":"content_block_start","index":{index},"content_block":{{"type":"text","text":""}}}}"#),
                    ));
                    if index == 0 {
                        frames.push(event("ping", r#"{"type": "ping"}"#));
                    }
                    for piece in pieces {
                        frames.push(event(
                            "content_block_delta",
                            &format!(
                                r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"text_delta","text":{}}}}}"#,
                                js(piece)
                            ),
                        ));
                    }
                }
                Block::ToolUse { id, name, json_pieces } => {
                    frames.push(event(
                        "content_block_start",
                        &format!(
                            r#"{{"type":"content_block_start","index":{index},"content_block":{{"type":"tool_use","id":{},"name":{},"input":{{}}}}}}"#,
                            js(id),
                            js(name)
                        ),
                    ));
                    if index == 0 {
                        frames.push(event("ping", r#"{"type": "ping"}"#));
                    }
                    // The API opens every tool input with an empty piece.
                    for piece in std::iter::once("").chain(json_pieces.iter().map(String::as_str)) {
                        frames.push(event(
                            "content_block_delta",
                            &format!(
                                r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"input_json_delta","partial_json":{}}}}}"#,
                                js(piece)
                            ),
                        ));
                    }
                }
            }
            frames.push(event(
                "content_block_stop",
                &format!(r#"{{"type":"content_block_stop","index":{index}}}"#),
            ));
        }
        frames.push(event(
            "message_delta",
            &format!(
                r#"{{"type":"message_delta","delta":{{"stop_reason":{},"stop_sequence":null}},"usage":{{"output_tokens":{}}}}}"#,
                js(&self.stop_reason),
                self.output_tokens
            ),
        ));
        frames.push(event("message_stop", r#"{"type":"message_stop"}"#));
        frames
    }

    /// The frames as a `200 text/event-stream` answer.
    pub fn into_response(self) -> MockResponse {
        MockResponse::sse(self.frames()).with_header("request-id", "req_mock")
    }
}

/// An `error` event as sent mid-stream (e.g. `overloaded_error`, `Overloaded`).
pub fn error_event(kind: &str, message: &str) -> String {
    event(
        "error",
        &format!(r#"{{"type":"error","error":{{"type":{},"message":{}}}}}"#, js(kind), js(message)),
    )
}

/// An unstreamed Messages answer. `tool_uses` are `(id, name, input JSON)`.
pub fn message(
    id: &str,
    model: &str,
    text: &str,
    tool_uses: &[(&str, &str, &str)],
    stop_reason: &str,
    usage: (u32, u32),
) -> String {
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(format!(r#"{{"type":"text","text":{}}}"#, js(text)));
    }
    for (id, name, input) in tool_uses {
        content.push(format!(r#"{{"type":"tool_use","id":{},"name":{},"input":{input}}}"#, js(id), js(name)));
    }
    format!(
        r#"{{"id":{},"type":"message","role":"assistant","model":{},"content":[{}],"stop_reason":{},"stop_sequence":null,"usage":{{"input_tokens":{},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":{}}}}}"#,
        js(id),
        js(model),
        content.join(","),
        js(stop_reason),
        usage.0,
        usage.1
    )
}

/// Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`.
pub fn error_body(kind: &str, message: &str) -> String {
    format!(
        r#"{{"type":"error","error":{{"type":{},"message":{}}},"request_id":"req_mock"}}"#,
        js(kind),
        js(message)
    )
}

/// An error answer with Anthropic's body.
pub fn error_response(status: u16, kind: &str, message: &str) -> MockResponse {
    MockResponse::json_text(status, error_body(kind, message)).with_header("request-id", "req_mock")
}

/// A handler answering instantly like the Messages API: `/v1/messages`, streamed or not
/// as the request asks, with a short fixed answer; anything else is a 404.
pub fn instant_upstream() -> impl Fn(&RecordedRequest) -> MockResponse + Send + Sync + 'static {
    |request| {
        if request.path() != "/v1/messages" {
            return error_response(404, "not_found_error", "Not found");
        }
        let body = request.json().unwrap_or(Value::Null);
        let model = body.get("model").and_then(Value::as_str).unwrap_or("claude-mock").to_owned();
        if body.get("stream").and_then(Value::as_bool) == Some(true) {
            MessageStream::new("msg_mock", &model)
                .text(&["Hello", " from", " the mock."])
                .usage(8, 4)
                .into_response()
        } else {
            MockResponse::json_text(
                200,
                message("msg_mock", &model, "Hello from the mock.", &[], "end_turn", (8, 4)),
            )
        }
    }
}

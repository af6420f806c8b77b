//! OpenAI's wire format, byte for byte: streamed chunks, completions, embeddings, errors.
//!
//! JSON is written as text in the field order OpenAI uses, so a recorded exchange and a
//! scripted one look the same.

use serde_json::Value;

use super::request::RecordedRequest;
use super::response::MockResponse;

/// `created` in every scripted answer; a fixed time keeps answers reproducible.
const CREATED: u64 = 1_718_000_000;

fn js(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

fn usage_json(prompt: u32, completion: u32) -> String {
    format!(
        r#"{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":0,"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}"#,
        prompt + completion
    )
}

/// A streamed Chat Completions answer, built piece by piece.
///
/// [`ChatCompletionStream::frames`] yields what OpenAI sends with
/// `stream_options.include_usage`: a role-only chunk, one chunk per piece, a chunk with
/// `finish_reason`, a usage-only chunk with empty `choices`, and `data: [DONE]`.
///
/// ```
/// use amp_providers::mock::openai::ChatCompletionStream;
/// let frames = ChatCompletionStream::new("chatcmpl-1", "gpt-4o-mini").text("Hel").text("lo").usage(9, 2).frames();
/// assert!(frames[0].contains(r#""delta":{"role":"assistant","content":"","refusal":null}"#));
/// assert_eq!(frames.last().map(String::as_str), Some("data: [DONE]\n\n"));
/// ```
#[derive(Debug, Clone)]
pub struct ChatCompletionStream {
    id: String,
    model: String,
    deltas: Vec<String>,
    finish_reason: Option<String>,
    usage: Option<(u32, u32)>,
}

impl ChatCompletionStream {
    /// An answer with this id and model; it finishes with `stop` unless told otherwise.
    pub fn new(id: &str, model: &str) -> Self {
        ChatCompletionStream {
            id: id.into(),
            model: model.into(),
            deltas: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// One more piece of text.
    pub fn text(mut self, piece: &str) -> Self {
        self.deltas.push(format!(r#"{{"content":{}}}"#, js(piece)));
        self
    }

    /// The first delta of tool call `index`: its id and function name, empty arguments.
    pub fn tool_call(mut self, index: u32, id: &str, name: &str) -> Self {
        self.deltas.push(format!(
            r#"{{"tool_calls":[{{"index":{index},"id":{},"type":"function","function":{{"name":{},"arguments":""}}}}]}}"#,
            js(id),
            js(name)
        ));
        self
    }

    /// A piece of tool call `index`'s arguments.
    pub fn tool_arguments(mut self, index: u32, piece: &str) -> Self {
        self.deltas.push(format!(
            r#"{{"tool_calls":[{{"index":{index},"function":{{"arguments":{}}}}}]}}"#,
            js(piece)
        ));
        self
    }

    /// The finish reason (`stop`, `length`, `tool_calls`, `content_filter`).
    pub fn finish(mut self, reason: &str) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }

    /// Token usage, sent as the usage-only chunk before `[DONE]`.
    pub fn usage(mut self, prompt_tokens: u32, completion_tokens: u32) -> Self {
        self.usage = Some((prompt_tokens, completion_tokens));
        self
    }

    fn chunk(&self, delta: &str, finish_reason: Option<&str>) -> String {
        let finish = finish_reason.map_or_else(|| "null".to_owned(), js);
        format!(
            "data: {{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":{},\"system_fingerprint\":\"fp_mock\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}],\"usage\":null}}\n\n",
            js(&self.id),
            js(&self.model)
        )
    }

    /// The SSE frames, each `data: …\n\n`.
    pub fn frames(&self) -> Vec<String> {
        let mut frames = vec![self.chunk(r#"{"role":"assistant","content":"","refusal":null}"#, None)];
        frames.extend(self.deltas.iter().map(|d| self.chunk(d, None)));
        frames.push(self.chunk("{}", Some(self.finish_reason.as_deref().unwrap_or("stop"))));
        if let Some((prompt, completion)) = self.usage {
            frames.push(format!(
                "data: {{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":{},\"system_fingerprint\":\"fp_mock\",\"choices\":[],\"usage\":{}}}\n\n",
                js(&self.id),
                js(&self.model),
                usage_json(prompt, completion)
            ));
        }
        frames.push("data: [DONE]\n\n".to_owned());
        frames
    }

    /// The frames as a `200 text/event-stream` answer.
    pub fn into_response(self) -> MockResponse {
        MockResponse::sse(self.frames())
    }
}

/// An unstreamed Chat Completions answer. `tool_calls` are `(id, name, arguments)`; with
/// any, `content` is `null` when empty, as OpenAI sends it.
pub fn chat_completion(
    id: &str,
    model: &str,
    content: &str,
    tool_calls: &[(&str, &str, &str)],
    finish_reason: &str,
    usage: (u32, u32),
) -> String {
    let content = if content.is_empty() && !tool_calls.is_empty() { "null".to_owned() } else { js(content) };
    let calls = if tool_calls.is_empty() {
        String::new()
    } else {
        let calls: Vec<String> = tool_calls
            .iter()
            .map(|(id, name, args)| {
                format!(
                    r#"{{"id":{},"type":"function","function":{{"name":{},"arguments":{}}}}}"#,
                    js(id),
                    js(name),
                    js(args)
                )
            })
            .collect();
        format!(r#","tool_calls":[{}]"#, calls.join(","))
    };
    format!(
        r#"{{"id":{},"object":"chat.completion","created":{CREATED},"model":{},"choices":[{{"index":0,"message":{{"role":"assistant","content":{content}{calls},"refusal":null,"annotations":[]}},"logprobs":null,"finish_reason":{}}}],"usage":{},"service_tier":"default","system_fingerprint":"fp_mock"}}"#,
        js(id),
        js(model),
        js(finish_reason),
        usage_json(usage.0, usage.1)
    )
}

/// An `/embeddings` answer with one entry per vector, `index` as given (so tests can
/// answer out of order).
pub fn embeddings(model: &str, vectors: &[(usize, Vec<f32>)]) -> String {
    let data: Vec<String> = vectors
        .iter()
        .map(|(index, v)| {
            format!(r#"{{"object":"embedding","index":{index},"embedding":{}}}"#, Value::from(v.clone()))
        })
        .collect();
    format!(
        r#"{{"object":"list","data":[{}],"model":{},"usage":{{"prompt_tokens":{n},"total_tokens":{n}}}}}"#,
        data.join(","),
        js(model),
        n = vectors.len() * 4
    )
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> String {
    let opt = |v: Option<&str>| v.map_or_else(|| "null".to_owned(), js);
    format!(
        "{{\n    \"error\": {{\n        \"message\": {},\n        \"type\": {},\n        \"param\": {},\n        \"code\": {}\n    }}\n}}\n",
        js(message),
        js(kind),
        opt(param),
        opt(code)
    )
}

/// An error answer with OpenAI's body and `x-request-id`.
pub fn error_response(status: u16, message: &str, kind: &str, code: Option<&str>) -> MockResponse {
    MockResponse::json_text(status, error_body(message, kind, None, code))
        .with_header("x-request-id", "req_mock")
}

/// A 400 `context_length_exceeded` as OpenAI words it.
pub fn context_length_exceeded(limit: u32, requested: u32) -> MockResponse {
    let message = format!(
        "This model's maximum context length is {limit} tokens. However, your messages resulted in {requested} tokens. Please reduce the length of the messages."
    );
    error_response(400, &message, "invalid_request_error", Some("context_length_exceeded"))
}

/// A handler answering instantly like an OpenAI-compatible server: `/chat/completions`
/// (streamed or not, as the request asks) with a short fixed answer, and `/embeddings`
/// with one unit vector of `dimension` per input. Anything else is a 404. Meant for load
/// tests and end-to-end tests that need an upstream, not a particular answer.
pub fn instant_upstream(
    dimension: usize,
) -> impl Fn(&RecordedRequest) -> MockResponse + Send + Sync + 'static {
    let dimension = dimension.max(1);
    move |request| {
        let body = request.json().unwrap_or(Value::Null);
        let model = body.get("model").and_then(Value::as_str).unwrap_or("mock-model").to_owned();
        if request.path().ends_with("/chat/completions") {
            if body.get("stream").and_then(Value::as_bool) == Some(true) {
                ChatCompletionStream::new("chatcmpl-mock", &model)
                    .text("Hello")
                    .text(" from")
                    .text(" the mock.")
                    .usage(8, 4)
                    .into_response()
            } else {
                MockResponse::json_text(
                    200,
                    chat_completion("chatcmpl-mock", &model, "Hello from the mock.", &[], "stop", (8, 4)),
                )
            }
        } else if request.path().ends_with("/embeddings") {
            let inputs = body.get("input").and_then(Value::as_array).map_or(1, Vec::len);
            let mut unit = vec![0.0_f32; dimension];
            unit[0] = 1.0;
            let vectors: Vec<(usize, Vec<f32>)> = (0..inputs).map(|i| (i, unit.clone())).collect();
            MockResponse::json_text(200, embeddings(&model, &vectors))
        } else {
            error_response(404, "Unknown request URL", "invalid_request_error", Some("unknown_url"))
        }
    }
}

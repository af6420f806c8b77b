//! Messages API Server-Sent Events → [`StreamEvent`]s.
//!
//! The wire: `message_start` (id, model, input tokens), then per content block a
//! `content_block_start`, `content_block_delta`s (`text_delta`, or `input_json_delta`
//! for tool use) and a `content_block_stop`; then `message_delta` (stop reason, output
//! tokens) and `message_stop`. `ping`s may come at any time; an `error` event ends the
//! stream. Unknown event and delta types are ignored, as Anthropic's versioning policy asks.

use std::collections::HashMap;
use std::sync::Arc;

use amp_core::{Error, FinishReason, Result, StreamEvent, Usage};
use eventsource_stream::Event;
use serde::Deserialize;

use super::error::{WireError, stream_error};
use super::response::{WireUsage, finish_reason, malformed};
use crate::http::{Decoded, KeyScrubber, SseDecoder};

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: Option<WireUsage>,
    },
    MessageStop {},
    Error {
        error: WireError,
    },
    /// `ping`, `content_block_stop` and event types added later.
    #[serde(other)]
    Ignored,
}

#[derive(Debug, Deserialize)]
struct StartMessage {
    id: String,
    model: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// Thinking, signature and citation deltas: not part of the answer AMP passes on.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageDeltaBody {
    stop_reason: Option<String>,
}

/// Decodes one streamed answer.
pub(crate) struct AnthropicStreamDecoder {
    service: Arc<str>,
    fallback_model: String,
    scrubber: KeyScrubber,
    started: bool,
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    finish: Option<FinishReason>,
    /// Content-block index → tool-call index. Tool calls are numbered among themselves
    /// (0, 1, …) as OpenAI numbers them, whatever text blocks come between.
    tool_calls: HashMap<u32, u32>,
}

impl AnthropicStreamDecoder {
    pub(crate) fn new(service: Arc<str>, fallback_model: String, scrubber: KeyScrubber) -> Self {
        AnthropicStreamDecoder {
            service,
            fallback_model,
            scrubber,
            started: false,
            prompt_tokens: None,
            completion_tokens: None,
            finish: None,
            tool_calls: HashMap::new(),
        }
    }

    fn tool_index(&self, block: u32) -> Result<u32> {
        self.tool_calls.get(&block).copied().ok_or_else(|| {
            malformed(&self.service, format!("input for content block {block}, which is not a tool call"))
        })
    }
}

impl SseDecoder for AnthropicStreamDecoder {
    fn on_event(&mut self, event: &Event) -> Result<Decoded> {
        let wire: WireEvent = serde_json::from_str(&event.data)
            .map_err(|e| malformed(&self.service, format!("stream event: {e}")))?;
        if !self.started
            && !matches!(wire, WireEvent::MessageStart { .. } | WireEvent::Error { .. } | WireEvent::Ignored)
        {
            return Err(malformed(&self.service, "the stream did not begin with message_start"));
        }
        let events = match wire {
            WireEvent::MessageStart { message } => {
                self.started = true;
                self.prompt_tokens = message.usage.and_then(|u| u.prompt_tokens());
                vec![StreamEvent::Start {
                    id: message.id,
                    model: message
                        .model
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| self.fallback_model.clone()),
                }]
            }
            WireEvent::ContentBlockStart { index, content_block } => match content_block {
                StartBlock::Text { text } if !text.is_empty() => vec![StreamEvent::TextDelta { text }],
                StartBlock::ToolUse { id, name } => {
                    let call = u32::try_from(self.tool_calls.len()).unwrap_or(u32::MAX);
                    self.tool_calls.insert(index, call);
                    vec![StreamEvent::ToolCallDelta {
                        index: call,
                        id: Some(id),
                        name: Some(name),
                        arguments: String::new(),
                    }]
                }
                _ => Vec::new(),
            },
            WireEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } if !text.is_empty() => vec![StreamEvent::TextDelta { text }],
                BlockDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                    vec![StreamEvent::ToolCallDelta {
                        index: self.tool_index(index)?,
                        id: None,
                        name: None,
                        arguments: partial_json,
                    }]
                }
                _ => Vec::new(),
            },
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.finish = Some(finish_reason(&reason));
                }
                if let Some(usage) = usage {
                    self.prompt_tokens = usage.prompt_tokens().or(self.prompt_tokens);
                    self.completion_tokens = usage.output_tokens.or(self.completion_tokens);
                }
                Vec::new()
            }
            WireEvent::MessageStop {} => {
                let mut events = Vec::with_capacity(2);
                if self.prompt_tokens.is_some() || self.completion_tokens.is_some() {
                    events.push(StreamEvent::Usage(Usage {
                        prompt_tokens: self.prompt_tokens.unwrap_or(0),
                        completion_tokens: self.completion_tokens.unwrap_or(0),
                    }));
                }
                events.push(StreamEvent::Finish { reason: self.finish.unwrap_or(FinishReason::Stop) });
                return Ok(Decoded { events, complete: true });
            }
            WireEvent::Error { error } => return Err(stream_error(&self.service, &error, &self.scrubber)),
            WireEvent::Ignored => Vec::new(),
        };
        Ok(Decoded::events(events))
    }

    fn on_end(&mut self) -> Result<Vec<StreamEvent>> {
        let what = if self.started { "before message_stop" } else { "before message_start" };
        Err(Error::Upstream {
            service: self.service.to_string(),
            status: None,
            retryable: true,
            message: format!("the answer stream ended {what}"),
            retry_after: None,
            source: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut AnthropicStreamDecoder, data: &str) -> Result<Decoded> {
        d.on_event(&Event { data: data.to_owned(), ..Event::default() })
    }

    #[test]
    fn tool_calls_are_numbered_among_themselves() {
        let mut d = AnthropicStreamDecoder::new("s".into(), "m".into(), KeyScrubber::default());
        feed(&mut d, r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}"#).unwrap();
        feed(&mut d, r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
            .unwrap();
        let out = feed(&mut d, r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#).unwrap();
        assert_eq!(
            out.events,
            vec![StreamEvent::ToolCallDelta {
                index: 0,
                id: Some("toolu_1".into()),
                name: Some("f".into()),
                arguments: String::new()
            }]
        );
        let out = feed(&mut d, r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#).unwrap();
        assert_eq!(
            out.events,
            vec![StreamEvent::ToolCallDelta { index: 0, id: None, name: None, arguments: "{\"a\"".into() }]
        );
    }

    #[test]
    fn content_before_message_start_is_malformed() {
        let mut d = AnthropicStreamDecoder::new("s".into(), "m".into(), KeyScrubber::default());
        let err = feed(
            &mut d,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("message_start"), "{err}");
    }
}

//! Chat Completions Server-Sent Events → [`StreamEvent`]s.
//!
//! The wire: `data: {chunk}` events, the first usually carrying only `delta.role`, then
//! content or tool-call pieces, a chunk with `finish_reason`, a usage-only chunk with empty
//! `choices` (because we send `stream_options.include_usage`), and `data: [DONE]`. Azure
//! may open with a `prompt_filter_results` chunk that has no choices and no id.

use std::sync::Arc;

use amp_core::{Error, FinishReason, Result, StreamEvent, Usage};
use eventsource_stream::Event;
use serde::Deserialize;
use serde_json::Value;

use super::error::stream_error;
use super::response::{WireUsage, finish_reason, malformed};
use crate::http::{Decoded, KeyScrubber, SseDecoder};

#[derive(Debug, Deserialize)]
struct Chunk {
    id: Option<String>,
    model: Option<String>,
    choices: Option<Vec<ChunkChoice>>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<ToolCallChunk>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallChunk {
    #[serde(default)]
    index: u32,
    id: Option<String>,
    function: Option<FunctionChunk>,
}

#[derive(Debug, Deserialize)]
struct FunctionChunk {
    name: Option<String>,
    arguments: Option<String>,
}

/// Decodes one streamed answer.
pub(crate) struct OpenAiStreamDecoder {
    service: Arc<str>,
    fallback_model: String,
    scrubber: KeyScrubber,
    started: bool,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl OpenAiStreamDecoder {
    pub(crate) fn new(service: Arc<str>, fallback_model: String, scrubber: KeyScrubber) -> Self {
        OpenAiStreamDecoder { service, fallback_model, scrubber, started: false, finish: None, usage: None }
    }

    /// Usage and finish, once the answer is over; an error if it never finished.
    fn close(&mut self) -> Result<Vec<StreamEvent>> {
        let Some(reason) = self.finish.take() else {
            let what = if self.started { "before the answer finished" } else { "before the answer started" };
            return Err(Error::Upstream {
                service: self.service.to_string(),
                status: None,
                retryable: true,
                message: format!("the answer stream ended {what}"),
                retry_after: None,
                source: None,
            });
        };
        let mut events = Vec::with_capacity(2);
        events.extend(self.usage.take().map(StreamEvent::Usage));
        events.push(StreamEvent::Finish { reason });
        Ok(events)
    }
}

impl SseDecoder for OpenAiStreamDecoder {
    fn on_event(&mut self, event: &Event) -> Result<Decoded> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Decoded { events: self.close()?, complete: true });
        }
        let chunk: Chunk =
            serde_json::from_str(data).map_err(|e| malformed(&self.service, format!("stream chunk: {e}")))?;
        if let Some(error) = &chunk.error {
            return Err(stream_error(&self.service, error, &self.scrubber));
        }
        let choices = chunk.choices.unwrap_or_default();
        let mut events = Vec::new();
        if !self.started {
            if choices.is_empty() && chunk.usage.is_none() {
                return Ok(Decoded::nothing());
            }
            self.started = true;
            events.push(StreamEvent::Start {
                id: chunk.id.unwrap_or_default(),
                model: chunk.model.filter(|m| !m.is_empty()).unwrap_or_else(|| self.fallback_model.clone()),
            });
        }
        for choice in choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                for text in [delta.content, delta.refusal].into_iter().flatten().filter(|t| !t.is_empty()) {
                    events.push(StreamEvent::TextDelta { text });
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    let (name, arguments) = call.function.map_or((None, None), |f| (f.name, f.arguments));
                    events.push(StreamEvent::ToolCallDelta {
                        index: call.index,
                        id: call.id,
                        name,
                        arguments: arguments.unwrap_or_default(),
                    });
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(&reason));
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        Ok(Decoded::events(events))
    }

    /// Some servers close the body after the finish chunk without `[DONE]`; the answer is
    /// whole then, and only an answer without a finish reason was cut short.
    fn on_end(&mut self) -> Result<Vec<StreamEvent>> {
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(decoder: &mut OpenAiStreamDecoder, data: &str) -> Result<Decoded> {
        decoder.on_event(&Event { data: data.to_owned(), ..Event::default() })
    }

    fn decoder() -> OpenAiStreamDecoder {
        OpenAiStreamDecoder::new("s".into(), "fallback".into(), KeyScrubber::default())
    }

    #[test]
    fn azure_prompt_filter_chunk_is_skipped() {
        let mut d = decoder();
        let out = feed(&mut d, r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#).unwrap();
        assert!(out.events.is_empty());
        let out = feed(&mut d, r#"{"id":"c1","model":"","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#).unwrap();
        assert_eq!(out.events, vec![StreamEvent::Start { id: "c1".into(), model: "fallback".into() }]);
    }

    #[test]
    fn end_of_body_after_a_finish_reason_completes_the_answer() {
        let mut d = decoder();
        feed(&mut d, r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"length"}]}"#).unwrap();
        assert_eq!(d.on_end().unwrap(), vec![StreamEvent::Finish { reason: FinishReason::Length }]);
    }

    #[test]
    fn done_without_a_finish_reason_is_an_error() {
        let mut d = decoder();
        feed(
            &mut d,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#,
        )
        .unwrap();
        let err = feed(&mut d, "[DONE]").unwrap_err();
        assert!(err.to_string().contains("before the answer finished"), "{err}");
    }
}

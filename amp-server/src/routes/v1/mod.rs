//! The OpenAI-compatible surface: `/v1/chat/completions` and `/v1/models`, so OpenAI's
//! client libraries work unchanged against AMP. Requests go through the Gateway (models,
//! tiers, agents) and the Router; errors come in OpenAI's shape.

mod wire;

use std::collections::VecDeque;
use std::convert::Infallible;

use amp_core::{ChatStream, ModelId};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Body, Caller};
use crate::state::AppState;
use wire::{ChunkWriter, Completion, CompletionRequest, error_body};

/// An error in OpenAI's shape, with the status and headers AMP's own shape would have.
pub(crate) struct OpenAiError(ApiError);

impl<E: Into<ApiError>> From<E> for OpenAiError {
    fn from(err: E) -> Self {
        OpenAiError(err.into())
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = error_body(status.as_u16(), self.0.message(), self.0.code());
        // AMP's response carries the headers (WWW-Authenticate, Retry-After) and the logging
        // of internal errors; only the body changes shape.
        let mut response = self.0.into_response();
        *response.body_mut() = axum::body::Body::from(body);
        response
    }
}

const MODEL_HEADER: HeaderName = HeaderName::from_static("x-amp-model");
const DEPLOYMENT_HEADER: HeaderName = HeaderName::from_static("x-amp-deployment");

fn routed_headers(model: &ModelId, deployment: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [(MODEL_HEADER, model.as_str()), (DEPLOYMENT_HEADER, deployment)] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    headers
}

/// `POST /v1/chat/completions`, streamed (SSE, ending with `data: [DONE]`) or not. The
/// headers `x-amp-model` and `x-amp-deployment` tell which option answered.
pub(crate) async fn chat_completions(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    body: Result<Body<CompletionRequest>, ApiError>,
) -> Result<Response, OpenAiError> {
    let Caller(caller) = caller?;
    let Body(wire) = body?;
    let include_usage = wire.include_usage();
    let streamed = wire.stream;
    let request = wire.into_chat_request()?;
    let created = chrono::Utc::now().timestamp();
    if !streamed {
        let routed = state.gateway().complete(&caller, request).await?;
        let body = Completion::new(&routed.value, routed.model.as_str(), created);
        return Ok((routed_headers(&routed.model, &routed.deployment), Json(body)).into_response());
    }
    let routed = state.gateway().stream(&caller, request).await?;
    let headers = routed_headers(&routed.model, &routed.deployment);
    let writer = ChunkWriter::new(routed.model.to_string(), created, include_usage);
    let events = sse_events(routed.value, writer);
    Ok((headers, Sse::new(events).keep_alive(KeepAlive::default())).into_response())
}

/// The answer's events as SSE `data:` lines: chunks, then `[DONE]` after a normal end, or
/// an error object (and nothing after it) when the answer broke off.
fn sse_events(stream: ChatStream, writer: ChunkWriter) -> impl Stream<Item = Result<Event, Infallible>> {
    struct State {
        stream: ChatStream,
        writer: ChunkWriter,
        pending: VecDeque<String>,
        done: bool,
    }
    let state = State { stream, writer, pending: VecDeque::new(), done: false };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(payload) = st.pending.pop_front() {
                return Some((Ok(Event::default().data(payload)), st));
            }
            if st.done {
                return None;
            }
            match st.stream.next().await {
                Some(Ok(event)) => {
                    let finished = matches!(event, amp_core::StreamEvent::Finish { .. });
                    st.pending.extend(st.writer.write(event));
                    if finished {
                        st.pending.push_back("[DONE]".to_owned());
                        st.done = true;
                    }
                }
                Some(Err(err)) => {
                    let api = ApiError::from(err);
                    st.pending.push_back(error_body(api.status().as_u16(), api.message(), api.code()));
                    st.done = true;
                }
                None => st.done = true,
            }
        }
    })
}

fn model_object(id: &str, owned_by: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": owned_by})
}

/// `GET /v1/models`: registry models (owned by their provider) and the caller's agents
/// (by id, owned by `agent`).
pub(crate) async fn models(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<Value>, OpenAiError> {
    let Caller(caller) = caller?;
    let choices = state.gateway().choices(&caller).await?;
    let models = choices.models.iter().map(|m| model_object(m.id.as_str(), &provider_name(m.provider)));
    let agents = choices.agents.iter().map(|a| model_object(&a.id.to_string(), "agent"));
    Ok(Json(json!({"object": "list", "data": models.chain(agents).collect::<Vec<_>>()})))
}

/// `GET /v1/models/{id}`.
pub(crate) async fn model(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenAiError> {
    let _ = caller?;
    let status = state.router().model_status(&ModelId::new(id))?;
    Ok(Json(model_object(status.model.id.as_str(), &provider_name(status.model.provider))))
}

fn provider_name(provider: amp_core::Provider) -> String {
    serde_json::to_value(provider).ok().and_then(|v| v.as_str().map(str::to_lowercase)).unwrap_or_default()
}

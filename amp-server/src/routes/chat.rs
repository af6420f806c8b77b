//! `/chat/*`: one chat turn through the orchestrator, answered whole or as Server-Sent
//! Events.

use std::convert::Infallible;

use amp_agents::{ChatAnswer, ChatTurn, TurnEvent};
use amp_core::ErrorBody;
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use futures::stream::{self, StreamExt};

use crate::error::ApiError;
use crate::extract::{Body, Caller};
use crate::state::AppState;

/// `POST /chat/send`: the answer in one piece, with its sources and citations.
pub(crate) async fn send(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(turn): Body<ChatTurn>,
) -> Result<Json<ChatAnswer>, ApiError> {
    Ok(Json(state.amp().send(&caller, turn).await?))
}

/// `POST /chat/stream`: `start` (conversation, stored question, sources, model), then
/// `delta` events, then `done` (the stored answer with citations) or `error`. Failures
/// before the first token are plain JSON errors with their status; closing the connection
/// stops the model.
pub(crate) async fn stream(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(turn): Body<ChatTurn>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let turn = state.amp().stream(&caller, turn).await?;
    let start = stream::once(async move { json_event("start", &turn.start) });
    let events = turn.events.map(|event| match &event {
        TurnEvent::Delta { text } => json_event("delta", &serde_json::json!({ "text": text })),
        TurnEvent::Done { answer } => json_event("done", answer),
        TurnEvent::Error { kind, message } => json_event(
            "error",
            &ErrorBody {
                error: amp_core::error::ErrorDetail {
                    code: kind.code().to_owned(),
                    message: message.clone(),
                },
            },
        ),
    });
    Ok(Sse::new(start.chain(events).map(Ok)).keep_alive(KeepAlive::default()))
}

/// A named event carrying `data` as JSON.
fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    match serde_json::to_string(data) {
        Ok(json) => Event::default().event(name).data(json),
        // Our own types always serialize; say so on the wire rather than panic if not.
        Err(_) => Event::default()
            .event("error")
            .data(r#"{"error":{"code":"internal","message":"internal error"}}"#),
    }
}

//! `/session/*` and `/agents/session/*`: the caller's device sessions and preferences.

use std::convert::Infallible;

use amp_agents::session::{DeviceLogin, TokenPair};
use amp_core::{DeviceId, DeviceSession, ErrorBody, Preferences, SessionId, User};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Body, Caller, ClientAddr};
use crate::state::AppState;

/// `GET /session/current`: the caller's account and device session.
pub(crate) async fn current(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    let user = state.session().me(&caller).await?;
    let session = state.session().current_session(&caller).await?;
    Ok(Json(json!({ "user": user, "session": session })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSession {
    #[serde(default)]
    device_name: Option<String>,
    #[serde(default)]
    device_id: Option<DeviceId>,
}

/// `POST /session/create`: another device session for the authenticated caller, with its
/// own token pair (`201`).
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ClientAddr(client_addr): ClientAddr,
    Body(n): Body<NewSession>,
) -> Result<(StatusCode, Json<TokenPair>), ApiError> {
    let device = DeviceLogin { device: n.device_id, device_name: n.device_name, client_addr };
    Ok((StatusCode::CREATED, Json(state.session().create_session(&caller, device).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Update {
    preferences: Preferences,
}

/// `PUT /session/update`: replaces the caller's preferences.
pub(crate) async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(u): Body<Update>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(state.session().update_preferences(&caller, u.preferences).await?))
}

/// `GET /agents/session/status`: the caller's account and how many devices are signed in.
pub(crate) async fn status(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    let user = state.session().me(&caller).await?;
    let devices = state.session().devices(&caller).await?;
    Ok(Json(json!({ "user_id": user.id, "auth": caller.method, "active_devices": devices.len() })))
}

/// `GET /agents/session/devices`: the caller's signed-in devices.
pub(crate) async fn devices(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<DeviceSession>>, ApiError> {
    Ok(Json(state.session().devices(&caller).await?))
}

/// `DELETE /agents/session/devices/{id}`: signs one of the caller's devices out.
pub(crate) async fn revoke_device(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: SessionId = id.parse()?;
    state.session().revoke_device(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /session/sync`: the caller's changes as Server-Sent Events, one stream per device.
///
/// Each event carries its id; a reconnecting client sends `Last-Event-ID` and gets what it
/// missed (within the replay window) before live events. Too old an id is `409`: reload in
/// full. The stream ends when this device is signed out.
pub(crate) async fn follow(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| amp_core::Error::invalid_input("Last-Event-ID must be an event id"))?,
        ),
    };
    let me = caller.session().map(|s| s.to_string());
    let events = state.session().follow(&caller, last_event_id).await?;
    let frames = events.map(move |item| match item {
        Ok(event) => {
            // This device was signed out: deliver the news, then close the stream.
            let signed_out = event.payload["type"] == "device_signed_out"
                && me.is_some()
                && event.payload["data"]["session"].as_str() == me.as_deref();
            let frame =
                SseEvent::default().id(event.id.to_string()).event("change").data(event.payload.to_string());
            (frame, signed_out)
        }
        Err(err) => {
            let body = serde_json::to_string(&ErrorBody::from(&err)).unwrap_or_default();
            (SseEvent::default().event("error").data(body), true)
        }
    });
    // Yields each frame and ends right after the one that closes the stream, without
    // waiting for another event to arrive.
    let stream = futures::stream::unfold((frames, false), |(mut frames, done)| async move {
        if done {
            return None;
        }
        let (frame, last) = frames.next().await?;
        Some((frame, (frames, last)))
    });
    Ok(Sse::new(stream.map(Ok)).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Push {
    state: Value,
}

/// `POST /session/sync` and `POST /agents/session/sync`: a device pushes state to the
/// caller's other devices.
pub(crate) async fn push(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(p): Body<Push>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = state.session().push(&caller, p.state).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
}

/// `GET /session/quotas`: every quota with what the caller (the person, or the key they
/// call with) used of it in its current window.
pub(crate) async fn quotas(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<amp_agents::quotas::QuotaUse>>, ApiError> {
    Ok(Json(state.quotas().report(&caller).await?))
}

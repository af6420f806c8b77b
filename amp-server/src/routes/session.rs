//! `/session/*` and `/agents/session/*`: the caller's device sessions and preferences.

use amp_core::{DeviceSession, Preferences, SessionId, User};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Body, Caller};
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

//! `/conversations/*`: personal and workspace conversations with their messages. Who may
//! see what is decided by the conversations agent; handlers only parse and map.

use std::str::FromStr;

use amp_agents::conversations::{ConversationList, ConversationPage};
use amp_core::conversation::Conversation;
use amp_core::{AgentId, ConversationId, Error, MessageId, WorkspaceId};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Body, Caller, Query};
use crate::state::AppState;

/// The page size when the query names none.
const DEFAULT_LIMIT: u32 = 50;

/// Parses an optional query parameter. Query values arrive as text and are parsed here,
/// not by serde, so a bad one is the API's own `400 invalid_input` rather than axum's
/// plain-text rejection.
fn optional<T: FromStr>(name: &str, raw: Option<&str>) -> amp_core::Result<Option<T>> {
    raw.map(|v| v.parse().map_err(|_| Error::invalid_input(format!("`{name}` is not valid: {v}"))))
        .transpose()
}

fn limit(raw: Option<&str>) -> amp_core::Result<u32> {
    Ok(optional("limit", raw)?.unwrap_or(DEFAULT_LIMIT))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewConversation {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

/// `POST /conversations`: personal, or in a workspace (editors and owners).
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(c): Body<NewConversation>,
) -> Result<(StatusCode, Json<Conversation>), ApiError> {
    let workspace: Option<WorkspaceId> = optional("workspace", c.workspace.as_deref())?;
    let agent: Option<AgentId> = optional("agent", c.agent.as_deref())?;
    let created = state.conversations().create(&caller, c.title.as_deref(), workspace, agent).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    workspace: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// `GET /conversations?workspace=&before=&limit=`: newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<ConversationList>, ApiError> {
    let workspace: Option<WorkspaceId> = optional("workspace", q.workspace.as_deref())?;
    let before: Option<ConversationId> = optional("before", q.before.as_deref())?;
    let limit = limit(q.limit.as_deref())?;
    Ok(Json(state.conversations().list(&caller, workspace, before, limit).await?))
}

#[derive(Deserialize)]
pub(crate) struct MessagesQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /conversations/{id}?after=&limit=`: the conversation and its messages, oldest first.
pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<ConversationPage>, ApiError> {
    let id: ConversationId = id.parse()?;
    let after: Option<MessageId> = optional("after", q.after.as_deref())?;
    let limit = limit(q.limit.as_deref())?;
    Ok(Json(state.conversations().get(&caller, id, after, limit).await?))
}

/// `DELETE /conversations/{id}`: with its messages and cached responses.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.conversations().delete(&caller, id.parse()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Share {
    workspace: String,
}

/// `POST /conversations/{id}/share`: moves the caller's personal conversation into a
/// workspace where they are an editor or owner.
pub(crate) async fn share(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(s): Body<Share>,
) -> Result<Json<Conversation>, ApiError> {
    let id: ConversationId = id.parse()?;
    let workspace: WorkspaceId = s.workspace.parse()?;
    Ok(Json(state.conversations().share(&caller, id, workspace).await?))
}

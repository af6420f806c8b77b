//! `/agents/registry/*`: user-defined agents. Who may see or change which agent is decided
//! by the agent registry; handlers only parse and map.

use amp_agents::AgentSpec;
use amp_core::{AgentConfig, AgentId};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::error::ApiError;
use crate::extract::{Body, Caller};
use crate::state::AppState;

/// A malformed id is the caller's mistake (400), not a missing agent.
fn agent_id(raw: &str) -> amp_core::Result<AgentId> {
    raw.parse()
}

/// `POST /agents/registry`: the caller becomes its owner.
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(spec): Body<AgentSpec>,
) -> Result<(StatusCode, Json<AgentConfig>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.agents().create(&caller, spec).await?)))
}

/// `GET /agents/registry`: the caller's agents and those shared into their workspaces.
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<AgentConfig>>, ApiError> {
    Ok(Json(state.agents().list(&caller).await?))
}

/// `GET /agents/registry/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentConfig>, ApiError> {
    Ok(Json(state.agents().get(&caller, agent_id(&id)?).await?))
}

/// `PUT /agents/registry/{id}`: replace the editable fields.
pub(crate) async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(spec): Body<AgentSpec>,
) -> Result<Json<AgentConfig>, ApiError> {
    Ok(Json(state.agents().update(&caller, agent_id(&id)?, spec).await?))
}

/// `DELETE /agents/registry/{id}`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.agents().delete(&caller, agent_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

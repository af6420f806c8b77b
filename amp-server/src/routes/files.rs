//! `/files/*`: reading file records and sharing files into workspaces. Who may do what is
//! decided by the files agent; uploads arrive with the Storage agent.

use amp_core::{FileId, FileMeta, WorkspaceId};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Body, Caller};
use crate::state::AppState;

/// A malformed id is the caller's mistake (400), not a missing file.
fn file_id(raw: &str) -> amp_core::Result<FileId> {
    raw.parse()
}

/// `GET /files` query, parsed by hand so a bad id is AMP's own `400`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    workspace: Option<String>,
}

/// `GET /files?workspace=`: the caller's files, or a workspace's (members).
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<FileMeta>>, ApiError> {
    let workspace = query.workspace.map(|w| w.parse::<WorkspaceId>()).transpose()?;
    Ok(Json(state.files().list(&caller, workspace).await?))
}

/// `GET /files/{id}/status`: the file's record, with where it is in processing.
pub(crate) async fn status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<FileMeta>, ApiError> {
    Ok(Json(state.files().get(&caller, file_id(&id)?).await?))
}

/// The body of `POST /files/{id}/share`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Share {
    workspace: WorkspaceId,
}

/// `POST /files/{id}/share`: into a workspace where the caller is an editor.
pub(crate) async fn share(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(share): Body<Share>,
) -> Result<Json<FileMeta>, ApiError> {
    Ok(Json(state.files().share(&caller, file_id(&id)?, share.workspace).await?))
}

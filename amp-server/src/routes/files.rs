//! `/files/*`: uploading and deleting files (the Storage agent), reading their records and
//! sharing them into workspaces (the files agent).

use amp_agents::storage::Upload;
use amp_core::{FileId, FileMeta, WorkspaceId};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
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

/// `POST /files` query, parsed by hand so a bad id is AMP's own `400`.
#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    name: Option<String>,
    workspace: Option<String>,
}

/// `POST /files?name=&workspace=`: the body is the file, `Content-Type` its media type.
/// Answers `201` with the file's record once it is searchable.
pub(crate) async fn upload(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<FileMeta>), ApiError> {
    let limit = state.storage().max_file_bytes();
    let bytes = bytes.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
            amp_core::Error::PayloadTooLarge { limit, actual: declared.unwrap_or(limit + 1) }
        }
        _ => {
            amp_core::Error::invalid_input(format!("the upload could not be read: {}", rejection.body_text()))
        }
    })?;
    let workspace = query.workspace.map(|w| w.parse::<WorkspaceId>()).transpose()?;
    let name = query.name.ok_or_else(|| amp_core::Error::invalid_input("name: the file name is required"))?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let file = state.storage().upload(&caller, workspace, Upload { name, media_type, bytes }).await?;
    Ok((StatusCode::CREATED, Json(file)))
}

/// `DELETE /files/{id}`: the file, its passages and its vectors.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.storage().delete(&caller, file_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/files/*`: uploading (streamed or presigned), validating, downloading and deleting files
//! (the Storage agent), reading their records and sharing them into workspaces (the files
//! agent).

use std::time::Duration;

use amp_agents::storage::{Announced, UploadUrl, Validated};
use amp_core::{ByteStream, FileId, FileMeta, WorkspaceId};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{Caller, Query};
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
    crate::extract::Body(share): crate::extract::Body<Share>,
) -> Result<Json<FileMeta>, ApiError> {
    Ok(Json(state.files().share(&caller, file_id(&id)?, share.workspace).await?))
}

/// `POST /files` and `POST /files/validate` query, parsed by hand so a bad id is AMP's own
/// `400`.
#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    name: Option<String>,
    workspace: Option<String>,
    /// Answer once the file is ready or failed, instead of once it is queued.
    wait: Option<bool>,
}

impl UploadQuery {
    fn announced(&self, headers: &HeaderMap) -> amp_core::Result<(Option<WorkspaceId>, Announced)> {
        let workspace = self.workspace.as_deref().map(str::parse::<WorkspaceId>).transpose()?;
        let name = self
            .name
            .clone()
            .ok_or_else(|| amp_core::Error::invalid_input("name: the file name is required"))?;
        let media_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let size_bytes = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        Ok((workspace, Announced { name, media_type, size_bytes }))
    }
}

/// The request body as the agent reads it: pieces as they arrive, never the whole.
fn byte_stream(body: Body) -> ByteStream {
    body.into_data_stream()
        .map(|piece| {
            piece.map_err(|e| amp_core::Error::invalid_input(format!("the upload could not be read: {e}")))
        })
        .boxed()
}

/// How long `wait=true` waits for processing.
const WAIT_LIMIT: Duration = Duration::from_secs(300);

/// `POST /files?name=&workspace=&wait=`: the body is the file, `Content-Type` its media
/// type. Answers `202` with the record once the bytes are stored and the file is queued
/// (`201` with `wait=true`, once it is ready or failed), or `200` with the caller's existing
/// file when the same bytes were uploaded into the same place before.
pub(crate) async fn upload(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileMeta>), ApiError> {
    let (workspace, announced) = query.announced(&headers)?;
    let uploaded = state.storage().upload(&caller, workspace, announced, byte_stream(body)).await?;
    if !uploaded.created {
        return Ok((StatusCode::OK, Json(uploaded.file)));
    }
    if query.wait == Some(true) {
        let file = state.storage().wait(&caller, uploaded.file.id, WAIT_LIMIT).await?;
        return Ok((StatusCode::CREATED, Json(file)));
    }
    Ok((StatusCode::ACCEPTED, Json(uploaded.file)))
}

/// `POST /files/validate?name=&workspace=`: every check of an upload, nothing stored.
pub(crate) async fn validate(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Validated>, ApiError> {
    let (workspace, announced) = query.announced(&headers)?;
    Ok(Json(state.storage().validate(&caller, workspace, announced, byte_stream(body)).await?))
}

/// One file of `POST /files/upload-urls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnnouncedFile {
    name: String,
    media_type: String,
    size_bytes: u64,
}

/// The body of `POST /files/upload-urls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadUrlsRequest {
    files: Vec<AnnouncedFile>,
    #[serde(default)]
    workspace: Option<WorkspaceId>,
}

/// The answer of `POST /files/upload-urls`.
#[derive(Debug, Serialize)]
pub(crate) struct UploadUrls {
    files: Vec<UploadUrl>,
}

/// `POST /files/upload-urls`: per file a record (`pending`) and a presigned upload.
pub(crate) async fn upload_urls(
    State(state): State<AppState>,
    Caller(caller): Caller,
    crate::extract::Body(request): crate::extract::Body<UploadUrlsRequest>,
) -> Result<(StatusCode, Json<UploadUrls>), ApiError> {
    let announced = request
        .files
        .into_iter()
        .map(|f| Announced { name: f.name, media_type: f.media_type, size_bytes: Some(f.size_bytes) })
        .collect();
    let files = state.storage().upload_urls(&caller, request.workspace, announced).await?;
    Ok((StatusCode::CREATED, Json(UploadUrls { files })))
}

/// `POST /files/{id}/complete`: the presigned upload's bytes are in; process them.
pub(crate) async fn complete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<FileMeta>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(state.storage().complete(&caller, file_id(&id)?).await?)))
}

/// `GET /files/{id}/content`: the original bytes, streamed, as an attachment.
pub(crate) async fn content(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (file, stream) = state.storage().content(&caller, file_id(&id)?).await?;
    let name = amp_agents::Storage::download_name(&file);
    Ok(attachment(&name, &file.media_type, Some(file.size_bytes), stream))
}

/// A download response that a browser saves rather than renders (uploaded HTML must never
/// run on our origin).
pub(crate) fn attachment(name: &str, media_type: &str, size: Option<u64>, stream: ByteStream) -> Response {
    // Quotes, backslashes and non-ASCII go in the RFC 5987 form only.
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    let typed =
        HeaderValue::from_str(media_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, typed);
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    if let Some(size) = size {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    response
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

//! `/agents/storage/*` (the Storage agent's own API) and `/blobs/*` (the local blob store's
//! signed upload and download URLs).

use amp_agents::storage::{SearchRequest, SearchResult, StorageStatus};
use amp_core::{FileId, FileMeta, Job};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{Caller, Query};
use crate::routes::files::attachment;
use crate::state::AppState;

/// `GET /agents/storage/status`: accepted types, the size limit, whether uploads are scanned.
pub(crate) async fn status(State(state): State<AppState>, Caller(_): Caller) -> Json<StorageStatus> {
    Json(state.storage().status())
}

/// `GET /agents/storage/jobs` query.
#[derive(Debug, Deserialize)]
pub(crate) struct JobsQuery {
    limit: Option<usize>,
}

/// `GET /agents/storage/jobs`.
#[derive(Debug, Serialize)]
pub(crate) struct Jobs {
    jobs: Vec<Job>,
}

/// `GET /agents/storage/jobs?limit=`: the caller's ingestion jobs, newest first
/// (administrators: everyone's).
pub(crate) async fn jobs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<JobsQuery>,
) -> Result<Json<Jobs>, ApiError> {
    let jobs = state.storage().jobs(&caller, query.limit.unwrap_or(50)).await?;
    Ok(Json(Jobs { jobs }))
}

/// The body of `POST /agents/storage/process`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Process {
    file: FileId,
}

/// `POST /agents/storage/process` `{file}`: processes a file again from its kept bytes.
pub(crate) async fn process(
    State(state): State<AppState>,
    Caller(caller): Caller,
    crate::extract::Body(request): crate::extract::Body<Process>,
) -> Result<(StatusCode, Json<FileMeta>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(state.storage().process(&caller, request.file).await?)))
}

/// The answer of `POST /agents/storage/search`.
#[derive(Debug, Serialize)]
pub(crate) struct Results {
    results: Vec<SearchResult>,
}

/// `POST /agents/storage/search` `{query, limit?, files?, workspace?}`.
pub(crate) async fn search(
    State(state): State<AppState>,
    Caller(caller): Caller,
    crate::extract::Body(request): crate::extract::Body<SearchRequest>,
) -> Result<Json<Results>, ApiError> {
    Ok(Json(Results { results: state.storage().search(&caller, request).await? }))
}

/// `PUT /blobs/{*key}?expires=&max=&type=&sig=`: an upload to a URL the local blob store
/// signed. The signature is the authority (no bearer token); the store refuses an expired
/// URL (403), another media type (415) and a body over the signed size (413), and the
/// file's processing starts once the bytes are in.
pub(crate) async fn put_blob(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileMeta>), ApiError> {
    let local = state.local_blobs().ok_or_else(|| amp_core::Error::not_found(format!("/blobs/{key}")))?;
    let (key, constraints) = local.verify_upload(&key, query.as_deref().unwrap_or_default())?;
    // Nothing is written for a file that is complete (or gone): a URL delivers once.
    state.storage().accepts_signed_upload(&key).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    local.receive(&key, &constraints, content_type, body.into_data_stream()).await?;
    Ok((StatusCode::OK, Json(state.storage().complete_signed(&key).await?)))
}

/// `GET /blobs/{*key}?expires=&sig=`: a download from a URL the local blob store signed.
pub(crate) async fn get_blob(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let local = state.local_blobs().ok_or_else(|| amp_core::Error::not_found(format!("/blobs/{key}")))?;
    let key = local.verify_download(&key, query.as_deref().unwrap_or_default())?;
    let blobs = state.blob_store();
    let meta = blobs.head(&key).await?.ok_or_else(|| amp_core::Error::not_found(format!("/blobs/{key}")))?;
    let stream = blobs.get_stream(&key).await?.boxed();
    let name = key.as_str().rsplit('/').next().unwrap_or("download").to_owned();
    let media_type = meta.media_type.unwrap_or_else(|| "application/octet-stream".to_owned());
    Ok(attachment(&name, &media_type, Some(meta.size_bytes), stream))
}

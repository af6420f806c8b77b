//! `/agents/context/*`: the Context agent's own API.

use amp_agents::context::{ContextSearchRequest, Found};
use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

/// The answer of `POST /agents/context/search`.
#[derive(Debug, Serialize)]
pub(crate) struct Results {
    results: Vec<Found>,
}

/// `POST /agents/context/search` `{query, mode?, limit?, files?, workspace?, data_sources?}`:
/// the passages and records a chat turn would read, ranked, each with its rank in each
/// retriever. Authorized as a turn is.
pub(crate) async fn search(
    State(state): State<AppState>,
    Caller(caller): Caller,
    crate::extract::Body(request): crate::extract::Body<ContextSearchRequest>,
) -> Result<Json<Results>, ApiError> {
    Ok(Json(Results { results: state.amp().context().search(&caller, request).await? }))
}

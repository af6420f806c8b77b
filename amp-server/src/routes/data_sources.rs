//! `/datasources`: the configured enterprise data sources a person may name.

use amp_core::data_source::DataSourceSummary;
use axum::Json;
use axum::extract::State;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

/// `GET /datasources`: id, name, kind and description of every configured source (no
/// connection details).
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<DataSourceSummary>>, ApiError> {
    Ok(Json(state.data_sources().list(&caller)))
}

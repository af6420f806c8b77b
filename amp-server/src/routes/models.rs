//! `/models/*` and `/agents/router/*`: the model registry and the Router's state. Reading
//! needs any signed-in caller; changing needs an administrator (`auth.admins`), which the
//! Session agent proves and the Router demands.

use amp_agents::router::{Balance, ModelStatus, ModelSummary, RouterMetrics, RouterStatus};
use amp_core::{ModelId, ModelSpec, User};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Body, Caller};
use crate::state::AppState;

/// `GET /models/available`: every registry model and whether it can take a request now.
pub(crate) async fn available(State(state): State<AppState>, _: Caller) -> Json<Vec<ModelSummary>> {
    Json(state.router().models())
}

/// `GET /models/{id}/status`: one model with its deployments' breakers and counters.
pub(crate) async fn status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ModelStatus>, ApiError> {
    may_read_router(&state, &caller).await?;
    Ok(Json(state.router().model_status(&ModelId::new(id))?))
}

/// Deployment hosts and per-deployment figures are for administrators, unless
/// `server.public_router_status` opens them to every signed-in person.
async fn may_read_router(state: &AppState, caller: &amp_agents::Principal) -> Result<(), ApiError> {
    if !state.config().server.public_router_status {
        state.session().admin(caller).await?;
    }
    Ok(())
}

/// The body of `POST /models/select`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Select {
    model: ModelId,
}

/// `POST /models/select`: the caller's default model from now on.
pub(crate) async fn select(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(select): Body<Select>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(state.gateway().select_model(&caller, select.model).await?))
}

/// `PUT /models/{id}`: add or replace a model at runtime (administrators).
pub(crate) async fn upsert(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(spec): Body<ModelSpec>,
) -> Result<Json<ModelStatus>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    let id = ModelId::new(id);
    state.router().upsert_model(&admin, id.clone(), spec).await?;
    Ok(Json(state.router().model_status(&id)?))
}

/// `DELETE /models/{id}` (administrators).
pub(crate) async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let admin = state.session().admin(&caller).await?;
    state.router().remove_model(&admin, &ModelId::new(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /agents/router/status`: every model, deployment and breaker.
pub(crate) async fn router_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<RouterStatus>, ApiError> {
    may_read_router(&state, &caller).await?;
    Ok(Json(state.router().status()))
}

/// `GET /agents/router/metrics`: counters and latency histograms as JSON.
pub(crate) async fn router_metrics(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<RouterMetrics>, ApiError> {
    may_read_router(&state, &caller).await?;
    Ok(Json(state.router().metrics()))
}

/// The body of `POST /agents/router/balance`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BalanceChange {
    model: ModelId,
    #[serde(default)]
    strategy: Option<amp_core::LoadBalanceStrategy>,
    #[serde(default)]
    weights: std::collections::BTreeMap<String, u32>,
}

/// `POST /agents/router/balance`: a model's strategy or weights (administrators).
pub(crate) async fn balance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(change): Body<BalanceChange>,
) -> Result<Json<ModelStatus>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    let balance = Balance { strategy: change.strategy, weights: change.weights };
    Ok(Json(state.router().set_balance(&admin, &change.model, balance).await?))
}

/// `GET /metrics`: Prometheus exposition.
pub(crate) async fn prometheus(State(state): State<AppState>, parts: axum::http::request::Parts) -> Response {
    if let Err(err) = may_scrape(&state, parts).await {
        return err.into_response();
    }
    match state.render_metrics() {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        None => {
            ApiError::from(amp_core::Error::unavailable("metrics are exported by the embedding application"))
                .into_response()
        }
    }
}

/// `/metrics` is read by the scraper with `server.metrics_token`, or by an administrator.
async fn may_scrape(state: &AppState, mut parts: axum::http::request::Parts) -> Result<(), ApiError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let (Some(token), Some(bearer)) = (&state.config().server.metrics_token, &bearer) {
        // Every byte is compared, so the time taken does not tell how much of a guess was right.
        let (want, got) = (token.expose().as_bytes(), bearer.as_bytes());
        if want.len() == got.len() && want.iter().zip(got).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0 {
            return Ok(());
        }
    }
    use axum::extract::FromRequestParts;
    let Caller(caller) = Caller::from_request_parts(&mut parts, state).await?;
    state.session().admin(&caller).await?;
    Ok(())
}

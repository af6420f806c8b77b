//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// The body of a successful probe.
#[derive(Debug, Serialize)]
pub(super) struct ProbeStatus {
    status: &'static str,
}

/// `GET /healthz`: the process is up and serving. Stays OK while draining, so an
/// orchestrator does not kill a server that is finishing its in-flight requests.
pub(super) async fn healthz() -> Json<ProbeStatus> {
    Json(ProbeStatus { status: "ok" })
}

/// `GET /readyz`: the server wants new requests; 503 once shutdown has begun, so load
/// balancers route around it while it drains.
pub(super) async fn readyz(State(state): State<AppState>) -> Result<Json<ProbeStatus>, ApiError> {
    if state.is_ready() {
        Ok(Json(ProbeStatus { status: "ready" }))
    } else {
        Err(amp_core::Error::unavailable("shutting down").into())
    }
}

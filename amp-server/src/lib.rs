//! # amp-server
//!
//! AMP's HTTP API: a thin axum transport over the agents, and the `amp-server` binary.
//!
//! - [`AppState`]: what every handler shares (configuration, backends, readiness).
//! - [`router`]: the route table with its request-wide layers.
//! - [`serve`]: runs the router on a listener until a shutdown signal, then drains.
//! - [`ApiError`]: the one place where errors become HTTP responses.
//!
//! Embedding the API in another service:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = amp_core::AmpConfig::load(None)?;
//! let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
//! let state = amp_server::AppState::open(config).await?;
//! amp_server::serve(listener, state, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod backends;
pub mod error;
pub mod extract;
mod metrics;
pub mod routes;
pub mod serve;
pub mod state;

pub use error::ApiError;
pub use routes::router;
pub use serve::serve;
pub use state::AppState;

//! Running the API on a listener, and stopping it without cutting requests short.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::routes::router;
use crate::state::AppState;

/// Serves the API on `listener` until `shutdown` resolves, then drains.
///
/// Draining goes: `/readyz` turns 503 so load balancers stop sending work; the listener
/// stops accepting; in-flight requests get `server.shutdown_grace_secs` to finish. After
/// that this returns `Ok` even if some are still running: a stuck client must not hold
/// a deploy hostage. Their connections are closed when the runtime shuts down.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = Duration::from_secs(state.config().server.shutdown_grace_secs);
    let app = router(state.clone());
    let (drain_started, drain_started_rx) = oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        state.begin_draining();
        tracing::info!(grace_secs = grace.as_secs(), "shutting down: finishing in-flight requests");
        // A closed receiver means the server already stopped, so there is nothing to bound.
        let _ = drain_started.send(());
    };
    // Connection info gives handlers the client address (login throttling, audit).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(signal).into_future();
    let grace_over = async move {
        match drain_started_rx.await {
            Ok(()) => tokio::time::sleep(grace).await,
            // The server stopped on its own, without a shutdown; its result is what counts.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = server => result,
        () = grace_over => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; abandoning unfinished requests");
            Ok(())
        }
    }
}

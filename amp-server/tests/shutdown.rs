//! `serve` drains on shutdown: readiness flips, in-flight work finishes, it returns `Ok`.

mod support;

use std::time::{Duration, Instant};

use support::{raw_get, test_app};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Starts `serve` on a loopback port; sending on the returned channel begins shutdown.
async fn start(
    state: amp_server::AppState,
) -> (std::net::SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let addr = listener.local_addr().expect("a bound listener has an address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(amp_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test]
async fn serve_answers_until_shutdown_then_returns_ok_and_not_ready() {
    let app = test_app().await;
    let state = app.state.clone();
    let (addr, stop, server) = start(state.clone()).await;

    let (status, body) = raw_get(addr, "/healthz").await.expect("the server answers");
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"status":"ok"}"#);
    assert!(state.is_ready());

    stop.send(()).expect("the server is still waiting for shutdown");
    let result = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    assert!(!state.is_ready());
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed after shutdown");
}

#[tokio::test]
async fn serve_returns_once_the_grace_period_ends_even_with_a_request_unfinished() {
    let app = test_app().await;
    let state = app.state.clone();
    let grace = Duration::from_secs(state.config().server.shutdown_grace_secs);
    let (addr, stop, server) = start(state).await;

    // Half a request: the server must wait for the rest until the grace period runs out.
    let mut stuck = TcpStream::connect(addr).await.expect("the server accepts");
    stuck.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("the server reads");
    assert_eq!(raw_get(addr, "/healthz").await.expect("the server answers").0, 200);

    let began = Instant::now();
    stop.send(()).expect("the server is still waiting for shutdown");
    let result = tokio::time::timeout(grace + Duration::from_secs(5), server).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    assert!(began.elapsed() >= grace, "returned after {:?}, before the grace period", began.elapsed());
    drop(stuck);
}

//! The instant mock OpenAI upstream, on its own OS thread and single-threaded runtime so
//! the load generator's tasks cannot starve it (and it cannot starve them).

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use amp_providers::mock::{MockServer, openai};
use tokio::sync::oneshot;

/// A running mock upstream; dropping it stops the server and joins its thread.
pub struct Upstream {
    server: Arc<MockServer>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Starts the mock on `127.0.0.1` and a free port.
    pub fn start() -> Result<Upstream, String> {
        let (started_tx, started_rx) = mpsc::channel::<Result<Arc<MockServer>, String>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mock-upstream".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = started_tx.send(Err(format!("mock upstream runtime: {err}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match MockServer::start_unrecorded(openai::instant_upstream(8)).await {
                        Ok(server) => {
                            let server = Arc::new(server);
                            let _ = started_tx.send(Ok(server.clone()));
                            // Serves until told to stop or until the harness is gone.
                            let _ = stopped.await;
                        }
                        Err(err) => {
                            let _ = started_tx.send(Err(format!("mock upstream: {err}")));
                        }
                    }
                });
            })
            .map_err(|e| format!("mock upstream thread: {e}"))?;
        let server = started_rx.recv().map_err(|_| "the mock upstream thread died".to_owned())??;
        Ok(Upstream { server, stop: Some(stop), thread: Some(thread) })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.server.request_count()
    }

    /// Connections accepted so far; far fewer than requests means keep-alive held.
    pub fn connections(&self) -> usize {
        self.server.connection_count()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

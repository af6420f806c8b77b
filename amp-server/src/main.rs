//! The `amp-server` binary: loads `amp.toml`, serves the API, drains on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use amp_core::AmpConfig;
use amp_core::config::{LogConfig, LogFormat};
use amp_server::AppState;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A configuration error; scripts and supervisors tell it apart from a crash.
const EXIT_CONFIG: u8 = 2;
/// A failure after the configuration was accepted (binding, backends, serving).
const EXIT_RUNTIME: u8 = 1;

/// AMP's HTTP API server.
#[derive(Debug, Parser)]
#[command(name = "amp-server", version, about)]
struct Cli {
    /// The configuration file (TOML). Without one, the embedded defaults apply.
    #[arg(long, env = "AMP_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Listen on this address instead of `server.listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match AmpConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => return fail(EXIT_CONFIG, &format!("invalid configuration: {err}")),
    };
    if let Some(listen) = cli.listen {
        config.server.listen = listen;
    }
    if let Err(message) = init_tracing(&config.log) {
        return fail(EXIT_CONFIG, &format!("invalid configuration: {message}"));
    }
    // Installed before binding so a signal that arrives while starting up is not lost.
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(err) => return fail(EXIT_RUNTIME, &format!("cannot install signal handlers: {err}")),
    };

    let listen = config.server.listen;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(err) => return fail(EXIT_RUNTIME, &format!("cannot listen on {listen}: {err}")),
    };
    let state = match AppState::open(config).await {
        Ok(state) => state,
        Err(err) => return fail(EXIT_RUNTIME, &format!("cannot start: {err}")),
    };
    // Differs from `listen` when port 0 asked the OS to pick one.
    let addr = listener.local_addr().unwrap_or(listen);
    tracing::info!("listening on {addr}");
    match amp_server::serve(listener, state, shutdown).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => fail(EXIT_RUNTIME, &format!("server failed: {err}")),
    }
}

/// Reports a fatal error on stderr, where it is seen even when logging is not set up.
fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("amp-server: {message}");
    ExitCode::from(code)
}

/// Logs go to stdout in the configured format; `RUST_LOG`, when set, replaces the filter.
fn init_tracing(log: &LogConfig) -> Result<(), String> {
    let filter = if std::env::var_os(EnvFilter::DEFAULT_ENV).is_some() {
        EnvFilter::try_from_default_env().map_err(|e| format!("{}: {e}", EnvFilter::DEFAULT_ENV))?
    } else {
        EnvFilter::try_new(&log.filter).map_err(|e| format!("log.filter: {e}"))?
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}

/// Resolves on the first SIGINT or SIGTERM (Ctrl-C elsewhere).
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "shutdown requested");
    })
}

/// Resolves on the first SIGINT or SIGTERM (Ctrl-C elsewhere).
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!(signal = "ctrl-c", "shutdown requested");
        } else {
            // Without a working handler the server runs until killed, rather than stopping at once.
            std::future::pending::<()>().await;
        }
    })
}

//! The `amp-server` binary: configuration errors, serving, and stopping on SIGTERM.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::raw_get;

/// Kills the child when a test ends, however it ends, so no server outlives the run.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary with `--config`, and without any of the caller's AMP settings.
fn amp_server(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_amp-server"));
    command.arg("--config").arg(config).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AMP") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

async fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("a bound listener has an address").port()
}

#[tokio::test]
async fn unknown_config_key_exits_2_and_names_the_key() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("amp.toml");
    std::fs::write(&config, "[server]\nlistn = 1\n").expect("the config is written");

    let child = amp_server(&config).stdout(Stdio::null()).stderr(Stdio::piped()).spawn();
    let mut child = ChildGuard(child.expect("the binary starts"));
    let status = wait_for_exit(&mut child.0, Duration::from_secs(10)).await.expect("it exits at once");
    let mut stderr = String::new();
    child.0.stderr.take().expect("stderr is piped").read_to_string(&mut stderr).expect("stderr is text");

    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("amp-server: invalid configuration:"), "{stderr}");
    assert!(stderr.contains("listn"), "{stderr}");
}

#[tokio::test]
async fn binary_serves_healthz_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("amp.toml");
    let data_dir = dir.path().join("data");
    let grace_secs = 2;
    std::fs::write(
        &config,
        format!("data_dir = '{}'\n[server]\nshutdown_grace_secs = {grace_secs}\n", data_dir.display()),
    )
    .expect("the config is written");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));

    let child = amp_server(&config).arg("--listen").arg(addr.to_string()).stdout(Stdio::null()).spawn();
    let mut child = ChildGuard(child.expect("the binary starts"));

    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match raw_get(addr, "/healthz").await {
            Ok(answer) => break answer,
            Err(err) if Instant::now() >= deadline => panic!("no answer on {addr} within 10 s: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert_eq!(answer, (200, r#"{"status":"ok"}"#.to_owned()));

    let sent = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status();
    assert!(sent.as_ref().is_ok_and(|s| s.success()), "kill -TERM failed: {sent:?}");
    let status = wait_for_exit(&mut child.0, Duration::from_secs(grace_secs + 3)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}

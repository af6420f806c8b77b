//! amp-server as a child process: a throwaway configuration and data directory, a bounded
//! wait for readiness, and a guard that kills it however the harness ends.

use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Client;
use tempfile::TempDir;
use tokio::runtime::Handle;

/// The amp-server child; dropping it kills the process and removes its directory.
pub struct ServerProcess {
    child: Child,
    dir: TempDir,
    addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `bin` with a configuration whose only model, `mock`, is served by the
    /// OpenAI-compatible `upstream_url`, and waits up to `ready_within` for `GET /readyz`.
    pub fn start(
        bin: &Path,
        upstream_url: &str,
        ready_within: Duration,
        client: &Client,
        runtime: &Handle,
        stop: &Arc<AtomicBool>,
    ) -> Result<ServerProcess, String> {
        if !bin.is_file() {
            return Err(format!(
                "no amp-server binary at {} (build it with `cargo build --release -p amp-server`, \
                 or pass --server-bin)",
                bin.display()
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("amp-load-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let addr = free_loopback_addr()?;
        let config = dir.path().join("amp.toml");
        write_file(&config, &config_toml(dir.path(), addr, upstream_url))?;
        let log = dir.path().join("server.log");
        let log_file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(bin);
        // An AMP_CONFIG, AMP__* or RUST_LOG in the caller's environment would measure a
        // different server than the one this configuration describes.
        for (name, _) in std::env::vars_os() {
            let name_text = name.to_string_lossy();
            if name_text.starts_with("AMP__") || name_text == "AMP_CONFIG" || name_text == "RUST_LOG" {
                command.env_remove(&name);
            }
        }
        let child = command
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut server = ServerProcess { child, dir, addr };
        server.wait_ready(ready_within, client, runtime, stop)?;
        Ok(server)
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(
        &mut self,
        within: Duration,
        client: &Client,
        runtime: &Handle,
        stop: &Arc<AtomicBool>,
    ) -> Result<(), String> {
        let url = format!("{}/readyz", self.url());
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("amp-server exited with {status} while starting{}", self.log_tail()));
            }
            let probe = runtime.block_on(async {
                client.get(&url).timeout(Duration::from_secs(1)).send().await.map(|r| r.status())
            });
            let last = match probe {
                Ok(status) if status.is_success() => return Ok(()),
                Ok(status) => format!("HTTP {status}"),
                Err(err) => err.to_string(),
            };
            if stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "amp-server was not ready within {within:?} (last answer from {url}: {last}){}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of the server's output, to show why it failed.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        if tail.is_empty() { String::new() } else { format!("; its output ends:\n{tail}") }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGKILL: the data directory is thrown away, so there is nothing to drain.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration: a throwaway data directory, quiet logs, one mock model.
fn config_toml(data_dir: &Path, listen: SocketAddr, upstream_url: &str) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    format!(
        r#"# Written by amp-load for one run.
data_dir = {data_dir}

[server]
listen = "{listen}"

[log]
filter = "warn"

[models]
default_model = "mock"

[models.models.mock]
provider = "OpenAICompatible"
context_window = 8192
max_tokens = 1024
tier = "Economical"

[[models.models.mock.deployments]]
name = "loopback"
endpoint = {endpoint}
"#,
        data_dir = quoted(&data_dir.to_string_lossy()),
        endpoint = quoted(&format!("{upstream_url}/v1")),
    )
}

/// A loopback port that was free a moment ago. Another process could take it before the
/// server binds; the server then fails to start and says so, which is rare and loud.
fn free_loopback_addr() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener.local_addr().map_err(|e| format!("finding a free port: {e}"))
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    let mut file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_mock_model_and_its_v1_endpoint() {
        let toml = config_toml(Path::new("/tmp/x"), "127.0.0.1:9".parse().unwrap(), "http://127.0.0.1:7");
        assert!(toml.contains(r#"endpoint = "http://127.0.0.1:7/v1""#));
        assert!(toml.contains(r#"data_dir = "/tmp/x""#));
        assert!(toml.contains(r#"listen = "127.0.0.1:9""#));
    }
}

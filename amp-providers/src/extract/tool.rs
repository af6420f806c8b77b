//! External programs (poppler's `pdftotext` / `pdftoppm`, `tesseract`), run so that one
//! bad file cannot take the worker down: output is read up to a bound, and a child whose
//! future is dropped (the extraction timed out) is killed.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// How long probing a program at start-up may take before it counts as missing.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of a failing program's stderr is kept for the log.
const MAX_STDERR: u64 = 8 * 1024;

/// An external program that answered its probe.
#[derive(Debug, Clone)]
pub(super) struct Tool {
    program: PathBuf,
}

/// Why running a tool failed.
#[derive(Debug)]
pub(super) enum ToolFailure {
    /// It could not be started or talked to.
    Io(std::io::Error),
    /// It exited unsuccessfully.
    Exit {
        /// Its exit status.
        status: ExitStatus,
        /// The start of what it printed on stderr.
        stderr: String,
    },
    /// It printed more than the bound; it was killed.
    OutputTooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
}

impl fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolFailure::Io(e) => write!(f, "{e}"),
            ToolFailure::Exit { status, stderr } => {
                write!(f, "{status}")?;
                match stderr.lines().find(|l| !l.trim().is_empty()) {
                    Some(line) => write!(f, ": {}", line.trim()),
                    None => Ok(()),
                }
            }
            ToolFailure::OutputTooLarge { limit } => write!(f, "printed more than {limit} bytes"),
        }
    }
}

impl std::error::Error for ToolFailure {}

impl Tool {
    /// Runs `program args…` once, synchronously and bounded by [`PROBE_TIMEOUT`], and keeps
    /// the program if it exits successfully; returns it with what it printed (stdout, then
    /// stderr), for the caller to check further.
    pub(super) fn probe(program: &Path, args: &[&str]) -> Option<(Tool, String)> {
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < PROBE_TIMEOUT => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    tracing::warn!(program = %program.display(), "probing the program timed out; not using it");
                    return None;
                }
            }
        };
        if !status.success() {
            return None;
        }
        // The probe commands print a few lines, so the pipes never filled while waiting.
        let mut printed = String::new();
        for pipe in [child.stdout.take().map(ReadPipe::Out), child.stderr.take().map(ReadPipe::Err)]
            .into_iter()
            .flatten()
        {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::Read::take(pipe, 64 * 1024), &mut text);
            printed.push_str(&text);
        }
        Some((Tool { program: program.to_owned() }, printed))
    }

    /// Runs the tool with `args`, feeding it `stdin` if given, and returns its stdout, which
    /// may be at most `max_stdout` bytes. The child is killed if this future is dropped.
    pub(super) async fn run<I, S>(
        &self,
        args: I,
        stdin: Option<Bytes>,
        max_stdout: usize,
    ) -> Result<Vec<u8>, ToolFailure>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(&self.program)
            .args(args)
            // Each tool is one task of a bounded worker: let it use one core (tesseract
            // would start a thread per core and fight the other workers for them).
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(ToolFailure::Io)?;
        let input = child.stdin.take();
        let feed = async move {
            if let (Some(mut pipe), Some(data)) = (input, stdin) {
                // A tool that stops reading early fails on its own; its status says why.
                let _ = pipe.write_all(&data).await;
                let _ = pipe.shutdown().await;
            }
            Ok::<(), ToolFailure>(())
        };
        let stdout = child.stdout.take();
        let read_out = async move {
            let mut out = Vec::new();
            if let Some(pipe) = stdout {
                pipe.take(max_stdout as u64 + 1).read_to_end(&mut out).await.map_err(ToolFailure::Io)?;
            }
            if out.len() > max_stdout {
                return Err(ToolFailure::OutputTooLarge { limit: max_stdout });
            }
            Ok(out)
        };
        let stderr = child.stderr.take();
        let read_err = async move {
            let mut err = Vec::new();
            if let Some(pipe) = stderr {
                let mut pipe = pipe.take(MAX_STDERR);
                let _ = pipe.read_to_end(&mut err).await;
                // Keep draining so a chatty tool never blocks on a full stderr pipe.
                let _ = tokio::io::copy(&mut pipe.into_inner(), &mut tokio::io::sink()).await;
            }
            Ok::<_, ToolFailure>(err)
        };
        // Too much output ends the wait at once (the other two are dropped) and the tool is
        // killed, instead of waiting for it to finish writing into a pipe nobody reads.
        let ((), out, err) = match tokio::try_join!(feed, read_out, read_err) {
            Ok(all) => all,
            Err(failure) => {
                let _ = child.kill().await;
                return Err(failure);
            }
        };
        let status = child.wait().await.map_err(ToolFailure::Io)?;
        if !status.success() {
            return Err(ToolFailure::Exit { status, stderr: String::from_utf8_lossy(&err).into_owned() });
        }
        Ok(out)
    }
}

/// Either pipe of a probed child, to read both the same way.
enum ReadPipe {
    Out(std::process::ChildStdout),
    Err(std::process::ChildStderr),
}

impl std::io::Read for ReadPipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ReadPipe::Out(p) => p.read(buf),
            ReadPipe::Err(p) => p.read(buf),
        }
    }
}

/// A private temporary copy of a document, for tools that need a seekable file, in a
/// directory only this user can enter (the tools write their output next to it); both are
/// removed when dropped.
#[derive(Debug)]
pub(super) struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    /// Writes `bytes` to `document.{extension}` in a new private directory under the
    /// system's temp dir.
    pub(super) async fn create(bytes: &[u8], extension: &str) -> std::io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "amp-extract-{}-{}-{nanos:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        let mut builder = tokio::fs::DirBuilder::new();
        #[cfg(unix)]
        builder.mode(0o700);
        // Fails if the name exists: never write into a directory someone else prepared.
        builder.create(&dir).await?;
        // From here on the directory exists: the guard removes it even if writing fails.
        let guard = TempFile { path: dir.join(format!("document.{extension}")), dir };
        let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&guard.path).await?;
        file.write_all(bytes).await?;
        file.flush().await?;
        Ok(guard)
    }

    /// Where the copy is.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

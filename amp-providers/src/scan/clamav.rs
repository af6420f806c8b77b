//! [`Scanner`] on ClamAV's clamd, over TCP or a Unix socket.
//!
//! Each scan opens one connection and streams the bytes with `zINSTREAM`: 4-byte
//! big-endian length-prefixed chunks, then a zero length. clamd answers `stream: OK` or
//! `stream: NAME FOUND`. Every other outcome fails closed, never `Clean`:
//!
//! | outcome | error |
//! |---|---|
//! | clamd cannot be reached, closes without an answer, or does not answer within the timeout (default 30 s) | `Unavailable` (retryable) |
//! | clamd answers with an error, or with something that is not its protocol | `Unavailable` (retryable) |
//! | the bytes exceed clamd's `StreamMaxLength` (`INSTREAM size limit exceeded`) | `InvalidInput`: not retryable, since the same bytes fail the same way; an operator raises `StreamMaxLength` (or lowers the upload limit below it) |
//!
//! The answer is read while the bytes are still being sent, so clamd refusing a stream
//! part-way (and closing the connection on it) is reported as what it is, not as a broken
//! pipe.
//!
//! ```no_run
//! use amp_core::{ScanVerdict, Scanner};
//! use amp_providers::scan::ClamAvScanner;
//!
//! # async fn run() -> amp_core::Result<()> {
//! let scanner = ClamAvScanner::from_address("tcp://127.0.0.1:3310")?;
//! scanner.ping().await?;
//! match scanner.scan("hello".into()).await? {
//!     ScanVerdict::Clean => {}
//!     ScanVerdict::Infected { signature } => println!("refused: {signature}"),
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use amp_core::config::ScannerConfig;
use amp_core::{Error, Result, ScanVerdict, Scanner};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes per INSTREAM chunk.
const CHUNK: usize = 64 * 1024;
/// The longest answer read; clamd's are a line.
const MAX_REPLY: usize = 4096;

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `host:port`.
    Tcp(String),
    /// A Unix socket's path (clamd's `LocalSocket`).
    Unix(PathBuf),
}

impl FromStr for ClamdAddress {
    type Err = Error;

    /// Reads `tcp://HOST:PORT`, `unix:///PATH`, a plain `HOST:PORT`, or an absolute path
    /// (a Unix socket).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = || {
            Error::invalid_input(format!(
                "clamd address `{s}`: expected tcp://HOST:PORT, unix:///PATH or HOST:PORT"
            ))
        };
        if let Some(path) = s.strip_prefix("unix://") {
            return if path.starts_with('/') { Ok(ClamdAddress::Unix(path.into())) } else { Err(bad()) };
        }
        if s.starts_with('/') {
            return Ok(ClamdAddress::Unix(s.into()));
        }
        let host_port = s.strip_prefix("tcp://").unwrap_or(s).trim_end_matches('/');
        match host_port.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(ClamdAddress::Tcp(host_port.to_owned()))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClamdAddress::Tcp(host_port) => write!(f, "tcp://{host_port}"),
            ClamdAddress::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// A [`Scanner`] that asks clamd.
#[derive(Debug, Clone)]
pub struct ClamAvScanner {
    address: ClamdAddress,
    timeout: Duration,
}

impl ClamAvScanner {
    /// How long one exchange with clamd may take unless set with [`Self::with_timeout`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A scanner asking clamd at `address`, with [`Self::DEFAULT_TIMEOUT`].
    pub fn new(address: ClamdAddress) -> Self {
        ClamAvScanner { address, timeout: Self::DEFAULT_TIMEOUT }
    }

    /// A scanner asking clamd at an address as [`ClamdAddress`] reads it
    /// (`tcp://127.0.0.1:3310`, `unix:///run/clamav/clamd.ctl`, `127.0.0.1:3310`).
    pub fn from_address(address: &str) -> Result<Self> {
        Ok(Self::new(address.parse()?))
    }

    /// The scanner `[storage.scanner]` configures, with its timeout; `None` when no
    /// `clamd` is set.
    pub fn from_config(config: &ScannerConfig) -> Result<Option<Self>> {
        config
            .clamd
            .as_deref()
            .map(|a| Ok(Self::from_address(a)?.with_timeout(Duration::from_secs(config.timeout_secs))))
            .transpose()
    }

    /// Bounds each whole exchange: connecting, sending the bytes and waiting for the
    /// answer. A scan that takes longer is `Unavailable`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Where clamd is asked.
    pub fn address(&self) -> &ClamdAddress {
        &self.address
    }

    /// Checks that clamd answers (`zPING` → `PONG`), for a status check; `Unavailable`
    /// when it does not.
    pub async fn ping(&self) -> Result<()> {
        let reply = self.exchange(b"zPING\0", None).await?;
        if reply == "PONG" { Ok(()) } else { Err(self.unavailable("unexpected answer to PING", &reply)) }
    }

    async fn exchange(&self, command: &'static [u8], body: Option<&Bytes>) -> Result<String> {
        let talk = async {
            let conn = connect(&self.address).await.map_err(|e| (Failure::Connect, e))?;
            talk(conn, command, body).await.map_err(|e| (Failure::Exchange, e))
        };
        match tokio::time::timeout(self.timeout, talk).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err((Failure::Connect, e))) => {
                tracing::warn!(clamd = %self.address, error = %e, "cannot connect to clamd");
                Err(Error::unavailable("the virus scanner cannot be reached"))
            }
            Ok(Err((Failure::Exchange, e))) => {
                tracing::warn!(clamd = %self.address, error = %e, "the exchange with clamd failed");
                Err(Error::unavailable("the virus scanner closed the connection without an answer"))
            }
            Err(_) => {
                tracing::warn!(clamd = %self.address, timeout = ?self.timeout, "clamd did not answer in time");
                Err(Error::unavailable(format!(
                    "the virus scanner did not answer within {}s",
                    self.timeout.as_secs_f64()
                )))
            }
        }
    }

    fn unavailable(&self, what: &str, reply: &str) -> Error {
        tracing::warn!(clamd = %self.address, reply, "{what} from clamd");
        Error::unavailable(format!("the virus scanner gave no verdict ({what})"))
    }
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    Connect,
    Exchange,
}

#[async_trait]
impl Scanner for ClamAvScanner {
    async fn scan(&self, bytes: Bytes) -> Result<ScanVerdict> {
        let reply = self.exchange(b"zINSTREAM\0", Some(&bytes)).await?;
        match parse(&reply) {
            Reply::Clean => Ok(ScanVerdict::Clean),
            Reply::Infected(signature) => Ok(ScanVerdict::Infected { signature: signature.to_owned() }),
            Reply::TooLarge => Err(Error::invalid_input(format!(
                "the file ({} bytes) is larger than the virus scanner accepts (clamd's StreamMaxLength), \
                 so it was not scanned",
                bytes.len()
            ))),
            Reply::Error => Err(self.unavailable("an error", &reply)),
            Reply::Garbage => Err(self.unavailable("an unexpected answer", &reply)),
        }
    }
}

/// What clamd's answer to INSTREAM means.
#[derive(Debug, PartialEq, Eq)]
enum Reply<'a> {
    Clean,
    Infected(&'a str),
    TooLarge,
    Error,
    Garbage,
}

fn parse(reply: &str) -> Reply<'_> {
    if reply == "INSTREAM size limit exceeded. ERROR" {
        return Reply::TooLarge;
    }
    if reply.ends_with(" ERROR") {
        return Reply::Error;
    }
    match reply.strip_prefix("stream: ") {
        Some("OK") => Reply::Clean,
        Some(rest) => match rest.strip_suffix(" FOUND").map(str::trim) {
            Some(signature) if !signature.is_empty() => Reply::Infected(signature),
            _ => Reply::Garbage,
        },
        None => Reply::Garbage,
    }
}

trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

async fn connect(address: &ClamdAddress) -> io::Result<Box<dyn Connection>> {
    match address {
        ClamdAddress::Tcp(host_port) => {
            let stream = tokio::net::TcpStream::connect(host_port.as_str()).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
        }
        #[cfg(unix)]
        ClamdAddress::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        #[cfg(not(unix))]
        ClamdAddress::Unix(_) => {
            Err(io::Error::new(io::ErrorKind::Unsupported, "Unix sockets are not supported on this platform"))
        }
    }
}

/// Sends `command` (and `body` as an INSTREAM stream) and reads the answer, without its
/// terminating NUL. The answer is read while sending: clamd may refuse part-way, answer,
/// and close.
async fn talk(conn: Box<dyn Connection>, command: &[u8], body: Option<&Bytes>) -> io::Result<String> {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let send = async {
        wr.write_all(command).await?;
        if let Some(body) = body {
            for chunk in body.chunks(CHUNK) {
                let len = u32::try_from(chunk.len()).map_err(io::Error::other)?;
                wr.write_all(&len.to_be_bytes()).await?;
                wr.write_all(chunk).await?;
            }
            wr.write_all(&0u32.to_be_bytes()).await?;
        }
        wr.flush().await
    };
    let recv = read_reply(&mut rd);
    tokio::pin!(recv);
    let reply = tokio::select! {
        reply = &mut recv => reply?,
        sent = send => match sent {
            Ok(()) => recv.await?,
            // A refusal part-way closes the connection under the writer; the answer tells why.
            Err(write_error) => match recv.await {
                Ok(reply) if !reply.is_empty() => reply,
                _ => return Err(write_error),
            },
        },
    };
    if reply.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "clamd closed the connection without an answer",
        ));
    }
    Ok(String::from_utf8_lossy(&reply).trim().to_owned())
}

/// Reads up to the first NUL (clamd ends `z`-commands' answers with one) or the end of the
/// connection, at most [`MAX_REPLY`] bytes.
async fn read_reply(rd: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while reply.len() < MAX_REPLY {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            reply.extend_from_slice(&buf[..end]);
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_tcp_or_unix() {
        let tcp = |s: &str| ClamdAddress::Tcp(s.to_owned());
        assert_eq!("tcp://127.0.0.1:3310".parse::<ClamdAddress>().unwrap(), tcp("127.0.0.1:3310"));
        assert_eq!("clamav:3310".parse::<ClamdAddress>().unwrap(), tcp("clamav:3310"));
        assert_eq!("tcp://[::1]:3310".parse::<ClamdAddress>().unwrap(), tcp("[::1]:3310"));
        assert_eq!(
            "unix:///run/clamav/clamd.ctl".parse::<ClamdAddress>().unwrap(),
            ClamdAddress::Unix("/run/clamav/clamd.ctl".into())
        );
        assert_eq!(
            "/tmp/clamd.sock".parse::<ClamdAddress>().unwrap(),
            ClamdAddress::Unix("/tmp/clamd.sock".into())
        );
        for bad in ["", "clamav", "tcp://clamav", "tcp://:3310", "host:0", "host:99999", "unix://relative"] {
            let err = bad.parse::<ClamdAddress>().unwrap_err();
            assert_eq!(err.kind(), amp_core::ErrorKind::InvalidInput, "{bad}");
        }
        assert_eq!(tcp("127.0.0.1:3310").to_string(), "tcp://127.0.0.1:3310");
    }

    #[test]
    fn answers_parse_to_verdicts_and_failures() {
        assert_eq!(parse("stream: OK"), Reply::Clean);
        assert_eq!(parse("stream: Win.Test.EICAR_HDB-1 FOUND"), Reply::Infected("Win.Test.EICAR_HDB-1"));
        assert_eq!(parse("INSTREAM size limit exceeded. ERROR"), Reply::TooLarge);
        assert_eq!(parse("stream: Can't allocate memory ERROR"), Reply::Error);
        assert_eq!(parse("UNKNOWN COMMAND"), Reply::Garbage);
        assert_eq!(parse("stream:  FOUND"), Reply::Garbage);
        assert_eq!(parse("stream: OKAY"), Reply::Garbage);
        assert_eq!(parse(""), Reply::Garbage);
    }

    #[test]
    fn the_config_names_the_scanner_and_its_timeout() {
        let none = ScannerConfig::default();
        assert!(ClamAvScanner::from_config(&none).unwrap().is_none());
        let config = ScannerConfig { clamd: Some("unix:///run/clamd.sock".into()), timeout_secs: 7, ..none };
        let scanner = ClamAvScanner::from_config(&config).unwrap().unwrap();
        assert_eq!(scanner.address(), &ClamdAddress::Unix("/run/clamd.sock".into()));
        assert_eq!(scanner.timeout, Duration::from_secs(7));
    }
}

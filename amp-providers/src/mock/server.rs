//! The loopback HTTP/1.1 server.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::request::{ParseError, RecordedRequest, parse};
use super::response::{Body, Frame, Kind, MockResponse, StreamEnd, reason};

/// Decides the answer to each request.
pub type Handler = Arc<dyn Fn(&RecordedRequest) -> MockResponse + Send + Sync>;

struct Shared {
    handler: Handler,
    record: bool,
    requests: Mutex<Vec<RecordedRequest>>,
    served: AtomicUsize,
    connections: AtomicUsize,
    /// Answers cut short because the client went away.
    disconnects: watch::Sender<usize>,
}

/// A loopback HTTP/1.1 server that answers with scripted responses and records requests.
///
/// Bound to `127.0.0.1` on a free port; speaks keep-alive, so a client reuses its
/// connection as it would with a real provider. Dropping it stops the server and every
/// open connection.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use amp_providers::mock::{MockResponse, MockServer};
///
/// let server = MockServer::always(MockResponse::json(200, &serde_json::json!({"ok": true}))).await?;
/// // point a client at `server.url()`, then:
/// assert_eq!(server.requests().len(), 0);
/// # Ok::<(), std::io::Error>(()) }).unwrap();
/// ```
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl MockServer {
    /// Starts a server that answers each request with `handler(request)` and records it.
    pub async fn start<F>(handler: F) -> io::Result<MockServer>
    where
        F: Fn(&RecordedRequest) -> MockResponse + Send + Sync + 'static,
    {
        Self::start_with(Arc::new(handler), true).await
    }

    /// Starts a server that does not keep requests (for load tests, where recording
    /// would only grow memory); [`MockServer::request_count`] still counts them.
    pub async fn start_unrecorded<F>(handler: F) -> io::Result<MockServer>
    where
        F: Fn(&RecordedRequest) -> MockResponse + Send + Sync + 'static,
    {
        Self::start_with(Arc::new(handler), false).await
    }

    /// Starts a server that answers every request with `response`.
    pub async fn always(response: MockResponse) -> io::Result<MockServer> {
        Self::start(move |_| response.clone()).await
    }

    /// Starts a server that answers requests with `responses` in order, then with a 500
    /// saying the script ran out (so a test that sends one request too many sees it).
    pub async fn scripted(responses: impl IntoIterator<Item = MockResponse>) -> io::Result<MockServer> {
        let script = Mutex::new(responses.into_iter().collect::<VecDeque<_>>());
        Self::start(move |_| {
            script.lock().unwrap_or_else(PoisonError::into_inner).pop_front().unwrap_or_else(|| {
                MockResponse::json(
                    500,
                    &serde_json::json!({"error": {"message": "mock: no scripted response left"}}),
                )
            })
        })
        .await
    }

    async fn start_with(handler: Handler, record: bool) -> io::Result<MockServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            handler,
            record,
            requests: Mutex::new(Vec::new()),
            served: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            disconnects: watch::Sender::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(MockServer { addr, shared, accept })
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order (empty when unrecorded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The most recent request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.requests.lock().unwrap_or_else(PoisonError::into_inner).last().cloned()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.shared.served.load(Ordering::Relaxed)
    }

    /// How many connections were accepted; fewer than requests means keep-alive worked.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// How many answers were cut short because the client closed the connection.
    pub fn disconnects(&self) -> usize {
        *self.shared.disconnects.borrow()
    }

    /// Waits until at least one client has disconnected before its answer was complete;
    /// `false` if none did `within` the time given.
    pub async fn wait_for_disconnect(&self, within: Duration) -> bool {
        let mut seen = self.shared.disconnects.subscribe();
        tokio::time::timeout(within, seen.wait_for(|n| *n > 0)).await.is_ok_and(|r| r.is_ok())
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // The accept task owns the connection tasks (a `JoinSet`); aborting it drops them.
        self.accept.abort();
    }
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((socket, _)) = listener.accept().await else {
            // Out of file descriptors or similar; give the system a moment.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.connections.fetch_add(1, Ordering::Relaxed);
        connections.spawn(serve(socket, shared.clone()));
    }
}

/// How a connection goes on after an answer.
enum Next {
    KeepAlive,
    Close,
}

async fn serve(mut socket: TcpStream, shared: Arc<Shared>) {
    // Stream frames are small and each must reach the client when written.
    let _ = socket.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let request = loop {
            match parse(&mut buf) {
                Ok(Some(request)) => break request,
                Ok(None) => {}
                Err(err) => {
                    let (status, why) = match err {
                        ParseError::Malformed(why) => (400, why),
                        ParseError::Unsupported(why) => (501, why),
                    };
                    let body = format!("mock: {why}");
                    let _ = socket.write_all(&head(status, &[], Some(body.len()), true)).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                    return;
                }
            }
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        shared.served.fetch_add(1, Ordering::Relaxed);
        let response = (shared.handler)(&request);
        let close = request.close;
        if shared.record {
            shared.requests.lock().unwrap_or_else(PoisonError::into_inner).push(request);
        }
        match answer(&mut socket, &mut buf, response, close).await {
            Ok(Next::KeepAlive) if !close => {}
            Ok(_) => return,
            Err(Disconnected) => {
                shared.disconnects.send_modify(|n| *n += 1);
                return;
            }
        }
    }
}

/// The client closed the connection before the answer was complete.
struct Disconnected;

async fn answer(
    socket: &mut TcpStream,
    buf: &mut BytesMut,
    response: MockResponse,
    close: bool,
) -> Result<Next, Disconnected> {
    let (mut reader, mut writer) = socket.split();
    match response.kind {
        Kind::HangUp => Ok(Next::Close),
        Kind::Stall => Err(until_disconnect(&mut reader, buf).await),
        Kind::Answer { status, headers, body, delay } => {
            pause(&mut reader, buf, delay).await?;
            match body {
                Body::Full(body) => {
                    let mut out = head(status, &headers, Some(body.len()), close);
                    out.extend_from_slice(&body);
                    writer.write_all(&out).await.map_err(|_| Disconnected)?;
                    Ok(Next::KeepAlive)
                }
                Body::Streamed { frames, end } => {
                    let ends_cleanly = end == StreamEnd::Complete;
                    let out = head(status, &headers, None, close || !ends_cleanly);
                    writer.write_all(&out).await.map_err(|_| Disconnected)?;
                    stream_frames(&mut reader, &mut writer, buf, frames, end).await
                }
            }
        }
    }
}

async fn stream_frames(
    reader: &mut ReadHalf<'_>,
    writer: &mut WriteHalf<'_>,
    buf: &mut BytesMut,
    frames: Vec<Frame>,
    end: StreamEnd,
) -> Result<Next, Disconnected> {
    for frame in frames {
        pause(reader, buf, frame.delay).await?;
        if frame.bytes.is_empty() {
            // A zero-length chunk would end the body.
            continue;
        }
        let mut chunk = format!("{:x}\r\n", frame.bytes.len()).into_bytes();
        chunk.extend_from_slice(&frame.bytes);
        chunk.extend_from_slice(b"\r\n");
        writer.write_all(&chunk).await.map_err(|_| Disconnected)?;
    }
    match end {
        StreamEnd::Complete => {
            writer.write_all(b"0\r\n\r\n").await.map_err(|_| Disconnected)?;
            Ok(Next::KeepAlive)
        }
        StreamEnd::Close => {
            let _ = writer.shutdown().await;
            Ok(Next::Close)
        }
        StreamEnd::Reset => {
            let _ = reader.as_ref().set_zero_linger();
            Ok(Next::Close)
        }
        StreamEnd::Stall => Err(until_disconnect(reader, buf).await),
    }
}

/// Waits `delay`, noticing meanwhile if the client goes away. Bytes that arrive are kept
/// (a pipelined next request).
async fn pause(reader: &mut ReadHalf<'_>, buf: &mut BytesMut, delay: Duration) -> Result<(), Disconnected> {
    if delay.is_zero() {
        return Ok(());
    }
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return Ok(()),
            read = reader.read_buf(buf) => if matches!(read, Ok(0) | Err(_)) { return Err(Disconnected) },
        }
    }
}

async fn until_disconnect(reader: &mut ReadHalf<'_>, buf: &mut BytesMut) -> Disconnected {
    loop {
        if matches!(reader.read_buf(buf).await, Ok(0) | Err(_)) {
            return Disconnected;
        }
    }
}

fn head(status: u16, headers: &[(String, String)], content_length: Option<usize>, close: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    match content_length {
        Some(len) => out.push_str(&format!("content-length: {len}\r\n")),
        None => out.push_str("transfer-encoding: chunked\r\n"),
    }
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

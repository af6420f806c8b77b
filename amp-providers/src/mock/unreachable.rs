//! A loopback address that never completes a TCP handshake, for connect timeouts.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A listening socket whose accept queue is full and never drained: the kernel drops
/// further SYNs, so a client's connect hangs until its own timeout, as with a firewalled
/// or dead host, without leaving the machine.
///
/// Keep it alive for as long as the address must stay unreachable.
pub struct UnreachableEndpoint {
    addr: SocketAddr,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl UnreachableEndpoint {
    /// Binds `127.0.0.1` on a free port and fills its accept queue.
    pub async fn bind() -> io::Result<UnreachableEndpoint> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(([127, 0, 0, 1], 0).into())?;
        // The smallest queue the kernel allows; a connection or two fills it.
        let listener = socket.listen(0)?;
        let addr = listener.local_addr()?;
        let mut queued = Vec::new();
        // Connects succeed while the queue has room; the first one that hangs shows it is full.
        for _ in 0..64 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => queued.push(stream),
                Ok(Err(err)) => return Err(err),
                Err(_) => return Ok(UnreachableEndpoint { addr, _listener: listener, _queued: queued }),
            }
        }
        Err(io::Error::other("the accept queue never filled up"))
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl std::fmt::Debug for UnreachableEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnreachableEndpoint").field("addr", &self.addr).finish_non_exhaustive()
    }
}

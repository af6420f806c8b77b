//! Scripted answers: whole bodies, event streams frame by frame, and misbehaviour.

use std::time::Duration;

use bytes::Bytes;

/// One piece of a streamed body, written as one HTTP chunk after `delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// How long to wait before writing it.
    pub delay: Duration,
    /// The bytes, exactly as they go on the wire (e.g. `data: {…}\n\n`).
    pub bytes: Bytes,
}

/// How a streamed body ends after its last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The terminating chunk; the connection stays open for the next request.
    Complete,
    /// Close the connection without the terminating chunk (a FIN mid-body): the client
    /// reads every frame, then a truncated body.
    Close,
    /// Abort the connection with a TCP RST: frames still in flight may be lost.
    Reset,
    /// Send nothing more and keep the connection open until the client gives up.
    Stall,
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    Full(Bytes),
    Streamed { frames: Vec<Frame>, end: StreamEnd },
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Body,
        delay: Duration,
    },
    /// Read the request, never answer, wait for the client to leave.
    Stall,
    /// Read the request and close the connection without a word.
    HangUp,
}

/// What the mock answers one request with.
///
/// ```
/// use std::time::Duration;
/// use amp_providers::mock::MockResponse;
///
/// let ok = MockResponse::json(200, &serde_json::json!({"ok": true})).with_header("x-request-id", "req_1");
/// let slow_stream = MockResponse::sse(["data: 1\n\n", "data: 2\n\n"])
///     .with_delay_between(Duration::from_millis(20))
///     .then_close();
/// # let _ = (ok, slow_stream);
/// ```
#[derive(Debug, Clone)]
pub struct MockResponse {
    pub(crate) kind: Kind,
}

impl MockResponse {
    /// A body with this status and content type.
    pub fn body(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        MockResponse {
            kind: Kind::Answer {
                status,
                headers: vec![("content-type".to_owned(), content_type.to_owned())],
                body: Body::Full(body.into()),
                delay: Duration::ZERO,
            },
        }
    }

    /// A JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::body(status, "application/json", body.to_string())
    }

    /// A JSON body given as text, written byte for byte (key order, spacing).
    pub fn json_text(status: u16, body: impl Into<String>) -> Self {
        Self::body(status, "application/json", body.into())
    }

    /// A `200 text/event-stream` body of these frames, each written as its own chunk.
    pub fn sse<I, B>(frames: I) -> Self
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let frames =
            frames.into_iter().map(|bytes| Frame { delay: Duration::ZERO, bytes: bytes.into() }).collect();
        MockResponse {
            kind: Kind::Answer {
                status: 200,
                headers: vec![
                    ("content-type".to_owned(), "text/event-stream; charset=utf-8".to_owned()),
                    ("cache-control".to_owned(), "no-cache".to_owned()),
                ],
                body: Body::Streamed { frames, end: StreamEnd::Complete },
                delay: Duration::ZERO,
            },
        }
    }

    /// Never answer; hold the connection until the client closes it.
    pub fn stall() -> Self {
        MockResponse { kind: Kind::Stall }
    }

    /// Close the connection without answering.
    pub fn hang_up() -> Self {
        MockResponse { kind: Kind::HangUp }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let Kind::Answer { headers, .. } = &mut self.kind {
            headers.push((name.to_ascii_lowercase(), value.to_owned()));
        }
        self
    }

    /// Changes the status.
    pub fn with_status(mut self, new: u16) -> Self {
        if let Kind::Answer { status, .. } = &mut self.kind {
            *status = new;
        }
        self
    }

    /// Waits this long before sending the status line.
    pub fn delayed(mut self, by: Duration) -> Self {
        if let Kind::Answer { delay, .. } = &mut self.kind {
            *delay = by;
        }
        self
    }

    /// Waits `delay` before each frame after the first.
    pub fn with_delay_between(mut self, delay: Duration) -> Self {
        if let Kind::Answer { body: Body::Streamed { frames, .. }, .. } = &mut self.kind {
            for frame in frames.iter_mut().skip(1) {
                frame.delay = delay;
            }
        }
        self
    }

    /// Waits `delay` before frame `index` (counting from 0).
    pub fn with_delay_before(mut self, index: usize, delay: Duration) -> Self {
        if let Kind::Answer { body: Body::Streamed { frames, .. }, .. } = &mut self.kind
            && let Some(frame) = frames.get_mut(index)
        {
            frame.delay = delay;
        }
        self
    }

    /// Ends a streamed body this way instead of completing it.
    pub fn then(mut self, how: StreamEnd) -> Self {
        if let Kind::Answer { body: Body::Streamed { end, .. }, .. } = &mut self.kind {
            *end = how;
        }
        self
    }

    /// Closes the connection after the last frame, without the terminating chunk.
    pub fn then_close(self) -> Self {
        self.then(StreamEnd::Close)
    }

    /// Resets (TCP RST) the connection after the last frame.
    pub fn then_reset(self) -> Self {
        self.then(StreamEnd::Reset)
    }

    /// Keeps the connection open after the last frame without sending more.
    pub fn then_stall(self) -> Self {
        self.then(StreamEnd::Stall)
    }
}

/// The reason phrase for a status line; the mock's answers read like real servers'.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Site Overloaded",
        _ => "Unknown",
    }
}

//! Requests as the mock received them, parsed from HTTP/1.1.

use bytes::{Buf, Bytes, BytesMut};

/// Heads larger than this are refused; real clients send a few hundred bytes.
const MAX_HEAD: usize = 1024 * 1024;
/// Bodies larger than this are refused.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One request the mock received, kept for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `POST`, `GET`, …
    pub method: String,
    /// The request target: path and query (`/v1/chat/completions?api-version=…`).
    pub target: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// Whether the request asked to close the connection after the answer.
    pub(crate) close: bool,
}

impl RecordedRequest {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target.as_str(), |(path, _)| path)
    }

    /// The query string without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
    }
}

/// Why a request could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not HTTP/1.x, or a head too large or malformed.
    Malformed(&'static str),
    /// A body framing the mock does not implement (chunked request bodies).
    Unsupported(&'static str),
}

/// Takes one complete request off the front of `buf`; `Ok(None)` when more bytes are needed.
pub(crate) fn parse(buf: &mut BytesMut) -> Result<Option<RecordedRequest>, ParseError> {
    let Some(head_len) = find(buf, b"\r\n\r\n").map(|at| at + 4) else {
        return if buf.len() > MAX_HEAD { Err(ParseError::Malformed("head too large")) } else { Ok(None) };
    };
    let head =
        std::str::from_utf8(&buf[..head_len - 4]).map_err(|_| ParseError::Malformed("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed("bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ParseError::Malformed("not HTTP/1.x"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(ParseError::Malformed("bad header line"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if header("transfer-encoding").is_some_and(|te| !te.eq_ignore_ascii_case("identity")) {
        return Err(ParseError::Unsupported("chunked request bodies"));
    }
    let body_len = match header("content-length") {
        Some(len) => len.parse::<usize>().map_err(|_| ParseError::Malformed("bad content-length"))?,
        None => 0,
    };
    if body_len > MAX_BODY {
        return Err(ParseError::Malformed("body too large"));
    }
    if buf.len() < head_len + body_len {
        return Ok(None);
    }
    let connection = header("connection").map(str::to_ascii_lowercase);
    let close = match connection.as_deref() {
        Some(c) if c.contains("close") => true,
        Some(c) if c.contains("keep-alive") => false,
        _ => version == "HTTP/1.0",
    };
    let method = method.to_owned();
    let target = target.to_owned();
    buf.advance(head_len);
    let body = buf.split_to(body_len).freeze();
    Ok(Some(RecordedRequest { method, target, headers, body, close }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_taken_once_complete() {
        let raw = b"POST /v1/x?api-version=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nAuthorization: Bearer k\r\n\r\n{}GET / HTTP/1.1\r\n";
        let mut buf = BytesMut::from(&raw[..30]);
        assert_eq!(parse(&mut buf), Ok(None));
        let mut buf = BytesMut::from(&raw[..]);
        let req = parse(&mut buf).unwrap().unwrap();
        assert_eq!(req.path(), "/v1/x");
        assert_eq!(req.query(), Some("api-version=1"));
        assert_eq!(req.header("AUTHORIZATION"), Some("Bearer k"));
        assert_eq!(&req.body[..], b"{}");
        assert!(!req.close);
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n", "the next request stays buffered");
    }

    #[test]
    fn connection_close_and_chunked_bodies_are_noticed() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"[..]);
        assert!(parse(&mut buf).unwrap().unwrap().close);
        let mut buf = BytesMut::from(&b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..]);
        assert!(matches!(parse(&mut buf), Err(ParseError::Unsupported(_))));
    }
}

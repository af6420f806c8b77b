//! The ClamAV scanner against a real clamd, and against a loopback fake for every way
//! clamd can fail to give a verdict.
//!
//! The real clamd is the one `scripts/services.sh` starts, named by `AMP_TEST_CLAMD`
//! (`127.0.0.1:PORT`) and `AMP_TEST_CLAMD_SOCKET` (its Unix socket's path). It needs two
//! test signatures for EICAR: a hash one (`sigtool --md5 eicar.txt > DB/eicar.hdb`) matches
//! only a file that is EICAR alone, so finding it inside a larger file needs a body one too
//! (`Eicar-Test-Signature:0:*:HEX-OF-EICAR` in `DB/eicar.ndb`).

use std::time::{Duration, Instant};

use amp_core::{ErrorKind, ScanVerdict, Scanner};
use amp_providers::scan::{ClamAvScanner, ClamdAddress};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn real_clamd() -> ClamAvScanner {
    let address = std::env::var("AMP_TEST_CLAMD").expect(
        "AMP_TEST_CLAMD is not set: start clamd with the EICAR test signatures (scripts/services.sh) \
         and set it to 127.0.0.1:PORT",
    );
    ClamAvScanner::from_address(&address).unwrap()
}

fn real_clamd_socket() -> ClamAvScanner {
    let path = std::env::var("AMP_TEST_CLAMD_SOCKET").expect(
        "AMP_TEST_CLAMD_SOCKET is not set: start clamd with the EICAR test signatures (scripts/services.sh) \
         and set it to the path of its LocalSocket",
    );
    ClamAvScanner::new(ClamdAddress::Unix(path.into()))
}

fn assert_eicar(verdict: ScanVerdict) {
    match verdict {
        ScanVerdict::Infected { signature } => {
            assert!(signature.to_lowercase().contains("eicar"), "unexpected signature {signature}")
        }
        ScanVerdict::Clean => panic!(
            "EICAR must be found (inside a larger file only clamd's body signature eicar.ndb finds it, \
             see this file's header)"
        ),
    }
}

/// Bytes that are not all one value, so clamd really reads them.
fn clean_bytes(len: usize) -> Bytes {
    let text = b"The quick brown fox jumps over the lazy dog. 0123456789\n";
    text.iter().copied().cycle().take(len).collect::<Vec<u8>>().into()
}

#[tokio::test]
async fn real_clamd_finds_eicar_over_tcp() {
    assert_eicar(real_clamd().scan(Bytes::from_static(EICAR)).await.unwrap());
}

#[tokio::test]
async fn real_clamd_finds_eicar_over_its_unix_socket() {
    assert_eicar(real_clamd_socket().scan(Bytes::from_static(EICAR)).await.unwrap());
}

#[tokio::test]
async fn real_clamd_passes_clean_bytes() {
    for scanner in [real_clamd(), real_clamd_socket()] {
        assert_eq!(scanner.scan(clean_bytes(1000)).await.unwrap(), ScanVerdict::Clean);
        assert_eq!(scanner.scan(Bytes::new()).await.unwrap(), ScanVerdict::Clean, "an empty file is clean");
    }
}

#[tokio::test]
async fn real_clamd_passes_a_clean_multi_mib_file() {
    // Not a multiple of the chunk size, so the last chunk is a short one.
    let verdict = real_clamd().scan(clean_bytes(6 * 1024 * 1024 + 12_345)).await.unwrap();
    assert_eq!(verdict, ScanVerdict::Clean);
}

#[tokio::test]
async fn real_clamd_finds_eicar_after_a_mib_of_zeros() {
    let mut bytes = vec![0u8; 1024 * 1024];
    bytes.extend_from_slice(EICAR);
    bytes.extend_from_slice(&[0u8; 1000]);
    assert_eicar(real_clamd().scan(bytes.into()).await.unwrap());
}

#[tokio::test]
async fn real_clamd_answers_ping() {
    real_clamd().ping().await.unwrap();
    real_clamd_socket().ping().await.unwrap();
}

/// What the fake clamd does with a connection.
#[derive(Clone, Copy)]
enum Fake {
    /// Reads the whole stream, then answers this (a NUL is added).
    Answer(&'static str),
    /// Reads the first chunk, answers this and closes, as clamd does past StreamMaxLength.
    RefuseAfterFirstChunk(&'static str),
    /// Reads the whole stream and closes without a word.
    HangsUp,
    /// Accepts and never reads or answers.
    Silent,
}

/// A loopback clamd that speaks the INSTREAM framing and behaves as `fake` says; every
/// stream it read whole comes out of the receiver.
async fn fake_clamd(fake: Fake) -> (ClamAvScanner, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (streams, received) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let (conn, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(conn, fake, streams.clone()));
        }
    });
    (ClamAvScanner::from_address(&format!("tcp://{address}")).unwrap(), received)
}

async fn serve(mut conn: TcpStream, fake: Fake, streams: mpsc::Sender<Vec<u8>>) {
    if let Fake::Silent = fake {
        std::future::pending::<()>().await;
    }
    let mut command = Vec::new();
    while command.last() != Some(&0) {
        command.push(conn.read_u8().await.unwrap());
    }
    if command == b"zPING\0" {
        let answer = match fake {
            Fake::Answer(answer) => answer,
            _ => "PONG",
        };
        conn.write_all(format!("{answer}\0").as_bytes()).await.unwrap();
        return;
    }
    assert_eq!(command, b"zINSTREAM\0", "the scanner must send zINSTREAM");
    let mut stream = Vec::new();
    loop {
        let len = conn.read_u32().await.unwrap() as usize;
        if len == 0 {
            break;
        }
        assert!(len <= 1024 * 1024, "chunks must be of a sane size, got {len}");
        let start = stream.len();
        stream.resize(start + len, 0);
        conn.read_exact(&mut stream[start..]).await.unwrap();
        if let Fake::RefuseAfterFirstChunk(answer) = fake {
            conn.write_all(format!("{answer}\0").as_bytes()).await.unwrap();
            return;
        }
    }
    streams.send(stream).await.unwrap();
    if let Fake::Answer(answer) = fake {
        conn.write_all(format!("{answer}\0").as_bytes()).await.unwrap();
    }
}

#[tokio::test]
async fn the_stream_arrives_whole_in_length_prefixed_chunks() {
    let (scanner, mut received) = fake_clamd(Fake::Answer("stream: OK")).await;
    let bytes = clean_bytes(3 * 64 * 1024 + 7);
    assert_eq!(scanner.scan(bytes.clone()).await.unwrap(), ScanVerdict::Clean);
    assert_eq!(received.recv().await.unwrap(), bytes, "clamd must receive exactly the bytes scanned");
    let (scanner, _received) = fake_clamd(Fake::Answer("stream: Some.Virus-1 FOUND")).await;
    assert_eq!(
        scanner.scan(clean_bytes(10)).await.unwrap(),
        ScanVerdict::Infected { signature: "Some.Virus-1".into() }
    );
}

#[tokio::test]
async fn a_file_past_clamds_stream_limit_is_refused_as_invalid_not_passed() {
    let (scanner, _received) =
        fake_clamd(Fake::RefuseAfterFirstChunk("INSTREAM size limit exceeded. ERROR")).await;
    // Far more than the socket buffers hold, so clamd closes while the scanner still sends.
    let err = scanner.scan(clean_bytes(32 * 1024 * 1024)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(!err.is_retryable(), "the same bytes would fail the same way");
    assert!(err.to_string().contains("StreamMaxLength"), "the error must say which limit: {err}");
}

#[tokio::test]
async fn an_error_answer_is_unavailable() {
    let (scanner, _received) = fake_clamd(Fake::Answer("stream: Can't allocate memory ERROR")).await;
    let err = scanner.scan(clean_bytes(100)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_garbage_answer_is_unavailable() {
    for garbage in ["HTTP/1.1 400 Bad Request", "stream: OKAY", "stream:  FOUND", "UNKNOWN COMMAND"] {
        let (scanner, _received) = fake_clamd(Fake::Answer(garbage)).await;
        let err = scanner.scan(clean_bytes(100)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{garbage}: {err}");
    }
    let (scanner, _received) = fake_clamd(Fake::Answer("PANG")).await;
    assert_eq!(scanner.ping().await.unwrap_err().kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_unavailable() {
    let (scanner, mut received) = fake_clamd(Fake::HangsUp).await;
    let err = scanner.scan(clean_bytes(100)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(received.recv().await.unwrap().len(), 100, "the fake read the stream before hanging up");
}

#[tokio::test]
async fn a_clamd_that_never_answers_is_unavailable_after_the_timeout() {
    let (scanner, _received) = fake_clamd(Fake::Silent).await;
    let scanner = scanner.with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = scanner.scan(clean_bytes(100)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout must end the wait");
    assert_eq!(scanner.ping().await.unwrap_err().kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let scanner = ClamAvScanner::from_address(&address.to_string()).unwrap();
    let err = scanner.scan(Bytes::from_static(EICAR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(scanner.ping().await.unwrap_err().kind(), ErrorKind::Unavailable);
    let missing = ClamAvScanner::new(ClamdAddress::Unix("/nonexistent/clamd.sock".into()));
    assert_eq!(missing.scan(Bytes::from_static(EICAR)).await.unwrap_err().kind(), ErrorKind::Unavailable);
}

//! Helpers shared by the integration tests: in-process calls and raw loopback HTTP.

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use amp_core::{AmpConfig, ModelRegistryConfig};
use amp_server::AppState;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// A server state on the embedded defaults in a private data directory, which lives as
/// long as this value.
pub struct TestApp {
    pub state: AppState,
    _data_dir: tempfile::TempDir,
}

/// State on the embedded defaults, with a short grace period so shutdown tests are quick.
pub async fn test_app() -> TestApp {
    test_app_with(|_| {}).await
}

/// Like [`test_app`], after `adjust` changes the configuration.
pub async fn test_app_with(adjust: impl FnOnce(&mut AmpConfig)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = state_in(dir.path(), adjust).await;
    TestApp { state, _data_dir: dir }
}

/// Server state on the test defaults with its data in `dir`, after `adjust`.
pub async fn state_in(dir: &std::path::Path, adjust: impl FnOnce(&mut AmpConfig)) -> AppState {
    AppState::open(test_config(dir, adjust)).await.expect("the test configuration builds")
}

/// The test defaults with data in `dir`, after `adjust`.
fn test_config(dir: &std::path::Path, adjust: impl FnOnce(&mut AmpConfig)) -> AmpConfig {
    let mut config = AmpConfig { data_dir: dir.to_owned(), ..AmpConfig::default() };
    config.server.shutdown_grace_secs = 1;
    config.auth.jwt_secret = Some(amp_core::Secret::new("server-test-signing-key-0123456789"));
    // Most tests need several active accounts; tests of registration modes set their own.
    config.auth.registration = amp_core::config::RegistrationMode::Open;
    // Tests share the cores: one embedder thread holds its speed under contention.
    config.storage.embed_threads = 1;
    // scripts/test.sh fetches the local models there; without it uploads fail as unavailable.
    if let Some(models) = std::env::var_os("AMP_MODEL_DIR") {
        config.model_dir = models.into();
    }
    adjust(&mut config);
    config
}

/// A server whose registration is closed, with accounts for `emails` (password "correct
/// horse battery", emails verified, as data-source access lists need) made beforehand by a
/// server with open registration on the same data dir, which is then closed. Returns the
/// state and the accounts' access tokens, in order.
pub async fn closed_app_with_accounts(
    emails: &[&str],
    adjust: impl FnOnce(&mut AmpConfig),
) -> (TestApp, Vec<String>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    {
        let state = state_in(dir.path(), |_| {}).await;
        let open = router_of(state.clone());
        for email in emails {
            let body = serde_json::json!({"email": email, "password": "correct horse battery"});
            let r = send(open.clone(), Method::POST, "/auth/register", None, Some(body)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            let id: amp_core::UserId = r.body["id"].as_str().expect("an id").parse().expect("a user id");
            assert!(state.stores().users.mark_email_verified(id, email).await.expect("the store answers"));
        }
    }
    let config = test_config(dir.path(), |c| {
        c.auth.registration = amp_core::config::RegistrationMode::Closed;
        adjust(c);
    });
    let state = reopen(config).await;
    let app = router_of(state.clone());
    let mut tokens = Vec::new();
    for email in emails {
        let body = serde_json::json!({"email": email, "password": "correct horse battery"});
        let login = send(app.clone(), Method::POST, "/auth/login", None, Some(body)).await;
        tokens.push(login.body["access_token"].as_str().expect("an access token").to_owned());
    }
    (TestApp { state, _data_dir: dir }, tokens)
}

/// Opens a server on a data dir an earlier server in this process used. That server's
/// background work lets go of its index files shortly after it is dropped; until then
/// this one finds them still open, and waits.
pub async fn reopen(config: AmpConfig) -> AppState {
    let mut attempts = 0;
    loop {
        match AppState::open(config.clone()).await {
            Ok(state) => return state,
            Err(e) if attempts < 50 && e.to_string().contains("already open") => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the test configuration builds: {e:?}"),
        }
    }
}

/// [`reopen`] with the test defaults and data in `dir`, after `adjust`.
pub async fn reopen_in(dir: &std::path::Path, adjust: impl FnOnce(&mut AmpConfig)) -> AppState {
    reopen(test_config(dir, adjust)).await
}

fn router_of(state: AppState) -> Router {
    amp_server::router(state)
}

/// A response, read whole, with its body parsed as JSON.
pub struct JsonResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

/// Calls the router in-process, without a socket.
pub async fn call(app: Router, method: Method, path: &str) -> JsonResponse {
    send(app, method, path, None, None).await
}

/// Calls the router in-process with an optional bearer token and JSON body.
pub async fn send(
    app: Router,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> JsonResponse {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(json) => request
            .header("content-type", "application/json")
            .body(Body::from(json.to_string()))
            .expect("a valid request"),
        None => request.body(Body::empty()).expect("a valid request"),
    };
    let (status, headers, bytes) = exchange(app, request).await;
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    };
    JsonResponse { status, headers, body }
}

/// Sends a request in-process and reads the whole answer, whatever its type.
async fn exchange(app: Router, request: Request<Body>) -> (StatusCode, HeaderMap, axum::body::Bytes) {
    let response = app.oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("the body is readable").to_bytes();
    (status, headers, bytes)
}

/// Posts JSON as `bearer` and returns the answer as text (for event streams).
pub async fn post_text(
    app: &Router,
    path: &str,
    bearer: &str,
    body: serde_json::Value,
) -> (StatusCode, HeaderMap, String) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid request");
    let (status, headers, bytes) = exchange(app.clone(), request).await;
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

/// Registers a person with a fixed password, signs them in, and returns their access token.
pub async fn person(app: &Router, email: &str) -> String {
    let body = serde_json::json!({"email": email, "password": "correct horse battery"});
    send(app.clone(), Method::POST, "/auth/register", None, Some(body.clone())).await;
    let login = send(app.clone(), Method::POST, "/auth/login", None, Some(body)).await;
    login.body["access_token"].as_str().expect("sign-in returns an access token").to_owned()
}

/// Calls the router as `token`'s owner and returns the status and JSON body.
pub async fn call_as(
    app: &Router,
    method: Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let r = send(app.clone(), method, path, Some(token), body).await;
    (r.status, r.body)
}

/// Sends `GET path` over a real TCP connection and returns the status code and body.
///
/// Written by hand so the tests need no HTTP client; `Connection: close` lets the body
/// be read to the end of the stream.
pub async fn raw_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no response within 5 s"))??;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Uploads `bytes` as a file named `name` of type `media_type`, into `workspace` if given,
/// waits until it is processed (`wait=true`), and returns the status and JSON body.
pub async fn upload(
    app: &Router,
    token: &str,
    name: &str,
    media_type: &str,
    bytes: impl Into<Body>,
    workspace: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut uri = format!("/files?wait=true&name={name}");
    if let Some(w) = workspace {
        uri.push_str(&format!("&workspace={w}"));
    }
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", media_type)
        .body(bytes.into())
        .expect("a valid request");
    let (status, _, bytes) = exchange(app.clone(), request).await;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, body)
}

/// A registry whose one model, `m` (the default), is answered by the OpenAI-compatible
/// loopback `upstream` with this window and answer limit.
pub fn loopback_registry(
    upstream: &amp_providers::mock::MockServer,
    context_window: u32,
    max_tokens: u32,
) -> ModelRegistryConfig {
    serde_json::from_value(serde_json::json!({"default_model": "m", "models": {"m": {
        "provider": "OpenAICompatible", "context_window": context_window, "max_tokens": max_tokens,
        "tier": "Balanced", "deployments": [{"name": "loopback", "endpoint": format!("{}/v1", upstream.url())}]}}}))
    .expect("a valid registry")
}

/// Sends any request in-process (raw body, any headers) and returns status, headers and body.
pub async fn request_raw(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> (StatusCode, HeaderMap, axum::body::Bytes) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    exchange(app.clone(), request.body(body.into()).expect("a valid request")).await
}

/// A PDF with one page per text, each drawn in Helvetica, with a correct cross-reference
/// table: what a word processor's "save as PDF" makes, small enough to read by eye.
pub fn text_pdf(pages: &[&str]) -> Vec<u8> {
    let escape = |t: &str| t.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
    let mut objects: Vec<String> = Vec::new();
    let kids: Vec<String> = (0..pages.len()).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()));
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into());
    for (i, text) in pages.iter().enumerate() {
        let content = format!("BT /F1 12 Tf 72 720 Td ({}) Tj ET", escape(text));
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()));
    }
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1)
            .as_bytes(),
    );
    out
}

/// Polls a file's status until it is ready or failed (or 60 s pass) and returns the record.
pub async fn processed(app: &Router, token: &str, file: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = call_as(app, Method::GET, &format!("/files/{file}/status"), token, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let state = body["status"]["state"].as_str().unwrap_or_default().to_owned();
        if state == "ready" || state == "failed" || std::time::Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("a bound listener has an address").port()
}

/// A workspace ("Team") owned by `owner` with `members` (`(email, role)`), each of whom
/// joined by invitation and acceptance ([`join`]); returns its id.
pub async fn workspace(state: &AppState, app: &Router, owner: &str, members: &[(&str, &str)]) -> String {
    let (status, ws) =
        call_as(app, Method::POST, "/workspaces", owner, Some(serde_json::json!({"name": "Team"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{ws}");
    let id = ws["id"].as_str().expect("a workspace id").to_owned();
    for (email, role) in members {
        join(state, app, owner, &id, email, role).await;
    }
    id
}

/// Makes the person with `email` (password "correct horse battery") a member of `ws` with
/// `role` the way people become one: `owner` invites them, they accept. Their address is
/// marked verified first, as if they had opened the link mailed to them.
pub async fn join(
    state: &AppState,
    app: &Router,
    owner: &str,
    ws: &str,
    email: &str,
    role: &str,
) -> serde_json::Value {
    let invite = serde_json::json!({"email": email, "role": role});
    let (status, body) =
        call_as(app, Method::POST, &format!("/workspaces/{ws}/members"), owner, Some(invite)).await;
    if status == StatusCode::OK {
        return body["membership"].clone();
    }
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let user =
        state.stores().users.find_user_by_email(email).await.unwrap().expect("the invitee has an account");
    state.stores().users.mark_email_verified(user.id, email).await.unwrap();
    let login = serde_json::json!({"email": email, "password": "correct horse battery"});
    let pair = send(app.clone(), Method::POST, "/auth/login", None, Some(login)).await;
    let token = pair.body["access_token"].as_str().expect("the invitee signs in");
    let (status, membership) =
        call_as(app, Method::POST, &format!("/session/invitations/{ws}/accept"), token, None).await;
    assert_eq!(status, StatusCode::OK, "{membership}");
    membership
}

/// The python with the test clients (`openai`, `signxml`): `AMP_TEST_PYTHON` (set by
/// `scripts/test.sh`), else whatever the install script provides.
pub fn python() -> String {
    if let Ok(python) = std::env::var("AMP_TEST_PYTHON") {
        return python;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/python-client.sh"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "installing the Python clients failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("a path").trim().to_owned()
}

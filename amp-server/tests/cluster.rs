//! Two server processes sharing one database and one Redis act as one: sessions, sign-outs
//! and sync events cross between them. Uses the Redis `scripts/test.sh` starts.

mod support;

use std::time::Duration;

use amp_core::Secret;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use support::{TestApp, send, test_app_with};
use tower::ServiceExt;

/// A node with its own data dir (its vector index is its own) on the SQLite database in
/// `shared` and the test's Redis.
async fn node(shared: &std::path::Path, namespace: &str) -> TestApp {
    let url = std::env::var("AMP_TEST_REDIS_URL")
        .expect("AMP_TEST_REDIS_URL is not set: run the tests with scripts/test.sh, which starts Redis");
    let database = format!("sqlite://{}", shared.join("amp.db").display());
    let ns = namespace.to_owned();
    test_app_with(move |c| {
        c.database.url = Some(Secret::new(database));
        c.redis.url = Some(Secret::new(url));
        c.redis.namespace = ns;
    })
    .await
}

#[tokio::test]
async fn two_nodes_share_sessions_sign_outs_and_sync() {
    let shared = tempfile::tempdir().unwrap();
    let namespace = format!("amp-cluster-{}:", uuid_like());
    let (a, b) = (node(shared.path(), &namespace).await, node(shared.path(), &namespace).await);
    let (a, b) = (amp_server::router(a.state.clone()), amp_server::router(b.state.clone()));

    let creds = json!({"email": "ada@example.test", "password": "correct horse battery"});
    assert_eq!(
        send(a.clone(), Method::POST, "/auth/register", None, Some(creds.clone())).await.status,
        StatusCode::CREATED
    );
    let laptop = send(a.clone(), Method::POST, "/auth/login", None, Some(creds.clone())).await.body;
    let phone = send(b.clone(), Method::POST, "/auth/login", None, Some(creds)).await.body;
    let (laptop, phone) = (laptop["access_token"].as_str().unwrap(), phone["access_token"].as_str().unwrap());
    assert_eq!(send(b.clone(), Method::GET, "/auth/verify", Some(laptop), None).await.status, StatusCode::OK);

    // The phone follows on node B; the laptop changes preferences on node A.
    let request = Request::builder()
        .uri("/session/sync")
        .header("authorization", format!("Bearer {phone}"))
        .body(Body::empty())
        .unwrap();
    let mut stream = b.clone().oneshot(request).await.unwrap().into_body();
    let prefs = json!({"preferences": {"theme": "dark"}});
    send(a.clone(), Method::PUT, "/session/update", Some(laptop), Some(prefs)).await;
    let mut text = String::new();
    while !text.contains("\"theme\":\"dark\"") {
        let frame = tokio::time::timeout(Duration::from_secs(5), stream.frame())
            .await
            .expect("the change crosses nodes within 5 s")
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }

    // Signing out on A ends the session on B at once.
    assert_eq!(
        send(a.clone(), Method::DELETE, "/auth/logout", Some(laptop), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(b, Method::GET, "/auth/verify", Some(laptop), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn login_throttling_counts_across_nodes() {
    let shared = tempfile::tempdir().unwrap();
    let namespace = format!("amp-cluster-{}:", uuid_like());
    let a = node(shared.path(), &namespace).await;
    let b = node(shared.path(), &namespace).await;
    let limit = a.state.config().auth.login_attempts_per_account;
    let (a, b) = (amp_server::router(a.state.clone()), amp_server::router(b.state.clone()));
    let wrong = json!({"email": "ada@example.test", "password": "not the password"});
    for i in 0..limit {
        let node = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            send(node.clone(), Method::POST, "/auth/login", None, Some(wrong.clone())).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = send(b, Method::POST, "/auth/login", None, Some(wrong)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "attempts on both nodes count together");
}

fn uuid_like() -> String {
    amp_core::UserId::new().to_string()
}

/// Two nodes on the PostgreSQL `scripts/test.sh` starts, each with its own data dir: a file
/// uploaded through one is searched by a chat on the other (the vectors are in pgvector).
#[tokio::test]
async fn a_file_uploaded_on_one_node_answers_chats_on_another() {
    let database = std::env::var("AMP_TEST_POSTGRES_URL").expect(
        "AMP_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL",
    );
    let upstream = amp_providers::mock::MockServer::start(amp_providers::mock::openai::instant_upstream(4))
        .await
        .unwrap();
    let models = support::loopback_registry(&upstream, 8192, 1024);
    let on_postgres = |c: &mut amp_core::AmpConfig| {
        c.database.url = Some(Secret::new(database.clone()));
        c.models = models.clone();
    };
    let (a, b) = (test_app_with(on_postgres).await, test_app_with(on_postgres).await);
    let (a, b) = (amp_server::router(a.state.clone()), amp_server::router(b.state.clone()));

    let creds =
        json!({"email": format!("{}@example.test", uuid_like()), "password": "correct horse battery"});
    send(a.clone(), Method::POST, "/auth/register", None, Some(creds.clone())).await;
    let token = send(a.clone(), Method::POST, "/auth/login", None, Some(creds)).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, file) =
        support::upload(&a, &token, "policy.txt", "text/plain", "Refunds take five business days.", None)
            .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");

    let ask = json!({"message": "How long do refunds take?"});
    let answer = send(b, Method::POST, "/chat/send", Some(&token), Some(ask)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["sources"][0]["file"], file["id"]);
}

//! OpenAI's official Python client, unchanged, against a running AMP server: chat,
//! streaming with usage, the model list, an unknown model and a wrong key
//! (`tests/openai_client.py`). The client is installed by `scripts/python-client.sh`.

mod support;

use std::path::Path;
use std::process::Command;

use amp_providers::mock::MockServer;
use amp_providers::mock::openai;
use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{call_as, person, python, test_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_client_works_unchanged() {
    let upstream = MockServer::start(openai::instant_upstream(4)).await.unwrap();
    let models = json!({"default_model": "mock-4o", "models": {"mock-4o": {
        "provider": "OpenAICompatible", "context_window": 8192, "max_tokens": 1024, "tier": "Balanced",
        "deployments": [{"name": "loopback", "endpoint": format!("{}/v1", upstream.url())}]}}});
    let test_app = test_app_with(|c| c.models = serde_json::from_value(models).unwrap()).await;
    let app = amp_server::router(test_app.state.clone());
    let token = person(&app, "py@example.com").await;
    let (status, key) =
        call_as(&app, Method::POST, "/auth/api-keys", &token, Some(json!({"name": "py"}))).await;
    assert_eq!(status, StatusCode::CREATED);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(amp_server::serve(listener, test_app.state.clone(), async {
        let _ = stopped.await;
    }));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let python = python();
    let key = key["key"].as_str().unwrap().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("AMP_BASE_URL", format!("http://{addr}/v1"))
            .env("AMP_API_KEY", key)
            .env("AMP_MODEL", "mock-4o")
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert!(
        output.status.success(),
        "the openai client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

//! The OpenAI-compatible embedder against the loopback mock.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use amp_core::model::DeploymentTimeouts;
use amp_core::{Embedder, ErrorKind, Secret};
use amp_providers::chat::openai::OpenAiFlavor;
use amp_providers::embed::openai::{OpenAiEmbedder, OpenAiEmbedderConfig};
use amp_providers::mock::openai as wire;
use amp_providers::mock::{MockResponse, MockServer};
use serde_json::{Value, json};
use support::{KEY, assert_no_key, generous, timeout_operation, upstream};

const DIM: usize = 3;

fn config(server: &MockServer) -> OpenAiEmbedderConfig {
    let mut config =
        OpenAiEmbedderConfig::openai("openai:embed", "text-embedding-3-small", Secret::new(KEY), DIM);
    config.base_url = format!("{}/v1", server.url());
    config.timeouts = generous();
    config.batch_size = 2;
    config
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("passage {i}")).collect()
}

/// Answers each batch with vectors `[k+1, 0, 0]` for its k-th input — scaled so the client
/// must normalize — listed in reverse order so the client must reorder by `index`.
fn reversed_unnormalized(request: &amp_providers::mock::RecordedRequest) -> MockResponse {
    let body = request.json().unwrap();
    let inputs = body["input"].as_array().unwrap();
    let vectors: Vec<(usize, Vec<f32>)> = (0..inputs.len())
        .rev()
        .map(|k| {
            let n: f32 = inputs[k].as_str().unwrap().trim_start_matches("passage ").parse().unwrap();
            (k, vec![n + 1.0, n + 1.0, 0.0])
        })
        .collect();
    MockResponse::json_text(200, wire::embeddings("text-embedding-3-small", &vectors))
}

#[tokio::test]
async fn inputs_are_batched_reordered_by_index_and_normalized() {
    let server = MockServer::start(reversed_unnormalized).await.unwrap();
    let embedder = OpenAiEmbedder::new(config(&server)).unwrap();
    assert_eq!((embedder.dimension(), embedder.preferred_batch_size()), (DIM, 2));

    let vectors = embedder.embed(&texts(5)).await.unwrap();
    assert_eq!(vectors.len(), 5);
    let half = std::f32::consts::FRAC_1_SQRT_2;
    for v in &vectors {
        assert!((v[0] - half).abs() < 1e-6 && (v[1] - half).abs() < 1e-6 && v[2] == 0.0, "{v:?}");
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
    }

    let requests = server.requests();
    let batches: Vec<Value> = requests.iter().map(|r| r.json().unwrap()["input"].clone()).collect();
    assert_eq!(
        batches,
        vec![json!(["passage 0", "passage 1"]), json!(["passage 2", "passage 3"]), json!(["passage 4"])]
    );
    assert_eq!(requests[0].target, "/v1/embeddings");
    assert_eq!(requests[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(requests[0].json().unwrap()["model"], json!("text-embedding-3-small"));
}

#[tokio::test]
async fn order_follows_the_input_not_the_answer() {
    // Distinct directions per input, so a mix-up would show.
    let seen = Mutex::new(0_usize);
    let server = MockServer::start(move |request| {
        let n = request.json().unwrap()["input"].as_array().unwrap().len();
        let mut batch = seen.lock().unwrap();
        let vectors: Vec<(usize, Vec<f32>)> = (0..n)
            .rev()
            .map(|k| {
                let mut v = vec![0.0; DIM];
                v[(*batch * 2 + k) % DIM] = 2.0;
                (k, v)
            })
            .collect();
        *batch += 1;
        MockResponse::json_text(200, wire::embeddings("m", &vectors))
    })
    .await
    .unwrap();
    let vectors = OpenAiEmbedder::new(config(&server)).unwrap().embed(&texts(3)).await.unwrap();
    assert_eq!(vectors, vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]]);
}

#[tokio::test]
async fn a_vector_of_the_wrong_dimension_is_a_non_retryable_upstream_error() {
    let server =
        MockServer::always(MockResponse::json_text(200, wire::embeddings("m", &[(0, vec![1.0, 0.0])])))
            .await
            .unwrap();
    let err = OpenAiEmbedder::new(config(&server)).unwrap().embed(&texts(1)).await.unwrap_err();
    assert_eq!(upstream(&err), (None, false, None));
    assert!(err.to_string().contains("dimension 2 where 3"), "{err}");
}

#[tokio::test]
async fn too_few_vectors_or_a_repeated_index_is_an_error() {
    let server = MockServer::scripted([
        MockResponse::json_text(200, wire::embeddings("m", &[(0, vec![1.0, 0.0, 0.0])])),
        MockResponse::json_text(
            200,
            wire::embeddings("m", &[(0, vec![1.0, 0.0, 0.0]), (0, vec![0.0, 1.0, 0.0])]),
        ),
    ])
    .await
    .unwrap();
    let embedder = OpenAiEmbedder::new(config(&server)).unwrap();
    assert!(embedder.embed(&texts(2)).await.unwrap_err().to_string().contains("1 vectors for 2 inputs"));
    assert!(embedder.embed(&texts(2)).await.unwrap_err().to_string().contains("index 0 twice"));
}

#[tokio::test]
async fn no_inputs_need_no_request() {
    let server = MockServer::always(MockResponse::stall()).await.unwrap();
    assert!(OpenAiEmbedder::new(config(&server)).unwrap().embed(&[]).await.unwrap().is_empty());
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn rate_limits_are_retryable_with_retry_after() {
    let server = MockServer::always(
        wire::error_response(429, "Rate limit reached", "requests", Some("rate_limit_exceeded"))
            .with_header("retry-after", "4"),
    )
    .await
    .unwrap();
    let err = OpenAiEmbedder::new(config(&server)).unwrap().embed(&texts(1)).await.unwrap_err();
    assert_eq!(upstream(&err), (Some(429), true, Some(Duration::from_secs(4))));
}

#[tokio::test]
async fn an_echoed_key_never_reaches_the_error() {
    let server = MockServer::always(wire::error_response(
        401,
        &format!("Incorrect API key provided: {KEY}."),
        "invalid_request_error",
        Some("invalid_api_key"),
    ))
    .await
    .unwrap();
    let err = OpenAiEmbedder::new(config(&server)).unwrap().embed(&texts(1)).await.unwrap_err();
    assert_eq!(upstream(&err), (Some(401), false, None));
    assert_no_key(&err);
}

#[tokio::test]
async fn an_input_too_long_maps_to_context_window_exceeded() {
    let server = MockServer::always(wire::error_response(
        400,
        "This model's maximum context length is 8192 tokens, however you requested 9000 tokens (9000 in your prompt; 0 for the completion). Please reduce your prompt; or completion length.",
        "invalid_request_error",
        None,
    ))
    .await
    .unwrap();
    let err = OpenAiEmbedder::new(config(&server)).unwrap().embed(&texts(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextWindowExceeded, "{err:?}");
}

#[tokio::test]
async fn an_answer_not_in_time_is_a_timeout() {
    let server = MockServer::always(MockResponse::stall()).await.unwrap();
    let mut config = config(&server);
    config.timeouts = DeploymentTimeouts { first_token_ms: 300, ..generous() };
    let err = OpenAiEmbedder::new(config).unwrap().embed(&texts(1)).await.unwrap_err();
    assert!(timeout_operation(&err).contains("openai:embed"), "{err}");
}

#[tokio::test]
async fn azure_embeddings_use_the_deployment_url_and_api_key_header() {
    let server =
        MockServer::always(MockResponse::json_text(200, wire::embeddings("m", &[(0, vec![0.0, 3.0, 4.0])])))
            .await
            .unwrap();
    let mut config = config(&server);
    config.flavor = OpenAiFlavor::Azure { api_version: "2024-10-21".into() };
    config.base_url = format!("{}/openai/deployments/embed-small", server.url());
    let vectors = OpenAiEmbedder::new(config).unwrap().embed(&texts(1)).await.unwrap();
    assert_eq!(vectors, vec![vec![0.0, 0.6, 0.8]]);
    let sent = server.last_request().unwrap();
    assert_eq!(sent.target, "/openai/deployments/embed-small/embeddings?api-version=2024-10-21");
    assert_eq!(sent.header("api-key"), Some(KEY));
}

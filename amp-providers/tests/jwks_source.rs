//! `HttpJwksSource` against a loopback server.

use std::time::Duration;

use amp_core::{ErrorKind, JwksSource};
use amp_providers::jwks::HttpJwksSource;
use amp_providers::mock::{MockResponse, MockServer};
use serde_json::json;

#[tokio::test]
async fn fetches_the_jwks_document_from_the_configured_url() {
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]});
    let server = MockServer::always(MockResponse::json(200, &jwks)).await.unwrap();
    let source = HttpJwksSource::new(format!("{}/pf/JWKS", server.url())).unwrap();
    assert_eq!(source.fetch().await.unwrap(), jwks);
    assert_eq!(server.requests()[0].path(), "/pf/JWKS");
}

#[tokio::test]
async fn an_error_status_or_a_body_without_keys_is_unavailable() {
    let server = MockServer::scripted([
        MockResponse::json(500, &json!({"error": "down"})),
        MockResponse::json(200, &json!({"not": "a jwks"})),
    ])
    .await
    .unwrap();
    let source = HttpJwksSource::new(server.url()).unwrap();
    for _ in 0..2 {
        assert_eq!(source.fetch().await.unwrap_err().kind(), ErrorKind::Unavailable);
    }
}

#[tokio::test]
async fn a_provider_that_never_answers_is_unavailable_after_the_timeout() {
    let server = MockServer::always(MockResponse::stall()).await.unwrap();
    let source = HttpJwksSource::with_timeout(server.url(), Duration::from_millis(200)).unwrap();
    let err = source.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[test]
fn a_jwks_url_that_is_not_a_url_is_refused_at_start() {
    assert_eq!(HttpJwksSource::new("not a url").unwrap_err().kind(), ErrorKind::InvalidInput);
}

//! `POST /auth/sso` end to end: the server fetches the provider's JWKS over HTTP from a
//! loopback server, as it would from the real provider.

#[path = "../../amp-agents/tests/support/oidc.rs"]
mod oidc;
mod support;

use amp_core::config::OidcConfig;
use amp_providers::mock::{MockResponse, MockServer};
use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{send, test_app_with};

fn sso_config(jwks_url: String) -> OidcConfig {
    OidcConfig {
        issuer: oidc::ISSUER.into(),
        audience: oidc::AUDIENCE.into(),
        jwks_url,
        email_claim: "email".into(),
        jwks_refresh_min_secs: 30,
        assume_email_verified: false,
        link_verified_emails: false,
        max_token_age_secs: 3600,
    }
}

#[tokio::test]
async fn an_id_token_signed_with_a_published_key_signs_in_and_a_forged_one_is_401() {
    let provider = MockServer::always(MockResponse::json(200, &oidc::jwks(&[(oidc::KEY_1, oidc::KID_1)])))
        .await
        .unwrap();
    let jwks_url = format!("{}/pf/JWKS", provider.url());
    let t = test_app_with(|c| c.auth.oidc = Some(sso_config(jwks_url))).await;
    let app = amp_server::router(t.state.clone());

    let id_token = oidc::sign(&oidc::claims("ping-user-1", "ada@example.test"), oidc::KEY_1, oidc::KID_1);
    let body = json!({"id_token": id_token, "device_name": "Firefox on Linux"});
    let r = send(app.clone(), Method::POST, "/auth/sso", None, Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["session"]["device_name"], "Firefox on Linux");
    let access = r.body["access_token"].as_str().unwrap();
    let me = send(app.clone(), Method::GET, "/session/current", Some(access), None).await;
    assert_eq!(me.body["user"]["email"], "ada@example.test");
    assert_eq!(provider.requests()[0].path(), "/pf/JWKS");

    let forged = oidc::sign(&oidc::claims("ping-user-1", "ada@example.test"), oidc::KEY_2, oidc::KID_1);
    let r = send(app, Method::POST, "/auth/sso", None, Some(json!({"id_token": forged}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], "unauthenticated");
    assert!(!r.body.to_string().contains(&forged), "the token must not be echoed");
}

#[tokio::test]
async fn a_jwks_endpoint_that_fails_is_503() {
    let provider = MockServer::always(MockResponse::json(500, &json!({"error": "down"}))).await.unwrap();
    let t = test_app_with(|c| c.auth.oidc = Some(sso_config(provider.url()))).await;
    let id_token = oidc::sign(&oidc::claims("ping-user-1", "ada@example.test"), oidc::KEY_1, oidc::KID_1);
    let r = send(
        amp_server::router(t.state.clone()),
        Method::POST,
        "/auth/sso",
        None,
        Some(json!({"id_token": id_token})),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    let body = r.body.to_string();
    assert!(
        !body.contains(&provider.url()) && !body.contains("127.0.0.1"),
        "the provider's URL is not echoed: {body}"
    );
}

#[tokio::test]
async fn a_first_sso_sign_in_never_takes_over_a_password_account_and_its_owner_links_it() {
    let provider = MockServer::always(MockResponse::json(200, &oidc::jwks(&[(oidc::KEY_1, oidc::KID_1)])))
        .await
        .unwrap();
    let t = test_app_with(|c| c.auth.oidc = Some(sso_config(format!("{}/jwks", provider.url())))).await;
    let app = amp_server::router(t.state.clone());
    let local = json!({"email": "ada@example.test", "password": "correct horse battery"});
    send(app.clone(), Method::POST, "/auth/register", None, Some(local.clone())).await;

    let id_token = oidc::sign(&oidc::claims("ping-user-1", "ada@example.test"), oidc::KEY_1, oidc::KID_1);
    let r = send(app.clone(), Method::POST, "/auth/sso", None, Some(json!({"id_token": id_token}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.body.get("access_token").is_none());

    let pair = send(app.clone(), Method::POST, "/auth/login", None, Some(local)).await;
    let access = pair.body["access_token"].as_str().unwrap();
    let r =
        send(app.clone(), Method::POST, "/auth/sso/link", None, Some(json!({"id_token": id_token}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "linking needs the account's own sign-in");
    let r =
        send(app.clone(), Method::POST, "/auth/sso/link", Some(access), Some(json!({"id_token": id_token})))
            .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = send(app.clone(), Method::POST, "/auth/sso", None, Some(json!({"id_token": id_token}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["session"]["user"], pair.body["session"]["user"]);
}

#[tokio::test]
async fn sso_without_oidc_configuration_is_400() {
    let t = test_app_with(|_| {}).await;
    let id_token = oidc::sign(&oidc::claims("ping-user-1", "ada@example.test"), oidc::KEY_1, oidc::KID_1);
    let r = send(
        amp_server::router(t.state.clone()),
        Method::POST,
        "/auth/sso",
        None,
        Some(json!({"id_token": id_token})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["message"], "single sign-on is not configured", "{:?}", r.body);
}

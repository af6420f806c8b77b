//! Secrets never reach `Debug` output or the log: every type that holds one is formatted,
//! and the real binary's log of a full round of sign-ins, refreshes, keys and failures is
//! searched for every secret it was handed.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amp_agents::session::{DeviceLogin, NewAccount, Registration, TokenPair};
use amp_core::config::{AuthConfig, DatabaseConfig, RedisConfig, S3Config};
use amp_core::{Deployment, Mail, Secret};
use serde_json::{Value, json};

const SECRET: &str = "s3cr3t-Value-Nobody-Else-Knows";

fn assert_hidden(what: &str, debug: String) {
    assert!(!debug.contains(SECRET), "{what} shows its secret: {debug}");
}

#[test]
fn types_that_hold_secrets_keep_them_out_of_debug() {
    let secret = || Secret::new(SECRET);
    assert_hidden("Secret", format!("{:?} {}", secret(), secret()));
    assert_hidden(
        "Registration",
        format!(
            "{:?}",
            Registration { email: "a@example.test".into(), password: SECRET.into(), display_name: None }
        ),
    );
    let account = NewAccount {
        email: "a@example.test".into(),
        password: Some(SECRET.into()),
        display_name: None,
        admin: false,
    };
    assert_hidden("NewAccount", format!("{account:?}"));
    let session = amp_core::DeviceSession {
        id: amp_core::SessionId::new(),
        user: amp_core::UserId::new(),
        device: amp_core::DeviceId::new(),
        device_name: "laptop".into(),
        created_at: chrono::Utc::now(),
        last_seen_at: chrono::Utc::now(),
        expires_at: chrono::Utc::now(),
        revoked_at: None,
        minted_by: None,
    };
    let pair = TokenPair {
        access_token: SECRET.into(),
        token_type: "Bearer".into(),
        expires_in: 900,
        refresh_token: SECRET.into(),
        session,
    };
    assert_hidden("TokenPair", format!("{pair:?}"));
    assert_hidden(
        "Mail",
        format!("{:?}", Mail { to: "a@example.test".into(), subject: "s".into(), text: SECRET.into() }),
    );
    assert_hidden("DeviceLogin", format!("{:?}", DeviceLogin::default()));
    assert_hidden(
        "AuthConfig",
        format!("{:?}", AuthConfig { jwt_secret: Some(secret()), ..AuthConfig::default() }),
    );
    assert_hidden(
        "DatabaseConfig",
        format!("{:?}", DatabaseConfig { url: Some(secret()), ..DatabaseConfig::default() }),
    );
    assert_hidden(
        "RedisConfig",
        format!("{:?}", RedisConfig { url: Some(secret()), ..RedisConfig::default() }),
    );
    let s3: S3Config = serde_json::from_value(json!({
        "bucket": "b", "access_key": SECRET, "secret_key": SECRET
    }))
    .expect("an S3 config");
    assert_hidden("S3Config", format!("{s3:?}"));
    let mut deployment = Deployment::named("east");
    deployment.api_key = Some(secret());
    deployment.headers = BTreeMap::from([("x-api-key".to_owned(), SECRET.to_owned())]);
    let debug = format!("{deployment:?}");
    assert_hidden("Deployment", debug.clone());
    assert!(debug.contains("x-api-key"), "header names stay visible: {debug}");
}

/// Kills the child when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn the_servers_log_of_sign_ins_keys_and_failures_holds_none_of_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let jwt = format!("jwt-{SECRET}-0123456789");
    let config = dir.path().join("amp.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[auth]\njwt_secret = \"${{AMP_TEST_JWT}}\"\nregistration = \"open\"\nmail_dir = \"mail\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_amp-server"));
    command.arg("--config").arg(&config).arg("--listen").arg(addr.to_string()).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AMP") {
            command.env_remove(name);
        }
    }
    command.env("AMP_TEST_JWT", &jwt).env("RUST_LOG", "debug").stdout(log.try_clone().unwrap()).stderr(log);
    let server = Server(command.spawn().expect("the binary starts"));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let password = format!("pw-{SECRET}");
    let wrong = format!("wrong-{SECRET}");
    let mut secrets = vec![password.clone(), wrong.clone(), jwt.clone()];
    post("/auth/register", None, json!({"email": "ada@example.test", "password": password})).await.unwrap();
    post("/auth/login", None, json!({"email": "ada@example.test", "password": wrong})).await.unwrap();
    let pair: Value = post("/auth/login", None, json!({"email": "ada@example.test", "password": password}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let next: Value =
        post("/auth/refresh", None, json!({"refresh_token": refresh})).await.unwrap().json().await.unwrap();
    // A replay after the grace ends the session; a made-up token is refused.
    post("/auth/refresh", None, json!({"refresh_token": format!("amprt_{SECRET}")})).await.unwrap();
    let key: Value =
        post("/auth/api-keys", Some(&access), json!({"name": "ci"})).await.unwrap().json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let r = client.get(format!("{base}/auth/verify")).bearer_auth(&key).send().await.unwrap();
    assert!(r.status().is_success());
    client.get(format!("{base}/auth/verify")).bearer_auth(format!("amp_{SECRET}")).send().await.unwrap();
    client.get(format!("{base}/auth/verify")).bearer_auth(format!("ey{SECRET}")).send().await.unwrap();
    let verification = std::fs::read_dir(dir.path().join("data/mail"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find_map(|m| m.split("token=").nth(1).map(|t| t.split_whitespace().next().unwrap().to_owned()))
        .expect("a verification mail");
    client.get(format!("{base}/auth/verify-email?token={verification}")).send().await.unwrap();
    post("/auth/verify-email", Some(&access), json!({"token": verification})).await.unwrap();
    secrets.extend([
        access,
        refresh,
        next["access_token"].as_str().unwrap().to_owned(),
        next["refresh_token"].as_str().unwrap().to_owned(),
        key,
        verification,
    ]);
    drop(server);

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("request"), "the log was written at debug level: {log}");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "the log holds a secret ({}…)", &secret[..8]);
    }
    assert!(!log.contains(SECRET), "the log holds part of a secret");
}

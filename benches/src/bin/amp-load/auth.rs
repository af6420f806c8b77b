//! Signs in the way a client application does: register an account, log in, create an
//! API key. The load then authenticates with the key, as integrations do.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// The account the harness makes in the throwaway server.
const EMAIL: &str = "amp-load@example.com";
/// At least the ten characters the server asks of a password.
const PASSWORD: &str = "amp-load-harness-password";

/// Registers, logs in and returns a fresh API key of the new account.
pub async fn api_key(client: &Client, base_url: &str) -> Result<String, String> {
    let registration = json!({"email": EMAIL, "password": PASSWORD, "display_name": "amp-load"});
    call(client, &format!("{base_url}/auth/register"), None, &registration, StatusCode::CREATED).await?;

    let login = json!({"email": EMAIL, "password": PASSWORD, "device_name": "amp-load"});
    let tokens = call(client, &format!("{base_url}/auth/login"), None, &login, StatusCode::OK).await?;
    let access = field(&tokens, "access_token", "POST /auth/login")?;

    let key_request = json!({"name": "amp-load"});
    let key =
        call(client, &format!("{base_url}/auth/api-keys"), Some(&access), &key_request, StatusCode::CREATED)
            .await?;
    field(&key, "key", "POST /auth/api-keys")
}

/// POSTs `body` and returns the JSON answer, or an error quoting the unexpected one.
async fn call(
    client: &Client,
    url: &str,
    bearer: Option<&str>,
    body: &Value,
    expected: StatusCode,
) -> Result<Value, String> {
    let mut request = client.post(url).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("POST {url}: reading the answer: {e}"))?;
    if status != expected {
        return Err(format!("POST {url} answered HTTP {status} (expected {expected}): {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("POST {url}: the answer is not JSON ({e}): {text}"))
}

fn field(answer: &Value, name: &str, call: &str) -> Result<String, String> {
    answer
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{call}: no string `{name}` in the answer"))
}

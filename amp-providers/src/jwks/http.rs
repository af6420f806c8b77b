//! The JWKS fetched over HTTP from the provider's `jwks_uri`.

use std::time::Duration;

use amp_core::{Error, JwksSource, Result};
use async_trait::async_trait;

use crate::http::build_client;

/// A JWKS document is small; one that takes longer than this is not coming, and every
/// sign-in waiting on it is a person staring at a spinner.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches a provider's JWKS with `GET jwks_url`.
///
/// Every failure (unreachable, timeout, non-2xx, a body that is not JSON) is
/// [`Error::Unavailable`]: the provider is at fault, not the person signing in.
///
/// ```no_run
/// # async fn run() -> amp_core::Result<()> {
/// use amp_core::JwksSource;
/// use amp_providers::jwks::HttpJwksSource;
///
/// let source = HttpJwksSource::new("https://sso.example.com/pf/JWKS")?;
/// let jwks = source.fetch().await?;
/// # let _ = jwks; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpJwksSource {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
}

impl HttpJwksSource {
    /// A source for `jwks_url`, with a 5-second limit on each fetch.
    pub fn new(jwks_url: impl Into<String>) -> Result<Self> {
        Self::with_timeout(jwks_url, FETCH_TIMEOUT)
    }

    /// A source for `jwks_url` whose fetches give up after `timeout`. A URL that does not
    /// parse is [`Error::InvalidInput`], at start rather than at the first sign-in.
    pub fn with_timeout(jwks_url: impl Into<String>, timeout: Duration) -> Result<Self> {
        let url = jwks_url.into();
        if reqwest::Url::parse(&url).is_err() {
            return Err(Error::invalid_input(format!("auth.oidc.jwks_url `{url}` is not a URL")));
        }
        Ok(HttpJwksSource { client: build_client(timeout)?, url, timeout })
    }
}

#[async_trait]
impl JwksSource for HttpJwksSource {
    async fn fetch(&self) -> Result<serde_json::Value> {
        // The URL is configuration, not a secret, so it may appear in errors and logs.
        let unavailable = |why: String| {
            tracing::warn!(url = %self.url, %why, "fetching the OIDC provider's keys failed");
            Error::unavailable(format!("the single sign-on provider's keys could not be fetched: {why}"))
        };
        let response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| unavailable(if e.is_timeout() { "timed out".to_owned() } else { e.to_string() }))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {}", status.as_u16())));
        }
        let jwks: serde_json::Value =
            response.json().await.map_err(|e| unavailable(format!("the answer is not JSON ({e})")))?;
        if !jwks.get("keys").is_some_and(serde_json::Value::is_array) {
            return Err(unavailable("the answer has no `keys` array".to_owned()));
        }
        Ok(jwks)
    }
}

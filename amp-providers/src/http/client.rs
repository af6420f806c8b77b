//! Building the HTTP client and sending one request under a deployment's deadlines.

use std::collections::BTreeMap;
use std::time::Duration;

use amp_core::{Error, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::error::transport_error;
use super::timeouts::StreamClock;

/// How long an idle pooled connection is kept. Providers close idle connections after a
/// minute or two; reusing one they already closed costs a failed request.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// Idle connections kept per upstream host. A burst opens as many connections as it has
/// calls in flight; beyond this many, they are closed as they go idle instead of holding
/// their buffers until `POOL_IDLE` runs out.
const POOL_MAX_IDLE_PER_HOST: usize = 32;

/// A client for the remote providers: the given connect timeout, pooled keep-alive
/// connections, `TCP_NODELAY` (stream chunks are small and latency-bound).
///
/// One client may be shared by many deployments (`with_client` constructors), so they
/// share one connection pool; its connect timeout then applies to all of them.
pub fn build_client(connect_timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .tcp_nodelay(true)
        .user_agent(concat!("amp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal("could not build the HTTP client", e))
}

/// Sends a request and waits for the response head within the clock's current deadline.
///
/// Transport failures and timeouts become errors naming `service`; any HTTP status is
/// returned as a response, for the provider to map with its own error format.
pub async fn send(
    request: reqwest::RequestBuilder,
    clock: &StreamClock,
    service: &str,
) -> Result<reqwest::Response> {
    match clock.run(request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(transport_error(service, err, clock)),
        Err(stage) => Err(clock.error(stage, service)),
    }
}

/// Configured extra headers as a header map; a name or value HTTP cannot carry is an
/// [`Error::InvalidInput`] naming the deployment, at start rather than at the first call.
pub fn extra_headers(service: &str, extra: &BTreeMap<String, String>) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in extra {
        let invalid =
            || Error::invalid_input(format!("`{service}`: header `{name}` is not a valid HTTP header"));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        // Extra headers often carry gateway tokens; keep them out of `Debug` output.
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

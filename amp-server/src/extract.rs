//! Request extractors: the authenticated caller, the client address, and JSON bodies that
//! fail with AMP's error shape.

use std::net::{IpAddr, SocketAddr};

use amp_agents::Principal;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller, authenticated from `Authorization: Bearer <access token or API key>` by the
/// Session agent (which also checks the session is still live).
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::from(amp_core::Error::unauthenticated("missing bearer token")))?;
        Ok(Caller(state.session().authenticate(bearer).await?))
    }
}

/// The client's address: the connection's peer, or, when the peer is one of
/// `server.trusted_proxies`, the client its `X-Forwarded-For` names. `None` when the server
/// was started without connection info.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<String>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let client = client_ip(peer, forwarded, &state.config().server.trusted_proxies);
        Ok(ClientAddr(client.map(|ip| ip.to_string())))
    }
}

/// Each proxy appends the address it received the request from, so the list is read from
/// the right: the first address that is not a trusted proxy is the client. An entry that is
/// not an address ends the walk at the last trusted hop, since what lies beyond it is
/// whatever the client chose to write.
fn client_ip<'a>(
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let mut client = peer?;
    if !trusted.contains(&client) {
        return Some(client);
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !trusted.contains(&ip) {
            break;
        }
    }
    Some(client)
}

/// A JSON body; malformed JSON is 400, a wrong content type 415, an oversized body 413,
/// all in AMP's error shape.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) =
            axum::Json::<T>::from_request(req, state).await.map_err(|e: JsonRejection| ApiError::from(e))?;
        Ok(Body(value))
    }
}

/// A query string; one that does not parse is 400 in AMP's error shape.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::from(amp_core::Error::invalid_input(e.body_text())))?;
        Ok(Query(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        let trusted = [proxy, ip("10.0.0.2")];
        // Not from a proxy: the header is the client's own claim and is ignored.
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), ["198.51.100.1"].into_iter(), &trusted),
            Some(ip("203.0.113.9"))
        );
        // From a proxy: the right-most address that is not a proxy.
        let chain = ["198.51.100.1, 203.0.113.7", "10.0.0.2"];
        assert_eq!(client_ip(Some(proxy), chain.into_iter(), &trusted), Some(ip("203.0.113.7")));
        // A forged left part does not matter; garbage stops at the last trusted hop.
        assert_eq!(
            client_ip(Some(proxy), ["not-an-ip, 10.0.0.2"].into_iter(), &trusted),
            Some(ip("10.0.0.2"))
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(Some(proxy), std::iter::empty(), &trusted), Some(proxy));
        assert_eq!(client_ip(None, std::iter::empty(), &trusted), None);
    }
}

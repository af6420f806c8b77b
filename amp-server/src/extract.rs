//! Request extractors: the authenticated caller, the client address, and JSON bodies that
//! fail with AMP's error shape.

use std::net::SocketAddr;

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

/// The peer address of the connection, when the server was started with connection info.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())))
    }
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

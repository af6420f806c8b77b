//! Where the signing keys of an external identity provider come from.

use async_trait::async_trait;

use crate::error::Result;

/// The published signing keys (a JWKS document, RFC 7517) of an OpenID Connect provider.
///
/// Implementations only fetch; parsing, caching and deciding when to fetch again belong
/// to the verifier, so every source behaves the same under key rotation.
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The current JWKS document, `{"keys": [...]}`. A provider that cannot be reached
    /// is [`Error::Unavailable`](crate::Error::Unavailable), so callers answer 503 rather
    /// than rejecting the sign-in as invalid.
    async fn fetch(&self) -> Result<serde_json::Value>;
}

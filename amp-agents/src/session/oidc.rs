//! Verifying ID tokens of an external OpenID Connect provider against its published keys.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use amp_core::config::OidcConfig;
use amp_core::store::ExternalIdentity;
use amp_core::{Error, JwksSource, Result};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Clock skew tolerated on `exp` between AMP and the provider.
const LEEWAY_SECS: u64 = 30;

/// What every rejected token gets: the reason goes to the debug log, never to the caller,
/// and the token itself goes nowhere.
fn invalid() -> Error {
    Error::unauthenticated("invalid ID token")
}

/// The claims of a verified ID token that sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedIdToken {
    /// `iss` and `sub`: who the person is at the provider.
    pub identity: ExternalIdentity,
    /// The configured email claim, when present.
    pub email: Option<String>,
    /// `false` only when the provider says outright the email is not verified.
    pub email_verified: bool,
    /// The `name` claim, when present.
    pub name: Option<String>,
}

/// A usable signing key and the one algorithm it may be used with.
struct SigningKey {
    key: DecodingKey,
    algorithm: Algorithm,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<SigningKey>>,
    /// When the JWKS was last fetched, and whether that worked.
    last_fetch: Option<(Instant, bool)>,
}

/// Checks ID tokens: signature by a key of the provider's JWKS, `iss`, `aud`, `exp`, `sub`.
///
/// Keys are cached by `kid`. A token naming an unknown `kid` triggers one fetch of the
/// JWKS (the provider may have rotated its keys), at most once per
/// `jwks_refresh_min_secs`; fetches are serialized so a burst of sign-ins fetches once.
pub(crate) struct OidcVerifier {
    source: Arc<dyn JwksSource>,
    config: OidcConfig,
    cache: RwLock<KeyCache>,
    refreshing: tokio::sync::Mutex<()>,
}

impl OidcVerifier {
    pub(crate) fn new(source: Arc<dyn JwksSource>, config: OidcConfig) -> Self {
        OidcVerifier {
            source,
            config,
            cache: RwLock::new(KeyCache::default()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The token's claims if it is genuine and meant for AMP; `Unauthenticated` otherwise,
    /// `Unavailable` when the provider's keys cannot be fetched.
    pub(crate) async fn verify(&self, id_token: &str) -> Result<VerifiedIdToken> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|e| {
            tracing::debug!(error = %e, "ID token refused: unreadable header");
            invalid()
        })?;
        let Some(kid) = header.kid else {
            tracing::debug!("ID token refused: no `kid`");
            return Err(invalid());
        };
        let key = self.key(&kid).await?;
        if header.alg != key.algorithm {
            tracing::debug!(alg = ?header.alg, %kid, "ID token refused: algorithm does not match its key");
            return Err(invalid());
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(id_token, &key.key, &validation)
            .map_err(|e| {
                tracing::debug!(error = %e, %kid, "ID token refused");
                invalid()
            })?
            .claims;
        // `azp`, when present, names the client the token was issued to: it must be us, or
        // a token issued to another client of the provider (with us among its audiences)
        // would sign people in here.
        if let Some(azp) = claims.get("azp")
            && azp.as_str() != Some(self.config.audience.as_str())
        {
            tracing::debug!("ID token refused: `azp` names another client");
            return Err(invalid());
        }
        let now = jsonwebtoken::get_current_timestamp();
        let max_age = self.config.max_token_age_secs.saturating_add(LEEWAY_SECS);
        match claims.get("iat").and_then(Value::as_u64) {
            Some(iat) if iat <= now.saturating_add(LEEWAY_SECS) && now.saturating_sub(iat) <= max_age => {}
            _ => {
                tracing::debug!(
                    "ID token refused: `iat` missing, in the future or older than max_token_age_secs"
                );
                return Err(invalid());
            }
        }
        let subject = match claims.get("sub").and_then(Value::as_str) {
            Some(sub) if !sub.is_empty() => sub.to_owned(),
            _ => {
                tracing::debug!("ID token refused: empty `sub`");
                return Err(invalid());
            }
        };
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        // Without the claim, the email is unverified unless the operator says this provider
        // only releases verified addresses; with it, only a yes counts (some providers send
        // it as the string `"true"`).
        // `email_verified` speaks of the `email` claim only: an address read from another
        // claim (`upn`, `preferred_username`) is never taken as verified.
        let email_verified = self.config.email_claim == "email"
            && match claims.get("email_verified") {
                None => self.config.assume_email_verified,
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                Some(_) => false,
            };
        Ok(VerifiedIdToken {
            identity: ExternalIdentity { issuer: self.config.issuer.clone(), subject },
            email: text(&self.config.email_claim),
            email_verified,
            name: text("name"),
        })
    }

    /// The key named `kid`, fetching the JWKS if it is not cached and a fetch is allowed.
    async fn key(&self, kid: &str) -> Result<Arc<SigningKey>> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        // One fetch at a time; whoever waited here re-checks, since the fetch just done
        // by another sign-in may have brought the key.
        let _guard = self.refreshing.lock().await;
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let min_gap = Duration::from_secs(self.config.jwks_refresh_min_secs);
        let last = self.cache.read().unwrap_or_else(PoisonError::into_inner).last_fetch;
        match last {
            Some((at, ok)) if at.elapsed() < min_gap => {
                tracing::debug!(%kid, "ID token names an unknown key; the JWKS was fetched too recently to fetch again");
                return Err(if ok {
                    invalid()
                } else {
                    Error::unavailable("the single sign-on provider's keys could not be fetched")
                });
            }
            _ => {}
        }
        let fetched = self.source.fetch().await;
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        let document = match fetched {
            Ok(document) => document,
            Err(err) => {
                cache.last_fetch = Some((Instant::now(), false));
                return Err(err);
            }
        };
        cache.last_fetch = Some((Instant::now(), true));
        // A document that does not parse is the provider's fault, not the person's.
        let set: JwkSet = serde_json::from_value(document).map_err(|e| {
            Error::unavailable(format!("the single sign-on provider's JWKS does not parse: {e}"))
        })?;
        cache.keys = set.keys.iter().filter_map(signing_key).collect();
        tracing::info!(keys = cache.keys.len(), "fetched the single sign-on provider's keys");
        cache.keys.get(kid).cloned().ok_or_else(|| {
            tracing::debug!(%kid, "ID token names a key the provider does not publish");
            invalid()
        })
    }

    fn cached(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner).keys.get(kid).cloned()
    }
}

/// A JWK as a verification key, if it is an RS256 or ES256 signing key with a `kid`.
/// Symmetric keys are never accepted: a provider's public JWKS holding one would let anyone
/// who read it mint tokens.
fn signing_key(jwk: &Jwk) -> Option<(String, Arc<SigningKey>)> {
    let kid = jwk.common.key_id.clone()?;
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Arc::new(SigningKey { key, algorithm })))
}

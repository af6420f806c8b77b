//! Short-lived signed access tokens (JWT, HS256).

use amp_core::{Error, Result, Secret, SessionId, UserId};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The user.
    pub sub: String,
    /// The device session; checked on every request, so a logout ends the token at once.
    pub sid: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token, for logs and revocation lists.
    pub jti: String,
}

/// Signs and checks access tokens with one symmetric key.
pub(crate) struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
}

impl AccessTokens {
    pub(crate) fn new(secret: &Secret, issuer: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Expiry is exact: a 15-minute token must not live 16.
        validation.leeway = 0;
        AccessTokens {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            issuer: issuer.to_owned(),
        }
    }

    pub(crate) fn issue(
        &self,
        user: UserId,
        session: SessionId,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<String> {
        let claims = Claims {
            sub: user.to_string(),
            sid: session.to_string(),
            iss: self.issuer.clone(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::internal("signing an access token failed", e))
    }

    /// The token's user and session, if its signature, issuer and expiry are good.
    pub(crate) fn verify(&self, token: &str) -> Result<(UserId, SessionId)> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Error::unauthenticated("access token expired")
                }
                _ => Error::unauthenticated("invalid access token"),
            }
        })?;
        let user = data.claims.sub.parse().map_err(|_| Error::unauthenticated("invalid access token"))?;
        let session = data.claims.sid.parse().map_err(|_| Error::unauthenticated("invalid access token"))?;
        Ok((user, session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::new(&Secret::new("k".repeat(32)), "amp")
    }

    #[test]
    fn a_token_verifies_to_its_user_and_session() {
        let (user, session) = (UserId::new(), SessionId::new());
        let t = tokens().issue(user, session, Utc::now(), chrono::Duration::minutes(15)).unwrap();
        assert_eq!(tokens().verify(&t).unwrap(), (user, session));
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let (user, session) = (UserId::new(), SessionId::new());
        let old = tokens()
            .issue(user, session, Utc::now() - chrono::Duration::hours(1), chrono::Duration::minutes(15))
            .unwrap();
        assert_eq!(tokens().verify(&old).unwrap_err().to_string(), "access token expired");

        let good = tokens().issue(user, session, Utc::now(), chrono::Duration::minutes(15)).unwrap();
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(tokens().verify(&parts.join(".")).is_err(), "a tampered payload must fail");

        let other_key = AccessTokens::new(&Secret::new("x".repeat(32)), "amp");
        assert!(other_key.verify(&good).is_err(), "another key's token must fail");
        let other_issuer = AccessTokens::new(&Secret::new("k".repeat(32)), "someone-else");
        assert!(other_issuer.verify(&good).is_err(), "another issuer's token must fail");
        assert!(tokens().verify("not.a.jwt").is_err());
    }
}

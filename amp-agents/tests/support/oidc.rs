//! A stand-in OpenID Connect provider for tests: two RSA signing keys (PKCS#1 DER fixtures, made with
//! `openssl genpkey -algorithm RSA` then `openssl rsa -traditional -outform DER`; DER because
//! jsonwebtoken reads PEM only with a feature AMP does not build), the
//! JWKS publishing them, and ID tokens signed with them. Shared by amp-agents' and
//! amp-server's SSO tests.

// Each test binary uses a different subset.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://sso.example.test";
pub const AUDIENCE: &str = "amp-client";

/// The provider's first key, published as `kid` [`KID_1`].
pub const KEY_1: &[u8] = include_bytes!("../fixtures/oidc_key_1.der");
/// A second key: the provider's next key after rotation, or an attacker's key.
pub const KEY_2: &[u8] = include_bytes!("../fixtures/oidc_key_2.der");
pub const KID_1: &str = "key-1";
pub const KID_2: &str = "key-2";

/// The public half of `der` as a JWK named `kid`.
pub fn jwk(der: &[u8], kid: &str) -> Jwk {
    let key = EncodingKey::from_rsa_der(der);
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("an RSA JWK");
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk
}

/// A JWKS document publishing `keys` (pairs of DER key and kid).
pub fn jwks(keys: &[(&[u8], &str)]) -> Value {
    let set = JwkSet { keys: keys.iter().map(|(der, kid)| jwk(der, kid)).collect() };
    serde_json::to_value(set).expect("a JWKS serializes")
}

/// Claims of a valid ID token for `sub`, expiring in ten minutes.
pub fn claims(sub: &str, email: &str) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "email": email,
        "email_verified": true,
        "name": "Ada Lovelace",
        "iat": now,
        "exp": now + 600,
    })
}

/// `claims` signed RS256 with `der`, naming `kid`.
pub fn sign(claims: &Value, der: &[u8], kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_der(der);
    jsonwebtoken::encode(&header, claims, &key).expect("signing works")
}

/// An unsigned token (`alg: none`) naming a published kid.
pub fn unsigned(claims: &Value, kid: &str) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", part(&header), part(claims))
}

/// The classic key-confusion forgery: HS256 "signed" with the public RSA modulus, which
/// anyone can read from the JWKS.
pub fn hs256_with_public_key(claims: &Value, kid: &str) -> String {
    let jwks = jwks(&[(KEY_1, kid)]);
    let n = jwks["keys"][0]["n"].as_str().expect("an RSA modulus").to_owned();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(n.as_bytes())).expect("signing works")
}

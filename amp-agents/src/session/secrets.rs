//! Opaque credentials (refresh tokens, API keys): made from the OS's random source, stored
//! only as hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A new random credential: 32 bytes (256 bits) from the OS, base64url, behind `prefix`.
pub(crate) fn new_token(prefix: &str) -> amp_core::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| amp_core::Error::internal("the OS random source failed", e.to_string()))?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The stored form of a credential. Credentials carry 256 bits of entropy, so a fast hash is
/// enough: there is nothing to brute-force, unlike passwords.
pub(crate) fn hash_token(token: &str) -> String {
    crate::digest::sha256_hex(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hash_stably() {
        let (a, b) = (new_token("amp_").unwrap(), new_token("amp_").unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("amp_") && a.len() == 4 + 43);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}

//! The HMAC-SHA256 signatures of [`LocalBlobStore`](super::LocalBlobStore)'s upload and
//! download URLs.
//!
//! An upload URL is `{base}/blobs/{key}?expires=UNIX&max=BYTES&type=MEDIA&sig=HEX`, a download
//! URL `{base}/blobs/{key}?expires=UNIX&sig=HEX`. The signature covers the method, the key, the
//! expiry and, for uploads, the size limit and the media type, so none of them can be changed
//! without the store noticing.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use amp_core::{BlobKey, Error, Result, UploadConstraints};

/// The shortest signing key accepted, in bytes: as long as the SHA-256 output.
pub(crate) const MIN_KEY_BYTES: usize = 32;

/// Bumped if the signed text ever changes, so old URLs stop verifying instead of verifying
/// as something else.
const VERSION: &str = "amp-blob-v1";

/// Signs and verifies the local store's URLs.
#[derive(Clone)]
pub(crate) struct UrlSigner {
    mac: Hmac<Sha256>,
    base_url: String,
}

impl UrlSigner {
    /// A signer for URLs under `base_url` (`http://host:port`, any trailing `/` dropped).
    pub(crate) fn new(signing_key: &[u8], base_url: &str) -> Result<Self> {
        if signing_key.len() < MIN_KEY_BYTES {
            return Err(Error::invalid_input(format!(
                "the blob signing key must be at least {MIN_KEY_BYTES} bytes"
            )));
        }
        let base_url = base_url.trim_end_matches('/');
        if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
            || base_url.contains(['?', '#'])
        {
            return Err(Error::invalid_input(format!(
                "the blob store's base URL must be http(s)://host[:port][/path], got {base_url:?}"
            )));
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(signing_key)
            .map_err(|e| Error::internal("HMAC refused the signing key", e))?;
        Ok(UrlSigner { mac, base_url: base_url.to_owned() })
    }

    /// The base URL, without a trailing `/`.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A signed upload URL that stops working at `expires` (UNIX seconds).
    pub(crate) fn upload_url(&self, key: &BlobKey, constraints: &UploadConstraints, expires: i64) -> String {
        let sig = self.sign(&upload_text(key.as_str(), expires, constraints));
        format!(
            "{}/blobs/{}?expires={expires}&max={}&type={}&sig={sig}",
            self.base_url,
            encode_path(key.as_str()),
            constraints.max_bytes,
            encode_component(&constraints.media_type),
        )
    }

    /// A signed download URL that stops working at `expires` (UNIX seconds).
    pub(crate) fn download_url(&self, key: &BlobKey, expires: i64) -> String {
        let sig = self.sign(&download_text(key.as_str(), expires));
        format!("{}/blobs/{}?expires={expires}&sig={sig}", self.base_url, encode_path(key.as_str()))
    }

    /// Checks an upload URL's signature and expiry at `now` (UNIX seconds); `key` is the
    /// decoded path after `/blobs/`, `query` the raw query string.
    pub(crate) fn verify_upload(
        &self,
        key: &str,
        query: &str,
        now: i64,
    ) -> Result<(BlobKey, UploadConstraints)> {
        let params = Params::parse(query)?;
        let expires = params.number::<i64>("expires")?;
        let max_bytes = params.number::<u64>("max")?;
        let media_type = params.required("type")?.to_owned();
        let constraints = UploadConstraints { media_type, max_bytes };
        self.verify(&upload_text(key, expires, &constraints), params.required("sig")?)?;
        check_expiry(expires, now)?;
        Ok((signed_key(key)?, constraints))
    }

    /// Checks a download URL's signature and expiry at `now` (UNIX seconds).
    pub(crate) fn verify_download(&self, key: &str, query: &str, now: i64) -> Result<BlobKey> {
        let params = Params::parse(query)?;
        let expires = params.number::<i64>("expires")?;
        self.verify(&download_text(key, expires), params.required("sig")?)?;
        check_expiry(expires, now)?;
        signed_key(key)
    }

    fn sign(&self, text: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(text.as_bytes());
        to_hex(&mac.finalize().into_bytes())
    }

    fn verify(&self, text: &str, sig_hex: &str) -> Result<()> {
        // The signature itself never goes into a message: a log of refusals must not be a
        // list of working URLs.
        let refused = || Error::forbidden("the blob URL's signature does not match");
        let sig = from_hex(sig_hex).ok_or_else(refused)?;
        let mut mac = self.mac.clone();
        mac.update(text.as_bytes());
        mac.verify_slice(&sig).map_err(|_| refused())
    }
}

fn upload_text(key: &str, expires: i64, constraints: &UploadConstraints) -> String {
    // Keys and media types hold no control characters (checked when URLs are made), so the
    // newlines keep the fields apart.
    format!("{VERSION}\nPUT\n{key}\n{expires}\n{}\n{}", constraints.max_bytes, constraints.media_type)
}

fn download_text(key: &str, expires: i64) -> String {
    format!("{VERSION}\nGET\n{key}\n{expires}")
}

fn check_expiry(expires: i64, now: i64) -> Result<()> {
    if now >= expires {
        let at = DateTime::<Utc>::from_timestamp(expires, 0)
            .map_or_else(|| expires.to_string(), |t| t.to_rfc3339());
        return Err(Error::forbidden(format!("the blob URL expired at {at}")));
    }
    Ok(())
}

/// A key that verified: it was a valid key when it was signed, so a failure here means the
/// key was altered and is refused like any other tampering.
fn signed_key(key: &str) -> Result<BlobKey> {
    BlobKey::new(key).map_err(|_| Error::forbidden("the blob URL does not name a valid key"))
}

/// The parameters of a query string, each at most once.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Self> {
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let malformed = || Error::forbidden("the blob URL's query string is malformed");
            let (name, value) = (decode(name).ok_or_else(malformed)?, decode(value).ok_or_else(malformed)?);
            if params.iter().any(|(n, _)| *n == name) {
                return Err(Error::forbidden(format!("the blob URL repeats `{name}`")));
            }
            params.push((name, value));
        }
        Ok(Params(params))
    }

    fn required(&self, name: &str) -> Result<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| Error::forbidden(format!("the blob URL has no `{name}`")))
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T> {
        let value = self.required(name)?;
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::forbidden(format!("the blob URL's `{name}` is not a number")));
        }
        value.parse().map_err(|_| Error::forbidden(format!("the blob URL's `{name}` is not a number")))
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a key for a URL path, keeping its `/` separators.
fn encode_path(key: &str) -> String {
    key.split('/').map(encode_component).collect::<Vec<_>>().join("/")
}

/// Decodes `%XX` escapes; `+` stays `+` (we never encode a space as `+`). `None` for a
/// broken escape or bytes that are not UTF-8.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn signer() -> UrlSigner {
        UrlSigner::new(&[7u8; 32], "http://127.0.0.1:8080/").unwrap()
    }

    fn pdf(max_bytes: u64) -> UploadConstraints {
        UploadConstraints { media_type: "application/pdf".into(), max_bytes }
    }

    /// The path after `/blobs/`, decoded as a router would, and the raw query.
    fn split(url: &str) -> (String, String) {
        let rest = url.strip_prefix("http://127.0.0.1:8080/blobs/").expect("URL under the base");
        let (path, query) = rest.split_once('?').expect("URL with a query");
        (decode(path).expect("decodable path"), query.to_owned())
    }

    #[test]
    fn short_keys_and_odd_base_urls_are_refused() {
        assert!(UrlSigner::new(&[1u8; 31], "http://x").is_err());
        assert!(UrlSigner::new(&[1u8; 32], "ftp://x").is_err());
        assert!(UrlSigner::new(&[1u8; 32], "http://x/?a=b").is_err());
        assert_eq!(signer().base_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn an_upload_url_verifies_with_its_own_key_and_constraints() {
        let key = BlobKey::new("users/u 1/files/ä+b%c").unwrap();
        let constraints = UploadConstraints { media_type: "image/svg+xml".into(), max_bytes: 5000 };
        let url = signer().upload_url(&key, &constraints, NOW + 60);
        assert!(url.contains("type=image%2Fsvg%2Bxml"), "{url}");
        let (path, query) = split(&url);
        let (got_key, got) = signer().verify_upload(&path, &query, NOW).unwrap();
        assert_eq!((got_key, got), (key, constraints));
    }

    #[test]
    fn changing_any_signed_field_breaks_the_signature() {
        let key = BlobKey::new("a/b").unwrap();
        let url = signer().upload_url(&key, &pdf(100), NOW + 60);
        let (path, query) = split(&url);
        for (from, to) in
            [("max=100", "max=101"), ("application%2Fpdf", "text%2Fhtml"), ("expires=", "expires=1")]
        {
            let err = signer().verify_upload(&path, &query.replacen(from, to, 1), NOW).unwrap_err();
            assert_eq!(err.kind(), amp_core::ErrorKind::Forbidden, "{from} -> {to}");
        }
        let err = signer().verify_upload("a/c", &query, NOW).unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::Forbidden);
        let other = UrlSigner::new(&[8u8; 32], "http://127.0.0.1:8080").unwrap();
        assert_eq!(
            other.verify_upload(&path, &query, NOW).unwrap_err().kind(),
            amp_core::ErrorKind::Forbidden
        );
    }

    #[test]
    fn a_tampered_signature_is_refused_without_being_echoed() {
        let url = signer().upload_url(&BlobKey::new("a/b").unwrap(), &pdf(100), NOW + 60);
        let (path, query) = split(&url);
        let sig = query.rsplit_once("sig=").unwrap().1.to_owned();
        let flipped = format!("{}{}", &sig[..63], if sig.ends_with('0') { '1' } else { '0' });
        for bad in [flipped.as_str(), "", "zz", &sig[..62]] {
            let err = signer().verify_upload(&path, &query.replace(&sig, bad), NOW).unwrap_err();
            assert_eq!(err.kind(), amp_core::ErrorKind::Forbidden);
            assert!(!err.to_string().contains(&sig) && !format!("{err:?}").contains(&sig));
        }
        let unsigned = query.replace(&format!("&sig={sig}"), "");
        assert_eq!(
            signer().verify_upload(&path, &unsigned, NOW).unwrap_err().kind(),
            amp_core::ErrorKind::Forbidden
        );
        let repeated = format!("{query}&sig={sig}");
        assert_eq!(
            signer().verify_upload(&path, &repeated, NOW).unwrap_err().kind(),
            amp_core::ErrorKind::Forbidden
        );
    }

    #[test]
    fn urls_stop_working_at_their_expiry() {
        let key = BlobKey::new("a/b").unwrap();
        let (path, query) = split(&signer().upload_url(&key, &pdf(1), NOW + 10));
        assert!(signer().verify_upload(&path, &query, NOW + 9).is_ok());
        let err = signer().verify_upload(&path, &query, NOW + 10).unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::Forbidden);
        assert!(err.to_string().contains("expired"), "{err}");

        let (path, query) = split(&signer().download_url(&key, NOW + 10));
        assert_eq!(signer().verify_download(&path, &query, NOW + 9).unwrap(), key);
        assert_eq!(
            signer().verify_download(&path, &query, NOW + 11).unwrap_err().kind(),
            amp_core::ErrorKind::Forbidden
        );
    }

    #[test]
    fn a_download_signature_does_not_open_an_upload() {
        let key = BlobKey::new("a/b").unwrap();
        let (path, query) = split(&signer().download_url(&key, NOW + 10));
        let forged = format!("{query}&max=999&type=text%2Fplain");
        assert_eq!(
            signer().verify_upload(&path, &forged, NOW).unwrap_err().kind(),
            amp_core::ErrorKind::Forbidden
        );
    }

    #[test]
    fn hex_and_percent_codecs_round_trip() {
        assert_eq!(from_hex(&to_hex(&[0, 1, 254, 255])).unwrap(), vec![0, 1, 254, 255]);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(decode(&encode_component("a b/c+d%é")).unwrap(), "a b/c+d%é");
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%ff"), None);
    }
}

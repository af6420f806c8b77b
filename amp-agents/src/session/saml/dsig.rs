//! Verifying an enveloped XML signature (<https://www.w3.org/TR/xmldsig-core1/>) the way
//! SAML uses it, and nothing more: one `Signature` that is a direct child of the element it
//! signs, one `Reference` to that element's `ID`, the enveloped-signature and exclusive
//! canonicalization transforms, SHA-2 digests, and RSA or ECDSA signatures checked against a
//! certificate the operator trusts (never one the message carries).
//!
//! Every other shape is refused rather than interpreted: that is what stops signature
//! wrapping, where a message carries a genuine signed element somewhere and a forged one
//! where the reader looks.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;

use super::c14n;

pub(crate) const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// A public key from a certificate of the identity provider's metadata.
#[derive(Clone)]
pub(crate) struct TrustedKey {
    kind: KeyKind,
    /// For RSA the PKCS#1 `RSAPublicKey`, for EC the uncompressed point.
    public_key: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl TrustedKey {
    /// The subject public key of a DER X.509 certificate.
    pub(crate) fn from_certificate(der: &[u8]) -> Result<Self, String> {
        let spki = der::subject_public_key_info(der).ok_or("the certificate is not valid DER X.509")?;
        let kind = match (spki.algorithm, spki.parameters) {
            (der::OID_RSA, _) => KeyKind::Rsa,
            (der::OID_EC, Some(der::OID_P256)) => KeyKind::EcP256,
            (der::OID_EC, Some(der::OID_P384)) => KeyKind::EcP384,
            _ => return Err("the certificate's key is neither RSA nor EC P-256/P-384".to_owned()),
        };
        Ok(TrustedKey { kind, public_key: spki.public_key.to_vec() })
    }

    fn algorithm(&self, method: &str) -> Option<&'static dyn VerificationAlgorithm> {
        let more = "http://www.w3.org/2001/04/xmldsig-more#";
        let name = method.strip_prefix(more)?;
        Some(match (self.kind, name) {
            (KeyKind::Rsa, "rsa-sha256") => &signature::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::Rsa, "rsa-sha384") => &signature::RSA_PKCS1_2048_8192_SHA384,
            (KeyKind::Rsa, "rsa-sha512") => &signature::RSA_PKCS1_2048_8192_SHA512,
            (KeyKind::EcP256, "ecdsa-sha256") => &signature::ECDSA_P256_SHA256_FIXED,
            (KeyKind::EcP384, "ecdsa-sha384") => &signature::ECDSA_P384_SHA384_FIXED,
            _ => return None,
        })
    }
}

fn dsig<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().namespace() == Some(DSIG_NS) && c.tag_name().name() == name)
}

fn only_dsig<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, String> {
    let mut found = node.children().filter(|c| {
        c.is_element() && c.tag_name().namespace() == Some(DSIG_NS) && c.tag_name().name() == name
    });
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(format!("no {name}")),
        _ => Err(format!("more than one {name}")),
    }
}

/// The `Signature` element that is a direct child of `signed`, if any.
pub(crate) fn enveloped_signature<'a, 'i>(signed: Node<'a, 'i>) -> Result<Option<Node<'a, 'i>>, String> {
    let mut found = signed.children().filter(|c| {
        c.is_element() && c.tag_name().namespace() == Some(DSIG_NS) && c.tag_name().name() == "Signature"
    });
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some(one), None) => Ok(Some(one)),
        _ => Err("more than one Signature".to_owned()),
    }
}

/// Checks that `signature`, a direct child of `signed`, signs exactly `signed` (by its `ID`)
/// with one of `keys`. The error says why, for the log.
pub(crate) fn verify(
    signed: Node<'_, '_>,
    signature: Node<'_, '_>,
    keys: &[TrustedKey],
) -> Result<(), String> {
    if signature.parent_element().map(|p| p.id()) != Some(signed.id()) {
        return Err("the signature is not a child of the signed element".to_owned());
    }
    let id = signed.attribute("ID").ok_or("the signed element has no ID")?;
    let signed_info = only_dsig(signature, "SignedInfo")?;

    let c14n_method = only_dsig(signed_info, "CanonicalizationMethod")?;
    if c14n_method.attribute("Algorithm") != Some(EXC_C14N) {
        return Err(format!(
            "canonicalization {:?} is not exclusive C14N",
            c14n_method.attribute("Algorithm")
        ));
    }
    let signed_info_prefixes = inclusive_prefixes(c14n_method);
    let method = only_dsig(signed_info, "SignatureMethod")?.attribute("Algorithm").unwrap_or_default();

    let reference = only_dsig(signed_info, "Reference")?;
    if reference.attribute("URI") != Some(&format!("#{id}")) {
        return Err(format!(
            "the reference {:?} is not to the signed element #{id}",
            reference.attribute("URI")
        ));
    }
    let mut enveloped = false;
    let mut prefixes = Vec::new();
    if let Some(transforms) = dsig(reference, "Transforms") {
        for t in transforms.children().filter(Node::is_element) {
            let is_transform =
                t.tag_name().namespace() == Some(DSIG_NS) && t.tag_name().name() == "Transform";
            match t.attribute("Algorithm") {
                Some(ENVELOPED) if is_transform => enveloped = true,
                Some(EXC_C14N) if is_transform => prefixes = inclusive_prefixes(t),
                other => return Err(format!("transform {other:?} is not allowed")),
            }
        }
    }
    if !enveloped {
        return Err("the reference lacks the enveloped-signature transform".to_owned());
    }
    let digest_method = only_dsig(reference, "DigestMethod")?.attribute("Algorithm").unwrap_or_default();
    let digest_algorithm = match digest_method {
        "http://www.w3.org/2001/04/xmlenc#sha256" => &digest::SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => &digest::SHA384,
        "http://www.w3.org/2001/04/xmlenc#sha512" => &digest::SHA512,
        other => return Err(format!("digest {other:?} is not SHA-2")),
    };
    let expected = base64_text(only_dsig(reference, "DigestValue")?)?;
    let canonical = c14n::canonicalize(signed, Some(signature.id()), &prefixes);
    let actual = digest::digest(digest_algorithm, &canonical);
    if actual.as_ref() != expected.as_slice() {
        return Err("the digest does not match: the signed element was changed".to_owned());
    }

    let signature_value = base64_text(only_dsig(signature, "SignatureValue")?)?;
    let signed_bytes = c14n::canonicalize(signed_info, None, &signed_info_prefixes);
    for key in keys {
        let Some(algorithm) = key.algorithm(method) else { continue };
        if UnparsedPublicKey::new(algorithm, &key.public_key).verify(&signed_bytes, &signature_value).is_ok()
        {
            return Ok(());
        }
    }
    Err(format!("no trusted key verifies the {method} signature"))
}

fn inclusive_prefixes(transform: Node<'_, '_>) -> Vec<String> {
    transform
        .children()
        .find(|c| {
            c.is_element()
                && c.tag_name().namespace() == Some(EXC_C14N)
                && c.tag_name().name() == "InclusiveNamespaces"
        })
        .and_then(|n| n.attribute("PrefixList"))
        .map(|list| list.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn base64_text(node: Node<'_, '_>) -> Result<Vec<u8>, String> {
    let text: String = node.text().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(text).map_err(|e| format!("{} is not base64: {e}", node.tag_name().name()))
}

/// Just enough DER to find a certificate's subject public key.
mod der {
    pub(super) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub(super) const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub(super) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub(super) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

    pub(super) struct Spki<'a> {
        pub algorithm: &'a [u8],
        pub parameters: Option<&'a [u8]>,
        pub public_key: &'a [u8],
    }

    /// One TLV: its tag, its contents and what follows it.
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (t, body, rest) = tlv(input)?;
        (t == tag).then_some((body, rest))
    }

    pub(super) fn subject_public_key_info(cert: &[u8]) -> Option<Spki<'_>> {
        const SEQUENCE: u8 = 0x30;
        let (certificate, _) = expect(cert, SEQUENCE)?;
        let (tbs, _) = expect(certificate, SEQUENCE)?;
        let mut rest = tbs;
        // [0] version, optional.
        if rest.first() == Some(&0xa0) {
            rest = tlv(rest)?.2;
        }
        // serialNumber, signature, issuer, validity, subject.
        rest = expect(rest, 0x02)?.1;
        for _ in 0..4 {
            rest = expect(rest, SEQUENCE)?.1;
        }
        let (spki, _) = expect(rest, SEQUENCE)?;
        let (algorithm, key) = expect(spki, SEQUENCE)?;
        let (oid, params) = expect(algorithm, 0x06)?;
        let parameters = expect(params, 0x06).map(|(p, _)| p);
        let (bits, _) = expect(key, 0x03)?;
        // A BIT STRING starts with the count of unused bits, 0 for keys.
        let (&0, public_key) = bits.split_first()? else { return None };
        Some(Spki { algorithm: oid, parameters, public_key })
    }
}

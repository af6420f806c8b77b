//! SAML 2.0 Web Browser SSO with AMP as the service provider: its metadata, the
//! authentication request (HTTP-Redirect binding) and the checks on the provider's answer
//! (HTTP-POST binding).
//!
//! What an answer must be to sign anyone in: a `Response` with status `Success`, holding
//! exactly one `Assertion` (no other anywhere in the document, no duplicate `ID`s), the
//! response or the assertion signed by a certificate of the provider's metadata, issued by
//! the provider, for AMP's entity id, confirmed for bearer use at AMP's consumer URL, in
//! answer to a request AMP made, and within every time bound. The signed element is the one
//! read: it is found by its place in the document, never by the id the signature names, so
//! a wrapped copy cannot stand in for it.

mod c14n;
mod dsig;
mod sign_in;

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use roxmltree::{Document, Node, ParsingOptions};

use amp_core::config::SamlConfig;
use amp_core::store::ExternalIdentity;

use super::oidc::VerifiedIdToken;
use dsig::TrustedKey;

const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const METADATA_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

/// The largest answer read, decoded; real ones are a few kilobytes.
pub(crate) const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// XML nodes read at most, so a crafted answer cannot make parsing costly.
const MAX_NODES: u32 = 20_000;
/// Elements nested deeper are refused (SAML answers nest about 8 deep): canonicalization
/// recurses per level.
const MAX_DEPTH: usize = 48;
/// Attributes, and namespaces in scope, per element; SAML elements have a handful.
const MAX_ATTRIBUTES: usize = 32;

/// Attributes tried for the email when none is configured.
const EMAIL_ATTRIBUTES: &[&str] = &[
    "email",
    "mail",
    "emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
];
/// Attributes tried for the display name.
const NAME_ATTRIBUTES: &[&str] = &[
    "displayName",
    "name",
    "urn:oid:2.16.840.1.113730.3.1.241",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
];

/// The service provider's view of one identity provider.
pub(crate) struct SamlProvider {
    config: SamlConfig,
    /// AMP's entity id.
    entity_id: String,
    /// Where the provider posts its answers.
    acs_url: String,
    idp_entity_id: String,
    /// The provider's HTTP-Redirect sign-in URL.
    idp_sso_url: String,
    keys: Vec<TrustedKey>,
}

/// An answer whose signature and conditions were checked; what is left is to make sure AMP
/// asked for it and has not seen it before.
#[derive(Debug)]
pub(crate) struct CheckedAssertion {
    /// The `ID` of the request this answers.
    pub in_response_to: String,
    /// The assertion's `ID`, for the replay cache.
    pub assertion_id: String,
    /// Until when the assertion could be presented: how long its id is remembered.
    pub usable_until: DateTime<Utc>,
    /// The person.
    pub identity: VerifiedIdToken,
}

fn parse(xml: &str) -> Result<Document<'_>, String> {
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES, ..ParsingOptions::default() };
    let doc = Document::parse_with_options(xml, options).map_err(|e| format!("not well-formed XML: {e}"))?;
    // Depth by node id in document order (a parent comes before its children): linear,
    // whatever the shape.
    let mut depth = vec![0usize; doc.descendants().count() + 1];
    for node in doc.descendants() {
        let d = node.parent().map_or(0, |p| depth[p.id().get_usize()] + 1);
        depth[node.id().get_usize()] = d;
        if d > MAX_DEPTH {
            return Err(format!("elements nest deeper than {MAX_DEPTH}"));
        }
        if node.is_element()
            && (node.attributes().count() > MAX_ATTRIBUTES || node.namespaces().count() > MAX_ATTRIBUTES)
        {
            return Err(format!("an element has more than {MAX_ATTRIBUTES} attributes or namespaces"));
        }
    }
    Ok(doc)
}

fn is(node: &Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == name
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is(c, ns, name))
}

/// All the text an element holds, the way the signature saw it: a comment splitting a
/// value (`ada@example.test<!---->.evil.test`) must not shorten it to its first part.
fn text(node: Node<'_, '_>) -> String {
    let whole: String = node.descendants().filter(Node::is_text).filter_map(|t| t.text()).collect();
    whole.trim().to_owned()
}

fn time(node: Node<'_, '_>, attribute: &str) -> Result<Option<DateTime<Utc>>, String> {
    node.attribute(attribute)
        .map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)))
        .transpose()
        .map_err(|e| format!("{attribute} is not a time: {e}"))
}

impl SamlProvider {
    /// The provider described by its metadata, for AMP reachable at `public_url`.
    pub(crate) fn new(config: SamlConfig, metadata: &str, public_url: &str) -> Result<Self, String> {
        let public_url = public_url.trim_end_matches('/');
        let doc = parse(metadata)?;
        let root = doc.root_element();
        let entity = if is(&root, METADATA_NS, "EntityDescriptor") {
            root
        } else {
            let mut idps = root.descendants().filter(|n| {
                is(n, METADATA_NS, "EntityDescriptor") && child(*n, METADATA_NS, "IDPSSODescriptor").is_some()
            });
            match (idps.next(), idps.next()) {
                (Some(one), None) => one,
                (None, _) => {
                    return Err("the metadata has no EntityDescriptor with an IDPSSODescriptor".to_owned());
                }
                _ => {
                    return Err(
                        "the metadata describes several identity providers: give only AMP's".to_owned()
                    );
                }
            }
        };
        let idp_entity_id =
            entity.attribute("entityID").ok_or("the EntityDescriptor has no entityID")?.to_owned();
        let idp =
            child(entity, METADATA_NS, "IDPSSODescriptor").ok_or("the metadata has no IDPSSODescriptor")?;
        let idp_sso_url = idp
            .children()
            .filter(|n| is(n, METADATA_NS, "SingleSignOnService"))
            .find(|n| n.attribute("Binding") == Some(REDIRECT_BINDING))
            .and_then(|n| n.attribute("Location"))
            .ok_or("the IDPSSODescriptor has no SingleSignOnService with the HTTP-Redirect binding")?
            .to_owned();
        let mut keys = Vec::new();
        for descriptor in idp.children().filter(|n| is(n, METADATA_NS, "KeyDescriptor")) {
            if descriptor.attribute("use").is_some_and(|u| u != "signing") {
                continue;
            }
            for cert in descriptor.descendants().filter(|n| is(n, dsig::DSIG_NS, "X509Certificate")) {
                let b64: String = text(cert).chars().filter(|c| !c.is_whitespace()).collect();
                let der =
                    STANDARD.decode(b64).map_err(|e| format!("an X509Certificate is not base64: {e}"))?;
                keys.push(TrustedKey::from_certificate(&der)?);
            }
        }
        if keys.is_empty() {
            return Err("the IDPSSODescriptor has no signing certificate".to_owned());
        }
        let entity_id =
            config.entity_id.clone().unwrap_or_else(|| format!("{public_url}/auth/saml/metadata"));
        Ok(SamlProvider {
            acs_url: format!("{public_url}/auth/saml/acs"),
            entity_id,
            idp_entity_id,
            idp_sso_url,
            keys,
            config,
        })
    }

    pub(crate) fn request_ttl(&self) -> Duration {
        Duration::seconds(i64::try_from(self.config.request_ttl_secs).unwrap_or(i64::MAX / 1000))
    }

    /// AMP's service-provider metadata, for the provider's administrator.
    pub(crate) fn metadata(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <md:EntityDescriptor xmlns:md=\"{METADATA_NS}\" entityID=\"{entity}\">\
             <md:SPSSODescriptor AuthnRequestsSigned=\"false\" WantAssertionsSigned=\"true\" \
             protocolSupportEnumeration=\"{PROTOCOL_NS}\">\
             <md:NameIDFormat>{EMAIL_FORMAT}</md:NameIDFormat>\
             <md:AssertionConsumerService Binding=\"{POST_BINDING}\" Location=\"{acs}\" index=\"0\" isDefault=\"true\"/>\
             </md:SPSSODescriptor></md:EntityDescriptor>\n",
            entity = xml_escape(&self.entity_id),
            acs = xml_escape(&self.acs_url),
        )
    }

    /// The provider's sign-in URL carrying an `AuthnRequest` with id `request_id`
    /// (HTTP-Redirect binding: deflated, base64, URL-encoded).
    pub(crate) fn login_url(&self, request_id: &str, now: DateTime<Utc>) -> Result<String, String> {
        let request = format!(
            "<samlp:AuthnRequest xmlns:samlp=\"{PROTOCOL_NS}\" xmlns:saml=\"{ASSERTION_NS}\" ID=\"{id}\" \
             Version=\"2.0\" IssueInstant=\"{instant}\" Destination=\"{destination}\" \
             AssertionConsumerServiceURL=\"{acs}\" ProtocolBinding=\"{POST_BINDING}\">\
             <saml:Issuer>{entity}</saml:Issuer>\
             <samlp:NameIDPolicy Format=\"{EMAIL_FORMAT}\" AllowCreate=\"true\"/></samlp:AuthnRequest>",
            id = xml_escape(request_id),
            instant = now.format("%Y-%m-%dT%H:%M:%SZ"),
            destination = xml_escape(&self.idp_sso_url),
            acs = xml_escape(&self.acs_url),
            entity = xml_escape(&self.entity_id),
        );
        let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflate.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let deflated = deflate.finish().map_err(|e| e.to_string())?;
        let separator = if self.idp_sso_url.contains('?') { '&' } else { '?' };
        Ok(format!("{}{separator}SAMLRequest={}", self.idp_sso_url, url_encode(&STANDARD.encode(deflated))))
    }

    /// Checks the base64 `SAMLResponse` the provider posted, at time `now`. The error says
    /// why, for the log only.
    pub(crate) fn check_response(
        &self,
        encoded: &str,
        now: DateTime<Utc>,
    ) -> Result<CheckedAssertion, String> {
        let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() > MAX_RESPONSE_BYTES * 4 / 3 + 4 {
            return Err("the answer is too large".to_owned());
        }
        let bytes = STANDARD.decode(compact).map_err(|e| format!("SAMLResponse is not base64: {e}"))?;
        let xml = String::from_utf8(bytes).map_err(|_| "the answer is not UTF-8".to_owned())?;
        let doc = parse(&xml)?;
        let response = doc.root_element();
        if !is(&response, PROTOCOL_NS, "Response") {
            return Err("the document is not a samlp:Response".to_owned());
        }
        if response.attribute("Version") != Some("2.0") {
            return Err("the response is not SAML 2.0".to_owned());
        }
        unique_ids(&doc)?;
        if let Some(destination) = response.attribute("Destination")
            && destination != self.acs_url
        {
            return Err(format!("the response is for {destination}, not this service"));
        }
        if let Some(issuer) = child(response, ASSERTION_NS, "Issuer")
            && text(issuer) != self.idp_entity_id
        {
            return Err("the response's issuer is not the configured provider".to_owned());
        }
        let status = child(response, PROTOCOL_NS, "Status")
            .and_then(|s| child(s, PROTOCOL_NS, "StatusCode"))
            .and_then(|c| c.attribute("Value"));
        if status != Some(SUCCESS) {
            return Err(format!("the provider answered status {status:?}"));
        }
        if doc.descendants().any(|n| is(&n, ASSERTION_NS, "EncryptedAssertion")) {
            return Err(
                "encrypted assertions are not supported: configure the provider to sign, not encrypt"
                    .to_owned(),
            );
        }
        // Exactly one assertion in the whole document, and it is the response's child.
        let mut assertions = doc.descendants().filter(|n| is(n, ASSERTION_NS, "Assertion"));
        let assertion = match (assertions.next(), assertions.next()) {
            (Some(one), None) if one.parent_element().map(|p| p.id()) == Some(response.id()) => one,
            (Some(_), None) => return Err("the assertion is not a direct child of the response".to_owned()),
            (None, _) => return Err("the response has no assertion".to_owned()),
            _ => return Err("the response carries more than one assertion".to_owned()),
        };

        // Whatever is signed must verify; at least one of the two must be signed.
        let mut signed = false;
        for element in [response, assertion] {
            if let Some(signature) = dsig::enveloped_signature(element)? {
                dsig::verify(element, signature, &self.keys)
                    .map_err(|e| format!("{} signature: {e}", element.tag_name().name()))?;
                signed = true;
            }
        }
        if !signed {
            return Err("neither the response nor the assertion is signed".to_owned());
        }
        self.check_assertion(response, assertion, now)
    }

    fn check_assertion(
        &self,
        response: Node<'_, '_>,
        assertion: Node<'_, '_>,
        now: DateTime<Utc>,
    ) -> Result<CheckedAssertion, String> {
        let skew = Duration::seconds(i64::try_from(self.config.clock_skew_secs).unwrap_or(3600));
        let max_age = Duration::seconds(i64::try_from(self.config.max_assertion_age_secs).unwrap_or(3600));
        let assertion_id = assertion.attribute("ID").ok_or("the assertion has no ID")?.to_owned();
        let issuer = child(assertion, ASSERTION_NS, "Issuer").map(text);
        if issuer.as_deref() != Some(self.idp_entity_id.as_str()) {
            return Err(format!("the assertion's issuer {issuer:?} is not the configured provider"));
        }
        let issued = time(assertion, "IssueInstant")?.ok_or("the assertion has no IssueInstant")?;
        if issued > now + skew || now - issued > max_age + skew {
            return Err(format!("the assertion was issued at {issued}, outside the allowed age"));
        }

        let conditions =
            child(assertion, ASSERTION_NS, "Conditions").ok_or("the assertion has no Conditions")?;
        if time(conditions, "NotBefore")?.is_some_and(|t| t > now + skew) {
            return Err("the assertion is not valid yet (NotBefore)".to_owned());
        }
        let mut usable_until = issued + max_age + skew;
        if let Some(until) = time(conditions, "NotOnOrAfter")? {
            if now >= until + skew {
                return Err("the assertion has expired (NotOnOrAfter)".to_owned());
            }
            usable_until = usable_until.max(until + skew);
        }
        let restrictions: Vec<_> =
            conditions.children().filter(|n| is(n, ASSERTION_NS, "AudienceRestriction")).collect();
        if restrictions.is_empty() {
            return Err("the assertion names no audience".to_owned());
        }
        for restriction in restrictions {
            let ours = restriction
                .children()
                .filter(|n| is(n, ASSERTION_NS, "Audience"))
                .any(|a| text(a) == self.entity_id);
            if !ours {
                return Err("the assertion is meant for another audience".to_owned());
            }
        }

        let subject = child(assertion, ASSERTION_NS, "Subject").ok_or("the assertion has no Subject")?;
        let name_id = child(subject, ASSERTION_NS, "NameID").ok_or("the subject has no NameID")?;
        let subject_id = text(name_id);
        if subject_id.is_empty() || subject_id.len() > 512 {
            return Err("the NameID is empty or too long".to_owned());
        }
        let mut in_response_to = None;
        let mut refusals = Vec::new();
        for confirmation in subject.children().filter(|n| is(n, ASSERTION_NS, "SubjectConfirmation")) {
            match self.bearer_confirmation(confirmation, now, skew) {
                Ok((request, until)) => {
                    in_response_to = Some(request);
                    usable_until = usable_until.max(until);
                    break;
                }
                Err(why) => refusals.push(why),
            }
        }
        let Some(in_response_to) = in_response_to else {
            return Err(format!("no usable bearer SubjectConfirmation: {}", refusals.join("; ")));
        };
        if response.attribute("InResponseTo").is_some_and(|r| r != in_response_to) {
            return Err("the response and its assertion answer different requests".to_owned());
        }

        let attributes: Vec<(&str, String)> = child(assertion, ASSERTION_NS, "AttributeStatement")
            .into_iter()
            .flat_map(|s| s.children().filter(|n| is(n, ASSERTION_NS, "Attribute")))
            .filter_map(|a| {
                let value = a.children().find(|v| is(v, ASSERTION_NS, "AttributeValue")).map(text)?;
                Some((a.attribute("Name")?, value))
            })
            .collect();
        let attribute = |names: &[&str]| {
            names.iter().find_map(|name| {
                attributes
                    .iter()
                    .find(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
                    .map(|(_, v)| v.clone())
            })
        };
        let email = match &self.config.email_attribute {
            Some(name) => attribute(&[name.as_str()]),
            None if name_id.attribute("Format") == Some(EMAIL_FORMAT) => Some(subject_id.clone()),
            None => attribute(EMAIL_ATTRIBUTES),
        };
        Ok(CheckedAssertion {
            in_response_to,
            assertion_id,
            usable_until,
            identity: VerifiedIdToken {
                // `saml:` keeps SAML subjects apart from OpenID Connect ones, even where a
                // provider uses one URL as its entity id and its issuer.
                identity: ExternalIdentity {
                    issuer: format!("saml:{}", self.idp_entity_id),
                    subject: subject_id,
                },
                email,
                email_verified: self.config.assume_email_verified,
                name: attribute(NAME_ATTRIBUTES),
            },
        })
    }

    /// A bearer confirmation for AMP's consumer URL that has not expired: the request it
    /// answers and until when.
    fn bearer_confirmation(
        &self,
        confirmation: Node<'_, '_>,
        now: DateTime<Utc>,
        skew: Duration,
    ) -> Result<(String, DateTime<Utc>), String> {
        if confirmation.attribute("Method") != Some(BEARER) {
            return Err("not a bearer confirmation".to_owned());
        }
        let data = child(confirmation, ASSERTION_NS, "SubjectConfirmationData")
            .ok_or("no SubjectConfirmationData")?;
        if data.attribute("Recipient") != Some(self.acs_url.as_str()) {
            return Err(format!("the recipient {:?} is not this service", data.attribute("Recipient")));
        }
        let until = time(data, "NotOnOrAfter")?.ok_or("no NotOnOrAfter")?;
        if now >= until + skew {
            return Err("the confirmation has expired".to_owned());
        }
        if time(data, "NotBefore")?.is_some_and(|t| t > now + skew) {
            return Err("the confirmation is not valid yet".to_owned());
        }
        let request = data
            .attribute("InResponseTo")
            .ok_or("no InResponseTo: sign-ins AMP did not start are refused")?;
        Ok((request.to_owned(), until + skew))
    }
}

/// Refuses a document in which two elements share an `ID`: a reader resolving ids could be
/// led to either.
fn unique_ids(doc: &Document<'_>) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for node in doc.descendants().filter(Node::is_element) {
        for attr in
            node.attributes().filter(|a| a.namespace().is_none() && a.name().eq_ignore_ascii_case("id"))
        {
            if !seen.insert(attr.value()) {
                return Err(format!("the ID {:?} appears twice", attr.value()));
            }
        }
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

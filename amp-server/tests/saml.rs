//! SAML 2.0 sign-in end to end, written as the attacks: the identity provider's half is
//! `tests/saml_idp.py`, which signs with signxml (libxml2's canonicalization), so AMP's
//! verification is checked against an independent signer. Every answer below reaches
//! `POST /auth/saml/acs` the way a browser posts it.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use amp_core::config::SamlConfig;
use axum::Router;
use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use support::{JsonResponse, TestApp, python, request_raw, send, test_app_with};

const PUBLIC_URL: &str = "https://amp.example.test";
const ACS: &str = "https://amp.example.test/auth/saml/acs";
const AUDIENCE: &str = "https://amp.example.test/auth/saml/metadata";
const IDP: &str = "https://idp.example.test/saml";
const IDP_SSO: &str = "https://idp.example.test/sso";

/// A key pair and self-signed certificate of an identity provider.
struct Idp {
    dir: tempfile::TempDir,
}

impl Idp {
    fn new() -> Idp {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(python()).arg(script()).arg("keygen").arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
        Idp { dir }
    }

    fn cert_base64(&self) -> String {
        let pem = std::fs::read_to_string(self.dir.path().join("cert.pem")).unwrap();
        pem.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    /// Signs the root element of `xml` as an identity provider does.
    fn sign(&self, xml: &str) -> String {
        let mut child = Command::new(python())
            .arg(script())
            .arg("sign")
            .arg(self.dir.path().join("key.pem"))
            .arg(self.dir.path().join("cert.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "sign: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn metadata(&self) -> String {
        format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{IDP}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>
        <ds:X509Certificate>{}</ds:X509Certificate>
      </ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{IDP_SSO}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#,
            self.cert_base64()
        )
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/saml_idp.py")
}

/// A server trusting `idp`.
async fn app_trusting(idp: &Idp) -> (TestApp, Router) {
    let metadata = idp.dir.path().join("metadata.xml");
    std::fs::write(&metadata, idp.metadata()).unwrap();
    let t = test_app_with(|c| {
        c.auth.public_url = Some(PUBLIC_URL.into());
        c.auth.saml = Some(saml_config(metadata));
    })
    .await;
    let app = amp_server::router(t.state.clone());
    (t, app)
}

fn saml_config(idp_metadata: PathBuf) -> SamlConfig {
    SamlConfig {
        idp_metadata,
        entity_id: None,
        email_attribute: None,
        assume_email_verified: false,
        max_assertion_age_secs: 300,
        clock_skew_secs: 60,
        request_ttl_secs: 600,
    }
}

/// Starts a sign-in and returns the id of the request AMP sent to the provider.
async fn start(app: &Router) -> String {
    let (status, headers, _) = request_raw(app, Method::GET, "/auth/saml/login", &[], "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers["location"].to_str().unwrap().to_owned();
    let query = location.strip_prefix(&format!("{IDP_SSO}?")).expect("the provider's sign-in URL");
    let (name, encoded) = form_urlencoded::parse(query.as_bytes()).next().unwrap();
    assert_eq!(name, "SAMLRequest");
    let deflated = STANDARD.decode(encoded.as_bytes()).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&deflated[..]).read_to_string(&mut xml).unwrap();
    assert!(xml.contains(&format!("AssertionConsumerServiceURL=\"{ACS}\"")), "{xml}");
    assert!(xml.contains(&format!("<saml:Issuer>{AUDIENCE}</saml:Issuer>")), "{xml}");
    let id = xml.split("ID=\"").nth(1).unwrap().split('"').next().unwrap();
    id.to_owned()
}

/// What an assertion says; each test changes what its attack needs.
#[derive(Clone)]
struct Claims {
    id: String,
    in_response_to: Option<String>,
    name_id: String,
    issuer: String,
    audience: String,
    recipient: String,
    issued: chrono::DateTime<Utc>,
    not_on_or_after: chrono::DateTime<Utc>,
}

fn claims(request: &str, email: &str) -> Claims {
    let now = Utc::now();
    Claims {
        id: format!("_a{}", uuid::Uuid::new_v4().simple()),
        in_response_to: Some(request.to_owned()),
        name_id: email.to_owned(),
        issuer: IDP.to_owned(),
        audience: AUDIENCE.to_owned(),
        recipient: ACS.to_owned(),
        issued: now,
        not_on_or_after: now + Duration::minutes(5),
    }
}

fn ts(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn assertion(c: &Claims) -> String {
    let in_response_to =
        c.in_response_to.as_ref().map(|r| format!(" InResponseTo=\"{r}\"")).unwrap_or_default();
    format!(
        r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{issued}"><saml:Issuer>{issuer}</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{recipient}"{in_response_to}/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{issued}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{issued}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="displayName"><saml:AttributeValue>Ada Lovelace</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"#,
        id = c.id,
        issued = ts(c.issued),
        issuer = c.issuer,
        name_id = c.name_id,
        until = ts(c.not_on_or_after),
        recipient = c.recipient,
        audience = c.audience,
    )
}

/// A `Response` around `inner` (an assertion, signed or not, or whatever an attack puts).
fn response(request: &str, inner: &str) -> String {
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{}" Version="2.0" IssueInstant="{}" Destination="{ACS}" InResponseTo="{request}"><saml:Issuer>{IDP}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>{inner}</samlp:Response>"#,
        uuid::Uuid::new_v4().simple(),
        ts(Utc::now()),
    )
}

async fn post_acs(app: &Router, xml: &str) -> JsonResponse {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLResponse", &STANDARD.encode(xml))
        .append_pair("RelayState", "")
        .finish();
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let (status, headers, bytes) = request_raw(app, Method::POST, "/auth/saml/acs", &headers, body).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    JsonResponse { status, headers, body }
}

fn refused(r: &JsonResponse, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {:?}", r.body);
    assert_eq!(r.body["error"]["code"], "unauthenticated", "{what}");
    assert!(r.body.get("access_token").is_none(), "{what}");
}

#[tokio::test]
async fn a_signed_assertion_signs_in_once_and_its_replay_is_refused() {
    let idp = Idp::new();
    let (_t, app) = app_trusting(&idp).await;

    let request = start(&app).await;
    let c = claims(&request, "ada@example.test");
    let answer = response(&request, &idp.sign(&assertion(&c)));
    let r = post_acs(&app, &answer).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let access = r.body["access_token"].as_str().unwrap();
    let me = send(app.clone(), Method::GET, "/session/current", Some(access), None).await;
    assert_eq!(me.body["user"]["email"], "ada@example.test");
    assert_eq!(me.body["user"]["display_name"], "Ada Lovelace");
    assert_eq!(me.body["user"]["email_verified"], false, "SAML says nothing of verification by default");

    // The same answer again: its request was used.
    refused(&post_acs(&app, &answer).await, "replayed response");
    // The same assertion id answering a new request: the replay cache.
    let second = start(&app).await;
    let again = Claims { in_response_to: Some(second.clone()), ..c.clone() };
    refused(
        &post_acs(&app, &response(&second, &idp.sign(&assertion(&again)))).await,
        "replayed assertion id",
    );

    // The same person signs in again with a new assertion: the same account.
    let third = start(&app).await;
    let r =
        post_acs(&app, &response(&third, &idp.sign(&assertion(&claims(&third, "ada@example.test"))))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let me2 = send(app.clone(), Method::GET, "/session/current", r.body["access_token"].as_str(), None).await;
    assert_eq!(me2.body["user"]["id"], me.body["user"]["id"]);
}

#[tokio::test]
async fn a_response_signed_as_a_whole_signs_in() {
    let idp = Idp::new();
    let (_t, app) = app_trusting(&idp).await;
    let request = start(&app).await;
    let answer = idp.sign(&response(&request, &assertion(&claims(&request, "grace@example.test"))));
    let r = post_acs(&app, &answer).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // ADFS writes assertions in the default namespace, with the signature's own prefix.
    let request = start(&app).await;
    let unprefixed = assertion(&claims(&request, "hopper@example.test"))
        .replace("saml:", "")
        .replace("xmlns:saml=", "xmlns=");
    let r = post_acs(&app, &response(&request, &idp.sign(&unprefixed))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn unsigned_foreign_and_tampered_answers_are_refused() {
    let idp = Idp::new();
    let stranger = Idp::new();
    let (_t, app) = app_trusting(&idp).await;

    let request = start(&app).await;
    let c = claims(&request, "ada@example.test");
    refused(&post_acs(&app, &response(&request, &assertion(&c))).await, "unsigned");
    refused(
        &post_acs(&app, &response(&request, &stranger.sign(&assertion(&c)))).await,
        "another certificate",
    );
    let tampered = idp.sign(&assertion(&c)).replace("ada@example.test", "eve@example.test");
    refused(&post_acs(&app, &response(&request, &tampered)).await, "changed after signing");
    // A signed response whose assertion was swapped afterwards.
    let signed = idp.sign(&response(&request, &assertion(&c)));
    let swapped = signed.replace(&assertion(&c), &assertion(&claims(&request, "eve@example.test")));
    assert_ne!(signed, swapped);
    refused(&post_acs(&app, &swapped).await, "assertion swapped in a signed response");

    // None of it used the request up: the genuine answer still works.
    assert_eq!(post_acs(&app, &response(&request, &idp.sign(&assertion(&c)))).await.status, StatusCode::OK);
}

#[tokio::test]
async fn expired_early_stale_and_misdirected_assertions_are_refused() {
    let idp = Idp::new();
    let (_t, app) = app_trusting(&idp).await;
    let request = start(&app).await;
    let base = claims(&request, "ada@example.test");
    let now = Utc::now();
    let cases = [
        ("expired", Claims { not_on_or_after: now - Duration::minutes(5), ..base.clone() }),
        ("issued in the future", Claims { issued: now + Duration::minutes(10), ..base.clone() }),
        ("issued an hour ago", Claims { issued: now - Duration::hours(1), ..base.clone() }),
        ("another audience", Claims { audience: "https://other.example.test".into(), ..base.clone() }),
        ("another recipient", Claims { recipient: "https://other.example.test/acs".into(), ..base.clone() }),
        ("another issuer", Claims { issuer: "https://evil.example.test".into(), ..base.clone() }),
        ("an unknown request", Claims { in_response_to: Some("_never-asked".into()), ..base.clone() }),
        ("no request (IdP-initiated)", Claims { in_response_to: None, ..base.clone() }),
    ];
    for (what, c) in cases {
        let inner = idp.sign(&assertion(&c));
        let r = post_acs(&app, &response(c.in_response_to.as_deref().unwrap_or(&request), &inner)).await;
        refused(&r, what);
    }
    let wrong_destination = response(&request, &idp.sign(&assertion(&base)))
        .replace(&format!("Destination=\"{ACS}\""), "Destination=\"https://other.example.test/acs\"");
    refused(&post_acs(&app, &wrong_destination).await, "another destination");
    let failed =
        response(&request, &idp.sign(&assertion(&base))).replace("status:Success", "status:Requester");
    refused(&post_acs(&app, &failed).await, "a failure status");
}

#[tokio::test]
async fn signature_wrapping_is_refused() {
    let idp = Idp::new();
    let (_t, app) = app_trusting(&idp).await;
    let request = start(&app).await;
    // Eve holds a genuine signed assertion of her own and wants to be Ada.
    let genuine = idp.sign(&assertion(&claims(&request, "eve@example.test")));
    let mut forged_claims = claims(&request, "ada@example.test");
    let forged = assertion(&forged_claims);

    // 1. The forged assertion where AMP reads, the genuine one hidden beside it.
    let hidden = format!("<samlp:Extensions>{genuine}</samlp:Extensions>{forged}");
    refused(&post_acs(&app, &response(&request, &hidden)).await, "genuine assertion in Extensions");
    // 2. The genuine one nested inside the forged one.
    let nested = forged.replace("</saml:Assertion>", &format!("{genuine}</saml:Assertion>"));
    refused(
        &post_acs(&app, &response(&request, &nested)).await,
        "genuine assertion nested in the forged one",
    );
    // 3. The genuine signature moved into the forged assertion (its reference names the
    //    genuine id).
    let signature =
        &genuine[genuine.find("<ds:Signature").unwrap()..genuine.find("</ds:Signature>").unwrap() + 15];
    let moved = forged.replace("</saml:Issuer>", &format!("</saml:Issuer>{signature}"));
    refused(&post_acs(&app, &response(&request, &moved)).await, "signature moved to a forged assertion");
    // 4. The forged assertion taking the genuine one's id, the genuine one in a ds:Object.
    let genuine_id = genuine.split("ID=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    forged_claims.id = genuine_id;
    let same_id = assertion(&forged_claims).replace(
        "</saml:Issuer>",
        &format!(
            "</saml:Issuer>{}",
            signature.replace("</ds:Signature>", &format!("<ds:Object>{genuine}</ds:Object></ds:Signature>"))
        ),
    );
    refused(&post_acs(&app, &response(&request, &same_id)).await, "duplicate ids");
    // 5. Two assertions at the top, only the first signed.
    refused(
        &post_acs(&app, &response(&request, &format!("{genuine}{forged}"))).await,
        "a second, unsigned assertion",
    );

    // 6. A comment slipped into a genuine NameID after signing (comments are not signed):
    //    the whole value counts, not its first part.
    let request = start(&app).await;
    let signed = idp.sign(&assertion(&claims(&request, "ada@example.test.evil.test")));
    let commented = signed.replace("ada@example.test.evil.test", "ada@example.test<!---->.evil.test");
    let r = post_acs(&app, &response(&request, &commented)).await;
    assert_eq!(r.status, StatusCode::OK, "the signature still holds: {:?}", r.body);
    let me = send(app.clone(), Method::GET, "/session/current", r.body["access_token"].as_str(), None).await;
    assert_eq!(me.body["user"]["email"], "ada@example.test.evil.test");
}

#[tokio::test]
async fn hostile_xml_and_malformed_posts_get_clear_errors() {
    let idp = Idp::new();
    let (_t, app) = app_trusting(&idp).await;
    let request = start(&app).await;
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}",
        response(&request, "&b;")
    );
    refused(&post_acs(&app, &bomb).await, "a DOCTYPE with entities");
    refused(&post_acs(&app, "not xml at all").await, "not XML");
    // Deep nesting under a made-up signature (canonicalization recurses per level), and an
    // element with thousands of namespaced attributes: refused before any of that work.
    let fake_signature = "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/><ds:Reference URI=\"#_deep\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>";
    let deep = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"_deep\" Version=\"2.0\">{fake_signature}{}{}</samlp:Response>",
        "<a>".repeat(19_000),
        "</a>".repeat(19_000)
    );
    refused(&post_acs(&app, &deep).await, "19,000 levels deep");
    let attributes: String = (0..3000).map(|i| format!(" xmlns:p{i}=\"urn:p{i}\" p{i}:a=\"x\"")).collect();
    let wide = response(&request, &format!("<e{attributes}/>"));
    refused(&post_acs(&app, &wide).await, "thousands of attributes");

    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (status, _, _) = request_raw(&app, Method::POST, "/auth/saml/acs", &form, "RelayState=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no SAMLResponse field");
    let json = [("content-type", "application/json")];
    let (status, _, _) = request_raw(&app, Method::POST, "/auth/saml/acs", &json, "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not a form");
    let (status, _, _) = request_raw(&app, Method::POST, "/auth/saml/acs", &form, "SAMLResponse=%%%").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not base64");
}

#[tokio::test]
async fn a_first_saml_sign_in_never_takes_over_a_password_account() {
    let idp = Idp::new();
    let (_t, app) = app_trusting(&idp).await;
    let owner = support::person(&app, "ada@example.test").await;
    let request = start(&app).await;
    let r = post_acs(&app, &response(&request, &idp.sign(&assertion(&claims(&request, "ada@example.test")))))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let me = send(app.clone(), Method::GET, "/session/current", Some(&owner), None).await;
    assert_eq!(me.body["user"]["email"], "ada@example.test");
}

#[tokio::test]
async fn service_provider_metadata_is_published_and_saml_is_404_when_off() {
    let idp = Idp::new();
    let (_t, app) = app_trusting(&idp).await;
    let (status, headers, body) = request_raw(&app, Method::GET, "/auth/saml/metadata", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/samlmetadata+xml");
    let xml = String::from_utf8(body.to_vec()).unwrap();
    assert!(xml.contains(&format!("entityID=\"{AUDIENCE}\"")), "{xml}");
    assert!(xml.contains(&format!("Location=\"{ACS}\"")), "{xml}");
    assert!(xml.contains("WantAssertionsSigned=\"true\""), "{xml}");

    let off = test_app_with(|_| {}).await;
    let app = amp_server::router(off.state.clone());
    for path in ["/auth/saml/metadata", "/auth/saml/login"] {
        let (status, _, _) = request_raw(&app, Method::GET, path, &[], "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn unusable_metadata_stops_the_server_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("metadata.xml");
    let one = |idp: Idp| idp.metadata().replace("<?xml version=\"1.0\"?>", "");
    let two_providers = format!(
        "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\">{}{}</md:EntitiesDescriptor>",
        one(Idp::new()),
        one(Idp::new())
    );
    for (what, contents) in [
        ("missing", None),
        ("not xml", Some("<nope")),
        ("several providers", Some(&*two_providers)),
        (
            "no certificate",
            Some(
                "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"><md:IDPSSODescriptor><md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"https://x\"/></md:IDPSSODescriptor></md:EntityDescriptor>",
            ),
        ),
    ] {
        match contents {
            Some(c) => std::fs::write(&metadata, c).unwrap(),
            None => {
                let _ = std::fs::remove_file(&metadata);
            }
        }
        let data = tempfile::tempdir().unwrap();
        let mut config = amp_core::AmpConfig { data_dir: data.path().to_path_buf(), ..Default::default() };
        config.auth.public_url = Some(PUBLIC_URL.into());
        config.auth.saml = Some(saml_config(metadata.clone()));
        let err = match amp_server::AppState::open(config).await {
            Ok(_) => panic!("{what}: the server started"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("auth.saml.idp_metadata"), "{what}: {err}");
    }
}

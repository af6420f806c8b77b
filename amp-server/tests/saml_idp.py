"""A SAML identity provider's signing half, for tests/saml.rs.

    saml_idp.py keygen DIR        writes DIR/key.pem and DIR/cert.pem (RSA 2048, self-signed)
    saml_idp.py sign KEY CERT     signs the root element of the XML on stdin, enveloped,
                                  with exclusive C14N, RSA-SHA256 and SHA-256, the way
                                  identity providers do, and writes the result to stdout

The signature goes right after the root's Issuer, where the SAML schema puts it. signxml
canonicalizes with libxml2, so AMP's own canonicalization is checked against another one.
"""

import datetime
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner, methods

DSIG = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


def keygen(directory):
    out = pathlib.Path(directory)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test idp")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    (out / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (out / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def sign(key_path, cert_path):
    root = etree.fromstring(sys.stdin.buffer.read())
    issuer = next((c for c in root if etree.QName(c).localname == "Issuer"), None)
    placeholder = etree.Element(etree.QName(DSIG, "Signature"), nsmap={"ds": DSIG})
    placeholder.set("Id", "placeholder")
    if issuer is not None:
        issuer.addnext(placeholder)
    else:
        root.insert(0, placeholder)
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=EXC_C14N,
    )
    signed = signer.sign(
        root,
        key=pathlib.Path(key_path).read_bytes(),
        cert=pathlib.Path(cert_path).read_text(),
        reference_uri="#" + root.get("ID"),
    )
    sys.stdout.buffer.write(etree.tostring(signed))


if __name__ == "__main__":
    if sys.argv[1] == "keygen":
        keygen(sys.argv[2])
    elif sys.argv[1] == "sign":
        sign(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: saml_idp.py keygen DIR | sign KEY CERT < xml")

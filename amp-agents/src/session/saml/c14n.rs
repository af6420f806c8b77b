//! Exclusive XML Canonicalization 1.0, without comments
//! (<https://www.w3.org/TR/xml-exc-c14n/>): the byte form of an element that SAML
//! signatures digest and sign.
//!
//! Only what a signed SAML message needs: the canonical form of one element's subtree,
//! optionally leaving out one descendant (the enveloped `Signature`), with an optional
//! `InclusiveNamespaces` prefix list.

use std::collections::BTreeMap;

use roxmltree::{Node, NodeId};

/// Canonicalizes `apex` and its descendants, leaving out `excluded` (and what it holds).
/// `inclusive` lists prefixes (`#default` for the default namespace) rendered wherever they
/// are in scope, as inclusive canonicalization would.
pub(crate) fn canonicalize(apex: Node<'_, '_>, excluded: Option<NodeId>, inclusive: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(apex.range().len());
    element(apex, excluded, inclusive, &BTreeMap::new(), &mut out);
    out
}

/// The prefix of an element as written (`""` for none), read from the source text,
/// because several prefixes may name the same namespace.
fn element_prefix<'a>(node: Node<'_, 'a>) -> &'a str {
    let source = node.document().input_text();
    let start = node.range().start + 1;
    let qname_end = source[start..]
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .map_or(source.len(), |i| start + i);
    match source[start..qname_end].split_once(':') {
        Some((prefix, _)) => prefix,
        None => "",
    }
}

fn attribute_prefix<'a>(node: Node<'_, 'a>, attr: &roxmltree::Attribute<'_, 'a>) -> &'a str {
    // Read up to the `=` rather than trusting the range's length, which roxmltree caps.
    let source = node.document().input_text();
    let start = attr.range_qname().start;
    let end =
        source[start..].find(|c: char| c.is_whitespace() || c == '=').map_or(source.len(), |i| start + i);
    source[start..end].split_once(':').map_or("", |(prefix, _)| prefix)
}

fn element(
    node: Node<'_, '_>,
    excluded: Option<NodeId>,
    inclusive: &[String],
    rendered: &BTreeMap<String, String>,
    out: &mut Vec<u8>,
) {
    let prefix = element_prefix(node);
    // Namespaces this element visibly uses: its own prefix and its attributes' prefixes.
    let mut used: Vec<&str> = vec![prefix];
    let attributes: Vec<_> = node.attributes().collect();
    for attr in &attributes {
        let p = attribute_prefix(node, attr);
        if !p.is_empty() && p != "xml" {
            used.push(p);
        }
    }
    for p in inclusive {
        let p = if p == "#default" { "" } else { p.as_str() };
        let in_scope = if p.is_empty() {
            node.default_namespace().is_some()
        } else {
            node.lookup_namespace_uri(Some(p)).is_some()
        };
        if in_scope {
            used.push(p);
        }
    }
    let mut declare: BTreeMap<String, String> = BTreeMap::new();
    for p in used {
        let uri = if p.is_empty() {
            node.default_namespace().unwrap_or("")
        } else {
            node.lookup_namespace_uri(Some(p)).unwrap_or("")
        };
        let already = rendered.get(p).map(String::as_str);
        // An empty default namespace needs saying only when an output ancestor set one.
        let needed = if p.is_empty() && uri.is_empty() {
            already.is_some_and(|u| !u.is_empty())
        } else {
            already != Some(uri)
        };
        if needed {
            declare.insert(p.to_owned(), uri.to_owned());
        }
    }

    let qname = |p: &str, local: &str| if p.is_empty() { local.to_owned() } else { format!("{p}:{local}") };
    let name = qname(prefix, node.tag_name().name());
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    // BTreeMap order: the default namespace (empty prefix) first, then by prefix.
    for (p, uri) in &declare {
        if p.is_empty() {
            out.extend_from_slice(b" xmlns=\"");
        } else {
            out.extend_from_slice(b" xmlns:");
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(b"=\"");
        }
        escape_attribute(uri, out);
        out.push(b'"');
    }
    // Attributes by namespace URI (none first), then local name.
    let mut sorted: Vec<_> = attributes
        .iter()
        .map(|a| (a.namespace().unwrap_or(""), a.name(), attribute_prefix(node, a), a.value()))
        .collect();
    sorted.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (_, local, p, value) in sorted {
        out.push(b' ');
        out.extend_from_slice(qname(p, local).as_bytes());
        out.extend_from_slice(b"=\"");
        escape_attribute(value, out);
        out.push(b'"');
    }
    out.push(b'>');

    let mut inner = rendered.clone();
    inner.extend(declare);
    for child in node.children() {
        if Some(child.id()) == excluded {
            continue;
        }
        if child.is_element() {
            element(child, excluded, inclusive, &inner, out);
        } else if child.is_text() {
            escape_text(child.text().unwrap_or_default(), out);
        } else if let Some(pi) = child.pi() {
            out.extend_from_slice(b"<?");
            out.extend_from_slice(pi.target.as_bytes());
            if let Some(value) = pi.value {
                out.push(b' ');
                out.extend_from_slice(value.as_bytes());
            }
            out.extend_from_slice(b"?>");
        }
        // Comments are left out.
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
}

fn escape_text(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

fn escape_attribute(value: &str, out: &mut Vec<u8>) {
    for c in value.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\t' => out.extend_from_slice(b"&#x9;"),
            '\n' => out.extend_from_slice(b"&#xA;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, path: &[&str]) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let mut node = doc.root_element();
        for name in path {
            node = node.children().find(|n| n.tag_name().name() == *name).unwrap();
        }
        String::from_utf8(canonicalize(node, None, &[])).unwrap()
    }

    #[test]
    fn only_visibly_used_namespaces_are_rendered_at_the_apex() {
        // The W3C recommendation's own example (section 2.2): `n1` is used, `n2` is not.
        let xml = r#"<n0:local xmlns:n0="foo:bar" xmlns:n3="ftp://example.org"><n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"/></n1:elem2></n0:local>"#;
        assert_eq!(
            c14n(xml, &["elem2"]),
            r#"<n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"></n3:stuff></n1:elem2>"#
        );
    }

    #[test]
    fn attributes_sort_by_namespace_then_name_and_values_are_escaped() {
        let xml = "<r xmlns:b=\"urn:b\" xmlns:a=\"urn:a\"><e z=\"1\" b:y=\"2\" a:y=\"3\" x=\"&lt;&amp;&quot;&#9;\">t&amp;&gt;<!-- gone --></e></r>";
        assert_eq!(
            c14n(xml, &["e"]),
            "<e xmlns:a=\"urn:a\" xmlns:b=\"urn:b\" x=\"&lt;&amp;&quot;&#x9;\" z=\"1\" a:y=\"3\" b:y=\"2\">t&amp;&gt;</e>"
        );
    }

    #[test]
    fn a_default_namespace_is_declared_once_and_undeclared_when_left() {
        let xml = r#"<r xmlns="urn:d"><a><b xmlns=""><c/></b></a></r>"#;
        assert_eq!(c14n(xml, &["a"]), r#"<a xmlns="urn:d"><b xmlns=""><c></c></b></a>"#);
    }
}

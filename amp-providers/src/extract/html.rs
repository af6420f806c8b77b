//! HTML: the text a reader of the page sees.
//!
//! Parsed with html5ever (through scraper), so broken markup is repaired the way browsers
//! repair it and entities are decoded. What a browser does not show is left out: `head`,
//! scripts, styles, templates, `noscript` fallbacks, and elements hidden with the `hidden`
//! attribute, `aria-hidden="true"` or an inline `display:none` / `visibility:hidden`.
//! Block elements become line breaks (paragraph-like ones blank lines), table cells tabs.
//!
//! html5ever's tree builder takes time quadratic in how deeply elements nest (each start
//! tag looks through the stack of open elements), and it cannot be interrupted, so a few
//! megabytes of `<div><div>…` would keep a thread busy for hours after the extraction
//! timed out. Nesting is therefore estimated with a cheap scan first, and a document
//! nested deeper than [`MAX_DEPTH`] is refused, as browsers cap it too.

use amp_core::{Error, Result};
use scraper::{Html, Node};

use super::text::tidy_layout;

/// Deepest element nesting accepted. Real pages stay within a few hundred.
pub(super) const MAX_DEPTH: usize = 1_000;

/// The visible text of an HTML document, whitespace made regular.
pub(super) fn visible_text(html: &str) -> Result<String> {
    if nesting_depth(html, MAX_DEPTH) > MAX_DEPTH {
        return Err(Error::invalid_input(format!("the HTML nests elements more than {MAX_DEPTH} deep")));
    }
    let document = Html::parse_document(html);
    let mut out = TextSink::default();
    let root = document.tree.root();
    // A depth-first walk by first-child / next-sibling / parent links, so deeply nested
    // markup cannot exhaust the stack.
    let mut current = root.first_child();
    while let Some(node) = current {
        if out.open(node.value())
            && let Some(child) = node.first_child()
        {
            current = Some(child);
            continue;
        }
        let mut done = node;
        current = loop {
            if done.value().is_element() && !is_skipped(done.value()) {
                out.close(done.value());
            }
            if let Some(sibling) = done.next_sibling() {
                break Some(sibling);
            }
            match done.parent() {
                Some(parent) if parent.id() != root.id() => done = parent,
                _ => break None,
            }
        };
    }
    Ok(tidy_layout(&out.text))
}

/// How deeply the elements of `html` nest, as a tree builder would see it, counted up to
/// just past `cap`. Elements that cannot hold others (`br`, `img`…) or whose end tag is
/// optional (`p`, `li`, `td`…, closed by their next sibling) do not add to it; the content
/// of `script`, `style` and the like is text; comments are skipped; `<x/>` opens an element
/// except inside `svg` or `math`, where it is empty, as in a real parser.
fn nesting_depth(html: &str, cap: usize) -> usize {
    let lower = html.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let (mut depth, mut deepest, mut foreign) = (0usize, 0usize, 0usize);
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        at += offset + 1;
        if bytes[at..].starts_with(b"!--") {
            match find(bytes, at + 3, b"-->") {
                Some(end) => at = end + 3,
                None => break,
            }
            continue;
        }
        let closing = bytes.get(at) == Some(&b'/');
        let name_start = if closing { at + 1 } else { at };
        let name_len =
            bytes[name_start..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').count();
        if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name = &lower[name_start..name_start + name_len];
        let Some(end) = tag_end(bytes, name_start + name_len) else {
            break;
        };
        let self_closing = bytes[end - 1] == b'/';
        at = end + 1;
        let nests = !is_void(name) && !has_optional_end(name);
        if closing {
            if matches!(name, "svg" | "math") {
                foreign = foreign.saturating_sub(1);
            }
            if nests {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        if self_closing && foreign > 0 {
            continue;
        }
        if matches!(
            name,
            "script" | "style" | "textarea" | "title" | "xmp" | "iframe" | "noembed" | "noframes"
        ) {
            let mut closing_tag = b"</".to_vec();
            closing_tag.extend_from_slice(name.as_bytes());
            match find(bytes, at, &closing_tag) {
                Some(close) => at = close,
                None => break,
            }
            continue;
        }
        if matches!(name, "svg" | "math") && !self_closing {
            foreign += 1;
        }
        if nests {
            depth += 1;
            deepest = deepest.max(depth);
            if deepest > cap {
                break;
            }
        }
    }
    deepest
}

/// Where the tag whose name ends at `from` ends (its `>`), skipping quoted attribute values.
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| from + i)
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
            | "keygen"
            | "frame"
            | "basefont"
            | "bgsound"
            | "image"
    )
}

fn has_optional_end(name: &str) -> bool {
    matches!(
        name,
        "html"
            | "head"
            | "body"
            | "p"
            | "li"
            | "dt"
            | "dd"
            | "option"
            | "optgroup"
            | "tr"
            | "td"
            | "th"
            | "thead"
            | "tbody"
            | "tfoot"
            | "colgroup"
            | "caption"
            | "rb"
            | "rt"
            | "rp"
            | "rtc"
    )
}

/// Whether a node's subtree is left out of the text.
fn is_skipped(node: &Node) -> bool {
    match node {
        Node::Element(element) => is_hidden(element.name(), |name| element.attr(name)),
        Node::Comment(_) | Node::Doctype(_) | Node::ProcessingInstruction(_) => true,
        _ => false,
    }
}

/// The visibility rules, on an element's name and attributes.
fn is_hidden<'a>(name: &str, attr: impl Fn(&str) -> Option<&'a str>) -> bool {
    if matches!(name, "head" | "script" | "style" | "noscript" | "template" | "title" | "meta" | "link") {
        return true;
    }
    if attr("hidden").is_some() {
        return true;
    }
    if attr("aria-hidden").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return true;
    }
    attr("style").is_some_and(style_hides)
}

/// Whether an inline style declares `display: none` or `visibility: hidden` (or
/// `collapse`), with any spacing, case or `!important`.
fn style_hides(style: &str) -> bool {
    style.split(';').any(|declaration| {
        let Some((property, value)) = declaration.split_once(':') else {
            return false;
        };
        let property = property.trim().to_ascii_lowercase();
        let value = value.to_ascii_lowercase();
        let value = value.trim().trim_end_matches("!important").trim();
        (property == "display" && value == "none")
            || (property == "visibility" && matches!(value, "hidden" | "collapse"))
    })
}

/// How an element breaks the flow of text.
enum Break {
    /// Runs on with its neighbours (`span`, `a`, `b`…).
    Inline,
    /// Starts and ends a line (`div`, `li`, `tr`…).
    Line,
    /// Stands apart as a paragraph (`p`, headings, lists, tables…).
    Paragraph,
    /// A table cell: a tab after it.
    Cell,
}

fn break_of(name: &str) -> Break {
    match name {
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "dl" | "table" | "blockquote"
        | "pre" | "section" | "article" | "header" | "footer" | "nav" | "aside" | "main" | "figure"
        | "form" | "fieldset" | "address" | "details" | "hr" => Break::Paragraph,
        "div" | "li" | "tr" | "dt" | "dd" | "br" | "caption" | "figcaption" | "summary" | "legend"
        | "option" | "body" | "html" | "center" | "textarea" | "thead" | "tbody" | "tfoot" => Break::Line,
        "td" | "th" => Break::Cell,
        _ => Break::Inline,
    }
}

#[derive(Default)]
struct TextSink {
    text: String,
    /// Open `pre` / `textarea` elements, inside which line breaks in the source are kept.
    preformatted: usize,
}

impl TextSink {
    /// Enters a node; returns whether its children are visited.
    fn open(&mut self, node: &Node) -> bool {
        if is_skipped(node) {
            return false;
        }
        match node {
            Node::Text(text) => {
                if self.preformatted > 0 {
                    self.text.push_str(text);
                } else {
                    // Line breaks in flowing HTML source are plain spaces to a browser.
                    self.text.extend(text.chars().map(|c| if c.is_whitespace() { ' ' } else { c }));
                }
                false
            }
            Node::Element(element) => {
                let name = element.name();
                if matches!(name, "pre" | "textarea") {
                    self.preformatted += 1;
                }
                match break_of(name) {
                    Break::Paragraph => self.break_lines(2),
                    Break::Line => self.break_lines(1),
                    Break::Inline | Break::Cell => {}
                }
                true
            }
            _ => true,
        }
    }

    /// Leaves an element whose children were visited (or that had none).
    fn close(&mut self, node: &Node) {
        let Node::Element(element) = node else {
            return;
        };
        let name = element.name();
        if matches!(name, "pre" | "textarea") {
            self.preformatted = self.preformatted.saturating_sub(1);
        }
        if name == "br" {
            // A void element: its one line break was made when it opened.
            return;
        }
        match break_of(name) {
            Break::Paragraph => self.break_lines(2),
            Break::Line => self.break_lines(1),
            Break::Cell => self.text.push('\t'),
            Break::Inline => {}
        }
    }

    /// Ends the text so far with at least `count` line breaks (only spaces between them
    /// count as nothing), so that nested blocks do not pile up blank lines.
    fn break_lines(&mut self, count: usize) {
        let tail = self.text.len() - self.text.trim_end_matches([' ', '\t', '\n']).len();
        let have = self.text[self.text.len() - tail..].matches('\n').count();
        for _ in have..count {
            self.text.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn visibility_rules() {
        assert!(is_hidden("script", attrs(&[])));
        assert!(is_hidden("template", attrs(&[])));
        assert!(is_hidden("div", attrs(&[("hidden", "")])));
        assert!(is_hidden("div", attrs(&[("aria-hidden", "TRUE")])));
        assert!(!is_hidden("div", attrs(&[("aria-hidden", "false")])));
        assert!(is_hidden("span", attrs(&[("style", "color: red; DISPLAY : none !important")])));
        assert!(is_hidden("span", attrs(&[("style", "visibility:hidden")])));
        assert!(!is_hidden("span", attrs(&[("style", "display:block; visibility: visible")])));
        assert!(!is_hidden("p", attrs(&[("class", "hidden")])));
    }

    #[test]
    fn only_visible_text_remains() {
        let html = r#"<!DOCTYPE html><html><head><title>Tab title</title>
            <style>p { color: red }</style><script>var secret = "no";</script></head>
            <body><h1>Caf&eacute; &amp; Bar</h1>
            <p>First   paragraph
               continues here.<!-- a comment --></p>
            <div hidden>hidden div</div><span aria-hidden="true">icon</span>
            <p style="display:none">invisible</p><noscript>enable JS</noscript>
            <template><p>template</p></template>
            <ul><li>one</li><li>two&nbsp;&lt;3</li></ul>
            <table><tr><th>Name</th><th>Age</th></tr><tr><td>Ann</td><td>42</td></tr></table>
            <p>line<br>break</p><pre>keep
  lines</pre></body></html>"#;
        assert_eq!(
            visible_text(html).unwrap(),
            "Café & Bar\n\nFirst paragraph continues here.\n\none\ntwo <3\n\nName\tAge\nAnn\t42\n\n\
             line\nbreak\n\nkeep\nlines"
        );
    }

    #[test]
    fn deep_nesting_within_the_cap_is_read_without_recursion() {
        let depth = MAX_DEPTH / 2;
        let html = format!("{}deep{}", "<div><span>".repeat(depth), "</span></div>".repeat(depth));
        assert_eq!(visible_text(&html).unwrap(), "deep");
    }

    #[test]
    fn nesting_past_the_cap_is_refused_quickly() {
        let html = "<div>".repeat(200_000);
        let started = std::time::Instant::now();
        let err = visible_text(&html).unwrap_err();
        assert!(err.to_string().contains("more than 1000 deep"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // `<div/>` is no empty element in HTML: it opens a div all the same.
        assert!(visible_text(&"<div/>".repeat(5_000)).is_err());
    }

    #[test]
    fn nesting_is_estimated_as_a_parser_sees_it() {
        assert_eq!(nesting_depth("<div><p>a<p>b<ul><li>x<li>y</ul></div>", 100), 2);
        assert_eq!(nesting_depth("<b>one</b><i>two</i><br><img src='a>b'>", 100), 1);
        assert_eq!(nesting_depth("<!-- <div><div> --><script>if (a<b) { '<div>' }</script><div>", 100), 1);
        let icons = format!("<svg>{}</svg><span>x</span>", "<path d='M0 0'/>".repeat(5_000));
        assert_eq!(nesting_depth(&icons, 100), 1);
        assert_eq!(nesting_depth("a < b and c<d", 100), 0);
        assert_eq!(nesting_depth(&"<span>".repeat(500), 100), 101);
    }
}

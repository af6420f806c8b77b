//! HTML: the text a reader of the page sees.
//!
//! Parsed with html5ever (through scraper), so broken markup is repaired the way browsers
//! repair it and entities are decoded. What a browser does not show is left out: `head`,
//! scripts, styles, templates, `noscript` fallbacks, and elements hidden with the `hidden`
//! attribute, `aria-hidden="true"` or an inline `display:none` / `visibility:hidden`.
//! Block elements become line breaks (paragraph-like ones blank lines), table cells tabs.

use scraper::{Html, Node};

use super::text::tidy_layout;

/// The visible text of an HTML document, whitespace made regular.
pub(super) fn visible_text(html: &str) -> String {
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
    tidy_layout(&out.text)
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
            visible_text(html),
            "Café & Bar\n\nFirst paragraph continues here.\n\none\ntwo <3\n\nName\tAge\nAnn\t42\n\n\
             line\nbreak\n\nkeep\nlines"
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 50_000;
        let html = format!("{}deep{}", "<div><span>".repeat(depth), "</span></div>".repeat(depth));
        assert_eq!(visible_text(&html), "deep");
    }
}

//! The text layer of one PDF page, read from its content stream with lopdf, and what else
//! the page draws.
//!
//! lopdf's own `extract_text` runs lines together (it breaks only at `ET` and `T*`) and puts
//! a space after every `TJ` array, cutting words that are set in several arrays. This walk
//! follows the text and graphics matrices instead: a jump to another baseline is a line
//! break (a big one a paragraph break), a move along the baseline or a wide `TJ` gap is a
//! word space. It also counts what it could not decode, for [`super::quality::is_poor`],
//! and notes whether the page draws images or form XObjects, whose text it cannot see.

use std::collections::{BTreeMap, HashSet};

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Encoding, Object, ObjectId};

/// What one page holds.
#[derive(Debug, Default)]
pub(super) struct PageScan {
    /// The decoded text, not yet tidied.
    pub(super) text: String,
    /// Text-showing operators.
    pub(super) shows: usize,
    /// Codes drawn in one-byte fonts.
    pub(super) glyphs: usize,
    /// Of those, codes the font's encoding has no character for.
    pub(super) missing: usize,
    /// Text-showing operators in a font whose encoding lopdf cannot decode.
    pub(super) undecodable: usize,
    /// Whether the page draws anything but text (paths, images, forms, shadings).
    pub(super) paints: bool,
    /// Whether it draws a form XObject (which may hold text this walk does not read).
    pub(super) forms: bool,
    /// Whether the content stream stopped parsing before its end.
    pub(super) truncated: bool,
}

/// A TJ adjustment wider than this (thousandths of an em, leftward) is a word space.
const TJ_WORD_GAP: f64 = 200.0;

type Matrix = [f64; 6];

const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// `m × n` in PDF's row-vector convention (apply `m`, then `n`).
fn multiply(m: &Matrix, n: &Matrix) -> Matrix {
    [
        m[0] * n[0] + m[1] * n[2],
        m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2],
        m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4],
        m[4] * n[1] + m[5] * n[3] + n[5],
    ]
}

fn number(object: &Object) -> Option<f64> {
    match object {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

fn matrix(operands: &[Object]) -> Option<Matrix> {
    let values: Vec<f64> = operands.iter().filter_map(number).collect();
    values.try_into().ok().filter(|m: &Matrix| m.iter().all(|v| v.is_finite()))
}

/// Reads page `page_id`, decompressing at most `max_content` bytes of its content and fonts.
pub(super) fn scan_page(doc: &Document, page_id: ObjectId, max_content: usize) -> lopdf::Result<PageScan> {
    let mut encodings: BTreeMap<Vec<u8>, Option<Encoding<'_>>> = BTreeMap::new();
    for (name, font) in doc.get_page_fonts(page_id).unwrap_or_default() {
        let encoding = match font.get_font_encoding_with_limit(doc, max_content) {
            Ok(encoding) => Some(encoding),
            Err(e @ lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })) => {
                return Err(e);
            }
            Err(_) => None,
        };
        encodings.insert(name, encoding);
    }
    let forms = form_names(doc, page_id);
    let content = doc.get_page_content_with_limit(page_id, max_content)?;
    let mut walk = Walk::new(&encodings, &forms);
    for operation in Content::decode_iter(&content) {
        match operation {
            Ok(operation) => walk.apply(&operation.operator, &operation.operands),
            Err(_) => {
                walk.scan.truncated = true;
                break;
            }
        }
    }
    Ok(walk.scan)
}

/// Names of the page's XObjects that are forms (the rest are images).
fn form_names(doc: &Document, page_id: ObjectId) -> HashSet<Vec<u8>> {
    let mut names = HashSet::new();
    let Ok((direct, referenced)) = doc.get_page_resources(page_id) else {
        return names;
    };
    let resources = direct.into_iter().chain(referenced.iter().filter_map(|id| doc.get_dictionary(*id).ok()));
    for resources in resources {
        let Some(xobjects) = deref_dict(doc, resources.get(b"XObject").ok()) else {
            continue;
        };
        for (name, xobject) in xobjects.iter() {
            let is_form =
                doc.dereference(xobject).ok().and_then(|(_, o)| o.as_stream().ok()).is_some_and(|s| {
                    s.dict.get(b"Subtype").and_then(Object::as_name).is_ok_and(|n| n == b"Form")
                });
            if is_form {
                names.insert(name.clone());
            }
        }
    }
    names
}

fn deref_dict<'a>(doc: &'a Document, object: Option<&'a Object>) -> Option<&'a Dictionary> {
    doc.dereference(object?).ok()?.1.as_dict().ok()
}

/// Where the last text was drawn.
#[derive(Debug, Clone, Copy)]
struct Origin {
    x: f64,
    y: f64,
    size: f64,
}

struct Walk<'a, 'd> {
    encodings: &'a BTreeMap<Vec<u8>, Option<Encoding<'d>>>,
    forms: &'a HashSet<Vec<u8>>,
    scan: PageScan,
    ctm: Option<Matrix>,
    saved: Vec<Option<Matrix>>,
    text_matrix: Option<Matrix>,
    line_matrix: Option<Matrix>,
    font: Option<Vec<u8>>,
    font_size: f64,
    leading: f64,
    /// Whether the text position was set since the last text was drawn.
    moved: bool,
    last: Option<Origin>,
}

impl<'a, 'd> Walk<'a, 'd> {
    fn new(encodings: &'a BTreeMap<Vec<u8>, Option<Encoding<'d>>>, forms: &'a HashSet<Vec<u8>>) -> Self {
        Walk {
            encodings,
            forms,
            scan: PageScan::default(),
            ctm: None,
            saved: Vec::new(),
            text_matrix: None,
            line_matrix: None,
            font: None,
            font_size: 0.0,
            leading: 0.0,
            moved: false,
            last: None,
        }
    }

    fn apply(&mut self, operator: &str, operands: &[Object]) {
        match operator {
            // Unbalanced q's in a hostile stream must not grow the stack without end.
            "q" if self.saved.len() < 1_000 => self.saved.push(self.ctm),
            "Q" => {
                self.ctm = self.saved.pop().flatten();
                self.moved = true;
            }
            "cm" => {
                if let Some(m) = matrix(operands) {
                    self.ctm = Some(multiply(&m, &self.ctm.unwrap_or(IDENTITY)));
                    self.moved = true;
                }
            }
            "BT" => {
                self.text_matrix = Some(IDENTITY);
                self.line_matrix = Some(IDENTITY);
                self.moved = true;
            }
            "Tf" => {
                self.font = operands.first().and_then(|o| o.as_name().ok()).map(<[u8]>::to_vec);
                self.font_size = operands.get(1).and_then(number).unwrap_or(self.font_size);
            }
            "TL" => self.leading = operands.first().and_then(number).unwrap_or(self.leading),
            "Td" | "TD" => {
                let (Some(tx), Some(ty)) =
                    (operands.first().and_then(number), operands.get(1).and_then(number))
                else {
                    return;
                };
                if operator == "TD" {
                    self.leading = -ty;
                }
                self.translate(tx, ty);
            }
            "Tm" => {
                if let Some(m) = matrix(operands) {
                    self.line_matrix = Some(m);
                    self.text_matrix = Some(m);
                    self.moved = true;
                }
            }
            "T*" => self.translate(0.0, -self.leading),
            "Tj" => self.show(operands.first()),
            "'" => {
                self.translate(0.0, -self.leading);
                self.show(operands.first());
            }
            "\"" => {
                self.translate(0.0, -self.leading);
                self.show(operands.get(2));
            }
            "TJ" => {
                let Some(Object::Array(items)) = operands.first() else {
                    return;
                };
                self.place();
                for item in items {
                    match item {
                        Object::String(..) => self.draw(item),
                        other => {
                            if number(other).is_some_and(|n| -n > TJ_WORD_GAP) {
                                self.space();
                            }
                        }
                    }
                }
            }
            "Do" => {
                self.scan.paints = true;
                if operands.first().and_then(|o| o.as_name().ok()).is_some_and(|n| self.forms.contains(n)) {
                    self.scan.forms = true;
                }
            }
            "BI" | "f" | "F" | "f*" | "B" | "B*" | "b" | "b*" | "S" | "s" | "sh" => self.scan.paints = true,
            _ => {}
        }
    }

    fn translate(&mut self, tx: f64, ty: f64) {
        if !(tx.is_finite() && ty.is_finite()) {
            return;
        }
        let line = multiply(&[1.0, 0.0, 0.0, 1.0, tx, ty], &self.line_matrix.unwrap_or(IDENTITY));
        self.line_matrix = Some(line);
        self.text_matrix = Some(line);
        self.moved = true;
    }

    fn show(&mut self, operand: Option<&Object>) {
        if let Some(operand) = operand {
            self.place();
            self.draw(operand);
        }
    }

    /// Separates what is drawn next from what was drawn before, by where it goes.
    fn place(&mut self) {
        self.scan.shows += 1;
        let device = multiply(&self.text_matrix.unwrap_or(IDENTITY), &self.ctm.unwrap_or(IDENTITY));
        let scale = (device[0] * device[3] - device[1] * device[2]).abs().sqrt();
        let here = Origin { x: device[4], y: device[5], size: (self.font_size.abs() * scale).max(1.0) };
        if let Some(last) = self.last
            && self.moved
        {
            let size = here.size.max(last.size);
            let rise = (here.y - last.y).abs();
            if rise > 1.9 * size {
                self.scan.text.push_str("\n\n");
            } else if rise > 0.6 * size {
                self.scan.text.push('\n');
            } else if (here.x - last.x).abs() > 0.01 {
                self.space();
            }
        }
        self.moved = false;
        self.last = Some(here);
    }

    fn space(&mut self) {
        if !self.scan.text.is_empty() && !self.scan.text.ends_with(char::is_whitespace) {
            self.scan.text.push(' ');
        }
    }

    fn draw(&mut self, string: &Object) {
        let Object::String(bytes, _) = string else {
            return;
        };
        let encoding = self.font.as_ref().and_then(|f| self.encodings.get(f)).and_then(Option::as_ref);
        let Some(encoding) = encoding else {
            self.scan.undecodable += 1;
            return;
        };
        let before = self.scan.text.len();
        if encoding.write_to_string(bytes, &mut self.scan.text).is_err() {
            self.scan.text.truncate(before);
            self.scan.undecodable += 1;
            return;
        }
        if is_one_byte(encoding) {
            let decoded = self.scan.text[before..].chars().count();
            self.scan.glyphs += bytes.len();
            self.scan.missing += bytes.len().saturating_sub(decoded);
        }
    }
}

/// Whether every code of the encoding is one byte, one glyph.
fn is_one_byte(encoding: &Encoding<'_>) -> bool {
    matches!(
        encoding,
        Encoding::OneByteEncoding(_)
            | Encoding::Differences(_)
            | Encoding::SimpleEncoding(b"WinAnsiEncoding")
    )
}

/// The size of page `page_id` as displayed (media box, rotation and user unit applied), in
/// points; `None` if it cannot be read.
pub(super) fn displayed_size(doc: &Document, page_id: ObjectId) -> Option<(f64, f64)> {
    let media_box = inherited(doc, page_id, b"MediaBox")?;
    let corners: Vec<f64> =
        doc.dereference(media_box).ok()?.1.as_array().ok()?.iter().filter_map(number).collect();
    let [x0, y0, x1, y1]: [f64; 4] = corners.try_into().ok()?;
    let unit = inherited(doc, page_id, b"UserUnit").and_then(number).filter(|u| *u > 0.0).unwrap_or(1.0);
    let (width, height) = ((x1 - x0).abs() * unit, (y1 - y0).abs() * unit);
    let rotate = inherited(doc, page_id, b"Rotate").and_then(number).unwrap_or(0.0);
    let quarter_turns = (rotate / 90.0).round().rem_euclid(4.0);
    let size = if quarter_turns == 1.0 || quarter_turns == 3.0 { (height, width) } else { (width, height) };
    (size.0.is_finite() && size.1.is_finite() && size.0 > 0.0 && size.1 > 0.0).then_some(size)
}

/// A page attribute, from the page or the nearest ancestor in the page tree that has it.
fn inherited<'a>(doc: &'a Document, page_id: ObjectId, key: &[u8]) -> Option<&'a Object> {
    let mut node = doc.get_dictionary(page_id).ok()?;
    for _ in 0..64 {
        if let Ok(value) = node.get(key) {
            return Some(value);
        }
        node = doc.get_dictionary(node.get(b"Parent").ok()?.as_reference().ok()?).ok()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk_text(ops: &[(&str, Vec<Object>)]) -> PageScan {
        // A standard Type1 font without an /Encoding: lopdf gives it StandardEncoding.
        let doc = Document::with_version("1.5");
        let font = lopdf::dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Times-Roman" };
        let encoding = font.get_font_encoding_with_limit(&doc, 1 << 20).unwrap();
        assert!(matches!(encoding, Encoding::OneByteEncoding(_)));
        let encodings = BTreeMap::from([(b"F1".to_vec(), Some(encoding))]);
        let forms = HashSet::new();
        let mut walk = Walk::new(&encodings, &forms);
        for (operator, operands) in ops {
            walk.apply(operator, operands);
        }
        walk.scan
    }

    fn s(text: &str) -> Object {
        Object::string_literal(text)
    }

    fn n(v: f64) -> Object {
        Object::Real(v as f32)
    }

    #[test]
    fn baselines_make_lines_and_gaps_make_paragraphs() {
        let scan = walk_text(&[
            ("BT", vec![]),
            ("Tf", vec![Object::Name(b"F1".to_vec()), n(10.0)]),
            ("Td", vec![n(72.0), n(700.0)]),
            ("Tj", vec![s("First line")]),
            ("Td", vec![n(0.0), n(-12.0)]),
            ("Tj", vec![s("second")]),
            ("Td", vec![n(40.0), n(0.0)]),
            ("Tj", vec![s("word")]),
            ("Tj", vec![s("s")]),
            ("Td", vec![n(-40.0), n(-30.0)]),
            ("Tj", vec![s("New paragraph")]),
            ("ET", vec![]),
        ]);
        assert_eq!(scan.text, "First line\nsecond words\n\nNew paragraph");
        assert_eq!(scan.shows, 5);
        assert_eq!(scan.missing, 0);
        assert!(!scan.paints);
    }

    #[test]
    fn tj_kerning_joins_and_wide_gaps_split() {
        let scan = walk_text(&[
            ("BT", vec![]),
            ("Tf", vec![Object::Name(b"F1".to_vec()), n(10.0)]),
            ("TJ", vec![Object::Array(vec![s("Ke"), n(-30.0), s("rned"), n(-333.0), s("words")])]),
            ("TJ", vec![Object::Array(vec![s("go"), n(40.0), s("on")])]),
            ("ET", vec![]),
        ]);
        assert_eq!(scan.text, "Kerned wordsgoon");
    }

    #[test]
    fn the_ctm_places_text_blocks() {
        // Each line in its own block, placed by `cm`: still separate lines.
        let line = |y: f64, text: &str| {
            vec![
                ("q", vec![]),
                ("cm", vec![n(1.0), n(0.0), n(0.0), n(1.0), n(72.0), n(y)]),
                ("BT", vec![]),
                ("Tf", vec![Object::Name(b"F1".to_vec()), n(10.0)]),
                ("Tj", vec![s(text)]),
                ("ET", vec![]),
                ("Q", vec![]),
            ]
        };
        let ops: Vec<_> = line(700.0, "one").into_iter().chain(line(688.0, "two")).collect();
        assert_eq!(walk_text(&ops).text, "one\ntwo");
    }

    #[test]
    fn unknown_fonts_and_unmapped_codes_are_counted() {
        let scan = walk_text(&[
            ("BT", vec![]),
            ("Tf", vec![Object::Name(b"F9".to_vec()), n(10.0)]),
            ("Tj", vec![s("lost")]),
            ("Tf", vec![Object::Name(b"F1".to_vec()), n(10.0)]),
            // 0x0C (a TeX "fi" ligature) has no character in StandardEncoding.
            ("Tj", vec![Object::string_literal(b"de\x0Cne".to_vec())]),
            ("ET", vec![]),
            ("re", vec![n(0.0), n(0.0), n(10.0), n(10.0)]),
            ("f", vec![]),
        ]);
        assert_eq!(scan.undecodable, 1);
        assert_eq!((scan.glyphs, scan.missing), (5, 1));
        assert_eq!(scan.text, "dene");
        assert!(scan.paints);
    }
}

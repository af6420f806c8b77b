//! Plain-text formats (`text/plain`, `text/markdown`, `text/csv`, `application/json`):
//! decoding their bytes, and the whitespace rules every extracted text goes through.
//!
//! Page text is exactly what gets chunked and cited by byte offset, so it is cleaned once,
//! here: a text typed by a person keeps its own spacing ([`tidy_source`]); a text rebuilt
//! from a layout (HTML, DOCX, PDF, OCR) gets its whitespace made regular ([`tidy_layout`]).

use amp_core::{Error, Result};

/// Why a text file was refused: the one encoding error uploaders see.
const UNKNOWN_ENCODING: &str = "the text is not UTF-8 (unknown encoding)";

/// Decodes the bytes of a text file: UTF-8 (a byte-order mark dropped) or UTF-16 with a
/// byte-order mark. Anything else, and any text containing NUL, is refused: guessing a
/// legacy encoding would index mojibake.
pub(super) fn decode(bytes: &[u8]) -> Result<String> {
    let text = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        std::str::from_utf8(rest).map_err(|_| Error::invalid_input(UNKNOWN_ENCODING))?.to_owned()
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        decode_utf16(rest, u16::from_le_bytes)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        decode_utf16(rest, u16::from_be_bytes)?
    } else {
        std::str::from_utf8(bytes).map_err(|_| Error::invalid_input(UNKNOWN_ENCODING))?.to_owned()
    };
    if text.contains('\0') {
        return Err(Error::invalid_input(UNKNOWN_ENCODING));
    }
    Ok(text)
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String> {
    if !bytes.len().is_multiple_of(2) {
        return Err(Error::invalid_input("the text is not valid UTF-16 (odd number of bytes)"));
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<std::result::Result<String, _>>()
        .map_err(|_| Error::invalid_input("the text is not valid UTF-16 (unpaired surrogate)"))
}

/// Cleans a text typed by a person: line ends become `\n`, trailing spaces go, control
/// characters other than tabs go (a form feed becomes a line break), and runs of blank lines
/// shrink to one. Indentation and spacing inside lines stay (Markdown code, CSV fields).
pub(super) fn tidy_source(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace(['\r', '\x0C'], "\n");
    let mut out = String::with_capacity(text.len());
    let mut blank_lines = 0usize;
    for line in text.split('\n') {
        let line: String = line.chars().filter(|c| *c == '\t' || !c.is_control()).collect();
        let line = line.trim_end();
        if line.is_empty() {
            blank_lines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        blank_lines = 0;
        out.push_str(line);
    }
    out
}

/// Cleans a text rebuilt from a layout. Within a line every run of whitespace becomes one
/// space (one tab if the run holds a tab, so table cells stay apart); lines are trimmed;
/// runs of blank lines shrink to one blank line, which marks a paragraph. Control
/// characters, zero-width spaces, byte-order marks and soft hyphens are dropped.
pub(super) fn tidy_layout(text: &str) -> String {
    let text =
        if text.contains('\r') { std::borrow::Cow::Owned(text.replace("\r\n", "\n")) } else { text.into() };
    let mut out = String::with_capacity(text.len());
    let mut blank_lines = 0usize;
    for line in text.split(['\n', '\r', '\x0C', '\u{2028}', '\u{2029}']) {
        let mut tidy = String::with_capacity(line.len());
        let mut gap: Option<char> = None;
        for c in line.chars() {
            if c == '\t' {
                gap = Some('\t');
            } else if c.is_whitespace() {
                gap.get_or_insert(' ');
            } else if c.is_control() || matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}') {
                // Dropped without breaking a word.
            } else {
                if let Some(g) = gap.take()
                    && !tidy.is_empty()
                {
                    tidy.push(g);
                }
                tidy.push(c);
            }
        }
        if tidy.is_empty() {
            blank_lines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        blank_lines = 0;
        out.push_str(&tidy);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_and_without_a_bom() {
        assert_eq!(decode("héllo".as_bytes()).unwrap(), "héllo");
        assert_eq!(decode(b"\xEF\xBB\xBFhi").unwrap(), "hi");
    }

    #[test]
    fn utf16_with_a_bom_in_both_byte_orders() {
        let text = "Grüße, 世界 🎉";
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            le.extend_from_slice(&unit.to_le_bytes());
            be.extend_from_slice(&unit.to_be_bytes());
        }
        assert_eq!(decode(&le).unwrap(), text);
        assert_eq!(decode(&be).unwrap(), text);
    }

    #[test]
    fn broken_utf16_is_refused() {
        assert!(decode(b"\xFF\xFEa").unwrap_err().to_string().contains("odd number"));
        // A lone high surrogate.
        assert!(decode(b"\xFF\xFE\x00\xD8a\x00").unwrap_err().to_string().contains("surrogate"));
    }

    #[test]
    fn latin1_and_nul_are_an_unknown_encoding() {
        let err = decode(b"caf\xE9").unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), UNKNOWN_ENCODING);
        assert_eq!(decode(b"a\0b").unwrap_err().to_string(), UNKNOWN_ENCODING);
        let mut utf16_nul = vec![0xFF, 0xFE];
        utf16_nul.extend_from_slice(&[b'a', 0, 0, 0]);
        assert_eq!(decode(&utf16_nul).unwrap_err().to_string(), UNKNOWN_ENCODING);
    }

    #[test]
    fn source_text_keeps_its_spacing_but_not_its_clutter() {
        let text = "# Title\r\n\r\n\r\n    code  block  \r\n\x07a,  b\x0Cnext\n\n";
        assert_eq!(tidy_source(text), "# Title\n\n    code  block\na,  b\nnext");
    }

    #[test]
    fn layout_text_gets_regular_whitespace() {
        let text = "  Hello \u{00A0}  world\u{200B}!  \n\n\n\n next\tline \t cell \r\nco\u{00AD}operate\x01 ";
        assert_eq!(tidy_layout(text), "Hello world!\n\nnext\tline\tcell\ncooperate");
    }
}

//! What a file really is, from its first bytes, and whether that matches what it claims to
//! be (its declared media type and its name's extension).

use amp_core::{Error, Result};

/// PDF.
pub const PDF: &str = "application/pdf";
/// Word documents (Office Open XML).
pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
/// HTML.
pub const HTML: &str = "text/html";
/// PNG images.
pub const PNG: &str = "image/png";
/// JPEG images.
pub const JPEG: &str = "image/jpeg";
/// TIFF images.
pub const TIFF: &str = "image/tiff";

/// Media types that are text, told apart only by their declaration and extension.
const TEXT_TYPES: &[&str] = &["text/plain", "text/markdown", "text/csv", "application/json", HTML];

/// Whether a media type is read as text.
pub fn is_text_type(media_type: &str) -> bool {
    TEXT_TYPES.contains(&media_type)
}

/// How many leading bytes sniffing needs.
pub const HEAD_BYTES: usize = 8192;

/// What the leading bytes say the file is: a binary format by its magic number, `text` for
/// bytes that read as UTF-8 (or UTF-16 with a byte-order mark), or `None` for anything
/// else.
pub fn detect(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"%PDF-") {
        return Some(PDF);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(PNG);
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(JPEG);
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return Some(TIFF);
    }
    if head.starts_with(b"PK\x03\x04") {
        // Every Office Open XML package is a zip; a Word document names its main part.
        return contains(head, b"word/").then_some(DOCX).or(Some("application/zip"));
    }
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Some("text");
    }
    is_text(head).then_some("text")
}

/// Whether `head` reads as UTF-8 text with no NUL bytes, allowing a character cut off at
/// the end of the sample.
fn is_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut by the sample's end is not a lie.
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The media type an extension stands for, among those AMP reads.
pub fn by_extension(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" | "text" | "log" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "html" | "htm" => HTML,
        "pdf" => PDF,
        "docx" => DOCX,
        "png" => PNG,
        "jpg" | "jpeg" => JPEG,
        "tif" | "tiff" => TIFF,
        _ => return None,
    })
}

/// The usual extension of a media type AMP reads.
fn extension_for(media_type: &str) -> &'static str {
    match media_type {
        "text/markdown" => "md",
        "text/csv" => "csv",
        "application/json" => "json",
        HTML => "html",
        PDF => "pdf",
        DOCX => "docx",
        PNG => "png",
        JPEG => "jpg",
        TIFF => "tiff",
        _ => "txt",
    }
}

/// `name` with the media type's extension appended unless its own already names that
/// type.
pub fn download_name(name: &str, media_type: &str) -> String {
    if by_extension(name) == Some(media_type) {
        name.to_owned()
    } else {
        format!("{name}.{}", extension_for(media_type))
    }
}

/// Checks that the bytes, the declared type and the name agree: the bytes must be what the
/// declaration says (a PDF sent as `text/plain`, a PNG sent as `application/pdf` are
/// refused, naming both), and a known extension must name the same type (`report.txt`
/// declared as `application/pdf` is refused).
pub fn check(name: &str, declared: &str, head: &[u8]) -> Result<()> {
    let mismatch = |what: String| Err(Error::UnsupportedMediaType { media_type: what });
    if let Some(by_name) = by_extension(name)
        && by_name != declared
        && !(TEXT_TYPES.contains(&by_name) && TEXT_TYPES.contains(&declared))
    {
        return mismatch(format!("{declared} (the name {name:?} says {by_name})"));
    }
    let Some(detected) = detect(head) else {
        return mismatch(format!("{declared} (the bytes are not a format AMP reads)"));
    };
    let agrees = if detected == "text" { TEXT_TYPES.contains(&declared) } else { detected == declared };
    if agrees {
        return Ok(());
    }
    let actual = if detected == "text" { "text" } else { detected };
    mismatch(format!("{declared} (the bytes are {actual})"))
}

#[cfg(test)]
mod tests {
    use amp_core::ErrorKind;

    use super::*;

    #[test]
    fn magic_numbers_name_the_format() {
        assert_eq!(detect(b"%PDF-1.7\n..."), Some(PDF));
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n...."), Some(PNG));
        assert_eq!(detect(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(JPEG));
        assert_eq!(detect(b"PK\x03\x04....word/document.xml"), Some(DOCX));
        assert_eq!(detect(b"PK\x03\x04....xl/workbook.xml"), Some("application/zip"));
        assert_eq!(detect("héllo".as_bytes()), Some("text"));
        // A two-byte character cut in half by the sample's end is still text.
        assert_eq!(detect(&"héllo".as_bytes()[..2]), Some("text"));
        assert_eq!(detect(b"a\0b"), None);
        assert_eq!(detect(&[0xC3, 0x28, b'a', b'b', b'c']), None);
    }

    #[test]
    fn downloads_keep_an_extension_that_matches_their_type() {
        assert_eq!(download_name("report.pdf", PDF), "report.pdf");
        assert_eq!(download_name("setup.bat", "text/plain"), "setup.bat.txt");
        assert_eq!(download_name("notes", "text/markdown"), "notes.md");
        assert_eq!(download_name("notes.txt", "text/plain"), "notes.txt");
    }

    #[test]
    fn lies_are_refused_naming_both_types() {
        let err = |name: &str, declared: &str, head: &[u8]| check(name, declared, head).unwrap_err();
        let e = err("report.txt", "text/plain", b"%PDF-1.7\n");
        assert_eq!(e.kind(), ErrorKind::UnsupportedMediaType);
        assert!(e.to_string().contains("text/plain") && e.to_string().contains(PDF), "{e}");
        let e = err("scan.pdf", PDF, b"\x89PNG\r\n\x1a\n");
        assert!(e.to_string().contains(PDF) && e.to_string().contains(PNG), "{e}");
        let e = err("report.txt", PDF, b"%PDF-1.7\n");
        assert!(e.to_string().contains("report.txt"), "{e}");
        assert!(check("notes.md", "text/plain", b"# Notes").is_ok(), "text types may stand for each other");
        assert!(check("report.pdf", PDF, b"%PDF-1.4").is_ok());
        assert!(check("noextension", PNG, b"\x89PNG\r\n\x1a\n").is_ok());
    }
}

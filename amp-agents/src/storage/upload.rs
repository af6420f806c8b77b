//! What an upload must be before anything is stored: a name, a text media type we can
//! read, a size within the limit, and bytes that really are what the type says.

use amp_core::{Error, Result};
use bytes::Bytes;

/// Media types read as text, without conversion.
pub const TEXT_MEDIA_TYPES: &[&str] = &["text/plain", "text/markdown", "text/csv", "application/json"];

/// The longest file name accepted, in characters.
const MAX_NAME_CHARS: usize = 255;

/// A file as it arrives.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The file name as the person's device knows it.
    pub name: String,
    /// The declared media type (`Content-Type`), parameters allowed.
    pub media_type: String,
    /// The bytes.
    pub bytes: Bytes,
}

/// An upload that passed every check: its name, its media type without parameters and
/// its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub name: String,
    pub media_type: String,
    pub text: String,
}

/// Checks `upload` against `max_bytes`, cheapest checks first.
pub(crate) fn check(upload: &Upload, max_bytes: u64) -> Result<Checked> {
    let name = upload.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "a file name needs 1 to {MAX_NAME_CHARS} characters and no control characters"
        )));
    }
    let size = upload.bytes.len() as u64;
    if size > max_bytes {
        return Err(Error::PayloadTooLarge { limit: max_bytes, actual: size });
    }
    if size == 0 {
        return Err(Error::invalid_input("the file is empty"));
    }
    let media_type = media_type(&upload.media_type)?;
    let text = decode(&upload.bytes, &media_type)?;
    if text.trim().is_empty() {
        return Err(Error::invalid_input("the file has no text"));
    }
    Ok(Checked { name: name.to_owned(), media_type, text })
}

/// The essence of a declared media type, if it is one we read (`charset` must be UTF-8
/// or absent).
fn media_type(declared: &str) -> Result<String> {
    let mut parts = declared.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let unsupported =
        || Error::UnsupportedMediaType { media_type: declared.trim().chars().take(100).collect() };
    if !TEXT_MEDIA_TYPES.contains(&essence.as_str()) {
        return Err(unsupported());
    }
    for param in parts {
        if let Some((key, value)) = param.split_once('=')
            && key.trim().eq_ignore_ascii_case("charset")
        {
            let value = value.trim().trim_matches('"');
            if !value.eq_ignore_ascii_case("utf-8") && !value.eq_ignore_ascii_case("us-ascii") {
                return Err(unsupported());
            }
        }
    }
    Ok(essence)
}

/// The text of bytes declared as `media_type`: UTF-8 (a byte-order mark is dropped) with
/// no NUL bytes, else the declaration is false and the upload `UnsupportedMediaType`.
fn decode(bytes: &[u8], media_type: &str) -> Result<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(text.to_owned()),
        _ => Err(Error::UnsupportedMediaType {
            media_type: format!("{media_type} (the bytes are not UTF-8 text)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use amp_core::ErrorKind;

    use super::*;

    fn upload(name: &str, media_type: &str, bytes: &'static [u8]) -> Upload {
        Upload { name: name.into(), media_type: media_type.into(), bytes: Bytes::from_static(bytes) }
    }

    #[test]
    fn text_uploads_pass_with_their_parameters_and_bom_removed() {
        let ok = check(&upload(" notes.md ", "Text/Markdown; charset=\"UTF-8\"", b"\xEF\xBB\xBF# Hi"), 100)
            .unwrap();
        assert_eq!(
            ok,
            Checked { name: "notes.md".into(), media_type: "text/markdown".into(), text: "# Hi".into() }
        );
    }

    #[test]
    fn bad_uploads_get_the_right_kind() {
        let kind = |u: Upload, max| check(&u, max).unwrap_err().kind();
        assert_eq!(kind(upload("a.txt", "text/plain", b"12345"), 4), ErrorKind::PayloadTooLarge);
        assert_eq!(kind(upload("a.txt", "text/plain", b""), 4), ErrorKind::InvalidInput);
        assert_eq!(kind(upload("a.txt", "text/plain", b" \n "), 4), ErrorKind::InvalidInput);
        assert_eq!(kind(upload("", "text/plain", b"x"), 4), ErrorKind::InvalidInput);
        assert_eq!(kind(upload("a\nb", "text/plain", b"x"), 4), ErrorKind::InvalidInput);
        assert_eq!(kind(upload("a.png", "image/png", b"x"), 4), ErrorKind::UnsupportedMediaType);
        assert_eq!(
            kind(upload("a.txt", "text/plain; charset=latin1", b"x"), 4),
            ErrorKind::UnsupportedMediaType
        );
        // A PDF that claims to be text, and text with NUL bytes.
        assert_eq!(
            kind(upload("a.txt", "text/plain", b"%PDF-1.7\n\xE2\xE3\xCF\xD3"), 99),
            ErrorKind::UnsupportedMediaType
        );
        assert_eq!(kind(upload("a.txt", "text/plain", b"a\0b"), 99), ErrorKind::UnsupportedMediaType);
    }
}

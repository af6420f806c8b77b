//! What an upload must be before anything is processed: a clean name, a media type on the
//! allow-list, a size within the limit, and bytes that are what the type says.

use amp_core::{Error, Result};

use super::sniff;

/// The longest file name accepted, in characters.
const MAX_NAME_CHARS: usize = 255;

/// An upload as announced, before (or without) its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The file name as the person's device knows it.
    pub name: String,
    /// The declared media type (`Content-Type`), parameters allowed.
    pub media_type: String,
    /// Its size in bytes, when known.
    pub size_bytes: Option<u64>,
}

/// An announced upload that passed the checks that need no bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub name: String,
    pub media_type: String,
}

/// The policy: which types, how large.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub max_bytes: u64,
    pub allowed: Vec<String>,
}

impl Policy {
    /// Checks what can be checked before the bytes arrive, cheapest first.
    pub fn accept(&self, upload: &Announced) -> Result<Accepted> {
        let name = sanitize_name(&upload.name)?;
        if let Some(size) = upload.size_bytes {
            self.check_size(size)?;
        }
        let media_type = self.media_type(&upload.media_type)?;
        Ok(Accepted { name, media_type })
    }

    /// Empty and oversized files are refused.
    pub fn check_size(&self, size: u64) -> Result<()> {
        if size > self.max_bytes {
            return Err(Error::PayloadTooLarge { limit: self.max_bytes, actual: size });
        }
        if size == 0 {
            return Err(Error::invalid_input("the file is empty"));
        }
        Ok(())
    }

    /// Checks the first bytes against the declared type and the name; a short text file
    /// with nothing but whitespace is refused here rather than failing later.
    pub fn check_bytes(&self, accepted: &Accepted, head: &[u8], size: u64) -> Result<()> {
        sniff::check(&accepted.name, &accepted.media_type, head)?;
        if size <= head.len() as u64
            && sniff::is_text_type(&accepted.media_type)
            && head.trim_ascii().is_empty()
        {
            return Err(Error::invalid_input("the file has no text"));
        }
        Ok(())
    }

    /// The essence of a declared media type, if it is on the allow-list (`charset` must be
    /// UTF-8 or absent).
    fn media_type(&self, declared: &str) -> Result<String> {
        let mut parts = declared.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let unsupported = || Error::UnsupportedMediaType {
            media_type: format!(
                "{} (accepted: {})",
                declared.trim().chars().take(100).collect::<String>(),
                self.allowed.join(", ")
            ),
        };
        if !self.allowed.contains(&essence) {
            return Err(unsupported());
        }
        for param in parts {
            if let Some((key, value)) = param.split_once('=')
                && key.trim().eq_ignore_ascii_case("charset")
            {
                let value = value.trim().trim_matches('"');
                if !["utf-8", "utf8", "us-ascii"].iter().any(|ok| value.eq_ignore_ascii_case(ok)) {
                    return Err(unsupported());
                }
            }
        }
        Ok(essence)
    }
}

/// The name a file is stored and shown under: the last path segment (a device may send
/// `C:\Users\ada\report.pdf` or `../../etc/passwd`), trimmed, without control characters,
/// 1 to 255 characters, never `.` or `..`.
pub(crate) fn sanitize_name(raw: &str) -> Result<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    // Control characters, and the invisible formatting ones that make `a\u{202E}txt.exe`
    // look like `aexe.txt`.
    let cleaned: String = last.chars().filter(|c| !c.is_control() && !is_format(*c)).collect();
    let name = cleaned.trim().trim_start_matches('.').trim();
    if name.is_empty() || raw.chars().count() > 4 * MAX_NAME_CHARS {
        return Err(Error::invalid_input(format!(
            "name: a file name needs 1 to {MAX_NAME_CHARS} characters besides path separators, dots and \
             control characters"
        )));
    }
    let name: String = if name.chars().count() > MAX_NAME_CHARS {
        // Keep the extension, which says what the file is.
        match name.rsplit_once('.') {
            Some((stem, ext)) if ext.chars().count() <= 16 => {
                let keep = MAX_NAME_CHARS - ext.chars().count() - 1;
                format!("{}.{ext}", stem.chars().take(keep).collect::<String>())
            }
            _ => name.chars().take(MAX_NAME_CHARS).collect(),
        }
    } else {
        name.to_owned()
    };
    Ok(name)
}

/// Unicode's invisible format characters: zero-width and bidirectional controls, and the
/// byte-order mark.
fn is_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{00AD}')
}

#[cfg(test)]
mod tests {
    use amp_core::ErrorKind;

    use super::*;

    fn policy() -> Policy {
        Policy { max_bytes: 100, allowed: vec!["text/plain".into(), "application/pdf".into()] }
    }

    fn announced(name: &str, media_type: &str, size: u64) -> Announced {
        Announced { name: name.into(), media_type: media_type.into(), size_bytes: Some(size) }
    }

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(sanitize_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(sanitize_name("C:\\Users\\ada\\report.pdf").unwrap(), "report.pdf");
        assert_eq!(sanitize_name(" no\u{7}tes.txt ").unwrap(), "notes.txt");
        assert_eq!(sanitize_name(".hidden").unwrap(), "hidden");
        assert_eq!(sanitize_name("readme\u{202E}txt.hta").unwrap(), "readmetxt.hta");
        for bad in ["", "..", "a/", "/", "\u{1}\u{2}", "   "] {
            assert_eq!(sanitize_name(bad).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
        let long = format!("{}.pdf", "x".repeat(300));
        let cut = sanitize_name(&long).unwrap();
        assert_eq!(cut.chars().count(), 255);
        assert!(cut.ends_with(".pdf"));
    }

    #[test]
    fn announcements_get_the_right_refusal() {
        let p = policy();
        let kind = |a: Announced| p.accept(&a).unwrap_err().kind();
        assert_eq!(kind(announced("a.txt", "text/plain", 101)), ErrorKind::PayloadTooLarge);
        assert_eq!(kind(announced("a.txt", "text/plain", 0)), ErrorKind::InvalidInput);
        assert_eq!(kind(announced("a.png", "image/png", 5)), ErrorKind::UnsupportedMediaType);
        assert_eq!(
            kind(announced("a.txt", "text/plain; charset=latin1", 5)),
            ErrorKind::UnsupportedMediaType
        );
        let ok = p.accept(&announced(" a.txt ", "Text/Plain; charset=\"UTF-8\"", 5)).unwrap();
        assert_eq!(ok, Accepted { name: "a.txt".into(), media_type: "text/plain".into() });
    }
}

//! Telling whether text decoded from a PDF's text layer can be trusted.
//!
//! lopdf decodes most generated PDFs right, but Type1 fonts with custom encodings (TeX,
//! groff) come out with dropped ligatures, spaces inside words and accents decoded as
//! separate characters. Such output has tell-tale statistics: replacement characters,
//! control and private-use characters, spacing accents glued to letters, and words cut into
//! one-letter pieces; and a font encoding that has no character for some of the codes drawn
//! (a ligature or an accent the encoding lacks is silently dropped). A page that shows them
//! is read again with poppler's `pdftotext`.

/// Whether a page's text looks mis-decoded: `text` as decoded, from `glyphs` codes drawn in
/// one-byte fonts of which `missing` had no character. Short texts are judged on characters
/// only; word statistics need at least [`MIN_WORDS`] words to mean anything.
pub(super) fn is_poor(text: &str, glyphs: usize, missing: usize) -> bool {
    if missing >= 3 && missing * 200 > glyphs || missing * 20 > glyphs {
        return true;
    }
    let mut chars = 0usize;
    let mut bad = 0usize;
    let mut previous: Option<char> = None;
    let mut iter = text.chars().peekable();
    while let Some(c) = iter.next() {
        if c.is_whitespace() {
            previous = Some(c);
            continue;
        }
        chars += 1;
        let next = iter.peek().copied();
        if is_garbage(c)
            || (is_spacing_accent(c)
                && (previous.is_some_and(char::is_alphabetic) || next.is_some_and(char::is_alphabetic)))
        {
            bad += 1;
        }
        previous = Some(c);
    }
    if chars == 0 {
        return false;
    }
    if bad >= 3 && bad * 50 > chars || bad * 10 > chars {
        return true;
    }
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty() && w.chars().all(char::is_alphabetic))
        .collect();
    if words.len() < MIN_WORDS {
        return false;
    }
    let fragments = words.iter().filter(|w| is_stray_letter(w)).count();
    let letters: usize = words.iter().map(|w| w.chars().count()).sum();
    fragments * 4 > words.len() || letters * 10 < words.len() * 30
}

/// Fewer words than this say nothing about spacing.
const MIN_WORDS: usize = 20;

/// U+FFFD, control characters and the private-use area: what undecodable glyphs become.
fn is_garbage(c: char) -> bool {
    c == '\u{FFFD}' || c.is_control() || ('\u{E000}'..='\u{F8FF}').contains(&c)
}

/// Accents that TeX fonts draw as separate glyphs over a letter (´ ¨ ˆ ˜ ˇ ˘ ˙ ˚ ˛ ˝ ¸ ¯ `),
/// which a wrong decoding leaves next to the letter instead of combining them.
fn is_spacing_accent(c: char) -> bool {
    matches!(
        c,
        '\u{00B4}'
            | '\u{00A8}'
            | '\u{02C6}'
            | '\u{02DC}'
            | '\u{02C7}'
            | '\u{02D8}'
            | '\u{02D9}'
            | '\u{02DA}'
            | '\u{02DB}'
            | '\u{02DD}'
            | '\u{00B8}'
            | '\u{00AF}'
            | '`'
    )
}

/// A one-letter word that is not a one-letter word in the common European languages.
fn is_stray_letter(word: &str) -> bool {
    let mut chars = word.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => !matches!(
            c.to_lowercase().next().unwrap_or(c),
            'a' | 'i' | 'o' | 'u' | 'e' | 'y' | 'à' | 'é' | 'è' | 'ó'
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "The quick brown fox jumps over the lazy dog. A study of efficient \
        financial systems shows that I can write ordinary prose without any trouble at all, \
        and café, naïve and Zürich decode fine.";

    fn poor(text: &str) -> bool {
        is_poor(text, text.len(), 0)
    }

    #[test]
    fn ordinary_prose_is_fine() {
        assert!(!poor(GOOD));
        assert!(!poor(""));
        assert!(!poor("Page 3"));
        assert!(!poor("Résumé — 2024 · §4.2"));
    }

    #[test]
    fn spaces_inside_words_are_poor() {
        let text = "Th e q u i ck b r own f ox j u mps ov er t h e l a zy d og an d k ee ps r unn ing \
            thr ou gh t h e f i e ld";
        assert!(poor(text));
    }

    #[test]
    fn codes_the_encoding_cannot_map_are_poor() {
        // "efficient definition" drawn with a ligature glyph the encoding has no name for.
        let text = "The ecient denition of the ow is sucient for the eect we dene here";
        assert!(is_poor(text, text.len() + 6, 6));
        // One unmapped symbol in a long page is not worth a second reading.
        assert!(!is_poor(GOOD, 2_000, 1));
    }

    #[test]
    fn accents_decoded_apart_are_poor() {
        assert!(poor("R´esum´e of the caf´e na¨ıve ´etude"));
        // An apostrophe-like backtick in code is one bad character, not enough.
        assert!(!poor("run `make` to build the whole project from its sources"));
    }

    #[test]
    fn replacement_and_control_characters_are_poor() {
        assert!(poor("Hello \u{FFFD}\u{FFFD}\u{FFFD} world \u{FFFD}"));
        assert!(poor("\u{1}\u{2}\u{3}\u{4}abc"));
        assert!(poor("\u{E001}\u{E002}\u{E003} private glyphs"));
    }
}

//! Keeping the configured API key out of text that came from upstream.

use amp_core::Secret;

/// The longest piece of upstream text kept in an error message. Error bodies can be whole
/// HTML pages from a proxy; a client needs the gist, logs keep the status.
const MAX_UPSTREAM_TEXT: usize = 1_000;

/// Removes one API key from upstream text before it goes into an error.
///
/// Some servers echo the key they rejected (`Incorrect API key provided: sk-…`); an error
/// message travels to clients and logs, so every piece of upstream text passes through
/// [`KeyScrubber::scrub`] first.
///
/// ```
/// use amp_core::Secret;
/// use amp_providers::http::KeyScrubber;
/// let scrubber = KeyScrubber::new(Some(&Secret::new("sk-live-123")));
/// assert_eq!(scrubber.scrub("bad key sk-live-123"), "bad key ***");
/// ```
#[derive(Clone, Default)]
pub struct KeyScrubber {
    key: Option<Secret>,
}

impl KeyScrubber {
    /// A scrubber for this key; with `None` (or an empty key) it only trims long text.
    pub fn new(key: Option<&Secret>) -> Self {
        KeyScrubber { key: key.filter(|k| !k.expose().is_empty()).cloned() }
    }

    /// The text with every occurrence of the key replaced by `***`, cut to a bounded length.
    pub fn scrub(&self, text: &str) -> String {
        let replaced = match &self.key {
            Some(key) => text.replace(key.expose(), "***"),
            None => text.to_owned(),
        };
        truncate(replaced.trim())
    }
}

impl std::fmt::Debug for KeyScrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyScrubber").field("key", &self.key).finish()
    }
}

fn truncate(text: &str) -> String {
    if text.len() <= MAX_UPSTREAM_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_UPSTREAM_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_of_the_key_is_replaced() {
        let s = KeyScrubber::new(Some(&Secret::new("k3y")));
        assert_eq!(s.scrub("k3y and k3y again"), "*** and *** again");
        assert!(!format!("{s:?}").contains("k3y"));
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let s = KeyScrubber::new(None);
        let long = "é".repeat(MAX_UPSTREAM_TEXT);
        let out = s.scrub(&long);
        assert!(out.len() <= MAX_UPSTREAM_TEXT + '…'.len_utf8());
        assert!(out.ends_with('…'));
    }

    #[test]
    fn an_empty_key_scrubs_nothing() {
        let s = KeyScrubber::new(Some(&Secret::new("")));
        assert_eq!(s.scrub("plain"), "plain");
    }
}

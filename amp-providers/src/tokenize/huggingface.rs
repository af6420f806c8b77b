//! A Hugging Face `tokenizer.json` as a [`Tokenizer`]: counts the word pieces an embedding
//! model sees, so chunkers can size passages to its input limit.

use std::fmt;
use std::path::Path;

use amp_core::{Error, Result, Tokenizer};

/// Counts tokens with a Hugging Face tokenizer file, such as the local embedder's
/// (`LocalEmbedderOptions::tokenizer_path`).
///
/// [`count`](Tokenizer::count) is the number of tokens of the text alone: no `[CLS]` or
/// `[SEP]`, no truncation and no padding, whatever the file configures. An embedder whose
/// limit counts its special tokens (MiniLM's 256 includes two) leaves room for them.
///
/// ```no_run
/// use amp_core::Tokenizer;
/// use amp_providers::embed::fastembed::LocalEmbedderOptions;
/// use amp_providers::tokenize::HuggingFaceTokenizer;
///
/// let options = LocalEmbedderOptions::new(".amp-cache/models");
/// let tokenizer = HuggingFaceTokenizer::from_file(&options.tokenizer_path())?;
/// assert_eq!(tokenizer.count("Hello world"), 2);
/// # Ok::<(), amp_core::Error>(())
/// ```
pub struct HuggingFaceTokenizer {
    name: String,
    tokenizer: tokenizers::Tokenizer,
}

impl HuggingFaceTokenizer {
    /// Reads a `tokenizer.json`. Blocking (tens of milliseconds for a BERT vocabulary).
    ///
    /// A missing or unreadable file is [`Error::Unavailable`], naming the path and how to
    /// fetch the model files. The tokenizer is named after the folder holding the file
    /// (`all-minilm-l6-v2`).
    pub fn from_file(path: &Path) -> Result<Self> {
        let fetch_hint = || {
            let model_dir = path.parent().and_then(Path::parent).unwrap_or(Path::new(".amp-cache/models"));
            format!(
                "run `AMP_MODEL_DIR={} scripts/fetch-models.sh` to fetch the model files",
                model_dir.display()
            )
        };
        if !path.is_file() {
            return Err(Error::unavailable(format!(
                "the tokenizer file {} is missing; {}",
                path.display(),
                fetch_hint()
            )));
        }
        let mut tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            Error::unavailable(format!(
                "{} is not a usable tokenizer file: {e}; {}",
                path.display(),
                fetch_hint()
            ))
        })?;
        // Counting must see the whole text: a file configured to truncate (MiniLM's cuts at
        // 128) would under-count exactly the passages that are too long.
        tokenizer.with_truncation(None).map_err(|e| {
            Error::unavailable(format!("{}: cannot turn truncation off: {e}", path.display()))
        })?;
        tokenizer.with_padding(None);
        // Text is text: a literal `[SEP]` in a document counts as the characters it is.
        tokenizer.set_encode_special_tokens(true);
        let name = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "huggingface".to_owned());
        Ok(HuggingFaceTokenizer { name, tokenizer })
    }
}

impl fmt::Debug for HuggingFaceTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuggingFaceTokenizer")
            .field("name", &self.name)
            .field("vocab_size", &self.tokenizer.get_vocab_size(true))
            .finish()
    }
}

impl Tokenizer for HuggingFaceTokenizer {
    fn name(&self) -> &str {
        &self.name
    }

    fn count(&self, text: &str) -> usize {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding.len(),
            Err(e) => {
                // Every word piece covers at least one byte, so the byte length never
                // under-counts.
                tracing::warn!(tokenizer = %self.name, error = %e, "tokenizing failed; counting bytes instead");
                text.len()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use amp_core::ErrorKind;

    use super::*;
    use crate::embed::fastembed::LocalEmbedderOptions;

    fn model_dir() -> PathBuf {
        crate::embed::test_model_dir()
    }

    fn minilm() -> HuggingFaceTokenizer {
        HuggingFaceTokenizer::from_file(&LocalEmbedderOptions::new(model_dir()).tokenizer_path())
            .unwrap_or_else(|e| panic!("the MiniLM tokenizer loads (run scripts/fetch-models.sh first): {e}"))
    }

    #[test]
    fn counts_word_pieces_without_special_tokens() {
        let tokenizer = minilm();
        assert_eq!(tokenizer.name(), "all-minilm-l6-v2");
        assert_eq!(tokenizer.count("Hello world"), 2);
        assert_eq!(tokenizer.count(""), 0);
    }

    #[test]
    fn a_long_text_is_counted_whole_and_past_its_word_count() {
        let tokenizer = minilm();
        let text = "Tokenization of unfathomably polysyllabic vocabulary. ".repeat(100);
        let words = text.split_whitespace().count();
        let tokens = tokenizer.count(&text);
        // Beyond MiniLM's configured truncation at 128 and beyond one piece per word.
        assert!(tokens > words && tokens > 256, "{tokens} tokens for {words} words");
    }

    #[test]
    fn a_missing_file_is_unavailable_and_names_the_path_and_the_fetch_script() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all-minilm-l6-v2/tokenizer.json");
        let err = HuggingFaceTokenizer::from_file(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("scripts/fetch-models.sh"), "{message}");
    }

    #[test]
    fn an_invalid_file_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, "{\"not\": \"a tokenizer\"}").unwrap();
        let err = HuggingFaceTokenizer::from_file(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().contains("scripts/fetch-models.sh"), "{err}");
    }
}

//! Cutting extracted text into passages that fit the embedder.

use std::sync::Arc;

use amp_core::{ByteRange, Chunk, ChunkId, FileId, Tokenizer};
use text_splitter::{ChunkConfig, ChunkSizer, TextSplitter};

/// Special tokens the embedder adds around every input (`[CLS]`, `[SEP]`), which its
/// input limit includes.
const SPECIAL_TOKENS: usize = 2;

/// Splits text into passages of at most the embedder's input length, measured with the
/// embedder's own tokenizer, preferring paragraph, then sentence, then word boundaries.
/// Neighbouring passages overlap by about an eighth, so a sentence cut at a boundary is
/// still whole in one of them.
#[derive(Clone)]
pub struct Chunker {
    tokenizer: Arc<dyn Tokenizer>,
    max_tokens: usize,
}

/// Counts characters as tokens: never fewer than any word-piece tokenizer counts.
struct Characters;

impl Tokenizer for Characters {
    fn name(&self) -> &str {
        "characters"
    }

    fn count(&self, text: &str) -> usize {
        text.chars().count()
    }
}

/// Text-splitter's view of our tokenizer.
struct Tokens<'a>(&'a dyn Tokenizer);

impl ChunkSizer for Tokens<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.count(chunk)
    }
}

impl Chunker {
    /// Passages for an embedder that reads at most `max_input_tokens` tokens (special
    /// tokens included) as `tokenizer` counts them.
    pub fn new(tokenizer: Arc<dyn Tokenizer>, max_input_tokens: usize) -> Self {
        Chunker { tokenizer, max_tokens: max_input_tokens.saturating_sub(SPECIAL_TOKENS).max(8) }
    }

    /// Passages measured in characters, for when the embedder's tokenizer cannot be
    /// loaded: a word piece covers at least one character, so no passage can exceed the
    /// embedder's input, at the price of short passages.
    pub fn by_characters(max_input_tokens: usize) -> Self {
        Chunker::new(Arc::new(Characters), max_input_tokens)
    }

    /// The passages of `text`, in order, with their byte ranges in `text`. Blank text has
    /// none.
    pub fn split(&self, file: FileId, text: &str) -> Vec<Chunk> {
        let desired = self.max_tokens * 3 / 4;
        let config = ChunkConfig::new(desired..self.max_tokens)
            .with_sizer(Tokens(self.tokenizer.as_ref()))
            .with_overlap(self.max_tokens / 8);
        // The overlap is an eighth of a capacity of at least 8, so always below it.
        let config = match config {
            Ok(config) => config,
            Err(_) => ChunkConfig::new(desired..self.max_tokens).with_sizer(Tokens(self.tokenizer.as_ref())),
        };
        TextSplitter::new(config)
            .chunk_indices(text)
            .enumerate()
            .map(|(ordinal, (start, passage))| Chunk {
                id: ChunkId::new(),
                file,
                ordinal: u32::try_from(ordinal).unwrap_or(u32::MAX),
                text: passage.to_owned(),
                page: None,
                byte_range: ByteRange { start: start as u64, end: (start + passage.len()) as u64 },
                token_count: u32::try_from(self.tokenizer.count(passage)).unwrap_or(u32::MAX),
            })
            .collect()
    }
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker").field("max_tokens", &self.max_tokens).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per whitespace-separated word.
    struct Words;

    impl Tokenizer for Words {
        fn name(&self) -> &str {
            "words"
        }
        fn count(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    #[test]
    fn passages_fit_the_embedder_and_point_back_into_the_text() {
        let text = (0..400).map(|i| format!("Sentence number {i} is here.")).collect::<Vec<_>>().join(" ");
        let chunks = Chunker::new(Arc::new(Words), 66).split(FileId::new(), &text);
        assert!(chunks.len() > 5);
        for (i, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.ordinal as usize, i);
            assert!(chunk.token_count as usize <= 64, "{} tokens", chunk.token_count);
            let range = chunk.byte_range.start as usize..chunk.byte_range.end as usize;
            assert_eq!(&text[range], chunk.text);
        }
        // Overlap: each passage starts before the previous one ends.
        assert!(chunks.windows(2).all(|w| w[1].byte_range.start < w[0].byte_range.end));
    }

    #[test]
    fn blank_text_has_no_passages() {
        assert!(Chunker::new(Arc::new(Words), 256).split(FileId::new(), " \n\t ").is_empty());
    }
}

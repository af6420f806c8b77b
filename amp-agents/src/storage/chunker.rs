//! Cutting extracted text into passages that fit the embedder.

use std::sync::Arc;

use amp_core::{ByteRange, Chunk, ChunkId, ExtractedDocument, FileId, Tokenizer};
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

    /// The passages of a document, page by page, and the text their byte ranges point
    /// into: the pages' texts joined by a blank line. Each passage keeps its page; a
    /// passage never spans two pages. Passage ids follow from the file and the ordinal, so
    /// processing a file twice writes the same passages, never a second set.
    pub fn split_document(&self, file: FileId, document: &ExtractedDocument) -> (String, Vec<Chunk>) {
        let mut text = String::new();
        let mut chunks = Vec::new();
        for page in &document.pages {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            let offset = text.len() as u64;
            text.push_str(&page.text);
            for mut chunk in self.split(file, &page.text) {
                chunk.ordinal = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
                chunk.id = passage_id(file, chunk.ordinal);
                chunk.page = page.number;
                chunk.byte_range.start += offset;
                chunk.byte_range.end += offset;
                chunks.push(chunk);
            }
        }
        (text, chunks)
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
                id: passage_id(file, u32::try_from(ordinal).unwrap_or(u32::MAX)),
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

/// The id of a file's `ordinal`-th passage: the same every time the file is processed.
pub fn passage_id(file: FileId, ordinal: u32) -> ChunkId {
    ChunkId::from_uuid(uuid::Uuid::new_v5(&file.as_uuid(), &ordinal.to_be_bytes()))
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
    fn documents_split_by_page_with_ranges_into_the_joined_text_and_stable_ids() {
        use amp_core::ExtractedPage;
        let page = |n, text: &str| ExtractedPage { number: Some(n), text: text.to_owned() };
        let doc = ExtractedDocument {
            pages: vec![page(1, "Alpha beta gamma."), page(2, ""), page(3, "Delta epsilon.")],
            method: "pdf".into(),
            unreadable_pages: vec![2],
        };
        let file = FileId::new();
        let chunker = Chunker::new(Arc::new(Words), 66);
        let (text, chunks) = chunker.split_document(file, &doc);
        assert_eq!(chunks.len(), 2);
        assert_eq!((chunks[0].page, chunks[1].page), (Some(1), Some(3)));
        assert_eq!((chunks[0].ordinal, chunks[1].ordinal), (0, 1));
        for c in &chunks {
            assert_eq!(&text[c.byte_range.start as usize..c.byte_range.end as usize], c.text);
        }
        let (_, again) = chunker.split_document(file, &doc);
        assert_eq!(
            again.iter().map(|c| c.id).collect::<Vec<_>>(),
            chunks.iter().map(|c| c.id).collect::<Vec<_>>()
        );
        assert_ne!(chunker.split_document(FileId::new(), &doc).1[0].id, chunks[0].id);
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

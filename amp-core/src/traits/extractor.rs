//! Text out of documents.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The text of one page (or the whole text, for unpaged formats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractedPage {
    /// 1-based page number; `None` for unpaged formats.
    pub number: Option<u32>,
    /// The page's text.
    pub text: String,
}

/// What extraction produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractedDocument {
    /// Pages in order (a page with no readable text is kept, empty, so numbering holds).
    pub pages: Vec<ExtractedPage>,
    /// How the text was obtained (`text`, `html`, `docx`, `pdf`, `pdftotext`, `ocr`, or
    /// several joined by `+`), for status and debugging.
    pub method: String,
    /// 1-based numbers of pages that had no text layer and could not be read (no OCR
    /// engine installed, or OCR found nothing), so the uploader knows what is missing.
    #[serde(default)]
    pub unreadable_pages: Vec<u32>,
}

impl ExtractedDocument {
    /// One unpaged text.
    pub fn unpaged(text: String, method: &str) -> Self {
        ExtractedDocument {
            pages: vec![ExtractedPage { number: None, text }],
            method: method.to_owned(),
            unreadable_pages: Vec::new(),
        }
    }

    /// Whether any page has text other than whitespace.
    pub fn has_text(&self) -> bool {
        self.pages.iter().any(|p| !p.text.trim().is_empty())
    }
}

/// Pulls text out of a document's bytes.
///
/// Unsupported types are `UnsupportedMediaType`; broken or hostile files (a PDF that does
/// not parse, an encrypted one, a zip bomb, more pages than allowed) are `InvalidInput`
/// with a message the uploader can act on; running out of the time allowed is `Timeout`.
/// Implementations bound the time, pages and memory one file may take, so one bad file
/// fails alone and the worker stays standing.
#[async_trait]
pub trait Extractor: Send + Sync {
    /// Whether this extractor handles the media type.
    fn supports(&self, media_type: &str) -> bool;

    /// Extracts the text.
    async fn extract(&self, media_type: &str, bytes: Bytes) -> Result<ExtractedDocument>;
}

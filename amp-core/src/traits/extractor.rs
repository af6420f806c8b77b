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
    /// Pages in order.
    pub pages: Vec<ExtractedPage>,
    /// How the text was obtained (`text`, `pdf`, `ocr`), for status and debugging.
    pub method: String,
}

/// Pulls text out of a document's bytes.
///
/// Unsupported types are `UnsupportedMediaType`; broken files (a PDF that does not parse)
/// are `InvalidInput` with a message the uploader can act on.
#[async_trait]
pub trait Extractor: Send + Sync {
    /// Whether this extractor handles the media type.
    fn supports(&self, media_type: &str) -> bool;

    /// Extracts the text.
    async fn extract(&self, media_type: &str, bytes: Bytes) -> Result<ExtractedDocument>;
}

//! [`Extractor`] backends: text out of documents.
//!
//! [`DocumentExtractor`] reads every type in [`SUPPORTED_MEDIA_TYPES`]:
//!
//! | media type | how | pages |
//! |---|---|---|
//! | `text/plain`, `text/markdown`, `text/csv`, `application/json` | UTF-8 (BOM dropped) or UTF-16 with a BOM | unpaged |
//! | `text/html` | the visible text (html5ever) | unpaged |
//! | DOCX | the main document part, tables included | numbered where Word recorded page starts |
//! | `application/pdf` | lopdf; poppler's `pdftotext` for pages lopdf reads poorly; `pdftoppm` + `tesseract` for pages without a text layer | numbered |
//! | `image/png`, `image/jpeg`, `image/tiff` | `tesseract` (only when installed) | unpaged (numbered for multi-page TIFF) |
//!
//! The external programs are optional and found on `PATH` (or where [`ExtractLimits`]
//! says); they are probed once, in [`DocumentExtractor::new`]. Without them text PDFs still
//! work, pages that need OCR are listed in
//! [`ExtractedDocument::unreadable_pages`](amp_core::ExtractedDocument::unreadable_pages),
//! and images are not [supported](amp_core::Extractor::supports).
//!
//! Every file is bounded by [`ExtractLimits`]: time (subprocesses included, and killed when
//! it runs out), pages, unpacked bytes, image pixels and text. A hostile file fails alone,
//! with an `invalid_input` error saying why, or `timeout`.
//!
//! ```no_run
//! use amp_core::Extractor;
//! use amp_providers::extract::{DocumentExtractor, ExtractLimits};
//!
//! # async fn run() -> amp_core::Result<()> {
//! let extractor = DocumentExtractor::new(ExtractLimits::default());
//! let document = extractor.extract("text/html", "<p>Hello</p>".into()).await?;
//! assert_eq!(document.pages[0].text, "Hello");
//! # Ok(())
//! # }
//! ```

mod docx;
mod html;
mod image;
mod ocr;
mod pdf;
mod pdf_text;
mod quality;
mod text;
mod tool;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use amp_core::config::ExtractionConfig;
use amp_core::{Error, ExtractedDocument, Extractor, Result};
use async_trait::async_trait;
use bytes::Bytes;

use self::ocr::{Ocr, PageRenderer};
use self::tool::Tool;

/// The DOCX media type.
pub const DOCX_MEDIA_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// Every media type [`DocumentExtractor`] can read. The image types need `tesseract`; see
/// [`DocumentExtractor::ocr_available`].
pub const SUPPORTED_MEDIA_TYPES: &[&str] = &[
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "text/html",
    DOCX_MEDIA_TYPE,
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/tiff",
];

/// Bounds on reading one document, and where the external programs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Most pages of a document (PDF, DOCX, TIFF). Default 2,000.
    pub max_pages: u32,
    /// Most bytes inflated from one document: the entries read from a DOCX together, the
    /// object streams of a PDF together, and each PDF page's content and fonts.
    /// Default 100 MiB.
    pub max_unpacked_bytes: u64,
    /// Most entries in a DOCX archive. Default 10,000.
    pub max_archive_entries: usize,
    /// Most pixels (width × height) of an image read by OCR, whether uploaded or rendered
    /// from a PDF page (which is rendered at a lower resolution to fit). Default 40 million.
    pub max_image_pixels: u64,
    /// Most bytes of text extracted from one document. Default 50 MiB.
    pub max_text_bytes: u64,
    /// Most time for one document, subprocesses included. Default 120 s.
    pub timeout: Duration,
    /// poppler's `pdftotext`, for pages lopdf reads poorly; `None` to not use it.
    /// Default `pdftotext` on `PATH`.
    pub pdftotext: Option<PathBuf>,
    /// poppler's `pdftoppm`, to render PDF pages for OCR; `None` to not use it.
    /// Default `pdftoppm` on `PATH`.
    pub pdftoppm: Option<PathBuf>,
    /// `tesseract`, for OCR; `None` to turn OCR off. Default `tesseract` on `PATH`.
    pub tesseract: Option<PathBuf>,
    /// tesseract's language(s), e.g. `eng` or `eng+deu`. Default `eng`.
    pub ocr_language: String,
    /// Resolution PDF pages are rendered at for OCR. Default 200 dpi.
    pub ocr_dpi: u32,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_pages: 2_000,
            max_unpacked_bytes: 100 * 1024 * 1024,
            max_archive_entries: 10_000,
            max_image_pixels: 40_000_000,
            max_text_bytes: 50 * 1024 * 1024,
            timeout: Duration::from_secs(120),
            pdftotext: Some(PathBuf::from("pdftotext")),
            pdftoppm: Some(PathBuf::from("pdftoppm")),
            tesseract: Some(PathBuf::from("tesseract")),
            ocr_language: "eng".to_owned(),
            ocr_dpi: 200,
        }
    }
}

impl ExtractLimits {
    /// The limits `[storage.extraction]` sets; the rest keep their defaults.
    pub fn from_config(config: &ExtractionConfig) -> Self {
        let defaults = ExtractLimits::default();
        ExtractLimits {
            max_pages: config.max_pages,
            max_unpacked_bytes: config.max_unpacked_bytes,
            max_image_pixels: config.max_image_pixels,
            timeout: Duration::from_secs(config.timeout_secs),
            tesseract: if config.ocr { defaults.tesseract.clone() } else { None },
            ..defaults
        }
    }

    fn max_text_bytes(&self) -> usize {
        usize::try_from(self.max_text_bytes).unwrap_or(usize::MAX)
    }

    fn max_unpacked_bytes_usize(&self) -> usize {
        usize::try_from(self.max_unpacked_bytes).unwrap_or(usize::MAX)
    }
}

/// The external programs that answered their probe.
#[derive(Debug, Default)]
struct Tools {
    pdftotext: Option<Tool>,
    renderer: Option<PageRenderer>,
    ocr: Option<Ocr>,
}

/// The [`Extractor`] for every type in [`SUPPORTED_MEDIA_TYPES`].
#[derive(Debug)]
pub struct DocumentExtractor {
    limits: ExtractLimits,
    tools: Tools,
}

impl Default for DocumentExtractor {
    fn default() -> Self {
        DocumentExtractor::new(ExtractLimits::default())
    }
}

impl DocumentExtractor {
    /// An extractor with these limits. Probes the external programs once (each run with a
    /// version or language-list flag, a few milliseconds; at most 5 s if one hangs), so
    /// call it at start-up, not per file.
    pub fn new(limits: ExtractLimits) -> Self {
        let pdftotext =
            limits.pdftotext.as_deref().and_then(|p| Tool::probe(p, &["-v"])).map(|(tool, _)| tool);
        let renderer = limits.pdftoppm.as_deref().and_then(PageRenderer::probe);
        let ocr = limits.tesseract.as_deref().and_then(|p| Ocr::probe(p, &limits.ocr_language));
        tracing::info!(
            pdftotext = pdftotext.is_some(),
            pdftoppm = renderer.is_some(),
            tesseract = ocr.is_some(),
            "document extraction tools probed"
        );
        DocumentExtractor { limits, tools: Tools { pdftotext, renderer, ocr } }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &ExtractLimits {
        &self.limits
    }

    /// Whether images can be read: `tesseract` runs and has the OCR language's data.
    pub fn ocr_available(&self) -> bool {
        self.tools.ocr.is_some()
    }

    /// Whether PDF pages without a text layer can be read: OCR and `pdftoppm` are there.
    pub fn pdf_ocr_available(&self) -> bool {
        self.tools.ocr.is_some() && self.tools.renderer.is_some()
    }

    /// Whether poppler's `pdftotext` is there to read pages lopdf reads poorly.
    pub fn pdftotext_available(&self) -> bool {
        self.tools.pdftotext.is_some()
    }

    async fn extract_format(
        &self,
        format: Format,
        bytes: Bytes,
        abandoned: Arc<AtomicBool>,
    ) -> Result<ExtractedDocument> {
        match format {
            Format::Text => {
                if bytes.len() as u64 > self.limits.max_text_bytes {
                    return Err(text_over_limit(&self.limits));
                }
                blocking("text", move || {
                    let text = text::tidy_source(&text::decode(&bytes)?);
                    Ok(ExtractedDocument::unpaged(text, "text"))
                })
                .await
            }
            Format::Html => {
                blocking("HTML", move || {
                    let html = text::decode(&bytes)?;
                    Ok(ExtractedDocument::unpaged(html::visible_text(&html)?, "html"))
                })
                .await
            }
            Format::Docx => {
                let limits = self.limits.clone();
                blocking("DOCX", move || docx::extract(bytes, &limits)).await
            }
            Format::Pdf => pdf::extract(bytes, &self.tools, &self.limits, abandoned).await,
            Format::Image => match &self.tools.ocr {
                Some(ocr) => image::extract(bytes, ocr, &self.limits).await,
                None => Err(Error::bug("image extraction without OCR")),
            },
        }
    }
}

/// The families of [`SUPPORTED_MEDIA_TYPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Html,
    Docx,
    Pdf,
    Image,
}

impl Format {
    /// The format of a media type's essence (lower-case, parameters removed).
    fn of(essence: &str) -> Option<Format> {
        Some(match essence {
            "text/plain" | "text/markdown" | "text/csv" | "application/json" => Format::Text,
            "text/html" => Format::Html,
            DOCX_MEDIA_TYPE => Format::Docx,
            "application/pdf" => Format::Pdf,
            "image/png" | "image/jpeg" | "image/tiff" => Format::Image,
            _ => return None,
        })
    }
}

/// `Text/HTML; charset=utf-8` → `text/html`.
fn essence(media_type: &str) -> String {
    media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

#[async_trait]
impl Extractor for DocumentExtractor {
    fn supports(&self, media_type: &str) -> bool {
        match Format::of(&essence(media_type)) {
            Some(Format::Image) => self.ocr_available(),
            Some(_) => true,
            None => false,
        }
    }

    async fn extract(&self, media_type: &str, bytes: Bytes) -> Result<ExtractedDocument> {
        let essence = essence(media_type);
        let format = match Format::of(&essence) {
            Some(Format::Image) if !self.ocr_available() => None,
            format => format,
        };
        let Some(format) = format else {
            return Err(Error::UnsupportedMediaType { media_type: essence });
        };
        let started = Instant::now();
        let size = bytes.len();
        // Set when this call ends or is dropped, so blocking work still running after a
        // timeout stops at its next check instead of finishing for nobody.
        let abandoned = Abandon(Arc::new(AtomicBool::new(false)));
        let work = self.extract_format(format, bytes, abandoned.0.clone());
        let document = match tokio::time::timeout(self.limits.timeout, work).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(Error::Timeout {
                    operation: format!("extracting text from {essence}"),
                    after: self.limits.timeout,
                });
            }
        };
        let text_bytes: usize = document.pages.iter().map(|p| p.text.len()).sum();
        if text_bytes as u64 > self.limits.max_text_bytes {
            return Err(text_over_limit(&self.limits));
        }
        tracing::debug!(
            media_type = %essence,
            bytes = size,
            pages = document.pages.len(),
            text_bytes,
            method = %document.method,
            unreadable = document.unreadable_pages.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "extracted"
        );
        Ok(document)
    }
}

/// Raises its flag when dropped.
struct Abandon(Arc<AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs CPU-bound parsing off the async workers. A parser that panics on a hostile file
/// fails that file, not the worker.
async fn blocking<T, F>(what: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            tracing::error!(format = what, "the parser panicked on a document");
            Err(Error::invalid_input(format!("the {what} could not be read (the parser failed on it)")))
        }
        Err(e) => Err(Error::internal(format!("{what} extraction was cancelled"), e)),
    }
}

/// The error for a document with more text than [`ExtractLimits::max_text_bytes`].
fn text_over_limit(limits: &ExtractLimits) -> Error {
    Error::invalid_input(format!(
        "the document's text is more than the limit of {} bytes",
        limits.max_text_bytes
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_matched_by_essence() {
        assert_eq!(essence("Text/HTML; charset=UTF-8"), "text/html");
        assert_eq!(Format::of(&essence("application/PDF")), Some(Format::Pdf));
        assert_eq!(Format::of("application/msword"), None);
        for media_type in SUPPORTED_MEDIA_TYPES {
            assert!(Format::of(media_type).is_some(), "{media_type}");
        }
    }

    #[tokio::test]
    async fn images_are_unsupported_without_ocr() {
        let extractor = DocumentExtractor::new(ExtractLimits { tesseract: None, ..ExtractLimits::default() });
        assert!(!extractor.supports("image/png"));
        assert!(extractor.supports("text/markdown; charset=utf-8"));
        let err = extractor.extract("image/png", Bytes::from_static(b"\x89PNG")).await.unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::UnsupportedMediaType);
    }

    #[test]
    fn a_missing_program_is_reported_missing() {
        let extractor = DocumentExtractor::new(ExtractLimits {
            pdftotext: Some("/nonexistent/pdftotext".into()),
            pdftoppm: None,
            tesseract: Some("/nonexistent/tesseract".into()),
            ..ExtractLimits::default()
        });
        assert!(!extractor.pdftotext_available());
        assert!(!extractor.ocr_available());
        assert!(!extractor.pdf_ocr_available());
    }
}

/// Entry points for the fuzz targets in `fuzz/`: the in-process readers over raw bytes,
/// with the default limits and without the external tools (pdftotext, OCR).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use super::ExtractLimits;

    /// Reads a PDF's text layer, as the first step of every PDF extraction does.
    pub fn pdf_text_layer(bytes: &[u8]) -> usize {
        let abandoned = std::sync::atomic::AtomicBool::new(false);
        super::pdf::read_layer(bytes, &ExtractLimits::default(), &abandoned).map_or(0, |pages| pages.len())
    }

    /// Reads a DOCX.
    pub fn docx(bytes: &[u8]) -> bool {
        super::docx::extract(bytes::Bytes::copy_from_slice(bytes), &ExtractLimits::default()).is_ok()
    }
}

//! PDF: the text layer read with lopdf, pages it reads poorly read again with poppler's
//! `pdftotext`, and pages without a text layer rendered with `pdftoppm` and read by
//! `tesseract`.
//!
//! Hostile files are refused with the reason: an encrypted file, more pages than allowed,
//! or streams that inflate past [`ExtractLimits::max_unpacked_bytes`]. lopdf bounds each
//! stream it inflates while loading, but not their sum, so the object streams (the only
//! streams it inflates eagerly) are charged against one budget through its load filter;
//! page contents and fonts are then inflated page by page, each page within the same bound.
//! A file lopdf cannot parse at all is handed to `pdftotext`, which repairs more damage.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amp_core::{Error, ExtractedDocument, ExtractedPage, Result};
use bytes::Bytes;
use lopdf::{DecompressError, Document, LoadOptions, Object, ObjectId};

use super::ocr::{Ocr, PageRenderer};
use super::pdf_text::{displayed_size, scan_page};
use super::quality::is_poor;
use super::text::tidy_layout;
use super::tool::{TempFile, Tool};
use super::{ExtractLimits, Tools, blocking, text_over_limit};

/// What lopdf made of one page.
#[derive(Debug)]
pub(super) struct PageLayer {
    /// Its text, tidied.
    text: String,
    /// Whether poppler should read it again (poor decoding, forms, undecodable fonts).
    recheck: bool,
    /// Whether it draws something OCR may read: images, paths, or text in fonts no one
    /// could decode.
    paints: bool,
    /// Its displayed size in points, for rendering.
    size: Option<(f64, f64)>,
}

/// Why lopdf gave no pages.
pub(super) enum LayerFailure {
    /// The file is refused; poppler would not do better.
    Refused(Error),
    /// lopdf could not parse it; poppler may.
    Broken(String),
}

/// Reads a PDF.
pub(super) async fn extract(
    bytes: Bytes,
    tools: &Tools,
    limits: &ExtractLimits,
    abandoned: Arc<AtomicBool>,
) -> Result<ExtractedDocument> {
    let layer_limits = limits.clone();
    let layer_bytes = bytes.clone();
    let layer = blocking("PDF", move || Ok(read_layer(&layer_bytes, &layer_limits, &abandoned))).await?;
    let pages = match layer {
        Ok(pages) => pages,
        Err(LayerFailure::Refused(e)) => return Err(e),
        Err(LayerFailure::Broken(reason)) => return read_broken(&bytes, tools, limits, reason).await,
    };
    let mut file: Option<TempFile> = None;
    let mut texts: Vec<String> = Vec::with_capacity(pages.len());
    let mut sources = Sources::default();

    // Pages lopdf read poorly, read again by pdftotext in one run over their range.
    let recheck: Vec<u32> = (1..).zip(&pages).filter(|(_, p)| p.recheck).map(|(n, _)| n).collect();
    let mut rechecked = vec![String::new(); pages.len()];
    if let (Some(pdftotext), Some(&first), Some(&last)) = (&tools.pdftotext, recheck.first(), recheck.last())
        && let Some(path) = temp_copy(&mut file, &bytes).await
    {
        match run_pdftotext(pdftotext, &path, Some((first, last)), limits).await {
            Ok(parts) => {
                for (number, part) in (first..=last).zip(parts) {
                    rechecked[number as usize - 1] = part;
                }
            }
            Err(PdftotextFailure::TooMuchText(e)) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "pdftotext failed; keeping lopdf's text"),
        }
    }

    let mut unreadable = Vec::new();
    let mut sizes = Vec::with_capacity(pages.len());
    for ((number, page), rechecked) in (1..).zip(pages).zip(rechecked) {
        let text = if page.recheck && !rechecked.is_empty() {
            sources.pdftotext = true;
            rechecked
        } else {
            sources.pdf |= !page.text.is_empty();
            page.text
        };
        if text.is_empty() && page.paints {
            unreadable.push(number);
        }
        texts.push(text);
        sizes.push(page.size);
    }

    if let (Some(ocr), Some(renderer)) = (&tools.ocr, &tools.renderer)
        && !unreadable.is_empty()
    {
        let mut still_unreadable = Vec::new();
        for number in unreadable {
            let index = number as usize - 1;
            let text = match temp_copy(&mut file, &bytes).await {
                Some(path) => ocr_page(ocr, renderer, &path, number, sizes[index], limits).await,
                None => String::new(),
            };
            if text.is_empty() {
                still_unreadable.push(number);
            } else {
                sources.ocr = true;
                texts[index] = text;
            }
        }
        unreadable = still_unreadable;
    }

    let document = ExtractedDocument {
        pages: (1..).zip(texts).map(|(number, text)| ExtractedPage { number: Some(number), text }).collect(),
        method: sources.method(),
        unreadable_pages: unreadable,
    };
    if !document.has_text() {
        return Err(no_text(&document, tools));
    }
    Ok(document)
}

/// Which readers produced the text.
#[derive(Default)]
struct Sources {
    pdf: bool,
    pdftotext: bool,
    ocr: bool,
}

impl Sources {
    fn method(&self) -> String {
        let used: Vec<&str> = [(self.pdf, "pdf"), (self.pdftotext, "pdftotext"), (self.ocr, "ocr")]
            .into_iter()
            .filter_map(|(used, name)| used.then_some(name))
            .collect();
        if used.is_empty() { "pdf".to_owned() } else { used.join("+") }
    }
}

/// The error for a PDF in which no page had text.
fn no_text(document: &ExtractedDocument, tools: &Tools) -> Error {
    if document.unreadable_pages.is_empty() {
        Error::invalid_input("the PDF has no text")
    } else if tools.ocr.is_none() || tools.renderer.is_none() {
        Error::invalid_input(
            "no page of the PDF had readable text, and OCR is unavailable (tesseract and poppler's pdftoppm are needed for scanned pages)",
        )
    } else {
        Error::invalid_input("no page of the PDF had readable text, and OCR found none")
    }
}

/// The path of the document's temporary copy, written on first use.
async fn temp_copy(file: &mut Option<TempFile>, bytes: &[u8]) -> Option<std::path::PathBuf> {
    if file.is_none() {
        match TempFile::create(bytes, "pdf").await {
            Ok(created) => *file = Some(created),
            Err(e) => {
                tracing::warn!(error = %e, "could not write a temporary copy of the PDF for poppler");
                return None;
            }
        }
    }
    file.as_ref().map(|f| f.path().to_owned())
}

/// Renders a page and reads it with OCR; empty if nothing could be read.
async fn ocr_page(
    ocr: &Ocr,
    renderer: &PageRenderer,
    path: &std::path::Path,
    number: u32,
    size: Option<(f64, f64)>,
    limits: &ExtractLimits,
) -> String {
    let rendered = match renderer.render(path, number, size, limits.ocr_dpi, limits.max_image_pixels).await {
        Ok(rendered) => rendered,
        Err(e) => {
            tracing::warn!(page = number, error = %e, "pdftoppm could not render the page");
            return String::new();
        }
    };
    match ocr.read(rendered.png, rendered.dpi, limits.max_text_bytes()).await {
        Ok(text) => tidy_layout(&text),
        Err(e) => {
            tracing::warn!(page = number, error = %e, "tesseract could not read the page");
            String::new()
        }
    }
}

/// A PDF lopdf could not parse, read with `pdftotext` alone.
async fn read_broken(
    bytes: &[u8],
    tools: &Tools,
    limits: &ExtractLimits,
    reason: String,
) -> Result<ExtractedDocument> {
    let Some(pdftotext) = &tools.pdftotext else {
        return Err(Error::invalid_input(reason));
    };
    let Ok(file) = TempFile::create(bytes, "pdf").await else {
        return Err(Error::invalid_input(reason));
    };
    let pages = match run_pdftotext(pdftotext, file.path(), None, limits).await {
        Ok(pages) => pages,
        Err(PdftotextFailure::TooMuchText(e)) => return Err(e),
        Err(PdftotextFailure::Tool(e)) => {
            tracing::debug!(error = %e, "pdftotext could not read the PDF lopdf could not either");
            return Err(Error::invalid_input(reason));
        }
    };
    if pages.len() > limits.max_pages as usize {
        return Err(too_many_pages(pages.len(), limits.max_pages));
    }
    let document = ExtractedDocument {
        pages: (1..).zip(pages).map(|(number, text)| ExtractedPage { number: Some(number), text }).collect(),
        method: "pdftotext".to_owned(),
        unreadable_pages: Vec::new(),
    };
    if !document.has_text() {
        return Err(Error::invalid_input(reason));
    }
    Ok(document)
}

#[derive(Debug)]
enum PdftotextFailure {
    Tool(super::tool::ToolFailure),
    TooMuchText(Error),
}

impl std::fmt::Display for PdftotextFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PdftotextFailure::Tool(e) => e.fmt(f),
            PdftotextFailure::TooMuchText(e) => e.fmt(f),
        }
    }
}

/// Runs `pdftotext` on pages `range` (all if `None`) and returns each page's tidied text.
async fn run_pdftotext(
    pdftotext: &Tool,
    path: &std::path::Path,
    range: Option<(u32, u32)>,
    limits: &ExtractLimits,
) -> std::result::Result<Vec<String>, PdftotextFailure> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if let Some((first, last)) = range {
        for arg in ["-f".to_owned(), first.to_string(), "-l".to_owned(), last.to_string()] {
            args.push(arg.into());
        }
    }
    for arg in ["-enc", "UTF-8", "-q"] {
        args.push(arg.into());
    }
    args.push(path.into());
    args.push("-".into());
    let out = pdftotext.run(args, None, limits.max_text_bytes()).await.map_err(|e| match e {
        super::tool::ToolFailure::OutputTooLarge { .. } => {
            PdftotextFailure::TooMuchText(text_over_limit(limits))
        }
        other => PdftotextFailure::Tool(other),
    })?;
    let text = String::from_utf8_lossy(&out);
    // Every page ends with a form feed, the last one too.
    let text = text.strip_suffix('\x0C').unwrap_or(&text);
    Ok(text.split('\x0C').map(tidy_layout).collect())
}

fn too_many_pages(pages: usize, limit: u32) -> Error {
    Error::invalid_input(format!("the PDF has {pages} pages, more than the limit of {limit}"))
}

thread_local! {
    /// What object streams may still inflate to during the load running on this thread,
    /// and whether one went past it. lopdf calls its load filter on the loading thread
    /// (its `rayon` feature, which would change that, is off).
    static OBJECT_STREAM_BUDGET: Cell<(usize, bool)> = const { Cell::new((0, false)) };
}

/// lopdf's load filter: inflates each object stream once against the shared budget before
/// lopdf does, and drops the ones past it (the load is then refused).
fn charge_object_streams(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    if let Object::Stream(stream) = object {
        if stream.dict.has_type(b"ObjStm") {
            let (left, exceeded) = OBJECT_STREAM_BUDGET.get();
            if exceeded {
                return None;
            }
            match stream.decompressed_content_with_limit(left) {
                Ok(data) => OBJECT_STREAM_BUDGET.set((left - data.len().min(left), false)),
                Err(lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
                    OBJECT_STREAM_BUDGET.set((0, true));
                    return None;
                }
                // lopdf decides what a broken object stream means.
                Err(_) => {}
            }
        }
        // At this call site lopdf keeps `object` itself and only looks at `is_some`.
        return Some((id, Object::Null));
    }
    // Members of object streams come back through here, and lopdf keeps what is returned.
    Some((id, object.clone()))
}

/// Loads the document and reads every page's text layer (on a blocking thread).
pub(super) fn read_layer(
    bytes: &[u8],
    limits: &ExtractLimits,
    abandoned: &AtomicBool,
) -> std::result::Result<Vec<PageLayer>, LayerFailure> {
    let max = limits.max_unpacked_bytes_usize();
    let mut doc = load(bytes, max, false)?;
    // A load filter turns off lopdf's rebuilding of a damaged cross-reference table, so a
    // file whose page tree did not load is loaded again with the table rebuilt.
    if doc.page_iter().next().is_none() {
        doc = load(bytes, max, true)?;
    }
    let pages = doc.get_pages();
    if pages.len() > limits.max_pages as usize {
        return Err(LayerFailure::Refused(too_many_pages(pages.len(), limits.max_pages)));
    }
    if pages.is_empty() {
        return Err(LayerFailure::Broken("the PDF could not be read: it has no pages".to_owned()));
    }
    let mut layers = Vec::with_capacity(pages.len());
    let mut text_bytes = 0usize;
    for (number, page_id) in pages {
        if abandoned.load(Ordering::Relaxed) {
            return Err(LayerFailure::Refused(Error::bug("PDF extraction abandoned")));
        }
        let size = displayed_size(&doc, page_id);
        let layer = match scan_page(&doc, page_id, max) {
            Ok(scan) => {
                let text = tidy_layout(&scan.text);
                let recheck = is_poor(&text, scan.glyphs, scan.missing)
                    || scan.forms
                    || scan.undecodable > 0
                    || scan.truncated
                    || (scan.shows > 0 && text.is_empty());
                PageLayer { text, recheck, paints: scan.paints || scan.shows > 0, size }
            }
            Err(lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
                return Err(LayerFailure::Refused(Error::invalid_input(format!(
                    "page {number} of the PDF inflates to more than the limit of {max} bytes"
                ))));
            }
            Err(e) => {
                tracing::debug!(page = number, error = %e, "lopdf could not read the page");
                PageLayer { text: String::new(), recheck: true, paints: true, size }
            }
        };
        text_bytes += layer.text.len();
        if text_bytes > limits.max_text_bytes() {
            return Err(LayerFailure::Refused(text_over_limit(limits)));
        }
        layers.push(layer);
    }
    Ok(layers)
}

fn load(bytes: &[u8], max: usize, rebuild: bool) -> std::result::Result<Document, LayerFailure> {
    OBJECT_STREAM_BUDGET.set((max, false));
    let options = LoadOptions {
        filter: Some(charge_object_streams),
        max_decompressed_size: Some(max),
        force_reconstruct: rebuild,
        ..LoadOptions::default()
    };
    let loaded = Document::load_mem_with_options(bytes, options);
    let (_, exceeded) = OBJECT_STREAM_BUDGET.replace((0, false));
    if exceeded {
        return Err(LayerFailure::Refused(Error::invalid_input(format!(
            "the PDF's object streams inflate to more than the limit of {max} bytes"
        ))));
    }
    match loaded {
        // A file that needs a password loads without its objects, `/Encrypt` still in the
        // trailer; one readable with the empty password is decrypted and loses it.
        Ok(doc) if doc.trailer.has(b"Encrypt") => Err(encrypted()),
        Ok(doc) => Ok(doc),
        Err(lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
            Err(LayerFailure::Refused(Error::invalid_input(format!(
                "a stream in the PDF inflates to more than the limit of {max} bytes"
            ))))
        }
        Err(_) if contains(bytes, b"/Encrypt") => Err(encrypted()),
        Err(e) => Err(LayerFailure::Broken(format!("the PDF could not be read: {e}"))),
    }
}

fn encrypted() -> LayerFailure {
    LayerFailure::Refused(Error::invalid_input("the PDF is encrypted; upload a copy without a password"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

//! Configuration to backends for what the Storage agent reads and checks with.

use std::sync::Arc;

use amp_core::Scanner;
use amp_core::config::{ExtractionConfig, ScannerConfig};
use amp_providers::extract::{DocumentExtractor, ExtractLimits};
use amp_providers::scan::ClamAvScanner;

/// Text out of every supported document type, bounded by `[storage.extraction]`; tools
/// (pdftotext, pdftoppm, tesseract) are found on `PATH` once, now.
pub(crate) fn extractor(config: &ExtractionConfig) -> DocumentExtractor {
    let extractor = DocumentExtractor::new(ExtractLimits::from_config(config));
    if !extractor.ocr_available() {
        tracing::warn!("tesseract is not installed: images and scanned PDF pages cannot be read");
    }
    extractor
}

/// clamd at `storage.scanner.clamd`, or no scanning.
pub(crate) fn scanner(config: &ScannerConfig) -> amp_core::Result<Option<Arc<dyn Scanner>>> {
    let scanner = ClamAvScanner::from_config(config)?;
    if scanner.is_none() {
        tracing::info!("virus scanning is off (storage.scanner.clamd is not set)");
    }
    Ok(scanner.map(|s| Arc::new(s) as Arc<dyn Scanner>))
}

//! Optical character recognition: `tesseract` reading images, and poppler's `pdftoppm`
//! rendering PDF pages that have no text layer into images for it.
//!
//! Both run as bounded, killable subprocesses ([`Tool`]). A page is rendered at the
//! configured resolution unless that would make an image of more than the pixel limit,
//! in which case the resolution is lowered to fit: a poster-sized page must not become a
//! gigapixel bitmap.

use std::path::Path;

use bytes::Bytes;

use super::tool::{Tool, ToolFailure};

/// `tesseract` with the language data it needs.
#[derive(Debug, Clone)]
pub(super) struct Ocr {
    tesseract: Tool,
    language: String,
}

impl Ocr {
    /// Finds `tesseract` at `program` and checks that it has data for every language of
    /// `language` (`eng`, or several joined by `+`).
    pub(super) fn probe(program: &Path, language: &str) -> Option<Ocr> {
        let (tesseract, listed) = Tool::probe(program, &["--list-langs"])?;
        let installed: Vec<&str> = listed.lines().map(str::trim).collect();
        let missing: Vec<&str> = language.split('+').filter(|l| !installed.contains(l)).collect();
        if !missing.is_empty() {
            tracing::warn!(
                program = %program.display(),
                missing = %missing.join("+"),
                "tesseract has no data for the OCR language; OCR is off"
            );
            return None;
        }
        Some(Ocr { tesseract, language: language.to_owned() })
    }

    /// Reads the text of an image (PNG, JPEG, TIFF; a multi-page TIFF gives its pages
    /// separated by form feeds). `dpi` tells tesseract the resolution when it is known.
    /// At most `max_text` bytes of text are accepted.
    pub(super) async fn read(
        &self,
        image: Bytes,
        dpi: Option<u32>,
        max_text: usize,
    ) -> Result<String, ToolFailure> {
        let mut args = vec!["stdin".to_owned(), "stdout".to_owned(), "-l".to_owned(), self.language.clone()];
        if let Some(dpi) = dpi {
            args.extend(["--dpi".to_owned(), dpi.to_string()]);
        }
        let text = self.tesseract.run(&args, Some(image), max_text).await?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }
}

/// `pdftoppm`, turning one PDF page into a PNG.
#[derive(Debug, Clone)]
pub(super) struct PageRenderer {
    pdftoppm: Tool,
}

/// One rendered page.
pub(super) struct RenderedPage {
    /// The PNG.
    pub(super) png: Bytes,
    /// The resolution it was rendered at, when known.
    pub(super) dpi: Option<u32>,
}

impl PageRenderer {
    /// Finds `pdftoppm` at `program`.
    pub(super) fn probe(program: &Path) -> Option<PageRenderer> {
        Tool::probe(program, &["-v"]).map(|(pdftoppm, _)| PageRenderer { pdftoppm })
    }

    /// Renders page `number` (1-based) of the PDF at `pdf`, whose media box measures
    /// `size` points if known, at up to `dpi` and at most `max_pixels` pixels.
    pub(super) async fn render(
        &self,
        pdf: &Path,
        number: u32,
        size: Option<(f64, f64)>,
        dpi: u32,
        max_pixels: u64,
    ) -> Result<RenderedPage, ToolFailure> {
        // Written next to the document, in its private directory.
        let root = pdf.with_extension(format!("p{number}"));
        let mut path = root.clone().into_os_string();
        path.push(".png");
        let output = Output { path: path.into() };
        let page = number.to_string();
        let mut args: Vec<String> = Vec::new();
        let dpi = match size {
            Some(size) => {
                let dpi = fitting_resolution(size, dpi, max_pixels);
                // Crop to the size computed here as well, so that even if poppler reads the
                // page size differently it never draws a bigger bitmap than was checked.
                let side = |points: f64| (points.abs() / 72.0 * f64::from(dpi)).ceil() as u64 + 1;
                args.extend(["-r".to_owned(), dpi.to_string()]);
                args.extend([
                    "-W".to_owned(),
                    side(size.0).to_string(),
                    "-H".to_owned(),
                    side(size.1).to_string(),
                ]);
                Some(dpi)
            }
            // Without a size to compute from, bound the longer side so that even a square
            // page stays within the pixel limit.
            None => {
                args.extend(["-scale-to".to_owned(), (max_pixels as f64).sqrt().floor().to_string()]);
                None
            }
        };
        for arg in ["-f", &page, "-l", &page, "-png", "-gray", "-singlefile", "-q"] {
            args.push(arg.to_owned());
        }
        let mut args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        args.push(pdf.into());
        args.push(root.into());
        // pdftoppm prints nothing with -q; it writes the image to `output`.
        self.pdftoppm.run(args, None, 0).await?;
        let png = tokio::fs::read(&output.path).await.map_err(ToolFailure::Io)?;
        Ok(RenderedPage { png: Bytes::from(png), dpi })
    }
}

/// The image `pdftoppm` writes, removed when dropped.
struct Output {
    path: std::path::PathBuf,
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The highest resolution, at most `dpi`, at which a page of `size` points (1/72 inch)
/// renders to at most `max_pixels` pixels; at least 1.
pub(super) fn fitting_resolution(size: (f64, f64), dpi: u32, max_pixels: u64) -> u32 {
    let (width, height) = (size.0.abs() / 72.0, size.1.abs() / 72.0);
    let area = width * height;
    if !area.is_finite() || area <= 0.0 {
        return dpi.max(1);
    }
    let most = (max_pixels as f64 / area).sqrt().floor();
    // Rounding in pdftoppm can add a pixel per side; keep a little room.
    let most = (most - 1.0).max(1.0);
    (dpi as f64).min(most).max(1.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a4_renders_at_the_requested_resolution() {
        assert_eq!(fitting_resolution((595.0, 842.0), 200, 40_000_000), 200);
    }

    #[test]
    fn a_poster_renders_within_the_pixel_limit() {
        // 200 × 200 inches at 200 dpi would be 1.6 gigapixels.
        let dpi = fitting_resolution((14_400.0, 14_400.0), 200, 40_000_000);
        assert!(dpi < 200);
        let side = 200.0 * dpi as f64;
        assert!(side * side <= 40_000_000.0, "{dpi} dpi");
        assert!(dpi >= 30);
    }

    #[test]
    fn degenerate_sizes_keep_a_positive_resolution() {
        assert_eq!(fitting_resolution((0.0, 842.0), 200, 40_000_000), 200);
        assert_eq!(fitting_resolution((1e12, 1e12), 200, 40_000_000), 1);
    }
}

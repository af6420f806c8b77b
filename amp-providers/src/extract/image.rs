//! Images (PNG, JPEG, TIFF), read by OCR.
//!
//! The dimensions are read from the file's header before anything decodes it: a small file
//! can declare a gigapixel image (a decompression bomb), and the decoder would allocate the
//! bitmap the header asks for. Every image of a multi-page TIFF is checked, and the pages
//! counted against the page limit.

use std::collections::HashSet;

use amp_core::{Error, ExtractedDocument, ExtractedPage, Result};
use bytes::Bytes;
use imagesize::ImageType;

use super::ExtractLimits;
use super::ocr::Ocr;
use super::text::tidy_layout;
use super::tool::ToolFailure;

/// What an image's header says.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ImageHeader {
    /// `png`, `jpeg` or `tiff`.
    pub(super) format: &'static str,
    /// Width × height of the largest image in the file, in pixels.
    pub(super) pixels: u64,
    /// Images in the file (pages of a TIFF; 1 otherwise).
    pub(super) pages: usize,
}

/// Reads and checks an image's header against the pixel and page limits.
pub(super) fn inspect(bytes: &[u8], max_pixels: u64, max_pages: u32) -> Result<ImageHeader> {
    let not_an_image = || Error::invalid_input("the file is not a readable PNG, JPEG or TIFF image");
    let format = match imagesize::image_type(bytes).map_err(|_| not_an_image())? {
        ImageType::Png => "png",
        ImageType::Jpeg => "jpeg",
        ImageType::Tiff => "tiff",
        _ => return Err(not_an_image()),
    };
    let (pixels, pages) = if format == "tiff" {
        let sizes = tiff_sizes(bytes, max_pages as usize)?;
        (sizes.iter().map(|(w, h)| w * h).max().unwrap_or(0), sizes.len())
    } else {
        let size = imagesize::blob_size(bytes).map_err(|_| not_an_image())?;
        (size.width as u64 * size.height as u64, 1)
    };
    if pixels == 0 {
        return Err(not_an_image());
    }
    if pixels > max_pixels {
        return Err(Error::invalid_input(format!(
            "the image has {pixels} pixels, more than the limit of {max_pixels} (a decompression bomb?)"
        )));
    }
    Ok(ImageHeader { format, pixels, pages })
}

/// The width and height of every image in a classic TIFF, following the chain of image
/// directories (at most `max_pages` of them, each visited once).
fn tiff_sizes(bytes: &[u8], max_pages: usize) -> Result<Vec<(u64, u64)>> {
    let broken = || Error::invalid_input("the TIFF image is broken");
    let little = match bytes.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Err(broken()),
    };
    let u16_at = |at: usize| -> Option<u64> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(u64::from(if little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) }))
    };
    let u32_at = |at: usize| -> Option<u64> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }))
    };
    match u16_at(2) {
        Some(42) => {}
        Some(43) => {
            return Err(Error::invalid_input("BigTIFF images are not supported; save it as a classic TIFF"));
        }
        _ => return Err(broken()),
    }
    let mut sizes = Vec::new();
    let mut seen = HashSet::new();
    let mut directory = u32_at(4).ok_or_else(broken)?;
    while directory != 0 {
        if !seen.insert(directory) {
            return Err(broken());
        }
        if sizes.len() == max_pages {
            return Err(Error::invalid_input(format!(
                "the TIFF has more than the limit of {max_pages} pages"
            )));
        }
        let at = usize::try_from(directory).map_err(|_| broken())?;
        let entries = u16_at(at).ok_or_else(broken)? as usize;
        let (mut width, mut height) = (None, None);
        for i in 0..entries {
            let entry = at + 2 + 12 * i;
            let tag = u16_at(entry).ok_or_else(broken)?;
            let kind = u16_at(entry + 2).ok_or_else(broken)?;
            // Width and height are one SHORT or LONG, stored in the entry itself.
            let value = match kind {
                3 => u16_at(entry + 8),
                4 => u32_at(entry + 8),
                _ => None,
            };
            match tag {
                256 => width = value,
                257 => height = value,
                _ => {}
            }
        }
        sizes.push((width.ok_or_else(broken)?, height.ok_or_else(broken)?));
        directory = u32_at(at + 2 + 12 * entries).ok_or_else(broken)?;
    }
    if sizes.is_empty() {
        return Err(broken());
    }
    Ok(sizes)
}

/// Reads the text of an image with OCR.
pub(super) async fn extract(bytes: Bytes, ocr: &Ocr, limits: &ExtractLimits) -> Result<ExtractedDocument> {
    let header = inspect(&bytes, limits.max_image_pixels, limits.max_pages)?;
    let text = ocr.read(bytes, None, limits.max_text_bytes()).await.map_err(|failure| match failure {
        ToolFailure::Exit { .. } => Error::invalid_input(format!("OCR could not read the image: {failure}")),
        ToolFailure::OutputTooLarge { limit } => {
            Error::invalid_input(format!("the text read from the image exceeds the limit of {limit} bytes"))
        }
        ToolFailure::Io(e) => Error::internal("running tesseract failed", e),
    })?;
    let document = if header.pages > 1 {
        // tesseract separates the pages of a multi-page TIFF with form feeds.
        let mut pages: Vec<ExtractedPage> = (1..)
            .zip(text.split('\x0C'))
            .map(|(number, page)| ExtractedPage { number: Some(number), text: tidy_layout(page) })
            .collect();
        pages.truncate(header.pages);
        let unreadable_pages = pages.iter().filter(|p| p.text.is_empty()).filter_map(|p| p.number).collect();
        ExtractedDocument { pages, method: "ocr".to_owned(), unreadable_pages }
    } else {
        ExtractedDocument::unpaged(tidy_layout(&text), "ocr")
    };
    if !document.has_text() {
        return Err(Error::invalid_input(format!("OCR found no text in the {} image", header.format)));
    }
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG signature and IHDR chunk declaring `width` × `height`, nothing else.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend_from_slice(&width.to_be_bytes());
        png.extend_from_slice(&height.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        png
    }

    /// A little-endian TIFF of image directories with the given sizes, chained in order.
    fn tiff(sizes: &[(u32, u32)], cycle: bool) -> Vec<u8> {
        let mut out = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
        for (i, (w, h)) in sizes.iter().enumerate() {
            out.extend_from_slice(&2u16.to_le_bytes());
            for (tag, value) in [(256u16, *w), (257, *h)] {
                out.extend_from_slice(&tag.to_le_bytes());
                out.extend_from_slice(&4u16.to_le_bytes());
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            let next = if i + 1 < sizes.len() {
                out.len() as u32 + 4
            } else if cycle {
                8
            } else {
                0
            };
            out.extend_from_slice(&next.to_le_bytes());
        }
        out
    }

    #[test]
    fn png_within_the_limit_passes() {
        let header = inspect(&png_header(2_000, 3_000), 40_000_000, 10).unwrap();
        assert_eq!(header, ImageHeader { format: "png", pixels: 6_000_000, pages: 1 });
    }

    #[test]
    fn a_declared_gigapixel_png_is_refused_from_its_header() {
        let err = inspect(&png_header(100_000, 100_000), 40_000_000, 10).unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("10000000000 pixels"), "{err}");
    }

    #[test]
    fn every_tiff_page_is_checked() {
        let fine = tiff(&[(100, 100), (200, 50)], false);
        assert_eq!(
            inspect(&fine, 40_000_000, 10).unwrap(),
            ImageHeader { format: "tiff", pixels: 10_000, pages: 2 }
        );
        let bomb = tiff(&[(100, 100), (50_000, 50_000)], false);
        assert!(inspect(&bomb, 40_000_000, 10).unwrap_err().to_string().contains("pixels"));
        let long = tiff(&[(10, 10); 5], false);
        assert!(inspect(&long, 40_000_000, 4).unwrap_err().to_string().contains("limit of 4 pages"));
    }

    #[test]
    fn a_tiff_directory_cycle_is_broken_not_endless() {
        let looped = tiff(&[(10, 10), (10, 10)], true);
        assert!(inspect(&looped, 40_000_000, 1_000).unwrap_err().to_string().contains("broken"));
    }

    #[test]
    fn other_bytes_are_not_an_image() {
        assert!(inspect(b"GIF89a....", 40_000_000, 10).is_err());
        assert!(inspect(b"hello", 40_000_000, 10).is_err());
    }
}

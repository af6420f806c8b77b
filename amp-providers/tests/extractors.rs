//! `DocumentExtractor` on real files the tests build themselves: PDFs made with lopdf (text,
//! scanned pages, hostile ones), images rendered with poppler, DOCX archives, HTML.
//!
//! Tests that need poppler (`pdftotext`, `pdftoppm`) or `tesseract` fail with a message
//! saying so when they are missing: install `poppler-utils tesseract-ocr tesseract-ocr-eng`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use amp_core::{Error, ErrorKind, ExtractedDocument, Extractor};
use amp_providers::extract::{DOCX_MEDIA_TYPE, DocumentExtractor, ExtractLimits, SUPPORTED_MEDIA_TYPES};
use bytes::Bytes;
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// An extractor with the machine's tools, which must be installed.
fn with_tools(limits: ExtractLimits) -> DocumentExtractor {
    let extractor = DocumentExtractor::new(limits);
    assert!(
        extractor.pdftotext_available() && extractor.pdf_ocr_available(),
        "this test needs poppler-utils (pdftotext, pdftoppm) and tesseract-ocr with English data on PATH; \
         install them with: apt-get install -y poppler-utils tesseract-ocr tesseract-ocr-eng \
         (pdftotext: {}, OCR: {}, PDF OCR: {})",
        extractor.pdftotext_available(),
        extractor.ocr_available(),
        extractor.pdf_ocr_available(),
    );
    extractor
}

/// An extractor that uses no external program.
fn without_tools(limits: ExtractLimits) -> DocumentExtractor {
    DocumentExtractor::new(ExtractLimits { pdftotext: None, pdftoppm: None, tesseract: None, ..limits })
}

/// Runs a program the test itself needs (to render fixtures), failing clearly without it.
fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap_or_else(|e| {
        panic!("this test needs `{program}` (apt-get install -y poppler-utils tesseract-ocr tesseract-ocr-eng): {e}")
    });
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

async fn extract(
    extractor: &DocumentExtractor,
    media_type: &str,
    bytes: impl Into<Bytes>,
) -> ExtractedDocument {
    match extractor.extract(media_type, bytes.into()).await {
        Ok(document) => document,
        Err(e) => panic!("extracting {media_type} failed: {e}"),
    }
}

async fn refused(extractor: &DocumentExtractor, media_type: &str, bytes: impl Into<Bytes>) -> Error {
    match extractor.extract(media_type, bytes.into()).await {
        Ok(document) => panic!("extracting {media_type} should have failed, got {document:?}"),
        Err(e) => e,
    }
}

fn assert_invalid(err: &Error, needle: &str) {
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(needle), "expected {needle:?} in {err:?}");
}

/// A PDF page's content: lines of text in `font` at 14 pt from the top down, 18 pt apart.
fn text_content(font: &str, lines: &[&str]) -> Vec<u8> {
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec![font.into(), 14.into()]),
        Operation::new("TL", vec![18.into()]),
        Operation::new("Td", vec![72.into(), 720.into()]),
    ];
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            operations.push(Operation::new("T*", vec![]));
        }
        // The fonts use WinAnsiEncoding, which matches Latin-1 for these characters.
        let bytes: Vec<u8> =
            line.chars().map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character")).collect();
        operations.push(Operation::new("Tj", vec![Object::string_literal(bytes)]));
    }
    operations.push(Operation::new("ET", vec![]));
    Content { operations }.encode().expect("content encodes")
}

/// A PDF page: its content stream and, if it draws one, a JPEG image XObject.
enum PageSpec {
    Text(Vec<u8>),
    Jpeg { jpeg: Vec<u8>, width: u32, height: u32 },
}

/// A letter-size PDF of the given pages, with Helvetica as `/F1` and Courier as `/F2`.
fn pdf(pages: Vec<PageSpec>) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let helvetica = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
    });
    let courier = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Courier", "Encoding" => "WinAnsiEncoding",
    });
    let mut kids = Vec::new();
    for page in pages {
        let (content, xobjects) = match page {
            PageSpec::Text(content) => (content, dictionary! {}),
            PageSpec::Jpeg { jpeg, width, height } => {
                let image = doc.add_object(Stream::new(
                    dictionary! {
                        "Type" => "XObject", "Subtype" => "Image", "Width" => width, "Height" => height,
                        "ColorSpace" => "DeviceRGB", "BitsPerComponent" => 8, "Filter" => "DCTDecode",
                    },
                    jpeg,
                ));
                let content = Content {
                    operations: vec![
                        Operation::new("q", vec![]),
                        Operation::new(
                            "cm",
                            vec![612.into(), 0.into(), 0.into(), 792.into(), 0.into(), 0.into()],
                        ),
                        Operation::new("Do", vec!["Im1".into()]),
                        Operation::new("Q", vec![]),
                    ],
                };
                (content.encode().expect("content encodes"), dictionary! { "Im1" => image })
            }
        };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        kids.push(Object::from(doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
            "Resources" => dictionary! {
                "Font" => dictionary! { "F1" => helvetica, "F2" => courier },
                "XObject" => xobjects,
            },
        })));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    save(&mut doc)
}

fn save(doc: &mut Document) -> Vec<u8> {
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("the PDF saves");
    out
}

fn text_pdf(pages: &[&[&str]]) -> Vec<u8> {
    pdf(pages.iter().map(|lines| PageSpec::Text(text_content("F1", lines))).collect())
}

/// A directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("amp-extract-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SCANNED_LINES: &[&str] = &["SCANNED INVOICE NUMBER", "PAYMENT DUE IN THIRTY DAYS"];

/// Page 1 of `pdf`, rendered by `pdftoppm` as `format` (`png` or `jpeg`).
fn render(scratch: &Scratch, pdf: &[u8], format: &str) -> Vec<u8> {
    let input = scratch.path("source.pdf");
    std::fs::write(&input, pdf).expect("write source");
    let root = scratch.path(&format!("rendered-{format}"));
    let input_arg = input.to_str().expect("utf-8 path");
    let root_arg = root.to_str().expect("utf-8 path");
    run(
        "pdftoppm",
        &["-r", "150", "-f", "1", "-l", "1", "-singlefile", &format!("-{format}"), input_arg, root_arg],
    );
    let extension = if format == "jpeg" { "jpg" } else { format };
    std::fs::read(root.with_extension(extension)).expect("rendered image")
}

fn assert_scanned_words(text: &str) {
    let upper = text.to_uppercase();
    for word in ["SCANNED", "INVOICE", "PAYMENT", "THIRTY", "DAYS"] {
        assert!(upper.contains(word), "OCR missed {word:?} in {text:?}");
    }
}

// ---------------------------------------------------------------------------------------
// PDF
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_multi_page_pdf_gives_each_page_its_text_and_number() {
    let bytes = text_pdf(&[
        &["Alpha page one", "Second line of page one"],
        &["Bravo page two"],
        &["Charlie page three", "with café accents"],
    ]);
    let extractor = without_tools(ExtractLimits::default());
    let document = extract(&extractor, "application/pdf", bytes).await;
    assert_eq!(document.method, "pdf");
    assert!(document.unreadable_pages.is_empty());
    let pages: Vec<(Option<u32>, &str)> =
        document.pages.iter().map(|p| (p.number, p.text.as_str())).collect();
    assert_eq!(
        pages,
        [
            (Some(1), "Alpha page one\nSecond line of page one"),
            (Some(2), "Bravo page two"),
            (Some(3), "Charlie page three\nwith café accents"),
        ]
    );
}

#[tokio::test]
async fn text_lopdf_reads_poorly_is_read_again_by_pdftotext() {
    // One glyph per text position (as some generators write): read glyph by glyph, every
    // letter looks like a word of its own.
    let sentence = "The quick brown fox jumps over the lazy dog while seven wizards quietly judge \
                    boxing matches and five jumping frogs vex the patient clerk at dawn";
    let mut operations =
        vec![Operation::new("BT", vec![]), Operation::new("Tf", vec!["F2".into(), 10.into()])];
    // Courier advances 600/1000 em: 6 pt at 10 pt. Spaces are left as gaps of that width.
    let (mut column, mut line) = (0, 0);
    for c in sentence.chars() {
        if c == ' ' && column >= 80 {
            (column, line) = (0, line + 1);
            continue;
        }
        if c != ' ' {
            let (x, y) = (40.0 + 6.0 * column as f32, 700.0 - 14.0 * line as f32);
            let at = [1.0, 0.0, 0.0, 1.0, x, y].map(Object::Real).to_vec();
            operations.push(Operation::new("Tm", at));
            operations.push(Operation::new("Tj", vec![Object::string_literal(c.to_string())]));
        }
        column += 1;
    }
    operations.push(Operation::new("ET", vec![]));
    let bytes = pdf(vec![PageSpec::Text(Content { operations }.encode().expect("encodes"))]);

    let plain = without_tools(ExtractLimits::default());
    let lopdf_only = extract(&plain, "application/pdf", bytes.clone()).await;
    assert!(lopdf_only.pages[0].text.starts_with("T h e q u i c k"), "{:?}", lopdf_only.pages[0].text);

    let extractor = with_tools(ExtractLimits::default());
    let document = extract(&extractor, "application/pdf", bytes).await;
    assert_eq!(document.method, "pdftotext");
    let words: Vec<&str> = document.pages[0].text.split_whitespace().collect();
    let expected: Vec<&str> = sentence.split_whitespace().collect();
    assert_eq!(words, expected, "{:?}", document.pages[0].text);
}

#[tokio::test]
async fn an_image_only_page_is_read_by_ocr() {
    let scratch = Scratch::new("scanned-page");
    let source = text_pdf(&[SCANNED_LINES]);
    let jpeg = render(&scratch, &source, "jpeg");
    let size = imagesize::blob_size(&jpeg).expect("a JPEG");
    let bytes = pdf(vec![
        PageSpec::Text(text_content("F1", &["Cover letter"])),
        PageSpec::Jpeg { jpeg, width: size.width as u32, height: size.height as u32 },
        PageSpec::Text(text_content("F1", &["Closing remarks"])),
    ]);

    let extractor = with_tools(ExtractLimits::default());
    let document = extract(&extractor, "application/pdf", bytes.clone()).await;
    assert!(document.method.contains("ocr"), "{}", document.method);
    assert_eq!(document.method, "pdf+ocr");
    assert!(document.unreadable_pages.is_empty());
    assert_eq!(document.pages.len(), 3);
    assert_eq!(document.pages[0].text, "Cover letter");
    assert_eq!(document.pages[1].number, Some(2));
    assert_scanned_words(&document.pages[1].text);
    assert_eq!(document.pages[2].text, "Closing remarks");

    // Without OCR the text pages still come through, and the scanned one is reported.
    let plain = without_tools(ExtractLimits::default());
    let document = extract(&plain, "application/pdf", bytes).await;
    assert_eq!(document.method, "pdf");
    assert_eq!(document.unreadable_pages, [2]);
    assert_eq!(document.pages[1].text, "");
    assert_eq!(document.pages[2].text, "Closing remarks");
}

#[tokio::test]
async fn a_scanned_pdf_without_ocr_is_refused_with_the_reason() {
    let scratch = Scratch::new("scanned-only");
    let jpeg = render(&scratch, &text_pdf(&[SCANNED_LINES]), "jpeg");
    let size = imagesize::blob_size(&jpeg).expect("a JPEG");
    let bytes = pdf(vec![PageSpec::Jpeg { jpeg, width: size.width as u32, height: size.height as u32 }]);
    let err = refused(&without_tools(ExtractLimits::default()), "application/pdf", bytes).await;
    assert_invalid(&err, "no page of the PDF had readable text, and OCR is unavailable");
}

#[tokio::test]
async fn a_blank_pdf_has_no_text() {
    let bytes = pdf(vec![PageSpec::Text(Vec::new())]);
    let err = refused(&without_tools(ExtractLimits::default()), "application/pdf", bytes).await;
    assert_invalid(&err, "the PDF has no text");
}

// ---------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_png_is_read_by_ocr() {
    let scratch = Scratch::new("png");
    let png = render(&scratch, &text_pdf(&[SCANNED_LINES]), "png");
    let extractor = with_tools(ExtractLimits::default());
    assert!(extractor.supports("image/png"));
    let document = extract(&extractor, "image/png", png).await;
    assert_eq!(document.method, "ocr");
    assert_eq!(document.pages.len(), 1);
    assert_eq!(document.pages[0].number, None);
    assert_scanned_words(&document.pages[0].text);
    assert_eq!(document.pages[0].text.lines().count(), 2, "{:?}", document.pages[0].text);
}

/// Two single-image little-endian TIFFs (as pdftoppm writes them) chained into one
/// two-page TIFF: the second file is appended and its offsets moved by the first's length.
fn two_page_tiff(first: &[u8], second: &[u8]) -> Vec<u8> {
    assert!(first.starts_with(b"II*\0") && second.starts_with(b"II*\0"), "little-endian TIFFs");
    let u16_at = |b: &[u8], at: usize| usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
    let put = |b: &mut [u8], at: usize, value: usize| {
        b[at..at + 4].copy_from_slice(&u32::try_from(value).expect("fits").to_le_bytes());
    };
    let mut out = first.to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let shift = out.len();
    let mut tail = second.to_vec();
    let second_start = u32_at(&tail, 4);
    let mut directory = second_start;
    while directory != 0 {
        let entries = u16_at(&tail, directory);
        for i in 0..entries {
            let entry = directory + 2 + 12 * i;
            let (tag, kind, count) =
                (u16_at(&tail, entry), u16_at(&tail, entry + 2), u32_at(&tail, entry + 4));
            let width = match kind {
                1 | 2 | 6 | 7 => 1,
                3 | 8 => 2,
                5 | 10 | 12 => 8,
                _ => 4,
            };
            let external = width * count > 4;
            let value = u32_at(&tail, entry + 8);
            if external {
                put(&mut tail, entry + 8, value + shift);
            }
            if tag == 273 || tag == 324 {
                assert_eq!(kind, 4, "strip offsets are LONGs");
                if external {
                    for k in 0..count {
                        let at = value + 4 * k;
                        let offset = u32_at(&tail, at);
                        put(&mut tail, at, offset + shift);
                    }
                } else {
                    put(&mut tail, entry + 8, value + shift);
                }
            }
        }
        let next_at = directory + 2 + 12 * entries;
        let next = u32_at(&tail, next_at);
        if next != 0 {
            put(&mut tail, next_at, next + shift);
        }
        directory = next;
    }
    let mut last = u32_at(&out, 4);
    loop {
        let next_at = last + 2 + 12 * u16_at(&out, last);
        match u32_at(&out, next_at) {
            0 => {
                put(&mut out, next_at, second_start + shift);
                break;
            }
            next => last = next,
        }
    }
    out.extend_from_slice(&tail);
    out
}

#[tokio::test]
async fn a_multi_page_tiff_gives_numbered_pages() {
    let scratch = Scratch::new("tiff");
    let mut pages = Vec::new();
    for (i, lines) in [&["FIRST PAGE OF THE FAX"][..], &["SECOND PAGE WITH SIGNATURE"][..]].iter().enumerate()
    {
        let input = scratch.path(&format!("page{i}.pdf"));
        std::fs::write(&input, text_pdf(&[lines])).expect("write");
        let root = scratch.path(&format!("page{i}"));
        let (input, root_arg) = (input.to_str().expect("utf-8"), root.to_str().expect("utf-8"));
        run("pdftoppm", &["-r", "100", "-gray", "-tiff", "-singlefile", input, root_arg]);
        pages.push(std::fs::read(root.with_extension("tif")).expect("rendered TIFF"));
    }
    let tiff = two_page_tiff(&pages[0], &pages[1]);
    let extractor = with_tools(ExtractLimits::default());
    let document = extract(&extractor, "image/tiff", tiff.clone()).await;
    assert_eq!(document.method, "ocr");
    let numbers: Vec<Option<u32>> = document.pages.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [Some(1), Some(2)]);
    assert!(document.pages[0].text.to_uppercase().contains("FIRST PAGE"), "{:?}", document.pages);
    assert!(document.pages[1].text.to_uppercase().contains("SIGNATURE"), "{:?}", document.pages);

    let limited = with_tools(ExtractLimits { max_pages: 1, ..ExtractLimits::default() });
    let err = refused(&limited, "image/tiff", tiff).await;
    assert_invalid(&err, "the TIFF has more than the limit of 1 pages");
}

// ---------------------------------------------------------------------------------------
// DOCX, HTML, text
// ---------------------------------------------------------------------------------------

/// A DOCX archive holding `document_xml` as its main part.
fn docx(document_xml: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let parts: [(&str, &[u8]); 3] = [
        (
            "[Content_Types].xml",
            br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#,
        ),
        ("word/document.xml", document_xml),
    ];
    for (name, data) in parts {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(data).expect("zip write");
    }
    zip.finish().expect("zip finishes").into_inner()
}

const W_NS: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

#[tokio::test]
async fn a_docx_gives_its_paragraphs_and_tables() {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {W_NS}><w:body>
        <w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Quarterly report</w:t></w:r></w:p>
        <w:p><w:r><w:t xml:space="preserve">Revenue grew </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>12%</w:t></w:r><w:r><w:t xml:space="preserve"> in Q3 &amp; Q4.</w:t></w:r></w:p>
        <w:tbl>
          <w:tr><w:tc><w:p><w:r><w:t>Region</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Sales</w:t></w:r></w:p></w:tc></w:tr>
          <w:tr><w:tc><w:p><w:r><w:t>North</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>1,200</w:t></w:r></w:p></w:tc></w:tr>
        </w:tbl>
        <w:p><w:r><w:t>Name:</w:t><w:tab/><w:t>Ann</w:t><w:br/><w:t>Role:</w:t><w:tab/><w:t>CFO</w:t></w:r></w:p>
        </w:body></w:document>"#
    );
    let extractor = without_tools(ExtractLimits::default());
    let document = extract(&extractor, DOCX_MEDIA_TYPE, docx(xml.as_bytes())).await;
    assert_eq!(document.method, "docx");
    assert_eq!(document.pages.len(), 1);
    assert_eq!(document.pages[0].number, None);
    assert_eq!(
        document.pages[0].text,
        "Quarterly report\n\nRevenue grew 12% in Q3 & Q4.\n\nRegion\tSales\nNorth\t1,200\n\nName:\tAnn\nRole:\tCFO"
    );
}

#[tokio::test]
async fn an_html_page_gives_only_its_visible_text() {
    let html = r#"<!doctype html>
        <html><head><title>Not shown</title><style>body { font: 12px serif }</style>
        <script>document.write("tracking")</script></head>
        <body>
          <nav aria-hidden="true">Skip menu</nav>
          <h1>Caf&eacute; opening hours</h1>
          <p>Open <b>Mon&ndash;Fri</b>, 9&nbsp;am to 5&nbsp;pm &amp; by appointment.</p>
          <div hidden>Internal note</div>
          <p style="display: none">Old prices</p>
          <span style="visibility:hidden">ghost</span>
          <noscript>Please enable JavaScript</noscript>
          <script type="application/ld+json">{"secret": true}</script>
          <ul><li>Espresso &euro;2</li><li>Latte &euro;3</li></ul>
        </body></html>"#;
    let extractor = without_tools(ExtractLimits::default());
    let document = extract(&extractor, "text/html; charset=utf-8", html).await;
    assert_eq!(document.method, "html");
    assert_eq!(
        document.pages[0].text,
        "Café opening hours\n\nOpen Mon–Fri, 9 am to 5 pm & by appointment.\n\nEspresso €2\nLatte €3"
    );
}

#[tokio::test]
async fn text_formats_keep_their_content() {
    let extractor = without_tools(ExtractLimits::default());
    let markdown = "# Title\r\n\r\n    let x = 1;\r\n\r\n\r\n- item\r\n";
    let document = extract(&extractor, "text/markdown", markdown).await;
    assert_eq!(document.pages[0].text, "# Title\n\n    let x = 1;\n\n- item");
    assert_eq!(document.method, "text");
    let json = "\u{FEFF}{\"a\": [1, 2]}";
    assert_eq!(extract(&extractor, "application/json", json).await.pages[0].text, "{\"a\": [1, 2]}");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("name,city\nZoë,Köln".encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(extract(&extractor, "text/csv", utf16).await.pages[0].text, "name,city\nZoë,Köln");
}

#[tokio::test]
async fn every_listed_media_type_is_supported_and_others_are_not() {
    let extractor = with_tools(ExtractLimits::default());
    for media_type in SUPPORTED_MEDIA_TYPES {
        assert!(extractor.supports(media_type), "{media_type}");
    }
    assert!(!extractor.supports("application/zip"));
    let err = refused(&extractor, "application/x-msdownload", "MZ").await;
    assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
}

// ---------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_encrypted_pdf_is_refused() {
    let mut doc = Document::load_mem(&text_pdf(&[&["Top secret"]])).expect("loads");
    doc.trailer.set(
        "ID",
        vec![
            Object::string_literal(b"0123456789abcdef".to_vec()),
            Object::string_literal(b"0123456789abcdef".to_vec()),
        ],
    );
    let version = lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password: "user",
        key_length: 128,
        permissions: lopdf::Permissions::all(),
    };
    let state = lopdf::EncryptionState::try_from(version).expect("encryption state");
    doc.encrypt(&state).expect("encrypts");
    let bytes = save(&mut doc);
    assert!(bytes.windows(8).any(|w| w == b"/Encrypt"));
    for extractor in [without_tools(ExtractLimits::default()), with_tools(ExtractLimits::default())] {
        let err = refused(&extractor, "application/pdf", bytes.clone()).await;
        assert_invalid(&err, "the PDF is encrypted");
    }
}

#[tokio::test]
async fn a_pdf_encrypted_with_an_empty_user_password_is_read() {
    // Permissions-only protection: anyone may open it, so its text is readable.
    let mut doc = Document::load_mem(&text_pdf(&[&["Open to all"]])).expect("loads");
    doc.trailer.set(
        "ID",
        vec![
            Object::string_literal(b"fedcba9876543210".to_vec()),
            Object::string_literal(b"fedcba9876543210".to_vec()),
        ],
    );
    let version = lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password: "",
        key_length: 128,
        permissions: lopdf::Permissions::PRINTABLE,
    };
    let state = lopdf::EncryptionState::try_from(version).expect("encryption state");
    doc.encrypt(&state).expect("encrypts");
    let bytes = save(&mut doc);
    let document = extract(&without_tools(ExtractLimits::default()), "application/pdf", bytes).await;
    assert_eq!(document.pages[0].text, "Open to all");
}

#[tokio::test]
async fn an_encrypt_entry_in_the_trailer_alone_is_refused() {
    let mut doc = Document::load_mem(&text_pdf(&[&["Text"]])).expect("loads");
    let encrypt = doc.add_object(dictionary! {
        "Filter" => "Standard", "V" => 1, "R" => 2, "P" => -4,
        "O" => Object::string_literal(vec![1u8; 32]), "U" => Object::string_literal(vec![2u8; 32]),
    });
    doc.trailer.set("Encrypt", encrypt);
    let bytes = save(&mut doc);
    let err = refused(&without_tools(ExtractLimits::default()), "application/pdf", bytes).await;
    assert_invalid(&err, "the PDF is encrypted");
}

#[tokio::test]
async fn garbage_and_truncated_pdfs_are_refused() {
    let extractor = with_tools(ExtractLimits::default());
    let mut garbage = b"%PDF-1.7\n".to_vec();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..4096 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        garbage.push(seed as u8);
    }
    let err = refused(&extractor, "application/pdf", garbage).await;
    assert_invalid(&err, "the PDF could not be read");

    let whole = text_pdf(&[&["Some text"]]);
    let err = refused(&extractor, "application/pdf", whole[..40].to_vec()).await;
    assert_invalid(&err, "the PDF could not be read");

    let err = refused(&extractor, "application/pdf", "not a pdf at all").await;
    assert_invalid(&err, "the PDF could not be read");
}

/// A PDF of `count` pages sharing one content stream.
fn many_page_pdf(count: usize) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font =
        doc.add_object(dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica" });
    let content = doc.add_object(Stream::new(dictionary! {}, text_content("F1", &["Same page"])));
    let kids: Vec<Object> = (0..count)
        .map(|_| {
            doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => content,
                "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
            })
            .into()
        })
        .collect();
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count as i64,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    save(&mut doc)
}

#[tokio::test]
async fn a_pdf_with_more_pages_than_allowed_is_refused() {
    let bytes = many_page_pdf(10_000);
    let extractor = with_tools(ExtractLimits { max_pages: 500, ..ExtractLimits::default() });
    let err = refused(&extractor, "application/pdf", bytes).await;
    assert_invalid(&err, "the PDF has 10000 pages, more than the limit of 500");
}

#[tokio::test]
async fn a_page_whose_content_inflates_past_the_limit_is_refused() {
    let limits = ExtractLimits { max_unpacked_bytes: 1024 * 1024, ..ExtractLimits::default() };
    // 64 MiB of spaces (valid, empty content) compressed to a few kilobytes.
    let mut bomb = Stream::new(dictionary! {}, vec![b' '; 64 * 1024 * 1024]);
    bomb.compress().expect("compresses");
    assert!(bomb.content.len() < 200 * 1024);
    let mut doc = Document::load_mem(&text_pdf(&[&["Harmless"]])).expect("loads");
    let page = *doc.get_pages().get(&1).expect("page 1");
    let bomb = doc.add_object(bomb);
    doc.get_dictionary_mut(page).expect("page dict").set("Contents", bomb);
    let bytes = save(&mut doc);
    let err = refused(&with_tools(limits), "application/pdf", bytes).await;
    assert_invalid(&err, "page 1 of the PDF inflates to more than the limit of 1048576 bytes");
}

/// A one-page PDF written byte by byte (lopdf's writer regenerates object streams, so
/// it cannot write hostile ones), followed by `extra` objects.
fn raw_pdf(text: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let content = format!("BT /F1 14 Tf 72 720 Td ({text}) Tj ET");
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 /MediaBox [0 0 612 792] >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>".to_vec(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()).into_bytes(),
    ];
    objects.extend(extra.iter().cloned());
    let mut out = b"%PDF-1.5\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1)
            .as_bytes(),
    );
    out
}

/// An object stream (holding no objects) whose content inflates to `size` bytes.
fn object_stream(size: usize) -> Vec<u8> {
    let mut stream = Stream::new(dictionary! {}, vec![b' '; size]);
    stream.compress().expect("compresses");
    let mut body = format!(
        "<< /Type /ObjStm /N 0 /First 0 /Filter /FlateDecode /Length {} >>\nstream\n",
        stream.content.len()
    )
    .into_bytes();
    body.extend_from_slice(&stream.content);
    body.extend_from_slice(b"\nendstream");
    body
}

#[tokio::test]
async fn object_streams_are_bounded_together_not_one_by_one() {
    let limits = ExtractLimits { max_unpacked_bytes: 1024 * 1024, ..ExtractLimits::default() };
    // Three object streams of 600 KiB each: every one within the limit, together past it.
    let streams = vec![object_stream(600 * 1024); 3];
    let bytes = raw_pdf("Harmless", &streams);
    let err = refused(&without_tools(limits.clone()), "application/pdf", bytes.clone()).await;
    assert_invalid(&err, "the PDF's object streams inflate to more than the limit of 1048576 bytes");

    // Under a limit they fit together, the file reads.
    let roomy = ExtractLimits { max_unpacked_bytes: 4 * 1024 * 1024, ..limits };
    let document = extract(&without_tools(roomy), "application/pdf", bytes).await;
    assert_eq!(document.pages[0].text, "Harmless");
}

#[tokio::test]
async fn one_object_stream_bomb_is_refused() {
    let bytes = raw_pdf("Harmless", &[object_stream(300 * 1024 * 1024)]);
    assert!(bytes.len() < 1024 * 1024, "{} bytes", bytes.len());
    let err = refused(&without_tools(ExtractLimits::default()), "application/pdf", bytes).await;
    assert_invalid(&err, "object streams inflate to more than the limit of 104857600 bytes");
}

#[tokio::test]
async fn a_docx_zip_bomb_is_refused() {
    let limits = ExtractLimits { max_unpacked_bytes: 4 * 1024 * 1024, ..ExtractLimits::default() };
    // A document part that inflates to 64 MiB.
    let mut xml = format!(r#"<?xml version="1.0"?><w:document {W_NS}><w:body><w:p><w:r><w:t>"#).into_bytes();
    xml.resize(64 * 1024 * 1024, b'A');
    let bytes = docx(&xml);
    assert!(bytes.len() < 1024 * 1024, "{} bytes", bytes.len());
    let err = refused(&without_tools(limits.clone()), DOCX_MEDIA_TYPE, bytes.clone()).await;
    assert_invalid(&err, "the DOCX unpacks to more than the limit of 4194304 bytes");

    // The same bomb declaring a tiny size in its headers: reading stops at the limit all the
    // same (or the archive is refused as inconsistent), never inflating everything.
    let mut lying = bytes;
    let mut patched = 0;
    for at in 0..lying.len().saturating_sub(30) {
        let local = lying[at..].starts_with(b"PK\x03\x04");
        let central = lying[at..].starts_with(b"PK\x01\x02");
        let (size_at, name_len_at, name_at) = match (local, central) {
            (true, _) => (at + 22, at + 26, at + 30),
            (_, true) => (at + 24, at + 28, at + 46),
            _ => continue,
        };
        let name_len = u16::from_le_bytes([lying[name_len_at], lying[name_len_at + 1]]) as usize;
        if lying.get(name_at..name_at + name_len) == Some(b"word/document.xml") {
            lying[size_at..size_at + 4].copy_from_slice(&1000u32.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "both headers of the entry were patched");
    let err = refused(&without_tools(limits), DOCX_MEDIA_TYPE, lying).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[tokio::test]
async fn a_docx_with_too_many_entries_is_refused() {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..200 {
        zip.start_file(format!("junk/{i}"), options).expect("entry");
    }
    let bytes = zip.finish().expect("zip").into_inner();
    let limits = ExtractLimits { max_archive_entries: 100, ..ExtractLimits::default() };
    let err = refused(&without_tools(limits), DOCX_MEDIA_TYPE, bytes).await;
    assert_invalid(&err, "the DOCX has 200 entries, more than the limit of 100");
}

#[tokio::test]
async fn a_png_declaring_ten_billion_pixels_is_refused_before_ocr() {
    // A valid PNG signature and header claiming 100,000 × 100,000 pixels, then one tiny
    // IDAT: decoding it would allocate 30 GB.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&[0, 0, 0, 0]);
    };
    let mut header = Vec::new();
    header.extend_from_slice(&100_000u32.to_be_bytes());
    header.extend_from_slice(&100_000u32.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &header);
    chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    let extractor = with_tools(ExtractLimits::default());
    let started = Instant::now();
    let err = refused(&extractor, "image/png", png).await;
    assert_invalid(&err, "the image has 10000000000 pixels, more than the limit of 40000000");
    assert!(started.elapsed() < Duration::from_secs(2), "refused from the header, not by decoding");
}

#[tokio::test]
async fn text_in_an_unknown_encoding_is_refused() {
    let extractor = without_tools(ExtractLimits::default());
    let latin1 = b"Caf\xE9 cr\xE8me br\xFBl\xE9e".to_vec();
    let err = refused(&extractor, "text/plain", latin1).await;
    assert_invalid(&err, "the text is not UTF-8 (unknown encoding)");
    let mut random = Vec::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..1000 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        random.push((seed >> 56) as u8);
    }
    let err = refused(&extractor, "text/plain", random).await;
    assert_invalid(&err, "the text is not UTF-8 (unknown encoding)");
    let err = refused(&extractor, "text/plain", &b"binary\0data"[..]).await;
    assert_invalid(&err, "unknown encoding");
}

#[tokio::test]
async fn text_past_the_limit_is_refused() {
    let extractor = without_tools(ExtractLimits { max_text_bytes: 1000, ..ExtractLimits::default() });
    let err = refused(&extractor, "text/plain", "x".repeat(2000)).await;
    assert_invalid(&err, "the document's text is more than the limit of 1000 bytes");
    let lines: Vec<String> = (0..40).map(|i| format!("Line number {i} of a long page")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let err = refused(&extractor, "application/pdf", text_pdf(&[&lines])).await;
    assert_invalid(&err, "more than the limit of 1000 bytes");
}

/// A stand-in `tesseract` that answers the probe and then hangs on real work, writing its
/// process id to `pid_file` first.
fn hanging_tesseract(scratch: &Scratch) -> (PathBuf, PathBuf) {
    let script = scratch.path("tesseract");
    let pid_file = scratch.path("pid");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in --list-langs) echo 'List of available languages (1):'; echo eng; exit 0;; esac\n\
             echo $$ > '{}'\nexec sleep 30\n",
            pid_file.display()
        ),
    )
    .expect("script");
    run("chmod", &["+x", script.to_str().expect("utf-8 path")]);
    (script, pid_file)
}

fn process_alive(pid: &str) -> bool {
    // A killed child that its parent has not reaped yet is a zombie: dead all the same.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_hanging_ocr_engine_times_out_and_is_killed() {
    let scratch = Scratch::new("hanging");
    let (script, pid_file) = hanging_tesseract(&scratch);
    let png = render(&scratch, &text_pdf(&[SCANNED_LINES]), "png");
    let extractor = DocumentExtractor::new(ExtractLimits {
        tesseract: Some(script),
        timeout: Duration::from_millis(1500),
        ..ExtractLimits::default()
    });
    assert!(extractor.ocr_available(), "the stand-in answers the probe");
    let started = Instant::now();
    let err = refused(&extractor, "image/png", png).await;
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.to_string(), "extracting text from image/png timed out after 1500ms");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let pid = std::fs::read_to_string(&pid_file).expect("the stand-in started").trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(&pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!process_alive(&pid), "the OCR process {pid} was left running");
}

#[tokio::test]
async fn a_tiny_timeout_stops_a_long_pdf() {
    let bytes = many_page_pdf(5_000);
    let extractor = without_tools(ExtractLimits {
        max_pages: 10_000,
        timeout: Duration::from_millis(1),
        ..ExtractLimits::default()
    });
    let err = refused(&extractor, "application/pdf", bytes).await;
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

// ---------------------------------------------------------------------------------------
// Speed
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_long_text_pdf_reads_quickly() {
    let lines: Vec<String> =
        (0..40).map(|i| format!("Line {i}: the quick brown fox jumps over the lazy dog")).collect();
    let page: Vec<&str> = lines.iter().map(String::as_str).collect();
    let pages: Vec<&[&str]> = (0..300).map(|_| page.as_slice()).collect();
    let bytes = text_pdf(&pages);
    let extractor = without_tools(ExtractLimits::default());
    let started = Instant::now();
    let document = extract(&extractor, "application/pdf", bytes).await;
    let elapsed = started.elapsed();
    assert_eq!(document.pages.len(), 300);
    assert_eq!(document.pages[299].number, Some(300));
    assert_eq!(document.pages[299].text.lines().count(), 40);
    eprintln!("300 text pages in {elapsed:?}: {:.0} pages/s", 300.0 / elapsed.as_secs_f64());
    assert!(elapsed < Duration::from_secs(20), "300 pages took {elapsed:?}");
}

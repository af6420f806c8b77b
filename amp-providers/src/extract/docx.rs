//! DOCX (Office Open XML word processing): the text of the main document part.
//!
//! A DOCX is a ZIP archive, so it is opened as a hostile one: the number of entries is
//! bounded, and every entry read goes through `take(limit + 1)`, since the sizes an
//! archive declares can lie. Only the package relationships and the main document part
//! are read. Paragraphs become paragraphs, table rows lines and cells tab-separated;
//! tabs, line breaks and non-breaking hyphens are kept. Text a reader does not see is left
//! out: deleted revisions, field codes, the `mc:Fallback` copy of text boxes, the origin of
//! moved text, and runs marked `w:vanish`.
//!
//! Pages: Word records where pages started when the file was last saved
//! (`w:lastRenderedPageBreak`); when those marks are there the text is split into numbered
//! pages at them. Without them (files written by other programs) the text is unpaged:
//! explicit page breaks alone would number pages wrongly as soon as one overflows.

use std::io::{Cursor, Read};

use amp_core::{Error, ExtractedDocument, ExtractedPage, Result};
use bytes::Bytes;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::ExtractLimits;
use super::text::tidy_layout;

/// The main document part, when the package relationships do not name another.
const DEFAULT_DOCUMENT_PART: &str = "word/document.xml";

/// The first bytes of an OLE compound file: what a password-protected Office file is.
const COMPOUND_FILE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// Reads the text of a DOCX.
pub(super) fn extract(bytes: Bytes, limits: &ExtractLimits) -> Result<ExtractedDocument> {
    if bytes.starts_with(COMPOUND_FILE_MAGIC) {
        return Err(Error::invalid_input(
            "the DOCX is encrypted or in the old binary Word format; save it unprotected as .docx",
        ));
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::invalid_input(format!("the DOCX is not a readable ZIP archive: {e}")))?;
    if archive.len() > limits.max_archive_entries {
        return Err(Error::invalid_input(format!(
            "the DOCX has {} entries, more than the limit of {}",
            archive.len(),
            limits.max_archive_entries
        )));
    }
    let mut budget = Budget { left: limits.max_unpacked_bytes, limit: limits.max_unpacked_bytes };
    let part = match read_entry(&mut archive, "_rels/.rels", &mut budget)? {
        Some(rels) => main_part(&rels).unwrap_or_else(|| DEFAULT_DOCUMENT_PART.to_owned()),
        None => DEFAULT_DOCUMENT_PART.to_owned(),
    };
    let xml = read_entry(&mut archive, &part, &mut budget)?
        .ok_or_else(|| Error::invalid_input(format!("the DOCX has no {part} (is it a Word document?)")))?;
    let pages = document_text(&xml)?;
    if pages.len() > limits.max_pages as usize {
        return Err(Error::invalid_input(format!(
            "the DOCX has {} pages, more than the limit of {}",
            pages.len(),
            limits.max_pages
        )));
    }
    let mut pages: Vec<String> = pages.iter().map(|p| tidy_layout(p)).collect();
    if pages.len() == 1 {
        let text = pages.pop().unwrap_or_default();
        return Ok(ExtractedDocument::unpaged(text, "docx"));
    }
    Ok(ExtractedDocument {
        pages: (1..).zip(pages).map(|(number, text)| ExtractedPage { number: Some(number), text }).collect(),
        method: "docx".to_owned(),
        unreadable_pages: Vec::new(),
    })
}

/// What may still be unpacked from the archive.
struct Budget {
    left: u64,
    limit: u64,
}

/// Reads one entry as UTF-8, charging what it unpacks to `budget`; `None` if it is absent.
fn read_entry(
    archive: &mut zip::ZipArchive<Cursor<Bytes>>,
    name: &str,
    budget: &mut Budget,
) -> Result<Option<String>> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(Error::invalid_input(format!("the DOCX entry {name} cannot be read: {e}"))),
    };
    let mut data = Vec::new();
    // The declared size may lie: read at most one byte past what is left, whatever it says.
    entry
        .take(budget.left.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| Error::invalid_input(format!("the DOCX entry {name} cannot be unpacked: {e}")))?;
    let unpacked = data.len() as u64;
    if unpacked > budget.left {
        return Err(Error::invalid_input(format!(
            "the DOCX unpacks to more than the limit of {} bytes (a ZIP bomb?)",
            budget.limit
        )));
    }
    budget.left -= unpacked;
    String::from_utf8(data)
        .map(Some)
        .map_err(|_| Error::invalid_input(format!("the DOCX entry {name} is not UTF-8 XML")))
}

/// The main document part named by the package relationships (`_rels/.rels`).
fn main_part(rels: &str) -> Option<String> {
    let mut reader = Reader::from_str(rels);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == "Relationship" => {
                let is_main = attribute(&e, "Type").is_some_and(|t| t.ends_with("/officeDocument"));
                if is_main && let Some(target) = attribute(&e, "Target") {
                    return Some(target.trim_start_matches('/').to_owned());
                }
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// An attribute's unescaped value, by local name (any namespace prefix).
fn attribute(element: &BytesStart<'_>, local_name: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local_name)
        .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok().map(|v| v.into_owned()))
}

/// Elements whose whole content is text a reader does not see.
fn is_unseen(local_name: &str) -> bool {
    matches!(local_name, "Fallback" | "moveFrom" | "del" | "instrText" | "delInstrText")
}

/// The text of `word/document.xml`, split into pages at `w:lastRenderedPageBreak`.
fn document_text(xml: &str) -> Result<Vec<String>> {
    let mut reader = Reader::from_str(xml);
    let mut out = String::new();
    let mut page_starts: Vec<usize> = Vec::new();
    // Depth inside an unseen element, 0 when outside one.
    let mut unseen = 0usize;
    // Runs open (a text box inside a drawing puts runs inside a run).
    let mut runs = 0usize;
    let mut run_hidden = false;
    let mut in_run_properties = false;
    let mut in_text = false;
    let mut cells = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| Error::invalid_input(format!("the DOCX document XML is broken: {e}")))?;
        match event {
            Event::Start(_) if unseen > 0 => unseen += 1,
            Event::End(_) if unseen > 0 => unseen -= 1,
            Event::Start(e) => match e.local_name().as_ref() {
                name if is_unseen(name) => unseen = 1,
                "r" => {
                    runs += 1;
                    run_hidden = false;
                }
                "rPr" if runs > 0 => in_run_properties = true,
                "t" => in_text = true,
                "tc" => cells += 1,
                "tbl" => out.push_str("\n\n"),
                _ => {}
            },
            Event::Empty(e) if unseen == 0 => match e.local_name().as_ref() {
                "vanish" if in_run_properties => {
                    run_hidden =
                        attribute(&e, "val").is_none_or(|v| !matches!(v.as_str(), "0" | "false" | "off"));
                }
                _ if runs == 0 || run_hidden => {}
                "tab" => out.push('\t'),
                "br" if attribute(&e, "type").as_deref() == Some("page") => out.push_str("\n\n"),
                "br" | "cr" => out.push('\n'),
                "noBreakHyphen" => out.push('-'),
                "lastRenderedPageBreak" => page_starts.push(out.len()),
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "r" => {
                    runs = runs.saturating_sub(1);
                    run_hidden = false;
                }
                "rPr" => in_run_properties = false,
                "t" => in_text = false,
                "p" if cells > 0 => out.push(' '),
                "p" => out.push_str("\n\n"),
                "tc" => {
                    cells = cells.saturating_sub(1);
                    out.push('\t');
                }
                "tr" => out.push('\n'),
                "tbl" => out.push_str("\n\n"),
                _ => {}
            },
            Event::Text(t) if in_text && unseen == 0 && !run_hidden => out.push_str(&t.xml10_content()),
            Event::CData(t) if in_text && unseen == 0 && !run_hidden => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text && unseen == 0 && !run_hidden => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&r) {
                    out.push_str(s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // A mark at the very start (or two at one place) makes no page of its own.
    page_starts.retain(|&at| at > 0);
    page_starts.dedup();
    let mut pages = Vec::with_capacity(page_starts.len() + 1);
    let mut start = 0;
    for at in page_starts {
        pages.push(out[start..at].to_owned());
        start = at;
    }
    pages.push(out[start..].to_owned());
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006""#;

    fn body(inner: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>{inner}</w:body></w:document>"#
        )
    }

    #[test]
    fn runs_tabs_breaks_and_entities() {
        let xml = body(
            r#"<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>
               <w:r><w:t xml:space="preserve">Fish &amp; </w:t></w:r><w:r><w:t>chips</w:t><w:tab/><w:t>£4</w:t></w:r></w:p>
               <w:p><w:r><w:t>line</w:t><w:br/><w:t>two</w:t><w:noBreakHyphen/><w:t>x</w:t></w:r></w:p>"#,
        );
        let pages = document_text(&xml).unwrap();
        assert_eq!(pages.len(), 1);
        assert_eq!(tidy_layout(&pages[0]), "Fish & chips\t£4\n\nline\ntwo-x");
    }

    #[test]
    fn unseen_text_is_left_out() {
        let xml = body(
            r#"<w:p><w:r><w:t xml:space="preserve">kept </w:t></w:r><w:del><w:r><w:delText>deleted</w:delText></w:r></w:del>
               <w:r><w:rPr><w:vanish/></w:rPr><w:t>hidden</w:t></w:r>
               <w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>PAGE</w:instrText></w:r>
               <w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:t>box</w:t></mc:Choice>
               <mc:Fallback><w:t>box</w:t></mc:Fallback></mc:AlternateContent></w:r></w:p>"#,
        );
        assert_eq!(tidy_layout(&document_text(&xml).unwrap()[0]), "kept box");
    }

    #[test]
    fn rendered_page_breaks_split_pages() {
        let xml = body(
            r#"<w:p><w:r><w:lastRenderedPageBreak/><w:t>one</w:t></w:r></w:p>
               <w:p><w:r><w:br w:type="page"/></w:r></w:p>
               <w:p><w:r><w:lastRenderedPageBreak/><w:t>two</w:t></w:r></w:p>"#,
        );
        let pages: Vec<String> = document_text(&xml).unwrap().iter().map(|p| tidy_layout(p)).collect();
        assert_eq!(pages, ["one", "two"]);
    }

    #[test]
    fn the_main_part_comes_from_the_relationships() {
        let rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
            <Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>
            <Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/word/document2.xml"/>
            </Relationships>"#;
        assert_eq!(main_part(rels).as_deref(), Some("word/document2.xml"));
        assert_eq!(main_part("<Relationships/>"), None);
    }
}

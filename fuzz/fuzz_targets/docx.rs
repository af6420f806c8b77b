//! The DOCX reader (ZIP, relationships, the main document part): any bytes must give text
//! or a refusal within the extraction limits, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = amp_providers::extract::fuzzing::docx(data);
});

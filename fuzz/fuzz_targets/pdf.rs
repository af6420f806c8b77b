//! The PDF text-layer reader (lopdf and AMP's content-stream walker): any bytes must give
//! pages or a refusal within the extraction limits, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = amp_providers::extract::fuzzing::pdf_text_layer(data);
});

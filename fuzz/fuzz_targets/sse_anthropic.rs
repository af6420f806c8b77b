//! Anthropic's stream format: any body, split anywhere, must decode or fail cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (split, body) = data.split_first().map_or((0, data), |(s, rest)| (usize::from(*s), rest));
    let at = split.min(body.len());
    let chunks = vec![bytes::Bytes::copy_from_slice(&body[..at]), bytes::Bytes::copy_from_slice(&body[at..])];
    amp_providers::chat::anthropic::fuzz_stream(chunks);
});

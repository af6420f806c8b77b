//! Plumbing shared by the remote providers: one place that builds the HTTP client, turns
//! upstream failures into [`amp_core::Error`], reads `Retry-After`, enforces a deployment's
//! timeouts on a stream, and keeps API keys out of error text.
//!
//! Providers own their wire formats (request mapping, stream decoding, error bodies); what
//! every provider does the same way lives here, so a fix to timeouts or key scrubbing
//! lands once.

mod client;
mod endpoint;
mod error;
mod retry_after;
mod scrub;
mod sse;
mod timeouts;

pub use client::{build_client, extra_headers, send};
pub use endpoint::{JsonEndpoint, JsonEndpointParts, StatusErrorMapper, malformed};
pub use error::{
    UpstreamErrorBody, first_number_after, read_error_body, status_is_retryable, transport_error,
    upstream_status_error,
};
pub use retry_after::{retry_after, retry_after_at};
pub use scrub::KeyScrubber;
#[cfg(feature = "fuzzing")]
pub use sse::decode_chunks;
pub use sse::{Decoded, SseDecoder, decode_sse, wait_for_first_token};
pub use timeouts::{StreamClock, StreamTimeouts, TimeoutStage};

//! Loopback mock servers speaking the providers' wire formats, for tests, benches and
//! end-to-end tests of the server. Nothing here touches the network beyond `127.0.0.1`.
//!
//! - [`MockServer`]: an HTTP/1.1 server on raw TCP that records every request and
//!   answers with scripted [`MockResponse`]s — JSON, event streams frame by frame with
//!   delays, a connection closed or reset mid-stream, or a stall — and reports clients
//!   that disconnect before their answer is complete. Written on `tokio::net` rather
//!   than an HTTP framework so every byte of an answer, and every misbehaviour, is ours.
//! - [`openai`], [`anthropic`]: realistic answers and error bodies in each provider's
//!   format, and `instant_upstream` handlers for load tests.
//! - [`UnreachableEndpoint`]: an address whose connect never completes.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use amp_providers::mock::{MockServer, openai::ChatCompletionStream};
//!
//! let server = MockServer::always(
//!     ChatCompletionStream::new("chatcmpl-1", "gpt-4o-mini").text("Hi").usage(5, 1).into_response(),
//! )
//! .await?;
//! let base_url = format!("{}/v1", server.url()); // give this to the client under test
//! # let _ = base_url;
//! # Ok::<(), std::io::Error>(()) }).unwrap();
//! ```

pub mod anthropic;
pub mod openai;
mod request;
mod response;
mod server;
mod unreachable;

pub use request::RecordedRequest;
pub use response::{Frame, MockResponse, StreamEnd};
pub use server::{Handler, MockServer};
pub use unreachable::UnreachableEndpoint;

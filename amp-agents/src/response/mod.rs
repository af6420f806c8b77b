//! The Response agent's share of a chat turn: checking what an answer cites.
//!
//! Streaming to the client, stopping a turn from another request and the response cache
//! arrive with the rest of the Response agent; cached answers already live under
//! [`crate::conversations::response_cache_prefix`], which deleting a conversation clears.

mod citations;

pub use citations::cite;

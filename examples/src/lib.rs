//! Runnable examples of the AMP crates used without the server.
//!
//! Run one from the workspace root with `cargo run --example NAME`; each file under
//! `examples/examples/` says what it shows.

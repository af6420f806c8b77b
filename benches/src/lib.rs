//! Criterion benches (`cargo bench` from the workspace root) and the bounded load
//! harness for AMP. Results, with the command and machine, live in `RESULTS.md`.

pub mod retrieval;

//! [`Cache`](amp_core::Cache) backends.

pub mod memory;

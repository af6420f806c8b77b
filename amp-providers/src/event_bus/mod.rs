//! [`EventBus`](amp_core::EventBus) backends.

pub mod memory;

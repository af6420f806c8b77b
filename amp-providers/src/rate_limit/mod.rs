//! [`RateLimiter`](amp_core::RateLimiter) backends.

pub mod memory;

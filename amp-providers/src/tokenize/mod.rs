//! [`Tokenizer`](amp_core::Tokenizer) implementations.

//! [`Scanner`](amp_core::Scanner) backends.

mod clamav;

pub use clamav::{ClamAvScanner, ClamdAddress};

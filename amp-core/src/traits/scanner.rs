//! Malware scanning of uploads.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A scanner's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ScanVerdict {
    /// Nothing found.
    Clean,
    /// Malware found.
    Infected {
        /// The matching signature's name.
        signature: String,
    },
}

/// Scans bytes for malware. A scanner that cannot answer returns `Unavailable`, never
/// `Clean`.
#[async_trait]
pub trait Scanner: Send + Sync {
    /// Scans one upload.
    async fn scan(&self, bytes: Bytes) -> Result<ScanVerdict>;
}

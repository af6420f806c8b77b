//! `[storage]`: uploads, where their bytes live, how they are checked and made searchable.

use serde::{Deserialize, Serialize};

use super::{KeywordIndexKind, VectorIndexKind};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Uploads, blobs, scanning, extraction and the ingestion workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Largest file accepted, in bytes. Default 25 MiB (the seed's limit).
    pub max_file_bytes: u64,
    /// Where passage vectors live. Default [`VectorIndexKind::Auto`].
    pub vector_index: VectorIndexKind,
    /// Where passage text is indexed for keyword search. Default [`KeywordIndexKind::Auto`].
    pub keyword_index: KeywordIndexKind,
    /// Media types accepted; empty (the default) means every type the extractor reads.
    pub allowed_media_types: Vec<String>,
    /// Files processed in parallel by this process. Default 2.
    pub workers: usize,
    /// Threads the local embedder computes with; 0 (the default) uses every core, which is
    /// what bounds ingestion speed. Use 1 on a machine busy with other work (two threads
    /// under contention are slower than one).
    pub embed_threads: usize,
    /// Attempts per file before it is failed for good. Default 3.
    pub max_attempts: u32,
    /// How long a worker holds a file before another process may take it over; the worker
    /// renews it every third of this while it works. Default 60 s.
    pub lease_secs: u64,
    /// How long a presigned upload URL works. Default 900 s.
    pub upload_url_ttl_secs: u64,
    /// How long a file may stay announced (`pending`) before an unfinished upload is
    /// dropped. Default 86,400 s.
    pub pending_ttl_secs: u64,
    /// Where the original bytes are kept.
    pub blobs: BlobStoreConfig,
    /// Malware scanning.
    pub scanner: ScannerConfig,
    /// Bounds on reading text out of one document.
    pub extraction: ExtractionConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            max_file_bytes: 25 * 1024 * 1024,
            vector_index: VectorIndexKind::Auto,
            keyword_index: KeywordIndexKind::Auto,
            allowed_media_types: Vec::new(),
            workers: 2,
            embed_threads: 0,
            max_attempts: 3,
            lease_secs: 60,
            upload_url_ttl_secs: 900,
            pending_ttl_secs: 86_400,
            blobs: BlobStoreConfig::default(),
            scanner: ScannerConfig::default(),
            extraction: ExtractionConfig::default(),
        }
    }
}

impl StorageConfig {
    /// The local embedder's threads: `embed_threads`, or every core when it is 0.
    pub fn embedder_threads(&self) -> usize {
        match self.embed_threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        }
    }

    /// Checks values that parse but make no sense, naming the key.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("storage.workers", self.workers as u64),
            ("storage.max_attempts", u64::from(self.max_attempts)),
            ("storage.lease_secs", self.lease_secs),
            ("storage.upload_url_ttl_secs", self.upload_url_ttl_secs),
            ("storage.pending_ttl_secs", self.pending_ttl_secs),
            ("storage.extraction.max_pages", u64::from(self.extraction.max_pages)),
            ("storage.extraction.timeout_secs", self.extraction.timeout_secs),
            ("storage.extraction.max_unpacked_bytes", self.extraction.max_unpacked_bytes),
            ("storage.extraction.max_image_pixels", self.extraction.max_image_pixels),
            ("storage.scanner.timeout_secs", self.scanner.timeout_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(Error::invalid_input(format!("config: {key}: must be positive")));
            }
        }
        if self.embed_threads > 64 {
            return Err(Error::invalid_input("config: storage.embed_threads: at most 64"));
        }
        if self.workers > 64 {
            return Err(Error::invalid_input("config: storage.workers: at most 64"));
        }
        if self.upload_url_ttl_secs > 7 * 86_400 {
            return Err(Error::invalid_input("config: storage.upload_url_ttl_secs: at most 604800 (7 days)"));
        }
        if self.pending_ttl_secs < self.upload_url_ttl_secs.saturating_add(self.lease_secs.saturating_mul(3))
        {
            return Err(Error::invalid_input(
                "config: storage.pending_ttl_secs: must be at least upload_url_ttl_secs + 3 × lease_secs, so a slow \
                 but valid presigned upload is never dropped",
            ));
        }
        if let BlobStoreConfig::Local { signing_key: Some(key), .. } = &self.blobs
            && key.expose().len() < 32
        {
            return Err(Error::invalid_input("config: storage.blobs.signing_key: must be at least 32 bytes"));
        }
        if let BlobStoreConfig::S3(s3) = &self.blobs {
            if s3.bucket.trim().is_empty() {
                return Err(Error::invalid_input("config: storage.blobs.bucket: must not be empty"));
            }
            if s3.access_key.is_some() != s3.secret_key.is_some() {
                return Err(Error::invalid_input(
                    "config: storage.blobs: access_key and secret_key go together",
                ));
            }
        }
        if let Some(addr) = &self.scanner.clamd
            && !(addr.starts_with("tcp://") || addr.starts_with("unix://"))
        {
            return Err(Error::invalid_input(
                "config: storage.scanner.clamd: must be tcp://HOST:PORT or unix:///PATH",
            ));
        }
        Ok(())
    }
}

/// Where the original bytes of uploads are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BlobStoreConfig {
    /// A directory on this machine (the embedded default), with upload URLs the server
    /// signs itself.
    Local {
        /// The directory. Default `blobs` under the data dir.
        #[serde(default)]
        path: Option<std::path::PathBuf>,
        /// Signs upload and download URLs (at least 32 bytes, e.g. `${AMP_BLOB_KEY}`).
        /// Default: a random key kept in the data dir.
        #[serde(default)]
        signing_key: Option<Secret>,
        /// The address clients reach this server at, for the URLs it signs. Default
        /// `http://` + `server.listen`.
        #[serde(default)]
        public_url: Option<String>,
    },
    /// Amazon S3 or an S3-compatible store.
    S3(S3Config),
}

impl Default for BlobStoreConfig {
    fn default() -> Self {
        BlobStoreConfig::Local { path: None, signing_key: None, public_url: None }
    }
}

/// An S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Its region. Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// An S3-compatible endpoint (MinIO, Ceph, s3s); AWS when unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most compatible stores need.
    #[serde(default)]
    pub force_path_style: bool,
    /// Static credentials (`${ENV}`); both or neither.
    #[serde(default)]
    pub access_key: Option<Secret>,
    /// The secret half of the static credentials.
    #[serde(default)]
    pub secret_key: Option<Secret>,
    /// Server-side encryption: `AES256` or `aws:kms`.
    #[serde(default)]
    pub server_side_encryption: Option<String>,
    /// The KMS key for `aws:kms`.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Prepended to every key, e.g. `amp/`.
    #[serde(default)]
    pub prefix: Option<String>,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// Malware scanning of uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScannerConfig {
    /// clamd's address: `tcp://HOST:PORT` or `unix:///PATH`. Unset (the default): uploads
    /// are not scanned, and the storage status says so.
    pub clamd: Option<String>,
    /// What a file does while the scanner cannot be reached. Default
    /// [`ScannerUnavailable::Wait`].
    pub on_unavailable: ScannerUnavailable,
    /// How long one scan may take. Default 60 s.
    pub timeout_secs: u64,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig { clamd: None, on_unavailable: ScannerUnavailable::Wait, timeout_secs: 60 }
    }
}

/// What happens to a file while the configured scanner cannot be reached. Either way it is
/// never processed unscanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScannerUnavailable {
    /// It stays queued and is retried with back-off until the scanner answers.
    Wait,
    /// It fails at once with the reason.
    Fail,
}

/// Bounds on reading one document, so a hostile file fails alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractionConfig {
    /// Most pages read from one document. Default 2,000.
    pub max_pages: u32,
    /// Most time one document may take, OCR included. Default 300 s.
    pub timeout_secs: u64,
    /// Most bytes unpacked from one archive-based document (DOCX). Default 100 MiB.
    pub max_unpacked_bytes: u64,
    /// Most pixels of one image (width × height) read by OCR. Default 40 million.
    pub max_image_pixels: u64,
    /// Read scanned pages and images with tesseract when it is installed. Default true.
    pub ocr: bool,
}

impl Default for ExtractionConfig {
    fn default() -> Self {
        ExtractionConfig {
            max_pages: 2_000,
            timeout_secs: 300,
            max_unpacked_bytes: 100 * 1024 * 1024,
            max_image_pixels: 40_000_000,
            ocr: true,
        }
    }
}

//! Enterprise data sources (SQL databases, REST APIs, SharePoint, ServiceNow).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One record read from a source, with its own access list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The record's id in the source.
    pub external_id: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub text: String,
    /// A link back to it in the source, if there is one.
    pub url: Option<String>,
    /// The source's principals (user emails or group names) allowed to read it.
    pub allowed_principals: Vec<String>,
    /// When it last changed in the source.
    pub updated_at: DateTime<Utc>,
}

/// A page of changes since a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncBatch {
    /// New or changed records.
    pub records: Vec<SourceRecord>,
    /// Ids of records removed from the source.
    pub deleted: Vec<String>,
    /// Pass to the next call; `None` when there is nothing more right now.
    pub next_cursor: Option<String>,
}

/// A connection to one data source.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The connector type (`sql`, `rest`, `sharepoint`, `servicenow`).
    fn kind(&self) -> &str;

    /// Changes since `cursor` (`None`: from the beginning), one page at a time.
    async fn sync(&self, cursor: Option<&str>) -> Result<SyncBatch>;

    /// Live query, for sources that are queried rather than synced.
    async fn query(&self, query: &str, limit: usize) -> Result<Vec<SourceRecord>>;
}

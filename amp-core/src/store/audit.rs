use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditQuery, NewAuditEvent};
use crate::error::Result;

/// The append-only audit log. There is no update or delete: records are permanent.
///
/// Promises: `seq` increases strictly in append order, also under concurrent appends;
/// queries return matching records newest first.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends a record; returns it with its `seq` and time.
    async fn append(&self, event: NewAuditEvent) -> Result<AuditEvent>;

    /// Reads records.
    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>>;
}

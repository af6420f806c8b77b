//! The DataSource agent: reads configured enterprise sources live for a chat turn, shows a
//! person only the records they are on the access list of, and audits every read.
//!
//! Syncing sources into the index (so they are searched like files) and the SharePoint,
//! ServiceNow and REST connectors are not built yet; SQL sources are queried live.

use std::collections::BTreeMap;
use std::sync::Arc;

use amp_core::audit::{AuditAction, NewAuditEvent};
use amp_core::data_source::DataSourceSummary;
use amp_core::{Connector, DataSourceId, Error, Result, SourceRecord, Stores};
use serde_json::json;

use crate::principal::Principal;

/// The longest a source may take to answer a turn's query.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The access-list entry that lets everyone signed in read a record.
pub const EVERYONE: &str = "*";

/// A record a person may read, with the source it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceHit {
    /// The source.
    pub source: DataSourceId,
    /// The source's name.
    pub source_name: String,
    /// The record.
    pub record: SourceRecord,
}

struct Connected {
    summary: DataSourceSummary,
    connector: Arc<dyn Connector>,
}

/// The DataSource agent. Cheap to clone.
#[derive(Clone)]
pub struct DataSources {
    stores: Stores,
    sources: Arc<BTreeMap<DataSourceId, Connected>>,
}

impl DataSources {
    /// The agent over these configured sources (none is fine: nothing can be read).
    pub fn new(stores: Stores, sources: Vec<(DataSourceSummary, Arc<dyn Connector>)>) -> Self {
        let sources = sources
            .into_iter()
            .map(|(summary, connector)| (summary.id, Connected { summary, connector }))
            .collect();
        DataSources { stores, sources: Arc::new(sources) }
    }

    /// Every configured source: any signed-in person may name one, and sees only the
    /// records they are on the access list of.
    pub fn list(&self, _principal: &Principal) -> Vec<DataSourceSummary> {
        self.sources.values().map(|c| c.summary.clone()).collect()
    }

    /// Whether `id` is a configured source.
    pub fn exists(&self, id: DataSourceId) -> bool {
        self.sources.contains_key(&id)
    }

    /// Up to `limit` records per source that answer `question` and that the caller may
    /// read; with `shared` (the answer is stored where others read it), only records open
    /// to everyone. An unknown id is `NotFound`; a source that fails or takes longer than
    /// 10 s fails the call (the caller asked for it). Every source read is audited with
    /// the ids of the records shown and how many the access lists withheld; failed reads
    /// too.
    pub async fn search(
        &self,
        principal: &Principal,
        ids: &[DataSourceId],
        question: &str,
        limit: usize,
        shared: bool,
    ) -> Result<Vec<SourceHit>> {
        let sources: Vec<&Connected> = ids
            .iter()
            .map(|id| self.sources.get(id).ok_or_else(|| Error::not_found(format!("data source {id}"))))
            .collect::<Result<_>>()?;
        if sources.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let me = self
            .stores
            .users
            .get_user(principal.user)
            .await?
            .ok_or_else(|| Error::unauthenticated("the account no longer exists"))?;
        // Access lists name people by email, which proves nothing until it is verified:
        // until then only records open to everyone are readable.
        let email = me.email_verified.then_some(me.email);
        let mut hits = Vec::new();
        for source in sources {
            // Ask for more than needed: the access lists may withhold some.
            let asked = limit.saturating_mul(4).min(200);
            let result =
                match tokio::time::timeout(QUERY_TIMEOUT, source.connector.query(question, asked)).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::Timeout {
                        operation: format!("a query to data source `{}`", source.summary.name),
                        after: QUERY_TIMEOUT,
                    }),
                };
            let records = match result {
                Ok(records) => records,
                Err(err) => {
                    self.audit(principal, &source.summary, false, json!({"error": err.kind().code()})).await;
                    return Err(err);
                }
            };
            let total = records.len();
            let mut readable: Vec<SourceRecord> = records
                .into_iter()
                .filter(|r| match (&email, shared) {
                    (Some(email), false) => may_read(&r.allowed_principals, email),
                    _ => r.allowed_principals.iter().any(|p| p == EVERYONE),
                })
                .collect();
            let withheld = total - readable.len();
            readable.truncate(limit);
            let shown: Vec<&str> = readable.iter().map(|r| r.external_id.as_str()).collect();
            let detail = json!({"records": shown, "withheld": withheld, "shared": shared });
            self.audit(principal, &source.summary, true, detail).await;
            hits.extend(readable.into_iter().map(|record| SourceHit {
                source: source.summary.id,
                source_name: source.summary.name.clone(),
                record,
            }));
        }
        Ok(hits)
    }

    async fn audit(
        &self,
        principal: &Principal,
        source: &DataSourceSummary,
        success: bool,
        detail: serde_json::Value,
    ) {
        let mut detail = detail;
        detail["source"] = json!(source.name);
        let event = NewAuditEvent {
            actor: Some(principal.user),
            action: AuditAction::DataSourceRead,
            target: format!("data_source:{}", source.id),
            workspace: None,
            success,
            client_addr: None,
            detail,
        };
        // An unaudited read must not happen silently, but neither may a logging outage
        // take chats down: the failure goes to the error log, where operators alert on it.
        if let Err(err) = self.stores.audit.append(event).await {
            tracing::error!(error = %err, source = %source.name, "writing a data-source read to the audit log failed");
        }
    }
}

/// Whether a person with `email` is on `allowed` (emails compared without case, or `*`).
fn may_read(allowed: &[String], email: &str) -> bool {
    allowed.iter().any(|p| p == EVERYONE || p.eq_ignore_ascii_case(email))
}

impl std::fmt::Debug for DataSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSources").field("sources", &self.sources.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_lists_match_emails_without_case_or_everyone() {
        let list = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(may_read(&list(&["Ada@Example.com"]), "ada@example.com"));
        assert!(may_read(&list(&["bob@example.com", "*"]), "ada@example.com"));
        assert!(!may_read(&list(&["bob@example.com"]), "ada@example.com"));
        assert!(!may_read(&list(&[]), "ada@example.com"));
        assert!(!may_read(&list(&["ada@example.com.evil"]), "ada@example.com"));
    }
}

//! Data sources an operator connects (`[data_sources.<name>]` in `amp.toml`), and what
//! people see of them.
//!
//! A source is configured, not created by users: its connection holds credentials that
//! belong in the operator's secrets, not in the database. People name a source by its id
//! (on an agent or a chat turn); each record it returns carries its own access list, and
//! only records the asking person is on are ever shown to them.

use serde::{Deserialize, Serialize};

use crate::ids::DataSourceId;
use crate::secret::Secret;

/// The longest source name accepted, in characters.
const MAX_NAME_CHARS: usize = 64;

/// The kinds of connector AMP ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    /// A SQL database (PostgreSQL or SQLite) queried with the operator's SQL.
    Sql,
}

/// One configured data source.
///
/// For `sql`, `query` is run for each chat turn with `$1` = the question and `$2` = the
/// most records wanted, and must return the columns `id` (text), `title` (text), `text`
/// (text), `url` (text or null), `allowed` (text: comma-separated emails of the people
/// who may read the record, or `*` for everyone signed in) and `updated_at` (integer Unix
/// seconds). `sync_query`, when set, pages through changes for indexing: `$1` = the last
/// `updated_at` seen, `$2` = the page size, same columns, oldest change first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSourceSpec {
    /// Its stable id, the one agents and chat turns name (a UUID).
    pub id: DataSourceId,
    /// The connector.
    pub kind: ConnectorKind,
    /// What it holds, for people choosing it.
    #[serde(default)]
    pub description: String,
    /// Where to connect (`postgres://…`, `sqlite://…`); usually `${ENV}`, as it may hold a
    /// password.
    pub url: Secret,
    /// The live query (see above).
    pub query: String,
    /// The change-paging query (see above), if the source can be synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_query: Option<String>,
}

/// A data source as people see it: no connection details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSourceSummary {
    /// Its id.
    pub id: DataSourceId,
    /// Its name (the configuration key).
    pub name: String,
    /// Its connector.
    pub kind: ConnectorKind,
    /// What it holds.
    pub description: String,
}

/// Checks configured sources: names 1 to 64 characters, ids unique, queries present.
/// Errors name the key, as `data_sources.<name>.<field>`.
pub fn validate<'a>(
    sources: impl IntoIterator<Item = (&'a String, &'a DataSourceSpec)>,
) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    for (name, spec) in sources {
        if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(format!("data_sources.{name}: a name needs 1 to {MAX_NAME_CHARS} characters"));
        }
        if !ids.insert(spec.id) {
            return Err(format!("data_sources.{name}.id: {} is used by another source", spec.id));
        }
        if spec.query.trim().is_empty() {
            return Err(format!("data_sources.{name}.query: must not be empty"));
        }
        if spec.sync_query.as_ref().is_some_and(|q| q.trim().is_empty()) {
            return Err(format!("data_sources.{name}.sync_query: must not be empty when set"));
        }
    }
    Ok(())
}

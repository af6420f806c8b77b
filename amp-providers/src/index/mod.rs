//! `VectorIndex` implementations.
//!
//! [`FlatVectorIndex`] searches exactly, in process, in memory or persisted to one file.
//! [`HnswVectorIndex`] (feature `hnsw`, the embedded default) adds an HNSW graph over the
//! same file for collections of a million passages, and stays exact under filters that
//! match fewer than 20,000 passages or fewer than √(24,000 × entries) (about 155,000 of a
//! million). [`PgVectorIndex`] (feature `postgres`) is pgvector in
//! PostgreSQL, shared by several server processes. Keyword search: [`TantivyKeywordIndex`]
//! (feature `tantivy`) and [`PgKeywordIndex`] (feature `postgres`).

pub mod flat;
#[cfg(feature = "tantivy")]
pub mod keyword;
#[cfg(feature = "postgres")]
pub mod pg_keyword;
#[cfg(feature = "postgres")]
pub mod pgvector;

pub use flat::FlatVectorIndex;
#[cfg(feature = "hnsw")]
pub use flat::hnsw::HnswVectorIndex;
#[cfg(feature = "tantivy")]
pub use keyword::TantivyKeywordIndex;
#[cfg(feature = "postgres")]
pub use pg_keyword::PgKeywordIndex;
#[cfg(feature = "postgres")]
pub use pgvector::PgVectorIndex;

use std::sync::Arc;

use amp_core::config::{AmpConfig, KeywordIndexKind, VectorIndexKind};
use amp_core::{Error, KeywordIndex, Result, VectorIndex};

/// The `postgres://` URL of `config`'s database, if it is PostgreSQL.
fn postgres_url(config: &AmpConfig) -> Option<&str> {
    config
        .database
        .url
        .as_ref()
        .map(|u| u.expose())
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// The keyword index a server with `config` uses (see [`KeywordIndexKind`]): full-text
/// search in the database's PostgreSQL (whose schema the stores have migrated), or a
/// [`TantivyKeywordIndex`] in `keywords/` under the data dir.
pub async fn open_configured_keywords(config: &AmpConfig) -> Result<Arc<dyn KeywordIndex>> {
    match (config.storage.keyword_index, postgres_url(config)) {
        #[cfg(feature = "postgres")]
        (KeywordIndexKind::Auto | KeywordIndexKind::Postgres, Some(url)) => {
            let options = crate::sql::PoolOptions::from(&config.database);
            let what = "cannot connect to PostgreSQL for keyword search";
            let pool = crate::sql::connect_postgres(url, &options, what).await?;
            Ok(Arc::new(PgKeywordIndex::new(pool)))
        }
        (KeywordIndexKind::Postgres, _) => Err(Error::invalid_input(
            "config: storage.keyword_index: `postgres` needs a postgres:// database.url (and the postgres feature)",
        )),
        #[cfg(feature = "tantivy")]
        _ => Ok(Arc::new(TantivyKeywordIndex::open(&config.data_dir.join("keywords"))?)),
        #[cfg(not(feature = "tantivy"))]
        _ => Err(Error::invalid_input(
            "config: storage.keyword_index: this build has no embedded keyword index (feature `tantivy`); \
             use `postgres` with a PostgreSQL database",
        )),
    }
}

/// The vector index a server with `config` uses for `dimension`-sized vectors (see
/// [`VectorIndexKind`]): pgvector in the database's PostgreSQL, or the file `vectors.flat`
/// under the data dir, searched through an HNSW graph (`vectors.flat.hnsw`) or exactly.
pub async fn open_configured(config: &AmpConfig, dimension: usize) -> Result<Arc<dyn VectorIndex>> {
    match (config.storage.vector_index, postgres_url(config)) {
        #[cfg(feature = "postgres")]
        (VectorIndexKind::Auto | VectorIndexKind::Pgvector, Some(url)) => {
            let options = crate::sql::PoolOptions::from(&config.database);
            let what = "cannot connect to PostgreSQL for the vector index";
            let pool = crate::sql::connect_postgres(url, &options, what).await?;
            Ok(Arc::new(PgVectorIndex::open(pool, dimension).await?))
        }
        (VectorIndexKind::Pgvector, _) => Err(Error::invalid_input(
            "config: storage.vector_index: `pgvector` needs a postgres:// database.url (and the postgres feature)",
        )),
        (kind, _) => {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                Error::internal(format!("could not create the data dir {}", config.data_dir.display()), e)
            })?;
            let path = config.data_dir.join("vectors.flat");
            // Opening replays the log and loads the saved graph (under a second at 100,000
            // passages); a graph never saved is built first, on every core (minutes at a million).
            let opened = tokio::task::spawn_blocking(move || -> Result<Arc<dyn VectorIndex>> {
                match kind {
                    #[cfg(feature = "hnsw")]
                    VectorIndexKind::Auto | VectorIndexKind::Hnsw => {
                        Ok(Arc::new(HnswVectorIndex::open(path, dimension)?))
                    }
                    #[cfg(not(feature = "hnsw"))]
                    VectorIndexKind::Hnsw => Err(Error::invalid_input(
                        "config: storage.vector_index: `hnsw` needs the hnsw feature",
                    )),
                    _ => Ok(Arc::new(FlatVectorIndex::open(path, dimension)?)),
                }
            });
            opened.await.map_err(|e| Error::internal("opening the vector index failed", e))?
        }
    }
}

/// A score ordered totally (`f32::total_cmp`), for the heaps that keep a search's best.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ordered(pub(crate) f32);

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// `vector` scaled to unit length; refused if it has the wrong dimension, a non-finite
/// component or no length at all.
pub(crate) fn normalized(vector: &[f32], dimension: usize, what: &str) -> Result<Vec<f32>> {
    if vector.len() != dimension {
        return Err(Error::invalid_input(format!(
            "{what} has {} dimensions; this index holds vectors of {dimension}",
            vector.len()
        )));
    }
    let norm = vector.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if !norm.is_finite() {
        return Err(Error::invalid_input(format!("{what} has a component that is not a finite number")));
    }
    if norm == 0.0 {
        return Err(Error::invalid_input(format!("{what} is all zeros, so it has no direction to compare")));
    }
    Ok(vector.iter().map(|x| (f64::from(*x) / norm) as f32).collect())
}

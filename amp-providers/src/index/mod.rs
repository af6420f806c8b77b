//! `VectorIndex` implementations.
//!
//! [`FlatVectorIndex`] searches exactly, in process, in memory or persisted to one file:
//! fine up to a few hundred thousand passages. [`PgVectorIndex`] (feature `postgres`) is
//! the scale-out beyond that: pgvector in PostgreSQL, shared by several server processes.

pub mod flat;
#[cfg(feature = "tantivy")]
pub mod keyword;
#[cfg(feature = "postgres")]
pub mod pgvector;

pub use flat::FlatVectorIndex;
#[cfg(feature = "tantivy")]
pub use keyword::TantivyKeywordIndex;
#[cfg(feature = "postgres")]
pub use pgvector::PgVectorIndex;

use std::sync::Arc;

use amp_core::config::{AmpConfig, VectorIndexKind};
use amp_core::{Error, Result, VectorIndex};

/// The vector index a server with `config` uses for `dimension`-sized vectors (see
/// [`VectorIndexKind`]): pgvector in the database's PostgreSQL, or a [`FlatVectorIndex`]
/// file, `vectors.flat`, under the data dir.
pub async fn open_configured(config: &AmpConfig, dimension: usize) -> Result<Arc<dyn VectorIndex>> {
    let postgres = config
        .database
        .url
        .as_ref()
        .map(|u| u.expose())
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    match (config.storage.vector_index, postgres) {
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
        _ => {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                Error::internal(format!("could not create the data dir {}", config.data_dir.display()), e)
            })?;
            Ok(Arc::new(FlatVectorIndex::open(config.data_dir.join("vectors.flat"), dimension)?))
        }
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

//! [`amp_core::Connector`] implementations: enterprise data sources.

pub mod sql;

pub use sql::SqlConnector;

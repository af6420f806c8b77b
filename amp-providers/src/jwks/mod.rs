//! Sources of an OpenID Connect provider's signing keys ([`amp_core::JwksSource`]).

mod http;

pub use http::HttpJwksSource;

//! Answers for requests that match no route, in the same JSON shape as every other error.

use axum::http::{Method, Uri};

use crate::error::ApiError;

/// No route has this path.
pub(super) async fn not_found(uri: Uri) -> ApiError {
    amp_core::Error::not_found(format!("path {}", uri.path())).into()
}

/// A route has this path, but not this method; axum adds the `Allow` header itself.
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(&method, uri.path())
}

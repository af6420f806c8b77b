//! The route table and the layers every request passes through.

mod admin;
mod agents;
mod auth;
mod chat;
mod context;
mod conversations;
mod data_sources;
mod fallback;
mod files;
mod health;
mod models;
mod session;
mod storage;
mod v1;
mod workspaces;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{delete, get, post, put};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::state::AppState;

/// The whole HTTP API as an axum [`Router`], ready for [`crate::serve`] or for tests
/// that call it in-process.
pub fn router(state: AppState) -> Router {
    // A limit beyond the address space cannot be reached anyway.
    let body_limit = usize::try_from(state.config().server.max_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/sso", post(auth::sso))
        .route("/auth/sso/link", post(auth::sso_link))
        .route("/auth/saml/metadata", get(auth::saml_metadata))
        .route("/auth/saml/login", get(auth::saml_login))
        .route("/auth/saml/acs", post(auth::saml_acs))
        .route("/auth/verify-email", get(auth::verify_email_link).post(auth::verify_email))
        .route("/auth/verify-email/send", post(auth::send_verification))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/verify", get(auth::verify))
        .route("/auth/logout", delete(auth::logout))
        .route("/auth/api-keys", post(auth::create_api_key).get(auth::list_api_keys))
        .route("/auth/api-keys/{id}", delete(auth::revoke_api_key))
        .route("/session/current", get(session::current))
        .route("/session/update", put(session::update))
        .route("/session/create", post(session::create))
        .route("/session/sync", get(session::follow).post(session::push))
        .route("/session/quotas", get(session::quotas))
        .route("/session/invitations", get(workspaces::my_invitations))
        .route("/session/invitations/{workspace}/accept", post(workspaces::accept_invitation))
        .route("/session/invitations/{workspace}/decline", post(workspaces::decline_invitation))
        .route("/admin/users", get(admin::list_users).post(admin::create_user))
        .route("/admin/users/{id}", get(admin::get_user))
        .route("/admin/users/{id}/approve", post(admin::approve))
        .route("/admin/users/{id}/disable", post(admin::disable))
        .route("/admin/users/{id}/enable", post(admin::enable))
        .route("/admin/users/{id}/reset-sessions", post(admin::reset_sessions))
        .route("/admin/users/{id}/admin", put(admin::set_admin))
        .route("/admin/audit", get(admin::audit))
        .route("/agents/session/sync", post(session::push))
        .route("/workspaces", post(workspaces::create).get(workspaces::list))
        .route("/workspaces/{id}", get(workspaces::get).put(workspaces::update).delete(workspaces::delete))
        .route("/workspaces/{id}/members", get(workspaces::members).post(workspaces::set_member))
        .route("/workspaces/{id}/members/{user}", delete(workspaces::remove_member))
        .route("/workspaces/{id}/invitations", get(workspaces::invitations))
        .route("/workspaces/{id}/invitations/{email}", delete(workspaces::withdraw_invitation))
        .route("/workspaces/{id}/activity", get(workspaces::activity))
        .route("/conversations", post(conversations::create).get(conversations::list))
        .route("/conversations/{id}", get(conversations::get).delete(conversations::delete))
        .route("/conversations/{id}/share", post(conversations::share))
        .route("/agents/session/status", get(session::status))
        .route("/agents/session/devices", get(session::devices))
        .route("/agents/session/devices/{id}", delete(session::revoke_device))
        .route("/agents/registry", get(agents::list).post(agents::create))
        .route("/agents/registry/{id}", get(agents::get).put(agents::update).delete(agents::delete))
        // Uploads stream to the Storage agent, which enforces `storage.max_file_bytes`
        // itself as the bytes arrive, so no body limit applies to them here.
        .route("/files", get(files::list).post(files::upload).layer(DefaultBodyLimit::disable()))
        .route("/files/validate", post(files::validate).layer(DefaultBodyLimit::disable()))
        .route("/files/upload-urls", post(files::upload_urls))
        .route("/files/{id}", delete(files::delete))
        .route("/files/{id}/status", get(files::status))
        .route("/files/{id}/content", get(files::content))
        .route("/files/{id}/complete", post(files::complete))
        .route("/files/{id}/share", post(files::share))
        .route(
            "/blobs/{*key}",
            put(storage::put_blob).get(storage::get_blob).layer(DefaultBodyLimit::disable()),
        )
        .route("/agents/storage/status", get(storage::status))
        .route("/agents/storage/jobs", get(storage::jobs))
        .route("/agents/storage/process", post(storage::process))
        .route("/agents/storage/search", post(storage::search))
        .route("/agents/context/search", post(context::search))
        .route("/datasources", get(data_sources::list))
        .route("/chat/send", post(chat::send))
        .route("/chat/stream", post(chat::stream))
        .route("/models/available", get(models::available))
        .route("/models/select", post(models::select))
        .route("/models/{id}", put(models::upsert).delete(models::remove))
        .route("/models/{id}/status", get(models::status))
        .route("/agents/router/status", get(models::router_status))
        .route("/agents/router/metrics", get(models::router_metrics))
        .route("/agents/router/balance", post(models::balance))
        .route("/v1/chat/completions", post(v1::chat_completions))
        .route("/v1/models", get(v1::models))
        .route("/v1/models/{id}", get(v1::model))
        .route("/metrics", get(models::prometheus))
        // Only applies to routes registered above it, so it stays after the last route.
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .fallback(fallback::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// Method and path only: headers carry credentials and query strings may carry tokens,
/// and neither belongs in logs.
fn request_span(request: &Request<Body>) -> tracing::Span {
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
}

//! `/admin/*`: accounts and the audit log, for administrators. The Session agent checks
//! the caller is one ([`amp_agents::SessionAgent::admin`]) and audits every action.

use amp_agents::session::NewAccount;
use amp_core::audit::{AuditAction, AuditEvent, AuditQuery};
use amp_core::store::UserQuery;
use amp_core::{AccountStatus, User, UserId, WorkspaceId};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Body, Caller, Query};
use crate::state::AppState;

fn default_limit() -> u32 {
    100
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsersPage {
    #[serde(default)]
    status: Option<AccountStatus>,
    #[serde(default)]
    after: Option<UserId>,
    #[serde(default = "default_limit")]
    limit: u32,
}

/// `GET /admin/users?status=&after=&limit=`: accounts, oldest first; page on with the
/// last id as `after`.
pub(crate) async fn list_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(page): Query<UsersPage>,
) -> Result<Json<Vec<User>>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    let query = UserQuery { status: page.status, after: page.after, limit: page.limit };
    Ok(Json(state.session().list_accounts(&admin, query).await?))
}

/// `POST /admin/users`: an active account with a verified email.
pub(crate) async fn create_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(new): Body<NewAccount>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let admin = state.session().admin(&caller).await?;
    Ok((StatusCode::CREATED, Json(state.session().create_account(&admin, new).await?)))
}

fn user_id(raw: &str) -> amp_core::Result<UserId> {
    raw.parse()
}

/// `GET /admin/users/{id}`.
pub(crate) async fn get_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    Ok(Json(state.session().account(&admin, user_id(&id)?).await?))
}

/// `POST /admin/users/{id}/approve`: a pending account may sign in.
pub(crate) async fn approve(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    Ok(Json(state.session().approve_account(&admin, user_id(&id)?).await?))
}

/// `POST /admin/users/{id}/disable`: ends its sessions and stops its keys at once.
pub(crate) async fn disable(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    Ok(Json(state.session().disable_account(&admin, user_id(&id)?).await?))
}

/// `POST /admin/users/{id}/enable`.
pub(crate) async fn enable(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    Ok(Json(state.session().enable_account(&admin, user_id(&id)?).await?))
}

/// `POST /admin/users/{id}/reset-sessions`: every device signs in again.
pub(crate) async fn reset_sessions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    let ended = state.session().reset_sessions(&admin, user_id(&id)?).await?;
    Ok(Json(json!({ "sessions_ended": ended })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetAdmin {
    admin: bool,
}

/// `PUT /admin/users/{id}/admin` `{admin}`: grants or withdraws administrator rights.
pub(crate) async fn set_admin(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(body): Body<SetAdmin>,
) -> Result<Json<User>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    Ok(Json(state.session().set_account_admin(&admin, user_id(&id)?, body.admin).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditPage {
    #[serde(default)]
    actor: Option<UserId>,
    #[serde(default)]
    action: Option<AuditAction>,
    #[serde(default)]
    workspace: Option<WorkspaceId>,
    #[serde(default)]
    since: Option<DateTime<Utc>>,
    #[serde(default)]
    until: Option<DateTime<Utc>>,
    #[serde(default)]
    before: Option<u64>,
    #[serde(default = "default_limit")]
    limit: u32,
}

/// `GET /admin/audit?actor=&action=&workspace=&since=&until=&before=&limit=`: the audit
/// log, newest first; page back with the last record's `seq` as `before`.
pub(crate) async fn audit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(page): Query<AuditPage>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    let admin = state.session().admin(&caller).await?;
    let query = AuditQuery {
        actor: page.actor,
        workspace: page.workspace,
        action: page.action,
        before_seq: page.before,
        since: page.since,
        until: page.until,
        limit: page.limit,
    };
    Ok(Json(state.session().audit_log(&admin, query).await?))
}

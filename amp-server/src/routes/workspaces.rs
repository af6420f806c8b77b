//! `/workspaces/*`: shared workspaces, their members and activity. Roles are checked by the
//! Session agent; handlers only parse and map.

use amp_agents::session::workspaces::{MemberChange, MyWorkspace, PendingInvitation};
use amp_core::audit::AuditEvent;
use amp_core::{Invitation, Membership, UserId, Workspace, WorkspaceId, WorkspaceRole};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Body, Caller, Query};
use crate::state::AppState;

fn workspace_id(raw: &str) -> amp_core::Result<WorkspaceId> {
    raw.parse()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWorkspace {
    name: String,
    #[serde(default)]
    context: Option<String>,
}

/// `POST /workspaces`: the caller becomes its owner.
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(w): Body<NewWorkspace>,
) -> Result<(StatusCode, Json<Workspace>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.session().create_workspace(&caller, &w.name, w.context).await?)))
}

/// `GET /workspaces`: the caller's workspaces with their role.
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<MyWorkspace>>, ApiError> {
    Ok(Json(state.session().my_workspaces(&caller).await?))
}

/// `GET /workspaces/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<MyWorkspace>, ApiError> {
    Ok(Json(state.session().workspace(&caller, workspace_id(&id)?).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rename {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    context: Option<String>,
}

/// `PUT /workspaces/{id}`: rename or change the context (owners).
pub(crate) async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(r): Body<Rename>,
) -> Result<Json<Workspace>, ApiError> {
    Ok(Json(state.session().update_workspace(&caller, workspace_id(&id)?, r.name, r.context).await?))
}

/// `DELETE /workspaces/{id}` (owners).
pub(crate) async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.storage().delete_workspace(&caller, workspace_id(&id)?, state.conversations()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /workspaces/{id}/members`.
pub(crate) async fn members(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<Membership>>, ApiError> {
    Ok(Json(state.session().members(&caller, workspace_id(&id)?).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetMember {
    email: String,
    role: WorkspaceRole,
}

/// `POST /workspaces/{id}/members` `{email, role}` (owners): an existing member's role
/// changes (`200 {result: "updated", membership}`); anyone else is invited and joins once
/// they accept (`202 {result: "invited", invitation}`).
pub(crate) async fn set_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(m): Body<SetMember>,
) -> Result<(StatusCode, Json<MemberChange>), ApiError> {
    let change = state.session().set_member(&caller, workspace_id(&id)?, &m.email, m.role).await?;
    let status = match change {
        MemberChange::Invited { .. } => StatusCode::ACCEPTED,
        MemberChange::Updated { .. } => StatusCode::OK,
    };
    Ok((status, Json(change)))
}

/// `GET /workspaces/{id}/invitations` (owners): the open invitations.
pub(crate) async fn invitations(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<Invitation>>, ApiError> {
    Ok(Json(state.session().invitations(&caller, workspace_id(&id)?).await?))
}

/// `DELETE /workspaces/{id}/invitations/{email}` (owners): withdraws one.
pub(crate) async fn withdraw_invitation(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, email)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.session().withdraw_invitation(&caller, workspace_id(&id)?, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /session/invitations`: the invitations waiting for the caller (once their email
/// is verified).
pub(crate) async fn my_invitations(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<PendingInvitation>>, ApiError> {
    Ok(Json(state.session().my_invitations(&caller).await?))
}

/// `POST /session/invitations/{workspace}/accept`: joins with the invitation's role.
pub(crate) async fn accept_invitation(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(workspace): Path<String>,
) -> Result<Json<Membership>, ApiError> {
    Ok(Json(state.session().accept_invitation(&caller, workspace_id(&workspace)?).await?))
}

/// `POST /session/invitations/{workspace}/decline`.
pub(crate) async fn decline_invitation(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(workspace): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.session().decline_invitation(&caller, workspace_id(&workspace)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /workspaces/{id}/members/{user}`: remove a member (owners), or leave.
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user: UserId = user.parse()?;
    state.session().remove_member(&caller, workspace_id(&id)?, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct Page {
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

/// `GET /workspaces/{id}/activity?limit=N`: the activity log, newest first.
pub(crate) async fn activity(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    Ok(Json(state.session().workspace_activity_log(&caller, workspace_id(&id)?, page.limit).await?))
}

//! Rows as plain tuples, and their conversion to domain types.
//!
//! Queries decode into tuples (sqlx implements `FromRow` for them on every database), so
//! the conversions below are shared by SQLite and PostgreSQL without naming either.

use amp_core::audit::{AuditAction, AuditEvent, NewAuditEvent};
use amp_core::conversation::{Conversation, Message};
use amp_core::store::{ApiKeyRecord, RefreshToken};
use amp_core::{
    AgentConfig, AgentId, AgentVisibility, ApiKeyId, BlobKey, ByteRange, Chunk, ChunkId, Citation,
    ConversationId, DataSourceId, DeviceId, DeviceSession, Error, FileId, FileMeta, FileStatus, JobId,
    Membership, MessageId, ModelId, Preferences, Result, Role, SessionId, TokenFamilyId, Usage, User, UserId,
    Workspace, WorkspaceId, WorkspaceRole,
};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

/// A timestamp as stored: UTC milliseconds since the epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored timestamp back as a time.
pub(crate) fn time(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| Error::bug(format!("stored timestamp {ms} is out of range")))
}

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

fn u32_of(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::bug(format!("stored {what} {v} does not fit u32")))
}

fn u64_of(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::bug(format!("stored {what} {v} is negative")))
}

/// Enum values are stored as their serde names, so the columns read well in SQL.
pub(crate) fn enum_text<T: serde::Serialize>(value: &T) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(Error::bug("enum does not serialize to a string")),
    }
}

pub(crate) fn enum_from_text<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| Error::internal(format!("unknown stored value `{text}`"), e))
}

pub(crate) type UserRow = (Uuid, String, String, Json<Preferences>, i64, bool, String, bool);

pub(crate) fn user(row: UserRow) -> Result<User> {
    let (id, email, display_name, Json(preferences), created_at, email_verified, status, admin) = row;
    Ok(User {
        id: UserId::from_uuid(id),
        email,
        display_name,
        preferences,
        created_at: time(created_at)?,
        email_verified,
        status: status.parse()?,
        admin,
    })
}

pub(crate) type ApiKeyRow =
    (Uuid, Uuid, String, String, String, i64, Option<i64>, String, Option<String>, Option<i64>);

pub(crate) fn api_key(row: ApiKeyRow) -> Result<ApiKeyRecord> {
    let (id, user, name, prefix, hash, created_at, revoked_at, scopes, minted_by, budget) = row;
    Ok(ApiKeyRecord {
        id: ApiKeyId::from_uuid(id),
        user: UserId::from_uuid(user),
        name,
        prefix,
        hash,
        created_at: time(created_at)?,
        revoked_at: opt_time(revoked_at)?,
        scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::parse).collect::<Result<_>>()?,
        minted_by: minted_by.as_deref().map(str::parse).transpose()?,
        daily_token_budget: budget
            .map(|b| u64::try_from(b).map_err(|_| Error::bug(format!("API key {id} has a negative budget"))))
            .transpose()?,
    })
}

pub(crate) type SessionRow = (Uuid, Uuid, Uuid, String, i64, i64, i64, Option<i64>, Option<String>);

pub(crate) fn session(row: SessionRow) -> Result<DeviceSession> {
    let (id, user, device, device_name, created_at, last_seen_at, expires_at, revoked_at, minted_by) = row;
    Ok(DeviceSession {
        id: SessionId::from_uuid(id),
        user: UserId::from_uuid(user),
        device: DeviceId::from_uuid(device),
        device_name,
        created_at: time(created_at)?,
        last_seen_at: time(last_seen_at)?,
        expires_at: time(expires_at)?,
        revoked_at: opt_time(revoked_at)?,
        minted_by: minted_by.as_deref().map(str::parse).transpose()?,
    })
}

pub(crate) type RefreshRow = (String, Uuid, Uuid, Uuid, i64, i64, Option<i64>, Option<i64>);

pub(crate) fn refresh_token(row: RefreshRow) -> Result<RefreshToken> {
    let (hash, family, session, user, issued_at, expires_at, used_at, revoked_at) = row;
    Ok(RefreshToken {
        hash,
        family: TokenFamilyId::from_uuid(family),
        session: SessionId::from_uuid(session),
        user: UserId::from_uuid(user),
        issued_at: time(issued_at)?,
        expires_at: time(expires_at)?,
        used_at: opt_time(used_at)?,
        revoked_at: opt_time(revoked_at)?,
    })
}

pub(crate) type ConversationRow = (Uuid, Uuid, Option<Uuid>, String, Option<Uuid>, Option<String>, i64, i64);

pub(crate) fn conversation(row: ConversationRow) -> Result<Conversation> {
    let (id, owner, workspace, title, agent, model, created_at, updated_at) = row;
    Ok(Conversation {
        id: ConversationId::from_uuid(id),
        owner: UserId::from_uuid(owner),
        workspace: workspace.map(WorkspaceId::from_uuid),
        title,
        agent: agent.map(AgentId::from_uuid),
        model: model.map(ModelId::new),
        created_at: time(created_at)?,
        updated_at: time(updated_at)?,
    })
}

pub(crate) type MessageRow =
    (Uuid, Uuid, String, Option<Uuid>, String, Option<String>, Json<Vec<Citation>>, Option<Json<Usage>>, i64);

pub(crate) fn message(row: MessageRow) -> Result<Message> {
    let (id, conversation, role, author, content, model, Json(citations), usage, created_at) = row;
    Ok(Message {
        id: MessageId::from_uuid(id),
        conversation: ConversationId::from_uuid(conversation),
        role: enum_from_text::<Role>(&role)?,
        author: author.map(UserId::from_uuid),
        content,
        model: model.map(ModelId::new),
        citations,
        usage: usage.map(|Json(u)| u),
        created_at: time(created_at)?,
    })
}

pub(crate) type FileRow = (
    Uuid,
    Uuid,
    Option<Uuid>,
    String,
    String,
    i64,
    Option<String>,
    Json<FileStatus>,
    i64,
    i64,
    Option<String>,
    Option<Uuid>,
);

/// The columns of [`FileRow`], in order.
pub(crate) const FILE_COLUMNS: &str = "id, owner_id, workspace_id, name, media_type, size_bytes, sha256, status, created_at, updated_at, blob_key, job_id";

pub(crate) fn file(row: FileRow) -> Result<FileMeta> {
    let (
        id,
        owner,
        workspace,
        name,
        media_type,
        size_bytes,
        sha256,
        Json(status),
        created_at,
        updated_at,
        blob_key,
        job,
    ) = row;
    Ok(FileMeta {
        id: FileId::from_uuid(id),
        owner: UserId::from_uuid(owner),
        workspace: workspace.map(WorkspaceId::from_uuid),
        name,
        media_type,
        size_bytes: u64_of(size_bytes, "file size")?,
        sha256,
        status,
        blob_key: blob_key.map(BlobKey::new).transpose()?,
        job: job.map(JobId::from_uuid),
        created_at: time(created_at)?,
        updated_at: time(updated_at)?,
    })
}

pub(crate) type ChunkRow = (Uuid, Uuid, i64, String, Option<i64>, i64, i64, i64);

pub(crate) fn chunk(row: ChunkRow) -> Result<Chunk> {
    let (id, file, ordinal, text, page, start, end, token_count) = row;
    Ok(Chunk {
        id: ChunkId::from_uuid(id),
        file: FileId::from_uuid(file),
        ordinal: u32_of(ordinal, "chunk ordinal")?,
        text,
        page: page.map(|p| u32_of(p, "page")).transpose()?,
        byte_range: ByteRange { start: u64_of(start, "byte offset")?, end: u64_of(end, "byte offset")? },
        token_count: u32_of(token_count, "token count")?,
    })
}

pub(crate) type WorkspaceRow = (Uuid, String, Option<String>, Uuid, i64);

pub(crate) fn workspace(row: WorkspaceRow) -> Result<Workspace> {
    let (id, name, context, created_by, created_at) = row;
    Ok(Workspace {
        id: WorkspaceId::from_uuid(id),
        name,
        context,
        created_by: UserId::from_uuid(created_by),
        created_at: time(created_at)?,
    })
}

pub(crate) type MembershipRow = (Uuid, Uuid, String, i64);

pub(crate) fn membership(row: MembershipRow) -> Result<Membership> {
    let (workspace, user, role, added_at) = row;
    Ok(Membership {
        workspace: WorkspaceId::from_uuid(workspace),
        user: UserId::from_uuid(user),
        role: enum_from_text::<WorkspaceRole>(&role)?,
        added_at: time(added_at)?,
    })
}

pub(crate) type InvitationRow = (Uuid, String, String, Uuid, i64, i64);

pub(crate) fn invitation(row: InvitationRow) -> Result<amp_core::Invitation> {
    let (workspace, email, role, invited_by, created_at, expires_at) = row;
    Ok(amp_core::Invitation {
        workspace: WorkspaceId::from_uuid(workspace),
        email,
        role: enum_from_text::<WorkspaceRole>(&role)?,
        invited_by: UserId::from_uuid(invited_by),
        created_at: time(created_at)?,
        expires_at: time(expires_at)?,
    })
}

pub(crate) type AgentRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    Option<String>,
    Json<Vec<ModelId>>,
    Option<f32>,
    Option<i64>,
    Json<Vec<FileId>>,
    Json<Vec<WorkspaceId>>,
    Json<Vec<DataSourceId>>,
    Option<Uuid>,
    i64,
    i64,
    Json<amp_core::AgentRetrieval>,
);

pub(crate) fn agent(row: AgentRow) -> Result<AgentConfig> {
    let (
        id,
        owner,
        name,
        description,
        instructions,
        model,
        Json(fallbacks),
        temperature,
        max_tokens,
        files,
        ws,
        ds,
        vis,
        c,
        u,
        Json(retrieval),
    ) = row;
    Ok(AgentConfig {
        id: AgentId::from_uuid(id),
        owner: UserId::from_uuid(owner),
        name,
        description,
        instructions,
        model: model.map(ModelId::new),
        fallbacks,
        temperature,
        max_tokens: max_tokens.map(|m| u32_of(m, "max_tokens")).transpose()?,
        files: files.0,
        workspaces: ws.0,
        data_sources: ds.0,
        visibility: match vis {
            Some(w) => AgentVisibility::Workspace(WorkspaceId::from_uuid(w)),
            None => AgentVisibility::Private,
        },
        retrieval,
        created_at: time(c)?,
        updated_at: time(u)?,
    })
}

pub(crate) type AuditRow =
    (i64, i64, Option<Uuid>, String, String, Option<Uuid>, bool, Option<String>, Json<serde_json::Value>);

pub(crate) fn audit(row: AuditRow) -> Result<AuditEvent> {
    let (seq, at, actor, action, target, workspace, success, client_addr, Json(detail)) = row;
    Ok(AuditEvent {
        seq: u64_of(seq, "audit seq")?,
        at: time(at)?,
        event: NewAuditEvent {
            actor: actor.map(UserId::from_uuid),
            action: enum_from_text::<AuditAction>(&action)?,
            target,
            workspace: workspace.map(WorkspaceId::from_uuid),
            success,
            client_addr,
            detail,
        },
    })
}

/// `$start, $start+1, …` for `n` values, to bind a list into `IN (…)` on any database.
///
/// The only text ever spliced into SQL is this generated placeholder list; every value is
/// bound, which is why callers may pass the assembled query to `sqlx::AssertSqlSafe`.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

//! The conversations agent: a person's own conversations and those of their workspaces.
//!
//! Who may see what, decided here and not in handlers: a personal conversation belongs to
//! its owner alone, until they share it into a workspace where they are an editor; a
//! workspace conversation is readable by every member and deletable by its owner or a
//! workspace owner. Anyone else gets `NotFound`, the same answer as for an id that never
//! existed, so not even a conversation's existence leaks.

use std::sync::Arc;

use amp_core::audit::{AuditAction, NewAuditEvent};
use amp_core::conversation::{Conversation, Message};
use amp_core::{
    AgentId, Cache, ConversationId, Error, MessageId, Result, Stores, WorkspaceId, WorkspaceRole,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::principal::Principal;
use crate::session::SessionAgent;

/// The title of a conversation created without one.
pub const DEFAULT_TITLE: &str = "New conversation";

/// The longest title accepted, in characters.
const MAX_TITLE_CHARS: usize = 200;

/// The largest page a listing returns.
pub const MAX_PAGE: u32 = 100;

/// The prefix of every cache key holding a response cached for conversation `id`.
///
/// Convention: the Response agent caches under `conv:{id}:{anything}`, so deleting a
/// conversation drops all of them with one `delete_prefix`. The trailing colon keeps one
/// conversation's prefix from matching another id that merely starts with the same text.
///
/// ```
/// let id = amp_core::ConversationId::new();
/// let key = format!("{}{}", amp_agents::conversations::response_cache_prefix(id), "answer-hash");
/// assert!(key.starts_with(&format!("conv:{id}:")));
/// ```
pub fn response_cache_prefix(id: ConversationId) -> String {
    format!("conv:{id}:")
}

/// A page of conversations, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationList {
    /// The conversations on this page.
    pub conversations: Vec<Conversation>,
    /// Pass as `before` for the next page; `None` on the last one.
    pub next: Option<ConversationId>,
}

/// A conversation with a page of its messages, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationPage {
    /// The conversation.
    pub conversation: Conversation,
    /// Messages after the requested cursor, with their citations and usage.
    pub messages: Vec<Message>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next: Option<MessageId>,
}

/// The conversations agent. Cheap to clone.
#[derive(Clone)]
pub struct Conversations {
    stores: Stores,
    cache: Arc<dyn Cache>,
    /// Decides workspace roles and tells the caller's other devices about changes.
    session: SessionAgent,
}

fn valid_title(title: Option<&str>) -> Result<String> {
    let Some(title) = title else { return Ok(DEFAULT_TITLE.to_owned()) };
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(Error::invalid_input(format!(
            "a conversation title needs 1 to {MAX_TITLE_CHARS} characters"
        )));
    }
    Ok(title.to_owned())
}

/// Clamps a requested page size to `1..=MAX_PAGE`.
fn page_size(limit: u32) -> u32 {
    limit.clamp(1, MAX_PAGE)
}

/// Whether `e` only says the caller has no business with a workspace, which for a
/// conversation in it must look exactly like the conversation not existing.
fn not_found(id: ConversationId) -> Error {
    Error::not_found(format!("conversation {id}"))
}

/// Cuts a page fetched with one extra row to `limit`, returning the cursor of the next
/// page when the extra row showed there is one.
fn split_page<T, C>(mut rows: Vec<T>, limit: u32, cursor: impl Fn(&T) -> C) -> (Vec<T>, Option<C>) {
    let limit = limit as usize;
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(cursor);
        (rows, next)
    } else {
        (rows, None)
    }
}

impl Conversations {
    /// An agent over these stores and response cache, using `session` for workspace roles
    /// and cross-device sync.
    pub fn new(stores: Stores, cache: Arc<dyn Cache>, session: SessionAgent) -> Self {
        Conversations { stores, cache, session }
    }

    /// Starts a conversation, personal or (for editors and owners) in `workspace`.
    /// `title` defaults to [`DEFAULT_TITLE`].
    pub async fn create(
        &self,
        principal: &Principal,
        title: Option<&str>,
        workspace: Option<WorkspaceId>,
        agent: Option<AgentId>,
    ) -> Result<Conversation> {
        let conversation = self.draft(principal, title, workspace, agent).await?;
        self.store_new(principal, &conversation).await?;
        Ok(conversation)
    }

    /// A conversation [`Conversations::create`] would make, checked but not stored: a chat
    /// turn stores it only once the model has started answering, so a failed first turn
    /// leaves no empty conversation behind.
    pub(crate) async fn draft(
        &self,
        principal: &Principal,
        title: Option<&str>,
        workspace: Option<WorkspaceId>,
        agent: Option<AgentId>,
    ) -> Result<Conversation> {
        let title = valid_title(title)?;
        if let Some(ws) = workspace {
            self.session.require_role(principal, ws, WorkspaceRole::Editor).await?;
        }
        let now = crate::clock::now();
        Ok(Conversation {
            id: ConversationId::new(),
            owner: principal.user,
            workspace,
            title,
            agent,
            model: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// Stores a [`Conversations::draft`] and tells the caller's other devices.
    pub(crate) async fn store_new(&self, principal: &Principal, conversation: &Conversation) -> Result<()> {
        self.stores.conversations.create_conversation(conversation.clone()).await?;
        self.announce(principal, "conversation_created", json!({ "conversation": conversation })).await;
        Ok(())
    }

    /// A conversation the caller may chat in: their own personal one, or one in a
    /// workspace where they are an editor or owner. Viewers of its workspace get
    /// `Forbidden` (they can see it anyway); anyone else `NotFound`.
    pub(crate) async fn writable(&self, principal: &Principal, id: ConversationId) -> Result<Conversation> {
        let conversation = self.readable(principal, id).await?;
        if let Some(ws) = conversation.workspace {
            self.session.require_role(principal, ws, WorkspaceRole::Editor).await?;
        }
        Ok(conversation)
    }

    /// The newest `limit` messages of a conversation, oldest first. The caller has already
    /// been checked by [`Conversations::writable`].
    pub(crate) async fn recent(&self, id: ConversationId, limit: u32) -> Result<Vec<Message>> {
        self.stores.conversations.recent_messages(id, limit).await
    }

    /// Appends `messages` to `conversation`, remembers the model that answered, and tells
    /// the caller's other devices.
    pub(crate) async fn record(
        &self,
        principal: &Principal,
        conversation: &Conversation,
        messages: &[Message],
    ) -> Result<()> {
        for message in messages {
            self.stores.conversations.append_message(message.clone()).await?;
        }
        let model = messages.iter().rev().find_map(|m| m.model.clone());
        if model.is_some() && model != conversation.model {
            // Re-read: appending bumped `updated_at`, which must not be written back older.
            if let Some(mut current) = self.stores.conversations.get_conversation(conversation.id).await? {
                current.model = model;
                self.stores.conversations.update_conversation(&current).await?;
            }
        }
        self.announce(
            principal,
            "messages_added",
            json!({ "conversation": conversation.id, "messages": messages }),
        )
        .await;
        Ok(())
    }

    /// The caller's own conversations, or with `workspace` that workspace's (members),
    /// newest first, ids below `before`; `limit` is clamped to `1..=100`.
    pub async fn list(
        &self,
        principal: &Principal,
        workspace: Option<WorkspaceId>,
        before: Option<ConversationId>,
        limit: u32,
    ) -> Result<ConversationList> {
        let limit = page_size(limit);
        let rows = match workspace {
            Some(ws) => {
                self.session.require_role(principal, ws, WorkspaceRole::Viewer).await?;
                self.stores.conversations.list_workspace_conversations(ws, before, limit + 1).await?
            }
            None => self.stores.conversations.list_conversations(principal.user, before, limit + 1).await?,
        };
        let (conversations, next) = split_page(rows, limit, |c| c.id);
        Ok(ConversationList { conversations, next })
    }

    /// A conversation the caller may read, with its messages after `after`, oldest first;
    /// `limit` is clamped to `1..=100`.
    pub async fn get(
        &self,
        principal: &Principal,
        id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<ConversationPage> {
        let conversation = self.readable(principal, id).await?;
        let limit = page_size(limit);
        let rows = self.stores.conversations.list_messages(id, after, limit + 1).await?;
        let (messages, next) = split_page(rows, limit, |m| m.id);
        Ok(ConversationPage { conversation, messages, next })
    }

    /// Deletes a conversation, its messages and its cached responses (its owner, or an
    /// owner of its workspace).
    pub async fn delete(&self, principal: &Principal, id: ConversationId) -> Result<()> {
        let conversation = self.readable(principal, id).await?;
        if conversation.owner != principal.user {
            // Only workspace conversations get here: personal ones are readable by the
            // owner alone. The member can see it, so a refusal reveals nothing new.
            let ws = conversation.workspace.ok_or_else(|| not_found(id))?;
            self.session.require_role(principal, ws, WorkspaceRole::Owner).await?;
        }
        // Cache first: if the store delete then fails, the caller can retry and only
        // lost some cache hits; the other order could strand cached answers of a
        // conversation that no longer exists, with no id left to find them by.
        self.cache.delete_prefix(&response_cache_prefix(id)).await?;
        if !self.stores.conversations.delete_conversation(id).await? {
            // Someone else deleted it in between.
            return Err(not_found(id));
        }
        self.announce(principal, "conversation_deleted", json!({ "id": id })).await;
        let record = NewAuditEvent {
            actor: Some(principal.user),
            action: AuditAction::Deleted,
            target: format!("conversation:{id}"),
            workspace: conversation.workspace,
            success: true,
            client_addr: None,
            detail: json!({}),
        };
        // The delete already happened; a failed audit write must not undo or hide it.
        if let Err(err) = self.stores.audit.append(record).await {
            tracing::error!(error = %err, "writing the audit log failed");
        }
        Ok(())
    }

    /// Shares the caller's personal conversation into `workspace`, where every member
    /// (viewers included) can then read it. Only its owner may share it, and only into a
    /// workspace where they are an editor or owner; one already in a workspace is
    /// `Conflict`, since moving it would take it away from that workspace's members.
    ///
    /// A share never reveals what only its owner could read: a conversation whose answers
    /// cite a file outside that workspace (a private one, another workspace's, a deleted
    /// one) or any data-source record is refused with `Conflict` naming them, since the
    /// answers' text was written from those passages; share the files into the workspace
    /// first, or ask again inside it.
    pub async fn share(
        &self,
        principal: &Principal,
        id: ConversationId,
        workspace: WorkspaceId,
    ) -> Result<Conversation> {
        let conversation = self.readable(principal, id).await?;
        if conversation.owner != principal.user {
            // A member of its workspace can see it but not give it away; answer as for
            // any conversation they cannot share.
            return Err(not_found(id));
        }
        if conversation.workspace.is_some() {
            return Err(Error::conflict(format!("conversation {id} is already in a workspace")));
        }
        self.session.require_role(principal, workspace, WorkspaceRole::Editor).await?;
        self.ensure_citations_readable_in(id, workspace).await?;
        let now = crate::clock::now();
        if !self.stores.conversations.share_conversation(id, workspace, now).await? {
            // Shared or deleted by a concurrent request since it was read.
            return Err(Error::conflict(format!("conversation {id} is already in a workspace")));
        }
        let shared = Conversation { workspace: Some(workspace), updated_at: now, ..conversation };
        self.session
            .workspace_activity(
                principal.user,
                workspace,
                amp_core::audit::AuditAction::Shared,
                json!({"conversation": id, "title": shared.title}),
            )
            .await;
        self.announce(principal, "conversation_shared", json!({ "conversation": shared })).await;
        Ok(shared)
    }

    /// `Conflict` unless every passage the conversation's answers cite is readable by every
    /// member of `workspace`.
    async fn ensure_citations_readable_in(&self, id: ConversationId, workspace: WorkspaceId) -> Result<()> {
        let mut files = std::collections::BTreeSet::new();
        let mut records = 0usize;
        let mut after = None;
        loop {
            let page = self.stores.conversations.list_messages(id, after, 500).await?;
            for citation in page.iter().flat_map(|m| &m.citations) {
                match &citation.origin {
                    amp_core::PassageOrigin::File { file, .. } => {
                        files.insert(*file);
                    }
                    amp_core::PassageOrigin::Record { .. } => records += 1,
                }
            }
            match page.last() {
                Some(last) if page.len() == 500 => after = Some(last.id),
                _ => break,
            }
        }
        let mut unreadable = Vec::new();
        for file in files {
            let meta = self.stores.files.get_file(file).await?;
            if meta.is_none_or(|m| m.workspace != Some(workspace)) {
                unreadable.push(file.to_string());
            }
        }
        if unreadable.is_empty() && records == 0 {
            return Ok(());
        }
        let mut what = Vec::new();
        if !unreadable.is_empty() {
            what.push(format!("files not in the workspace ({})", unreadable.join(", ")));
        }
        if records > 0 {
            what.push(format!("{records} data-source record(s)"));
        }
        Err(Error::conflict(format!(
            "conversation {id} cites {} that the workspace's members may not read; share the files \
             into the workspace first, or ask again inside it",
            what.join(" and ")
        )))
    }

    /// The conversation if the caller may read it, else `NotFound`.
    async fn readable(&self, principal: &Principal, id: ConversationId) -> Result<Conversation> {
        let conversation =
            self.stores.conversations.get_conversation(id).await?.ok_or_else(|| not_found(id))?;
        let readable = match conversation.workspace {
            None => conversation.owner == principal.user,
            Some(ws) => self.session.is_member(principal, ws).await?,
        };
        // Answer as for any unknown id: nothing about the workspace or the owner leaks.
        if readable { Ok(conversation) } else { Err(not_found(id)) }
    }

    /// Tells the caller's other devices. The change is already stored, so a failure here
    /// must not fail the request (a retry would repeat it); devices catch up on reload.
    async fn announce(&self, principal: &Principal, kind: &str, data: serde_json::Value) {
        if let Err(e) = self.session.publish(principal, kind, data).await {
            tracing::warn!(error = %e, kind, "could not publish a sync event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_default_trim_and_are_bounded() {
        assert_eq!(valid_title(None).unwrap(), DEFAULT_TITLE);
        assert_eq!(valid_title(Some("  Plans ")).unwrap(), "Plans");
        assert!(valid_title(Some("   ")).is_err());
        assert!(valid_title(Some(&"x".repeat(201))).is_err());
        assert!(valid_title(Some(&"é".repeat(200))).is_ok());
    }

    #[test]
    fn page_sizes_are_clamped() {
        assert_eq!((page_size(0), page_size(7), page_size(1000)), (1, 7, MAX_PAGE));
    }

    #[test]
    fn a_full_extra_row_yields_a_cursor() {
        assert_eq!(split_page(vec![1, 2, 3], 2, |x| *x), (vec![1, 2], Some(2)));
        assert_eq!(split_page(vec![1, 2], 2, |x| *x), (vec![1, 2], None));
    }
}

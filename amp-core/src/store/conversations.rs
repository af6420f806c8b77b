use async_trait::async_trait;

use crate::conversation::{Conversation, Message};
use crate::error::Result;
use crate::ids::{ConversationId, MessageId, UserId, WorkspaceId};

/// Conversations and their messages.
///
/// Promises: listings are newest first and page with `before`; messages list oldest first
/// and page with `after`; appending to a missing conversation is `NotFound`; deleting a
/// conversation deletes its messages.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Stores a new conversation; `NotFound` when its workspace does not exist (a delete
    /// of the workspace at the same time either hands it back or is seen here).
    async fn create_conversation(&self, conversation: Conversation) -> Result<()>;

    /// Reads one.
    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>>;

    /// Replaces title, agent, model and `updated_at`; `NotFound` for a missing one.
    async fn update_conversation(&self, conversation: &Conversation) -> Result<()>;

    /// Moves a personal conversation into `workspace`, setting `updated_at`. Returns
    /// `false` when it is missing or already in a workspace, or the workspace does not
    /// exist; the check and the write are one statement so two concurrent shares cannot
    /// both succeed.
    async fn share_conversation(
        &self,
        id: ConversationId,
        workspace: WorkspaceId,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;

    /// A user's own conversations (not those of workspaces), newest first, ids below `before`.
    async fn list_conversations(
        &self,
        owner: UserId,
        before: Option<ConversationId>,
        limit: u32,
    ) -> Result<Vec<Conversation>>;

    /// A workspace's conversations, newest first, ids below `before`.
    async fn list_workspace_conversations(
        &self,
        workspace: WorkspaceId,
        before: Option<ConversationId>,
        limit: u32,
    ) -> Result<Vec<Conversation>>;

    /// Deletes a conversation and its messages; returns whether it existed.
    async fn delete_conversation(&self, id: ConversationId) -> Result<bool>;

    /// Appends a message and bumps the conversation's `updated_at`.
    async fn append_message(&self, message: Message) -> Result<()>;

    /// Messages oldest first, ids above `after`.
    async fn list_messages(
        &self,
        conversation: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// The newest `limit` messages, oldest first: the history a chat turn sends.
    async fn recent_messages(&self, conversation: ConversationId, limit: u32) -> Result<Vec<Message>>;
}

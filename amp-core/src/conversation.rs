//! Conversations and their messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chat::{Role, Usage};
use crate::document::Citation;
use crate::ids::{AgentId, ConversationId, MessageId, ModelId, UserId, WorkspaceId};

/// A conversation: an ordered list of messages with a title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Who started it.
    pub owner: UserId,
    /// The workspace it belongs to, if shared.
    pub workspace: Option<WorkspaceId>,
    /// Its title.
    pub title: String,
    /// The agent it chats with, if any.
    pub agent: Option<AgentId>,
    /// The model last used.
    pub model: Option<ModelId>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When a message was last added or it was renamed.
    pub updated_at: DateTime<Utc>,
}

/// One stored message, with the citations and usage of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Its id (time-ordered: messages sort by id).
    pub id: MessageId,
    /// Its conversation.
    pub conversation: ConversationId,
    /// Who wrote it.
    pub role: Role,
    /// The person who wrote it, for user messages in shared conversations.
    pub author: Option<UserId>,
    /// Its text.
    pub content: String,
    /// The model that wrote it, for assistant messages.
    pub model: Option<ModelId>,
    /// The passages it cites.
    pub citations: Vec<Citation>,
    /// Token usage, for assistant messages.
    pub usage: Option<Usage>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

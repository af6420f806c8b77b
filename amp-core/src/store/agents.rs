use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{AgentId, UserId, WorkspaceId};
use crate::people::AgentConfig;

/// User-defined agents.
///
/// Promises: a duplicate id is `Conflict`; updating a missing agent is `NotFound`; listing
/// returns the user's own agents plus those visible in the given workspaces, by name.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Stores a new agent.
    async fn create_agent(&self, agent: AgentConfig) -> Result<()>;

    /// Reads one.
    async fn get_agent(&self, id: AgentId) -> Result<Option<AgentConfig>>;

    /// Replaces an agent.
    async fn update_agent(&self, agent: &AgentConfig) -> Result<()>;

    /// Deletes one; returns whether it existed.
    async fn delete_agent(&self, id: AgentId) -> Result<bool>;

    /// Agents `user` owns or that are shared into one of `workspaces`, by name.
    async fn list_agents(&self, user: UserId, workspaces: &[WorkspaceId]) -> Result<Vec<AgentConfig>>;
}

//! The retrieval scope: which indexed passages a caller's chat may search.
//!
//! A turn with no attached files and no agent sources reads exactly what
//! [`SessionAgent::retrieval_scope`] allows (see [`crate::context`] for the other cases).
//! An index enforces nothing on its own: the Context agent lists the files this filter
//! admits from the stores and searches only those.

use amp_core::{Result, SearchFilter, WorkspaceId, WorkspaceRole};

use super::SessionAgent;
use crate::principal::Principal;

impl SessionAgent {
    /// The search filter for a chat by `principal`, personal or inside `workspace`.
    ///
    /// A personal chat retrieves from the caller's own files only. A chat inside a
    /// workspace retrieves from exactly the workspace's files — not the caller's private
    /// files nor other members', nor other workspaces the caller belongs to: every member
    /// reads the answer, so it may cite only what every member could open. That needs the
    /// viewer role; a non-member gets `NotFound`, as for any workspace they cannot see.
    ///
    /// ```no_run
    /// # async fn scope(agent: &amp_agents::SessionAgent, me: &amp_agents::Principal,
    /// #     ws: amp_core::WorkspaceId) -> amp_core::Result<()> {
    /// let filter = agent.retrieval_scope(me, Some(ws)).await?;
    /// assert_eq!((filter.owners, filter.workspaces), (vec![], vec![ws]));
    /// # Ok(()) }
    /// ```
    pub async fn retrieval_scope(
        &self,
        principal: &Principal,
        workspace: Option<WorkspaceId>,
    ) -> Result<SearchFilter> {
        match workspace {
            None => Ok(SearchFilter::owner(principal.user)),
            Some(ws) => {
                self.require_role(principal, ws, WorkspaceRole::Viewer).await?;
                Ok(SearchFilter::workspace(ws))
            }
        }
    }
}

//! The agent registry: user-defined agents (instructions, model choice, sampling and the
//! sources they may read), created, changed, shared and deleted by their owners.
//!
//! Every method authorizes the caller here, not in HTTP handlers. An agent the caller may
//! not see is `NotFound` (its existence is not revealed); one they may see but not manage
//! is `Forbidden`. Workspace roles come from the [`SessionAgent`], so the rules match the
//! workspace endpoints: a non-member of a named workspace gets `NotFound` for it.

use std::collections::HashSet;

use amp_core::audit::{AuditAction, NewAuditEvent};
use amp_core::{
    AgentConfig, AgentId, AgentVisibility, DataSourceId, Error, FileId, ModelId, Result, Stores, WorkspaceId,
    WorkspaceRole,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::now;
use crate::principal::Principal;
use crate::router::Router;
use crate::session::SessionAgent;

/// The longest agent name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest instructions accepted, in characters.
pub const MAX_INSTRUCTIONS_CHARS: usize = 20_000;
/// The highest sampling temperature accepted (the lowest is 0).
pub const MAX_TEMPERATURE: f32 = 2.0;
/// The most files an agent may list.
pub const MAX_AGENT_FILES: usize = 100;
/// The most workspaces an agent may read from.
pub const MAX_AGENT_WORKSPACES: usize = 20;
/// The most data sources an agent may read from.
pub const MAX_AGENT_DATA_SOURCES: usize = 20;
/// The most fallback models an agent may name.
pub const MAX_AGENT_FALLBACKS: usize = 8;

/// `list` with duplicates removed (first occurrence kept), if it holds at most `max`
/// distinct items; `InvalidInput` naming `field` otherwise.
pub fn distinct_at_most<T: Eq + std::hash::Hash + Clone>(
    field: &str,
    list: Vec<T>,
    max: usize,
) -> Result<Vec<T>> {
    let mut seen = HashSet::new();
    let out: Vec<T> = list.into_iter().filter(|item| seen.insert(item.clone())).collect();
    if out.len() > max {
        return Err(Error::invalid_input(format!("{field}: at most {max} entries, {} given", out.len())));
    }
    Ok(out)
}

/// The editable fields of a user-defined agent, as sent to create or replace one.
///
/// Model names are not yet checked against the model registry: the Router agent will
/// reject unknown models once it exists. File and data source ids are stored as given, not
/// yet checked here: whatever reads them through the agent must still authorize the reader.
///
/// ```
/// let spec: amp_agents::AgentSpec = serde_json::from_value(serde_json::json!({
///     "name": "Summarizer",
///     "instructions": "Answer in three bullet points.",
///     "model": "gpt-4o",
///     "fallbacks": ["claude-3"],
///     "temperature": 0.2
/// }))
/// .unwrap();
/// assert_eq!(spec.visibility, amp_core::AgentVisibility::Private);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Its name, shown in pickers: 1 to [`MAX_NAME_CHARS`] characters, trimmed.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// System instructions added to every chat, up to [`MAX_INSTRUCTIONS_CHARS`].
    #[serde(default)]
    pub instructions: String,
    /// Its model; `None` uses the caller's or the server's default.
    #[serde(default)]
    pub model: Option<ModelId>,
    /// Models to fall back to, in order; no duplicates and not `model` itself.
    #[serde(default)]
    pub fallbacks: Vec<ModelId>,
    /// Sampling temperature, 0 to [`MAX_TEMPERATURE`].
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Answer length limit, at least 1.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Files it may read.
    #[serde(default)]
    pub files: Vec<FileId>,
    /// Workspaces whose files it may read; the caller must be a member of each.
    #[serde(default)]
    pub workspaces: Vec<WorkspaceId>,
    /// Data sources it may query.
    #[serde(default)]
    pub data_sources: Vec<DataSourceId>,
    /// Who may use it; sharing into a workspace needs the editor role there.
    #[serde(default = "private")]
    pub visibility: AgentVisibility,
    /// How its turns find passages: `mode`, `vector_weight`, `keyword_weight` (0 to 100);
    /// what is left out follows the deployment's `context.retrieval`.
    #[serde(default)]
    pub retrieval: amp_core::AgentRetrieval,
}

fn private() -> AgentVisibility {
    AgentVisibility::Private
}

impl AgentSpec {
    /// Checks every field, naming the first one that is wrong; returns the spec with its
    /// name trimmed.
    fn validated(mut self) -> Result<AgentSpec> {
        self.name = self.name.trim().to_owned();
        let name_chars = self.name.chars().count();
        if name_chars == 0 || name_chars > MAX_NAME_CHARS {
            return Err(Error::invalid_input(format!("name: needs 1 to {MAX_NAME_CHARS} characters")));
        }
        if self.instructions.chars().count() > MAX_INSTRUCTIONS_CHARS {
            return Err(Error::invalid_input(format!(
                "instructions: at most {MAX_INSTRUCTIONS_CHARS} characters"
            )));
        }
        if let Some(t) = self.temperature {
            // `contains` is false for NaN, so a NaN cannot slip through.
            if !(0.0..=MAX_TEMPERATURE).contains(&t) {
                return Err(Error::invalid_input(format!(
                    "temperature: must be between 0 and {MAX_TEMPERATURE}"
                )));
            }
        }
        if self.max_tokens == Some(0) {
            return Err(Error::invalid_input("max_tokens: must be at least 1"));
        }
        if let Some(model) = &self.model
            && self.fallbacks.contains(model)
        {
            return Err(Error::invalid_input(format!(
                "fallbacks: must not repeat the agent's model {model}"
            )));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = self.fallbacks.iter().find(|m| !seen.insert(*m)) {
            return Err(Error::invalid_input(format!("fallbacks: {dup} is listed twice")));
        }
        if self.fallbacks.len() > MAX_AGENT_FALLBACKS {
            return Err(Error::invalid_input(format!("fallbacks: at most {MAX_AGENT_FALLBACKS} entries")));
        }
        self.files = distinct_at_most("files", self.files, MAX_AGENT_FILES)?;
        self.workspaces = distinct_at_most("workspaces", self.workspaces, MAX_AGENT_WORKSPACES)?;
        self.data_sources = distinct_at_most("data_sources", self.data_sources, MAX_AGENT_DATA_SOURCES)?;
        let weight = |w: Option<f32>| w.is_none_or(|w| (0.0..=100.0).contains(&w));
        let r = self.retrieval;
        if !weight(r.vector_weight) || !weight(r.keyword_weight) {
            return Err(Error::invalid_input("retrieval: vector_weight and keyword_weight are 0 to 100"));
        }
        if r.vector_weight == Some(0.0) && r.keyword_weight == Some(0.0) {
            return Err(Error::invalid_input("retrieval: vector_weight and keyword_weight cannot both be 0"));
        }
        Ok(self)
    }
}

/// The agent registry. Cheap to clone: it holds the stores and the Session agent it asks
/// for workspace roles.
#[derive(Clone)]
pub struct AgentRegistry {
    stores: Stores,
    session: SessionAgent,
    router: Option<Router>,
    data_sources: Option<crate::data_sources::DataSources>,
}

impl AgentRegistry {
    /// A registry over these stores, checking workspace roles through `session`.
    pub fn new(stores: Stores, session: SessionAgent) -> AgentRegistry {
        AgentRegistry { stores, session, router: None, data_sources: None }
    }

    /// Checks every agent's model and fallbacks against this Router's registry when agents
    /// are created or changed.
    pub fn with_router(mut self, router: Router) -> AgentRegistry {
        self.router = Some(router);
        self
    }

    /// Checks every agent's data sources against these configured sources when agents are
    /// created or changed.
    pub fn with_data_sources(mut self, data_sources: crate::data_sources::DataSources) -> AgentRegistry {
        self.data_sources = Some(data_sources);
        self
    }

    /// Creates an agent owned by the caller.
    pub async fn create(&self, principal: &Principal, spec: AgentSpec) -> Result<AgentConfig> {
        let spec = spec.validated()?;
        self.authorize_spec(principal, &spec).await?;
        let now = now();
        let agent = apply(
            AgentConfig {
                id: AgentId::new(),
                owner: principal.user,
                name: String::new(),
                description: String::new(),
                instructions: String::new(),
                model: None,
                fallbacks: Vec::new(),
                temperature: None,
                max_tokens: None,
                files: Vec::new(),
                workspaces: Vec::new(),
                data_sources: Vec::new(),
                visibility: AgentVisibility::Private,
                retrieval: amp_core::AgentRetrieval::default(),
                created_at: now,
                updated_at: now,
            },
            spec,
        );
        self.stores.agents.create_agent(agent.clone()).await?;
        Ok(agent)
    }

    /// One agent the caller may see: their own, or one shared into a workspace they belong to.
    pub async fn get(&self, principal: &Principal, id: AgentId) -> Result<AgentConfig> {
        self.visible(principal, id).await
    }

    /// The caller's own agents plus those shared into any of their workspaces, by name.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<AgentConfig>> {
        let workspaces: Vec<WorkspaceId> =
            self.session.my_workspaces(principal).await?.into_iter().map(|w| w.workspace.id).collect();
        self.stores.agents.list_agents(principal.user, &workspaces).await
    }

    /// Replaces an agent's editable fields (its owner, or the owner of the workspace it is
    /// shared into). The owner and creation time stay.
    pub async fn update(&self, principal: &Principal, id: AgentId, spec: AgentSpec) -> Result<AgentConfig> {
        let current = self.manageable(principal, id).await?;
        let spec = spec.validated()?;
        self.authorize_spec(principal, &spec).await?;
        let mut agent = apply(current, spec);
        agent.updated_at = now();
        self.stores.agents.update_agent(&agent).await?;
        Ok(agent)
    }

    /// Deletes an agent (its owner, or the owner of the workspace it is shared into).
    pub async fn delete(&self, principal: &Principal, id: AgentId) -> Result<()> {
        let agent = self.manageable(principal, id).await?;
        if !self.stores.agents.delete_agent(id).await? {
            return Err(not_found(id));
        }
        let workspace = match agent.visibility {
            AgentVisibility::Workspace(w) => Some(w),
            AgentVisibility::Private => None,
        };
        let event = NewAuditEvent {
            actor: Some(principal.user),
            action: AuditAction::Deleted,
            target: format!("agent:{id}"),
            workspace,
            success: true,
            client_addr: None,
            detail: json!({"agent": id, "owner": agent.owner}),
        };
        // The agent is gone either way; a failed audit write must not report it as kept.
        if let Err(err) = self.stores.audit.append(event).await {
            tracing::error!(error = %err, agent = %id, "writing the agent deletion to the audit log failed");
        }
        Ok(())
    }

    /// The agent, if the caller may see it; otherwise `NotFound`, exactly as if it did not
    /// exist.
    async fn visible(&self, principal: &Principal, id: AgentId) -> Result<AgentConfig> {
        let agent = self.stores.agents.get_agent(id).await?.ok_or_else(|| not_found(id))?;
        if agent.owner == principal.user {
            return Ok(agent);
        }
        if let AgentVisibility::Workspace(w) = agent.visibility
            && self.session.is_member(principal, w).await?
        {
            return Ok(agent);
        }
        Err(not_found(id))
    }

    /// The agent, if the caller may change it; `Forbidden` when they can only see it.
    async fn manageable(&self, principal: &Principal, id: AgentId) -> Result<AgentConfig> {
        let agent = self.visible(principal, id).await?;
        if agent.owner == principal.user {
            return Ok(agent);
        }
        if let AgentVisibility::Workspace(w) = agent.visibility
            && self.stores.workspaces.member_role(w, principal.user).await? == Some(WorkspaceRole::Owner)
        {
            return Ok(agent);
        }
        Err(Error::forbidden("only the agent's owner or the workspace's owner may change it"))
    }

    /// Whether the caller may grant what `spec` asks for. Checked on every write, not only
    /// for what changed: whoever saves the agent vouches for every source it reads.
    async fn authorize_spec(&self, principal: &Principal, spec: &AgentSpec) -> Result<()> {
        if let Some(router) = &self.router
            && let Some(unknown) = spec.model.iter().chain(&spec.fallbacks).find(|m| !router.has_model(m))
        {
            return Err(Error::invalid_input(format!("model: `{unknown}` is not in the model registry")));
        }
        if let Some(sources) = &self.data_sources
            && let Some(unknown) = spec.data_sources.iter().find(|&&id| !sources.exists(id))
        {
            return Err(Error::invalid_input(format!(
                "data_sources: {unknown} is not a configured data source"
            )));
        }
        if let AgentVisibility::Workspace(w) = spec.visibility {
            self.session.require_role(principal, w, WorkspaceRole::Editor).await?;
        }
        for &w in &spec.workspaces {
            self.session.require_role(principal, w, WorkspaceRole::Viewer).await?;
        }
        let files = crate::files::Files::new(self.stores.clone(), self.session.clone());
        for &file in &spec.files {
            // Someone else's file is `NotFound`, exactly as when reading it directly.
            files.get(principal, file).await?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for AgentRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The stores are trait objects without `Debug`.
        f.debug_struct("AgentRegistry").finish_non_exhaustive()
    }
}

fn not_found(id: AgentId) -> Error {
    Error::not_found(format!("agent {id}"))
}

/// `agent` with the editable fields of `spec`.
fn apply(agent: AgentConfig, spec: AgentSpec) -> AgentConfig {
    AgentConfig {
        name: spec.name,
        description: spec.description,
        instructions: spec.instructions,
        model: spec.model,
        fallbacks: spec.fallbacks,
        temperature: spec.temperature,
        max_tokens: spec.max_tokens,
        files: spec.files,
        workspaces: spec.workspaces,
        data_sources: spec.data_sources,
        visibility: spec.visibility,
        retrieval: spec.retrieval,
        ..agent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AgentSpec {
        AgentSpec {
            name: " Helper ".into(),
            description: String::new(),
            instructions: String::new(),
            model: Some("gpt-4o".into()),
            fallbacks: vec!["claude-3".into()],
            temperature: Some(1.0),
            max_tokens: Some(100),
            files: Vec::new(),
            workspaces: Vec::new(),
            data_sources: Vec::new(),
            visibility: AgentVisibility::Private,
            retrieval: amp_core::AgentRetrieval::default(),
        }
    }

    fn rejected_field(spec: AgentSpec) -> String {
        spec.validated().unwrap_err().to_string()
    }

    #[test]
    fn valid_spec_has_its_name_trimmed() {
        assert_eq!(spec().validated().unwrap().name, "Helper");
    }

    #[test]
    fn each_invalid_field_is_named() {
        assert!(rejected_field(AgentSpec { name: "  ".into(), ..spec() }).contains("name"));
        assert!(rejected_field(AgentSpec { name: "x".repeat(101), ..spec() }).contains("name"));
        let long = "x".repeat(MAX_INSTRUCTIONS_CHARS + 1);
        assert!(rejected_field(AgentSpec { instructions: long, ..spec() }).contains("instructions"));
        for t in [-0.1, 2.1, f32::NAN] {
            assert!(rejected_field(AgentSpec { temperature: Some(t), ..spec() }).contains("temperature"));
        }
        assert!(rejected_field(AgentSpec { max_tokens: Some(0), ..spec() }).contains("max_tokens"));
        let own = vec!["gpt-4o".into()];
        assert!(rejected_field(AgentSpec { fallbacks: own, ..spec() }).contains("fallbacks"));
        let twice = vec!["a".into(), "a".into()];
        assert!(rejected_field(AgentSpec { fallbacks: twice, ..spec() }).contains("fallbacks"));
    }

    #[test]
    fn temperature_bounds_are_inclusive() {
        for t in [0.0, 2.0] {
            assert!(AgentSpec { temperature: Some(t), ..spec() }.validated().is_ok());
        }
    }
}

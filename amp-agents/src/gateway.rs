//! The OpenAI-compatible gateway: a chat request whose `model` names a registry model, a
//! tier, or one of the caller's agents, answered through the Router.

use amp_core::{
    AgentConfig, AgentId, ChatMessage, ChatRequest, ChatResponse, ChatStream, ModelId, Result, Role,
};
use futures::StreamExt;
use serde::Serialize;

use crate::principal::Principal;
use crate::quotas::Quotas;
use crate::registry::AgentRegistry;
use crate::router::{ModelSummary, Routed, Router, Target};
use crate::session::SessionAgent;

/// Where a chat with `agent` goes: its model and fallbacks, or with no model of its own
/// the person's `preferred` model, else the default.
pub(crate) fn agent_target(agent: &AgentConfig, preferred: Option<ModelId>) -> Target {
    match &agent.model {
        Some(model) => Target::Chain(std::iter::once(model.clone()).chain(agent.fallbacks.clone()).collect()),
        None => Target::Default { preferred },
    }
}

/// The agent's temperature and answer length, where the request sets none.
pub(crate) fn apply_sampling(agent: &AgentConfig, request: &mut ChatRequest) {
    request.temperature = request.temperature.or(agent.temperature);
    request.max_tokens = request.max_tokens.or(agent.max_tokens);
}

/// Routes the caller's chat requests. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    router: Router,
    agents: AgentRegistry,
    session: SessionAgent,
    quotas: Option<Quotas>,
}

/// What a caller may name as `model`: registry models and the agents they may use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choices {
    /// Registry models.
    pub models: Vec<ModelSummary>,
    /// Agents the caller may use (their own and those shared into their workspaces).
    pub agents: Vec<AgentConfig>,
}

impl Gateway {
    /// A gateway over these agents.
    pub fn new(router: Router, agents: AgentRegistry, session: SessionAgent) -> Self {
        Gateway { router, agents, session, quotas: None }
    }

    /// Counts every completion against the caller's quotas (requests per minute, streams
    /// open at once, tokens per day); without this, completions are not limited.
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// The Router behind it.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Answers in one piece.
    pub async fn complete(
        &self,
        principal: &Principal,
        request: ChatRequest,
    ) -> Result<Routed<ChatResponse>> {
        if let Some(quotas) = &self.quotas {
            quotas.begin_chat(principal).await?;
        }
        let (target, request) = self.prepare(principal, request).await?;
        let routed = self.router.complete(&target, &request).await?;
        if let (Some(quotas), Some(usage)) = (&self.quotas, routed.value.usage) {
            quotas
                .charge_tokens(principal, u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens))
                .await;
        }
        Ok(routed)
    }

    /// Answers as a stream (returned once the first token arrived).
    pub async fn stream(&self, principal: &Principal, request: ChatRequest) -> Result<Routed<ChatStream>> {
        let slot = match &self.quotas {
            Some(quotas) => {
                quotas.begin_chat(principal).await?;
                Some(quotas.stream_slot(principal).await?)
            }
            None => None,
        };
        let (target, request) = self.prepare(principal, request).await?;
        let routed = self.router.stream(&target, &request).await?;
        let Some(quotas) = self.quotas.clone() else { return Ok(routed) };
        // The stream holds its slot until it ends, and charges the tokens it reports.
        let principal = *principal;
        let Routed { value, model, deployment, failed_attempts } = routed;
        let metered = value.then(move |event| {
            // Moved in so the slot lives exactly as long as the stream.
            let _held = &slot;
            let quotas = quotas.clone();
            async move {
                if let Ok(amp_core::StreamEvent::Usage(usage)) = &event {
                    let total = u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens);
                    quotas.charge_tokens(&principal, total).await;
                }
                event
            }
        });
        Ok(Routed { value: metered.boxed(), model, deployment, failed_attempts })
    }

    /// The models and agents the caller may name.
    pub async fn choices(&self, principal: &Principal) -> Result<Choices> {
        Ok(Choices { models: self.router.models(), agents: self.agents.list(principal).await? })
    }

    /// Makes `model` (a registry model) the caller's default.
    pub async fn select_model(&self, principal: &Principal, model: ModelId) -> Result<amp_core::User> {
        if !self.router.has_model(&model) {
            return Err(amp_core::Error::not_found(format!("model `{model}`")));
        }
        let mut preferences = self.session.me(principal).await?.preferences;
        preferences.default_model = Some(model);
        self.session.update_preferences(principal, preferences).await
    }

    /// The Router target for a request, with an agent's settings applied when it names
    /// one: its instructions come first, its model and fallbacks are the chain, and its
    /// temperature and answer length apply where the request sets none.
    async fn prepare(
        &self,
        principal: &Principal,
        mut request: ChatRequest,
    ) -> Result<(Target, ChatRequest)> {
        // The person's preferences are read at most once, and only when a default is needed.
        let mut preferences = None;
        let agent = match request.model.take() {
            Some(name) if self.router.knows(name.as_str()) => {
                return Ok((Target::Named(name.as_str().to_owned()), request));
            }
            Some(name) => self.agent_named(principal, name.as_str()).await?,
            None => {
                let mine = self.session.me(principal).await?.preferences;
                match mine.default_agent {
                    Some(id) => {
                        let agent = self.agents.get(principal, id).await?;
                        preferences = Some(mine);
                        agent
                    }
                    None => return Ok((Target::Default { preferred: mine.default_model }, request)),
                }
            }
        };
        if !agent.instructions.trim().is_empty() {
            request.messages.insert(0, ChatMessage::new(Role::System, agent.instructions.clone()));
        }
        apply_sampling(&agent, &mut request);
        let preferred = match (&agent.model, preferences) {
            (Some(_), _) => None,
            (None, Some(p)) => p.default_model,
            (None, None) => self.session.me(principal).await?.preferences.default_model,
        };
        Ok((agent_target(&agent, preferred), request))
    }

    /// An agent the caller may use, by id or by name (case-insensitive). The caller's own
    /// agent of that name wins over shared ones; several shared ones of that name (and none
    /// of the caller's) are `Conflict`, never a silent pick. A name that is neither a model
    /// nor such an agent is `NotFound` as a model, so nothing about other people's agents
    /// leaks.
    async fn agent_named(&self, principal: &Principal, name: &str) -> Result<AgentConfig> {
        let unknown = || amp_core::Error::not_found(format!("model `{name}`"));
        if let Ok(id) = name.parse::<AgentId>() {
            return self.agents.get(principal, id).await.map_err(|_| unknown());
        }
        let (mine, shared): (Vec<AgentConfig>, Vec<AgentConfig>) = self
            .agents
            .list(principal)
            .await?
            .into_iter()
            .filter(|a| a.name.eq_ignore_ascii_case(name))
            .partition(|a| a.owner == principal.user);
        let mut candidates = if mine.is_empty() { shared } else { mine };
        match candidates.len() {
            0 => Err(unknown()),
            1 => Ok(candidates.remove(0)),
            n => Err(amp_core::Error::conflict(format!(
                "{n} agents you can use are named `{name}`: name one by its id"
            ))),
        }
    }
}

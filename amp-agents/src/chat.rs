//! `Amp`, the orchestrator: one chat turn through the agents.
//!
//! 1. Session: the caller may write to the conversation (or start one), use the agent,
//!    and read every attached file.
//! 2. Context: the files the turn may read, the passages closest to the question, the
//!    system message with the agent's instructions and the numbered sources, and the
//!    conversation's recent history.
//! 3. Router: the agent's model chain, the named model, or the person's default; retries
//!    and fallbacks happen before the first token.
//! 4. Response: `[n]` markers checked against the sources and turned into citations; the
//!    question and answer stored with citations and usage; the person's other devices told.
//!
//! Nothing is stored until the model has started answering, so a turn that fails before
//! its first token leaves the conversation as it was (and a new one unmade).

use amp_core::conversation::{Conversation, Message};
use amp_core::{
    AgentConfig, AgentId, ChatMessage, ChatRequest, ChatStream, ConversationId, DataSourceId, Error,
    ErrorKind, FileId, MessageId, ModelId, Result, Role, StreamEvent, Usage, WorkspaceId,
};
use futures::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::context::{Context, Source, fit_history, fit_sources, history};
use crate::conversations::Conversations;
use crate::gateway::{agent_target, apply_sampling};
use crate::principal::Principal;
use crate::quotas::{Quotas, StreamSlot};
use crate::registry::AgentRegistry;
use crate::response::cite;
use crate::router::{Router, Target};
use crate::session::SessionAgent;

/// The longest question accepted, in characters.
pub const MAX_QUESTION_CHARS: usize = 32_000;
/// The most files one turn may attach.
pub const MAX_TURN_FILES: usize = 50;
/// The most data sources one turn may name.
pub const MAX_TURN_DATA_SOURCES: usize = 20;

/// How many earlier messages a turn sends along.
const HISTORY_MESSAGES: u32 = 20;

/// The characters of a question that make a new conversation's title.
const TITLE_CHARS: usize = 80;

/// One chat turn as a person asks it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatTurn {
    /// The conversation to continue; none starts a new one.
    #[serde(default)]
    pub conversation: Option<ConversationId>,
    /// For a new conversation: the workspace to start it in (editors and owners).
    #[serde(default)]
    pub workspace: Option<WorkspaceId>,
    /// The agent to chat with; else the conversation's, else (without `model`) the
    /// person's default agent.
    #[serde(default)]
    pub agent: Option<AgentId>,
    /// A registry model or tier to answer with instead of an agent.
    #[serde(default)]
    pub model: Option<String>,
    /// The question.
    pub message: String,
    /// Files to answer from, instead of the default scope or the agent's sources.
    #[serde(default)]
    pub files: Option<Vec<FileId>>,
    /// Data sources to answer from, likewise.
    #[serde(default)]
    pub data_sources: Option<Vec<DataSourceId>>,
    /// Sampling temperature; else the agent's.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Answer length limit in tokens; else the agent's.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// How passages are found: `vector`, `keyword` or `hybrid`; else the deployment's
    /// default (`context.retrieval.mode`, hybrid).
    #[serde(default)]
    pub retrieval: Option<amp_core::config::RetrievalMode>,
}

/// What a turn is answering with, known before the answer's first word is sent on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnStart {
    /// The conversation (new or continued).
    pub conversation: Conversation,
    /// The stored question.
    pub question: Message,
    /// The passages the model was given, numbered as it may cite them.
    pub sources: Vec<Source>,
    /// The model answering.
    pub model: ModelId,
    /// Its deployment.
    pub deployment: String,
}

/// A turn answered in one piece.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatAnswer {
    /// How the turn began.
    #[serde(flatten)]
    pub start: TurnStart,
    /// The stored answer, with its citations and usage.
    pub answer: Message,
}

/// One event of a streamed turn after its [`TurnStart`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    /// More answer text, exactly as the model wrote it.
    Delta {
        /// The new text.
        text: String,
    },
    /// The answer is complete and stored: its text with unknown markers removed, its
    /// citations and usage.
    Done {
        /// The stored answer.
        answer: Message,
    },
    /// The answer broke off; nothing of it was stored.
    Error {
        /// The error's kind.
        kind: ErrorKind,
        /// A message safe to show.
        message: String,
    },
}

/// A streamed turn: how it began, then its events (the last is `Done` or `Error`).
/// Dropping the stream stops the model.
pub struct TurnStream {
    /// How the turn began.
    pub start: TurnStart,
    /// The answer as it is written.
    pub events: BoxStream<'static, TurnEvent>,
}

impl std::fmt::Debug for TurnStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnStream").field("start", &self.start).finish_non_exhaustive()
    }
}

/// The orchestrator. Cheap to clone.
#[derive(Clone)]
pub struct Amp {
    session: SessionAgent,
    conversations: Conversations,
    agents: AgentRegistry,
    context: Context,
    router: Router,
    quotas: Option<Quotas>,
}

/// A turn ready for the model: everything checked, nothing stored.
struct Prepared {
    conversation: Conversation,
    is_new: bool,
    sources: Vec<Source>,
    request: ChatRequest,
    target: Target,
    question: String,
}

impl Amp {
    /// An orchestrator over these agents.
    pub fn new(
        session: SessionAgent,
        conversations: Conversations,
        agents: AgentRegistry,
        context: Context,
        router: Router,
    ) -> Self {
        Amp { session, conversations, agents, context, router, quotas: None }
    }

    /// The Context agent turns retrieve through.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Counts every turn against the caller's quotas (requests per minute, streams open at
    /// once, tokens per day); without this, turns are not limited.
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// Answers a turn in one piece.
    pub async fn send(&self, principal: &Principal, turn: ChatTurn) -> Result<ChatAnswer> {
        if let Some(quotas) = &self.quotas {
            quotas.begin_chat(principal).await?;
        }
        let prepared = self.prepare(principal, turn).await?;
        let routed = self.router.complete(&prepared.target, &prepared.request).await?;
        let start = self.begin(principal, &prepared, routed.model, routed.deployment).await?;
        let response = routed.value;
        let answer = self.finish(principal, &start, &response.message.content, response.usage).await?;
        Ok(ChatAnswer { start, answer })
    }

    /// Answers a turn as a stream, returned once the model's first token arrived.
    pub async fn stream(&self, principal: &Principal, turn: ChatTurn) -> Result<TurnStream> {
        let slot = match &self.quotas {
            Some(quotas) => {
                quotas.begin_chat(principal).await?;
                Some(quotas.stream_slot(principal).await?)
            }
            None => None,
        };
        let prepared = self.prepare(principal, turn).await?;
        let routed = self.router.stream(&prepared.target, &prepared.request).await?;
        let start = self.begin(principal, &prepared, routed.model, routed.deployment).await?;
        let pump = Pump {
            amp: self.clone(),
            principal: *principal,
            start: start.clone(),
            upstream: routed.value,
            text: String::new(),
            usage: None,
            ended: false,
            _slot: slot,
        };
        let events = futures::stream::unfold(pump, |mut pump| async move {
            let event = pump.next_event().await?;
            Some((event, pump))
        })
        .boxed();
        Ok(TurnStream { start, events })
    }

    /// Checks the turn and builds the request, storing nothing.
    async fn prepare(&self, principal: &Principal, turn: ChatTurn) -> Result<Prepared> {
        let question = turn.message.trim().to_owned();
        if question.is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
            return Err(Error::invalid_input(format!(
                "message: a question needs 1 to {MAX_QUESTION_CHARS} characters"
            )));
        }
        if turn.agent.is_some() && turn.model.is_some() {
            return Err(Error::invalid_input("name an agent or a model, not both"));
        }
        let mut turn = turn;
        if let Some(files) = turn.files.take() {
            turn.files = Some(crate::registry::distinct_at_most("files", files, MAX_TURN_FILES)?);
        }
        if let Some(sources) = turn.data_sources.take() {
            turn.data_sources =
                Some(crate::registry::distinct_at_most("data_sources", sources, MAX_TURN_DATA_SOURCES)?);
        }
        let (conversation, is_new) = match turn.conversation {
            Some(id) => {
                let conversation = self.conversations.writable(principal, id).await?;
                if turn.workspace.is_some_and(|w| Some(w) != conversation.workspace) {
                    return Err(Error::invalid_input(
                        "workspace: a conversation stays in the workspace it was started in",
                    ));
                }
                (conversation, false)
            }
            None => {
                let title: String = question.chars().take(TITLE_CHARS).collect();
                let draft =
                    self.conversations.draft(principal, Some(&title), turn.workspace, turn.agent).await?;
                (draft, true)
            }
        };
        let mut preferred = None;
        let agent = match (turn.agent, &turn.model) {
            (Some(id), _) => Some(self.agents.get(principal, id).await?),
            (None, Some(_)) => None,
            (None, None) => {
                let preferences = self.session.me(principal).await?.preferences;
                preferred = preferences.default_model;
                // A conversation's agent, or the person's default one, that is gone or no
                // longer shared with them: the turn goes on without it.
                match conversation.agent.or(preferences.default_agent) {
                    Some(id) => self.usable_agent(principal, id).await?,
                    None => None,
                }
            }
        };
        let attached = (turn.files.as_deref(), turn.data_sources.as_deref());
        let scope = self.context.scope(principal, &conversation, agent.as_ref(), attached).await?;
        let sources = self.context.retrieve(principal, &question, &scope, turn.retrieval).await?;

        let mut request = ChatRequest::new(vec![ChatMessage::new(Role::User, question.clone())]);
        request.temperature = turn.temperature;
        request.max_tokens = turn.max_tokens;
        let target = match (&agent, turn.model) {
            (Some(agent), _) => {
                apply_sampling(agent, &mut request);
                agent_target(agent, preferred)
            }
            (None, Some(name)) if self.router.knows(&name) => Target::Named(name),
            (None, Some(name)) => return Err(Error::not_found(format!("model `{name}`"))),
            (None, None) => Target::Default { preferred },
        };
        // Instructions and the best sources first, then as much recent history as fits.
        let budget = self.router.prompt_room(&target, request.max_tokens)?;
        let instructions = agent.as_ref().map_or("", |a| a.instructions.as_str());
        let (sources, system) = fit_sources(instructions, sources, &request.messages, budget);
        request.messages.splice(0..0, system);
        if !is_new {
            let recent = history(&self.conversations.recent(conversation.id, HISTORY_MESSAGES).await?);
            let kept = fit_history(recent, &request.messages, budget);
            let at = request.messages.len() - 1;
            request.messages.splice(at..at, kept);
        }
        request.validate()?;
        let mut conversation = conversation;
        if is_new {
            conversation.agent = agent.as_ref().map(|a| a.id);
        }
        Ok(Prepared { conversation, is_new, sources, request, target, question })
    }

    /// The agent if the caller may still use it; `None` if it is gone or hidden from them.
    async fn usable_agent(&self, principal: &Principal, id: AgentId) -> Result<Option<AgentConfig>> {
        match self.agents.get(principal, id).await {
            Ok(agent) => Ok(Some(agent)),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The model has started: stores the new conversation and the question.
    async fn begin(
        &self,
        principal: &Principal,
        prepared: &Prepared,
        model: ModelId,
        deployment: String,
    ) -> Result<TurnStart> {
        if prepared.is_new {
            self.conversations.store_new(principal, &prepared.conversation).await?;
        }
        let question = Message {
            id: MessageId::new(),
            conversation: prepared.conversation.id,
            role: Role::User,
            author: Some(principal.user),
            content: prepared.question.clone(),
            model: None,
            citations: Vec::new(),
            usage: None,
            created_at: crate::clock::now(),
        };
        self.conversations.record(principal, &prepared.conversation, std::slice::from_ref(&question)).await?;
        Ok(TurnStart {
            conversation: prepared.conversation.clone(),
            question,
            sources: prepared.sources.clone(),
            model,
            deployment,
        })
    }

    /// The answer is complete: cites, stores and announces it.
    async fn finish(
        &self,
        principal: &Principal,
        start: &TurnStart,
        text: &str,
        usage: Option<Usage>,
    ) -> Result<Message> {
        if let (Some(quotas), Some(usage)) = (&self.quotas, usage) {
            quotas
                .charge_tokens(principal, u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens))
                .await;
        }
        let (content, citations) = cite(text, &start.sources);
        let answer = Message {
            id: MessageId::new(),
            conversation: start.conversation.id,
            role: Role::Assistant,
            author: None,
            content,
            model: Some(start.model.clone()),
            citations,
            usage,
            created_at: crate::clock::now(),
        };
        self.conversations.record(principal, &start.conversation, std::slice::from_ref(&answer)).await?;
        tracing::info!(
            conversation = %start.conversation.id,
            model = %start.model,
            deployment = %start.deployment,
            sources = start.sources.len(),
            citations = answer.citations.len(),
            "chat turn answered"
        );
        Ok(answer)
    }
}

/// Moves a streamed answer along, keeping what is needed to store it at the end.
struct Pump {
    amp: Amp,
    principal: Principal,
    start: TurnStart,
    upstream: ChatStream,
    text: String,
    usage: Option<Usage>,
    ended: bool,
    /// The caller's stream slot, given back when the stream ends or is dropped.
    _slot: Option<StreamSlot>,
}

impl Pump {
    /// The next event for the client; `None` after the last.
    async fn next_event(&mut self) -> Option<TurnEvent> {
        if self.ended {
            return None;
        }
        loop {
            let event = match self.upstream.next().await {
                Some(Ok(event)) => event,
                Some(Err(err)) => return Some(self.end_with(&err)),
                None => {
                    return Some(self.end_with(&Error::Upstream {
                        service: self.start.deployment.clone(),
                        status: None,
                        retryable: true,
                        message: "the model's stream ended without finishing".into(),
                        retry_after: None,
                        source: None,
                    }));
                }
            };
            match event {
                StreamEvent::TextDelta { text } => {
                    self.text.push_str(&text);
                    return Some(TurnEvent::Delta { text });
                }
                StreamEvent::Usage(usage) => self.usage = Some(usage),
                StreamEvent::Finish { .. } => {
                    self.ended = true;
                    // The answer is complete: it is stored even if the client hangs up now.
                    let (amp, principal, start) = (self.amp.clone(), self.principal, self.start.clone());
                    let (text, usage) = (std::mem::take(&mut self.text), self.usage);
                    let stored =
                        tokio::spawn(async move { amp.finish(&principal, &start, &text, usage).await })
                            .await
                            .unwrap_or_else(|e| Err(Error::internal("storing an answer panicked", e)));
                    return Some(match stored {
                        Ok(answer) => TurnEvent::Done { answer },
                        Err(err) => TurnEvent::Error { kind: err.kind(), message: err.public_message() },
                    });
                }
                StreamEvent::Error { kind, message } => {
                    self.ended = true;
                    return Some(TurnEvent::Error { kind, message });
                }
                StreamEvent::Start { .. } | StreamEvent::ToolCallDelta { .. } => {}
            }
        }
    }

    fn end_with(&mut self, err: &Error) -> TurnEvent {
        self.ended = true;
        TurnEvent::Error { kind: err.kind(), message: err.public_message() }
    }
}

impl std::fmt::Debug for Amp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Amp").finish_non_exhaustive()
    }
}

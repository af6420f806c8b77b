//! # amp-agents
//!
//! AMP's agents (Router, Storage, Context, Response, Session, DataSource), the agent
//! registry and the chat-turn orchestrator. Each agent is a plain type holding its
//! dependencies as `Arc<dyn Trait>` from amp-core, so it runs in any number of replicas that
//! share the same stores. Every read and write is authorized here, not only in HTTP handlers.
//!
//! Today:
//! - [`SessionAgent`]: accounts, passwords, tokens, API keys, single sign-on, device
//!   sessions, cross-device sync and workspaces with roles;
//! - [`Files`]: who may read a file's record and share it into a workspace;
//! - [`Conversations`]: conversations and their messages, personal or in a workspace;
//! - [`AgentRegistry`]: user-defined agents, private or shared into a workspace.
//! - [`Gateway`]: OpenAI-style requests naming a model, a tier or an agent, through the Router;
//! - [`Router`]: the model registry, deployment selection and load balancing, circuit
//!   breakers, retries and fallbacks, and routing metrics.

#![warn(missing_docs)]

mod clock;
pub mod conversations;
pub mod files;
pub mod gateway;
pub mod principal;
pub mod registry;
pub mod router;
pub mod session;

pub use conversations::Conversations;
pub use files::Files;
pub use gateway::Gateway;
pub use principal::{Admin, AuthMethod, Principal};
pub use registry::{AgentRegistry, AgentSpec};
pub use router::{Router, Target};
pub use session::SessionAgent;

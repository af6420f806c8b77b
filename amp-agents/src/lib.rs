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
//! - [`Storage`]: uploads (streamed or presigned) checked, kept in a blob store and
//!   processed in the background by crash-safe workers (scan, extract, chunk, embed,
//!   index); search, downloads, and deletes that leave nothing behind;
//! - [`Context`]: which files a chat turn may read, and the passages closest to its question;
//! - [`response`]: an answer's `[n]` markers checked and turned into citations;
//! - [`DataSources`]: configured enterprise sources read live, records filtered by their
//!   access lists, every read audited;
//! - [`Amp`]: one chat turn through all of them, streamed or in one piece;
//! - [`Files`]: who may read a file's record and share it into a workspace;
//! - [`Conversations`]: conversations and their messages, personal or in a workspace;
//! - [`AgentRegistry`]: user-defined agents, private or shared into a workspace.
//! - [`Gateway`]: OpenAI-style requests naming a model, a tier or an agent, through the Router;
//! - [`Router`]: the model registry, deployment selection and load balancing, circuit
//!   breakers, retries and fallbacks, and routing metrics.

#![warn(missing_docs)]

pub mod chat;
mod clock;
pub mod context;
pub mod conversations;
pub mod data_sources;
mod digest;
pub mod files;
pub mod gateway;
pub mod principal;
pub mod quotas;
pub mod registry;
pub mod response;
pub mod router;
pub mod session;
pub mod storage;

pub use chat::{Amp, ChatAnswer, ChatTurn, TurnEvent, TurnStart, TurnStream};
pub use context::Context;
pub use conversations::Conversations;
pub use data_sources::DataSources;
pub use files::Files;
pub use gateway::Gateway;
pub use principal::{Admin, AuthMethod, Principal};
pub use registry::{AgentRegistry, AgentSpec};
pub use router::{Router, Target};
pub use session::SessionAgent;
pub use storage::Storage;

//! # amp-agents
//!
//! AMP's agents (Router, Storage, Context, Response, Session, DataSource), the agent
//! registry and the chat-turn orchestrator. Each agent is a plain type holding its
//! dependencies as `Arc<dyn Trait>` from amp-core, so it runs in any number of replicas that
//! share the same stores. Every read and write is authorized here, not only in HTTP handlers.
//!
//! Today: the [`session`] agent's accounts and tokens.

#![warn(missing_docs)]

pub mod principal;
pub mod session;

pub use principal::{AuthMethod, Principal};
pub use session::SessionAgent;

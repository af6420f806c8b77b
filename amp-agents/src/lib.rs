//! # amp-agents
//!
//! AMP's agents (Router, Storage, Context, Response, Session, DataSource), the agent
//! registry and the chat-turn orchestrator. Each agent is a plain type holding its
//! dependencies as `Arc<dyn Trait>` from amp-core, so it runs in any number of replicas that
//! share the same stores.

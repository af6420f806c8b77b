//! Who is calling.

use amp_core::{ApiKeyId, SessionId, UserId};
use serde::{Deserialize, Serialize};

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", content = "id", rename_all = "snake_case")]
pub enum AuthMethod {
    /// An access token of a signed-in device session.
    Session(SessionId),
    /// A programmatic API key.
    ApiKey(ApiKeyId),
}

/// An authenticated caller. Every agent method that touches a person's data takes one and
/// decides from it what may be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The person.
    pub user: UserId,
    /// How they signed in.
    pub method: AuthMethod,
    /// The daily token budget of the API key they call with, when its owner set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_token_budget: Option<u64>,
}

impl Principal {
    /// The device session, when the caller signed in interactively.
    pub fn session(&self) -> Option<SessionId> {
        match self.method {
            AuthMethod::Session(id) => Some(id),
            AuthMethod::ApiKey(_) => None,
        }
    }
}

/// Proof that the caller may change server-wide settings (the model registry, the Router's
/// balancing). Only [`crate::SessionAgent::admin`] makes one for a person, from the
/// `auth.admins` list, so an agent method that takes `&Admin` cannot be reached without
/// that check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admin {
    user: Option<UserId>,
}

impl Admin {
    pub(crate) fn person(user: UserId) -> Self {
        Admin { user: Some(user) }
    }

    /// The application embedding the agents, acting for itself rather than for a person
    /// (at start-up, from its own configuration). Never hand this to request handlers.
    pub fn embedding_application() -> Self {
        Admin { user: None }
    }

    /// The person acting, or `None` for the embedding application.
    pub fn user(&self) -> Option<UserId> {
        self.user
    }
}

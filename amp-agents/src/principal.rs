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

//! Typed identifiers.
//!
//! Every entity id is its own type so a `FileId` can never be passed where a `UserId` is
//! expected. Ids are UUIDv7: unique without coordination between replicas, and ordered by
//! creation time, which keeps database indexes compact and listings stable.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (for example one read back from a database).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| crate::Error::invalid_input(format!("not a valid {} id", $what)))
            }
        }
    };
}

uuid_id!(
    /// A person with an account.
    UserId, "user"
);
uuid_id!(
    /// A shared workspace.
    WorkspaceId, "workspace"
);
uuid_id!(
    /// A signed-in session (one per device login).
    SessionId, "session"
);
uuid_id!(
    /// A device a person uses; one device holds at most one live session.
    DeviceId, "device"
);
uuid_id!(
    /// A conversation.
    ConversationId, "conversation"
);
uuid_id!(
    /// One message in a conversation.
    MessageId, "message"
);
uuid_id!(
    /// An uploaded file.
    FileId, "file"
);
uuid_id!(
    /// One indexed passage of a file or data-source record.
    ChunkId, "chunk"
);
uuid_id!(
    /// A user-defined agent (instructions, model, sampling, readable sources).
    AgentId, "agent"
);
uuid_id!(
    /// A background job (ingestion, sync).
    JobId, "job"
);
uuid_id!(
    /// A connected enterprise data source.
    DataSourceId, "data source"
);
uuid_id!(
    /// A programmatic API key.
    ApiKeyId, "API key"
);
uuid_id!(
    /// A family of rotating refresh tokens descending from one login.
    TokenFamilyId, "token family"
);

/// The name of a model in the registry (`gpt-4o`, `claude-3`, `local`).
///
/// Model ids are chosen by operators, so they are names rather than UUIDs.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelId(String);

impl ModelId {
    /// Wraps a model name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({:?})", self.0)
    }
}

impl From<&str> for ModelId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for ModelId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = FileId::new();
        let parsed: FileId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<FileId>(&json).unwrap(), id);
    }

    #[test]
    fn malformed_id_is_invalid_input() {
        let err = "not-a-uuid".parse::<UserId>().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("user id"));
    }

    #[test]
    fn ids_created_later_sort_later() {
        let first = MessageId::new();
        let second = MessageId::new();
        assert!(first < second);
    }
}

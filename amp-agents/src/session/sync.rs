//! Cross-device sync: every change to a person's data is published on their topic, and each
//! of their devices follows it in order, resuming by event id after a reconnect.

use amp_core::{Error, EventId, EventStream, Result, SessionId, UserId};
use serde_json::{Value, json};

use super::SessionAgent;
use crate::principal::Principal;

/// The event-bus topic of one person's devices.
pub fn topic(user: UserId) -> String {
    format!("user:{user}")
}

/// The largest state a device may push in one event, in bytes of JSON.
const MAX_PUSH_BYTES: usize = 64 * 1024;

impl SessionAgent {
    /// Follows the caller's changes: events after `last_event_id` still in the replay
    /// window first, then live ones. `Conflict` when `last_event_id` is older than the
    /// window: the device must reload its state in full.
    pub async fn follow(&self, principal: &Principal, last_event_id: Option<EventId>) -> Result<EventStream> {
        self.events.subscribe(&topic(principal.user), last_event_id).await
    }

    /// Publishes state a device pushes (an open conversation, a draft, a scroll position) to
    /// the caller's other devices. The payload must be a JSON object.
    pub async fn push(&self, principal: &Principal, state: Value) -> Result<EventId> {
        if !state.is_object() {
            return Err(Error::invalid_input("sync state must be a JSON object"));
        }
        if state.to_string().len() > MAX_PUSH_BYTES {
            return Err(Error::PayloadTooLarge {
                limit: MAX_PUSH_BYTES as u64,
                actual: state.to_string().len() as u64,
            });
        }
        self.publish(principal, "device_state", state).await
    }

    /// Publishes one change of the caller's data, naming the device it came from so that
    /// device can ignore its own echo.
    pub(crate) async fn publish(&self, principal: &Principal, kind: &str, data: Value) -> Result<EventId> {
        self.publish_to(principal.user, principal.session(), kind, data).await
    }

    /// Publishes a change of `user`'s data that `from` (a session, or nobody) made.
    pub(crate) async fn publish_to(
        &self,
        user: UserId,
        from: Option<SessionId>,
        kind: &str,
        data: Value,
    ) -> Result<EventId> {
        let event = json!({ "type": kind, "from_session": from, "data": data });
        self.events.publish(&topic(user), event).await
    }

    /// Tells `user`'s devices that `session` was signed out, so its sync stream closes.
    pub(crate) async fn announce_sign_out(&self, user: UserId, session: SessionId) -> Result<EventId> {
        self.publish_to(user, None, "device_signed_out", json!({ "session": session })).await
    }
}

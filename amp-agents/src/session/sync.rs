//! Cross-device sync: every change to a person's data is published on their topic, and each
//! of their devices follows it in order, resuming by event id after a reconnect.

use std::time::Duration;

use amp_core::{Error, ErrorKind, EventId, EventStream, RateLimit, Result, SessionId, UserId};
use futures::StreamExt;
use serde_json::{Value, json};

use super::SessionAgent;
use crate::principal::{AuthMethod, Principal};

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
    ///
    /// The stream lives only as long as the credential that opened it: every
    /// `auth.sync_recheck_secs` it checks the session (or API key) and the account again,
    /// and ends with an `Unauthenticated` error once either was revoked or disabled.
    pub async fn follow(&self, principal: &Principal, last_event_id: Option<EventId>) -> Result<EventStream> {
        self.still_valid(principal).await?;
        let events = self.events.subscribe(&topic(principal.user), last_event_id).await?;
        let every = Duration::from_secs(self.config.sync_recheck_secs.max(1));
        let agent = self.clone();
        let principal = *principal;
        let checks = futures::stream::unfold((), move |()| {
            let agent = agent.clone();
            async move {
                tokio::time::sleep(every).await;
                Some((agent.still_valid(&principal).await, ()))
            }
        })
        .filter_map(|check| async move { check.err().map(Err) });
        // Events and failed checks interleave; the first failed check ends the stream.
        let merged = futures::stream::select(events, checks.boxed());
        let until_revoked = merged.scan(false, |ended, item| {
            let out = if *ended {
                None
            } else {
                *ended = matches!(&item, Err(e) if e.kind() == ErrorKind::Unauthenticated);
                Some(item)
            };
            async move { out }
        });
        Ok(until_revoked.boxed())
    }

    /// Whether the credential behind `principal` still works: its session is live (or its
    /// API key unrevoked) and its account active.
    pub(crate) async fn still_valid(&self, principal: &Principal) -> Result<()> {
        match principal.method {
            AuthMethod::Session(id) => {
                let session = self.live_session_of(id).await?;
                if session.user != principal.user {
                    return Err(Error::unauthenticated("session ended"));
                }
            }
            AuthMethod::ApiKey(id) => {
                let keys = self.stores.credentials.list_api_keys(principal.user).await?;
                if !keys.iter().any(|k| k.id == id && k.revoked_at.is_none()) {
                    return Err(Error::unauthenticated("the API key was revoked"));
                }
            }
        }
        match self.stores.users.get_user(principal.user).await? {
            Some(user) if user.is_active() => Ok(()),
            _ => Err(Error::unauthenticated("account disabled")),
        }
    }

    /// Publishes state a device pushes (an open conversation, a draft, a scroll position) to
    /// the caller's other devices. The payload must be a JSON object of at most 64 KiB;
    /// pushes are limited to `auth.sync_pushes_per_minute` per person (`RateLimited`).
    pub async fn push(&self, principal: &Principal, state: Value) -> Result<EventId> {
        if !state.is_object() {
            return Err(Error::invalid_input("sync state must be a JSON object"));
        }
        let size = serde_json::to_vec(&state).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_PUSH_BYTES {
            return Err(Error::PayloadTooLarge { limit: MAX_PUSH_BYTES as u64, actual: size as u64 });
        }
        let per_minute =
            RateLimit { limit: self.config.sync_pushes_per_minute, window: Duration::from_secs(60) };
        let decision = self.limiter.hit(&format!("sync:push:user:{}", principal.user), per_minute).await?;
        if !decision.allowed {
            return Err(Error::RateLimited {
                message: "too many sync pushes; slow down".into(),
                retry_after: decision.retry_after,
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

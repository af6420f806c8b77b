//! [`SessionStore`] on Redis: device sessions and refresh tokens as hashes that expire with
//! them, so every server process sees a revocation at once.

use std::collections::HashMap;

use amp_core::store::{RefreshToken, RefreshTokenUse, SessionStore};
use amp_core::{DeviceId, DeviceSession, Error, Result, SessionId, TokenFamilyId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{RedisConnection, redis_error};

/// Creates a hash only if absent, and sets its expiry, in one step.
const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
"#;

/// Sets one field of an existing hash; reports whether the hash existed.
const SET_IF_EXISTS: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

/// Sets a field only if the hash exists and the field is unset; returns 1 when it did.
const SET_ONCE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then return 1 end
return 0
"#;

/// Marks every still-unrevoked token of a family revoked; returns how many were.
const REVOKE_FAMILY: &str = r#"
local n = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if redis.call('EXISTS', key) == 1 and redis.call('HSETNX', key, 'revoked_at', ARGV[1]) == 1 then
        n = n + 1
    end
end
return n
"#;

/// Device sessions and refresh tokens shared by every process using the same Redis.
#[derive(Clone)]
pub struct RedisSessionStore {
    redis: RedisConnection,
    create: redis::Script,
    set_if_exists: redis::Script,
    set_once: redis::Script,
    revoke_family: redis::Script,
}

impl RedisSessionStore {
    /// A store whose keys live under `<namespace>sess:`, `<namespace>rt:` and friends.
    pub fn new(redis: RedisConnection) -> Self {
        RedisSessionStore {
            redis,
            create: redis::Script::new(CREATE),
            set_if_exists: redis::Script::new(SET_IF_EXISTS),
            set_once: redis::Script::new(SET_ONCE),
            revoke_family: redis::Script::new(REVOKE_FAMILY),
        }
    }

    fn session_key(&self, id: SessionId) -> String {
        self.redis.key(&["sess", &id.to_string()])
    }

    fn user_sessions_key(&self, user: UserId) -> String {
        self.redis.key(&["user-sess", &user.to_string()])
    }

    fn token_key(&self, hash: &str) -> String {
        self.redis.key(&["rt", hash])
    }

    fn family_key(&self, family: TokenFamilyId) -> String {
        self.redis.key(&["rt-family", &family.to_string()])
    }

    async fn hash(&self, key: &str) -> Result<HashMap<String, String>> {
        redis::cmd("HGETALL").arg(key).query_async(&mut self.redis.conn()).await.map_err(redis_error)
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn field<'a>(h: &'a HashMap<String, String>, name: &str) -> Result<&'a str> {
    h.get(name).map(String::as_str).ok_or_else(|| Error::bug(format!("stored record lacks `{name}`")))
}

fn time_field(h: &HashMap<String, String>, name: &str) -> Result<DateTime<Utc>> {
    let v: i64 =
        field(h, name)?.parse().map_err(|_| Error::bug(format!("stored `{name}` is not a number")))?;
    DateTime::from_timestamp_millis(v).ok_or_else(|| Error::bug(format!("stored `{name}` is out of range")))
}

fn opt_time_field(h: &HashMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>> {
    if h.contains_key(name) { time_field(h, name).map(Some) } else { Ok(None) }
}

fn uuid_field(h: &HashMap<String, String>, name: &str) -> Result<Uuid> {
    Uuid::parse_str(field(h, name)?).map_err(|_| Error::bug(format!("stored `{name}` is not a UUID")))
}

fn session_from(id: SessionId, h: &HashMap<String, String>) -> Result<DeviceSession> {
    Ok(DeviceSession {
        id,
        user: UserId::from_uuid(uuid_field(h, "user")?),
        device: DeviceId::from_uuid(uuid_field(h, "device")?),
        device_name: field(h, "device_name")?.to_owned(),
        created_at: time_field(h, "created_at")?,
        last_seen_at: time_field(h, "last_seen_at")?,
        expires_at: time_field(h, "expires_at")?,
        revoked_at: opt_time_field(h, "revoked_at")?,
        minted_by: h.get("minted_by").map(|c| c.parse()).transpose()?,
    })
}

fn token_from(hash: &str, h: &HashMap<String, String>) -> Result<RefreshToken> {
    Ok(RefreshToken {
        hash: hash.to_owned(),
        family: TokenFamilyId::from_uuid(uuid_field(h, "family")?),
        session: SessionId::from_uuid(uuid_field(h, "session")?),
        user: UserId::from_uuid(uuid_field(h, "user")?),
        issued_at: time_field(h, "issued_at")?,
        expires_at: time_field(h, "expires_at")?,
        used_at: opt_time_field(h, "used_at")?,
        revoked_at: opt_time_field(h, "revoked_at")?,
    })
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create_session(&self, s: DeviceSession) -> Result<()> {
        let mut fields: Vec<(String, String)> = vec![
            ("user".into(), s.user.to_string()),
            ("device".into(), s.device.to_string()),
            ("device_name".into(), s.device_name.clone()),
            ("created_at".into(), ms(s.created_at).to_string()),
            ("last_seen_at".into(), ms(s.last_seen_at).to_string()),
            ("expires_at".into(), ms(s.expires_at).to_string()),
        ];
        if let Some(r) = s.revoked_at {
            fields.push(("revoked_at".into(), ms(r).to_string()));
        }
        if let Some(minter) = s.minted_by {
            fields.push(("minted_by".into(), minter.to_string()));
        }
        let mut invocation = self.create.key(self.session_key(s.id));
        invocation.arg(ms(s.expires_at));
        for (k, v) in &fields {
            invocation.arg(k).arg(v);
        }
        let created: i64 = invocation.invoke_async(&mut self.redis.conn()).await.map_err(redis_error)?;
        if created == 0 {
            return Err(Error::conflict(format!("session {} already exists", s.id)));
        }
        let mut conn = self.redis.conn();
        let user_key = self.user_sessions_key(s.user);
        redis::pipe()
            .cmd("ZADD")
            .arg(&user_key)
            .arg(ms(s.created_at))
            .arg(s.id.to_string())
            .ignore()
            // The index lives as long as the user's longest session.
            .cmd("PEXPIREAT")
            .arg(&user_key)
            .arg(ms(s.expires_at))
            .arg("GT")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&user_key)
            .arg(ms(s.expires_at))
            .arg("NX")
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_error)
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<DeviceSession>> {
        let h = self.hash(&self.session_key(id)).await?;
        if h.is_empty() { Ok(None) } else { session_from(id, &h).map(Some) }
    }

    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<()> {
        let existed: i64 = self
            .set_if_exists
            .key(self.session_key(id))
            .arg("last_seen_at")
            .arg(ms(at))
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(redis_error)?;
        if existed == 0 {
            return Err(Error::not_found(format!("session {id}")));
        }
        Ok(())
    }

    async fn revoke_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<bool> {
        let key = self.session_key(id);
        let set: i64 = self
            .set_once
            .key(&key)
            .arg("revoked_at")
            .arg(ms(at))
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(redis_error)?;
        if set == 1
            && let Some(s) = self.get_session(id).await?
        {
            let _: i64 = redis::cmd("ZREM")
                .arg(self.user_sessions_key(s.user))
                .arg(id.to_string())
                .query_async(&mut self.redis.conn())
                .await
                .map_err(redis_error)?;
        }
        Ok(set == 1)
    }

    async fn list_sessions(&self, user: UserId) -> Result<Vec<DeviceSession>> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.user_sessions_key(user))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.redis.conn())
            .await
            .map_err(redis_error)?;
        let mut sessions = Vec::with_capacity(ids.len());
        for id in ids {
            let id = SessionId::from_uuid(
                Uuid::parse_str(&id).map_err(|_| Error::bug("bad session id in index"))?,
            );
            // Expired sessions vanish from Redis on their own; the index is cleaned lazily.
            if let Some(s) = self.get_session(id).await?
                && s.revoked_at.is_none()
            {
                sessions.push(s);
            }
        }
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    async fn insert_refresh_token(&self, t: RefreshToken) -> Result<()> {
        let mut invocation = self.create.key(self.token_key(&t.hash));
        invocation.arg(ms(t.expires_at));
        invocation
            .arg("family")
            .arg(t.family.to_string())
            .arg("session")
            .arg(t.session.to_string())
            .arg("user")
            .arg(t.user.to_string())
            .arg("issued_at")
            .arg(ms(t.issued_at))
            .arg("expires_at")
            .arg(ms(t.expires_at));
        if let Some(u) = t.used_at {
            invocation.arg("used_at").arg(ms(u));
        }
        if let Some(r) = t.revoked_at {
            invocation.arg("revoked_at").arg(ms(r));
        }
        let created: i64 = invocation.invoke_async(&mut self.redis.conn()).await.map_err(redis_error)?;
        if created == 0 {
            return Err(Error::conflict("this refresh token already exists"));
        }
        let family = self.family_key(t.family);
        redis::pipe()
            .cmd("SADD")
            .arg(&family)
            .arg(self.token_key(&t.hash))
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&family)
            .arg(ms(t.expires_at))
            .arg("GT")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&family)
            .arg(ms(t.expires_at))
            .arg("NX")
            .ignore()
            .query_async::<()>(&mut self.redis.conn())
            .await
            .map_err(redis_error)
    }

    async fn use_refresh_token(&self, hash: &str, at: DateTime<Utc>) -> Result<RefreshTokenUse> {
        let key = self.token_key(hash);
        let outcome: i64 = self
            .set_once
            .key(&key)
            .arg("used_at")
            .arg(ms(at))
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(redis_error)?;
        if outcome == -1 {
            return Ok(RefreshTokenUse::Unknown);
        }
        let token = token_from(hash, &self.hash(&key).await?)?;
        Ok(if outcome == 1 { RefreshTokenUse::Fresh(token) } else { RefreshTokenUse::Replayed(token) })
    }

    async fn revoke_token_family(&self, family: TokenFamilyId, at: DateTime<Utc>) -> Result<u64> {
        self.revoke_family
            .key(self.family_key(family))
            .arg(ms(at))
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(redis_error)
    }
}

//! Per-person and per-API-key quotas: chat requests per minute, streams open at once,
//! tokens per day, uploads per hour and bytes per day. Every limit counts for the person
//! and, separately, for the API key they call with, so one leaked or runaway key cannot
//! spend its owner's whole allowance; a refusal is `RateLimited` (429) with the time until
//! the window ends. The counters live in the [`RateLimiter`] (Redis in a cluster).

use std::sync::Arc;
use std::time::Duration;

use amp_core::config::QuotaConfig;
use amp_core::{Error, RateLimit, RateLimiter, Result};
use serde::{Deserialize, Serialize};

use crate::principal::{AuthMethod, Principal};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
/// A stream slot is given back when the stream ends; if a process dies first, its slots
/// come back when this window ends.
const STREAM_WINDOW: Duration = Duration::from_secs(3600);

/// The quotas, over shared counters. Cheap to clone.
#[derive(Clone)]
pub struct Quotas {
    limiter: Arc<dyn RateLimiter>,
    config: Arc<QuotaConfig>,
}

/// One limit as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUse {
    /// Which limit (`chat_requests_per_minute`, `concurrent_streams`, …).
    pub quota: String,
    /// The limit; 0 when it is off.
    pub limit: u64,
    /// Used in the current window: the person's, or the key's when calling with a key
    /// (whichever is nearer its limit).
    pub used: u64,
    /// Seconds until the window starts over.
    pub resets_in_secs: u64,
}

/// One of the caller's concurrent streams, held until dropped.
pub struct StreamSlot {
    limiter: Arc<dyn RateLimiter>,
    keys: Vec<String>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let (limiter, keys) = (self.limiter.clone(), std::mem::take(&mut self.keys));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for key in keys {
                    if let Err(err) = limiter.add(&key, -1, STREAM_WINDOW).await {
                        tracing::warn!(error = %err, "giving back a stream slot failed; it returns with its window");
                    }
                }
            });
        }
    }
}

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSlot").field("keys", &self.keys).finish()
    }
}

/// The counter subjects of a caller: the person, and the key they call with.
fn subjects(principal: &Principal) -> Vec<String> {
    let mut out = vec![format!("user:{}", principal.user)];
    if let AuthMethod::ApiKey(key) = principal.method {
        out.push(format!("key:{key}"));
    }
    out
}

fn refused(what: &str, retry_after: Duration) -> Error {
    metrics::counter!("amp_quota_refused_total", "quota" => what.to_owned()).increment(1);
    Error::RateLimited { message: format!("quota exceeded: {what}"), retry_after: Some(retry_after) }
}

impl Quotas {
    /// Quotas over `limiter` with `config`'s limits.
    pub fn new(limiter: Arc<dyn RateLimiter>, config: QuotaConfig) -> Self {
        Quotas { limiter, config: Arc::new(config) }
    }

    /// A chat turn or completion begins: counts against the per-minute rate and checks the
    /// day's token budget is not spent.
    pub async fn begin_chat(&self, principal: &Principal) -> Result<()> {
        let per_minute = self.config.chat_requests_per_minute;
        for subject in subjects(principal) {
            if per_minute > 0 {
                let decision = self
                    .limiter
                    .hit(&format!("quota:chat:{subject}"), RateLimit { limit: per_minute, window: MINUTE })
                    .await?;
                if !decision.allowed {
                    return Err(refused("chat_requests_per_minute", decision.retry_after.unwrap_or(MINUTE)));
                }
            }
            let limit = self.token_limit(principal, &subject);
            self.within("tokens_per_day", &format!("quota:tokens:{subject}"), limit, DAY).await?;
        }
        Ok(())
    }

    /// Takes one of the caller's concurrent stream slots, given back when dropped.
    pub async fn stream_slot(&self, principal: &Principal) -> Result<StreamSlot> {
        let mut slot = StreamSlot { limiter: self.limiter.clone(), keys: Vec::new() };
        let limit = u64::from(self.config.concurrent_streams);
        if limit == 0 {
            return Ok(slot);
        }
        for subject in subjects(principal) {
            let key = format!("quota:streams:{subject}");
            let tally = self.limiter.add(&key, 1, STREAM_WINDOW).await?;
            slot.keys.push(key);
            if tally.count > limit {
                // Dropping the slot gives back what was taken so far.
                return Err(refused("concurrent_streams", Duration::from_secs(1)));
            }
        }
        Ok(slot)
    }

    /// Charges the tokens a turn used to the caller's day.
    pub async fn charge_tokens(&self, principal: &Principal, tokens: u64) {
        self.charge(principal, "tokens", tokens, DAY).await;
    }

    /// An upload begins: counts against uploads per hour and checks the day's bytes are
    /// not spent (with `bytes` more, when the size is known up front).
    pub async fn begin_upload(&self, principal: &Principal, bytes: u64) -> Result<()> {
        let per_hour = self.config.uploads_per_hour;
        for subject in subjects(principal) {
            let day_key = format!("quota:upload_bytes:{subject}");
            let limit = self.config.upload_bytes_per_day;
            if limit > 0 {
                let tally = self.limiter.add(&day_key, 0, DAY).await?;
                if tally.count.saturating_add(bytes) > limit {
                    return Err(refused("upload_bytes_per_day", tally.resets_in));
                }
            }
            if per_hour > 0 {
                let decision = self
                    .limiter
                    .hit(&format!("quota:uploads:{subject}"), RateLimit { limit: per_hour, window: HOUR })
                    .await?;
                if !decision.allowed {
                    return Err(refused("uploads_per_hour", decision.retry_after.unwrap_or(HOUR)));
                }
            }
        }
        Ok(())
    }

    /// Charges an upload's bytes to the caller's day.
    pub async fn charge_upload(&self, principal: &Principal, bytes: u64) {
        self.charge(principal, "upload_bytes", bytes, DAY).await;
    }

    /// Every limit with what the caller used of it.
    pub async fn report(&self, principal: &Principal) -> Result<Vec<QuotaUse>> {
        let c = &self.config;
        let limits: [(&str, &str, u64, Duration); 5] = [
            ("chat_requests_per_minute", "chat", u64::from(c.chat_requests_per_minute), MINUTE),
            ("concurrent_streams", "streams", u64::from(c.concurrent_streams), STREAM_WINDOW),
            ("tokens_per_day", "tokens", c.tokens_per_day, DAY),
            ("uploads_per_hour", "uploads", u64::from(c.uploads_per_hour), HOUR),
            ("upload_bytes_per_day", "upload_bytes", c.upload_bytes_per_day, DAY),
        ];
        let mut out = Vec::new();
        for (quota, counter, limit, window) in limits {
            // The counter nearest its own limit is the one the caller meets first.
            let mut shown = (limit, 0, Duration::ZERO);
            let mut nearest = -1.0_f64;
            for subject in subjects(principal) {
                let own_limit =
                    if counter == "tokens" { self.token_limit(principal, &subject) } else { limit };
                let tally = self.limiter.add(&format!("quota:{counter}:{subject}"), 0, window).await?;
                let share = if own_limit == 0 { 0.0 } else { tally.count as f64 / own_limit as f64 };
                if share > nearest {
                    nearest = share;
                    shown = (own_limit, tally.count, tally.resets_in);
                }
            }
            let (limit, used, resets_in) = shown;
            out.push(QuotaUse { quota: quota.to_owned(), limit, used, resets_in_secs: resets_in.as_secs() });
        }
        Ok(out)
    }

    /// The day's token limit for one counter subject: the quota, or for the key a budget
    /// of its own when that is lower.
    fn token_limit(&self, principal: &Principal, subject: &str) -> u64 {
        let quota = self.config.tokens_per_day;
        match principal.key_token_budget {
            Some(budget) if subject.starts_with("key:") && (quota == 0 || budget < quota) => budget,
            _ => quota,
        }
    }

    async fn within(&self, what: &str, key: &str, limit: u64, window: Duration) -> Result<()> {
        if limit == 0 {
            return Ok(());
        }
        let tally = self.limiter.add(key, 0, window).await?;
        if tally.count >= limit { Err(refused(what, tally.resets_in)) } else { Ok(()) }
    }

    async fn charge(&self, principal: &Principal, counter: &str, amount: u64, window: Duration) {
        let amount = i64::try_from(amount).unwrap_or(i64::MAX);
        for subject in subjects(principal) {
            if let Err(err) = self.limiter.add(&format!("quota:{counter}:{subject}"), amount, window).await {
                tracing::warn!(error = %err, counter, "charging a quota failed");
            }
        }
    }
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas").field("config", &self.config).finish_non_exhaustive()
    }
}

//! One call to one deployment, from its start to its outcome: keeps the in-flight count,
//! the breaker permit, latency, usage and error counters consistent however the call ends.

use std::sync::Arc;
use std::time::Duration;

use amp_core::{Error, Usage};
use tokio::time::Instant;

use super::circuit_breaker::Permit;
use super::table::DeploymentSlot;

/// How long a deployment that answered 429 without `Retry-After` is left alone.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(1);

/// A call in flight. Dropping it without an outcome (the caller went away) gives the
/// breaker permit back without counting a success or a failure.
pub(crate) struct InFlight {
    pub(crate) slot: Arc<DeploymentSlot>,
    permit: Permit,
    started: Instant,
    settled: bool,
}

impl InFlight {
    pub(crate) fn start(slot: Arc<DeploymentSlot>, permit: Permit) -> Self {
        slot.metrics.started();
        InFlight { slot, permit, started: Instant::now(), settled: false }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The first token arrived (or the whole answer, unstreamed).
    pub(crate) fn first_token(&self) {
        self.slot.observe_first_token(self.elapsed());
    }

    pub(crate) fn succeeded(mut self, usage: Option<Usage>) {
        self.settled = true;
        let slot = &self.slot;
        let state = slot.breaker.record_success(Instant::now(), self.permit);
        slot.metrics.breaker(state);
        let usage = usage.unwrap_or_default();
        slot.usage.record(Instant::now(), 0, u64::from(usage.completion_tokens));
        slot.metrics.succeeded(self.elapsed(), usage.prompt_tokens, usage.completion_tokens);
        slot.metrics.ended();
    }

    /// Records a failed call. Failures that say nothing about the deployment's health (the
    /// request was refused as bad, or did not fit the context window) do not count toward
    /// its breaker.
    pub(crate) fn failed(mut self, err: &Error) {
        self.settled = true;
        let slot = &self.slot;
        let now = Instant::now();
        slot.metrics.failed(err.kind());
        slot.metrics.ended();
        if super::attempt::Attempt::is_bad_request(err) || matches!(err, Error::ContextWindowExceeded { .. })
        {
            slot.breaker.release(self.permit);
            return;
        }
        if let Some(wait) = err.retry_after() {
            slot.cool_down(now, wait);
        } else if matches!(err, Error::RateLimited { .. } | Error::Upstream { status: Some(429), .. }) {
            slot.cool_down(now, DEFAULT_COOLDOWN);
        }
        let state = slot.breaker.record_failure(now, self.permit);
        slot.metrics.breaker(state);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.settled {
            self.slot.breaker.release(self.permit);
            self.slot.metrics.ended();
        }
    }
}

//! Choosing one deployment of a model: skip the ones that cannot take the call now, then
//! apply the model's strategy to the rest.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use amp_core::LoadBalanceStrategy;
use tokio::time::Instant;

use super::circuit_breaker::Permit;
use super::table::{DeploymentSlot, ModelEntry};

/// Why a model had no deployment to offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unavailable {
    /// Human-readable, for the attempt list (`circuit open on 2, rpm limit on 1`).
    pub(crate) reason: String,
    /// Every deployment was held back by rpm/tpm limits or `Retry-After`, not by faults.
    pub(crate) rate_limited: bool,
    /// The soonest any of them may be tried again.
    pub(crate) retry_after: Option<Duration>,
}

/// Picks a deployment of `entry` for a call of about `tokens` tokens and takes its breaker
/// permit. Deployments in `tried` (already failed for this request) are used only when
/// nothing else is left.
pub(crate) fn choose(
    entry: &ModelEntry,
    now: Instant,
    tokens: u64,
    tried: &[Arc<DeploymentSlot>],
) -> Result<(Arc<DeploymentSlot>, Permit), Unavailable> {
    let (mut open, mut limited, mut cooling) = (0, 0, 0);
    let mut soonest: Option<Duration> = None;
    let mut fresh = Vec::with_capacity(entry.deployments.len());
    let mut retried = Vec::new();
    for slot in &entry.deployments {
        let wait = slot.cooling_for(now);
        if !wait.is_zero() {
            cooling += 1;
            soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
            continue;
        }
        if !slot.breaker.is_available(now) {
            open += 1;
            let wait = slot.breaker.retry_in(now);
            soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
            continue;
        }
        let Some(headroom) = slot.usage.headroom(now, slot.config.rpm, slot.config.tpm, tokens) else {
            limited += 1;
            continue;
        };
        if tried.iter().any(|t| Arc::ptr_eq(t, slot)) {
            retried.push((slot, headroom));
        } else {
            fresh.push((slot, headroom));
        }
    }
    let mut candidates = if fresh.is_empty() { retried } else { fresh };
    while !candidates.is_empty() {
        let index = pick(entry, &candidates);
        let (slot, _) = candidates.swap_remove(index);
        // Another request may have taken the half-open probe since the check above.
        if let Some(permit) = slot.breaker.try_acquire(now) {
            return Ok((slot.clone(), permit));
        }
        open += 1;
    }
    let mut parts = Vec::new();
    for (n, what) in [
        (open, "circuit open"),
        (limited, "rpm/tpm limit reached"),
        (cooling, "cooling down after Retry-After"),
    ] {
        if n > 0 {
            parts.push(format!("{what} on {n}"));
        }
    }
    Err(Unavailable {
        reason: format!("no deployment available ({})", parts.join(", ")),
        rate_limited: open == 0 && (limited + cooling) > 0,
        retry_after: soonest.or((limited > 0).then_some(Duration::from_secs(1))),
    })
}

/// The index in `candidates` that the model's strategy picks; `candidates` is not empty.
fn pick(entry: &ModelEntry, candidates: &[(&Arc<DeploymentSlot>, f64)]) -> usize {
    let n = candidates.len();
    if n == 1 {
        return 0;
    }
    // A rotating start breaks ties evenly instead of always favouring the first deployment.
    let turn = entry.next.fetch_add(1, Ordering::Relaxed);
    let rotated = |i: usize| (i + turn) % n;
    match entry.spec.strategy {
        LoadBalanceStrategy::RoundRobin => turn % n,
        LoadBalanceStrategy::WeightedRandom => {
            let weight = |i: usize| u64::from(candidates[i].0.weight.load(Ordering::Relaxed).max(1));
            let total: u64 = (0..n).map(weight).sum();
            let mut ticket = fastrand::u64(0..total);
            for i in 0..n {
                let w = weight(i);
                if ticket < w {
                    return i;
                }
                ticket -= w;
            }
            n - 1
        }
        LoadBalanceStrategy::LeastInFlight => {
            (0..n).map(rotated).min_by_key(|&i| candidates[i].0.metrics.in_flight()).unwrap_or(0)
        }
        LoadBalanceStrategy::LowestLatency => {
            // Power of two choices: the faster of two random deployments. An unmeasured
            // deployment (average 0) wins, so each gets measured.
            let a = fastrand::usize(0..n);
            let b = (a + 1 + fastrand::usize(0..n - 1)) % n;
            let latency = |i: usize| candidates[i].0.ttft_ewma_us.load(Ordering::Relaxed);
            if latency(b) < latency(a) { b } else { a }
        }
        LoadBalanceStrategy::UsageBased => (0..n)
            .map(rotated)
            .max_by(|&a, &b| {
                candidates[a]
                    .1
                    .total_cmp(&candidates[b].1)
                    .then(candidates[b].0.metrics.in_flight().cmp(&candidates[a].0.metrics.in_flight()))
            })
            .unwrap_or(0),
    }
}

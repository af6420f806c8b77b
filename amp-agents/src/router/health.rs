//! Active health checks: a one-token request to every remote deployment on an interval,
//! feeding the breakers like real traffic. The in-process local model is left alone: it
//! is either loaded or not, and a probe would only take its single generation slot.

use std::sync::Weak;
use std::time::Duration;

use amp_core::{ChatMessage, ChatRequest, Error, Provider};
use tokio::time::Instant;

use super::Inner;
use super::in_flight::InFlight;

pub(super) async fn run(router: Weak<Inner>, interval: Duration, timeout: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probe = ChatRequest::new(vec![ChatMessage::user("ping")]);
    probe.max_tokens = Some(1);
    loop {
        ticks.tick().await;
        let Some(inner) = router.upgrade() else { return };
        let table = inner.table.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        drop(inner);
        for entry in table.models.values().filter(|e| e.spec.provider != Provider::Local) {
            for slot in &entry.deployments {
                // An open breaker in its cooldown waits for it; otherwise the check takes
                // the permit a request would (the probe, when half-open).
                let Some(permit) = slot.breaker.try_acquire(Instant::now()) else { continue };
                let call = InFlight::start(slot.clone(), permit);
                match tokio::time::timeout(timeout, slot.client.complete(&probe)).await {
                    Ok(Ok(response)) => call.succeeded(response.usage),
                    Ok(Err(err)) => call.failed(&err),
                    Err(_) => call.failed(&Error::Timeout {
                        operation: format!("health check of {}", slot.client.name()),
                        after: timeout,
                    }),
                }
                tracing::debug!(model = %entry.id, deployment = slot.name(), state = ?slot.breaker.state(), "health check");
            }
        }
    }
}

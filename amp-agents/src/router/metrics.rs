//! Per-deployment counters and latency histograms: kept in atomics for
//! `GET /agents/router/metrics`, and mirrored to the `metrics` facade (Prometheus in the
//! server) under `amp_router_*` names labelled by model and deployment.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use amp_core::{ErrorKind, ModelId};
use serde::Serialize;

use super::circuit_breaker::BreakerState;

/// Upper bounds of the latency buckets, in milliseconds; a last bucket takes the rest.
const BOUNDS_MS: [u64; 15] =
    [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000];

/// Every error kind, in the order of the per-kind counters.
const KINDS: [ErrorKind; ErrorKind::ALL.len()] = ErrorKind::ALL;

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BOUNDS_MS.len() + 1],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn record(&self, elapsed: Duration) {
        let ms = elapsed.as_millis() as u64;
        let index = BOUNDS_MS.iter().position(|&b| ms < b).unwrap_or(BOUNDS_MS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencySnapshot {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let count = self.count.load(Ordering::Relaxed);
        let quantile = |q: f64| -> Option<u64> {
            if count == 0 {
                return None;
            }
            let rank = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Some(BOUNDS_MS.get(i).copied().unwrap_or(u64::MAX));
                }
            }
            None
        };
        LatencySnapshot {
            count,
            mean_ms: (count > 0).then(|| self.sum_us.load(Ordering::Relaxed) as f64 / count as f64 / 1_000.0),
            p50_le_ms: quantile(0.50),
            p90_le_ms: quantile(0.90),
            p99_le_ms: quantile(0.99),
            buckets: BOUNDS_MS
                .iter()
                .map(|b| b.to_string())
                .chain(std::iter::once("+Inf".to_owned()))
                .zip(counts)
                .filter(|(_, c)| *c > 0)
                .collect(),
        }
    }
}

/// A latency histogram as JSON: quantiles are bucket upper bounds ("at most this").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySnapshot {
    /// Observations.
    pub count: u64,
    /// Mean in milliseconds.
    pub mean_ms: Option<f64>,
    /// The median is at most this many milliseconds.
    pub p50_le_ms: Option<u64>,
    /// The 90th percentile is at most this many milliseconds.
    pub p90_le_ms: Option<u64>,
    /// The 99th percentile is at most this many milliseconds.
    pub p99_le_ms: Option<u64>,
    /// Non-empty buckets: upper bound in milliseconds → count.
    pub buckets: BTreeMap<String, u64>,
}

/// One deployment's metrics as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentMetricsSnapshot {
    /// Calls sent.
    pub requests: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Failed calls by error kind.
    pub errors: BTreeMap<&'static str, u64>,
    /// Calls running now.
    pub in_flight: u64,
    /// Time to first token (whole answer when not streamed).
    pub time_to_first_token: LatencySnapshot,
    /// Time to the last token.
    pub latency: LatencySnapshot,
    /// Prompt tokens reported by the provider.
    pub prompt_tokens: u64,
    /// Completion tokens reported by the provider.
    pub completion_tokens: u64,
}

/// A deployment's counters, and its handles in the `metrics` facade.
#[derive(Debug)]
pub(crate) struct DeploymentMetrics {
    labels: [(&'static str, String); 2],
    requests: AtomicU64,
    successes: AtomicU64,
    errors: [AtomicU64; KINDS.len()],
    in_flight: AtomicU64,
    ttft: Histogram,
    latency: Histogram,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    facade: Facade,
}

/// Handles registered once, so the hot path does not look metrics up by name.
#[derive(Debug)]
struct Facade {
    requests: metrics::Counter,
    in_flight: metrics::Gauge,
    ttft: metrics::Histogram,
    latency: metrics::Histogram,
    prompt_tokens: metrics::Counter,
    completion_tokens: metrics::Counter,
    breaker: metrics::Gauge,
}

impl DeploymentMetrics {
    pub(crate) fn new(model: &ModelId, deployment: &str) -> Self {
        let labels = [("model", model.as_str().to_owned()), ("deployment", deployment.to_owned())];
        let facade = Facade {
            requests: metrics::counter!("amp_router_requests_total", &labels),
            in_flight: metrics::gauge!("amp_router_in_flight", &labels),
            ttft: metrics::histogram!("amp_router_time_to_first_token_seconds", &labels),
            latency: metrics::histogram!("amp_router_request_duration_seconds", &labels),
            prompt_tokens: metrics::counter!("amp_router_prompt_tokens_total", &labels),
            completion_tokens: metrics::counter!("amp_router_completion_tokens_total", &labels),
            breaker: metrics::gauge!("amp_router_breaker_state", &labels),
        };
        facade.breaker.set(BreakerState::Closed.gauge());
        DeploymentMetrics {
            labels,
            requests: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            errors: Default::default(),
            in_flight: AtomicU64::new(0),
            ttft: Histogram::default(),
            latency: Histogram::default(),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            facade,
        }
    }

    pub(crate) fn started(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.facade.requests.increment(1);
        self.facade.in_flight.increment(1.0);
    }

    pub(crate) fn ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.facade.in_flight.decrement(1.0);
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn first_token(&self, elapsed: Duration) {
        self.ttft.record(elapsed);
        self.facade.ttft.record(elapsed.as_secs_f64());
    }

    pub(crate) fn succeeded(&self, elapsed: Duration, prompt_tokens: u32, completion_tokens: u32) {
        self.successes.fetch_add(1, Ordering::Relaxed);
        self.latency.record(elapsed);
        self.facade.latency.record(elapsed.as_secs_f64());
        self.prompt_tokens.fetch_add(u64::from(prompt_tokens), Ordering::Relaxed);
        self.completion_tokens.fetch_add(u64::from(completion_tokens), Ordering::Relaxed);
        self.facade.prompt_tokens.increment(u64::from(prompt_tokens));
        self.facade.completion_tokens.increment(u64::from(completion_tokens));
    }

    pub(crate) fn failed(&self, kind: ErrorKind) {
        if let Some(i) = KINDS.iter().position(|k| *k == kind) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
        // Errors are the rare path; looking the labelled counter up here is fine.
        let [(m, model), (d, deployment)] = &self.labels;
        metrics::counter!("amp_router_errors_total", *m => model.clone(), *d => deployment.clone(), "kind" => kind.code())
            .increment(1);
    }

    pub(crate) fn breaker(&self, state: BreakerState) {
        self.facade.breaker.set(state.gauge());
    }

    pub(crate) fn snapshot(&self) -> DeploymentMetricsSnapshot {
        DeploymentMetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            successes: self.successes.load(Ordering::Relaxed),
            errors: KINDS
                .iter()
                .zip(&self.errors)
                .map(|(k, c)| (k.code(), c.load(Ordering::Relaxed)))
                .filter(|(_, c)| *c > 0)
                .collect(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            time_to_first_token: self.ttft.snapshot(),
            latency: self.latency.snapshot(),
            prompt_tokens: self.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: self.completion_tokens.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_bucket_upper_bounds() {
        let h = Histogram::default();
        for _ in 0..98 {
            h.record(Duration::from_micros(700));
        }
        h.record(Duration::from_millis(40));
        h.record(Duration::from_millis(400));
        let s = h.snapshot();
        assert_eq!((s.count, s.p50_le_ms, s.p90_le_ms, s.p99_le_ms), (100, Some(1), Some(1), Some(50)));
        assert_eq!(s.buckets["1"], 98);
        assert_eq!(s.buckets["500"], 1);
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let m = DeploymentMetrics::new(&ModelId::new("m"), "d");
        m.started();
        m.failed(ErrorKind::Timeout);
        m.ended();
        let s = m.snapshot();
        assert_eq!((s.requests, s.in_flight, s.errors["timeout"]), (1, 0, 1));
    }
}

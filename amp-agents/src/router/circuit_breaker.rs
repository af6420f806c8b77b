//! A circuit breaker per deployment: closed → open on failures → half-open probe → closed.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use amp_core::BreakerConfig;
use serde::Serialize;
use tokio::time::Instant;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// The deployment is skipped until the cooldown ends.
    Open,
    /// The cooldown ended; one probe decides.
    HalfOpen,
}

impl BreakerState {
    /// The gauge value exported in metrics: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

/// What a caller holds while its call runs: a normal call, or the half-open probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    Normal,
    Probe,
}

/// A breaker's state as `GET /agents/router/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    /// Where it stands.
    pub state: BreakerState,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Calls in the rolling window.
    pub window_requests: u32,
    /// Failed calls in the rolling window.
    pub window_errors: u32,
    /// For an open breaker: milliseconds until its probe may go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    /// How many times it has opened.
    pub times_opened: u64,
}

/// Counts of one second of the rolling window.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: u64,
    calls: u32,
    errors: u32,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    /// One bucket per second of the window, indexed by `second % len`.
    buckets: Vec<Bucket>,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
    times_opened: u64,
}

/// A circuit breaker (see [`BreakerConfig`] for when it opens and closes).
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    epoch: Instant,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config,
            epoch: Instant::now(),
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                buckets: vec![Bucket::default(); config.window_secs.max(1) as usize],
                opened_at: None,
                probe_in_flight: false,
                times_opened: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is a few counters that every update leaves consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cooldown(&self) -> Duration {
        Duration::from_millis(self.config.cooldown_ms)
    }

    /// Whether a call could be let through now, without taking a permit.
    pub(crate) fn is_available(&self, now: Instant) -> bool {
        let inner = self.lock();
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => !inner.probe_in_flight,
            BreakerState::Open => inner.opened_at.is_none_or(|at| now >= at + self.cooldown()),
        }
    }

    /// Takes a permit for one call: always while closed; the single probe once an open
    /// breaker's cooldown has ended; none otherwise.
    pub(crate) fn try_acquire(&self, now: Instant) -> Option<Permit> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Some(Permit::Normal),
            BreakerState::HalfOpen if !inner.probe_in_flight => {
                inner.probe_in_flight = true;
                Some(Permit::Probe)
            }
            BreakerState::HalfOpen => None,
            BreakerState::Open => {
                if inner.opened_at.is_some_and(|at| now < at + self.cooldown()) {
                    return None;
                }
                inner.state = BreakerState::HalfOpen;
                inner.probe_in_flight = true;
                Some(Permit::Probe)
            }
        }
    }

    /// Records a successful call; a successful probe closes the breaker. Returns the
    /// state after it.
    pub(crate) fn record_success(&self, now: Instant, permit: Permit) -> BreakerState {
        let mut inner = self.lock();
        self.count(&mut inner, now, false);
        inner.consecutive_failures = 0;
        if permit == Permit::Probe || inner.state == BreakerState::HalfOpen {
            inner.state = BreakerState::Closed;
            inner.probe_in_flight = false;
            inner.opened_at = None;
            // A fresh start: the failures that opened it are history.
            inner.buckets.iter_mut().for_each(|b| *b = Bucket::default());
        }
        inner.state
    }

    /// Records a failed call; opens the breaker when a threshold is crossed, and re-opens
    /// it when the probe fails. Returns the state after it.
    pub(crate) fn record_failure(&self, now: Instant, permit: Permit) -> BreakerState {
        let mut inner = self.lock();
        self.count(&mut inner, now, true);
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        let probe_failed = permit == Permit::Probe || inner.state == BreakerState::HalfOpen;
        let (calls, errors) = self.window(&inner, now);
        let ratio_tripped = calls >= self.config.min_requests.max(1)
            && f64::from(errors) >= self.config.error_ratio * f64::from(calls);
        let streak_tripped = inner.consecutive_failures >= self.config.consecutive_failures;
        if probe_failed || (inner.state == BreakerState::Closed && (ratio_tripped || streak_tripped)) {
            inner.state = BreakerState::Open;
            inner.opened_at = Some(now);
            inner.probe_in_flight = false;
            inner.times_opened += 1;
        }
        inner.state
    }

    /// Gives back a probe whose call ended without telling anything about the deployment
    /// (the caller went away, or the request itself was bad), so another probe may go.
    pub(crate) fn release(&self, permit: Permit) {
        if permit == Permit::Probe {
            let mut inner = self.lock();
            if inner.state == BreakerState::HalfOpen {
                inner.probe_in_flight = false;
            }
        }
    }

    /// How long until an open breaker lets its probe through (zero when not open).
    pub(crate) fn retry_in(&self, now: Instant) -> Duration {
        let inner = self.lock();
        match (inner.state, inner.opened_at) {
            (BreakerState::Open, Some(at)) => (at + self.cooldown()).saturating_duration_since(now),
            _ => Duration::ZERO,
        }
    }

    /// The state as shown to operators.
    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let inner = self.lock();
        let (window_requests, window_errors) = self.window(&inner, now);
        let retry_in_ms = match (inner.state, inner.opened_at) {
            (BreakerState::Open, Some(at)) => {
                Some((at + self.cooldown()).saturating_duration_since(now).as_millis() as u64)
            }
            _ => None,
        };
        BreakerSnapshot {
            state: inner.state,
            consecutive_failures: inner.consecutive_failures,
            window_requests,
            window_errors,
            retry_in_ms,
            times_opened: inner.times_opened,
        }
    }

    /// The state alone.
    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn count(&self, inner: &mut Inner, now: Instant, failed: bool) {
        let second = self.second(now);
        let len = inner.buckets.len() as u64;
        let bucket = &mut inner.buckets[(second % len) as usize];
        if bucket.second != second {
            *bucket = Bucket { second, calls: 0, errors: 0 };
        }
        bucket.calls += 1;
        bucket.errors += u32::from(failed);
    }

    fn window(&self, inner: &Inner, now: Instant) -> (u32, u32) {
        let second = self.second(now);
        let len = inner.buckets.len() as u64;
        inner
            .buckets
            .iter()
            .filter(|b| b.calls > 0 && second.saturating_sub(b.second) < len)
            .fold((0, 0), |(c, e), b| (c + b.calls, e + b.errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            error_ratio: 0.5,
            min_requests: 10,
            window_secs: 10,
            cooldown_ms: 1_000,
        }
    }

    /// A breaker opened by three failures in a row, and when.
    fn opened() -> (CircuitBreaker, Instant) {
        let breaker = CircuitBreaker::new(config());
        let t0 = Instant::now();
        for _ in 0..3 {
            breaker.record_failure(t0, Permit::Normal);
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        (breaker, t0)
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_and_half_opens_after_cooldown() {
        let breaker = CircuitBreaker::new(config());
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(breaker.record_failure(t0, Permit::Normal), BreakerState::Closed);
        }
        assert_eq!(breaker.record_failure(t0, Permit::Normal), BreakerState::Open);
        assert!(!breaker.is_available(t0));
        assert_eq!(breaker.try_acquire(t0 + Duration::from_millis(999)), None);

        let later = t0 + Duration::from_millis(1_000);
        assert!(breaker.is_available(later));
        assert_eq!(breaker.try_acquire(later), Some(Permit::Probe));
        // Only one probe at a time.
        assert_eq!(breaker.try_acquire(later), None);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(breaker.record_success(later, Permit::Probe), BreakerState::Closed);
        assert_eq!(breaker.try_acquire(later), Some(Permit::Normal));
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cooldown() {
        let (breaker, t0) = opened();
        let later = t0 + Duration::from_secs(1);
        let probe = breaker.try_acquire(later).unwrap();
        assert_eq!(breaker.record_failure(later, probe), BreakerState::Open);
        assert_eq!(breaker.retry_in(later), Duration::from_secs(1));
        assert_eq!(breaker.snapshot(later).times_opened, 2);
    }

    #[test]
    fn error_ratio_over_the_window_opens_without_a_streak() {
        let breaker = CircuitBreaker::new(config());
        let t0 = Instant::now();
        // Alternate: never two failures in a row, but half of the calls fail.
        for i in 0..9 {
            if i % 2 == 0 {
                breaker.record_success(t0, Permit::Normal);
            } else {
                assert_eq!(breaker.record_failure(t0, Permit::Normal), BreakerState::Closed);
            }
        }
        // The 10th call makes 5 of 10 failed: the ratio is reached.
        assert_eq!(breaker.record_failure(t0, Permit::Normal), BreakerState::Open);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let breaker = CircuitBreaker::new(BreakerConfig { consecutive_failures: 100, ..config() });
        let t0 = Instant::now();
        for _ in 0..9 {
            breaker.record_failure(t0, Permit::Normal);
        }
        breaker.record_success(t0, Permit::Normal);
        let later = t0 + Duration::from_secs(11);
        assert_eq!(breaker.snapshot(later).window_requests, 0);
        assert_eq!(breaker.record_failure(later, Permit::Normal), BreakerState::Closed);
    }

    #[test]
    fn a_released_probe_lets_the_next_one_through() {
        let (breaker, t0) = opened();
        let later = t0 + Duration::from_secs(1);
        let probe = breaker.try_acquire(later).unwrap();
        breaker.release(probe);
        assert_eq!(breaker.try_acquire(later), Some(Permit::Probe));
    }
}

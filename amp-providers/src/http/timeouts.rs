//! A deployment's timeouts, applied to one call.

use std::future::Future;
use std::time::Duration;

use amp_core::Error;
use amp_core::model::DeploymentTimeouts;
use tokio::time::Instant;

/// Longer than any call should live; larger configured values are clamped to it so that
/// deadline arithmetic cannot overflow.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The stages of a call, each with its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutStage {
    /// Establishing the TCP (and TLS) connection.
    Connect,
    /// From sending the request to the first token (or to the whole answer, unstreamed).
    FirstToken,
    /// Between two events of a stream.
    Idle,
    /// The whole call.
    Total,
}

impl TimeoutStage {
    /// What was being waited for, as [`Error::Timeout`]'s `operation` says it.
    pub fn describe(self, service: &str) -> String {
        match self {
            TimeoutStage::Connect => format!("connecting to {service}"),
            TimeoutStage::FirstToken => format!("waiting for the first token from {service}"),
            TimeoutStage::Idle => format!("waiting for the next chunk from {service} (idle)"),
            TimeoutStage::Total => format!("the whole call to {service} (total)"),
        }
    }
}

/// A deployment's timeouts as durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTimeouts {
    /// Establishing the connection.
    pub connect: Duration,
    /// Sending the request to the first token.
    pub first_token: Duration,
    /// Between two events of a stream.
    pub idle: Duration,
    /// The whole call.
    pub total: Duration,
}

impl StreamTimeouts {
    /// The limit of one stage.
    pub fn of(&self, stage: TimeoutStage) -> Duration {
        match stage {
            TimeoutStage::Connect => self.connect,
            TimeoutStage::FirstToken => self.first_token,
            TimeoutStage::Idle => self.idle,
            TimeoutStage::Total => self.total,
        }
    }
}

impl From<&DeploymentTimeouts> for StreamTimeouts {
    fn from(t: &DeploymentTimeouts) -> Self {
        let ms = |v: u64| Duration::from_millis(v).min(FOREVER);
        StreamTimeouts {
            connect: ms(t.connect_ms),
            first_token: ms(t.first_token_ms),
            idle: ms(t.idle_ms),
            total: ms(t.total_ms),
        }
    }
}

/// The deadlines of one call, started when the request is sent.
///
/// Until the first token only the first-token and total limits apply (a model may think
/// for a while before it says anything); after it, each event must follow the previous
/// one within the idle limit.
#[derive(Debug, Clone)]
pub struct StreamClock {
    timeouts: StreamTimeouts,
    started: Instant,
    last_event: Instant,
    got_token: bool,
}

impl StreamClock {
    /// Starts the clock now.
    pub fn start(timeouts: StreamTimeouts) -> Self {
        let now = Instant::now();
        StreamClock { timeouts, started: now, last_event: now, got_token: false }
    }

    /// The configured limits.
    pub fn timeouts(&self) -> &StreamTimeouts {
        &self.timeouts
    }

    /// The next deadline and the stage it belongs to.
    pub fn deadline(&self) -> (Instant, TimeoutStage) {
        let total = self.started + self.timeouts.total;
        let (next, stage) = if self.got_token {
            (self.last_event + self.timeouts.idle, TimeoutStage::Idle)
        } else {
            (self.started + self.timeouts.first_token, TimeoutStage::FirstToken)
        };
        if total <= next { (total, TimeoutStage::Total) } else { (next, stage) }
    }

    /// Notes that the upstream sent something; `is_token` when it was part of the answer.
    pub fn record(&mut self, is_token: bool) {
        self.last_event = Instant::now();
        self.got_token |= is_token;
    }

    /// Runs `fut` until the next deadline.
    pub async fn run<F: Future>(&self, fut: F) -> Result<F::Output, TimeoutStage> {
        let (deadline, stage) = self.deadline();
        tokio::time::timeout_at(deadline, fut).await.map_err(|_| stage)
    }

    /// The error for a stage that ran out, naming the stage and the upstream.
    pub fn error(&self, stage: TimeoutStage, service: &str) -> Error {
        Error::Timeout { operation: stage.describe(service), after: self.timeouts.of(stage) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(first_token: u64, idle: u64, total: u64) -> StreamTimeouts {
        StreamTimeouts::from(&DeploymentTimeouts {
            connect_ms: 1_000,
            first_token_ms: first_token,
            idle_ms: idle,
            total_ms: total,
        })
    }

    #[test]
    fn first_token_then_idle_then_total_govern_the_deadline() {
        let mut clock = StreamClock::start(timeouts(1_000, 100, 5_000));
        assert_eq!(clock.deadline().1, TimeoutStage::FirstToken);
        clock.record(false);
        assert_eq!(clock.deadline().1, TimeoutStage::FirstToken, "a role-only chunk is not a token");
        clock.record(true);
        assert_eq!(clock.deadline().1, TimeoutStage::Idle);

        let mut near_the_end = StreamClock::start(timeouts(1_000, 10_000, 5_000));
        near_the_end.record(true);
        assert_eq!(near_the_end.deadline().1, TimeoutStage::Total);
    }

    #[tokio::test]
    async fn run_reports_the_stage_that_ran_out() {
        let clock = StreamClock::start(timeouts(50, 100, 5_000));
        let out = clock.run(std::future::pending::<()>()).await;
        assert_eq!(out, Err(TimeoutStage::FirstToken));
        let err = clock.error(TimeoutStage::FirstToken, "openai:x");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("first token from openai:x"), "{err}");
    }

    #[test]
    fn absurd_limits_are_clamped() {
        let t = timeouts(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(t.total, FOREVER);
        let clock = StreamClock::start(t);
        let _ = clock.deadline();
    }
}

//! The open-loop load generator.
//!
//! Request `i` of a run is due at `t0 + i / rate`, whatever happened to earlier requests,
//! and its latency runs from that due time to the last byte of the answer. A target that
//! stalls therefore shows its stall in every request that was due meanwhile, instead of
//! quietly slowing the generator down (coordinated omission).
//!
//! The calling thread dispatches: it sleeps with `std::thread::sleep`, whose wake-ups on
//! Linux are tens of microseconds late rather than the millisecond of tokio's timer
//! wheel, and spawns one task per request onto the client runtime.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::Client;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::runtime::Handle;

/// The chat request sent to both targets: small, non-streaming, so the measurement is of
/// the platform rather than of the model.
pub const CHAT_BODY: &str =
    r#"{"model":"mock","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}"#;

/// Slowest latency the histograms keep exactly; slower ones are recorded as this.
const HIGHEST_MICROS: u64 = 120_000_000;

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Target {
    /// Short name in reports (`direct`, `AMP`).
    pub name: String,
    /// The full URL of the chat completions endpoint.
    pub url: String,
    authorization: Option<HeaderValue>,
}

impl Target {
    /// A target, with `Authorization: Bearer <api_key>` on every request when a key is given.
    pub fn new(name: &str, url: String, api_key: Option<&str>) -> Result<Target, String> {
        let authorization = match api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| "the API key is not a valid header value".to_owned())?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Target { name: name.to_owned(), url, authorization })
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The target's name.
    pub target: String,
    /// The rate asked for, per second.
    pub rate: u32,
    /// The measured duration asked for.
    pub duration: Duration,
    /// Requests due in the run.
    pub scheduled: u64,
    /// Answers with a 2xx status and a complete body.
    pub ok: u64,
    /// Everything else: non-2xx, transport errors, time-outs, requests over the in-flight cap.
    pub errors: u64,
    /// Errors by kind (`HTTP 503`, `timeout`, ...).
    pub failures: BTreeMap<String, u64>,
    /// Latencies of the successful requests, microseconds from due time to last byte.
    pub latencies: Histogram<u64>,
    /// From the first due time to the last answer.
    pub span: Duration,
    /// How late the dispatcher sent requests (p99, microseconds): a large value means the
    /// generator, not the target, was the bottleneck.
    pub send_lag_p99_micros: u64,
}

impl Outcome {
    /// Successful answers per second over the run (or over the time the answers took to
    /// arrive, when that was longer).
    pub fn achieved_rate(&self) -> f64 {
        let secs = self.span.max(self.duration).as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    /// A latency percentile of the successful requests, in microseconds (0 when none).
    pub fn percentile(&self, quantile: f64) -> u64 {
        if self.latencies.is_empty() { 0 } else { self.latencies.value_at_quantile(quantile) }
    }

    /// The slowest successful request, in microseconds.
    pub fn max(&self) -> u64 {
        if self.latencies.is_empty() { 0 } else { self.latencies.max() }
    }
}

/// Counts and latencies, shared by the request tasks of one run.
struct Tally {
    latencies: Mutex<Histogram<u64>>,
    failures: Mutex<BTreeMap<String, u64>>,
    ok: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicUsize,
    /// Nanoseconds from `t0` to the latest answer.
    last_answer_nanos: AtomicU64,
}

impl Tally {
    fn fail(&self, kind: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self.failures.lock().unwrap_or_else(PoisonError::into_inner).entry(kind).or_default() += 1;
    }
}

/// Sends requests at fixed rates with one keep-alive HTTP/1.1 connection pool.
pub struct Generator {
    client: Client,
    runtime: Handle,
    max_in_flight: usize,
    timeout: Duration,
    stop: Arc<AtomicBool>,
}

impl Generator {
    /// A generator spawning onto `runtime`; `stop` ends a run early (Ctrl-C).
    pub fn new(
        client: Client,
        runtime: Handle,
        max_in_flight: usize,
        timeout: Duration,
        stop: Arc<AtomicBool>,
    ) -> Generator {
        Generator { client, runtime, max_in_flight, timeout, stop }
    }

    /// Sends one request and requires a 2xx answer; the error shows what came back, so a
    /// missing route or a bad key is reported before any load is sent.
    pub fn preflight(&self, target: &Target) -> Result<String, String> {
        let request = self.request(target);
        self.runtime.block_on(async move {
            let started = Instant::now();
            let response = request.send().await.map_err(|e| format!("{}: {e}", target.url))?;
            let status = response.status();
            let body =
                response.bytes().await.map_err(|e| format!("{}: reading the body: {e}", target.url))?;
            let text = String::from_utf8_lossy(&body);
            let excerpt: String = text.chars().take(300).collect();
            if status.is_success() {
                Ok(format!("HTTP {status}, {} bytes in {:?}: {excerpt}", body.len(), started.elapsed()))
            } else {
                Err(format!("{} answered HTTP {status}: {excerpt}", target.url))
            }
        })
    }

    /// Sends `rate` requests per second to `target` for `duration`, then waits for the
    /// outstanding ones (at most the request time-out). Must not be called from inside
    /// the runtime.
    pub fn run(&self, target: &Target, rate: u32, duration: Duration) -> Result<Outcome, String> {
        let scheduled = u64::from(rate) * duration.as_secs();
        let tally = Arc::new(Tally {
            latencies: Mutex::new(histogram()?),
            failures: Mutex::new(BTreeMap::new()),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_answer_nanos: AtomicU64::new(0),
        });
        let mut send_lag = histogram()?;
        // A short lead so the first requests are not already late when the loop starts.
        let t0 = Instant::now() + Duration::from_millis(5);
        for i in 0..scheduled {
            if self.stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            let due = t0 + due_offset(i, rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            send_lag.saturating_record(micros(Instant::now().saturating_duration_since(due)));
            if tally.in_flight.load(Ordering::Relaxed) >= self.max_in_flight {
                tally.fail("over the in-flight cap".into());
                continue;
            }
            tally.in_flight.fetch_add(1, Ordering::Relaxed);
            self.runtime.spawn(send(self.request(target), due, t0, tally.clone()));
        }
        self.drain(&tally)?;
        let latencies = std::mem::replace(
            &mut *tally.latencies.lock().unwrap_or_else(PoisonError::into_inner),
            histogram()?,
        );
        let failures = std::mem::take(&mut *tally.failures.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(Outcome {
            target: target.name.clone(),
            rate,
            duration,
            scheduled,
            ok: tally.ok.load(Ordering::Relaxed),
            errors: tally.failed.load(Ordering::Relaxed),
            failures,
            latencies,
            span: Duration::from_nanos(tally.last_answer_nanos.load(Ordering::Relaxed)),
            send_lag_p99_micros: send_lag.value_at_quantile(0.99),
        })
    }

    /// Waits for the requests still in flight; each has the client's time-out, so this
    /// ends within it (plus a margin for the tasks to be scheduled).
    fn drain(&self, tally: &Tally) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout + Duration::from_secs(2);
        while tally.in_flight.load(Ordering::Relaxed) > 0 {
            if self.stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            if Instant::now() > deadline {
                let stuck = tally.in_flight.load(Ordering::Relaxed);
                return Err(format!("{stuck} requests outlived their time-out; the client runtime is stuck"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn request(&self, target: &Target) -> reqwest::RequestBuilder {
        let mut request =
            self.client.post(&target.url).header(CONTENT_TYPE, "application/json").body(CHAT_BODY);
        if let Some(authorization) = &target.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        request
    }
}

/// One request: its latency counts from `due`, not from when it was actually sent.
async fn send(request: reqwest::RequestBuilder, due: Instant, t0: Instant, tally: Arc<Tally>) {
    let result = async {
        let response = request.send().await?;
        let status = response.status();
        response.bytes().await?;
        Ok::<_, reqwest::Error>(status)
    }
    .await;
    let finished = Instant::now();
    match result {
        Ok(status) if status.is_success() => {
            tally.ok.fetch_add(1, Ordering::Relaxed);
            tally
                .latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .saturating_record(micros(finished.saturating_duration_since(due)));
        }
        Ok(status) => tally.fail(format!("HTTP {}", status.as_u16())),
        Err(err) => tally.fail(classify(&err)),
    }
    let since_t0 = u64::try_from(finished.saturating_duration_since(t0).as_nanos()).unwrap_or(u64::MAX);
    tally.last_answer_nanos.fetch_max(since_t0, Ordering::Relaxed);
    tally.in_flight.fetch_sub(1, Ordering::Relaxed);
}

/// A short, stable name for a transport error, so errors can be counted by kind.
fn classify(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_body() || err.is_decode() {
        "body"
    } else if err.is_request() {
        "request"
    } else {
        "transport"
    };
    kind.to_owned()
}

/// When request `i` is due after `t0`, computed from `i` rather than accumulated, so
/// rounding never drifts over a long run.
fn due_offset(i: u64, rate: u32) -> Duration {
    let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).map_err(|e| format!("histogram: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_follow_the_rate_without_drift() {
        assert_eq!(due_offset(0, 1_000), Duration::ZERO);
        assert_eq!(due_offset(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(due_offset(3_000_000, 3), Duration::from_secs(1_000_000));
    }

    #[test]
    fn achieved_rate_counts_the_longer_of_run_and_answers() {
        let mut outcome = Outcome {
            target: "t".into(),
            rate: 100,
            duration: Duration::from_secs(10),
            scheduled: 1_000,
            ok: 1_000,
            errors: 0,
            failures: BTreeMap::new(),
            latencies: histogram().unwrap(),
            span: Duration::from_secs(9),
            send_lag_p99_micros: 0,
        };
        assert!((outcome.achieved_rate() - 100.0).abs() < 1e-9);
        outcome.span = Duration::from_secs(20);
        assert!((outcome.achieved_rate() - 50.0).abs() < 1e-9);
    }
}

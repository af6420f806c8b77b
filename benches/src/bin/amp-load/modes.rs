//! The measurements: `compare`, `max` and `soak`, each printing progress as it goes and
//! adding its section to the report.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::cli::{CompareArgs, MaxArgs, SoakArgs};
use crate::generator::{Generator, Outcome, Target};
use crate::report::{self, Report, Sample};
use crate::rss;
use crate::upstream::Upstream;

/// Below this share of the asked rate, a `max` step is not held.
const HELD_SHARE: f64 = 0.97;
/// A dispatcher p99 lag above this means the harness, not AMP, may have been the limit.
const SEND_LAG_WARNING_MICROS: u64 = 1_000;

/// The targets and the generator, shared by every mode.
pub struct Bench<'a> {
    /// Sends the load.
    pub generator: Generator,
    /// The mock upstream (its counters show AMP really called it).
    pub upstream: &'a Upstream,
    /// The mock's chat completions endpoint.
    pub direct: Target,
    /// AMP's chat completions endpoint, with the API key.
    pub amp: Target,
    /// Unmeasured load before each measured run.
    pub warmup: Duration,
    /// The process whose memory `soak` samples.
    pub server_pid: Option<u32>,
}

impl Bench<'_> {
    /// For each rate, the upstream directly and then through AMP.
    pub fn compare(&self, args: &CompareArgs, report: &mut Report) -> Result<(), String> {
        println!("== compare: rates {:?} req/s, {} s per target and rate", args.rates, args.secs);
        self.preflight(&self.direct)?;
        self.preflight(&self.amp)?;
        let mut pairs = Vec::new();
        for &rate in &args.rates {
            println!("-- {rate} req/s");
            let direct = self.measure(&self.direct, rate, args.secs)?;
            let amp = self.measure(&self.amp, rate, args.secs)?;
            println!(
                "   added by AMP: p50 {} ms, p90 {} ms, p99 {} ms",
                report::signed_ms(report::added(&direct, &amp, 0.5)),
                report::signed_ms(report::added(&direct, &amp, 0.9)),
                report::signed_ms(report::added(&direct, &amp, 0.99)),
            );
            pairs.push((direct, amp));
        }
        report.compare(&pairs);
        Ok(())
    }

    /// Steps the rate up until a step is not held; reports the highest one that was.
    pub fn max(&self, args: &MaxArgs, report: &mut Report) -> Result<(), String> {
        println!(
            "== max: from {} to {} req/s in steps of {}, {} s each, p99 limit {} ms",
            args.start, args.until, args.step, args.secs, args.p99_limit_ms
        );
        self.preflight(&self.amp)?;
        let mut steps = Vec::new();
        let mut best: Option<Outcome> = None;
        let mut rate = args.start;
        while rate <= args.until {
            let outcome = self.measure(&self.amp, rate, args.secs)?;
            let failure = step_failure(&outcome, args.p99_limit_ms);
            let verdict = failure.clone().unwrap_or_else(|| "held".to_owned());
            let verdict = if outcome.send_lag_p99_micros > SEND_LAG_WARNING_MICROS {
                format!(
                    "{verdict} (harness lagging: send lag p99 {} ms)",
                    report::ms(outcome.send_lag_p99_micros)
                )
            } else {
                verdict
            };
            println!("   step {rate} req/s: {verdict}");
            steps.push((outcome.clone(), verdict));
            if failure.is_some() {
                break;
            }
            best = Some(outcome);
            rate = rate.saturating_add(args.step);
        }
        println!("   {}", report::highest_held(best.as_ref()));
        report.max(&steps, best.as_ref(), args.p99_limit_ms);
        Ok(())
    }

    /// Holds one rate against AMP while sampling the server's resident memory.
    pub fn soak(&self, args: &SoakArgs, report: &mut Report) -> Result<(), String> {
        println!(
            "== soak: {} req/s for {} s, memory sampled every {} s",
            args.rate, args.secs, args.sample_secs
        );
        self.preflight(&self.amp)?;
        let idle = self.server_pid.and_then(rss::resident_kib);
        if let Some(kib) = idle {
            println!("   VmRSS before the load: {} MiB", report::mib(kib));
        }
        if self.server_pid.is_none() {
            println!("   no server process to sample (give --pid with --amp-url); measuring latency only");
        }
        if !self.warmup.is_zero() {
            self.generator.run(&self.amp, args.rate, self.warmup)?;
        }
        let (stop_sampling, stopped) = mpsc::channel::<()>();
        let sampler = self.server_pid.map(|pid| {
            let every = Duration::from_secs(args.sample_secs);
            std::thread::spawn(move || sample_memory(pid, every, &stopped))
        });
        let outcome = self.generator.run(&self.amp, args.rate, Duration::from_secs(args.secs));
        drop(stop_sampling);
        let samples = match sampler {
            Some(thread) => thread.join().map_err(|_| "the memory sampler panicked".to_owned())?,
            None => Vec::new(),
        };
        let outcome = outcome?;
        println!("   {}", report::describe(&outcome));
        let verdict = if samples.is_empty() {
            "not judged: no memory samples".to_owned()
        } else {
            println!("   {}", report::memory_summary(&samples));
            report::flatness(&samples, args.secs)
        };
        println!("   memory: {verdict}");
        report.soak(&outcome, idle, &samples, &verdict);
        Ok(())
    }

    /// A warm-up, then one measured run, printed with the upstream calls it caused.
    fn measure(&self, target: &Target, rate: u32, secs: u64) -> Result<Outcome, String> {
        if !self.warmup.is_zero() {
            self.generator.run(target, rate, self.warmup)?;
        }
        let before = self.upstream.requests();
        let outcome = self.generator.run(target, rate, Duration::from_secs(secs))?;
        let upstream_calls = self.upstream.requests().saturating_sub(before);
        println!("   {} | upstream calls {upstream_calls}", report::describe(&outcome));
        Ok(outcome)
    }

    fn preflight(&self, target: &Target) -> Result<(), String> {
        let answer = self.generator.preflight(target).map_err(|e| {
            let hint = if target.name == "AMP" && e.contains("HTTP 404") {
                " (does this amp-server have the POST /v1/chat/completions route yet?)"
            } else {
                ""
            };
            format!("preflight of {}: {e}{hint}", target.name)
        })?;
        println!("   preflight {} ({}): {answer}", target.name, target.url);
        Ok(())
    }
}

/// Why a `max` step was not held, or `None` when it was.
fn step_failure(o: &Outcome, p99_limit_ms: u64) -> Option<String> {
    if o.errors > 0 {
        return Some(format!("not held: {} errors", o.errors));
    }
    let floor = HELD_SHARE * f64::from(o.rate);
    if o.achieved_rate() < floor {
        return Some(format!("not held: achieved {:.0}/s, below {floor:.0}/s", o.achieved_rate()));
    }
    let p99 = o.percentile(0.99);
    if p99 > p99_limit_ms * 1_000 {
        return Some(format!("not held: p99 {} ms above {p99_limit_ms} ms", report::ms(p99)));
    }
    None
}

/// Samples `pid`'s resident memory at every multiple of `every` until `stop` is dropped,
/// printing each sample as it is taken, plus one last sample at the end.
fn sample_memory(pid: u32, every: Duration, stop: &mpsc::Receiver<()>) -> Vec<Sample> {
    let start = Instant::now();
    let mut samples = Vec::new();
    let take = |samples: &mut Vec<Sample>| {
        let t = start.elapsed().as_secs_f64();
        if let Some(kib) = rss::resident_kib(pid) {
            println!("   t={t:>6.1} s  VmRSS {} MiB", report::mib(kib));
            samples.push((t, kib));
        }
    };
    let mut tick: u32 = 0;
    loop {
        take(&mut samples);
        tick += 1;
        let next = start + every * tick;
        match stop.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // The run usually ends just after a tick; a second sample that close adds nothing.
    if samples.last().is_none_or(|(t, _)| start.elapsed().as_secs_f64() - t > 0.5) {
        take(&mut samples);
    }
    samples
}

//! Human-readable progress lines and the closing Markdown, ready for `benches/RESULTS.md`.

use std::fmt::Write as _;

use crate::generator::Outcome;

/// A memory sample: seconds since the measured load began, and resident KiB.
pub type Sample = (f64, u64);

/// Collects the Markdown sections of one invocation.
pub struct Report {
    header: String,
    sections: Vec<String>,
}

impl Report {
    /// A report headed by the command and the machine it ran on.
    pub fn new(command: &str, machine: &str) -> Report {
        Report { header: format!("Command: `{command}`\nMachine: {machine}\n"), sections: Vec::new() }
    }

    /// `compare`: per rate, the direct and AMP rows and what AMP added.
    pub fn compare(&mut self, pairs: &[(Outcome, Outcome)]) {
        let mut s = String::from("### AMP vs the upstream directly (`compare`)\n\n");
        s.push_str(
            "| rate (req/s) | target | secs | ok | errors | achieved (req/s) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |\n",
        );
        s.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (direct, amp) in pairs {
            for o in [direct, amp] {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} |",
                    o.rate,
                    o.target,
                    o.duration.as_secs(),
                    o.ok,
                    o.errors,
                    o.achieved_rate(),
                    ms(o.percentile(0.5)),
                    ms(o.percentile(0.9)),
                    ms(o.percentile(0.99)),
                    ms(o.max()),
                );
            }
            let _ = writeln!(
                s,
                "| {} | **added by AMP** | | | | | **{}** | {} | **{}** | |",
                amp.rate,
                signed_ms(added(direct, amp, 0.5)),
                signed_ms(added(direct, amp, 0.9)),
                signed_ms(added(direct, amp, 0.99)),
            );
        }
        self.sections.push(s);
    }

    /// `max`: each step with its verdict, and the highest rate held.
    pub fn max(&mut self, steps: &[(Outcome, String)], best: Option<&Outcome>, p99_limit_ms: u64) {
        let mut s = String::from("### Highest sustained rate through AMP (`max`)\n\n");
        let _ = writeln!(
            s,
            "A step is held with 0 errors, at least 97 % of the rate achieved, and p99 ≤ {p99_limit_ms} ms.\n"
        );
        s.push_str("| rate (req/s) | secs | ok | errors | achieved (req/s) | p50 (ms) | p99 (ms) | max (ms) | verdict |\n");
        s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for (o, verdict) in steps {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {verdict} |",
                o.rate,
                o.duration.as_secs(),
                o.ok,
                o.errors,
                o.achieved_rate(),
                ms(o.percentile(0.5)),
                ms(o.percentile(0.99)),
                ms(o.max()),
            );
        }
        s.push('\n');
        s.push_str(&highest_held(best));
        s.push('\n');
        self.sections.push(s);
    }

    /// `soak`: the load's latencies, the memory series and the flatness verdict.
    pub fn soak(&mut self, outcome: &Outcome, idle_kib: Option<u64>, samples: &[Sample], verdict: &str) {
        let mut s = String::from("### Memory under sustained load (`soak`)\n\n");
        let _ = writeln!(s, "{}\n", describe(outcome));
        if let Some(idle) = idle_kib {
            let _ = writeln!(s, "Resident memory before the load: {} MiB.\n", mib(idle));
        }
        if !samples.is_empty() {
            s.push_str("| t (s) | VmRSS (MiB) |\n|---:|---:|\n");
            for (t, kib) in samples {
                let _ = writeln!(s, "| {t:.0} | {} |", mib(*kib));
            }
            s.push('\n');
            let _ = writeln!(s, "{}\n", memory_summary(samples));
        }
        let _ = writeln!(s, "Verdict: {verdict}");
        self.sections.push(s);
    }

    /// Prints the collected Markdown.
    pub fn print(&self) {
        println!();
        println!("---- Markdown for benches/RESULTS.md ----");
        println!();
        println!("{}", self.header);
        for section in &self.sections {
            println!("{section}");
        }
    }
}

/// One line about a run, for progress output and the soak section.
pub fn describe(o: &Outcome) -> String {
    let mut line = format!(
        "{:<6} {:>6} req/s x {:>3} s: due {}, ok {}, errors {}, achieved {:.1}/s | p50 {} p90 {} p99 {} max {} ms | send lag p99 {} ms",
        o.target,
        o.rate,
        o.duration.as_secs(),
        o.scheduled,
        o.ok,
        o.errors,
        o.achieved_rate(),
        ms(o.percentile(0.5)),
        ms(o.percentile(0.9)),
        ms(o.percentile(0.99)),
        ms(o.max()),
        ms(o.send_lag_p99_micros),
    );
    if !o.failures.is_empty() {
        let kinds: Vec<String> = o.failures.iter().map(|(kind, n)| format!("{kind}: {n}")).collect();
        let _ = write!(line, " | errors by kind: {}", kinds.join(", "));
    }
    line
}

/// The line naming the highest rate held, or saying none was.
pub fn highest_held(best: Option<&Outcome>) -> String {
    match best {
        Some(o) => format!(
            "**Highest rate held: {} req/s** (achieved {:.0}/s, p50 {} ms, p99 {} ms, 0 errors).",
            o.rate,
            o.achieved_rate(),
            ms(o.percentile(0.5)),
            ms(o.percentile(0.99)),
        ),
        None => "**No rate held**: the first step already failed.".to_owned(),
    }
}

/// AMP's percentile minus the direct one, in microseconds.
pub fn added(direct: &Outcome, amp: &Outcome, quantile: f64) -> i64 {
    let d = i64::try_from(direct.percentile(quantile)).unwrap_or(i64::MAX);
    let a = i64::try_from(amp.percentile(quantile)).unwrap_or(i64::MAX);
    a.saturating_sub(d)
}

/// min, max, first and last of a memory series.
pub fn memory_summary(samples: &[Sample]) -> String {
    let values = samples.iter().map(|(_, kib)| *kib);
    let (Some(min), Some(max), Some(first), Some(last)) =
        (values.clone().min(), values.max(), samples.first(), samples.last())
    else {
        return "no memory samples".to_owned();
    };
    format!(
        "VmRSS min {} MiB, max {} MiB, first {} MiB, last {} MiB",
        mib(min),
        mib(max),
        mib(first.1),
        mib(last.1)
    )
}

/// Compares the average of the last minute with that of the second minute (the first
/// holds the warm-up growth of pools and caches); more than 10 % growth is not flat.
pub fn flatness(samples: &[Sample], secs: u64) -> String {
    const THRESHOLD: f64 = 0.10;
    if secs < 180 {
        return "not judged: a run of at least 180 s is needed so the second and last minutes do not overlap"
            .to_owned();
    }
    let end = secs as f64;
    let average = |from: f64, to: f64| {
        let window: Vec<f64> =
            samples.iter().filter(|(t, _)| *t >= from && *t <= to).map(|(_, kib)| *kib as f64).collect();
        if window.is_empty() { None } else { Some(window.iter().sum::<f64>() / window.len() as f64) }
    };
    let (Some(second), Some(last)) = (average(60.0, 120.0), average(end - 60.0, end + 1.0)) else {
        return "not judged: no samples in the second or the last minute".to_owned();
    };
    let growth = (last - second) / second;
    let detail = format!(
        "last-minute average {:.1} MiB vs second-minute average {:.1} MiB ({:+.1} %, threshold {:.0} %)",
        last / 1024.0,
        second / 1024.0,
        growth * 100.0,
        THRESHOLD * 100.0
    );
    if growth <= THRESHOLD { format!("flat: {detail}") } else { format!("GROWING: {detail}") }
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1_000.0)
}

/// Signed microseconds as milliseconds with a sign.
pub fn signed_ms(micros: i64) -> String {
    format!("{:+.2}", micros as f64 / 1_000.0)
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1_024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_memory_is_flat_and_growth_is_flagged() {
        let flat: Vec<Sample> = (0..=30_u32).map(|i| (f64::from(i) * 10.0, 100_000)).collect();
        assert!(flatness(&flat, 300).starts_with("flat"));
        let growing: Vec<Sample> =
            (0..=30_u32).map(|i| (f64::from(i) * 10.0, 100_000 + u64::from(i) * 2_000)).collect();
        assert!(flatness(&growing, 300).starts_with("GROWING"));
        assert!(flatness(&flat, 120).starts_with("not judged"));
    }

    #[test]
    fn milliseconds_have_two_decimals() {
        assert_eq!(ms(1_234), "1.23");
        assert_eq!(signed_ms(-500), "-0.50");
        assert_eq!(signed_ms(250), "+0.25");
    }
}

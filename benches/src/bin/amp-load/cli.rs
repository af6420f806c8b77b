//! Command-line arguments. Every run is bounded: rates, durations and steps have upper
//! limits, so a typo cannot start an hour-long or runaway load.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Longest single measured run, in seconds.
const MAX_SECS: u64 = 3_600;
/// Highest request rate the generator accepts, per second.
const MAX_RATE: u32 = 100_000;

/// Open-loop load against AMP's `POST /v1/chat/completions`, on loopback only.
#[derive(Debug, Parser)]
#[command(name = "amp-load", about)]
pub struct Cli {
    /// What to measure.
    #[command(subcommand)]
    pub mode: Mode,
    /// The amp-server binary to start.
    #[arg(long, global = true, value_name = "PATH", default_value = "target/release/amp-server")]
    pub server_bin: PathBuf,
    /// Measure an already running AMP at this base URL (e.g. `http://127.0.0.1:8080`)
    /// instead of starting one: no server is started and no account is made. `mock` means
    /// the harness's own mock upstream, which checks the harness itself (AMP adds ~0).
    #[arg(long, global = true, hide = true, value_name = "URL")]
    pub amp_url: Option<String>,
    /// The API key for `--amp-url`.
    #[arg(long, global = true, hide = true, env = "AMP_LOAD_API_KEY", value_name = "KEY")]
    pub api_key: Option<String>,
    /// The process whose memory `soak` samples when `--amp-url` is given.
    #[arg(long, global = true, hide = true, value_name = "PID")]
    pub pid: Option<u32>,
    /// Time limit of one request, connect to last body byte.
    #[arg(long, global = true, default_value_t = 5_000, value_name = "MS")]
    pub timeout_ms: u64,
    /// Unmeasured load at the same rate before each measured run (opens the connection pools).
    #[arg(long, global = true, default_value_t = 1, value_name = "SECS")]
    pub warmup_secs: u64,
    /// Requests outstanding at once; one more is counted as an error instead of sent, so an
    /// overloaded target cannot exhaust file descriptors or memory.
    #[arg(long, global = true, default_value_t = 4_096, value_name = "N")]
    pub max_in_flight: usize,
    /// Worker threads of the load generator's runtime (default: one per core).
    #[arg(long, global = true, value_name = "N")]
    pub client_threads: Option<usize>,
    /// How long amp-server may take to answer `GET /readyz` with 200.
    #[arg(long, global = true, default_value_t = 60, value_name = "SECS")]
    pub ready_timeout_secs: u64,
}

/// The measurements.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// For each rate: the mock upstream directly, then through AMP; prints what AMP adds.
    Compare(CompareArgs),
    /// Steps the rate up against AMP until it fails to hold one.
    Max(MaxArgs),
    /// Holds one rate against AMP and samples the server's resident memory.
    Soak(SoakArgs),
    /// `compare`, then `max` (not `soak`).
    All(AllArgs),
}

/// `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Request rates, per second.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 2_000])]
    pub rates: Vec<u32>,
    /// Measured seconds per target and rate.
    #[arg(long, default_value_t = 20)]
    pub secs: u64,
}

/// `max`.
#[derive(Debug, Clone, Args)]
pub struct MaxArgs {
    /// First rate, per second.
    #[arg(long, default_value_t = 3_000)]
    pub start: u32,
    /// Rate added per step.
    #[arg(long, default_value_t = 1_000)]
    pub step: u32,
    /// Measured seconds per step.
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
    /// Last rate tried.
    #[arg(long, default_value_t = 12_000)]
    pub until: u32,
    /// A step whose p99 exceeds this is not held.
    #[arg(long, default_value_t = 100)]
    pub p99_limit_ms: u64,
}

/// `soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Request rate, per second.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u32,
    /// Measured seconds.
    #[arg(long, default_value_t = 600)]
    pub secs: u64,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10)]
    pub sample_secs: u64,
}

/// `all`: the arguments of `compare` and of `max`, the latter prefixed `max-`.
#[derive(Debug, Clone, Args)]
pub struct AllArgs {
    /// `compare`'s request rates, per second.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 2_000])]
    pub rates: Vec<u32>,
    /// `compare`'s measured seconds per target and rate.
    #[arg(long, default_value_t = 20)]
    pub secs: u64,
    /// `max`'s first rate.
    #[arg(long, default_value_t = 3_000)]
    pub max_start: u32,
    /// `max`'s rate added per step.
    #[arg(long, default_value_t = 1_000)]
    pub max_step: u32,
    /// `max`'s measured seconds per step.
    #[arg(long, default_value_t = 10)]
    pub max_secs: u64,
    /// `max`'s last rate tried.
    #[arg(long, default_value_t = 12_000)]
    pub max_until: u32,
    /// `max`'s p99 limit.
    #[arg(long, default_value_t = 100)]
    pub p99_limit_ms: u64,
}

impl AllArgs {
    /// The `compare` part.
    pub fn compare(&self) -> CompareArgs {
        CompareArgs { rates: self.rates.clone(), secs: self.secs }
    }

    /// The `max` part.
    pub fn max(&self) -> MaxArgs {
        MaxArgs {
            start: self.max_start,
            step: self.max_step,
            secs: self.max_secs,
            until: self.max_until,
            p99_limit_ms: self.p99_limit_ms,
        }
    }
}

impl Cli {
    /// Rejects runs that would not be bounded or make no sense, before anything starts.
    pub fn validate(&self) -> Result<(), String> {
        if self.timeout_ms == 0 || self.timeout_ms > 60_000 {
            return Err(format!("--timeout-ms must be between 1 and 60000, not {}", self.timeout_ms));
        }
        if self.warmup_secs > 60 {
            return Err("--warmup-secs must be at most 60".into());
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be above 0".into());
        }
        if self.client_threads == Some(0) {
            return Err("--client-threads must be above 0".into());
        }
        check_secs("--ready-timeout-secs", self.ready_timeout_secs)?;
        match &self.mode {
            Mode::Compare(c) => c.validate(),
            Mode::Max(m) => m.validate(),
            Mode::Soak(s) => s.validate(),
            Mode::All(a) => a.compare().validate().and_then(|()| a.max().validate()),
        }
    }
}

impl CompareArgs {
    fn validate(&self) -> Result<(), String> {
        if self.rates.is_empty() {
            return Err("--rates needs at least one rate".into());
        }
        self.rates.iter().try_for_each(|&r| check_rate("--rates", r))?;
        check_secs("--secs", self.secs)
    }
}

impl MaxArgs {
    fn validate(&self) -> Result<(), String> {
        check_rate("--start", self.start)?;
        check_rate("--until", self.until)?;
        if self.step == 0 {
            return Err("--step must be above 0".into());
        }
        if self.until < self.start {
            return Err(format!("--until {} is below --start {}", self.until, self.start));
        }
        if self.p99_limit_ms == 0 {
            return Err("--p99-limit-ms must be above 0".into());
        }
        check_secs("--secs", self.secs)
    }
}

impl SoakArgs {
    fn validate(&self) -> Result<(), String> {
        check_rate("--rate", self.rate)?;
        check_secs("--secs", self.secs)?;
        if self.sample_secs == 0 || self.sample_secs > self.secs {
            return Err(format!("--sample-secs must be between 1 and --secs ({})", self.secs));
        }
        Ok(())
    }
}

fn check_rate(flag: &str, rate: u32) -> Result<(), String> {
    if rate == 0 || rate > MAX_RATE {
        return Err(format!("{flag}: a rate must be between 1 and {MAX_RATE} per second, not {rate}"));
    }
    Ok(())
}

fn check_secs(flag: &str, secs: u64) -> Result<(), String> {
    if secs == 0 || secs > MAX_SECS {
        return Err(format!("{flag}: must be between 1 and {MAX_SECS} seconds, not {secs}"));
    }
    Ok(())
}

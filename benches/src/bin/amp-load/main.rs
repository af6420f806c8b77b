//! `amp-load`: a bounded, loopback-only load harness for AMP's OpenAI-compatible
//! `POST /v1/chat/completions`.
//!
//! It starts an instant mock OpenAI upstream in-process, starts `amp-server` as a child
//! process configured with one model (`mock`) served by that upstream, signs in like a
//! client (register, log in, create an API key) and sends open-loop load:
//!
//! - `compare --rates 1000,2000 --secs 20`: the upstream directly, then through AMP, at
//!   each rate; what AMP adds at p50 and p99.
//! - `max --start 3000 --step 1000 --secs 10 --until 12000`: the highest rate AMP holds
//!   with 0 errors, ≥ 97 % of the rate achieved and p99 ≤ 100 ms.
//! - `soak --rate 2000 --secs 600 --sample-secs 10`: AMP's resident memory under load.
//! - `all`: `compare`, then `max`.
//!
//! `--amp-url URL [--api-key KEY] [--pid PID]` (hidden) measures an already running AMP
//! instead; `--amp-url mock` points the "AMP" target at the mock upstream as well, which
//! checks the harness itself: the added latency should be about zero. Everything ends on its own: runs, waits and requests all have time limits, and
//! the server child is killed however the harness exits (Ctrl-C included).
//!
//! Run it with `scripts/load.sh [MODE] [ARGS]`, which builds both binaries in release.

#![allow(clippy::print_stdout, reason = "a command-line harness reports on stdout")]

mod auth;
mod cli;
mod generator;
mod modes;
mod report;
mod rss;
mod server;
mod upstream;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use reqwest::Client;

use crate::cli::{Cli, Mode};
use crate::generator::{Generator, Target};
use crate::modes::Bench;
use crate::report::Report;
use crate::server::ServerProcess;
use crate::upstream::Upstream;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = cli.validate() {
        eprintln!("amp-load: {err}");
        return ExitCode::from(2);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("amp-load: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.unwrap_or(cores))
        .thread_name("amp-load-client")
        .enable_all()
        .build()
        .map_err(|e| format!("client runtime: {e}"))?;
    // Ctrl-C ends the current run early, so the guards below stop the server and the mock.
    let stop = Arc::new(AtomicBool::new(false));
    let on_interrupt = stop.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.store(true, Ordering::Relaxed);
        }
    });
    let timeout = Duration::from_millis(cli.timeout_ms);
    let client = Client::builder()
        .http1_only()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;

    let machine = machine(cores, cli.client_threads.unwrap_or(cores));
    println!("amp-load on {machine}");
    let upstream = Upstream::start()?;
    println!("mock upstream at {}", upstream.url());

    // Declared after `upstream`, so dropped before it: the server goes first.
    let (server, amp_url, api_key) = match &cli.amp_url {
        Some(url) if url == "mock" => (None, upstream.url(), cli.api_key.clone()),
        Some(url) => (None, url.trim_end_matches('/').to_owned(), cli.api_key.clone()),
        None => {
            let server = ServerProcess::start(
                &cli.server_bin,
                &upstream.url(),
                Duration::from_secs(cli.ready_timeout_secs),
                &client,
                runtime.handle(),
                &stop,
            )?;
            println!("amp-server (pid {}) ready at {}", server.pid(), server.url());
            let key = runtime.block_on(auth::api_key(&client, &server.url()))?;
            println!("signed in: registered, logged in, created an API key");
            let url = server.url();
            (Some(server), url, Some(key))
        }
    };

    let bench = Bench {
        generator: Generator::new(client, runtime.handle().clone(), cli.max_in_flight, timeout, stop),
        upstream: &upstream,
        direct: Target::new("direct", format!("{}/v1/chat/completions", upstream.url()), None)?,
        amp: Target::new("AMP", format!("{amp_url}/v1/chat/completions"), api_key.as_deref())?,
        warmup: Duration::from_secs(cli.warmup_secs),
        server_pid: server.as_ref().map(ServerProcess::pid).or(cli.pid),
    };
    let command = std::env::args().skip(1).fold(String::from("amp-load"), |line, arg| line + " " + &arg);
    let mut report = Report::new(&command, &machine);
    match &cli.mode {
        Mode::Compare(args) => bench.compare(args, &mut report)?,
        Mode::Max(args) => bench.max(args, &mut report)?,
        Mode::Soak(args) => bench.soak(args, &mut report)?,
        Mode::All(args) => {
            bench.compare(&args.compare(), &mut report)?;
            bench.max(&args.max(), &mut report)?;
        }
    }
    println!("mock upstream: {} requests over {} connections", upstream.requests(), upstream.connections());
    report.print();
    Ok(())
}

/// Cores, CPU model and memory, from `/proc` where present.
fn machine(cores: usize, client_threads: usize) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name").and_then(|rest| rest.split_once(':')))
        .map_or("unknown CPU", |(_, name)| name.trim());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| "unknown memory".to_owned(), |kib| format!("{:.0} GiB", kib as f64 / 1_048_576.0));
    format!(
        "{cores} cores (available_parallelism), {model}, {memory}; load generator {client_threads} \
         threads, mock upstream 1 thread, all on this machine"
    )
}

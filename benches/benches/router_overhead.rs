//! The Router's added latency: the same request to an instant loopback mock deployment,
//! once through the OpenAI client directly and once through the Router, interleaved so both
//! see the same machine state; prints percentiles of each and of the difference (target:
//! < 100 µs added at p99). Criterion reports central estimates only, hence this harness.
//!
//! `cargo bench -p amp-benches --bench router_overhead`

#![allow(clippy::print_stdout, reason = "a bench reports on stdout")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_agents::router::{Router, Target};
use amp_core::{ChatMessage, ChatModel, ChatRequest, ModelRegistryConfig, RouterConfig};
use amp_providers::chat::ProviderFactory;
use amp_providers::chat::openai::OpenAiChat;
use amp_providers::mock::{MockServer, openai};

const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn main() {
    // The mock gets its own thread and runtime, as a provider would be its own process.
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let server = MockServer::start_unrecorded(openai::instant_upstream(4)).await.unwrap();
            url_tx.send(server.url()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let url = url_rx.recv().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let registry: ModelRegistryConfig = serde_json::from_value(serde_json::json!({"models": {"mock": {
        "provider": "OpenAICompatible", "context_window": 8192, "max_tokens": 1024, "tier": "Balanced",
        "deployments": [{"name": "loopback", "endpoint": format!("{url}/v1")}]}}}))
    .unwrap();
    let spec = registry.models.values().next().unwrap().clone();
    let id = registry.models.keys().next().unwrap().clone();
    let direct = OpenAiChat::from_deployment(&id, &spec, &spec.deployments[0]).unwrap();
    let router =
        Router::new(registry, RouterConfig::default(), Arc::new(ProviderFactory::new("unused"))).unwrap();
    let target = Target::Named("mock".to_owned());
    let mut request = ChatRequest::new(vec![ChatMessage::user("Say hello.")]);
    request.max_tokens = Some(16);

    let (mut plain, mut routed) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    runtime.block_on(async {
        for i in 0..WARMUP + SAMPLES {
            let t = Instant::now();
            direct.complete(&request).await.unwrap();
            let d = t.elapsed();
            let t = Instant::now();
            router.complete(&target, &request).await.unwrap();
            let r = t.elapsed();
            if i >= WARMUP {
                plain.push(d);
                routed.push(r);
            }
        }
    });
    plain.sort();
    routed.sort();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("router_overhead: {SAMPLES} interleaved calls each, {cores} cores");
    println!("| | p50 | p90 | p99 | p99.9 |");
    println!("|---|---|---|---|---|");
    for (name, v) in [("direct", &plain), ("through Router", &routed)] {
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
            percentile(v, 0.5).as_secs_f64() * 1e6,
            percentile(v, 0.9).as_secs_f64() * 1e6,
            percentile(v, 0.99).as_secs_f64() * 1e6,
            percentile(v, 0.999).as_secs_f64() * 1e6
        );
    }
    let added = |q| (percentile(&routed, q).as_secs_f64() - percentile(&plain, q).as_secs_f64()) * 1e6;
    println!(
        "| added | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
        added(0.5),
        added(0.9),
        added(0.99),
        added(0.999)
    );
}

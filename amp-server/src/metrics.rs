//! The Prometheus recorder behind `GET /metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from sub-millisecond gateway overhead to minute-long answers.
const LATENCY_BUCKETS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// The process-wide recorder, installed on first use. `None` when another recorder was
/// installed first (an application embedding the server with its own exporter): its
/// exporter then has the metrics, and `/metrics` says so.
pub(crate) fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "another metrics recorder is installed; /metrics stays empty");
                    None
                }
            }
        })
        .clone()
}

/// Histograms keep their raw samples until the exporter folds them into buckets, which a
/// scrape does, or this upkeep: without it, memory grows with every request between scrapes.
/// A plain thread, since the recorder outlives any one async runtime.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".to_owned()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "starting the metrics upkeep thread failed; scrape /metrics to keep memory flat");
    }
}

/// How often histogram samples are folded into buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

//! The in-process Cache and EventBus on the paths a chat turn takes: a cache lookup per
//! request, a cache fill per answer, and a sync event per message.

use std::sync::Arc;

use amp_core::config::{CacheConfig, EventBusConfig};
use amp_core::{Cache, EventBus};
use amp_providers::{MemoryCache, MemoryEventBus};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;

fn cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime builds");
    let cache = MemoryCache::new(&CacheConfig::default());
    let value = Bytes::from(vec![b'a'; 2048]);
    rt.block_on(async {
        for i in 0..10_000 {
            cache.set(&format!("conv:{i}:answer"), value.clone(), None).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("memory_cache");
    group.bench_function("get_hit_2KiB_of_10k", |b| {
        let mut i = 0u32;
        b.to_async(&rt).iter(|| {
            i = (i + 7919) % 10_000;
            let key = format!("conv:{i}:answer");
            let cache = &cache;
            async move { cache.get(&key).await.unwrap() }
        })
    });
    group.bench_function("set_2KiB_evicting", |b| {
        let mut i = 10_000u32;
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = format!("conv:{i}:answer");
            let (cache, value) = (&cache, value.clone());
            async move { cache.set(&key, value, None).await.unwrap() }
        })
    });
    group.finish();
}

fn event_bus(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime builds");
    let bus = Arc::new(MemoryEventBus::new(&EventBusConfig {
        replay_window: 1000,
        subscriber_buffer: 1 << 20,
        ..EventBusConfig::default()
    }));
    let mut group = c.benchmark_group("memory_event_bus");
    group.bench_function("publish_to_3_devices_and_receive", |b| {
        let mut devices = rt.block_on(async {
            let mut subs = Vec::new();
            for _ in 0..3 {
                subs.push(bus.subscribe("user:bench", None).await.unwrap());
            }
            subs
        });
        // Devices are borrowed mutably per iteration, so each iteration blocks on its own future.
        b.iter(|| {
            rt.block_on(async {
                bus.publish("user:bench", serde_json::json!({"type": "message"})).await.unwrap();
                for d in devices.iter_mut() {
                    d.next().await.unwrap().unwrap();
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, cache, event_bus);
criterion_main!(benches);

//! The Router's own cost: the routing decision with 10 models × 5 deployments (target
//! < 5 µs), measured against in-process deployments that answer at once, so only the
//! Router's work is timed (resolving the target, fitting the window, filtering breakers and
//! limits, the strategy's pick, and the books kept for each call).
//!
//! `cargo bench -p amp-benches --bench router`

use std::sync::Arc;

use amp_agents::router::{Router, Target};
use amp_core::{
    ChatMessage, ChatModel, ChatModelFactory, ChatRequest, ChatResponse, ChatStream, Deployment,
    FinishReason, LoadBalanceStrategy, ModelId, ModelRegistryConfig, ModelSpec, Provider, Result,
    RouterConfig, Tier, Tokenizer, Usage,
};
use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};

/// A deployment that answers at once, in-process.
struct Instant;

#[async_trait]
impl ChatModel for Instant {
    fn name(&self) -> &str {
        "instant"
    }

    async fn complete(&self, _: &ChatRequest) -> Result<ChatResponse> {
        Ok(ChatResponse {
            id: "r".to_owned(),
            model: "m".to_owned(),
            message: ChatMessage::assistant("ok"),
            finish_reason: FinishReason::Stop,
            usage: Some(Usage { prompt_tokens: 8, completion_tokens: 1 }),
        })
    }

    async fn stream(&self, _: &ChatRequest) -> Result<ChatStream> {
        Err(amp_core::Error::unavailable("not streamed in this bench"))
    }
}

struct Factory;

impl ChatModelFactory for Factory {
    fn connect(&self, _: &ModelId, _: &ModelSpec, _: &Deployment) -> Result<Arc<dyn ChatModel>> {
        Ok(Arc::new(Instant))
    }

    fn tokenizer(&self, _: &ModelId, spec: &ModelSpec) -> Result<Arc<dyn Tokenizer>> {
        amp_providers::tokenize::tokenizer_for(spec.tokenizer_kind())
    }
}

/// Ten models of five deployments each, all with `strategy`; every other deployment has
/// rpm/tpm limits high enough never to bind, so the limit checks run.
fn registry(strategy: LoadBalanceStrategy) -> ModelRegistryConfig {
    let mut registry = ModelRegistryConfig::default();
    for m in 0..10 {
        let deployments = (0..5)
            .map(|d| Deployment {
                weight: d + 1,
                rpm: (d % 2 == 0).then_some(1_000_000_000),
                ..Deployment::named(format!("d{d}"))
            })
            .collect();
        let spec = ModelSpec {
            provider: Provider::OpenAiCompatible,
            context_window: 128_000,
            max_tokens: 4_096,
            streaming_support: true,
            tier: [Tier::Premium, Tier::Balanced, Tier::Economical][m % 3],
            tokenizer: None,
            deployments,
            strategy,
            fallbacks: if m > 0 { vec![ModelId::new(format!("model-{}", m - 1))] } else { Vec::new() },
        };
        registry.models.insert(ModelId::new(format!("model-{m}")), spec);
    }
    registry.default_model = Some(ModelId::new("model-0"));
    registry
}

fn routing_decision(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut request = ChatRequest::new(vec![
        ChatMessage::system("You are a helpful assistant."),
        ChatMessage::user("What is the capital of France?"),
    ]);
    request.max_tokens = Some(256);
    let mut group = c.benchmark_group("routing_decision_10x5");
    for strategy in [
        LoadBalanceStrategy::WeightedRandom,
        LoadBalanceStrategy::RoundRobin,
        LoadBalanceStrategy::LeastInFlight,
        LoadBalanceStrategy::LowestLatency,
        LoadBalanceStrategy::UsageBased,
    ] {
        let router = Router::new(registry(strategy), RouterConfig::default(), Arc::new(Factory)).unwrap();
        let target = Target::Named("model-7".to_owned());
        let name = format!("{strategy:?}");
        group.bench_function(&name, |b| {
            b.to_async(&runtime).iter(|| async { router.complete(&target, &request).await.unwrap() })
        });
    }
    let router = Router::new(
        registry(LoadBalanceStrategy::WeightedRandom),
        RouterConfig::default(),
        Arc::new(Factory),
    )
    .unwrap();
    let tier = Target::Named("balanced".to_owned());
    group.bench_function("by_tier", |b| {
        b.to_async(&runtime).iter(|| async { router.complete(&tier, &request).await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, routing_decision);
criterion_main!(benches);

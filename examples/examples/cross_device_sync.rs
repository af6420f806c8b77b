//! Cross-device sync with the in-process event bus, as the Session agent uses it.
//!
//! A phone listens on the person's topic, a laptop publishes a change, the phone drops its
//! connection, more changes happen, and the phone resumes from the last event id it saw
//! (what an SSE client sends as `Last-Event-ID`) without losing anything.
//!
//! Run with `cargo run --example cross_device_sync`.

#![allow(clippy::print_stdout, reason = "an example shows what happens on stdout")]

use amp_core::config::EventBusConfig;
use amp_core::{EventBus, UserId};
use amp_providers::MemoryEventBus;
use futures::StreamExt;
use serde_json::json;

#[tokio::main]
async fn main() -> amp_core::Result<()> {
    let bus = MemoryEventBus::new(&EventBusConfig::default());
    let topic = format!("user:{}", UserId::new());

    let mut phone = bus.subscribe(&topic, None).await?;
    bus.publish(&topic, json!({"type": "preferences", "theme": "dark"})).await?;
    let first = phone.next().await.expect("the bus keeps the stream open")?;
    println!("phone got #{}: {}", first.id, first.payload);

    drop(phone); // the phone goes through a tunnel
    bus.publish(&topic, json!({"type": "message", "text": "sent from the laptop"})).await?;
    bus.publish(&topic, json!({"type": "conversation_renamed", "title": "Trip plans"})).await?;

    let mut phone = bus.subscribe(&topic, Some(first.id)).await?;
    for _ in 0..2 {
        let event = phone.next().await.expect("replayed events follow")?;
        println!("phone caught up on #{}: {}", event.id, event.payload);
    }
    Ok(())
}

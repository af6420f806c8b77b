//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amp_core::{AmpConfig, Cache, EventBus};
use amp_providers::{MemoryCache, MemoryEventBus};

/// The server's shared state: configuration, backends and readiness.
///
/// Cloning is cheap (a few `Arc`s), which is what axum does once per request.
#[derive(Clone)]
pub struct AppState {
    config: Arc<AmpConfig>,
    cache: Arc<dyn Cache>,
    events: Arc<dyn EventBus>,
    draining: Arc<AtomicBool>,
}

impl AppState {
    /// Builds the state on the embedded, in-process backends sized by `config`.
    ///
    /// Returns a `Result` because opening a backend can fail; the in-process cache and
    /// event bus cannot, but the file-backed defaults that join them will.
    pub fn from_config(config: AmpConfig) -> amp_core::Result<AppState> {
        let cache = Arc::new(MemoryCache::new(&config.cache));
        let events = Arc::new(MemoryEventBus::new(&config.events));
        Ok(AppState::new(Arc::new(config), cache, events))
    }

    /// Builds the state on backends chosen by the caller (e.g. Redis for a cluster).
    pub fn new(config: Arc<AmpConfig>, cache: Arc<dyn Cache>, events: Arc<dyn EventBus>) -> AppState {
        AppState { config, cache, events, draining: Arc::new(AtomicBool::new(false)) }
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &AmpConfig {
        &self.config
    }

    /// The shared cache.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The event bus for cross-device sync.
    pub fn events(&self) -> &Arc<dyn EventBus> {
        &self.events
    }

    /// Whether the server accepts new work; `false` once draining has begun.
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire)
    }

    /// Marks the server as shutting down, so `/readyz` tells load balancers to stop
    /// sending new requests while in-flight ones finish. It cannot be undone.
    pub fn begin_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The backends are trait objects without `Debug`; the config redacts its secrets.
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

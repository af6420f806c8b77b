//! The JSON bodies the agents take from requests: any bytes must parse or be refused,
//! never panic, and an accepted body must serialize again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(turn) = serde_json::from_slice::<amp_agents::chat::ChatTurn>(data) {
        let _ = serde_json::to_vec(&turn);
    }
    if let Ok(spec) = serde_json::from_slice::<amp_agents::registry::AgentSpec>(data) {
        let _ = serde_json::to_vec(&spec);
    }
    let _ = serde_json::from_slice::<amp_agents::session::Registration>(data);
    let _ = serde_json::from_slice::<amp_agents::session::NewAccount>(data);
    let _ = serde_json::from_slice::<amp_agents::session::DeviceLogin>(data);
    if let Ok(request) = serde_json::from_slice::<amp_core::ChatRequest>(data) {
        let _ = serde_json::to_vec(&request);
    }
    let _ = serde_json::from_slice::<amp_core::Preferences>(data);
});

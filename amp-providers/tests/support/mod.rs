//! Helpers shared by the provider tests against the loopback mock.

// Each test crate uses a different subset.
#![allow(dead_code)]

use std::time::Duration;

use amp_core::model::DeploymentTimeouts;
use amp_core::{ChatStream, Error, Result, StreamEvent};
use futures::StreamExt;

/// The API key every test configures; no error may ever contain it.
pub const KEY: &str = "sk-test-0123456789abcdef";

/// Limits no healthy exchange with the mock comes near, even on a loaded machine.
pub fn generous() -> DeploymentTimeouts {
    DeploymentTimeouts { connect_ms: 5_000, first_token_ms: 20_000, idle_ms: 20_000, total_ms: 60_000 }
}

/// Every item of a stream, with a guard so a broken stream fails the test instead of hanging it.
pub async fn collect(stream: ChatStream) -> Vec<Result<StreamEvent>> {
    tokio::time::timeout(Duration::from_secs(60), stream.collect::<Vec<_>>())
        .await
        .expect("the stream never ended")
}

/// The events before the first error, and that error.
pub fn split(items: Vec<Result<StreamEvent>>) -> (Vec<StreamEvent>, Option<Error>) {
    let mut events = Vec::new();
    let mut items = items.into_iter();
    for item in items.by_ref() {
        match item {
            Ok(event) => events.push(event),
            Err(err) => {
                assert!(items.next().is_none(), "an error must end the stream");
                return (events, Some(err));
            }
        }
    }
    (events, None)
}

/// Asserts the error never shows the key, in `Display` or `Debug`.
pub fn assert_no_key(err: &Error) {
    assert!(!err.to_string().contains(KEY), "key in Display: {err}");
    assert!(!format!("{err:?}").contains(KEY), "key in Debug: {err:?}");
}

/// The status and retryability of an upstream error.
pub fn upstream(err: &Error) -> (Option<u16>, bool, Option<Duration>) {
    match err {
        Error::Upstream { status, retryable, retry_after, .. } => (*status, *retryable, *retry_after),
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

/// The operation named by a timeout.
pub fn timeout_operation(err: &Error) -> String {
    match err {
        Error::Timeout { operation, .. } => operation.clone(),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

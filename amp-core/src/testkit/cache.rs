//! The [`Cache`] kit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::unique;
use crate::traits::cache::Cache;

/// Checks every promise of [`Cache`].
pub async fn run(cache: Arc<dyn Cache>) {
    let ns = unique("cache");
    let key = |k: &str| format!("{ns}:{k}");

    assert_eq!(cache.get(&key("missing")).await.unwrap(), None, "[cache] a missing key must miss");

    let binary: Bytes = (0..=255u8).collect::<Vec<_>>().into();
    cache.set(&key("bin"), binary.clone(), None).await.unwrap();
    assert_eq!(
        cache.get(&key("bin")).await.unwrap(),
        Some(binary),
        "[cache] get must return exactly what set stored"
    );
    cache.set(&key("empty"), Bytes::new(), None).await.unwrap();
    assert_eq!(
        cache.get(&key("empty")).await.unwrap(),
        Some(Bytes::new()),
        "[cache] an empty value is a hit"
    );

    cache.set(&key("k"), Bytes::from_static(b"one"), None).await.unwrap();
    cache.set(&key("k"), Bytes::from_static(b"two"), None).await.unwrap();
    assert_eq!(
        cache.get(&key("k")).await.unwrap().as_deref(),
        Some(&b"two"[..]),
        "[cache] set must overwrite"
    );

    assert!(cache.delete(&key("k")).await.unwrap(), "[cache] delete of a present key must report true");
    assert_eq!(cache.get(&key("k")).await.unwrap(), None, "[cache] a deleted key must miss");
    assert!(!cache.delete(&key("k")).await.unwrap(), "[cache] delete of a missing key must report false");

    expiry(&*cache, &key).await;
    prefix_delete(&*cache, &ns).await;
    concurrent_writes(cache, &ns).await;
}

async fn expiry(cache: &dyn Cache, key: &impl Fn(&str) -> String) {
    cache.set(&key("ttl"), Bytes::from_static(b"v"), Some(Duration::from_millis(300))).await.unwrap();
    cache.set(&key("forever"), Bytes::from_static(b"v"), None).await.unwrap();
    cache.set(&key("renewed"), Bytes::from_static(b"v"), Some(Duration::from_millis(300))).await.unwrap();
    cache.set(&key("renewed"), Bytes::from_static(b"w"), Some(Duration::from_secs(60))).await.unwrap();
    assert!(cache.get(&key("ttl")).await.unwrap().is_some(), "[cache] a value must be there before its TTL");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(cache.get(&key("ttl")).await.unwrap(), None, "[cache] a value must be gone after its TTL");
    assert!(cache.get(&key("forever")).await.unwrap().is_some(), "[cache] a value without TTL must stay");
    assert_eq!(
        cache.get(&key("renewed")).await.unwrap().as_deref(),
        Some(&b"w"[..]),
        "[cache] overwriting must replace the TTL too"
    );
}

async fn prefix_delete(cache: &dyn Cache, ns: &str) {
    for k in ["conv1:a", "conv1:b", "conv10:a", "conv2:a"] {
        cache.set(&format!("{ns}:{k}"), Bytes::from_static(b"x"), None).await.unwrap();
    }
    let removed = cache.delete_prefix(&format!("{ns}:conv1:")).await.unwrap();
    assert_eq!(removed, 2, "[cache] delete_prefix must remove exactly the keys under the prefix");
    assert_eq!(
        cache.get(&format!("{ns}:conv1:a")).await.unwrap(),
        None,
        "[cache] prefix-deleted key must miss"
    );
    for k in ["conv10:a", "conv2:a"] {
        assert!(
            cache.get(&format!("{ns}:{k}")).await.unwrap().is_some(),
            "[cache] delete_prefix must not touch {k}, which only shares characters with the prefix"
        );
    }
}

async fn concurrent_writes(cache: Arc<dyn Cache>, ns: &str) {
    let shared = format!("{ns}:shared");
    let mut tasks = Vec::new();
    for writer in 0..16u8 {
        let cache = cache.clone();
        let shared = shared.clone();
        let own = format!("{ns}:own:{writer}");
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                cache.set(&shared, Bytes::from(vec![writer; 4096]), None).await.unwrap();
                cache.set(&own, Bytes::from(vec![writer; 64]), None).await.unwrap();
                if let Some(v) = cache.get(&shared).await.unwrap() {
                    assert!(
                        v.len() == 4096 && v.iter().all(|b| *b == v[0]),
                        "[cache] a get under concurrent writes must see one whole write"
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for writer in 0..16u8 {
        let v = cache.get(&format!("{ns}:own:{writer}")).await.unwrap();
        assert_eq!(v, Some(Bytes::from(vec![writer; 64])), "[cache] a concurrent writer's own key was lost");
    }
}

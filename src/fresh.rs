//! Answers kept a few seconds and shared: the first task to ask a key fetches, the tasks
//! that ask meanwhile wait for that answer, and an answer older than the time to live is
//! fetched again. The engine's facts and the cached tracker's merge-request feeds use it.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Slot<V> = Arc<tokio::sync::OnceCell<(Instant, V)>>;

pub struct Fresh<K, V> {
    ttl: Duration,
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Fresh<K, V> {
    pub fn new(ttl: Duration) -> Fresh<K, V> {
        Fresh {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The answer to `key`: kept, being fetched by another task, or fetched by `fetch`.
    pub async fn get<F, Fut>(&self, key: &K, fetch: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let stale = slots
                .get(key)
                .and_then(|s| s.get())
                .is_some_and(|(at, _)| at.elapsed() > self.ttl);
            if stale {
                slots.remove(key);
            }
            slots.entry(key.clone()).or_default().clone()
        };
        let (_, value) = slot
            .get_or_init(|| async { (Instant::now(), fetch().await) })
            .await;
        value.clone()
    }

    /// Forgets the answers whose key `forget` picks.
    pub fn forget(&self, forget: impl Fn(&K) -> bool) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| !forget(k));
    }
}

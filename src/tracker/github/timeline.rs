//! An issue's timeline, read once for its two readers. Label history (`labeled` and
//! `unlabeled` events) and pull requests (`cross-referenced` events) both come from the
//! timeline: when an advance wants both, the second reader takes the page the first one
//! read (or is reading) instead of asking again. Each reader gets at most one such shared
//! read, no older than `SHARED_FOR`; asking again reads afresh, so a reader never sees a
//! timeline older than one it has seen before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::tracker::{Dated, TrackerError};

/// A timeline as read, with when GitHub answered.
pub type Timeline = Dated<Vec<Value>>;

/// How long one read serves the other reader.
const SHARED_FOR: Duration = Duration::from_secs(30);

/// Beyond this many issues remembered, the idle ones are forgotten.
const MAX_REMEMBERED: usize = 256;

/// Who reads the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    Labels,
    PullRequests,
}

#[derive(Default)]
struct Slot {
    read: Option<(Instant, Arc<Timeline>)>,
    /// Which readers have had this read.
    had: Vec<Reader>,
}

impl Slot {
    fn fresh(&self) -> bool {
        self.read
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < SHARED_FOR)
    }
}

/// The timelines of this run, per issue.
#[derive(Default)]
pub struct Timelines {
    slots: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl Timelines {
    /// Issue `number`'s timeline for `reader`: the read another reader had moments ago
    /// (or is waiting for now), else a new one from `fetch`.
    pub async fn read<F>(
        &self,
        number: u64,
        reader: Reader,
        fetch: F,
    ) -> Result<Arc<Timeline>, TrackerError>
    where
        F: std::future::Future<Output = Result<Timeline, TrackerError>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if slots.len() >= MAX_REMEMBERED {
                // Forget slots nobody holds whose read has served its time.
                slots.retain(|_, s| {
                    Arc::strong_count(s) > 1 || s.try_lock().map_or(true, |s| s.fresh())
                });
            }
            slots.entry(number).or_default().clone()
        };
        // Held while reading: a second reader waits for this read instead of sending its own.
        let mut slot = slot.lock().await;
        if slot.fresh() && !slot.had.contains(&reader) {
            if let Some((_, items)) = &slot.read {
                let items = items.clone();
                slot.had.push(reader);
                return Ok(items);
            }
        }
        let items = Arc::new(fetch.await?);
        *slot = Slot {
            read: Some((Instant::now(), items.clone())),
            had: vec![reader],
        };
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn one_read_serves_each_other_reader_once() {
        let timelines = Timelines::default();
        let reads = AtomicUsize::new(0);
        let fetch = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok(Dated::undated(vec![Value::Null]))
        };
        run(async {
            timelines.read(1, Reader::Labels, fetch()).await.unwrap();
            timelines
                .read(1, Reader::PullRequests, fetch())
                .await
                .unwrap();
            assert_eq!(reads.load(Ordering::SeqCst), 1, "the second reader shared");
            timelines
                .read(1, Reader::PullRequests, fetch())
                .await
                .unwrap();
            assert_eq!(reads.load(Ordering::SeqCst), 2, "asking again reads again");
            timelines.read(1, Reader::Labels, fetch()).await.unwrap();
            assert_eq!(
                reads.load(Ordering::SeqCst),
                2,
                "that read serves the labels"
            );
            timelines.read(2, Reader::Labels, fetch()).await.unwrap();
            assert_eq!(reads.load(Ordering::SeqCst), 3, "another issue is its own");
            let both = futures::join!(
                timelines.read(3, Reader::Labels, fetch()),
                timelines.read(3, Reader::PullRequests, fetch())
            );
            assert!(both.0.is_ok() && both.1.is_ok());
            assert_eq!(reads.load(Ordering::SeqCst), 4, "side by side, one read");
        });
    }
}

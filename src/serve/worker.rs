//! The workers: take due entries from the Store's queue (one per migration, coalesced),
//! advance each under its lease with the engine, at most `concurrency` at once. A failure
//! is that migration's: recorded with exponential backoff (1 min … 1 h) and queued again
//! for its retry time, while the others go on. Until then the Store's queue holds it,
//! whoever queues it meanwhile (a resync, a timer; `Store::enqueue`), except that a
//! webhook delivery about it may bring its next try forward once per backoff
//! (`Store::waive_backoff`, in `hooks`). A key that is no migration (no such issue, no
//! shepherd marker: `engine::NoMigration`) is dropped with a warning: never retried, never
//! counted failing. A migration another shepherd holds is
//! queued again a moment later. On shutdown, the advances in hand may finish (up to
//! `DRAIN`); what did not is handed back to the queue, and the leases are given back.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::metrics::labels;
use super::{parse_key, Shared, DRAIN};
use crate::engine::lease::DEFAULT_LEASE_TTL;
use crate::engine::{Advanced, Engine, NoMigration, PlainChild};
use crate::store::QueueEntry;

/// How long a taken entry stays this worker's before another replica may take it (its
/// worker died): three leases (30 s by default), so that a killed replica's work is
/// carried on about when its leases have run out. An advance that runs longer is still
/// alone: its lease keeps the migration, and a replica that takes the entry meanwhile
/// finds it busy and queues it again.
fn take_ttl(engines: &[Engine]) -> Duration {
    engines.first().map_or(DEFAULT_LEASE_TTL, |e| e.lease_ttl) * 3
}
/// The longest sleep between looks at the queue (other replicas queue work too).
const POLL: Duration = Duration::from_secs(2);
/// The shortest, so that a queue that cannot be taken from is not spun on.
const MIN_SLEEP: Duration = Duration::from_millis(20);
/// A migration whose lease another shepherd holds is tried again this much later.
const BUSY_RETRY_SECONDS: i64 = 5;

pub(super) struct Workers<'e, 'a> {
    engines: &'e [Engine<'a>],
    shared: &'e Shared,
    concurrency: usize,
    /// The owner of taken entries: the engines' run id, which their leases start with.
    owner: String,
}

impl<'e, 'a> Workers<'e, 'a> {
    pub(super) fn new(
        engines: &'e [Engine<'a>],
        shared: &'e Shared,
        concurrency: usize,
    ) -> Workers<'e, 'a> {
        let owner = engines
            .first()
            .map(|e| e.run_id.clone())
            .unwrap_or_else(|| crate::engine::new_run_id("serve"));
        Workers {
            engines,
            shared,
            concurrency: concurrency.max(1),
            owner,
        }
    }

    pub(super) async fn run(&self, mut stop: watch::Receiver<bool>) {
        let store = self.shared.store.as_ref();
        let mut in_hand: BTreeSet<String> = BTreeSet::new();
        let mut working = FuturesUnordered::new();
        loop {
            if *stop.borrow() {
                break;
            }
            let free = self.concurrency.saturating_sub(working.len());
            let mut wait = POLL;
            if free > 0 {
                match store
                    .take_due(&self.owner, free, take_ttl(self.engines))
                    .await
                {
                    Ok(entries) => {
                        for entry in entries {
                            in_hand.insert(entry.key.clone());
                            working.push(self.work(entry));
                        }
                    }
                    Err(e) => {
                        self.shared.metrics.error("store");
                        tracing::warn!("taking work from the queue: {e}");
                    }
                }
                if working.len() < self.concurrency {
                    if let Ok(Some(due)) = store.next_due().await {
                        let until = (due - Utc::now()).to_std().unwrap_or_default();
                        wait = until.clamp(MIN_SLEEP, POLL);
                    }
                }
            }
            tokio::select! {
                r = stop.changed() => {
                    if r.is_err() {
                        break;
                    }
                }
                Some(key) = working.next(), if !working.is_empty() => {
                    in_hand.remove(&key);
                }
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let drained = tokio::time::timeout(DRAIN, async {
            while let Some(key) = working.next().await {
                in_hand.remove(&key);
            }
        })
        .await;
        drop(working);
        if drained.is_err() {
            tracing::warn!(
                "{} migration(s) still in hand after {}s: handed back",
                in_hand.len(),
                DRAIN.as_secs()
            );
        }
        for key in &in_hand {
            self.hand_back(key).await;
        }
        if let Err(e) = store.release_all(&self.owner).await {
            tracing::warn!("giving back leases: {e}");
        }
    }

    /// Advances the migration of one queue entry; returns its key when done.
    async fn work(&self, entry: QueueEntry) -> String {
        let key = entry.key;
        let store = self.shared.store.as_ref();
        let found = parse_key(&key).and_then(|(tracker, number)| {
            self.engines
                .iter()
                .find(|e| e.tracker.describe() == tracker)
                .map(|e| (e, number))
        });
        let Some((engine, number)) = found else {
            // Another deployment's tracker on a shared Store: left for it (the take runs out).
            tracing::debug!(%key, "queued for a tracker this service does not serve");
            return key;
        };
        tracing::debug!(%key, reason = %entry.reason, "advancing");
        self.advance(engine, number, &key).await;
        if let Err(e) = store.done(&key, &self.owner).await {
            self.shared.metrics.error("store");
            tracing::warn!(%key, "marking queue entry done: {e}");
        }
        key
    }

    async fn advance(&self, engine: &Engine<'_>, number: u64, key: &str) {
        let store = self.shared.store.as_ref();
        let tracker = engine.tracker.describe();
        let result_label = |result: &str| labels(&[("tracker", &tracker), ("result", result)]);
        // Another shepherd holds it: not a failure, a moment's wait.
        if let Ok(Some((holder, _))) = store.holder(key).await {
            if !holder.starts_with(&format!("{}/", engine.run_id)) {
                let again = Utc::now() + chrono::Duration::seconds(BUSY_RETRY_SECONDS);
                if let Err(e) = store.enqueue(key, again, "another shepherd holds it").await {
                    tracing::warn!(%key, "queueing again: {e}");
                }
                self.shared
                    .metrics
                    .advances
                    .get_or_create(&result_label("busy"))
                    .inc();
                return;
            }
        }
        let mut result = engine.advance(number, false).await;
        // A plain child (no workflow of its own) is not advanced itself: a comment on it may
        // be a command for its migration, which its parent's advance answers.
        let child = result.as_ref().err().and_then(|e| {
            e.chain()
                .find_map(|c| c.downcast_ref::<PlainChild>())
                .map(|c| (c.number, c.parent))
        });
        if let Some((child, parent)) = child {
            result = engine.advance_with(parent, false, &[child]).await;
        }
        self.shared
            .metrics
            .requests(&tracker, engine.tracker.request_stats());
        match result {
            Ok(advanced) => {
                if let Err(e) = store.clear_failure(key).await {
                    tracing::warn!(%key, "clearing the failure record: {e}");
                }
                self.count(&tracker, &advanced);
                self.shared
                    .note_worked(&tracker, advanced.number, advanced.seen);
            }
            Err(e) if e.chain().any(|cause| cause.is::<NoMigration>()) => {
                tracing::warn!(%key, "dropped from the queue, not retried: {e:#}");
                if let Err(e) = store.clear_failure(key).await {
                    tracing::warn!(%key, "clearing the failure record: {e}");
                }
                self.shared
                    .metrics
                    .advances
                    .get_or_create(&result_label("dropped"))
                    .inc();
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::warn!(%key, "advance failed: {error}");
                self.shared.metrics.error("advance");
                self.shared
                    .metrics
                    .advances
                    .get_or_create(&result_label("failed"))
                    .inc();
                // Its workflow and status as the last list showed it, for the event.
                let known = self.shared.known_migration(&tracker, number);
                let m = known.as_ref().and_then(|m| {
                    let workflow = engine
                        .catalog
                        .workflows
                        .get(m.marker.workflow.as_deref()?)?;
                    Some((m, workflow))
                });
                match engine.record_failing(number, m, &error).await {
                    Ok(failure) => {
                        if let Err(e) = store
                            .enqueue(key, failure.retry_at, "retry after a failure")
                            .await
                        {
                            tracing::warn!(%key, "queueing the retry: {e}");
                        }
                    }
                    Err(e) => tracing::warn!(%key, "recording the failure: {e:#}"),
                }
                self.shared.note_worked(&tracker, number, None);
            }
        }
    }

    fn count(&self, tracker: &str, advanced: &Advanced) {
        let metrics = &self.shared.metrics;
        for t in &advanced.transitions {
            metrics
                .transitions
                .get_or_create(&labels(&[
                    ("tracker", tracker),
                    ("workflow", &advanced.workflow),
                    ("from", t.from.as_deref().unwrap_or("")),
                    ("to", &t.to),
                ]))
                .inc();
            tracing::info!(
                %tracker,
                number = advanced.number,
                from = t.from.as_deref().unwrap_or("-"),
                to = %t.to,
                "moved"
            );
        }
        let workflow = self.engines.iter().find_map(|e| {
            (e.tracker.describe() == tracker)
                .then(|| e.catalog.workflows.get(&advanced.workflow))
                .flatten()
        });
        let gate = |gate: &str, result: &str| {
            metrics
                .gate_evaluations
                .get_or_create(&labels(&[
                    ("tracker", tracker),
                    ("workflow", &advanced.workflow),
                    ("gate", gate),
                    ("result", result),
                ]))
                .inc();
        };
        for t in &advanced.transitions {
            let left = t
                .from
                .as_deref()
                .and_then(|from| workflow.and_then(|w| w.stage(from)));
            for g in left.map(|s| s.gates.as_slice()).unwrap_or_default() {
                gate(g.kind(), "passed");
            }
        }
        for report in &advanced.blocked_by {
            gate(
                &report.gate,
                if report.passed { "passed" } else { "failed" },
            );
        }
        let result = if advanced.skipped.is_some() {
            "busy"
        } else if advanced.transitions.is_empty() {
            "blocked"
        } else {
            "moved"
        };
        metrics
            .advances
            .get_or_create(&labels(&[("tracker", tracker), ("result", result)]))
            .inc();
    }

    /// Puts an entry this worker took and did not finish back in the queue, due now,
    /// and gives back the lease its advance may still hold.
    async fn hand_back(&self, key: &str) {
        let store = self.shared.store.as_ref();
        // Queued again while taken, then done: the entry stays, free, due now.
        let _ = store
            .enqueue(key, Utc::now(), "handed back at shutdown")
            .await;
        let _ = store.done(key, &self.owner).await;
        if let Ok(Some((holder, _))) = store.holder(key).await {
            if holder.starts_with(&format!("{}/", self.owner)) {
                let _ = store.release(key, &holder).await;
            }
        }
    }
}

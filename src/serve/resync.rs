//! The resync and the timers. At start and every `resync`, each tracker's migrations are
//! listed (incrementally, through the Store's cache; every `full_resync` the cached lists
//! are dropped and read whole) and looked at without leases: those that may move now are
//! queued now, and those whose soak will end later are queued for that moment. After the
//! workers advance migrations, the same look at just those queues their new timers, and
//! the dashboard is refreshed — from what the moves saw (the response to their last write,
//! the comments they read back and posted), with no list and no read of their comments
//! while the issues stay as the moves left them (`Shared::index_after`, `Shared::seen`).

use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use tokio::sync::watch;
use tokio::time::Instant;

use super::metrics::labels;
use super::{dashboard, queue_key, Config, Shared};
use crate::engine::due::Look;
use crate::engine::Engine;

/// After a failed resync, the next try comes this soon (or at `resync`, if sooner).
const RETRY: Duration = Duration::from_secs(30);
/// Work is gathered this long before the refresh that follows it.
const SETTLE: Duration = Duration::from_millis(500);

pub(super) async fn run(
    engines: &[Engine<'_>],
    shared: &Shared,
    config: &Config,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_full = Instant::now();
    let mut next = Instant::now();
    loop {
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            r = stop.changed() => {
                if r.is_err() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep_until(next) => {
                let full = last_full.elapsed() >= config.full_resync;
                if full {
                    last_full = Instant::now();
                }
                let ok = resync_all(engines, shared, full).await;
                shared.set_ready(ok);
                next = Instant::now() + if ok { config.resync } else { RETRY.min(config.resync) };
            }
            _ = shared.changed.notified() => {
                tokio::time::sleep(SETTLE).await;
                after_work(engines, shared).await;
            }
        }
    }
}

/// Resyncs every tracker; returns whether all succeeded.
async fn resync_all(engines: &[Engine<'_>], shared: &Shared, full: bool) -> bool {
    let kind = if full { "full" } else { "incremental" };
    let mut ok = true;
    for engine in engines {
        let tracker = engine.tracker.describe();
        let result = resync(engine, shared, full).await;
        shared
            .metrics
            .requests(&tracker, engine.tracker.request_stats());
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        shared
            .metrics
            .resyncs
            .get_or_create(&labels(&[
                ("tracker", &tracker),
                ("kind", kind),
                ("result", outcome),
            ]))
            .inc();
        match result {
            Ok(queued) => tracing::info!(%tracker, kind, queued, "resynced"),
            Err(e) => {
                ok = false;
                shared.metrics.error("resync");
                tracing::warn!(%tracker, "resync failed: {e:#}");
            }
        }
    }
    ok
}

/// One tracker's resync; returns how many migrations it queued to move now.
pub(super) async fn resync(engine: &Engine<'_>, shared: &Shared, full: bool) -> Result<usize> {
    let tracker = engine.tracker.describe();
    if full {
        shared
            .store
            .cache_clear(&format!("{tracker}|list:"))
            .await?;
    }
    let index = engine.index().await?;
    shared.set_known(&tracker, &index);
    if full {
        // The closed migrations' stays are read again for the next page.
        shared.set_closed_lives(&tracker, None);
    }
    let looks = engine.looks(&index, None).await?;
    let queued = queue_looks(engine, shared, &looks, true).await?;
    if queued > 0 {
        shared.wake.notify_one();
    }
    dashboard::publish(engine, shared, &index).await?;
    Ok(queued)
}

/// After advances: the timers of the migrations advanced, and the dashboard.
async fn after_work(engines: &[Engine<'_>], shared: &Shared) {
    let worked = shared.take_worked();
    for engine in engines {
        let tracker = engine.tracker.describe();
        let numbers: Vec<u64> = worked
            .keys()
            .filter(|(t, _)| *t == tracker)
            .map(|(_, n)| *n)
            .collect();
        // What the advances saw of the migrations they moved: the page shows them without
        // reading their comments again (`Engine::statuses_shown`).
        shared.note_seen(
            &tracker,
            worked
                .iter()
                .filter(|((t, _), _)| *t == tracker)
                .filter_map(|((_, n), s)| Some((*n, s.clone()?))),
        );
        if numbers.is_empty() {
            continue;
        }
        let result = async {
            let index = match shared.index_after(&tracker, &numbers) {
                Some(index) => index,
                None => engine.index().await?,
            };
            shared.set_known(&tracker, &index);
            let looks = engine.looks(&index, Some(&numbers)).await?;
            queue_looks(engine, shared, &looks, false).await?;
            dashboard::publish(engine, shared, &index).await
        }
        .await;
        if let Err(e) = result {
            shared.metrics.error("refresh");
            tracing::warn!(%tracker, "refreshing after work failed: {e:#}");
        }
    }
}

/// Queues what `looks` found: soaks for the moment they end (on the wall clock: the
/// tracker's clock may be a rehearsal clock), and, when `now` says so, the migrations that
/// may move now. Returns how many were queued to move now.
async fn queue_looks(
    engine: &Engine<'_>,
    shared: &Shared,
    looks: &[Look],
    now: bool,
) -> Result<usize> {
    let tracker = engine.tracker.describe();
    let wall = Utc::now();
    let offset = wall - engine.now();
    let mut queued = 0;
    for look in looks {
        let key = queue_key(&tracker, look.number);
        if now && look.may_move {
            shared.store.enqueue(&key, wall, "resync").await?;
            queued += 1;
        }
        if let Some(due) = look.due {
            // A second late, so that the gate holds by the tracker's clock too.
            let at = due
                .checked_add_signed(offset + chrono::Duration::seconds(1))
                .unwrap_or(due);
            shared.store.enqueue(&key, at, "soak ends").await?;
        }
    }
    Ok(queued)
}

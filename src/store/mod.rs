//! The `Store`: what shepherd keeps beside the tracker, all of it rebuildable from the
//! tracker. Leases (one writer per migration), sync cursors, the keyed work queue of the
//! service, per-migration failures and their backoff, webhook deliveries seen, and caches.
//! Deleting the Store loses no migration: the tracker stays the source of truth.
//!
//! Two implementations behind one trait: SQLite (`sqlite:PATH`, the default, embedded) and
//! PostgreSQL (`postgres://…`, for several processes or machines). Both apply their own
//! schema migrations when opened. Times are the wall clock of the process (SQLite) or of
//! the database server (PostgreSQL), never the local tracker's rehearsal clock: a lease
//! must expire in real time.

mod outbox;
pub mod postgres;
pub mod sqlite;

pub use outbox::{Outbox, OutboxEntry};

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no store shepherd knows, or cannot be parsed.
    #[error("bad state URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    /// The store could not be opened or reached.
    #[error("cannot open the state store {store}: {reason}")]
    Open { store: String, reason: String },
    /// A query failed.
    #[error("the state store {store} failed: {reason}")]
    Query { store: String, reason: String },
}

/// One entry of the work queue: a migration (by key) due at a time, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueEntry {
    pub key: String,
    pub due: DateTime<Utc>,
    pub reason: String,
    /// When the entry was first queued (for the queue-age metric).
    pub queued_at: DateTime<Utc>,
}

/// A migration whose last attempt failed, and when it may be tried again (its queue entry
/// waits for then: `Store::enqueue`).
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub key: String,
    pub error: String,
    /// Failures in a row.
    pub attempts: u32,
    pub failed_at: DateTime<Utc>,
    pub retry_at: DateTime<Utc>,
}

/// A cached value and the version it was read at (for example an issue's `updated_at`).
#[derive(Clone, Debug, PartialEq)]
pub struct Cached {
    pub value: String,
    pub version: String,
}

#[async_trait]
pub trait Store: Outbox + Send + Sync {
    /// The store as `--state` names it, without any password.
    fn describe(&self) -> String;

    /// Whether a write to the store is shared with other machines (PostgreSQL).
    fn shared(&self) -> bool;

    // ---- leases -------------------------------------------------------------------

    /// Takes the lease on `key` for `owner` for `ttl`, if it is free, expired, or already
    /// `owner`'s (then it is renewed). Returns whether `owner` holds it now.
    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Extends `owner`'s lease on `key` by `ttl` from now. Returns false when the lease
    /// is no longer `owner`'s (it expired and someone else took it).
    async fn renew(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives back `owner`'s lease on `key` (nothing happens when it is not `owner`'s).
    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError>;

    /// Gives back every lease `owner` holds (shutdown).
    async fn release_all(&self, owner: &str) -> Result<(), StoreError>;

    /// Who holds the lease on `key` now, and until when (expired leases are no one's).
    async fn holder(&self, key: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError>;

    // ---- sync cursors -------------------------------------------------------------

    async fn cursor(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn set_cursor(&self, key: &str, value: &str) -> Result<(), StoreError>;

    // ---- the work queue -----------------------------------------------------------

    /// Queues `key` for `due`. One entry per key: a key already queued keeps the earlier
    /// due time (and its reason); `queued_at` stays that of the first queuing.
    ///
    /// A failing key (`record_failure`) is due no earlier than its retry time, whoever
    /// queues it and for when (a resync, a timer, a webhook): the queue keeps the time
    /// asked for, and `take_due`, `next_due` and `queue_depth` see the later of the two
    /// (unless `waive_backoff` let the next try come at once). So a failure recorded
    /// while the entry waits, or by another process, holds it too.
    async fn enqueue(&self, key: &str, due: DateTime<Utc>, reason: &str) -> Result<(), StoreError>;

    /// Takes up to `limit` entries due at or before now that no one else is working on,
    /// oldest due first, and marks them taken by `owner` for `ttl` (`FOR UPDATE SKIP
    /// LOCKED` on PostgreSQL). A taken entry whose `ttl` ran out (its worker died) can be
    /// taken again. An entry's due time is the later of the one queued and its key's retry
    /// time (`enqueue`).
    async fn take_due(
        &self,
        owner: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<QueueEntry>, StoreError>;

    /// Removes `key`'s entry taken by `owner` — unless it was queued again after it was
    /// taken, in which case it stays, free for the next `take_due`.
    async fn done(&self, key: &str, owner: &str) -> Result<(), StoreError>;

    /// When `take_due` may next find something (for sleeping until then): the earliest
    /// due time of the entries no one is working on, and for a taken entry the later of
    /// its due time and the end of its take.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// How many entries are queued (taken ones too), and how long the longest-waiting
    /// due entry that no one is working on has waited: since its due time, or since it
    /// was queued when that came later.
    async fn queue_depth(&self) -> Result<(u64, Option<Duration>), StoreError>;

    // ---- failures and backoff ------------------------------------------------------

    /// Records a failure of `key`: attempts + 1, retry after exponential backoff from
    /// `min` doubling up to `max`. Returns the new record.
    async fn record_failure(
        &self,
        key: &str,
        error: &str,
        min: Duration,
        max: Duration,
    ) -> Result<Failure, StoreError>;

    /// Forgets `key`'s failures (it succeeded).
    async fn clear_failure(&self, key: &str) -> Result<(), StoreError>;

    /// A webhook delivery about failing `key`: a person acted on the tracker, and what
    /// failed may be fixed, so its next try may come at once instead of at its retry time —
    /// once per backoff: when that try fails too, the next one waits for its retry time,
    /// whatever is delivered meanwhile (and a delivery after that may waive again). A
    /// chatty issue thus costs at most one try more per backoff period. Returns whether it
    /// waived a wait (false: not failing, already waived, or its retry time has come).
    ///
    /// Both stores keep this as a failure's `waiver`: 0, none yet; 1, waived (the key is
    /// due at the time queued); 2, spent (the try it let come failed: `record_failure`
    /// turns 1 into 2 and anything else into 0, so the next waiver waits for the try at
    /// the retry time).
    async fn waive_backoff(&self, key: &str) -> Result<bool, StoreError>;

    /// Every migration that is failing now.
    async fn failures(&self) -> Result<Vec<Failure>, StoreError>;

    // ---- webhook deliveries -------------------------------------------------------

    /// Records a webhook delivery id; returns true when it is new, false when it was seen
    /// before. Ids older than `keep` are forgotten, and so are all but the `most` newest
    /// (each new id forgets those; concurrent deliveries on PostgreSQL may leave a few
    /// more for a moment).
    async fn first_delivery(&self, id: &str, keep: Duration, most: u64)
        -> Result<bool, StoreError>;

    // ---- caches -------------------------------------------------------------------

    async fn cache_get(&self, key: &str) -> Result<Option<Cached>, StoreError>;
    /// Stores `value` at `version` for `key`, replacing what was there.
    async fn cache_put(&self, key: &str, value: &str, version: &str) -> Result<(), StoreError>;
    /// Removes every cache entry whose key starts with `prefix`.
    async fn cache_clear(&self, prefix: &str) -> Result<(), StoreError>;
}

/// Opens the store that `url` names: `sqlite:PATH` or `postgres://…` (`postgresql://`
/// too). A relative SQLite path is taken as given (the caller resolves it). With
/// `dry_run`, nothing is written anywhere: a SQLite file that does not exist is not
/// created (an empty in-memory store stands in), one that exists is copied into memory,
/// and a PostgreSQL database is only checked (reachable, schema not newer than this
/// binary's) before an in-memory store stands in for it.
pub async fn open(url: &str, dry_run: bool) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        if path.is_empty() {
            return Err(StoreError::BadUrl {
                url: url.into(),
                reason: "it names no file: write sqlite:PATH".into(),
            });
        }
        return Ok(Box::new(sqlite::SqliteStore::open(
            std::path::Path::new(path),
            dry_run,
        )?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        if dry_run {
            postgres::PostgresStore::check(url).await?;
            let describe = format!("{} (dry run: in memory)", crate::http::redact::url(url));
            return Ok(Box::new(sqlite::SqliteStore::in_memory(describe)?));
        }
        return Ok(Box::new(postgres::PostgresStore::connect(url).await?));
    }
    Err(StoreError::BadUrl {
        url: crate::http::redact::url(url),
        reason: "write sqlite:PATH or postgres://USER@HOST/DATABASE".into(),
    })
}

/// The retry delay after `attempts` failures in a row: `min * 2^(attempts-1)`, capped at
/// `max` (and `max` when `min` is larger).
pub fn backoff(min: Duration, max: Duration, attempts: u32) -> Duration {
    let mut delay = min;
    for _ in 1..attempts {
        if delay >= max {
            break;
        }
        delay = delay.saturating_mul(2);
    }
    delay.min(max)
}

/// Durations given to a store are capped at 100 years, so that adding one to now never
/// overflows a timestamp.
fn capped(d: Duration) -> Duration {
    d.min(Duration::from_secs(100 * 365 * 24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        let got: Vec<u64> = (1..=8)
            .map(|n| backoff(s(60), s(3600), n).as_secs())
            .collect();
        assert_eq!(got, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(s(60), s(3600), u32::MAX), s(3600));
        assert_eq!(backoff(s(10), s(5), 1), s(5));
        assert_eq!(
            backoff(Duration::from_nanos(1), Duration::MAX, 70),
            Duration::from_nanos(1 << 60) * 512
        );
    }
}

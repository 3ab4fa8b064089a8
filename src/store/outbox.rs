//! The notification outbox (DESIGN §12, STYLE 16), which every Store keeps: an event is
//! put in the same step as what it reports, and one sender — whoever holds the `outbox`
//! lease — sends it to each sink and records each sink that took it, so a sink that
//! answered is never sent it again and a crash loses nothing.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// The outbox every Store keeps: `Store` requires it, so whoever holds a Store can put an
/// event in the same step as what it reports.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Puts event `id` (its JSON `body`) into the outbox, due now. Idempotent: an id put
    /// before — waiting, or sent long ago — is left as it is. Returns whether it is new.
    async fn outbox_put(&self, id: &str, body: &str) -> Result<bool, StoreError>;

    /// Up to `limit` events that are not done and whose due time has come, oldest first,
    /// each with the sinks that have already taken it. The caller holds the outbox lease.
    async fn outbox_due(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Records that `sink` took event `id` (answered 2xx): it is not sent there again.
    async fn outbox_sent(&self, id: &str, sink: &str) -> Result<(), StoreError>;

    /// Marks event `id` done (every sink that should have it took it). Done events are
    /// kept a while so that putting one again stays a no-op, then forgotten.
    async fn outbox_done(&self, id: &str) -> Result<(), StoreError>;

    /// A send of event `id` failed: attempts + 1, due again after exponential backoff
    /// from `min` doubling up to `max`, on the wall clock. Returns the new due time.
    async fn outbox_retry(
        &self,
        id: &str,
        error: &str,
        min: Duration,
        max: Duration,
    ) -> Result<DateTime<Utc>, StoreError>;
}

/// Done events are forgotten after this long (a transition recorded again after that
/// would be sent again; no run finishes a transition that late).
pub(crate) const KEEP_DONE: Duration = Duration::from_secs(30 * 24 * 3600);

/// One event waiting in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// The event's stable id: the same at every sink and on every retry.
    pub id: String,
    /// The event as JSON (`notify::Event`).
    pub body: String,
    /// Failed sends so far.
    pub attempts: u32,
    /// The sinks (by key) that took it already.
    pub sent: Vec<String>,
}

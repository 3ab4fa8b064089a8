//! `shepherd serve`: the long-running service. Webhooks are checked and mapped to the
//! migrations they concern, which are queued in the Store and answered at once; workers
//! take due entries and advance each migration under its lease with the same engine as
//! the CLI; a resync lists the migrations now and then, so a missed webhook is caught,
//! and queues soaks for the moment they end; the dashboard, the JSON API and `/metrics`
//! read what the last refresh kept, never the tracker.
//!
//! - `router`: `app(shared) -> Router` — every endpoint, no socket (tests use `oneshot`).
//! - `listen`: the socket: at most so many connections, headers within a time limit.
//! - `auth`: secret tokens and signatures, checked on the raw bytes, in constant time;
//!   what the headers alone show, before the body is read.
//! - `body`: a webhook's body, read in one of a few slots, within a time limit.
//! - `events`: what a delivery's JSON names (issues, references, everything).
//! - `hooks`: the webhook handlers: check, read, map, queue, answer.
//! - `worker`: the loop that takes due entries and advances them, with backoff.
//! - `resync`: the periodic list, the timers, and the refresh after work.
//! - `dashboard`: the report page and JSON kept for `/` and `/api`.
//! - `metrics`: the Prometheus series.

pub mod auth;
pub mod body;
pub mod dashboard;
pub mod events;
mod hooks;
mod listen;
pub mod metrics;
mod pages;
mod resync;
mod router;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{watch, Notify, Semaphore};

use crate::engine::{Engine, Migration, Seen};
use crate::store::Store;

pub use auth::Secrets;
pub use dashboard::Page;
pub use metrics::Metrics;
pub use router::app;

/// How long webhook delivery ids are remembered.
pub const DELIVERY_MEMORY: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many webhook delivery ids are remembered at most (the newest).
pub const DELIVERIES_KEPT: u64 = 100_000;
/// How long a request's headers may take to arrive, from the connection's start or the
/// end of its last answer.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a webhook's body may take to arrive, once its headers have.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many connections are open at once (`--max-connections`).
pub const MAX_CONNECTIONS: usize = 1024;
/// The most a webhook body may weigh.
pub const BODY_LIMIT: usize = 25 * 1024 * 1024;
/// How long in-hand advances may go on after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(30);

/// How the service runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Time between incremental resyncs.
    pub resync: Duration,
    /// Time between full resyncs (the cached issue lists are read whole again).
    pub full_resync: Duration,
    /// How many migrations are advanced at once.
    pub concurrency: usize,
    /// How often the dashboard page reloads itself, in seconds.
    pub page_refresh_seconds: u64,
    /// How many connections may be open at once; more wait to be accepted.
    pub max_connections: usize,
    /// How long a request's headers may take; then the connection is closed.
    pub header_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            resync: Duration::from_secs(600),
            full_resync: Duration::from_secs(6 * 3600),
            concurrency: 8,
            page_refresh_seconds: 30,
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

/// What the HTTP handlers and the workers share: the Store, the secrets, the index of
/// migrations each tracker had at its last list, the dashboard pages, the metrics.
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub secrets: Secrets,
    /// The trackers served, as they describe themselves (`gitlab:group/project`).
    pub trackers: Vec<String>,
    pub metrics: Metrics,
    /// Seconds between reloads of the dashboard page.
    pub page_refresh_seconds: u64,
    /// How long a webhook's body may take to arrive (`BODY_TIMEOUT`).
    pub body_timeout: Duration,
    /// The slots for reading webhook bodies (`body::BODIES_AT_ONCE`).
    bodies: Arc<Semaphore>,
    pages: RwLock<HashMap<String, Page>>,
    /// The first resync of every tracker succeeded.
    ready: AtomicBool,
    /// The last resync failed (a tracker or the Store is unreachable).
    degraded: AtomicBool,
    /// Wakes the workers: something was queued.
    pub(crate) wake: Notify,
    /// Wakes the refresher: migrations were advanced.
    pub(crate) changed: Notify,
    /// Migrations advanced since the last refresh, by tracker, as the last advance that
    /// wrote to each saw it.
    worked: Mutex<Worked>,
    /// Migrations as the advances that moved them last saw them, by tracker, while the
    /// issue stays so: the page shows them without reading their comments again.
    seen: Mutex<HashMap<String, SeenOf>>,
    /// Each tracker's open migrations as its last list showed them (`known` and the page
    /// after work come from here).
    indexes: RwLock<HashMap<String, Vec<Migration>>>,
    /// Each tracker's closed migrations' lives, read at the first and every full resync:
    /// the forecast and the burn-down take them with the open ones.
    closed: RwLock<HashMap<String, Vec<crate::core::forecast::Life>>>,
}

impl Shared {
    pub fn new(store: Arc<dyn Store>, secrets: Secrets, trackers: Vec<String>) -> Shared {
        Shared {
            store,
            secrets,
            trackers,
            metrics: Metrics::default(),
            page_refresh_seconds: 30,
            body_timeout: BODY_TIMEOUT,
            bodies: body::slots(),
            pages: RwLock::default(),
            ready: AtomicBool::new(false),
            degraded: AtomicBool::new(false),
            wake: Notify::new(),
            changed: Notify::new(),
            worked: Mutex::default(),
            seen: Mutex::default(),
            indexes: RwLock::default(),
            closed: RwLock::default(),
        }
    }

    /// `tracker`'s closed migrations' lives as last read, if they were.
    pub fn closed_lives(&self, tracker: &str) -> Option<Vec<crate::core::forecast::Life>> {
        self.closed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tracker)
            .cloned()
    }

    /// Keeps `tracker`'s closed migrations' lives, or forgets them (`None`: the next page
    /// reads them again).
    pub fn set_closed_lives(&self, tracker: &str, lives: Option<Vec<crate::core::forecast::Life>>) {
        let mut closed = self.closed.write().unwrap_or_else(|e| e.into_inner());
        match lives {
            Some(lives) => closed.insert(tracker.to_string(), lives),
            None => closed.remove(tracker),
        };
    }

    /// Whether the first resync succeeded and the last one did too.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && !self.degraded.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ok: bool) {
        if ok {
            self.ready.store(true, Ordering::Relaxed);
        }
        self.degraded.store(!ok, Ordering::Relaxed);
    }

    /// Records the open migrations of `tracker` (its index).
    pub fn set_known(&self, tracker: &str, index: &[Migration]) {
        self.indexes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tracker.to_string(), index.to_vec());
    }

    /// `tracker`'s last index with `worked` as the advances that moved them left them,
    /// when every one of them is there and was moved by an advance of this service (the
    /// response to its last write is what the tracker holds, unless someone wrote since —
    /// whose webhook brings them back to the queue); otherwise `None`, and the caller lists.
    pub(crate) fn index_after(&self, tracker: &str, worked: &[u64]) -> Option<Vec<Migration>> {
        let mut index = self
            .indexes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tracker)?
            .clone();
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let seen = &seen.get(tracker)?.map;
        for number in worked {
            let s = seen.get(number)?;
            let m = index.iter_mut().find(|m| m.issue.number == *number)?;
            if s.issue.updated_at < m.issue.updated_at {
                return None;
            }
            m.issue = s.issue.clone();
        }
        // A move may have closed it: the index holds open migrations.
        index.retain(|m| m.issue.open);
        Some(index)
    }

    /// Migration `number` of `tracker` as its last list showed it, if it was open then.
    pub(crate) fn known_migration(&self, tracker: &str, number: u64) -> Option<Migration> {
        self.indexes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tracker)?
            .iter()
            .find(|m| m.issue.number == number)
            .cloned()
    }

    /// The open migrations `tracker` had at its last list, with their parents.
    pub fn known(&self, tracker: &str) -> HashMap<u64, Option<u64>> {
        self.indexes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tracker)
            .map(|index| {
                index
                    .iter()
                    .filter(|m| m.issue.open)
                    .map(|m| (m.issue.number, m.marker.parent))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn page(&self, tracker: &str) -> Option<Page> {
        self.pages
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tracker)
            .cloned()
    }

    pub fn set_page(&self, tracker: &str, page: Page) {
        let mut pages = self.pages.write().unwrap_or_else(|e| e.into_inner());
        pages.insert(tracker.to_string(), page);
        // The per-stage gauge follows the pages of every tracker.
        self.metrics.migrations.clear();
        for (name, page) in pages.iter() {
            for ((workflow, stage), count) in &page.counts {
                self.metrics
                    .migrations
                    .get_or_create(&metrics::labels(&[
                        ("tracker", name),
                        ("workflow", workflow),
                        ("stage", stage),
                    ]))
                    .set(*count);
            }
        }
        self.metrics.overdue.clear();
        for (name, page) in pages.iter() {
            for ((workflow, stage), count) in &page.overdue {
                self.metrics
                    .overdue
                    .get_or_create(&metrics::labels(&[
                        ("tracker", name),
                        ("workflow", workflow),
                        ("stage", stage),
                    ]))
                    .set(*count);
            }
        }
        self.metrics.flag_drift.clear();
        for (name, page) in pages.iter() {
            for (workflow, count) in &page.drifting {
                self.metrics
                    .flag_drift
                    .get_or_create(&metrics::labels(&[
                        ("tracker", name),
                        ("workflow", workflow),
                    ]))
                    .set(*count);
            }
        }
    }

    pub(crate) fn note_worked(&self, tracker: &str, number: u64, seen: Option<Seen>) {
        {
            let mut worked = self.worked.lock().unwrap_or_else(|e| e.into_inner());
            let entry = worked.entry((tracker.to_string(), number)).or_default();
            if seen.is_some() {
                *entry = seen;
            }
        }
        self.changed.notify_one();
    }

    /// Keeps what advances saw of the migrations they moved (`seen`).
    pub(crate) fn note_seen(&self, tracker: &str, seen: impl Iterator<Item = (u64, Seen)>) {
        let mut all = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mine = all.entry(tracker.to_string()).or_default();
        for (number, s) in seen {
            mine.map.insert(number, s);
            mine.dirty = true;
        }
    }

    /// What advances saw of `index`'s migrations that are still as they left them (the
    /// others are forgotten: their next read fills the Store's cache), and whether that
    /// changed since the last call.
    pub(crate) fn seen(&self, tracker: &str, index: &[Migration]) -> (HashMap<u64, Seen>, bool) {
        let mut all = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mine) = all.get_mut(tracker) else {
            return (HashMap::new(), false);
        };
        let now: HashMap<u64, _> = index
            .iter()
            .map(|m| (m.issue.number, m.issue.updated_at))
            .collect();
        let before = mine.map.len();
        mine.map
            .retain(|n, s| now.get(n) == Some(&s.issue.updated_at));
        let changed = std::mem::take(&mut mine.dirty) || mine.map.len() != before;
        (mine.map.clone(), changed)
    }

    /// What a restarted service finds of `seen` in the Store.
    pub(crate) fn restore_seen(&self, tracker: &str, map: HashMap<u64, Seen>) {
        let mut all = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(tracker.to_string()).or_default().map.extend(map);
    }

    pub(crate) fn take_worked(&self) -> Worked {
        std::mem::take(&mut *self.worked.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What advances saw of the migrations they moved, on one tracker (`Shared::seen`).
#[derive(Default)]
struct SeenOf {
    map: HashMap<u64, Seen>,
    /// Changed since the page last kept it in the Store.
    dirty: bool,
}

/// Migrations advanced since the last refresh: (tracker, number) → what the last advance
/// that wrote to it saw, for the page to show without reading it again.
pub(crate) type Worked = BTreeMap<(String, u64), Option<Seen>>;

/// The queue key of migration `number` on `tracker`: the same as its lease key.
pub fn queue_key(tracker: &str, number: u64) -> String {
    format!("{tracker}#{number}")
}

/// The tracker and number of a queue key.
pub fn parse_key(key: &str) -> Option<(&str, u64)> {
    let (tracker, number) = key.rsplit_once('#')?;
    Some((tracker, number.parse().ok()?))
}

/// Runs the service until `shutdown` completes: the HTTP server on `listener`, the
/// workers and the resync, for the trackers of `engines` (which share `shared.store`).
/// After `shutdown`, the server stops accepting, the workers finish what they hold (up to
/// `DRAIN`), hand back what they did not finish, and give back their leases.
pub async fn run(
    engines: &[Engine<'_>],
    shared: Arc<Shared>,
    config: &Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = listen::Limits {
        max_connections: config.max_connections,
        header_timeout: config.header_timeout,
    };
    let server = listen::serve(listener, app(shared.clone()), limits, stop_rx.clone());
    let workers = worker::Workers::new(engines, &shared, config.concurrency);
    let signal = async {
        shutdown.await;
        tracing::info!("shutting down: finishing the migrations in hand");
        let _ = stop_tx.send(true);
    };
    // The outbox's sender (DESIGN §12), when `[[notify]]` names sinks: the engines share
    // the Store, so the first one's sends for all.
    let notify = async {
        if let Some((engine, notifier)) = engines.first().and_then(|e| Some((e, e.notify?))) {
            notifier
                .run(engine, Duration::from_secs(1), stop_rx.clone())
                .await;
        }
    };
    tokio::join!(
        server,
        workers.run(stop_rx.clone()),
        resync::run(engines, &shared, config, stop_rx.clone()),
        signal,
        notify
    );
    Ok(())
}

/// Loads the pages the last run kept in the Store, so that the dashboard shows
/// something from the first request after a restart.
pub async fn load_pages(shared: &Shared) {
    for tracker in shared.trackers.clone() {
        if let Some(page) = dashboard::load(shared.store.as_ref(), &tracker).await {
            shared.set_page(&tracker, page);
        }
        if let Some(seen) = dashboard::load_seen(shared.store.as_ref(), &tracker).await {
            shared.restore_seen(&tracker, seen);
        }
    }
}

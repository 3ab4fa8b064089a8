//! The one place an engine is put together, for every command that talks to a tracker and
//! for `serve`: the catalog, the Store, each tracker (read through the Store's cache when
//! it is remote, unless `SHEPHERD_CACHE=off`), its flags backend, the metric source, and
//! the engine's settings as the `Session` read them at the edge.

use std::sync::Arc;

use anyhow::{bail, Result};

use super::config::{Session, Target};
use crate::catalog::Catalog;
use crate::engine::{Engine, Settings};
use crate::flags::Flags;
use crate::metric_source::prometheus::Prometheus;
use crate::store::Store;
use crate::tracker::cached::CachedTracker;
use crate::tracker::{Tracker, TrackerSpec};

/// Everything an engine borrows, owned in one place.
pub(super) struct Assembly {
    pub(super) catalog: Catalog,
    pub(super) store: Arc<dyn Store>,
    pub(super) trackers: Vec<Opened>,
    prometheus: Option<Prometheus>,
    settings: Settings,
    /// `[[notify]]`'s sinks, for the commands that record events and for `serve`.
    notifier: Option<crate::notify::Notifier>,
}

/// One opened tracker and its flags backend.
pub(super) struct Opened {
    pub(super) spec: TrackerSpec,
    pub(super) tracker: Box<dyn Tracker>,
    /// Local trackers are read directly: they cost nothing to read.
    local: bool,
    flags: Option<Box<dyn Flags>>,
}

/// What a command needs of its tracker and Store.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Needs {
    /// Create a local tracker that does not exist yet (`start`); other commands see a
    /// missing one empty.
    pub(super) create: bool,
    /// Write nothing to the Store (`--dry-run`).
    pub(super) dry_run: bool,
    /// Record and send notifications (`[[notify]]`): commands that move or pause.
    pub(super) notify: bool,
}

/// How one tracker is read: directly, or through the Store's cache.
pub(super) enum Reads<'a> {
    Direct(&'a dyn Tracker),
    Cached(CachedTracker<'a>),
}

impl Reads<'_> {
    pub(super) fn tracker(&self) -> &dyn Tracker {
        match self {
            Reads::Direct(t) => *t,
            Reads::Cached(c) => c,
        }
    }
}

impl Assembly {
    /// The one tracker a command acts on.
    pub(super) async fn one(session: &Session, catalog: Catalog, needs: Needs) -> Result<Self> {
        let (spec, target) = session.one_target()?;
        tracing::debug!(tracker = %spec, "opening the tracker");
        let tracker = session.open(&spec, &target, needs.create).await?;
        let store: Arc<dyn Store> =
            Arc::from(crate::store::open(&session.state_url(), needs.dry_run).await?);
        let prometheus = session.prometheus()?;
        let flags = session.flags_backend_for(&spec, &target)?;
        let notifier = match needs.notify && !needs.dry_run {
            true => super::notify_cmd::notifier(session)?,
            false => None,
        };
        Ok(Assembly {
            catalog,
            store,
            trackers: vec![Opened::new(spec, tracker, flags)],
            prometheus,
            settings: session.engine_settings(),
            notifier,
        })
    }

    /// Every tracker `serve` serves, each once.
    pub(super) async fn all(session: &Session, catalog: Catalog) -> Result<Self> {
        let targets: Vec<(TrackerSpec, Target)> = session.targets()?;
        let mut trackers: Vec<Opened> = Vec::new();
        for (spec, target) in &targets {
            let tracker = session.open(spec, target, false).await?;
            let name = tracker.describe();
            if trackers.iter().any(|o| o.tracker.describe() == name) {
                bail!("{name} is served twice: give each tracker once");
            }
            trackers.push(Opened::new(spec.clone(), tracker, None));
        }
        let store: Arc<dyn Store> =
            Arc::from(crate::store::open(&session.state_url(), false).await?);
        let prometheus = session.prometheus()?;
        // Each tracker's flags backend (its local file, its GitLab project, or the one
        // configured); one that cannot be opened stops the service with its reason.
        for (opened, (spec, target)) in trackers.iter_mut().zip(&targets) {
            opened.flags = session.flags_backend_for(spec, target)?;
        }
        let settings = Settings {
            note_drift: true,
            ..session.engine_settings()
        };
        Ok(Assembly {
            catalog,
            store,
            trackers,
            prometheus,
            settings,
            notifier: super::notify_cmd::notifier(session)?,
        })
    }

    /// How each tracker is read, in the order of `trackers`.
    pub(super) fn reads(&self) -> Vec<Reads<'_>> {
        self.trackers
            .iter()
            .map(|o| {
                if o.local || self.settings.fresh_reads {
                    Reads::Direct(o.tracker.as_ref())
                } else {
                    Reads::Cached(CachedTracker::new(o.tracker.as_ref(), self.store.as_ref()))
                }
            })
            .collect()
    }

    /// The engine of tracker `at`, read through `reads` (from `reads()`).
    pub(super) fn engine<'a>(&'a self, at: usize, reads: &'a Reads<'a>) -> Engine<'a> {
        Engine::new(
            reads.tracker(),
            &self.catalog,
            self.store.as_ref(),
            self.settings.clone(),
        )
        .with_metrics(
            self.prometheus
                .as_ref()
                .map(|p| p as &dyn crate::metric_source::MetricSource),
        )
        .with_flags(self.trackers[at].flags.as_deref())
        .with_notify(self.notifier.as_ref())
    }
}

impl Opened {
    fn new(spec: TrackerSpec, tracker: Box<dyn Tracker>, flags: Option<Box<dyn Flags>>) -> Self {
        Opened {
            local: spec.is_local(),
            spec,
            tracker,
            flags,
        }
    }
}

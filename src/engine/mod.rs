//! The async shell around `core`: fetch a snapshot from the tracker, plan, apply the plan's
//! steps. Every step looks before it writes (markers, set operations), so running twice, or
//! again after a crash between two steps, writes nothing twice.
//!
//! - `snapshot`: what a migration looks like now, read from the tracker.
//! - `advance`: `start`, `advance`, `reconcile` and `rollback` — plan and apply.
//! - `apply`: the writes of a plan, each found by its marker before it is made again.
//! - `lease`: the Store lease under which every write to a migration happens.
//! - `person`: what a person does through shepherd (`tick`, `label`, `pause`, `rollback`).
//! - `views`: `status`, `history`, the report's statuses and `report --publish`.
//! - `facts`: the answers to a snapshot's questions (merge requests, releases, metrics).
//! - `vars`: variables and the renders checked before any write.

mod advance;
mod answers;
mod apply;
pub mod commands;
mod drive;
pub mod due;
mod flag_step;
mod freezes;
mod lazy_kin;
pub mod lease;
mod overdue;
mod past;
mod person;
mod read;
mod scans;
mod slots;
mod vars;
mod waves;

pub(crate) use waves::{waves, Kin};
mod views;

pub use person::Paused;
pub use vars::{check_renders, preflight, resolve_vars};

use std::sync::atomic::AtomicU64;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::core::gates::GateReport;
use crate::core::machine::Plan;
use crate::core::marker::IssueMarker;
use crate::core::snapshot::IssueView;
use crate::core::workflow::Workflow;
use crate::store::Store;
use crate::tracker::{label_spec, Issue, StateFilter, Tracker, TrackerError};

/// The label and marker of the one summary issue that `report --publish` keeps up to date.
pub(crate) const SUMMARY_LABEL: &str = "shepherd report";
pub(crate) const SUMMARY_MARKER: &str = "<!-- shepherd:report -->";

/// Stands for an issue's own number until the issue exists; replaced right after creation.
pub(crate) const PENDING_REF: &str = "SHEPHERD-PENDING-ISSUE-REF";
/// Stands for an issue's own URL until the issue exists.
pub(crate) const PENDING_URL: &str = "SHEPHERD-PENDING-ISSUE-URL";

/// Backoff of a migration that keeps failing (the service retries it; `status` shows it).
pub const BACKOFF_MIN: std::time::Duration = std::time::Duration::from_secs(60);
pub const BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(3600);

/// How an engine behaves, decided once at the edge (the CLI, `serve`) and handed in.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Who acts: recorded in audit markers.
    pub actor: String,
    /// This run's id: the owner of its leases and the mark of its audit comments
    /// (`new_run_id`).
    pub run_id: String,
    /// How many requests run at once against a remote tracker.
    pub concurrency: usize,
    /// Read every migration whole and fresh and take no shortcut (`SHEPHERD_CACHE=off`).
    pub fresh_reads: bool,
    /// Say on the tracking issue when a flag drifted from what the stages set (`serve`).
    pub note_drift: bool,
    /// How long a lease lasts without renewal (`SHEPHERD_LEASE_TTL`): it bounds how long
    /// the work of a killed process stays blocked.
    pub lease_ttl: std::time::Duration,
    /// `[people] operators`: who may give comment commands on a tracker that keeps no
    /// access levels (the local one); `None`: anyone.
    pub operators: Option<Vec<String>>,
    /// `[[freeze]]` of `shepherd.toml`: change freezes besides the tracker's own.
    pub freezes: Vec<crate::core::freeze::Freeze>,
}

impl Settings {
    /// The defaults, acting as `actor`: 8 requests at once, caches on, a 10 s lease.
    pub fn acting_as(actor: &str) -> Settings {
        Settings {
            actor: actor.to_string(),
            run_id: new_run_id("host"),
            concurrency: 8,
            fresh_reads: false,
            note_drift: false,
            lease_ttl: lease::DEFAULT_LEASE_TTL,
            operators: None,
            freezes: Vec::new(),
        }
    }
}

pub struct Engine<'a> {
    pub tracker: &'a dyn Tracker,
    pub catalog: &'a Catalog,
    /// Leases, failures, cursors and caches.
    pub store: &'a dyn Store,
    /// Who acts: recorded in audit markers.
    pub actor: String,
    /// This run's random id: the owner of its leases and the mark of its audit comments.
    pub run_id: String,
    /// How many requests run at once against a remote tracker (which enforces it);
    /// commands work on twice as many migrations at once (`in_flight`).
    pub concurrency: usize,
    /// Read every migration whole and fresh (comments, label history, children) and take
    /// no shortcut: `SHEPHERD_CACHE=off`, the run the shortcuts are compared against.
    pub fresh_reads: bool,
    /// How long a lease lasts without renewal.
    pub lease_ttl: std::time::Duration,
    /// Told how far a long run has come (a progress bar on a terminal).
    pub progress: &'a dyn Progress,
    lease_counter: AtomicU64,
    /// The Store's own random id (kept in the Store), read once.
    pub(crate) store_id: tokio::sync::OnceCell<String>,
    /// Where metric gates ask (Prometheus); `None`: metric gates are inconclusive.
    pub metrics: Option<&'a dyn crate::metric_source::MetricSource>,
    /// Where feature flags are read and set; `None`: `feature_flag` actions are not
    /// performed (the comment says what to run) and flag gates do not hold.
    pub flags: Option<&'a dyn crate::flags::Flags>,
    /// After each `advance`, say on the tracking issue (once per drift) when a flag is not
    /// what the stages set: the service's job.
    pub note_drift: bool,
    /// Facts answered a moment ago (`facts`).
    pub(crate) facts: answers::FactCache,
    /// `Settings::operators`.
    pub operators: Option<Vec<String>>,
    /// The issues this run's applies saw every comment of (`scans::note_looked`).
    pub(crate) looked: std::sync::Mutex<Vec<(u64, Option<u64>)>>,
    /// Where notifications go (`[[notify]]`); `None`: nothing is put into the outbox.
    pub notify: Option<&'a crate::notify::Notifier>,
    /// `Settings::freezes`.
    pub freezes: Vec<crate::core::freeze::Freeze>,
    /// The tracker's change freeze periods, read once per run (`freezes`).
    pub(crate) tracker_freezes: freezes::TrackerFreezes,
}

/// Progress of a long run, for a progress bar. The default does nothing.
pub trait Progress: Send + Sync {
    fn start(&self, _total: usize) {}
    fn inc(&self) {}
    fn finish(&self) {}
}

/// A `Progress` that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What `reconcile` did: every migration it looked at, and the ones that failed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Reconciled {
    pub migrations: Vec<Advanced>,
    pub errors: Vec<Failed>,
}

/// A migration whose advance failed; the others went on.
#[derive(Clone, Debug, Serialize)]
pub struct Failed {
    #[serde(rename = "ref")]
    pub number: u64,
    pub error: String,
}

/// Why a number is no migration: no such issue, no shepherd marker, or a child without
/// a workflow of its own. The service drops such a key instead of retrying it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoMigration(pub String);

/// The issue is a child with no workflow of its own, of migration `parent`: what happens
/// on it (a comment command) is its parent's to answer.
#[derive(Debug, thiserror::Error)]
#[error("#{number} is no migration: it is a {template} issue of #{parent} without a workflow of its own")]
pub struct PlainChild {
    pub number: u64,
    pub template: String,
    pub parent: u64,
}

/// A shepherd issue: an issue with a marker naming its workflow.
#[derive(Clone, Debug)]
pub struct Migration {
    pub issue: Issue,
    pub marker: IssueMarker,
    /// The task items of the issue's body, parsed once for every snapshot made of it.
    pub checklists: crate::core::checklist::Memo,
    /// The body as every view of the issue shares it, copied once.
    body: std::sync::OnceLock<std::sync::Arc<str>>,
}

impl Migration {
    pub fn new(issue: Issue, marker: IssueMarker) -> Migration {
        Migration {
            issue,
            marker,
            checklists: Default::default(),
            body: Default::default(),
        }
    }

    /// The issue as `core` sees it, sharing the body and its parsed checklists with the
    /// other views of this migration.
    pub fn view(&self) -> IssueView {
        IssueView {
            number: self.issue.number,
            title: self.issue.title.clone(),
            body: self.shared_body(),
            labels: self.issue.labels.clone(),
            open: self.issue.open,
            created_at: self.issue.created_at,
            url: self.issue.url.clone(),
            checklists: self.checklists.clone(),
        }
    }

    /// The body, copied the first time (again if it has changed since).
    pub fn shared_body(&self) -> std::sync::Arc<str> {
        let kept = self.body.get_or_init(|| self.issue.body.as_str().into());
        if **kept == *self.issue.body {
            kept.clone()
        } else {
            self.issue.body.as_str().into()
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Started {
    #[serde(rename = "ref")]
    pub number: u64,
    pub url: String,
    pub workflow: String,
    pub stage: Option<String>,
}

/// What `advance` did (or, in a dry run, would do) to one migration.
#[derive(Clone, Debug, Serialize)]
pub struct Advanced {
    #[serde(rename = "ref")]
    pub number: u64,
    pub workflow: String,
    pub stage: Option<String>,
    pub transitions: Vec<MoveReport>,
    pub blocked_by: Vec<GateReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<u64>,
    /// Why this run left the migration alone (another shepherd holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The comment commands this run answered (`/shepherd …`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<commands::Answered>,
    /// The tracking issue as this run's last write left it, with its comments: what a
    /// page may show of it without reading it again (never what a decision reads).
    #[serde(skip)]
    pub seen: Option<Seen>,
}

/// A migration as the advance that moved it last saw it (`Advanced::seen`).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Seen {
    /// The issue as the move's response showed it.
    pub issue: Issue,
    /// Its comments: the claim's read-back and what was posted after it.
    pub comments: Vec<crate::tracker::Comment>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MoveReport {
    pub from: Option<String>,
    pub to: String,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ticked {
    #[serde(rename = "ref")]
    pub number: u64,
    pub item: String,
    pub checked: bool,
    pub changed: bool,
}

impl<'a> Engine<'a> {
    /// How many migrations are worked on at once: twice the requests the tracker lets
    /// run at once, so that while one migration works between its requests another's
    /// request has its slot.
    /// With one request at a time, one migration at a time, in order: a run whose writes
    /// come in the same order every time.
    pub(crate) fn in_flight(&self) -> usize {
        match self.concurrency {
            0 | 1 => 1,
            n => n * 2,
        }
    }

    /// An engine on `tracker` with these settings, asking no metric source and no flags
    /// backend, showing no progress (`with_metrics`, `with_flags`, `with_progress` add them).
    pub fn new(
        tracker: &'a dyn Tracker,
        catalog: &'a Catalog,
        store: &'a dyn Store,
        settings: Settings,
    ) -> Engine<'a> {
        let Settings {
            actor,
            run_id,
            concurrency,
            fresh_reads,
            note_drift,
            lease_ttl,
            operators,
            freezes,
        } = settings;
        Engine {
            tracker,
            catalog,
            store,
            actor,
            run_id,
            concurrency,
            fresh_reads,
            lease_ttl,
            progress: &NoProgress,
            lease_counter: AtomicU64::new(0),
            store_id: tokio::sync::OnceCell::new(),
            metrics: None,
            flags: None,
            note_drift,
            facts: answers::FactCache::default(),
            operators,
            notify: None,
            looked: Default::default(),
            freezes,
            tracker_freezes: Default::default(),
        }
    }

    /// The same engine, asking `metrics` for metric gates.
    pub fn with_metrics(
        mut self,
        metrics: Option<&'a dyn crate::metric_source::MetricSource>,
    ) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same engine, reading and setting flags through `flags`.
    pub fn with_flags(mut self, flags: Option<&'a dyn crate::flags::Flags>) -> Self {
        self.flags = flags;
        self
    }

    /// The same engine, telling `progress` how far a long run has come.
    pub fn with_progress(mut self, progress: &'a dyn Progress) -> Self {
        self.progress = progress;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.tracker.now()
    }

    /// The Store's id: made up and kept the first time a Store is used.
    pub(crate) async fn store_id(&self) -> Result<&String> {
        self.store_id
            .get_or_try_init(|| async {
                if let Some(id) = self.store.cursor("store-id").await? {
                    return Ok::<_, anyhow::Error>(id);
                }
                let id = new_run_id("store");
                self.store.set_cursor("store-id", &id).await?;
                Ok(self.store.cursor("store-id").await?.unwrap_or(id))
            })
            .await
    }

    /// The migration with number `number`, or an error saying why it is none (a
    /// `NoMigration` when there is no such issue or it is no migration of its own).
    pub async fn migration(&self, number: u64) -> Result<(Migration, &'a Workflow)> {
        let issue = match self.tracker.issue(number).await {
            Err(e @ TrackerError::NotFound(n)) if n == number => {
                return Err(NoMigration(e.to_string()).into())
            }
            read => read?,
        };
        let Some(marker) = IssueMarker::find(&issue.body) else {
            return Err(NoMigration(format!("#{number} is no migration: it has no shepherd marker (start one with `shepherd start WORKFLOW`)")).into());
        };
        let Some(name) = marker.workflow.clone() else {
            let template = marker.template.as_deref().unwrap_or("child").to_string();
            if let Some(parent) = marker.parent {
                return Err(PlainChild {
                    number,
                    template,
                    parent,
                }
                .into());
            }
            return Err(NoMigration(format!(
                "#{number} is no migration: it is a {template} issue without a workflow"
            ))
            .into());
        };
        let workflow = self
            .catalog
            .workflow(&name)
            .with_context(|| format!("#{number} runs workflow `{name}`"))?;
        Ok((Migration::new(issue, marker), workflow))
    }

    /// The open shepherd issues: one filtered list per distinct set of tracking labels
    /// (the tracker pages through it), so a reconcile costs about N/100 list requests —
    /// with the Store's cache, one list of what changed since the last poll.
    pub async fn index(&self) -> Result<Vec<Migration>> {
        self.index_of(StateFilter::Open).await
    }

    /// Like `index`, with closed issues too when `state` says so.
    pub async fn index_of(&self, state: StateFilter) -> Result<Vec<Migration>> {
        let mut sets: Vec<Vec<String>> = self
            .catalog
            .workflows
            .values()
            .map(|w| {
                let mut labels = w.tracking.labels.clone();
                labels.sort();
                labels
            })
            .collect();
        sets.sort();
        sets.dedup();
        if sets.iter().any(|s| s.is_empty()) {
            sets = vec![Vec::new()];
        }
        let lists = self.tracker.list_sets(state, &sets).await?;
        let mut out: Vec<Migration> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for issue in lists.into_iter().flatten() {
            if !seen.insert(issue.number) {
                continue;
            }
            if let Some(marker) = IssueMarker::find(&issue.body) {
                out.push(Migration::new(issue, marker));
            }
        }
        out.sort_by_key(|m| m.issue.number);
        Ok(out)
    }

    /// A migration and all its children, open and closed: what `advance REF` looks at.
    pub(crate) async fn local_index(&self, number: u64) -> Result<Vec<Migration>> {
        let (m, _) = self.migration(number).await?;
        let mut out = vec![m];
        out.extend(self.children(number).await?);
        Ok(out)
    }

    /// The children of a migration, open and closed, from the tracker.
    pub(crate) async fn children(&self, number: u64) -> Result<Vec<Migration>> {
        Ok(self
            .tracker
            .children(number)
            .await?
            .into_iter()
            .filter_map(|issue| {
                let marker = IssueMarker::find(&issue.body)?;
                (marker.parent == Some(number)).then_some(Migration::new(issue, marker))
            })
            .collect())
    }

    pub(crate) fn workflow_of(&self, m: &Migration) -> Result<&'a Workflow> {
        let name = m.marker.workflow.as_deref().with_context(|| {
            format!(
                "#{} is no migration: it has no workflow of its own",
                m.issue.number
            )
        })?;
        self.catalog.workflow(name)
    }

    pub(crate) async fn ensure_labels(&self, workflow: &Workflow) -> Result<()> {
        let specs: Vec<_> = workflow
            .labels()
            .iter()
            .map(|l| {
                let description = workflow
                    .stages
                    .iter()
                    .find(|s| &s.label == l)
                    .map(|s| format!("shepherd: {} stage {}", workflow.name, s.id))
                    .unwrap_or_else(|| format!("shepherd: used by {}", workflow.name));
                label_spec(l, &description)
            })
            .collect();
        self.tracker.ensure_labels(&specs).await?;
        Ok(())
    }
}

/// A random id for a run on `host`: host, process and random bits.
pub fn new_run_id(host: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{host}-{}-{:08x}", std::process::id(), h.finish() as u32)
}

pub(crate) fn report_plan(
    number: u64,
    workflow: &Workflow,
    plan: Plan,
    created: Vec<u64>,
) -> Advanced {
    Advanced {
        number,
        workflow: workflow.name.clone(),
        stage: plan.stage,
        transitions: plan
            .transitions
            .iter()
            .map(|t| MoveReport {
                from: t.from.clone(),
                to: t.to.clone(),
                at: t.at,
                reason: t.reason.clone(),
                resumed: t.resumed,
            })
            .collect(),
        blocked_by: plan.blocked_by,
        warnings: plan.warnings,
        created,
        skipped: None,
        commands: Vec::new(),
        seen: None,
    }
}

/// `f` over `items` on every core, in order.
pub(crate) fn on_every_core<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || items.len() < 64 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(cores);
    std::thread::scope(|scope| {
        let f = &f;
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<U>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

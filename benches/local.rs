//! The local tracker at 10,000 migrations of the shipped workflows, 500 of them in a stage
//! that has a child issue: `status`, `report --format json` and `reconcile` of the real
//! binary, against a baseline measured in the same run — reading every row (issues, their
//! labels, comments and label events) with a bare rusqlite query. Then the same `status`
//! in-process through a tracker that times each call, to tell the tracker's share from
//! the engine's, and `start` on a file of 10 migrations and on the file of 10,000.
//!
//! Run with `cargo bench --bench local`. Figures are medians of 5 runs after a warm-up.

#[path = "../tests/it/seeds.rs"]
mod seeds;
mod timing;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shepherd::catalog::{Catalog, Sources};
use shepherd::core::marker::{IssueMarker, TransitionMarker};
use shepherd::core::report;
use shepherd::core::snapshot::LabelEvent;
use shepherd::core::workflow::Workflow;
use shepherd::engine::{Engine, Settings};
use shepherd::render::{Context, IssueRef};
use shepherd::tracker::local::LocalTracker;
use shepherd::tracker::{
    Comment, Issue, IssueEdit, IssueQuery, LabelSpec, NewIssue, Tracker, TrackerError,
};
use timing::median;

const N: usize = 10_000;
const WITH_CHILDREN: usize = 500;
const T0: &str = "2026-01-01T00:00:00Z";
const LATER: &str = "2026-01-01T01:00:00Z";
const BIN: &str = env!("CARGO_BIN_EXE_shepherd");

fn main() {
    let catalog = Sources::builtin()
        .load()
        .expect("the shipped workflows load");
    // `LOCAL_BENCH_DIR=DIR` keeps the seeded files there (and reuses them), to profile.
    let dir = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("LOCAL_BENCH_DIR").map(std::path::PathBuf::from);
    let root = kept.clone().unwrap_or_else(|| dir.path().to_path_buf());
    let big = root.join("big.db");
    let small = root.join("small.db");
    let seeding = Instant::now();
    if kept.is_none() || !big.exists() {
        let _ = std::fs::remove_file(&small);
        seed(&big, &catalog, N, WITH_CHILDREN);
        seed(&small, &catalog, 10, 1);
    }
    println!(
        "seeded {N} migrations ({WITH_CHILDREN} with a child) in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let baseline = median(|| bare_read(&big));
    let status = median(|| shepherd(&big, &["status", "--format", "json"]));
    let report = median(|| shepherd(&big, &["report", "--format", "json"]));
    let reconcile = median(|| shepherd(&big, &["reconcile", "--format", "json"]));
    let ratio = |d: Duration| d.as_secs_f64() / baseline.as_secs_f64();
    println!("local tracker, {N} migrations, {WITH_CHILDREN} with children (medians):");
    println!("  bare read of every row:  {:>7.1} ms", ms(baseline));
    for (name, d) in [
        ("status", status),
        ("report --format json", report),
        ("reconcile", reconcile),
    ] {
        println!(
            "  {name:<24} {:>7.1} ms  {:>5.1}x the bare read",
            ms(d),
            ratio(d)
        );
    }

    let (total, calls) = status_in_process(&big, &catalog);
    let in_tracker: Duration = calls.values().map(|(_, d)| *d).sum();
    println!(
        "  status in-process: {:.1} ms, of which the tracker {:.1} ms ({:.0}%), the engine {:.1} ms",
        ms(total),
        ms(in_tracker),
        100.0 * in_tracker.as_secs_f64() / total.as_secs_f64(),
        ms(total.saturating_sub(in_tracker))
    );
    for (name, (count, d)) in &calls {
        println!("    {name:<14} {count:>6} calls {:>8.1} ms", ms(*d));
    }

    let mut k = 0;
    let mut start = |db: &Path| {
        k += 1;
        median(|| {
            k += 1;
            let title = format!("bench start {k}");
            let mut args = vec!["start", "gitaly-migration", "--title", &title];
            // The seed's variables, with a feature flag of its own.
            args.extend(["--var", "feature_flag=BENCH_FLAG"]);
            args.extend(&seeds::GITALY_VARS[2..]);
            shepherd(db, &args)
        })
    };
    let start_small = start(&small);
    let start_big = start(&big);
    println!(
        "  start at 10 migrations: {:.1} ms; at {N}: {:.1} ms ({:.2}x)",
        ms(start_small),
        ms(start_big),
        start_big.as_secs_f64() / start_small.as_secs_f64()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the real binary on `db` at `LATER`; its output is thrown away.
fn shepherd(db: &Path, args: &[&str]) {
    let status = Command::new(BIN)
        .arg("--tracker")
        .arg(format!("local:{}", db.display()))
        .args(["--now", LATER])
        .args(args)
        .env("USER", "bench")
        .env_remove("SHEPHERD_TRACKER")
        .stdout(Stdio::null())
        .status()
        .expect("shepherd runs");
    assert!(status.success(), "shepherd {args:?} failed");
}

/// Every row the commands above read, with a bare query per table.
fn bare_read(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut rows = 0usize;
    let mut stmt = conn
        .prepare("SELECT number, title, body, open, author, created_at, updated_at FROM issues")
        .unwrap();
    let mut q = stmt.query([]).unwrap();
    while let Some(r) = q.next().unwrap() {
        let row: (i64, String, String, bool, String, String, String) = (
            r.get(0).unwrap(),
            r.get(1).unwrap(),
            r.get(2).unwrap(),
            r.get(3).unwrap(),
            r.get(4).unwrap(),
            r.get(5).unwrap(),
            r.get(6).unwrap(),
        );
        rows += std::hint::black_box(row).2.len().min(1);
    }
    for sql in [
        "SELECT issue, label, '', '' FROM issue_labels",
        "SELECT issue, body, author, created_at FROM comments",
        "SELECT issue, label, actor, at FROM label_events",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let mut q = stmt.query([]).unwrap();
        while let Some(r) = q.next().unwrap() {
            let row: (i64, String, String, String) = (
                r.get(0).unwrap(),
                r.get(1).unwrap(),
                r.get(2).unwrap(),
                r.get(3).unwrap(),
            );
            rows += std::hint::black_box(row).1.len().min(1);
        }
    }
    assert!(rows > N);
}

/// `n` migrations through the tracker as shepherd writes them: the tracking issue with its
/// marker, an audit comment and a label move per stage entered; `children` of them (the
/// gitaly migrations first) in Acceptance Testing with their acceptance-testing child.
fn seed(db: &Path, catalog: &Catalog, n: usize, children: usize) {
    let tracker = LocalTracker::open(db, true, Some(time(T0)), "bench").unwrap();
    let names = [
        "gitaly-migration",
        "feature-flag-rollout",
        "acceptance-testing",
    ];
    let bodies: BTreeMap<&str, (String, BTreeMap<String, String>)> = names
        .iter()
        .map(|name| (*name, body(catalog, name, None)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut with_child = 0;
        for i in 0..n {
            let name = names[i % names.len()];
            let workflow = &catalog.workflows[name];
            let child = name == "gitaly-migration" && with_child < children;
            let depth = if child {
                with_child += 1;
                workflow
                    .stages
                    .iter()
                    .position(|s| s.id == "acceptance-testing")
                    .unwrap()
            } else {
                // Any open stage but the one with children.
                let open: Vec<usize> = (0..workflow.stages.len())
                    .filter(|k| {
                        !workflow.stages[*k].terminal
                            && workflow.stages[*k].id != "acceptance-testing"
                    })
                    .collect();
                open[(i / names.len()) % open.len()]
            };
            let number = migration(&tracker, workflow, &bodies[name].0, i, depth).await;
            if child {
                let (text, vars) = body(catalog, "acceptance-testing", Some(number));
                let marker = IssueMarker {
                    workflow: Some("acceptance-testing".into()),
                    parent: Some(number),
                    template: Some("acceptance-testing".into()),
                    entry: Some(depth as u64 + 1),
                    vars,
                };
                let w = &catalog.workflows["acceptance-testing"];
                let issue = tracker
                    .create_issue(&NewIssue {
                        title: format!("Acceptance testing of migration {i}"),
                        body: marker.append_to(&text),
                        labels: vec!["Acceptance Testing".into()],
                    })
                    .await
                    .unwrap();
                enter(&tracker, w, issue.number, None, 0, 1).await;
                tracker.link(number, issue.number).await.unwrap();
            }
        }
    });
}

/// One migration of `workflow` that has entered its stages up to `depth`.
async fn migration(
    tracker: &LocalTracker,
    workflow: &Workflow,
    body: &str,
    i: usize,
    depth: usize,
) -> u64 {
    let issue = tracker
        .create_issue(&NewIssue {
            title: format!("Migration {i}: move the thing"),
            body: body.to_string(),
            labels: workflow.tracking.labels.clone(),
        })
        .await
        .unwrap();
    let mut from = None;
    for k in 0..=depth {
        enter(tracker, workflow, issue.number, from, k, k as u64 + 1).await;
        from = Some(k);
    }
    issue.number
}

/// The audit comment and label move of entering stage `to`.
async fn enter(
    tracker: &LocalTracker,
    workflow: &Workflow,
    number: u64,
    from: Option<usize>,
    to: usize,
    seq: u64,
) {
    let marker = TransitionMarker {
        seq,
        from: from.map(|f| workflow.stages[f].id.clone()),
        to: workflow.stages[to].id.clone(),
        by: "bench".into(),
        reason: None,
        rollback: false,
        run: None,
        store: None,
        untick: Vec::new(),
        command: None,
    };
    tracker
        .add_comment(
            number,
            &format!(
                "**shepherd** moved this migration to ~\"{}\".\n\n{}",
                workflow.stages[to].label,
                marker.render()
            ),
        )
        .await
        .unwrap();
    let edit = IssueEdit {
        add: vec![workflow.stages[to].label.clone()],
        remove: from
            .map(|f| vec![workflow.stages[f].label.clone()])
            .unwrap_or_default(),
        ..IssueEdit::default()
    };
    tracker.edit_issue(number, &edit).await.unwrap();
}

/// The tracking issue's body of `name` as rendered for a migration, with its marker.
fn body(catalog: &Catalog, name: &str, parent: Option<u64>) -> (String, BTreeMap<String, String>) {
    let workflow = &catalog.workflows[name];
    let vars: BTreeMap<String, String> = workflow
        .variables
        .iter()
        .map(|v| {
            let value = v.default.clone().unwrap_or_else(|| match v.name.as_str() {
                "feature_flag" => "bench_flag".into(),
                "release_project" => "gitlab-org/gitlab".into(),
                other => format!("{other}_value"),
            });
            (v.name.clone(), value)
        })
        .collect();
    let me = IssueRef {
        number: "1".into(),
        ..Default::default()
    };
    let cx = Context {
        vars: &vars,
        migration: Some(me.clone()),
        parent: parent.map(|p| IssueRef {
            number: p.to_string(),
            ..Default::default()
        }),
        issue: Some(me),
        now: time(T0),
    };
    let rendered = catalog
        .renderer
        .render(&workflow.tracking.template, &cx.to_value())
        .unwrap_or_else(|e| panic!("{name} renders: {e}"));
    if parent.is_some() {
        return (rendered.body, vars);
    }
    let marker = IssueMarker {
        workflow: Some(name.into()),
        vars: vars.clone(),
        ..Default::default()
    };
    (marker.append_to(&rendered.body), vars)
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// `status` of every open migration, as the CLI runs it, on a tracker that times its
/// calls: the median total, and per call the count and time of that run.
fn status_in_process(
    db: &Path,
    catalog: &Catalog,
) -> (Duration, BTreeMap<&'static str, (usize, Duration)>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut calls = BTreeMap::new();
    let total = median(|| {
        let tracker = Timed {
            inner: LocalTracker::open(db, false, Some(time(LATER)), "bench").unwrap(),
            calls: Mutex::new(BTreeMap::new()),
        };
        let state = tempfile::tempdir().unwrap();
        let store =
            shepherd::store::sqlite::SqliteStore::open(&state.path().join("state.db"), false)
                .unwrap();
        let engine = Engine::new(&tracker, catalog, &store, Settings::acting_as("bench"));
        runtime.block_on(async {
            let index = engine.index().await.unwrap();
            let statuses = engine
                .statuses(&index, false, &report::Filter::default())
                .await
                .unwrap();
            assert!(statuses.len() >= N);
        });
        calls = tracker.calls.into_inner().unwrap();
    });
    (total, calls)
}

/// A tracker that adds up the time spent in each of its calls.
struct Timed {
    inner: LocalTracker,
    calls: Mutex<BTreeMap<&'static str, (usize, Duration)>>,
}

impl Timed {
    async fn time<T>(&self, name: &'static str, f: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        let mut calls = self.calls.lock().unwrap();
        let entry = calls.entry(name).or_default();
        entry.0 += 1;
        entry.1 += start.elapsed();
        out
    }
}

#[async_trait]
impl Tracker for Timed {
    async fn merge_requests(
        &self,
        number: u64,
    ) -> Result<Vec<shepherd::core::facts::MergeRequest>, TrackerError> {
        self.time("merge_requests", self.inner.merge_requests(number))
            .await
    }
    async fn releases(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<shepherd::core::facts::Release>, TrackerError> {
        self.time("releases", self.inner.releases(project)).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }
    async fn create_issue(&self, issue: &NewIssue) -> Result<Issue, TrackerError> {
        self.time("create_issue", self.inner.create_issue(issue))
            .await
    }
    async fn issue(&self, number: u64) -> Result<Issue, TrackerError> {
        self.time("issue", self.inner.issue(number)).await
    }
    async fn find_issues(&self, query: IssueQuery<'_>) -> Result<Vec<Issue>, TrackerError> {
        let what = if query.since.is_some() {
            "list_since"
        } else {
            "list_issues"
        };
        self.time(what, self.inner.find_issues(query)).await
    }
    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError> {
        self.time("update_body", self.inner.update_body(number, body))
            .await
    }
    async fn edit_issue(&self, number: u64, edit: &IssueEdit) -> Result<Issue, TrackerError> {
        self.time("edit_issue", self.inner.edit_issue(number, edit))
            .await
    }
    async fn delete_comment(&self, number: u64, comment: u64) -> Result<(), TrackerError> {
        self.time("delete_comment", self.inner.delete_comment(number, comment))
            .await
    }
    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError> {
        self.time("comments", self.inner.comments(number)).await
    }
    async fn comments_of(
        &self,
        numbers: &[u64],
    ) -> Result<Option<std::collections::HashMap<u64, Vec<Comment>>>, TrackerError> {
        self.time("comments_of", self.inner.comments_of(numbers))
            .await
    }
    async fn add_comment(&self, number: u64, body: &str) -> Result<Comment, TrackerError> {
        self.time("add_comment", self.inner.add_comment(number, body))
            .await
    }
    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
        self.time("label_events", self.inner.label_events(number))
            .await
    }
    async fn ensure_labels(&self, labels: &[LabelSpec]) -> Result<(), TrackerError> {
        self.time("ensure_labels", self.inner.ensure_labels(labels))
            .await
    }
    async fn children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        self.time("children", self.inner.children(parent)).await
    }
    async fn link(&self, parent: u64, child: u64) -> Result<(), TrackerError> {
        self.time("link", self.inner.link(parent, child)).await
    }
}

//! Crash safety: the engine runs on a tracker that fails at the n-th write (before or
//! after performing it), for every n; a second, healthy run must finish the work with no
//! duplicate issue, comment or label move.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shepherd::catalog::Sources;
use shepherd::core::marker::{IssueMarker, TransitionMarker};
use shepherd::core::snapshot::LabelEvent;
use shepherd::engine::{Engine, Settings};
use shepherd::store::sqlite::SqliteStore;
use shepherd::tracker::local::LocalTracker;
use shepherd::tracker::{
    Comment, Issue, IssueEdit, IssueQuery, LabelSpec, NewIssue, StateFilter, Tracker, TrackerError,
};

use crate::support::{at, block_on, start_gitaly, Shepherd, TO_ACCEPTANCE_TESTING};

/// Fails the `fail_at`-th write; with `after`, performs it first (a lost response).
struct Faulty {
    inner: LocalTracker,
    writes: AtomicUsize,
    fail_at: usize,
    after: bool,
}

impl Faulty {
    async fn write<T, F: std::future::Future<Output = Result<T, TrackerError>>>(
        &self,
        f: F,
    ) -> Result<T, TrackerError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if n == self.fail_at && !self.after {
            return Err(TrackerError::Other(format!(
                "injected failure before write {n}"
            )));
        }
        let out = f.await?;
        if n == self.fail_at {
            return Err(TrackerError::Other(format!(
                "injected failure after write {n}"
            )));
        }
        Ok(out)
    }
}

#[async_trait]
impl Tracker for Faulty {
    async fn merge_requests(
        &self,
        number: u64,
    ) -> Result<Vec<shepherd::core::facts::MergeRequest>, TrackerError> {
        self.inner.merge_requests(number).await
    }
    async fn releases(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<shepherd::core::facts::Release>, TrackerError> {
        self.inner.releases(project).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }
    async fn create_issue(&self, issue: &NewIssue) -> Result<Issue, TrackerError> {
        self.write(self.inner.create_issue(issue)).await
    }
    async fn issue(&self, number: u64) -> Result<Issue, TrackerError> {
        self.inner.issue(number).await
    }
    async fn find_issues(&self, query: IssueQuery<'_>) -> Result<Vec<Issue>, TrackerError> {
        self.inner.find_issues(query).await
    }
    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError> {
        self.write(self.inner.update_body(number, body)).await
    }
    async fn edit_issue(&self, number: u64, edit: &IssueEdit) -> Result<Issue, TrackerError> {
        self.write(self.inner.edit_issue(number, edit)).await
    }
    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError> {
        self.inner.comments(number).await
    }
    async fn add_comment(&self, number: u64, body: &str) -> Result<Comment, TrackerError> {
        self.write(self.inner.add_comment(number, body)).await
    }
    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
        self.inner.label_events(number).await
    }
    async fn ensure_labels(&self, labels: &[LabelSpec]) -> Result<(), TrackerError> {
        self.write(self.inner.ensure_labels(labels)).await
    }
    async fn delete_comment(&self, number: u64, comment: u64) -> Result<(), TrackerError> {
        self.write(self.inner.delete_comment(number, comment)).await
    }
    async fn children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        self.inner.children(parent).await
    }
    async fn link(&self, parent: u64, child: u64) -> Result<(), TrackerError> {
        self.write(self.inner.link(parent, child)).await
    }
}

/// What must hold after the work is done, whatever crashed before.
fn check_final(db: &std::path::Path) -> String {
    let tracker = LocalTracker::open(db, false, None, "t").unwrap();
    let issues = block_on(tracker.list_issues(StateFilter::All, &[])).unwrap();
    let children: Vec<&Issue> = issues
        .iter()
        .filter(|i| IssueMarker::find(&i.body).is_some_and(|m| m.parent == Some(1)))
        .collect();
    assert_eq!(children.len(), 1, "exactly one acceptance-testing issue");
    let child = children[0];
    assert!(
        !child.body.contains("SHEPHERD-PENDING-ISSUE-REF"),
        "the child's own number is filled in"
    );
    assert!(
        child
            .labels
            .contains(&"acceptance::preparation".to_string()),
        "{:?}",
        child.labels
    );
    let mut summary = String::new();
    for issue in &issues {
        let comments = block_on(tracker.comments(issue.number)).unwrap();
        let mut seen = BTreeMap::new();
        for c in &comments {
            let key = TransitionMarker::find(&c.body)
                .map(|t| format!("t{}", t.seq))
                .or_else(|| {
                    c.body
                        .rfind("shepherd:action=")
                        .map(|i| c.body[i..].to_string())
                })
                .unwrap_or_else(|| c.body.clone());
            *seen.entry(key).or_insert(0) += 1;
        }
        assert!(
            seen.values().all(|n| *n == 1),
            "#{} has a duplicate comment: {seen:?}",
            issue.number
        );
        let events = block_on(tracker.label_events(issue.number)).unwrap();
        let mut labels = issue.labels.clone();
        labels.sort();
        summary.push_str(&format!(
            "#{} open={} labels={labels:?} comments={} label_events={}\n",
            issue.number,
            issue.open,
            comments.len(),
            events.len()
        ));
    }
    summary
}

#[test]
fn a_crash_at_any_write_is_finished_by_the_next_run_without_duplicates() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m"));
    for section in TO_ACCEPTANCE_TESTING {
        s.tick_section(n, None, section, &at("1h"));
    }
    let baseline = std::fs::read(s.db()).unwrap();
    let catalog = Sources::builtin().load().unwrap();
    let now = DateTime::parse_from_rfc3339(&at("2h"))
        .unwrap()
        .with_timezone(&Utc);

    let state = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&state.path().join("state.db"), false).unwrap();
    // The run without a crash, for comparison.
    let clean = tempfile::tempdir().unwrap();
    let clean_db = clean.path().join("t.db");
    std::fs::write(&clean_db, &baseline).unwrap();
    let healthy = LocalTracker::open(&clean_db, false, Some(now), "tester").unwrap();
    let engine = Engine::new(&healthy, &catalog, &store, Settings::acting_as("tester"));
    let done = block_on(engine.advance(n, false)).unwrap();
    assert_eq!(done.stage.as_deref(), Some("acceptance-testing"));
    assert_eq!(done.transitions.len(), 6);
    let expected = check_final(&clean_db);

    let mut crashes = 0;
    for after in [false, true] {
        for fail_at in 0.. {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("t.db");
            std::fs::write(&db, &baseline).unwrap();
            let faulty = Faulty {
                inner: LocalTracker::open(&db, false, Some(now), "tester").unwrap(),
                writes: AtomicUsize::new(0),
                fail_at,
                after,
            };
            let engine = Engine::new(&faulty, &catalog, &store, Settings::acting_as("tester"));
            let first = block_on(engine.advance(n, false));
            if first.is_ok() {
                assert!(fail_at > 5, "the run has several writes");
                break;
            }
            crashes += 1;
            let healthy = LocalTracker::open(&db, false, Some(now), "tester").unwrap();
            let engine = Engine::new(&healthy, &catalog, &store, Settings::acting_as("tester"));
            let second = block_on(engine.advance(n, false)).unwrap_or_else(|e| {
                panic!("after a crash at write {fail_at} (after: {after}): {e:#}")
            });
            assert_eq!(
                second.stage.as_deref(),
                Some("acceptance-testing"),
                "crash at write {fail_at}"
            );
            let got = check_final(&db);
            // Label events may differ only where a crash split a write; the visible state may not.
            let strip = |s: &str| {
                s.lines()
                    .map(|l| l.split(" label_events").next().unwrap().to_string())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                strip(&got),
                strip(&expected),
                "crash at write {fail_at} (after: {after})"
            );
            // Running once more changes nothing.
            block_on(engine.advance(n, false)).unwrap();
            assert_eq!(check_final(&db), got);
        }
    }
    assert!(crashes >= 10, "only {crashes} crash points");
}

//! The local tracker itself: issue links and children, incremental lists, comment
//! deletion, `edit_issue` in one transaction, files of the first format brought forward
//! (and files of a newer one refused), the rehearsal clock, and several processes writing
//! to one file at once.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use shepherd::core::marker::IssueMarker;
use shepherd::tracker::local::LocalTracker;
use shepherd::tracker::{IssueEdit, NewIssue, StateFilter, Tracker, TrackerError};

use crate::support::{at, block_on, start_gitaly, stderr, Shepherd, TO_ACCEPTANCE_TESTING};

/// The schema of `shepherd-local-1` files, as shepherd 0.1 wrote it (src/tracker/local.rs
/// before issue links): the file an upgrade starts from.
const SCHEMA_1: &str = "
CREATE TABLE shepherd_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE issues (
    number INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    open INTEGER NOT NULL,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE labels (name TEXT PRIMARY KEY, color TEXT NOT NULL, description TEXT NOT NULL);
CREATE TABLE issue_labels (issue INTEGER NOT NULL REFERENCES issues(number), label TEXT NOT NULL, PRIMARY KEY (issue, label));
CREATE TABLE label_events (
    id INTEGER PRIMARY KEY,
    issue INTEGER NOT NULL REFERENCES issues(number),
    label TEXT NOT NULL,
    added INTEGER NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX label_events_issue ON label_events(issue);
CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    issue INTEGER NOT NULL REFERENCES issues(number),
    body TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX comments_issue ON comments(issue);
INSERT INTO shepherd_meta (key, value) VALUES ('schema', 'shepherd-local-1');
";

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

fn open(db: &Path, now: &str) -> LocalTracker {
    LocalTracker::open(db, true, Some(time(now)), "tester").expect("the tracker opens")
}

fn new_issue(title: &str, body: &str, labels: &[&str]) -> NewIssue {
    NewIssue {
        title: title.into(),
        body: body.into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
    }
}

fn child_body(parent: u64) -> String {
    IssueMarker {
        parent: Some(parent),
        template: Some("acceptance-testing".into()),
        entry: Some(1),
        ..Default::default()
    }
    .append_to("a child")
}

fn numbers(issues: &[shepherd::tracker::Issue]) -> Vec<u64> {
    issues.iter().map(|i| i.number).collect()
}

fn schema_of(db: &Path) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT value FROM shepherd_meta WHERE key = 'schema'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn children_come_from_links() {
    let s = Shepherd::new();
    let t = open(&s.db(), &at("0m"));
    block_on(async {
        let parent = t
            .create_issue(&new_issue("parent", "p", &[]))
            .await
            .unwrap();
        let other = t.create_issue(&new_issue("other", "o", &[])).await.unwrap();
        // A child whose marker names its parent is linked as it is created.
        let marked = t
            .create_issue(&new_issue("marked", &child_body(parent.number), &[]))
            .await
            .unwrap();
        // One without a marker only through `link`, which may be repeated.
        let plain = t.create_issue(&new_issue("plain", "c", &[])).await.unwrap();
        assert!(t.children(parent.number).await.unwrap().len() == 1);
        t.link(parent.number, plain.number).await.unwrap();
        t.link(parent.number, plain.number).await.unwrap();
        t.set_open(plain.number, false).await.unwrap();
        assert_eq!(
            numbers(&t.children(parent.number).await.unwrap()),
            vec![plain.number, marked.number],
            "open and closed children, newest first"
        );
        assert!(t.children(other.number).await.unwrap().is_empty());
        assert!(matches!(
            t.link(parent.number, 99).await,
            Err(TrackerError::NotFound(99))
        ));
        let err = t.link(other.number, other.number).await.unwrap_err();
        assert!(err.to_string().contains("own child"), "{err}");
    });
}

#[test]
fn lists_filter_by_label_and_by_update_time() {
    let s = Shepherd::new();
    block_on(async {
        let t = open(&s.db(), &at("0m"));
        let a = t
            .create_issue(&new_issue("a", "a", &["x", "y"]))
            .await
            .unwrap();
        let b = t.create_issue(&new_issue("b", "b", &["y"])).await.unwrap();
        let c = t
            .create_issue(&new_issue("c", "c", &["x", "y", "z"]))
            .await
            .unwrap();
        let xy = ["y".to_string(), "x".to_string()];
        assert_eq!(
            numbers(&t.list_issues(StateFilter::All, &xy).await.unwrap()),
            vec![c.number, a.number]
        );
        let got = t.list_issues(StateFilter::All, &xy).await.unwrap();
        assert_eq!(got[0].labels, ["x", "y", "z"], "labels in the order added");
        t.set_open(c.number, false).await.unwrap();
        assert_eq!(
            numbers(&t.list_issues(StateFilter::Open, &xy).await.unwrap()),
            vec![a.number]
        );
        assert_eq!(
            t.list_issues(StateFilter::Open, &[]).await.unwrap().len(),
            2
        );

        // An hour later a comment on `a` and a label on `b`; `c` is left alone.
        let t = open(&s.db(), &at("1h"));
        t.add_comment(a.number, "later").await.unwrap();
        t.edit_labels(b.number, &[], &["x".into()], &[])
            .await
            .unwrap();
        let since = time(&at("30m"));
        let changed = t
            .list_issues_since(StateFilter::All, &[], since)
            .await
            .unwrap();
        assert_eq!(numbers(&changed), vec![b.number, a.number]);
        assert!(changed.iter().all(|i| i.updated_at == time(&at("1h"))));
        let changed = t
            .list_issues_since(StateFilter::All, &xy, since)
            .await
            .unwrap();
        assert_eq!(numbers(&changed), vec![b.number, a.number]);
        let none = t
            .list_issues_since(StateFilter::All, &[], time(&at("1h")))
            .await
            .unwrap();
        assert!(none.is_empty(), "nothing changed after 1h: {none:?}");
        // A write that changes nothing does not count as a change.
        let t = open(&s.db(), &at("2h"));
        t.edit_labels(c.number, &[], &["x".into()], &[])
            .await
            .unwrap();
        t.set_open(c.number, false).await.unwrap();
        assert_eq!(t.issue(c.number).await.unwrap().updated_at, time(&at("0m")));
    });
}

#[test]
fn comments_are_deleted_only_from_their_issue() {
    let s = Shepherd::new();
    block_on(async {
        let t = open(&s.db(), &at("0m"));
        let a = t.create_issue(&new_issue("a", "a", &[])).await.unwrap();
        let b = t.create_issue(&new_issue("b", "b", &[])).await.unwrap();
        let keep = t.add_comment(a.number, "keep").await.unwrap();
        let gone = t.add_comment(a.number, "gone").await.unwrap();
        let t = open(&s.db(), &at("1h"));
        let err = t.delete_comment(b.number, gone.id).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "comment {} belongs to #{}, not to #{}",
                gone.id, a.number, b.number
            )
        );
        let err = t.delete_comment(a.number, 999).await.unwrap_err();
        assert_eq!(err.to_string(), format!("#{} has no comment 999", a.number));
        assert!(matches!(
            t.delete_comment(77, gone.id).await,
            Err(TrackerError::NotFound(77))
        ));
        assert_eq!(
            t.comments(a.number).await.unwrap().len(),
            2,
            "nothing deleted yet"
        );
        t.delete_comment(a.number, gone.id).await.unwrap();
        let left = t.comments(a.number).await.unwrap();
        assert_eq!(left.iter().map(|c| c.id).collect::<Vec<_>>(), vec![keep.id]);
        assert_eq!(t.issue(a.number).await.unwrap().updated_at, time(&at("1h")));
    });
}

#[test]
fn edit_issue_moves_labels_and_closes_in_one_transaction() {
    let s = Shepherd::new();
    block_on(async {
        let t = open(&s.db(), &at("0m"));
        let a = t
            .create_issue(&new_issue("a", "a", &["stage::one", "keep"]))
            .await
            .unwrap();
        let t = open(&s.db(), &at("1h"));
        let edit = IssueEdit {
            current: a.labels.clone(),
            add: vec!["stage::two".into()],
            remove: vec!["stage::one".into()],
            open: Some(false),
        };
        let edited = t.edit_issue(a.number, &edit).await.unwrap();
        assert_eq!(edited.labels, ["keep", "stage::two"]);
        assert!(!edited.open);
        assert_eq!(edited.updated_at, time(&at("1h")));
        assert_eq!(
            edited,
            t.issue(a.number).await.unwrap(),
            "what the write returned"
        );
        let events: Vec<String> = t
            .label_events(a.number)
            .await
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}{} {} {}",
                    if e.added { "+" } else { "-" },
                    e.label,
                    e.actor,
                    e.at
                )
            })
            .collect();
        assert_eq!(
            events,
            [
                "+stage::one tester 2026-01-01 00:00:00 UTC",
                "+keep tester 2026-01-01 00:00:00 UTC",
                "-stage::one tester 2026-01-01 01:00:00 UTC",
                "+stage::two tester 2026-01-01 01:00:00 UTC",
            ]
        );

        // When the last part fails, the labels do not move either.
        let b = t
            .create_issue(&new_issue("b", "b", &["stage::one"]))
            .await
            .unwrap();
        let conn = rusqlite::Connection::open(s.db()).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER refuse_close BEFORE UPDATE OF open ON issues \
             BEGIN SELECT RAISE(ABORT, 'closing refused'); END;",
        )
        .unwrap();
        let t = open(&s.db(), &at("2h"));
        let edit = IssueEdit {
            add: vec!["stage::two".into()],
            remove: vec!["stage::one".into()],
            open: Some(false),
            ..IssueEdit::default()
        };
        let err = t.edit_issue(b.number, &edit).await.unwrap_err();
        assert!(err.to_string().contains("closing refused"), "{err}");
        let after = t.issue(b.number).await.unwrap();
        assert_eq!(after.labels, ["stage::one"]);
        assert!(after.open);
        assert_eq!(t.label_events(b.number).await.unwrap().len(), 1);
        assert!(matches!(
            t.edit_issue(42, &edit).await,
            Err(TrackerError::NotFound(42))
        ));
    });
}

/// A gitaly migration whose Acceptance Testing child exists, written by this shepherd and
/// then copied row by row into a file of the first format.
#[test]
fn a_file_of_the_first_format_is_brought_forward() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m"));
    for section in TO_ACCEPTANCE_TESTING {
        s.tick_section(n, None, section, &at("1h"));
    }
    s.ok(&["advance", &n.to_string(), "--now", &at("2h")]);
    let before = s.json(&["status", &n.to_string()]);
    assert_eq!(before["stage"], "acceptance-testing", "{before}");
    let child = s.child_of(n, "acceptance-testing");

    let old = Shepherd::new();
    let conn = rusqlite::Connection::open(old.db()).unwrap();
    conn.execute_batch(SCHEMA_1).unwrap();
    conn.execute("ATTACH ?1 AS new", [s.db().display().to_string()])
        .unwrap();
    conn.execute_batch(
        "INSERT INTO issues SELECT * FROM new.issues;
         INSERT INTO labels SELECT * FROM new.labels;
         INSERT INTO issue_labels SELECT * FROM new.issue_labels;
         INSERT INTO label_events SELECT * FROM new.label_events;
         INSERT INTO comments SELECT * FROM new.comments;
         DETACH new;",
    )
    .unwrap();
    drop(conn);
    assert_eq!(schema_of(&old.db()), "shepherd-local-1");

    let after = old.json(&["status", &n.to_string(), "--now", &at("2h")]);
    assert_eq!(after["stage"], before["stage"]);
    assert_eq!(
        after["children"], before["children"],
        "the child found by its link"
    );
    assert_eq!(old.child_of(n, "acceptance-testing"), child);
    assert_eq!(schema_of(&old.db()), "shepherd-local-5");
    assert_eq!(old.issues().len(), s.issues().len());
    assert_eq!(old.comments(n), s.comments(n));
    let links: i64 = rusqlite::Connection::open(old.db())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM issue_links WHERE parent = ?1 AND child = ?2",
            [n as i64, child as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(links, 1);
    // And it keeps working: a label move is recorded.
    old.ok(&["label", &n.to_string(), "--add", "reviewed"]);
    assert!(old.issue(n).labels.contains(&"reviewed".to_string()));
}

#[test]
fn a_file_of_a_newer_format_is_refused() {
    let s = Shepherd::new();
    start_gitaly(&s, &at("0m"));
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute(
        "UPDATE shepherd_meta SET value = 'shepherd-local-99' WHERE key = 'schema'",
        [],
    )
    .unwrap();
    drop(conn);
    let bytes = std::fs::read(s.db()).unwrap();
    let err = s.fails(&["status"]);
    assert!(
        err.contains("was written by a newer shepherd (schema shepherd-local-99; this one reads up to shepherd-local-5)"),
        "{err}"
    );
    assert!(err.contains(&s.db().display().to_string()), "{err}");
    assert_eq!(std::fs::read(s.db()).unwrap(), bytes, "nothing written");
}

#[test]
fn the_clock_is_kept_in_the_file() {
    let s = Shepherd::new();
    // Setting the clock of a tracker opened on a missing file creates the file.
    let t = LocalTracker::open(&s.db(), false, None, "tester").unwrap();
    assert!(!s.db().exists());
    assert_eq!(t.clock().unwrap(), None);
    let set = t.set_clock(time(&at("0m"))).unwrap();
    assert_eq!(set.clock, time(&at("0m")));
    assert_eq!(set.latest_event, None);
    assert!(s.db().exists());
    assert_eq!(t.now(), time(&at("0m")));
    let set = t.advance_clock(Duration::hours(2)).unwrap();
    assert_eq!(set.clock, time(&at("2h")));
    drop(t);

    // Every command reads it: `start` records its issue at the stored time.
    let n = start_gitaly(&s, &at("2h"));
    let n2 = {
        let mut args = vec!["start", "gitaly-migration"];
        args.extend(crate::support::GITALY_VARS);
        s.json(&args)["ref"].as_u64().unwrap()
    };
    assert_eq!(s.issue(n2).created_at, time(&at("2h")));
    let t = s.tracker();
    assert_eq!(t.clock().unwrap(), Some(time(&at("2h"))));
    assert_eq!(t.now(), time(&at("2h")));

    // `--now` overrides it for one tracker, and does not store it.
    let o = LocalTracker::open(&s.db(), false, Some(time(&at("5h"))), "tester").unwrap();
    assert_eq!(o.now(), time(&at("5h")));
    assert_eq!(o.clock().unwrap(), Some(time(&at("2h"))));
    block_on(o.add_comment(n, "later")).unwrap();
    assert_eq!(s.comments(n).last().unwrap().created_at, time(&at("5h")));

    // Back before the latest event (the comment at 5h): allowed, and reported.
    let set = t.set_clock(time(&at("1h"))).unwrap();
    assert_eq!(set.latest_event, Some(time(&at("5h"))));
    let set = t.advance_clock(Duration::hours(5)).unwrap();
    assert_eq!((set.clock, set.latest_event), (time(&at("6h")), None));
    assert_eq!(s.tracker().now(), time(&at("6h")));
}

/// Four processes label one issue at once, each 12 times: every label arrives, and no
/// process meets "database is locked".
#[test]
fn processes_writing_at_once_wait_for_each_other() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m")).to_string();
    let runs: Vec<Vec<std::process::Output>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|p| {
                let (s, n) = (&s, &n);
                scope.spawn(move || {
                    (0..12)
                        .map(|i| s.run(&["label", n, "--add", &format!("p{p}-{i}")]))
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for out in runs.iter().flatten() {
        assert!(out.status.success(), "{}", stderr(out));
        assert!(!stderr(out).contains("locked"), "{}", stderr(out));
    }
    let labels = s.issue(n.parse().unwrap()).labels;
    for p in 0..4 {
        for i in 0..12 {
            assert!(
                labels.contains(&format!("p{p}-{i}")),
                "p{p}-{i} lost: {labels:?}"
            );
        }
    }
}

/// The same with four trackers (four connections) in threads, commenting 50 times each.
#[test]
fn connections_writing_at_once_lose_nothing() {
    let s = Shepherd::new();
    let n = block_on(open(&s.db(), &at("0m")).create_issue(&new_issue("n", "n", &[])))
        .unwrap()
        .number;
    std::thread::scope(|scope| {
        for p in 0..4 {
            let db = s.db();
            scope.spawn(move || {
                for i in 0..50 {
                    // A new tracker each time: opening races with the others' writes too.
                    let t = open(&db, &at("1h"));
                    block_on(t.add_comment(n, &format!("{p}-{i}"))).unwrap();
                    let edit = IssueEdit {
                        add: vec![format!("p{p}")],
                        ..IssueEdit::default()
                    };
                    block_on(t.edit_issue(n, &edit)).unwrap();
                }
            });
        }
    });
    let comments = s.comments(n);
    assert_eq!(comments.len(), 200);
    for p in 0..4 {
        for i in 0..50 {
            let body = format!("{p}-{i}");
            assert!(comments.iter().any(|c| c.body == body), "{body} lost");
        }
    }
    let mut labels = s.issue(n).labels;
    labels.sort();
    assert_eq!(labels, ["p0", "p1", "p2", "p3"]);
}

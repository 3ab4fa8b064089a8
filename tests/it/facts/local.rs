//! The local tracker's merge requests and releases: `shepherd mr open | merge | close` and
//! `shepherd release publish` with the real binary (numbers per project, `--actor` as the
//! author, times from the tracker's clock, the issues they reference marked as changed),
//! every bad input refused, what the gates read through the tracker API, and a file of the
//! second format brought forward.

use std::path::Path;

use serde_json::{json, Value};
use shepherd::core::facts::{MrState, Release};
use shepherd::tracker::local::LocalTracker;
use shepherd::tracker::{StateFilter, Tracker};

use crate::support::{at, block_on, stderr, Shepherd, T0};

/// An issue to reference, made at `T0`; returns its number.
fn issue(s: &Shepherd) -> u64 {
    let started = s.json(&[
        "start",
        "feature-flag-rollout",
        "--var",
        "feature_flag=my_flag",
        "--now",
        T0,
    ]);
    started["ref"].as_u64().expect("ref")
}

fn tracker(s: &Shepherd) -> LocalTracker {
    LocalTracker::open(&s.db(), false, None, "test").expect("the tracker opens")
}

/// One value from the tracker's file.
fn query(db: &Path, sql: &str) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get::<_, String>(0))
        .unwrap()
}

/// Runs and expects exit code 2 (a usage error); returns stderr.
fn usage(s: &Shepherd, args: &[&str]) -> String {
    let out = s.run(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "shepherd {args:?}: {}",
        stderr(&out)
    );
    stderr(&out)
}

#[test]
fn merge_requests_open_merge_and_close_as_a_person() {
    let s = Shepherd::new();
    let n = issue(&s);
    let ns = n.to_string();
    assert_eq!(
        s.ok(&["mr", "open", "--issue", &ns, "--now", &at("1h")]),
        "1\n"
    );
    let opened = s.json(&[
        "mr",
        "open",
        "--issue",
        &format!("#{ns}"),
        "--project",
        "gitlab-org/gitaly",
        "--title",
        "Add FindCommit",
        "--actor",
        "alice",
        "--now",
        &at("2h"),
    ]);
    assert_eq!(
        opened,
        json!({
            "number": 1, "project": "gitlab-org/gitaly", "reference": "gitlab-org/gitaly!1",
            "state": "open", "issues": [n], "title": "Add FindCommit",
            "url": format!("local:{}#gitlab-org/gitaly!1", s.db().display()),
        })
    );
    assert_eq!(
        query(
            &s.db(),
            "SELECT author FROM merge_requests WHERE project = 'gitlab-org/gitaly'"
        ),
        "alice",
        "--actor is the author"
    );
    assert_eq!(
        query(
            &s.db(),
            "SELECT title FROM merge_requests WHERE project = 'local'"
        ),
        "Resolve \"[Feature flag] Rollout of `my_flag`\"",
        "the default title names the issue"
    );
    assert_eq!(
        s.ok(&["mr", "open", "--issue", &ns, "--now", &at("3h")]),
        "2\n"
    );

    // Each action marks the issue as changed, at the tracker's time.
    assert_eq!(
        s.issue(n).updated_at.to_rfc3339(),
        "2026-01-01T03:00:00+00:00"
    );
    // Numbers are per project: `!1` of `local` and of gitlab-org/gitaly.
    assert_eq!(
        s.fails(&["mr", "merge", "1"]),
        "error: gitlab-org/gitaly!1, !1 are all numbered 1: say which with --project\n"
    );
    assert_eq!(
        s.ok(&["mr", "merge", "1", "--project", "local", "--now", &at("4h")]),
        "!1 merged\n"
    );
    assert_eq!(
        s.issue(n).updated_at.to_rfc3339(),
        "2026-01-01T04:00:00+00:00"
    );
    let again = s.json(&[
        "mr",
        "merge",
        "!1",
        "--project",
        "local",
        "--now",
        &at("5h"),
    ]);
    assert_eq!(
        (&again["state"], &again["changed"]),
        (&json!("merged"), &json!(false))
    );
    assert_eq!(
        s.ok(&["mr", "merge", "1", "--project", "local"]),
        "!1 is merged already: nothing changed\n"
    );
    assert_eq!(
        s.issue(n).updated_at.to_rfc3339(),
        "2026-01-01T04:00:00+00:00",
        "a no-op writes nothing"
    );
    assert_eq!(
        s.ok(&["mr", "close", "2", "--now", &at("5h")]),
        "!2 closed\n"
    );
    assert_eq!(
        s.ok(&["mr", "close", "2"]),
        "!2 is closed already: nothing changed\n"
    );
    let closed = s.json(&[
        "mr",
        "close",
        "1",
        "--project",
        "gitlab-org/gitaly",
        "--now",
        &at("6h"),
    ]);
    assert_eq!(
        (&closed["state"], &closed["changed"]),
        (&json!("closed"), &json!(true))
    );

    // What the gate reads.
    let mrs = block_on(tracker(&s).merge_requests(n)).unwrap();
    let seen: Vec<(String, String, MrState, Option<String>)> = mrs
        .iter()
        .map(|m| {
            (
                m.project.clone(),
                m.reference.clone(),
                m.state,
                m.merged_at.map(|t| t.to_rfc3339()),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "gitlab-org/gitaly".into(),
                "gitlab-org/gitaly!1".into(),
                MrState::Closed,
                None
            ),
            (
                "local".into(),
                "!1".into(),
                MrState::Merged,
                Some("2026-01-01T04:00:00+00:00".into())
            ),
            ("local".into(), "!2".into(), MrState::Closed, None),
        ]
    );
    // An incremental list sees the issue changed by the last action.
    let since = chrono::DateTime::parse_from_rfc3339(&at("5h"))
        .unwrap()
        .to_utc();
    let changed = block_on(tracker(&s).list_issues_since(StateFilter::All, &[], since)).unwrap();
    assert_eq!(changed.len(), 1);
}

#[test]
fn bad_merge_request_commands_are_refused_and_write_nothing() {
    let s = Shepherd::new();
    let n = issue(&s).to_string();
    s.ok(&["mr", "open", "--issue", &n]);
    s.ok(&["mr", "open", "--issue", &n]);
    s.ok(&["mr", "merge", "1"]);
    s.ok(&["mr", "close", "2"]);
    let before = std::fs::read(s.db()).unwrap();
    for (args, error) in [
        (
            vec!["mr", "close", "1"],
            "error: !1 is merged: a merged merge request cannot be closed",
        ),
        (
            vec!["mr", "merge", "2"],
            "error: !2 is closed: a closed merge request cannot be merged",
        ),
        (
            vec!["mr", "merge", "3"],
            "error: no merge request is numbered 3",
        ),
        (
            vec!["mr", "merge", "3", "--project", "local"],
            "error: merge request !3 does not exist",
        ),
        (
            vec!["mr", "merge", "1", "--project", "group/other"],
            "error: merge request group/other!1 does not exist",
        ),
        (
            vec!["mr", "open", "--issue", "99"],
            "error: issue #99 does not exist",
        ),
        (
            vec!["mr", "open", "--issue", &n, "--issue", "98"],
            "error: issue #98 does not exist",
        ),
        (
            vec!["mr", "open", "--issue", &n, "--title", " "],
            "error: --title must be one line of text",
        ),
        (
            vec!["mr", "open", "--issue", &n, "--title", "a\nb"],
            "error: --title must be one line of text",
        ),
    ] {
        let err = s.fails(&args);
        assert!(err.starts_with(error), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    for (args, named) in [
        (
            vec!["mr", "open", "--issue", &n, "--project", "gitaly"],
            "`gitaly` is no project",
        ),
        (
            vec!["mr", "open", "--issue", &n, "--project", "group/"],
            "`group/` is no project",
        ),
        (
            vec!["mr", "merge", "1", "--project", "a b/c"],
            "`a b/c` is no project",
        ),
        (
            vec!["release", "publish", "v1", "--project", "../x"],
            "`../x` is no project",
        ),
        (
            vec!["mr", "open", "--issue", "x"],
            "`x` is no issue reference",
        ),
        (vec!["mr", "open"], "--issue <REF>"),
        (vec!["mr", "merge", "0"], "`0` is no merge request number"),
        (vec!["mr", "close", "#2"], "`#2` is no merge request number"),
    ] {
        let err = usage(&s, &args);
        assert!(err.contains(named), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(s.db()).unwrap(), before, "nothing written");
    // With no tracker file at all: the issue is missing, and no file is made.
    let empty = Shepherd::new();
    assert!(empty
        .fails(&["mr", "open", "--issue", "1"])
        .contains("issue #1 does not exist"));
    assert!(!empty.db().exists());
}

#[test]
fn releases_are_published_once_per_project() {
    let s = Shepherd::new();
    // Before anything else: the file is made.
    assert_eq!(
        s.ok(&["release", "publish", "v1.0.0", "--now", &at("1h")]),
        "local released v1.0.0 at 2026-01-01T01:00:00Z\n"
    );
    let published = s.json(&[
        "release",
        "publish",
        "v17.3.0",
        "--project",
        "gitlab-org/gitlab",
        "--actor",
        "bob",
        "--now",
        &at("2h"),
    ]);
    assert_eq!(
        published,
        json!({
            "project": "gitlab-org/gitlab", "tag": "v17.3.0", "released_at": "2026-01-01T02:00:00Z",
            "url": format!("local:{}#gitlab-org/gitlab@v17.3.0", s.db().display()),
        })
    );
    assert_eq!(
        query(&s.db(), "SELECT author FROM releases WHERE tag = 'v17.3.0'"),
        "bob"
    );
    s.ok(&["release", "publish", "v1.1.0", "--now", &at("3h")]);
    // The same tag in another project is another release.
    s.ok(&[
        "release",
        "publish",
        "v1.0.0",
        "--project",
        "gitlab-org/gitaly",
        "--now",
        &at("3h"),
    ]);
    let err = s.fails(&["release", "publish", "v1.0.0", "--now", &at("4h")]);
    assert_eq!(
        err,
        "error: `local` has released v1.0.0 already (at 2026-01-01T01:00:00Z)\n"
    );
    assert!(s.fails(&["release", "publish", " "]).contains("is no tag"));
    let empty = Shepherd::new();
    assert!(empty
        .fails(&["release", "publish", "\tv1"])
        .contains("is no tag"));
    assert!(!empty.db().exists(), "a bad tag makes no file");

    let t = tracker(&s);
    let own: Vec<Release> = block_on(t.releases(None)).unwrap();
    let tags: Vec<&str> = own.iter().map(|r| r.tag.as_str()).collect();
    assert_eq!(tags, ["v1.1.0", "v1.0.0"], "newest first");
    assert_eq!(own[1].released_at.to_rfc3339(), "2026-01-01T01:00:00+00:00");
    let gitlab = block_on(t.releases(Some("gitlab-org/gitlab"))).unwrap();
    assert_eq!(gitlab.len(), 1);
    assert_eq!(
        block_on(t.releases(Some("any/project"))).unwrap(),
        [],
        "every project is known"
    );
    let err = block_on(t.releases(Some("nope"))).unwrap_err().to_string();
    assert!(err.contains("`nope` is no project"), "{err}");
}

#[test]
fn on_a_remote_tracker_mr_and_release_are_refused() {
    let s = Shepherd::new();
    for (tracker, place) in [
        ("gitlab:group/project", "GitLab"),
        ("github:octo-org/migrations", "GitHub"),
    ] {
        for args in [
            vec!["mr", "open", "--issue", "1"],
            vec!["mr", "merge", "1"],
            vec!["release", "publish", "v1"],
        ] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_shepherd"))
                .current_dir(s.dir.path())
                .env_remove("GITLAB_TOKEN")
                .env_remove("GITHUB_TOKEN")
                .env_remove("SHEPHERD_TRACKER")
                .args(["--tracker", tracker])
                .args(&args)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1));
            let err = stderr(&out);
            assert!(
                err.starts_with(&format!(
                    "error: `shepherd {}` acts as a person on the local tracker only",
                    args[0]
                )) && err.contains(&format!("on {tracker}, "))
                    && err.contains(&format!("in {place} itself")),
                "{err}"
            );
        }
    }
}

#[test]
fn a_file_of_the_second_format_is_brought_forward() {
    let s = Shepherd::new();
    let n = issue(&s);
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute_batch(
        "DROP TABLE merge_request_issues; DROP TABLE merge_requests; DROP TABLE releases; DROP TABLE flags; DROP TABLE freeze_periods;
         UPDATE shepherd_meta SET value = 'shepherd-local-2' WHERE key = 'schema';",
    )
    .unwrap();
    drop(conn);
    let opened: Value = s.json(&["mr", "open", "--issue", &n.to_string()]);
    assert_eq!(opened["reference"], "!1");
    assert_eq!(
        query(
            &s.db(),
            "SELECT value FROM shepherd_meta WHERE key = 'schema'"
        ),
        "shepherd-local-5"
    );
    s.ok(&["release", "publish", "v1"]);
}

//! The whole `gitaly-migration` on the local tracker, from `start` through the
//! acceptance-testing child to Mandatory and done, and its side roads: the skip edge, shelving,
//! approval by the wrong person, rollback, history, reconcile twice.

use serde_json::Value;
use shepherd::core::marker::TransitionMarker;

use crate::support::{at, blocked, moved, moves, start_gitaly, Shepherd};

fn stage(s: &Shepherd, n: u64) -> String {
    s.json(&["status", &n.to_string()])["stage"]
        .as_str()
        .unwrap_or("-")
        .to_string()
}

fn advance(s: &Shepherd, n: u64, now: &str) -> Value {
    s.json(&["advance", &n.to_string(), "--now", now])
}

/// Opens a merge request in `project` that references #n; returns its number.
fn mr_open(s: &Shepherd, n: u64, project: &str, now: &str) -> u64 {
    let mr = s.json(&[
        "mr",
        "open",
        "--issue",
        &n.to_string(),
        "--project",
        project,
        "--now",
        now,
    ]);
    mr["number"].as_u64().unwrap()
}

/// Publishes a release of gitlab-org/gitlab.
fn release(s: &Shepherd, tag: &str, now: &str) {
    release_of(s, "gitlab-org/gitlab", tag, now);
}

/// Publishes a release of `project`.
fn release_of(s: &Shepherd, project: &str, tag: &str, now: &str) {
    s.ok(&[
        "release",
        "publish",
        tag,
        "--project",
        project,
        "--now",
        now,
    ]);
}

/// Adds or removes (`op`) `label` of #n at `now`.
fn label(s: &Shepherd, n: u64, op: &str, label: &str, now: &str) {
    s.ok(&["label", &n.to_string(), op, label, "--now", now]);
}

/// Starts a migration and moves it to Migration Analysis an hour later; its number.
fn in_migration_analysis(s: &Shepherd) -> u64 {
    let n = start_gitaly(s, &at("0m"));
    s.tick_section(n, None, "Selection", &at("1h"));
    advance(s, n, &at("1h"));
    n
}

/// Adds or removes (`op`) the label `Opt-In Approved` of #n as `actor`.
fn approve(s: &Shepherd, n: u64, op: &str, actor: &str, now: &str) {
    let n = n.to_string();
    s.ok(&[
        "label",
        &n,
        op,
        "Opt-In Approved",
        "--actor",
        actor,
        "--now",
        now,
    ]);
}

/// Walks a migration from Selection to Ready-for-Testing; returns the time used.
fn to_ready_for_testing(s: &Shepherd, n: u64) {
    s.tick_section(n, None, "Selection", &at("1h"));
    assert_eq!(
        moves(&advance(s, n, &at("1h"))),
        ["selection>migration-analysis"]
    );
    s.tick_section(n, None, "Migration Analysis", &at("2h"));
    assert_eq!(
        moves(&advance(s, n, &at("2h"))),
        ["migration-analysis>rpc-design"]
    );
    // RPC Design ends when its merge request in gitaly-proto is merged, ticked or not.
    let proto = mr_open(s, n, "gitlab-org/gitaly-proto", &at("2h30m"));
    let v = advance(s, n, &at("2h30m"));
    assert_eq!(moves(&v), Vec::<String>::new());
    assert_eq!(
        blocked(&v),
        ["any: 0/1 items in *RPC Design*; gitlab-org/gitaly-proto!1 open"]
    );
    s.ok(&["mr", "merge", &proto.to_string(), "--now", &at("3h")]);
    // Client work done in parallel with server work counts as soon as its stage is reached.
    s.tick_section(n, None, "Client Implementation", &at("3h"));
    assert_eq!(
        moves(&advance(s, n, &at("3h"))),
        ["rpc-design>server-implementation"]
    );
    // A merge request of another project does not end Server Implementation; ticks do.
    mr_open(s, n, "gitlab-org/gitlab", &at("3h30m"));
    let v = advance(s, n, &at("3h30m"));
    assert_eq!(moves(&v), Vec::<String>::new());
    s.tick_section(n, None, "Server Implementation", &at("4h"));
    let v = advance(s, n, &at("4h"));
    assert_eq!(
        moves(&v),
        [
            "server-implementation>client-implementation",
            "client-implementation>ready-for-testing"
        ]
    );
    assert_eq!(blocked(&v), ["checklist: 0/2 items in *Ready for Testing*"]);
}

#[test]
fn a_gitaly_migration_from_selection_to_done() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m"));
    let issue = s.json(&["issue", &n.to_string()]);
    assert_eq!(
        issue["title"],
        "Gitaly migration: CommitService::FindCommit (GITALY_FIND_COMMIT)"
    );
    let labels: Vec<&str> = issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Migration", "Conversation", "Selection"]);

    // An early advance is blocked and says by what.
    let v = advance(&s, n, &at("10m"));
    assert_eq!(moves(&v), Vec::<String>::new());
    assert_eq!(blocked(&v), ["checklist: 0/1 items in *Selection*"]);
    to_ready_for_testing(&s, n);

    s.tick_section(n, None, "Ready for Testing", &at("5h"));
    let v = advance(&s, n, &at("5h"));
    assert_eq!(moves(&v), ["ready-for-testing>acceptance-testing"]);
    let child = s.child_of(n, "acceptance-testing");
    assert_eq!(v["created"], serde_json::json!([child]));
    let child_issue = s.issue(child);
    assert!(
        child_issue
            .body
            .starts_with(&format!("~Conversation: #{n}\n")),
        "{}",
        child_issue.body
    );
    assert!(
        child_issue
            .body
            .contains(&format!("gitaly%2Fissues%2F{child}%0A")),
        "the child's own number is filled in"
    );
    assert!(
        child_issue
            .labels
            .contains(&"acceptance::preparation".to_string()),
        "{:?}",
        child_issue.labels
    );
    let blocked_parent = blocked(&v);
    assert!(
        blocked_parent[0].contains(&format!("#{child} is in stage preparation")),
        "{blocked_parent:?}"
    );
    assert!(
        blocked_parent[2].starts_with("approval: waits for approval by jacobvosmaer-gitlab"),
        "{blocked_parent:?}"
    );

    // The acceptance-testing child: each section, each soak time.
    let c = child.to_string();
    let child_advance = |now: &str| s.json(&["advance", &c, "--now", now]);
    let tick_child =
        |section: &str, now: &str| s.tick_section(n, Some("acceptance-testing"), section, &at(now));
    tick_child("1. Preparation", "6h");
    tick_child("2. Development Trial", "6h");
    assert_eq!(
        moves(&child_advance(&at("6h"))),
        [
            "preparation>development-trial",
            "development-trial>staging-trial"
        ]
    );
    tick_child("3. Staging Trial", "6h");
    let early = child_advance(&at("6h10m"));
    assert_eq!(moves(&early), Vec::<String>::new());
    assert_eq!(blocked(&early), ["min_duration: soak: 5m of 15m left"]);
    assert_eq!(
        moves(&child_advance(&at("6h15m"))),
        ["staging-trial>production-version-check"]
    );
    // Each step: its sections ticked at `now` move it on; then its soak holds it.
    for (sections, now, step, soaking, left) in [
        (
            &[
                "4. Production Server Version Check",
                "5. Initial Impact Check",
            ][..],
            "7h",
            "production-version-check>initial-impact",
            "7h14m",
            "1m of 15m",
        ),
        (
            &["6. Low Impact Trial"],
            "7h15m",
            "initial-impact>low-impact",
            "8h55m",
            "20m of 2h",
        ),
        (
            &["7. Mid Impact Trial"],
            "9h15m",
            "low-impact>mid-impact",
            "1d9h",
            "15m of 1d",
        ),
        (
            &["8. Full Impact Trial"],
            "1d9h15m",
            "mid-impact>full-impact",
            "8d9h",
            "15m of 1w",
        ),
    ] {
        for section in sections {
            tick_child(section, now);
        }
        assert_eq!(moves(&child_advance(&at(now))), [step]);
        assert_eq!(
            blocked(&child_advance(&at(soaking))),
            [format!("min_duration: soak: {left} left")]
        );
    }
    // reconcile takes the child to its end and then looks at the parent.
    let r = s.json(&["reconcile", "--now", &at("8d9h15m")]);
    let child_run = crate::support::run_of(&r, child);
    assert_eq!(moves(child_run), ["full-impact>complete"]);
    assert!(
        !s.issue(child).open,
        "a complete acceptance-testing issue is closed"
    );
    let parent_run = crate::support::run_of(&r, n);
    assert_eq!(
        blocked(parent_run).len(),
        2,
        "the child is complete; runbook and approval remain: {parent_run}"
    );

    // Approval: a label set by someone not in `by` does not count.
    s.tick_section(n, None, "Acceptance Testing", &at("9d"));
    approve(&s, n, "--add", "mallory", &at("9d"));
    let v = advance(&s, n, &at("9d"));
    assert_eq!(moves(&v), Vec::<String>::new());
    assert!(
        blocked(&v)[0].contains("set by mallory, who may not approve"),
        "{:?}",
        blocked(&v)
    );
    approve(&s, n, "--remove", "mallory", &at("9d1h"));
    approve(&s, n, "--add", "jacobvosmaer-gitlab", &at("9d1h"));
    let v = advance(&s, n, &at("9d2h"));
    assert_eq!(moves(&v), ["acceptance-testing>opt-in"]);
    assert_eq!(stage(&s, n), "opt-in");

    // Opt-In and Opt-Out each wait for the next minor release of GitLab.
    s.tick_section(n, None, "Opt-In", &at("9d2h"));
    release(&s, "v17.2.1-ee", &at("20d"));
    release(&s, "v17.3.0-rc1", &at("30d"));
    let why = blocked(&advance(&s, n, &at("38d2h")));
    assert!(
        why[0].starts_with("release: 0 of 1 releases of gitlab-org/gitlab since"),
        "{why:?}"
    );
    let status = s.ok(&["status", &n.to_string(), "--now", &at("38d2h")]);
    assert!(
        status.contains("0 of 1 releases of gitlab-org/gitlab since 2026-01-10 02:00 UTC"),
        "{status}"
    );
    release(&s, "v17.3.0-ee", &at("39d"));
    let v = advance(&s, n, &at("39d2h"));
    assert_eq!(moves(&v), ["opt-in>opt-out"]);
    let audit = s.comments(n).last().unwrap().body.clone();
    assert!(
        audit.contains(
            "1 of 1 releases of gitlab-org/gitlab since 2026-01-10 02:00 UTC: v17.3.0-ee"
        ),
        "{audit}"
    );
    s.tick_section(n, None, "Opt-Out", &at("40d"));
    // A release of another project does not count.
    release_of(&s, "gitlab-org/gitaly", "v17.4.0", &at("60d"));
    assert_eq!(moves(&advance(&s, n, &at("60d"))), Vec::<String>::new());
    release(&s, "v17.4.0-ee", &at("69d"));
    assert_eq!(moves(&advance(&s, n, &at("69d2h"))), ["opt-out>mandatory"]);
    // Mandatory is work: the migration is not done while the flag and the old route stay.
    let status = s.json(&["status", &n.to_string()]);
    assert_eq!(status["stage"], "mandatory");
    assert_eq!(status["label"], "Migration:Mandatory");
    assert_eq!(status["state"], "open");
    assert_eq!(status["children"][0]["state"], "completed");
    assert_eq!(status["children"][0]["stage"], "complete");
    let why = blocked(&advance(&s, n, &at("80d")));
    assert_eq!(why, ["checklist: 0/2 items in *Mandatory*"]);
    s.tick_section(n, None, "Mandatory", &at("80d"));
    assert_eq!(moves(&advance(&s, n, &at("80d"))), ["mandatory>done"]);
    let status = s.json(&["status", &n.to_string()]);
    assert_eq!(status["stage"], "done");
    assert_eq!(status["label"], "Migration:Done");
    assert_eq!(status["state"], "completed");
    assert!(!s.issue(n).open, "done closes the tracking issue");

    // History: every transition with when and by.
    let history = s.json(&["history", &n.to_string()]);
    assert_eq!(
        moves(&history),
        [
            "->selection",
            "selection>migration-analysis",
            "migration-analysis>rpc-design",
            "rpc-design>server-implementation",
            "server-implementation>client-implementation",
            "client-implementation>ready-for-testing",
            "ready-for-testing>acceptance-testing",
            "acceptance-testing>opt-in",
            "opt-in>opt-out",
            "opt-out>mandatory",
            "mandatory>done",
        ]
    );
    assert_eq!(history["transitions"][9]["at"], "2026-03-11T02:00:00Z");
    assert_eq!(history["transitions"][9]["by"], "tester");
    assert_eq!(history["transitions"][10]["at"], "2026-03-22T00:00:00Z");

    // Reconcile twice: nothing moves, nothing is written twice.
    let before: Vec<usize> = s
        .issues()
        .iter()
        .map(|i| s.comments(i.number).len())
        .collect();
    let issues_before = s.issues().len();
    for _ in 0..2 {
        let r = s.json(&["reconcile", "--now", &at("80d")]);
        assert_eq!(moved(&r), Vec::<u64>::new(), "{r}");
    }
    let after: Vec<usize> = s
        .issues()
        .iter()
        .map(|i| s.comments(i.number).len())
        .collect();
    assert_eq!((issues_before, before), (s.issues().len(), after));
    let seqs: Vec<u64> = s
        .comments(n)
        .iter()
        .filter_map(|c| TransitionMarker::find(&c.body))
        .map(|t| t.seq)
        .collect();
    assert_eq!(
        seqs,
        (1..=11).collect::<Vec<u64>>(),
        "one audit comment per transition"
    );
}

#[test]
fn an_existing_rpc_skips_design_and_server_work() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m"));
    s.tick_section(n, None, "Selection", &at("1h"));
    s.tick_section(n, None, "Migration Analysis", &at("1h"));
    s.ok(&[
        "label",
        &n.to_string(),
        "--add",
        "existing-rpc",
        "--now",
        &at("1h"),
    ]);
    let v = advance(&s, n, &at("1h"));
    assert_eq!(
        moves(&v),
        [
            "selection>migration-analysis",
            "migration-analysis>client-implementation"
        ]
    );
    assert_eq!(
        blocked(&v),
        ["any: 0/2 items in *Client Implementation*; no merge request in gitlab-org/gitlab references #1"]
    );
}

#[test]
fn a_shelved_migration_is_closed() {
    let s = Shepherd::new();
    let n = in_migration_analysis(&s);
    label(&s, n, "--add", "shelve", &at("2h"));
    let v = advance(&s, n, &at("2h"));
    assert_eq!(moves(&v), ["migration-analysis>shelved"]);
    assert!(v["transitions"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("~\"shelve\" is set"));
    let issue = s.issue(n);
    assert!(!issue.open);
    assert!(
        issue.labels.contains(&"Migration:Shelved".to_string())
            && !issue.labels.contains(&"shelve".to_string()),
        "{:?}",
        issue.labels
    );
    assert_eq!(s.json(&["status", &n.to_string()])["state"], "completed");
}

#[test]
fn rollback_records_why_and_a_new_attempt_gets_a_new_child() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m"));
    to_ready_for_testing(&s, n);
    s.tick_section(n, None, "Ready for Testing", &at("5h"));
    advance(&s, n, &at("5h"));
    let first = s.child_of(n, "acceptance-testing");
    // The trial is disabled: the child takes its rollback exit.
    s.ok(&[
        "label",
        &first.to_string(),
        "--add",
        "trial-disabled",
        "--now",
        &at("6h"),
    ]);
    let v = s.json(&["advance", &first.to_string(), "--now", &at("6h")]);
    assert_eq!(moves(&v), ["preparation>rolled-back"]);
    assert!(!s.issue(first).open);
    assert!(
        blocked(&advance(&s, n, &at("6h")))[0].contains("ended in rolled-back instead of complete")
    );

    let v = s.json(&[
        "rollback",
        &n.to_string(),
        "--to",
        "ready-for-testing",
        "--reason",
        "error rates jumped on dev",
        "--now",
        &at("7h"),
    ]);
    assert_eq!(moves(&v), ["acceptance-testing>ready-for-testing"]);
    let history = s.json(&["history", &n.to_string()]);
    let last = history["transitions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["reason"], "error rates jumped on dev");
    assert_eq!(last["to"], "ready-for-testing");
    let text = s.ok(&["history", &n.to_string()]);
    assert!(text.contains("(error rates jumped on dev)"), "{text}");

    // A rollback pauses the migration and unticks the boxes of the stages it went back
    // over: it stays put until someone resumes it, and moves on only on new ticks.
    let v = advance(&s, n, &at("7h"));
    assert!(moves(&v).is_empty());
    assert!(blocked(&v)[0].starts_with("paused:"), "{v}");
    assert!(s.issue(n).labels.contains(&"shepherd::paused".to_string()));
    s.ok(&["resume", &n.to_string(), "--now", &at("8h")]);
    let v = advance(&s, n, &at("8h"));
    assert!(moves(&v).is_empty(), "{v}");
    assert!(blocked(&v)[0].contains("0/"), "{v}");
    s.tick_section(n, None, "Ready for Testing", &at("8h"));
    // Entering Acceptance Testing again opens the next acceptance-testing issue, and the
    // first one is closed, pointing to it.
    assert_eq!(
        moves(&advance(&s, n, &at("8h"))),
        ["ready-for-testing>acceptance-testing"]
    );
    let second = s.child_of(n, "acceptance-testing");
    assert_ne!(first, second);
    assert_eq!(stage(&s, second), "preparation");
    assert!(s.issue(second).title.ends_with("(attempt 2)"));
    assert!(!s.issue(first).open);
}

#[test]
fn rollback_goes_only_where_the_migration_has_been_unless_forced() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m"));
    s.tick_section(n, None, "Selection", &at("1h"));
    assert_eq!(
        moves(&advance(&s, n, &at("1h"))),
        ["selection>migration-analysis"]
    );
    let err = s.fails(&[
        "rollback",
        &n.to_string(),
        "--to",
        "mandatory",
        "--reason",
        "skip ahead",
        "--now",
        &at("2h"),
    ]);
    assert!(err.contains("never been in stage `mandatory`"), "{err}");
    assert!(err.contains("selection"), "names where it has been: {err}");
    assert_eq!(stage(&s, n), "migration-analysis");
    // A person pauses it; its exits still apply while paused.
    s.ok(&[
        "pause",
        &n.to_string(),
        "--reason",
        "waiting for the DBA",
        "--now",
        &at("2h"),
    ]);
    let status = s.json(&["status", &n.to_string()]);
    assert_eq!(status["paused"], true, "{status}");
    label(&s, n, "--add", "shelve", &at("3h"));
    let v = advance(&s, n, &at("3h"));
    assert_eq!(moves(&v), ["migration-analysis>shelved"], "{v}");

    // Back to a stage it has been in: allowed, and paused there.
    let n = in_migration_analysis(&s);
    s.ok(&[
        "rollback",
        &n.to_string(),
        "--to",
        "selection",
        "--reason",
        "wrong route",
        "--now",
        &at("2h"),
    ]);
    assert_eq!(stage(&s, n), "selection");
    // A paused migration does not move straight back, and its Selection boxes were
    // unticked: only new ticks carry it on.
    assert!(moves(&advance(&s, n, &at("3h"))).is_empty());
    s.ok(&["resume", &n.to_string(), "--now", &at("3h")]);
    assert!(moves(&advance(&s, n, &at("3h"))).is_empty());
    s.tick_section(n, None, "Selection", &at("3h"));
    assert_eq!(
        moves(&advance(&s, n, &at("3h"))),
        ["selection>migration-analysis"]
    );
    // --force goes anywhere.
    let n2 = start_gitaly(&s, &at("0m"));
    s.ok(&[
        "rollback",
        &n2.to_string(),
        "--to",
        "client-implementation",
        "--reason",
        "already built",
        "--force",
        "--now",
        &at("1h"),
    ]);
    assert_eq!(stage(&s, n2), "client-implementation");
}

#[test]
fn status_lists_open_migrations_and_dry_runs_write_nothing() {
    let s = Shepherd::new();
    let a = start_gitaly(&s, &at("0m"));
    let b = start_gitaly(&s, &at("0m"));
    s.tick_section(a, None, "Selection", &at("1h"));
    let before = s.comments(a).len();
    let dry = s.json(&["reconcile", "--dry-run", "--now", &at("1h")]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        moves(&dry["migrations"][0]),
        ["selection>migration-analysis"]
    );
    assert_eq!(s.comments(a).len(), before, "a dry run writes nothing");
    assert_eq!(stage(&s, a), "selection");
    let all = s.json(&["status"]);
    let refs: Vec<u64> = all["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ref"].as_u64().unwrap())
        .collect();
    assert_eq!(refs, [a, b]);
    let table = s.ok(&["status", "--now", &at("1h")]);
    assert!(
        table.contains("#1") && table.contains("selection") && table.contains("ready to advance"),
        "{table}"
    );
    assert!(table.contains("0/1 items in *Selection*"), "{table}");
}

//! What people see of a migration on the local tracker (DESIGN §12 "What people see"):
//! a pause in `status REF` (who, why, since), the status table's titles, `history` with
//! pauses, resumes and rollbacks beside the transitions, and who a person's action is
//! credited to when `$USER` is unset.

use std::process::Command;

use crate::support::{start_gitaly, stdout, Shepherd, T0};

/// dave pauses #n at `now`: waiting for the DBA.
fn dave_pauses(s: &Shepherd, n: &str, now: &str) {
    let reason = "waiting for the DBA";
    s.ok(&[
        "pause", n, "--reason", reason, "--actor", "dave", "--now", now,
    ]);
}

#[test]
fn a_pause_shows_in_status_and_history_with_who_why_and_since() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, T0).to_string();
    dave_pauses(&s, &n, "2026-01-02T10:00:00Z");

    let text = s.ok(&["status", &n, "--now", "2026-01-03T00:00:00Z"]);
    assert!(
        text.contains("paused by dave since 2026-01-02 10:00 UTC: waiting for the DBA"),
        "{text}"
    );
    assert!(text.contains(&format!("shepherd resume {n}")), "{text}");
    let status = s.json(&["status", &n]);
    assert_eq!(status["paused"], true);
    assert_eq!(status["paused_by"], "dave");
    assert_eq!(status["paused_reason"], "waiting for the DBA");
    assert_eq!(status["paused_at"], "2026-01-02T10:00:00Z");

    // The table: titles, and the pause as the state.
    let table = s.ok(&["status"]);
    let header = table.lines().nth(1).unwrap();
    assert!(header.contains("TITLE"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("#{n} ")))
        .unwrap();
    assert!(row.contains("Gitaly migration"), "{table}");
    assert!(row.contains("paused"), "{table}");

    s.ok(&[
        "resume",
        &n,
        "--actor",
        "erin",
        "--now",
        "2026-01-04T08:00:00Z",
    ]);
    let text = s.ok(&["status", &n]);
    assert!(!text.contains("paused"), "{text}");

    // History: the start, the pause and the resume, in time order, with who.
    let history = s.json(&["history", &n]);
    let events: Vec<(String, String)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("transition".to_string(), "tester".to_string()),
            ("pause".to_string(), "dave".to_string()),
            ("resume".to_string(), "erin".to_string()),
        ]
    );
    assert_eq!(history["transitions"].as_array().unwrap().len(), 1);
    let text = s.ok(&["history", &n]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[1].contains("pause") && lines[1].contains("by dave"),
        "{text}"
    );
    assert!(lines[1].contains("(waiting for the DBA)"), "{text}");
    assert!(
        lines[2].contains("resume") && lines[2].contains("by erin"),
        "{text}"
    );
}

#[test]
fn a_rollback_is_in_history_as_a_rollback_and_status_says_it_holds_the_migration() {
    let s = Shepherd::new();
    let number = start_gitaly(&s, T0);
    let n = number.to_string();
    s.tick_section(number, None, "Selection", "2026-01-01T00:30:00Z");
    s.ok(&["advance", &n, "--now", "2026-01-01T01:00:00Z"]);
    s.ok(&[
        "rollback",
        &n,
        "--to",
        "selection",
        "--reason",
        "wrong RPC",
        "--actor",
        "carol",
        "--now",
        "2026-01-01T02:00:00Z",
    ]);
    let history = s.json(&["history", &n]);
    let kinds: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["transition", "transition", "rollback"]);
    let rollback = &history["events"][2];
    assert_eq!(rollback["from"], "migration-analysis");
    assert_eq!(rollback["to"], "selection");
    assert_eq!(rollback["reason"], "wrong RPC");
    assert_eq!(rollback["by"], "carol");
    let text = s.ok(&["status", &n]);
    assert!(
        text.contains("paused by carol since 2026-01-01 02:00 UTC: rolled back: wrong RPC"),
        "{text}"
    );
}

#[test]
fn without_user_a_persons_action_is_credited_to_their_login_not_to_shepherd() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, T0).to_string();
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_shepherd"))
        .current_dir(s.dir.path())
        .env_remove("SHEPHERD_TRACKER")
        .env_remove("USER")
        .env_remove("LOGNAME")
        .args(["--tracker", &format!("local:{}", s.db().display())])
        .args(["pause", &n, "--reason", "lunch", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    let status = s.json(&["status", &n]);
    assert_eq!(status["paused_by"], me.as_str());
    assert_ne!(status["paused_by"], "shepherd");
}

#[test]
fn log_prints_the_audit_trail_and_a_persons_comments_oldest_first() {
    let s = Shepherd::new();
    let number = start_gitaly(&s, T0);
    let n = number.to_string();
    dave_pauses(&s, &n, "2026-01-01T03:00:00Z");
    let log = s.json(&["log", &n]);
    assert_eq!(log["ref"], number);
    let comments = log["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2, "{log}");
    assert!(comments[0]["body"]
        .as_str()
        .unwrap()
        .contains("shepherd:transition="));
    assert_eq!(comments[1]["author"], "dave");
    assert_eq!(comments[1]["at"], "2026-01-01T03:00:00Z");
    assert!(comments[1]["body"]
        .as_str()
        .unwrap()
        .contains("waiting for the DBA"));
    let text = s.ok(&["log", &n]);
    let dave = text
        .find("── dave · 2026-01-01 03:00 UTC")
        .expect("dave's line");
    let first = text
        .find("── tester · 2026-01-01 00:00 UTC")
        .expect("the start's line");
    assert!(first < dave, "{text}");

    // A child: its own comments; a template it has no child of is a clear error.
    let err = s.fails(&["log", &n, "--child", "acceptance-testing"]);
    assert!(
        err.contains("has no acceptance-testing child issue"),
        "{err}"
    );
}

/// One open migration of `workflow` in its `stage`, for a report built by hand.
fn row(
    catalog: &shepherd::catalog::Catalog,
    number: u64,
    workflow: &str,
    stage: usize,
    parent: Option<u64>,
) -> shepherd::core::report::Status {
    let w = &catalog.workflows[workflow];
    let entered = chrono::DateTime::parse_from_rfc3339(T0).unwrap().to_utc();
    let history = vec![shepherd::core::report::HistoryEntry {
        from: None,
        to: w.stages[stage].id.clone(),
        at: entered,
        by: "shepherd".into(),
        reason: None,
    }];
    shepherd::core::report::Status {
        parent,
        ..crate::seeds::status(
            w,
            number,
            format!("migration {number}"),
            format!("https://gitlab.example.com/g/p/-/issues/{number}"),
            history,
        )
    }
}

#[test]
fn the_report_says_first_what_needs_a_person_and_counts_children_apart() {
    use shepherd::core::gates::GateReport;
    let catalog = shepherd::catalog::Sources::builtin().load().unwrap();
    let mut failing = row(&catalog, 1, "gitaly-migration", 2, None);
    failing.failing = Some("GitLab answered 502 Bad Gateway".into());
    let mut paused = row(&catalog, 2, "gitaly-migration", 3, None);
    paused.paused = true;
    paused.paused_by = Some("alice".into());
    paused.paused_reason = Some("error rate up".into());
    let mut approval = row(&catalog, 3, "gitaly-migration", 4, None);
    approval.gates = vec![GateReport {
        gate: "approval".into(),
        description: "approved by carol or dave".into(),
        passed: false,
        detail: "waits for approval by carol, dave (~\"dba-approved\")".into(),
        waits_for: Some(
            "carol or dave to add ~\"dba-approved\", or to comment /shepherd approve".into(),
        ),
    }];
    let soaking = row(&catalog, 4, "gitaly-migration", 4, None);
    let child = row(&catalog, 5, "acceptance-testing", 0, Some(3));
    let flag = row(&catalog, 6, "feature-flag-rollout", 0, None);
    let statuses = vec![failing, paused, approval, soaking, child, flag];
    let workflows: Vec<_> = catalog.workflows.values().collect();
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
        .unwrap()
        .to_utc();
    let past = shepherd::core::report::past_of(&statuses);
    let report =
        shepherd::core::report::build(now, &workflows, statuses, chrono::Duration::days(14), &past);
    let html = shepherd::report_format::html(&report);

    // Five migrations open (the child apart), and what needs a person before the charts.
    assert!(
        html.contains("<li class=\"open\"><b>5</b> open</li>"),
        "{html}"
    );
    assert!(html.contains("<b>1</b> child issues open"), "{html}");
    let needs = html.find("<h2>Needs a person</h2>").expect("the section");
    assert!(needs < html.find("<h2>Stages</h2>").unwrap());
    let section = &html[needs..html.find("<h2>Stages</h2>").unwrap()];
    let order: Vec<usize> = ["#1 migration 1", "#2 migration 2", "#3 migration 3"]
        .iter()
        .map(|m| {
            section
                .find(m)
                .unwrap_or_else(|| panic!("{m} in {section}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{section}");
    assert!(
        !section.contains("#4 migration 4"),
        "nothing needs a person: {section}"
    );
    assert!(section.contains("shepherd resume 2"), "{section}");
    assert!(
        section.contains(
            "waits for carol or dave to add ~&quot;dba-approved&quot;, or to comment /shepherd approve"
        ),
        "{section}"
    );
    // The busiest workflow's chart first, whatever the alphabet says.
    let gitaly = html.find("<figcaption>gitaly-migration").unwrap();
    let flags = html.find("<figcaption>feature-flag-rollout").unwrap();
    assert!(gitaly < flags);
}

#[test]
fn pause_resume_advance_and_rollback_take_a_selection_and_a_dry_run() {
    let s = Shepherd::new();
    let numbers: Vec<String> = (0..3).map(|_| start_gitaly(&s, T0).to_string()).collect();
    s.ok(&["label", &numbers[1], "--add", "team-a"]);

    // A dry run lists what it would touch and writes nothing.
    // Team A's gitaly migrations, for a change freeze.
    let pause_team_a = [
        "pause",
        "--workflow",
        "gitaly-migration",
        "--label",
        "team-a",
        "--reason",
        "change freeze",
    ];
    let text = s.ok(&[&pause_team_a[..], &["--dry-run"]].concat());
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(&format!("would pause #{} ", numbers[1])),
        "{text}"
    );
    assert_eq!(s.json(&["status", &numbers[1]])["paused"], false);

    // The selection, for real: only the selected one is paused.
    let done = s.json(&pause_team_a);
    assert_eq!(done["migrations"].as_array().unwrap().len(), 1, "{done}");
    assert_eq!(done["errors"], serde_json::json!([]));
    for (i, n) in numbers.iter().enumerate() {
        assert_eq!(s.json(&["status", n])["paused"], i == 1, "#{n}");
    }
    // Every one in the stage: the paused one resumed, the others said to be not paused.
    let text = s.ok(&["resume", "--stage", "selection"]);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains(&format!("resumed #{} ", numbers[1])),
        "{text}"
    );
    assert!(
        text.contains(&format!("resumed #{} Gitaly", numbers[0])) && text.contains("(not paused)"),
        "{text}"
    );
    assert_eq!(s.json(&["status", &numbers[1]])["paused"], false);

    let advance = s.json(&["advance", "--stage", "selection", "--dry-run"]);
    assert_eq!(advance["dry_run"], true);
    assert_eq!(advance["migrations"].as_array().unwrap().len(), 3);
    let rollback = s.json(&[
        "rollback",
        "--workflow",
        "gitaly-migration",
        "--to",
        "selection",
        "--reason",
        "redo",
        "--dry-run",
    ]);
    assert_eq!(rollback["migrations"][0]["to"], "selection");

    // Neither a REF nor a selection, or both: usage errors; an unknown stage: a clear one.
    assert_eq!(s.run(&["pause", "--reason", "x"]).status.code(), Some(2));
    let both = s.run(&[
        "pause",
        &numbers[0],
        "--stage",
        "selection",
        "--reason",
        "x",
    ]);
    assert_eq!(both.status.code(), Some(2));
    let err = s.fails(&["pause", "--stage", "nosuch", "--reason", "x"]);
    assert!(err.contains("--stage nosuch: no such stage"), "{err}");
}

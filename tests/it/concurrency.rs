//! Several shepherds at once on one local tracker: `reconcile` processes that share a
//! Store (leases keep them apart) and ones that share none (the claim on the tracker keeps
//! them apart), people ticking while a reconcile runs, `report --publish` at once, a
//! failing migration among healthy ones, and `kill -9` in the middle of a run. After each:
//! no duplicate issue, comment or label move, and nothing a person wrote is lost.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

use shepherd::core::marker::{IssueMarker, TransitionMarker};
use shepherd::tracker::local::LocalTracker;
use shepherd::tracker::{StateFilter, Tracker};

use crate::support::{at, block_on, start_gitaly, stderr, stdout, Shepherd, TO_ACCEPTANCE_TESTING};

const MIGRATIONS: usize = 5;

/// A tracker file with `MIGRATIONS` gitaly migrations whose every box up to Ready for
/// Testing is ticked: a reconcile moves each to Acceptance Testing, which opens a child
/// and comments.
fn ready_to_open_children() -> (Shepherd, Vec<u8>, Vec<u64>) {
    let s = Shepherd::new();
    let mut numbers = Vec::new();
    for _ in 0..MIGRATIONS {
        let n = start_gitaly(&s, &at("0m"));
        for section in TO_ACCEPTANCE_TESTING {
            s.tick_section(n, None, section, &at("1h"));
        }
        numbers.push(n);
    }
    let baseline = std::fs::read(s.db()).expect("the tracker file");
    (s, baseline, numbers)
}

/// Starts `shepherd ARGS` on `dir`'s tracker without waiting.
fn spawn(dir: &std::path::Path, state: Option<&str>, args: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shepherd"));
    cmd.current_dir(dir)
        .env_remove("SHEPHERD_TRACKER")
        .env("USER", "tester")
        .env("SHEPHERD_LEASE_TTL", "2s")
        .arg("--tracker")
        .arg(format!("local:{}", dir.join("tracker.db").display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match state {
        Some(url) => cmd.env("SHEPHERD_STATE", url),
        None => cmd.env_remove("SHEPHERD_STATE"),
    };
    cmd.spawn().expect("shepherd starts")
}

/// What must hold whatever ran at once: one child per entry, no comment twice, every
/// stage label added once per entry into that stage.
/// Checks that no child, comment or stage label move is there twice; returns the runs
/// whose audit comments stand (which process made which move).
fn check_no_duplicates(db: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut runs = std::collections::BTreeSet::new();
    let tracker = LocalTracker::open(db, false, None, "t").expect("tracker");
    let issues = block_on(tracker.list_issues(StateFilter::All, &[])).expect("issues");
    let mut children = BTreeMap::new();
    for issue in &issues {
        if let Some(m) = IssueMarker::find(&issue.body).filter(|m| m.parent.is_some()) {
            let key = (m.parent, m.template.clone(), m.entry);
            *children.entry(key).or_insert(0) += 1;
        }
    }
    assert!(
        children.values().all(|n| *n == 1),
        "duplicate child issues: {children:?}"
    );
    for issue in &issues {
        let comments = block_on(tracker.comments(issue.number)).expect("comments");
        let mut seen = BTreeMap::new();
        let mut entries: BTreeMap<String, usize> = BTreeMap::new();
        for c in &comments {
            if let Some(t) = TransitionMarker::find(&c.body) {
                runs.extend(t.run.clone());
                *seen.entry(format!("transition {}", t.seq)).or_insert(0) += 1;
                *entries.entry(t.to).or_insert(0) += 1;
            } else if let Some(i) = c.body.rfind("shepherd:action=") {
                *seen.entry(c.body[i..].to_string()).or_insert(0) += 1;
            }
        }
        assert!(
            seen.values().all(|n| *n == 1),
            "#{} has a duplicate comment: {seen:?}",
            issue.number
        );
        // Each stage label was added once per recorded entry into its stage.
        let events = block_on(tracker.label_events(issue.number)).expect("events");
        let mut added: BTreeMap<&str, usize> = BTreeMap::new();
        for e in events.iter().filter(|e| e.added) {
            *added.entry(e.label.as_str()).or_insert(0) += 1;
        }
        for (label, n) in &added {
            if label.contains("::") && *n > 1 {
                panic!("#{}: stage label {label} added {n} times", issue.number);
            }
        }
    }
    runs
}

fn assert_all_in_acceptance_testing(s: &Shepherd, numbers: &[u64]) {
    for n in numbers {
        let status = s.json(&["status", &n.to_string()]);
        assert_eq!(status["stage"], "acceptance-testing", "#{n}: {status}");
        let children: Vec<_> = status["children"]
            .as_array()
            .expect("children")
            .iter()
            .filter(|c| c["template"] == "acceptance-testing")
            .collect();
        assert_eq!(children.len(), 1, "#{n}: one acceptance-testing child");
    }
}

/// Four reconciles at once on every trial, all on the Store at `state` (`None`: the
/// default SQLite file beside the tracker).
fn race(state: Option<String>, trials: usize) {
    let (_s, baseline, numbers) = ready_to_open_children();
    let mut skipped_or_lost = 0;
    let mut shared = 0;
    for trial in 0..trials {
        let s = Shepherd::new();
        std::fs::write(s.db(), &baseline).expect("copy");
        let dir = s.dir.path();
        let runs: Vec<Child> = (0..4)
            .map(|_| spawn(dir, state.as_deref(), &["reconcile", "--format", "json"]))
            .collect();
        for run in runs {
            let out = run.wait_with_output().expect("reconcile ends");
            assert!(
                out.status.success(),
                "trial {trial}: reconcile failed:\n{}{}",
                stdout(&out),
                stderr(&out)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            skipped_or_lost += v["migrations"]
                .as_array()
                .expect("migrations")
                .iter()
                .filter(|m| m["skipped"].is_string())
                .count();
        }
        // Runs that started before the first of them finished split the work: the moves
        // of one trial were made by more than one process.
        if check_no_duplicates(&s.db()).len() > 1 {
            shared += 1;
        }
        assert_all_in_acceptance_testing(&s, &numbers);
    }
    eprintln!("{skipped_or_lost} migration(s) left to another run in {trials} trials");
    // The runs really overlapped: in some trial the moves were shared among them, or one
    // found a migration in another's hands.
    assert!(
        shared > 0 || skipped_or_lost > 0,
        "in {trials} trials one run made every move and none met another: the runs did not overlap"
    );
}

#[test]
fn four_reconciles_sharing_a_store_make_no_duplicates() {
    race(None, 6);
}

#[test]
fn four_reconciles_sharing_a_postgres_store_make_no_duplicates() {
    // Prints why it was skipped when PostgreSQL cannot be reached (fails under CI).
    let Some(db) = crate::pg::TestDb::create() else {
        return;
    };
    race(Some(db.url().to_string()), 3);
}

#[test]
fn people_ticking_during_a_reconcile_lose_no_tick() {
    let s = Shepherd::new();
    let numbers: Vec<u64> = (0..3).map(|_| start_gitaly(&s, &at("0m"))).collect();
    let body = s.issue(numbers[0]).body;
    let items: Vec<String> = shepherd::core::checklist::parse(&body)
        .into_iter()
        .filter(|i| i.in_section("Migration Analysis") && !i.done())
        .map(|i| i.text)
        .collect();
    assert!(items.len() >= 3, "items to tick: {items:?}");
    let dir = s.dir.path();
    let mut runs = Vec::new();
    for n in &numbers {
        for item in items.iter().take(3) {
            runs.push(spawn(
                dir,
                None,
                &[
                    "tick",
                    &n.to_string(),
                    item,
                    "--section",
                    "Migration Analysis",
                    "--now",
                    &at("1h"),
                ],
            ));
        }
    }
    runs.push(spawn(dir, None, &["reconcile", "--now", &at("1h")]));
    for run in runs {
        let out = run.wait_with_output().expect("ends");
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    for n in &numbers {
        let body = s.issue(*n).body;
        let done: Vec<String> = shepherd::core::checklist::parse(&body)
            .into_iter()
            .filter(|i| i.in_section("Migration Analysis") && i.done())
            .map(|i| i.text)
            .collect();
        for item in items.iter().take(3) {
            assert!(
                done.contains(item),
                "#{n} lost the tick of {item:?}: {done:?}"
            );
        }
    }
}

#[test]
fn four_publishes_at_once_make_one_summary_issue() {
    let s = Shepherd::new();
    start_gitaly(&s, &at("0m"));
    let dir = s.dir.path();
    let runs: Vec<Child> = (0..4)
        .map(|_| spawn(dir, None, &["report", "--publish", "--now", &at("1h")]))
        .collect();
    for run in runs {
        let out = run.wait_with_output().expect("ends");
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    let summaries = s
        .issues()
        .into_iter()
        .filter(|i| i.body.contains("<!-- shepherd:report -->"))
        .count();
    assert_eq!(summaries, 1);
}

#[test]
fn one_failing_migration_does_not_hold_up_the_others() {
    let s = Shepherd::new();
    let good = start_gitaly(&s, &at("0m"));
    let retired = start_gitaly(&s, &at("0m"));
    let other = start_gitaly(&s, &at("0m"));
    // #retired runs a workflow that no longer exists.
    let tracker = s.tracker();
    let body = s.issue(retired).body.replace(
        "\"workflow\":\"gitaly-migration\"",
        "\"workflow\":\"retired-workflow\"",
    );
    block_on(tracker.update_body(retired, &body)).expect("edit");
    drop(tracker);
    for n in [good, other] {
        s.tick_section(n, None, "Selection", &at("1h"));
    }
    let out = s.run(&["reconcile", "--now", &at("2h"), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let errors = v["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["ref"], retired);
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("retired-workflow"),
        "{v}"
    );
    assert_eq!(crate::support::moved(&v), vec![good, other]);
    assert!(stderr(&out).contains(&format!("#{retired}")));
}

#[test]
fn kill_nine_during_a_reconcile_then_a_rerun_leaves_no_duplicates() {
    let (_s, baseline, numbers) = ready_to_open_children();
    // Kill at a spread of moments into the run; each rerun must finish the work cleanly.
    for delay_ms in [10u64, 60, 150, 300] {
        let s = Shepherd::new();
        std::fs::write(s.db(), &baseline).expect("copy");
        let dir = s.dir.path();
        let mut run = spawn(dir, None, &["reconcile"]);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = run.kill(); // SIGKILL
        let _ = run.wait();
        // The killed run's leases expire and the transition it recorded ages: until then
        // the rerun leaves those migrations (and says so); run until everything moved.
        let mut rounds = 0;
        loop {
            let out = spawn(dir, None, &["reconcile", "--format", "json"])
                .wait_with_output()
                .expect("ends");
            assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let skipped = v["migrations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["skipped"].is_string());
            if !skipped {
                break;
            }
            rounds += 1;
            assert!(rounds < 20, "leases of the killed run never expired");
            std::thread::sleep(std::time::Duration::from_millis(700));
        }
        let _ = check_no_duplicates(&s.db());
        assert_all_in_acceptance_testing(&s, &numbers);
    }
}

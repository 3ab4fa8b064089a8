//! Change freezes (DESIGN §13): a migration whose gates hold does not enter a `freeze: wait`
//! stage while a freeze is in effect — one added with `shepherd freeze add` on the local
//! tracker's rehearsal clock, one of `[[freeze]]` in `shepherd.toml`, or a GitLab project's
//! deploy freeze period with `freezes = "gitlab"` (read once per run) — status says until
//! when, and it moves on once the freeze is over. Bad crons and zones are clear errors.

use std::process::Command;

use serde_json::{json, Value};
use shepherd::catalog::Sources;
use shepherd::core::freeze::Freeze;
use shepherd::engine::due::Look;
use shepherd::engine::{Engine, Settings};
use shepherd::store::sqlite::SqliteStore;
use shepherd::tracker::local::LocalTracker;

use crate::gitlab_server::{GitLabServer, PROJECT};
use crate::remote::Remote;
use crate::support::{block_on, moves, stderr, write_workflow, Shepherd};

/// ready (label `go`) → production (`freeze: wait`; label `shipped`) → done.
const DEPLOY: &str = r#"
name: deploy
tracking: {template: deploy}
stages:
  - id: ready
    label: "dp::ready"
    gates: [{label: go}]
    next: production
  - id: production
    label: "dp::production"
    freeze: wait
    gates: [{label: shipped}]
    next: done
  - id: done
    label: "dp::done"
    terminal: true
"#;

/// `freeze add` of a freeze from Friday 23:00 to Monday 07:00 (UTC).
const WEEKEND_FREEZE: [&str; 6] = [
    "freeze",
    "add",
    "--start",
    "0 23 * * 5",
    "--end",
    "0 7 * * 1",
];

const TRACKING: &str = "---\ntitle: \"Deploy\"\n---\nShip it.\n";

fn write_deploy(dir: &std::path::Path) {
    write_workflow(dir, "deploy", DEPLOY, &[("deploy", TRACKING)]);
}

/// A local tracker with the deploy workflow, its clock on Saturday 2026-12-05 12:00 UTC,
/// and migration #1 ready to move (`go` set).
fn deploy() -> Shepherd {
    let s = Shepherd::new();
    write_deploy(s.dir.path());
    s.ok(&["clock", "set", "2026-12-05T12:00:00Z"]);
    s.ok(&["start", "deploy"]);
    s.ok(&["label", "1", "--add", "go"]);
    s
}

/// `advance 1` stops in ready, held by the freeze until `until`; status says so.
fn held(s: &Shepherd, until: &str) {
    let v = s.json(&["advance", "1"]);
    assert!(moves(&v).is_empty(), "{v}");
    assert_eq!(v["stage"], "ready");
    let detail = format!("frozen until {until}");
    assert_eq!(v["blocked_by"][0]["gate"], "freeze", "{v}");
    assert_eq!(v["blocked_by"][0]["detail"], detail.as_str(), "{v}");
    let status = s.json(&["status", "1"]);
    assert_eq!(
        status["waiting"],
        json!([{"kind": "freeze", "detail": detail}]),
        "{status}"
    );
    let text = s.ok(&["status", "1"]);
    assert!(text.contains(&format!("waiting: {detail}")), "{text}");
    // The table of open migrations says what holds it, and so does the report.
    let table = s.ok(&["status"]);
    assert!(table.contains(&detail), "{table}");
    let report = s.json(&["report"]);
    assert_eq!(
        report["migrations"][0]["waiting"][0]["detail"],
        detail.as_str()
    );
}

#[test]
fn a_freeze_added_on_the_local_tracker_holds_a_move_until_it_ends() {
    let s = deploy();
    let added = s.json(&WEEKEND_FREEZE);
    assert_eq!(added["id"], 1);
    assert_eq!(added["timezone"], "UTC");
    assert_eq!(added["in_effect"], true);
    assert_eq!(added["until"], "2026-12-07T07:00:00Z");
    held(&s, "2026-12-07 07:00 UTC");
    let list = s.json(&["freeze", "list"]);
    assert_eq!(list["frozen_until"], "2026-12-07T07:00:00Z", "{list}");
    assert_eq!(list["freezes"][0]["start"], "0 23 * * 5", "{list}");
    assert_eq!(list["freezes"][0]["source"], "tracker", "{list}");
    let text = s.ok(&["freeze", "list"]);
    assert!(text.contains("frozen until 2026-12-07 07:00 UTC"), "{text}");
    assert!(text.contains("1  0 23 * * 5 → 0 7 * * 1 (UTC)"), "{text}");

    // Monday 07:00 the freeze is over.
    s.ok(&["clock", "advance", "1d19h"]);
    let v = s.json(&["advance", "1"]);
    assert_eq!(moves(&v), ["ready>production"], "{v}");
    assert_eq!(s.json(&["status", "1"])["waiting"], json!([]));

    s.ok(&["freeze", "remove", "1"]);
    let list = s.json(&["freeze", "list"]);
    assert_eq!(list["freezes"], json!([]), "{list}");
    assert_eq!(list["frozen_until"], Value::Null, "{list}");
    let err = s.fails(&["freeze", "remove", "1"]);
    assert!(err.contains("has no freeze period 1"), "{err}");
}

#[test]
fn a_freeze_in_shepherd_toml_holds_a_move_in_its_time_zone() {
    let s = deploy();
    std::fs::write(
        s.path("shepherd.toml"),
        "[[freeze]]\nstart = \"0 0 20 12 *\"\nend = \"0 0 3 1 *\"\ntimezone = \"Europe/Berlin\"\n",
    )
    .unwrap();
    s.ok(&["clock", "set", "2026-12-28T00:00:00Z"]);
    // Midnight in Berlin is 23:00 UTC in winter.
    held(&s, "2027-01-02 23:00 UTC");
    let list = s.json(&["freeze", "list"]);
    assert_eq!(list["freezes"][0]["source"], "shepherd.toml", "{list}");
    assert_eq!(list["freezes"][0]["id"], Value::Null, "{list}");
    s.ok(&["clock", "set", "2027-01-02T23:00:00Z"]);
    let v = s.json(&["advance", "1"]);
    assert_eq!(moves(&v), ["ready>production"], "{v}");
}

#[test]
fn a_workflow_without_a_freeze_stage_is_not_held() {
    let s = deploy();
    let yaml = DEPLOY.replace("    freeze: wait\n", "");
    std::fs::write(s.path("workflows/deploy.yaml"), yaml).unwrap();
    s.ok(&WEEKEND_FREEZE);
    let v = s.json(&["advance", "1"]);
    assert_eq!(moves(&v), ["ready>production"], "{v}");
}

#[test]
fn bad_crons_and_zones_are_clear_errors() {
    let s = deploy();
    for (start, end, zone, error) in [
        (
            "0 23 * *",
            "0 7 * * 1",
            None,
            "bad `start` cron `0 23 * *`: 4 fields",
        ),
        (
            "0 23 * * 5",
            "0 25 * * 1",
            None,
            "bad `end` cron `0 25 * * 1`",
        ),
        (
            "0 23 * * 5",
            "0 7 * * 1",
            Some("Mars/Olympus"),
            "unknown time zone `Mars/Olympus`",
        ),
    ] {
        let mut args = vec!["freeze", "add", "--start", start, "--end", end];
        args.extend(zone.iter().flat_map(|z| ["--timezone", z]));
        let err = s.fails(&args);
        assert!(err.contains(error), "{err}");
    }
    assert_eq!(s.json(&["freeze", "list"])["freezes"], json!([]));

    for (toml, errors) in [
        (
            "[[freeze]]\nstart = \"0 23 * * 5\"\nend = \"0 7 * * 8\"\n",
            &["shepherd.toml", "[[freeze]]: bad `end` cron `0 7 * * 8`"][..],
        ),
        (
            "[[freeze]]\nstart = \"0 23 * * 5\"\nend = \"0 7 * * 1\"\ntimezone = \"Europe/Atlantis\"\n",
            &["unknown time zone `Europe/Atlantis`"],
        ),
        ("[tracker]\nfreezes = \"gitlab\"\n", &["is no GitLab tracker"]),
        ("[tracker]\nfreezes = \"jira\"\n", &["unknown variant `jira`"]),
    ] {
        std::fs::write(s.path("shepherd.toml"), toml).unwrap();
        let err = s.fails(&["status", "1"]);
        for error in errors {
            assert!(err.contains(error), "{err}");
        }
    }
}

#[test]
fn freeze_commands_on_a_remote_tracker_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["freeze", "list"],
        WEEKEND_FREEZE.to_vec(),
        vec!["freeze", "remove", "1"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_shepherd"))
            .current_dir(dir.path())
            .env_remove("SHEPHERD_TRACKER")
            .env_remove("GITLAB_TOKEN")
            .args(["--tracker", "gitlab:group/project"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("[[freeze]]"), "{err}");
        assert!(err.contains("freezes = \"gitlab\""), "{err}");
    }
}

const BOT: &str = "glpat-freeze-bot";

/// A GitLab test server whose project reads its deploy freeze periods.
fn gitlab() -> Remote<GitLabServer> {
    let server = GitLabServer::start(&[(BOT, "shepherd-bot")]);
    let lab = Remote::new(
        server,
        &format!("gitlab:{PROJECT}"),
        "--gitlab-url",
        "GITLAB_TOKEN",
        BOT,
    );
    write_deploy(lab.dir());
    std::fs::write(
        lab.dir().join("shepherd.toml"),
        "[tracker]\nfreezes = \"gitlab\"\n",
    )
    .unwrap();
    lab
}

/// How many times the server was asked for the freeze periods.
fn freeze_reads(lab: &Remote<GitLabServer>) -> usize {
    lab.server
        .log()
        .iter()
        .filter(|l| l.path.ends_with("/freeze_periods"))
        .count()
}

#[test]
fn a_gitlab_deploy_freeze_period_holds_every_migration_and_is_read_once_per_run() {
    let lab = gitlab();
    // In effect at any moment: it started this minute, and ends on the next 29 February
    // (in Berlin).
    lab.server
        .add_freeze_period("* * * * *", "0 0 29 2 *", "Europe/Berlin");
    let numbers: Vec<String> = (0..3)
        .map(|_| lab.json(&["start", "deploy"])["ref"].to_string())
        .collect();
    for n in &numbers {
        lab.ok_as(BOT, &["label", n.as_str(), "--add", "go"]);
    }
    lab.server.clear_log();
    let v = lab.json(&["reconcile"]);
    assert_eq!(freeze_reads(&lab), 1, "{v}");
    // So does a scheduled poll, with the Store's cache and the engine's shortcuts.
    lab.server.clear_log();
    let polled = lab.reconcile_cached(BOT);
    assert_eq!(freeze_reads(&lab), 1, "{polled}");
    assert!(polled["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| moves(m).is_empty()));
    let migrations = v["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 3, "{v}");
    for m in migrations {
        assert!(moves(m).is_empty(), "{m}");
        assert_eq!(m["blocked_by"][0]["gate"], "freeze", "{m}");
        assert_eq!(
            m["blocked_by"][0]["detail"], "frozen until 2028-02-28 23:00 UTC",
            "{m}"
        );
    }
    let status = lab.json(&["status", numbers[0].as_str()]);
    assert_eq!(status["waiting"][0]["kind"], "freeze", "{status}");

    // Without `freezes = "gitlab"` the project's periods are not read.
    std::fs::remove_file(lab.dir().join("shepherd.toml")).unwrap();
    lab.server.clear_log();
    let v = lab.json(&["advance", numbers[0].as_str()]);
    assert_eq!(moves(&v), ["ready>production"], "{v}");
    assert_eq!(freeze_reads(&lab), 0);
}

#[test]
fn a_file_from_before_freezes_is_brought_forward() {
    let s = deploy();
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute_batch(
        "DROP TABLE freeze_periods;
         UPDATE shepherd_meta SET value = 'shepherd-local-4' WHERE key = 'schema';",
    )
    .unwrap();
    drop(conn);
    let added = s.json(&WEEKEND_FREEZE);
    assert_eq!(added["id"], 1);
    held(&s, "2026-12-07 07:00 UTC");
}

/// The service's engine, on the rehearsal's tracker, with `freezes` from `shepherd.toml`.
fn looks_of(s: &Shepherd, freezes: Vec<Freeze>) -> Vec<Look> {
    let mut sources = Sources::builtin();
    sources.add_workflow_dir(&s.path("workflows")).unwrap();
    sources.add_template_dir(&s.path("templates")).unwrap();
    let catalog = sources.load().unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&state.path().join("state.db"), false).unwrap();
    let tracker = LocalTracker::open(&s.db(), false, None, "tester").unwrap();
    let settings = Settings {
        freezes,
        ..Settings::acting_as("tester")
    };
    let engine = Engine::new(&tracker, &catalog, &store, settings);
    let index = block_on(engine.index()).unwrap();
    block_on(engine.looks(&index, None)).unwrap()
}

#[test]
fn the_service_looks_again_when_a_freeze_ends() {
    let s = deploy();
    // Nothing holds it: it may move now, and nothing is due later.
    let free = looks_of(&s, Vec::new());
    assert_eq!((free[0].may_move, free[0].due), (true, None));
    // A freeze of the tracker's: due when it ends.
    s.ok(&WEEKEND_FREEZE);
    let held = looks_of(&s, Vec::new());
    assert!(!held[0].may_move);
    assert_eq!(
        held[0].due.map(|d| d.to_rfc3339()),
        Some("2026-12-07T07:00:00+00:00".into())
    );
    // One of `shepherd.toml`'s that lasts longer.
    s.ok(&["freeze", "remove", "1"]);
    let weekend = Freeze::new("0 22 * * 5", "0 9 * * 1", Some("UTC")).unwrap();
    let held = looks_of(&s, vec![weekend]);
    assert!(!held[0].may_move);
    assert_eq!(
        held[0].due.map(|d| d.to_rfc3339()),
        Some("2026-12-07T09:00:00+00:00".into())
    );
}

//! The README's commands, run as a newcomer would: its rehearsal block in order, in a
//! fresh directory, with `shepherd` being the binary under test.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{stderr, stdout};

/// The first ```sh block after `heading` in README.md.
fn block_after(heading: &str) -> String {
    let readme = include_str!("../../README.md");
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("the block ends") + start;
    rest[start..end].to_string()
}

/// Runs `script` with bash in `dir` as user `newcomer`, with `shepherd` being the binary
/// under test and no tracker or state from the environment.
fn as_newcomer(dir: &Path, script: &str) -> Output {
    let bin = env!("CARGO_BIN_EXE_shepherd");
    Command::new("bash")
        .current_dir(dir)
        .env_remove("SHEPHERD_TRACKER")
        .env_remove("SHEPHERD_STATE")
        .env("USER", "newcomer")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\nshepherd() {{ {bin:?} \"$@\"; }}\n{script}"
        ))
        .output()
        .expect("bash runs")
}

#[test]
fn the_readme_rehearsal_runs_in_order_on_a_fresh_directory() {
    let block = block_after("## Rehearse a whole Gitaly migration offline");
    // The install line is the reader's; the test already has the binary.
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("cargo install"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().expect("dir");
    let out = as_newcomer(dir.path(), &script);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "the rehearsal failed:\n{text}\n{}",
        stderr(&out)
    );
    // It acted on the migration it started, in rehearsal time, in order.
    assert!(text.contains("started #1"), "{text}");
    assert!(text.contains("client-implementation"), "{text}");
    let history_at = text
        .find("2026-01-01T01:00")
        .expect("history shows rehearsal times");
    assert!(
        text[history_at..].contains("2026-01-03"),
        "history runs forward in time: {text}"
    );
    assert!(
        !text.contains("⚠ stale"),
        "the report reads the rehearsal clock: {text}"
    );
}

#[test]
fn the_readme_main_job_runs_on_a_plain_directory() {
    let readme = include_str!("../../README.md");
    let first = readme
        .lines()
        .find(|l| l.starts_with("cargo run -- start"))
        .expect("README's first command");
    let bin = env!("CARGO_BIN_EXE_shepherd");
    let command = first.replace("cargo run --", &format!("{bin:?}"));
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new("bash")
        .current_dir(dir.path())
        .env_remove("SHEPHERD_TRACKER")
        .env_remove("SHEPHERD_STATE")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{command}"))
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("selection"), "{}", stdout(&out));
    assert!(dir.path().join(".shepherd/tracker.db").exists());
}

#[test]
fn the_readme_merge_request_and_release_commands_move_a_rehearsal_on() {
    let block = block_after("## Gates on the world");
    let dir = tempfile::tempdir().expect("dir");
    // A migration in RPC Design first, as the section assumes.
    let setup = "shepherd start gitaly-migration --var feature_flag=F --var grpc_service=S --var grpc_method=M >/dev/null
shepherd tick 1 'route to migrate' >/dev/null && shepherd advance 1 >/dev/null
for item in 'Rough estimation' 'Decision to move ahead' 'Optional: a new grpc'; do shepherd tick 1 \"$item\" >/dev/null; done
shepherd advance 1 >/dev/null";
    let out = as_newcomer(dir.path(), &format!("{setup}\n{block}\nshepherd advance 1"));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("gitlab-org/gitaly-proto!1 merged"), "{text}");
    assert!(
        text.contains("rpc-design → server-implementation"),
        "{text}"
    );
}

#[test]
fn the_readme_portfolio_rehearsal_shows_each_wait() {
    let block = block_after("## Many migrations, one plan");
    let dir = tempfile::tempdir().expect("dir");
    let out = as_newcomer(dir.path(), &block);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for wait in [
        // The line kept its order through the freeze: worker and cron waited first.
        "#5 waits (slot): waits for a slot in production: 2 of 2 taken by #3, #4",
        "#5 waits (after): rollout #1 is in",
        "waits (freeze): frozen until 2026-12-07 07:00 UTC",
        "(2 of 2 slots taken)",
        "overdue: #",
        "Overdue:",
        "overdue, 3d 4h in production, target 2d",
    ] {
        assert!(text.contains(wait), "{wait:?} in:\n{text}");
    }
    // One nudge, on the overdue migration's issue, mentioning the stage's owners.
    let tracker = shepherd::tracker::local::LocalTracker::open(
        &dir.path().join(".shepherd/tracker.db"),
        false,
        None,
        "t",
    )
    .expect("tracker");
    let nudges: usize = (1..=5)
        .map(|n| {
            crate::support::block_on(shepherd::tracker::Tracker::comments(&tracker, n))
                .expect("comments")
                .iter()
                .filter(|c| c.body.contains("@sre-oncall"))
                .count()
        })
        .sum();
    assert_eq!(nudges, 1);
}

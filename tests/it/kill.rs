//! kill -9 in the middle of a run, then a person's edit, then a rerun (DESIGN §11: a
//! person's edit survives a crash; a rerun finishes what the killed run started).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::Api;
use crate::gitlab_server::GitLabServer;
use crate::remote::Remote;
use crate::support::stderr;

const BOT: &str = "bot-token";

const WORKFLOW: &str = r#"
name: crash-child
variables: {n: {required: true}}
tracking: {template: crash-child}
stages:
  - id: prepare
    label: "cc::prepare"
    gates: [{checklist: {section: Plan}}]
    next: rollout
  - id: rollout
    label: "cc::rollout"
    on_enter: [{create_issue: {template: cc-rollout}}]
    gates: [{checklist: {child: cc-rollout}}]
    next: done
  - id: done
    label: "cc::done"
    terminal: true
"#;

const TRACKING: &str =
    "---\ntitle: \"Crash {{n}}\"\nlabels: [crash-child]\n---\n## Plan\n- [ ] Plan it\n";
const CHILD: &str = "---\ntitle: \"Roll out {{n}}\"\n---\nThis is #{{issue.ref}}.\n\n## Steps\n- [ ] Run it on staging\n- [ ] Run it on production\n";

fn lab() -> Remote<GitLabServer> {
    let server = GitLabServer::start(&[(BOT, "shepherd-bot")]);
    let lab = Remote::new(
        server,
        &format!("gitlab:{}", crate::gitlab_server::PROJECT),
        "--gitlab-url",
        "GITLAB_TOKEN",
        BOT,
    )
    .cached();
    let dir = lab.dir();
    crate::support::write_workflow(
        dir,
        "crash-child",
        WORKFLOW,
        &[("crash-child", TRACKING), ("cc-rollout", CHILD)],
    );
    lab
}

/// The children of every migration, by parent, from the server's own state.
fn children(server: &GitLabServer) -> BTreeMap<u64, Vec<Value>> {
    let mut out: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for issue in server.issues() {
        let body = issue["description"].as_str().unwrap_or_default();
        if let Some(marker) = shepherd::core::marker::IssueMarker::find(body) {
            if let Some(parent) = marker.parent {
                out.entry(parent).or_default().push(issue.clone());
            }
        }
    }
    out
}

#[test]
fn a_kill_at_any_moment_loses_no_tick_and_the_rerun_finishes() {
    // Kill points spread over a run that takes about a second at 30 ms a response.
    for trial in 0..10u64 {
        let lab = lab();
        let mut numbers = Vec::new();
        for i in 0..5 {
            let n = lab.json(&["start", "crash-child", "--var", &format!("n=m{i}")])["ref"]
                .as_u64()
                .unwrap();
            numbers.push(n);
        }
        for n in &numbers {
            let body = lab
                .server
                .body(*n)
                .replacen("- [ ] Plan it", "- [x] Plan it", 1);
            lab.server.edit_description(*n, &body, "alice");
        }
        lab.server.latency(Duration::from_millis(30));
        let mut run = lab
            .command(BOT, &[], &["reconcile", "--concurrency", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let kill_at = Duration::from_millis(60 + trial * 190);
        let began = Instant::now();
        while began.elapsed() < kill_at && run.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = run.kill();
        run.wait().unwrap();
        lab.server.latency(Duration::ZERO);
        // A person ticks the first box of every child that exists, as in the tracker's UI.
        let mut ticked = Vec::new();
        for kids in children(&lab.server).values() {
            for kid in kids {
                let n = kid["iid"].as_u64().unwrap();
                let body = lab.server.body(n);
                let edited = body.replacen("- [ ] Run it on staging", "- [x] Run it on staging", 1);
                lab.server.edit_description(n, &edited, "alice");
                ticked.push(n);
            }
        }
        let out = lab.run_as(BOT, &["reconcile", "--format", "json"]);
        assert!(out.status.success(), "trial {trial}: {}", stderr(&out));
        let kids = children(&lab.server);
        for n in &numbers {
            let theirs = kids.get(n).cloned().unwrap_or_default();
            assert_eq!(
                theirs.len(),
                1,
                "trial {trial}: #{n} has one child: {theirs:?}"
            );
            let kid = &theirs[0];
            let k = kid["iid"].as_u64().unwrap();
            let body = kid["description"].as_str().unwrap();
            assert!(
                body.contains(&format!("This is #{k}.")),
                "trial {trial}: #{k} has its own number: {body}"
            );
            if ticked.contains(&k) {
                assert!(
                    body.contains("- [x] Run it on staging"),
                    "trial {trial}: the tick on #{k} was lost: {body}"
                );
            }
            let labels = lab.server.label_names(*n);
            assert!(
                labels.contains(&"cc::rollout".to_string()),
                "trial {trial}: #{n} is in rollout: {labels:?}"
            );
            assert!(
                !labels.contains(&"cc::prepare".to_string()),
                "trial {trial}: {labels:?}"
            );
        }
        for n in lab.server.issue_numbers() {
            let bodies = lab.server.comment_bodies(n);
            crate::support::assert_no_duplicate_markers(bodies.iter().map(String::as_str));
        }
    }
}

/// A run that read the list before another process moved a migration, and takes its
/// lease after: it looks at the Store's record of the move first, reads the issue again,
/// and posts no audit comment for the move already made (not even one it deletes).
#[test]
fn a_move_another_process_made_since_the_list_is_not_posted_again() {
    use crate::test_server::Fault;
    let lab = lab();
    let mut numbers = Vec::new();
    for i in 0..2 {
        let n = lab.json(&["start", "crash-child", "--var", &format!("n=m{i}")])["ref"]
            .as_u64()
            .unwrap();
        let body = lab
            .server
            .body(n)
            .replacen("- [ ] Plan it", "- [x] Plan it", 1);
        lab.server.edit_description(n, &body, "alice");
        numbers.push(n);
    }
    let (first, second) = (numbers[0], numbers[1]);
    // A status keeps every migration's comments in the Store's cache, as read now.
    lab.json(&["status"]);
    // The first migration's comments answer 503 once, asking for a 2 s wait: the run
    // that lists both waits there, holding the second's stale copy.
    lab.server.fail(Fault::status(
        "GET",
        &format!("/issues/{first}/notes"),
        503,
        Some(2),
        1,
    ));
    lab.server.clear_log();
    let slow = lab
        .command(
            BOT,
            &[],
            &["reconcile", "--concurrency", "1", "--format", "json"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while !lab
        .server
        .log()
        .iter()
        .any(|l| l.path.ends_with(&format!("/issues/{first}/notes")))
    {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the run never asked"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Meanwhile another process moves the second migration.
    let v = lab.json(&["advance", &second.to_string()]);
    assert_eq!(v["stage"], "rollout", "{v}");
    lab.server.clear_log();
    let out = slow.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let posted: Vec<String> = lab
        .server
        .log()
        .iter()
        .filter(|l| {
            l.path.ends_with(&format!("/issues/{second}/notes"))
                && (l.method == "POST" || l.method == "DELETE")
        })
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert!(posted.is_empty(), "the move was posted again: {posted:?}");
    let bodies = lab.server.comment_bodies(second);
    crate::support::assert_no_duplicate_markers(bodies.iter().map(String::as_str));
    assert!(lab
        .server
        .label_names(first)
        .contains(&"cc::rollout".to_string()));
}

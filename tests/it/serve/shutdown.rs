//! SIGTERM while advances are in flight (the GitLab test server answers slowly): the
//! service finishes what it holds, hands back the rest, gives back its leases and exits 0;
//! every migration is either wholly moved or untouched, and a `reconcile` afterwards
//! finishes the rest with no duplicate.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use shepherd::core::marker::IssueMarker;
use shepherd::store::sqlite::SqliteStore;
use shepherd::store::Store;

use super::{seed_ready_for_testing, serve_gitlab, BOT};
use crate::api::Api;
use crate::gitlab_server::{GitLabServer, PROJECT};
use crate::support::{assert_no_duplicate_markers, block_on, stderr, stdout};

const MIGRATIONS: usize = 6;

/// The children of each migration (by the parent in their marker).
fn children(server: &GitLabServer) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for n in server.issue_numbers() {
        if let Some(parent) = IssueMarker::find(&server.body(n)).and_then(|m| m.parent) {
            *out.entry(parent).or_insert(0) += 1;
        }
    }
    out
}

fn audits(server: &GitLabServer, n: u64) -> usize {
    server
        .comment_bodies(n)
        .iter()
        .filter(|c| c.contains("shepherd:transition="))
        .count()
}

#[test]
fn sigterm_in_the_middle_of_work_leaves_no_half_done_transition() {
    let server = GitLabServer::start(&[(BOT, "shepherd-bot")]);
    // Ready for Testing with every box ticked: each may move now, opening a child.
    let numbers = seed_ready_for_testing(&server, MIGRATIONS, true);
    server.set_latency(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let state_path = dir.path().join("state.db");
    let state = format!("sqlite:{}", state_path.display());
    let mut service = serve_gitlab(dir.path(), &server, &state, &[]);
    let tracker = format!("gitlab:{PROJECT}");
    // The first resync queued them all; stop as soon as the first write is under way.
    service.wait_for("an advance to write", || {
        server.log().iter().any(|l| l.method != "GET")
    });
    assert_eq!(service.terminate(), Some(0), "{}", service.log());

    // Each migration is wholly moved or untouched.
    let kids = children(&server);
    let mut moved = 0;
    for n in &numbers {
        let labels = server.label_names(*n);
        if labels.contains(&"Acceptance Testing".to_string()) {
            moved += 1;
            assert_eq!(kids.get(n), Some(&1), "#{n}: its child");
            assert_eq!(audits(&server, *n), 1, "#{n}: its audit comment");
            assert!(!labels.contains(&"Migration:Ready-for-Testing".to_string()));
        } else {
            assert!(
                labels.contains(&"Migration:Ready-for-Testing".to_string()),
                "#{n}: {labels:?}"
            );
            assert_eq!(kids.get(n), None, "#{n}: no child without the move");
            assert_eq!(audits(&server, *n), 0, "#{n}: no audit without the move");
        }
    }
    println!("{moved} of {MIGRATIONS} moved before the exit");
    assert!(moved >= 1, "the advances in hand finished before the exit");
    // No lease left behind.
    let store = SqliteStore::open(&state_path, false).unwrap();
    for n in &numbers {
        let key = format!("{tracker}#{n}");
        assert_eq!(block_on(store.holder(&key)).unwrap(), None, "{key}");
    }

    // A reconcile on the same Store finishes the rest, and duplicates nothing.
    server.set_latency(Duration::ZERO);
    let out = Command::new(env!("CARGO_BIN_EXE_shepherd"))
        .current_dir(dir.path())
        .env_remove("SHEPHERD_TRACKER")
        .env("GITLAB_TOKEN", BOT)
        .args(["--tracker", &tracker, "--gitlab-url", &server.url])
        .args(["--state", &state, "reconcile", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let kids = children(&server);
    for n in &numbers {
        assert!(server
            .label_names(*n)
            .contains(&"Acceptance Testing".to_string()));
        assert_eq!(kids.get(n), Some(&1), "#{n}: one child: {kids:?}");
        assert_eq!(audits(&server, *n), 1, "#{n}: one audit comment");
        assert_eq!(server.label_added_count(*n, "Acceptance Testing"), 1);
    }
    for n in server.issue_numbers() {
        let comments = server.comment_bodies(n);
        assert_no_duplicate_markers(comments.iter().map(String::as_str));
    }
}

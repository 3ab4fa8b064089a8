//! Two `shepherd serve` replicas on one PostgreSQL Store (a throw-away database, required
//! when `CI` is set), against one GitLab test server with latency: deliveries go to both
//! (the same delivery to each, and different ones), one replica is killed with SIGKILL
//! mid-run, and every migration still moves exactly once — one child issue, one audit
//! comment per move, one label event — with the survivor finishing the work.

use std::collections::BTreeMap;
use std::time::Duration;

use shepherd::core::marker::IssueMarker;

use super::{
    gitlab_headers, gitlab_issue_hook, put_issue, sample, seed_ready_for_testing, serve_gitlab,
    BOT, SECRET,
};
use crate::api::Api;
use crate::gitlab_server::{GitLabServer, PROJECT};
use crate::pg::TestDb;
use crate::support::assert_no_duplicate_markers;

const MIGRATIONS: usize = 8;

#[test]
fn two_replicas_on_postgres_move_every_migration_once_when_one_is_killed() {
    let Some(db) = TestDb::create() else {
        return;
    };
    let server = GitLabServer::start(&[(BOT, "shepherd-bot")]);
    let numbers = seed_ready_for_testing(&server, MIGRATIONS, false);
    server.set_latency(Duration::from_millis(30));
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        serve_gitlab(
            dir.path(),
            &server,
            db.url(),
            &[
                ("SHEPHERD_RETRY_BASE_MS", "10"),
                // A killed replica's leases (and the queue entries it took, three leases)
                // run out soon.
                ("SHEPHERD_LEASE_TTL", "2s"),
            ],
        )
    };
    let mut a = start();
    let mut b = start();
    // Nothing is ticked: nothing moved at the first resyncs.
    for n in &numbers {
        assert!(
            server
                .label_names(*n)
                .contains(&"Migration:Ready-for-Testing".to_string()),
            "#{n}: {:?}",
            server.label_names(*n)
        );
    }

    // People tick every box; GitLab delivers each edit. Even migrations: the same
    // delivery to both replicas (one queues it, the other has seen it); odd ones: a
    // delivery of its own to each.
    for (i, n) in numbers.iter().enumerate() {
        let body = server.body(*n).replace("- [ ] ", "- [x] ");
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("description", &body)
            .finish();
        put_issue(&server, BOT, *n, &form);
        let hook = gitlab_issue_hook(*n, &body, PROJECT);
        if i % 2 == 0 {
            let uuid = format!("replicas-same-{n}");
            let mut statuses = [
                a.post("/hooks/gitlab", &gitlab_headers(SECRET, &uuid), &hook)
                    .0,
                b.post("/hooks/gitlab", &gitlab_headers(SECRET, &uuid), &hook)
                    .0,
            ];
            statuses.sort();
            assert_eq!(statuses, [200, 202], "#{n}: queued once, seen once");
        } else {
            for (service, side) in [(&a, "a"), (&b, "b")] {
                let uuid = format!("replicas-{side}-{n}");
                let (status, text) =
                    service.post("/hooks/gitlab", &gitlab_headers(SECRET, &uuid), &hook);
                assert_eq!(status, 202, "#{n}: {text}");
            }
        }
    }
    // Once the work is under way, replica A dies without a word.
    let moved = |n: &u64| {
        server
            .label_names(*n)
            .contains(&"Acceptance Testing".to_string())
    };
    b.wait_for("a first move", || numbers.iter().any(moved));
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let at_kill = numbers.iter().filter(|n| moved(n)).count();
    println!("{at_kill} of {MIGRATIONS} had moved when replica A was killed");

    // B carries on: every migration moves, and the queue empties.
    b.wait_for("every migration to move", || numbers.iter().all(moved));
    b.wait_for("the queue to empty", || {
        sample(&b.get("/metrics").1, "shepherd_queue_depth") == Some(0.0)
    });
    assert_eq!(b.terminate(), Some(0), "the survivor stops cleanly");

    server.set_latency(Duration::ZERO);
    let mut children: BTreeMap<u64, usize> = BTreeMap::new();
    for n in server.issue_numbers() {
        if let Some(parent) = IssueMarker::find(&server.body(n)).and_then(|m| m.parent) {
            *children.entry(parent).or_insert(0) += 1;
        }
        let comments = server.comment_bodies(n);
        assert_no_duplicate_markers(comments.iter().map(String::as_str));
    }
    for n in &numbers {
        assert_eq!(children.get(n), Some(&1), "#{n}: one child: {children:?}");
        let added = server.label_added_count(*n, "Acceptance Testing");
        assert_eq!(added, 1, "#{n}: the stage label was added {added} times");
        let audits = server
            .comment_bodies(*n)
            .iter()
            .filter(|c| c.contains("shepherd:transition="))
            .count();
        assert_eq!(audits, 1, "#{n}: one audit comment for the one move");
    }
}

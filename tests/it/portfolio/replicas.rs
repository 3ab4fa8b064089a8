//! A limited stage with everything at once on one PostgreSQL Store (a throw-away database,
//! required when `CI` is set): two `shepherd serve` replicas and four `reconcile`s against
//! one GitLab test server with latency, and webhook deliveries for every migration to both
//! replicas while the reconciles run. Eight migrations are ready for `global` (limit 2):
//! two enter it — one label event each, one audit comment each — and the others wait in
//! `prep`. The migrations become ready all at once (a person labels them `ready` while the
//! replicas idle), then the reconciles start and the deliveries go out. The server's label event history, replayed in order, shows that no more than
//! two ever stood in `global`, not even for a moment before a rollback.

use std::collections::BTreeSet;
use std::process::Output;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{flags, reconcile, seed_flags};
use crate::api::Api;
use crate::gitlab_server::{GitLabServer, PROJECT};
use crate::pg::TestDb;
use crate::serve::service::Service;
use crate::serve::{
    gitlab_headers, gitlab_issue_hook, put_issue, sample, serve_gitlab, BOT, SECRET,
};
use crate::support::{assert_no_duplicate_markers, stderr, stdout};

const MIGRATIONS: usize = 8;
const LIMIT: usize = 2;
const RECONCILES: usize = 4;
const PREP: &str = "flag::prep";
const GLOBAL: &str = "flag::global";
/// How long the runs get to settle: generous, for a shared machine.
const SETTLE: Duration = Duration::from_secs(120);

/// A person's token on the server.
const PERSON: &str = "glpat-person-0123456789";

/// The most issues that ever stood in `label` at once, replaying the label events of
/// `numbers` in the order the server recorded them (its ids count up across issues); each
/// new most is printed with who stood there.
fn most_at_once(server: &GitLabServer, numbers: &[u64], label: &str) -> usize {
    let mut events: Vec<(u64, u64, bool)> = numbers
        .iter()
        .flat_map(|n| {
            server
                .events(*n)
                .into_iter()
                .filter(|e| e["label"]["name"] == label)
                .map(|e| (e["id"].as_u64().unwrap(), *n, e["action"] == "add"))
                .collect::<Vec<_>>()
        })
        .collect();
    events.sort_unstable();
    let mut standing = BTreeSet::new();
    let mut most = 0;
    for (id, n, added) in events {
        if added {
            standing.insert(n);
        } else {
            standing.remove(&n);
        }
        if standing.len() > most {
            most = standing.len();
            println!("after label event {id}: {standing:?} stand in {label}");
        }
    }
    most
}

#[test]
fn four_reconciles_and_two_serve_replicas_on_postgres_never_put_more_than_the_limit_into_a_stage() {
    // Prints why it was skipped when PostgreSQL cannot be reached (fails under CI).
    let Some(db) = TestDb::create() else {
        return;
    };
    let s = flags(Some(LIMIT as u32));
    let server = GitLabServer::start(&[(BOT, "shepherd-bot"), (PERSON, "a-person")]);
    let numbers = seed_flags(&server, MIGRATIONS, &[PREP]);
    server.set_latency(Duration::from_millis(15));
    let start = || {
        serve_gitlab(
            s.dir.path(),
            &server,
            db.url(),
            &[("SHEPHERD_RETRY_BASE_MS", "10")],
        )
    };

    // The replicas start, with nothing to move at their first resync.
    let (mut a, mut b) = std::thread::scope(|scope| {
        let a = scope.spawn(start);
        let b = scope.spawn(start);
        (a.join().unwrap(), b.join().unwrap())
    });
    // Every migration becomes ready; the four reconciles start.
    for n in &numbers {
        // A person adds the label `ready` through the server's API.
        put_issue(&server, PERSON, *n, "add_labels=ready");
    }
    let (done_tx, done_rx) = mpsc::channel::<(usize, Output)>();
    for i in 0..RECONCILES {
        let child = reconcile(&s, &server, BOT, db.url(), &["--concurrency", "4"])
            .spawn()
            .expect("shepherd starts");
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let _ = done_tx.send((i, child.wait_with_output().expect("ends")));
        });
    }
    drop(done_tx);

    // GitLab delivers an edit of every migration to both replicas while the reconciles
    // run: even ones the same delivery to each, odd ones a delivery of its own to each.
    let mut reconciles: Vec<Option<Output>> = (0..RECONCILES).map(|_| None).collect();
    let collect = |reconciles: &mut Vec<Option<Output>>, wait: Duration| {
        while let Ok((i, out)) = done_rx.recv_timeout(wait) {
            reconciles[i] = Some(out);
        }
    };
    collect(&mut reconciles, Duration::ZERO);
    let running = reconciles.iter().filter(|r| r.is_none()).count();
    for (i, n) in numbers.iter().enumerate() {
        let hook = gitlab_issue_hook(*n, &server.body(*n), PROJECT);
        for (service, side) in [(&a, "a"), (&b, "b")] {
            let uuid = if i % 2 == 0 {
                format!("portfolio-same-{n}")
            } else {
                format!("portfolio-{side}-{n}")
            };
            let (status, text) =
                service.post("/hooks/gitlab", &gitlab_headers(SECRET, &uuid), &hook);
            assert!([200, 202].contains(&status), "#{n}: {status} {text}");
        }
    }
    println!("{running} of {RECONCILES} reconciles still ran when the deliveries were sent");

    // Every reconcile ends, and succeeds.
    let deadline = Instant::now() + SETTLE;
    while reconciles.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "a reconcile did not end:\n{}", a.log());
        collect(&mut reconciles, left.min(Duration::from_millis(200)));
    }
    let outputs: Vec<String> = reconciles
        .into_iter()
        .map(|out| {
            let out = out.unwrap();
            assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
            stdout(&out)
        })
        .collect();

    // Things settle: the limit reached, the shared queue empty.
    let standing = |label: &str| -> Vec<u64> {
        numbers
            .iter()
            .copied()
            .filter(|n| server.label_names(*n).iter().any(|l| l == label))
            .collect()
    };
    let started = Instant::now();
    let mut settled = false;
    while !settled {
        assert!(
            started.elapsed() < SETTLE,
            "did not settle: in global {:?}, in prep {:?}\nreconciles:\n{}\nA:\n{}\nB:\n{}",
            standing(GLOBAL),
            standing(PREP),
            outputs.join("\n"),
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
        settled = standing(GLOBAL).len() == LIMIT
            && [&a, &b]
                .iter()
                .all(|r| sample(&r.get("/metrics").1, "shepherd_queue_depth") == Some(0.0));
    }
    let by_replica = |r: &Service| -> f64 {
        r.get("/metrics")
            .1
            .lines()
            .filter(|l| l.starts_with("shepherd_transitions_total{") && l.contains("to=\"global\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |sum, v| sum + v)
    };
    let by_reconciles = outputs
        .iter()
        .map(|o| o.matches("\"to\": \"global\"").count())
        .sum::<usize>();
    println!(
        "entries into global: replica A {}, replica B {}, the reconciles {by_reconciles}",
        by_replica(&a),
        by_replica(&b)
    );
    assert_eq!(a.terminate(), Some(0), "replica A stops cleanly");
    assert_eq!(b.terminate(), Some(0), "replica B stops cleanly");
    server.set_latency(Duration::ZERO);

    // Never more than the limit, not even for a moment.
    let most = most_at_once(&server, &numbers, GLOBAL);
    assert!(
        most <= LIMIT,
        "{most} stood in global at once\nreconciles:\n{}\nA:\n{}\nB:\n{}",
        outputs.join("\n"),
        a.log(),
        b.log()
    );
    // Exactly the limit stands there, the others still in prep.
    let global = standing(GLOBAL);
    assert_eq!(global.len(), LIMIT, "{global:?}");
    let prep = standing(PREP);
    assert_eq!(prep.len(), MIGRATIONS - LIMIT, "{prep:?}");
    assert!(prep.iter().all(|n| !global.contains(n)));
    // Each entry is one audit comment, on a migration that stands there; each entered once.
    let entered: Vec<u64> = numbers
        .iter()
        .flat_map(|n| {
            server
                .comment_bodies(*n)
                .into_iter()
                .filter(|b| b.contains("\"to\":\"global\""))
                .map(|_| *n)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(entered, global, "the audit comments of entries into global");
    for n in &numbers {
        let comments = server.comment_bodies(*n);
        assert_no_duplicate_markers(comments.iter().map(String::as_str));
        let added = server.label_added_count(*n, GLOBAL);
        assert!(added <= 1, "#{n}: global was added {added} times");
    }
}

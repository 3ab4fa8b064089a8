//! The Store's behaviour, written once and checked on both implementations: SQLite (a
//! temporary file) and PostgreSQL (a throw-away database from `pg::TestDb`). Races run
//! many tasks on two independent handles of one file or one database, as two processes
//! would. Then the faults: bad URLs, an unreachable or vanishing PostgreSQL, a file that
//! is not a store, a store written by a newer shepherd, and dry runs that write nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use shepherd::store::postgres::{PostgresStore, Timeouts};
use shepherd::store::{self, Store, StoreError};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::pg::TestDb;

/// One store to check: where it lives, and what keeps it alive.
struct Backend {
    name: &'static str,
    url: String,
    dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

impl Backend {
    async fn open(&self) -> Arc<dyn Store> {
        match store::open(&self.url, false).await {
            Ok(s) => Arc::from(s),
            Err(e) => panic!("{}: cannot open {}: {e}", self.name, self.url),
        }
    }
}

/// SQLite in a directory that does not exist yet, and PostgreSQL when it answers.
fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("state/store.db").display());
    let mut all = vec![Backend {
        name: "sqlite",
        url,
        dir: Some(dir),
        db: None,
    }];
    if let Some(db) = TestDb::create() {
        all.push(Backend {
            name: "postgres",
            url: db.url().to_string(),
            dir: None,
            db: Some(db),
        });
    }
    all
}

const LONG: Duration = Duration::from_secs(60);

fn ago(secs: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::seconds(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_has_one_holder_until_it_is_released_or_expires() {
    for b in backends() {
        let s = b.open().await;
        let n = b.name;
        assert!(s.acquire("m1", "alice", LONG).await.unwrap(), "{n}");
        assert!(
            !s.acquire("m1", "bob", LONG).await.unwrap(),
            "{n}: bob took alice's lease"
        );
        let (holder, until) = s.holder("m1").await.unwrap().expect("a holder");
        assert_eq!(holder, "alice", "{n}");
        assert!(
            until > Utc::now() + chrono::Duration::seconds(50),
            "{n}: {until}"
        );
        assert!(
            s.acquire("m1", "alice", LONG).await.unwrap(),
            "{n}: the owner renews by acquiring"
        );
        assert!(
            !s.renew("m1", "bob", LONG).await.unwrap(),
            "{n}: bob renewed alice's lease"
        );
        assert!(s.renew("m1", "alice", LONG).await.unwrap(), "{n}");

        s.release("m1", "bob").await.unwrap();
        assert_eq!(
            s.holder("m1").await.unwrap().map(|h| h.0).as_deref(),
            Some("alice"),
            "{n}: bob released alice's lease"
        );
        s.release("m1", "alice").await.unwrap();
        assert_eq!(s.holder("m1").await.unwrap(), None, "{n}");
        assert!(
            s.acquire("m1", "bob", LONG).await.unwrap(),
            "{n}: a released lease is free"
        );

        // Expiry: a lease nobody renews is taken over, and its old owner cannot renew it.
        assert!(
            s.acquire("m2", "alice", Duration::from_millis(300))
                .await
                .unwrap(),
            "{n}"
        );
        assert!(!s.acquire("m2", "bob", LONG).await.unwrap(), "{n}");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            s.holder("m2").await.unwrap(),
            None,
            "{n}: an expired lease is no one's"
        );
        assert!(
            s.acquire("m2", "bob", LONG).await.unwrap(),
            "{n}: an expired lease is free"
        );
        assert!(
            !s.renew("m2", "alice", LONG).await.unwrap(),
            "{n}: alice renewed a lease bob took"
        );

        // release_all gives back only the owner's leases.
        assert!(s.acquire("m3", "bob", LONG).await.unwrap());
        assert!(s.acquire("m4", "carol", LONG).await.unwrap());
        s.release_all("bob").await.unwrap();
        for key in ["m1", "m2", "m3"] {
            assert_eq!(
                s.holder(key).await.unwrap(),
                None,
                "{n}: {key} after release_all"
            );
        }
        assert_eq!(
            s.holder("m4").await.unwrap().map(|h| h.0).as_deref(),
            Some("carol"),
            "{n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_racing_for_one_lease_make_exactly_one_holder() {
    for b in backends() {
        // Two independent handles on one file or database, as two processes have.
        let handles = [b.open().await, b.open().await];
        for round in 0..10 {
            let key = format!("race-{round}");
            let tasks: Vec<JoinHandle<(String, bool)>> = (0..24)
                .map(|i| {
                    let s = Arc::clone(&handles[i % 2]);
                    let key = key.clone();
                    tokio::spawn(async move {
                        let owner = format!("worker-{i}");
                        let won = s.acquire(&key, &owner, LONG).await.unwrap();
                        (owner, won)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for t in tasks {
                let (owner, won) = t.await.unwrap();
                if won {
                    winners.push(owner);
                }
            }
            assert_eq!(
                winners.len(),
                1,
                "{}: round {round}: winners {winners:?}",
                b.name
            );
            let holder = handles[1].holder(&key).await.unwrap().map(|h| h.0);
            assert_eq!(holder.as_ref(), winners.first(), "{}", b.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_keeps_one_entry_per_key_at_its_earliest_due_time() {
    for b in backends() {
        let s = b.open().await;
        let n = b.name;
        s.enqueue("a", ago(1), "webhook a").await.unwrap();
        s.enqueue("b", ago(30), "resync b").await.unwrap();
        s.enqueue("c", ago(20), "webhook c").await.unwrap();
        s.enqueue("later", Utc::now() + chrono::Duration::hours(1), "soak")
            .await
            .unwrap();
        // Coalescing: later times are absorbed, an earlier one wins with its reason.
        s.enqueue("a", Utc::now() + chrono::Duration::hours(2), "timer")
            .await
            .unwrap();
        s.enqueue("c", ago(40), "webhook c again").await.unwrap();

        // The age is how long the oldest due entry has waited since it was queued (an
        // entry queued now for a past time has waited no longer than that).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (depth, age) = s.queue_depth().await.unwrap();
        assert_eq!(depth, 4, "{n}");
        let age = age.expect("an age");
        assert!(
            age >= Duration::from_millis(290) && age < Duration::from_secs(10),
            "{n}: {age:?}"
        );
        let next = s.next_due().await.unwrap().expect("a due time");
        assert!((next - ago(40)).num_seconds().abs() <= 2, "{n}: {next}");

        let taken = s.take_due("w", 10, LONG).await.unwrap();
        let got: Vec<(&str, &str)> = taken
            .iter()
            .map(|e| (e.key.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("c", "webhook c again"),
                ("b", "resync b"),
                ("a", "webhook a")
            ],
            "{n}"
        );
        // queued_at is that of the first queuing, not the re-queue's.
        let c = &taken[0];
        assert!(
            c.queued_at <= Utc::now() && c.due < c.queued_at,
            "{n}: {c:?}"
        );
        assert!(
            s.take_due("w2", 10, LONG).await.unwrap().is_empty(),
            "{n}: taken twice"
        );
        for key in ["a", "b", "c"] {
            s.done(key, "w").await.unwrap();
        }
        assert_eq!(
            s.queue_depth().await.unwrap(),
            (1, None),
            "{n}: only the soak is left"
        );
        let next = s.next_due().await.unwrap().expect("the soak");
        assert!(
            next > Utc::now() + chrono::Duration::minutes(59),
            "{n}: {next}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_takers_never_share_an_entry() {
    for b in backends() {
        let handles = [b.open().await, b.open().await];
        let keys: Vec<String> = (0..150).map(|i| format!("mig-{i:03}")).collect();
        for key in &keys {
            handles[0].enqueue(key, ago(5), "resync").await.unwrap();
        }
        let takers: Vec<JoinHandle<Vec<String>>> = (0..8)
            .map(|i| {
                let s = Arc::clone(&handles[i % 2]);
                tokio::spawn(async move {
                    let owner = format!("taker-{i}");
                    let mut mine = Vec::new();
                    loop {
                        let batch = s.take_due(&owner, 7, LONG).await.unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|e| e.key));
                    }
                })
            })
            .collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for t in takers {
            for key in t.await.unwrap() {
                *seen.entry(key).or_default() += 1;
            }
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{}: taken more than once: {twice:?}",
            b.name
        );
        assert_eq!(seen.len(), keys.len(), "{}: some were never taken", b.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_take_that_runs_out_is_taken_again_and_a_requeue_while_working_survives_done() {
    for b in backends() {
        let s = b.open().await;
        let n = b.name;
        // A worker that dies: its take expires and another worker gets the entry.
        s.enqueue("dies", ago(1), "webhook").await.unwrap();
        assert_eq!(
            s.take_due("w1", 10, Duration::from_millis(300))
                .await
                .unwrap()
                .len(),
            1,
            "{n}"
        );
        assert!(s.take_due("w2", 10, LONG).await.unwrap().is_empty(), "{n}");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let again = s.take_due("w2", 10, LONG).await.unwrap();
        assert_eq!(
            again.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["dies"],
            "{n}"
        );
        s.done("dies", "w1").await.unwrap(); // w1 no longer has it: nothing happens
        assert_eq!(
            s.queue_depth().await.unwrap().0,
            1,
            "{n}: w1's late done removed w2's entry"
        );
        s.done("dies", "w2").await.unwrap();
        assert_eq!(s.queue_depth().await.unwrap().0, 0, "{n}");

        // Queued again while taken: done keeps it, at the new due time and reason.
        s.enqueue("busy", ago(1), "webhook").await.unwrap();
        assert_eq!(s.take_due("w1", 10, LONG).await.unwrap().len(), 1);
        let soak = Utc::now() + chrono::Duration::hours(1);
        s.enqueue("busy", soak, "soak ends").await.unwrap();
        assert!(
            s.take_due("w2", 10, LONG).await.unwrap().is_empty(),
            "{n}: taken while w1 works"
        );
        s.done("busy", "w1").await.unwrap();
        assert_eq!(
            s.queue_depth().await.unwrap().0,
            1,
            "{n}: the re-queue was lost"
        );
        let next = s.next_due().await.unwrap().expect("the re-queued entry");
        assert!(
            (next - soak).num_milliseconds().abs() <= 1,
            "{n}: {next} vs {soak}"
        );

        // Queued again for now while taken: free for the next take after done.
        s.enqueue("hot", ago(1), "webhook").await.unwrap();
        assert_eq!(s.take_due("w1", 10, LONG).await.unwrap().len(), 1);
        s.enqueue("hot", ago(0), "another webhook").await.unwrap();
        s.done("hot", "w1").await.unwrap();
        let taken = s.take_due("w2", 10, LONG).await.unwrap();
        let got: Vec<_> = taken
            .iter()
            .map(|e| (e.key.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(got, [("hot", "another webhook")], "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_back_off_doubling_up_to_the_cap() {
    for b in backends() {
        let s = b.open().await;
        let n = b.name;
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(600));
        let mut delays = Vec::new();
        for i in 1..=6 {
            let f = s
                .record_failure("m1", &format!("502 #{i}"), min, max)
                .await
                .unwrap();
            assert_eq!(f.attempts, i, "{n}");
            assert_eq!(f.error, format!("502 #{i}"), "{n}");
            delays.push((f.retry_at - f.failed_at).num_milliseconds());
        }
        assert_eq!(
            delays,
            [60_000, 120_000, 240_000, 480_000, 600_000, 600_000],
            "{n}"
        );
        s.record_failure("m2", "retired workflow", min, max)
            .await
            .unwrap();
        let all = s.failures().await.unwrap();
        let keys: Vec<_> = all.iter().map(|f| (f.key.as_str(), f.attempts)).collect();
        assert_eq!(keys, [("m1", 6), ("m2", 1)], "{n}");
        s.clear_failure("m1").await.unwrap();
        let again = s.record_failure("m1", "502", min, max).await.unwrap();
        assert_eq!(again.attempts, 1, "{n}: a success resets the count");
    }
}

/// A failing key waits for its retry time whoever queues it, for whenever (a resync for
/// now, a failure recorded while it waits); a delivery may let its next try come at once,
/// once per backoff: the try that failed spends the waiver until the try at the retry time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_key_waits_for_its_retry_unless_a_delivery_waives_it_once() {
    for b in backends() {
        let s = b.open().await;
        let n = b.name;
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(3600));
        let take = |owner: &'static str| {
            let s = Arc::clone(&s);
            async move {
                let taken = s.take_due(owner, 10, LONG).await.unwrap();
                for e in &taken {
                    s.done(&e.key, owner).await.unwrap();
                }
                taken.into_iter().map(|e| e.key).collect::<Vec<_>>()
            }
        };
        let near = |a: DateTime<Utc>, b: DateTime<Utc>| (a - b).num_milliseconds().abs() <= 1;

        let failed = s.record_failure("m", "502", min, max).await.unwrap();
        s.enqueue("m", ago(1), "resync").await.unwrap();
        s.enqueue("other", ago(1), "resync").await.unwrap();
        s.enqueue("late", ago(1), "webhook").await.unwrap();
        let late = s
            .record_failure("late", "502 elsewhere", min, max)
            .await
            .unwrap();
        assert_eq!(take("w").await, ["other"], "{n}: the failing ones wait");
        let next = s.next_due().await.unwrap().expect("a due time");
        assert!(near(next, failed.retry_at), "{n}: {next} vs {failed:?}");
        assert_eq!(
            s.queue_depth().await.unwrap(),
            (2, None),
            "{n}: none is due, none has waited"
        );

        assert!(s.waive_backoff("m").await.unwrap(), "{n}");
        assert!(!s.waive_backoff("m").await.unwrap(), "{n}: waived already");
        assert!(
            !s.waive_backoff("nobody").await.unwrap(),
            "{n}: not failing"
        );
        let taken = s.take_due("w", 10, LONG).await.unwrap();
        assert_eq!(taken.len(), 1, "{n}: {taken:?}");
        assert_eq!(
            (taken[0].key.as_str(), taken[0].reason.as_str()),
            ("m", "resync")
        );
        // That try fails; a delivery meanwhile waives nothing, and the entry waits again.
        let again = s.record_failure("m", "502", min, max).await.unwrap();
        assert_eq!(again.attempts, 2, "{n}");
        assert!(!s.waive_backoff("m").await.unwrap(), "{n}: spent");
        s.enqueue("m", ago(0), "webhook").await.unwrap();
        s.enqueue("m", again.retry_at, "retry after a failure")
            .await
            .unwrap();
        s.done("m", "w").await.unwrap();
        assert!(take("w").await.is_empty(), "{n}: tried before its retry");
        let next = s.next_due().await.unwrap().expect("a due time");
        assert!(near(next, late.retry_at), "{n}: #late's retry comes first");

        // The try at the retry time fails too: a delivery may waive again.
        s.record_failure("m", "502", min, max).await.unwrap();
        assert!(s.waive_backoff("m").await.unwrap(), "{n}: a new backoff");
        // A success forgets it all: due at once.
        s.clear_failure("late").await.unwrap();
        let mut got = take("w").await;
        got.sort();
        assert_eq!(got, ["late", "m"], "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_are_seen_once_and_forgotten_after_keep() {
    const MANY: u64 = 100_000;
    for b in backends() {
        let s = b.open().await;
        let n = b.name;
        let day = Duration::from_secs(86_400);
        assert!(s.first_delivery("d-1", day, MANY).await.unwrap(), "{n}");
        assert!(
            !s.first_delivery("d-1", day, MANY).await.unwrap(),
            "{n}: a redelivery counted as new"
        );
        assert!(s.first_delivery("d-2", day, MANY).await.unwrap(), "{n}");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let short = Duration::from_millis(200);
        assert!(
            s.first_delivery("d-1", short, MANY).await.unwrap(),
            "{n}: an old id was kept"
        );
        assert!(!s.first_delivery("d-1", short, MANY).await.unwrap(), "{n}");
    }
}

/// Only the `most` newest ids are kept: the oldest beyond them are forgotten as new ones
/// come, whatever their age, and a redelivery does not count as new.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_beyond_the_most_kept_are_forgotten_oldest_first() {
    for b in backends() {
        let s = b.open().await;
        let n = b.name;
        let week = Duration::from_secs(7 * 86_400);
        for i in 1..=5 {
            assert!(s.first_delivery(&format!("e-{i}"), week, 3).await.unwrap());
            // Redeliveries of the newest take no place.
            assert!(!s.first_delivery(&format!("e-{i}"), week, 3).await.unwrap());
        }
        for kept in ["e-3", "e-4", "e-5"] {
            assert!(
                !s.first_delivery(kept, week, 3).await.unwrap(),
                "{n}: {kept} was forgotten"
            );
        }
        assert!(
            s.first_delivery("e-1", week, 3).await.unwrap(),
            "{n}: e-1 was kept beyond the 3 newest"
        );
        // e-1 came again, so e-3 is now the oldest beyond the newest three.
        assert!(s.first_delivery("e-3", week, 3).await.unwrap(), "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caches_and_cursors_keep_what_was_put() {
    for b in backends() {
        let s = b.open().await;
        let n = b.name;
        assert_eq!(s.cache_get("history/1").await.unwrap(), None, "{n}");
        s.cache_put("history/1", "[]", "2026-01-01T00:00:00Z")
            .await
            .unwrap();
        s.cache_put("history/1", "[1]", "2026-01-02T00:00:00Z")
            .await
            .unwrap();
        s.cache_put("history/2", "[2]", "v2").await.unwrap();
        s.cache_put("historyX", "x", "v").await.unwrap();
        s.cache_put("a_b", "literal", "v").await.unwrap();
        s.cache_put("axb", "not a match for a_", "v").await.unwrap();
        let got = s.cache_get("history/1").await.unwrap().expect("cached");
        assert_eq!(
            (got.value.as_str(), got.version.as_str()),
            ("[1]", "2026-01-02T00:00:00Z"),
            "{n}"
        );
        s.cache_clear("history/").await.unwrap();
        s.cache_clear("a_").await.unwrap();
        for (key, kept) in [
            ("history/1", false),
            ("history/2", false),
            ("historyX", true),
            ("a_b", false),
            ("axb", true),
        ] {
            assert_eq!(
                s.cache_get(key).await.unwrap().is_some(),
                kept,
                "{n}: {key}"
            );
        }

        assert_eq!(s.cursor("gitlab:g/p").await.unwrap(), None, "{n}");
        s.set_cursor("gitlab:g/p", "2026-01-01T00:00:00Z")
            .await
            .unwrap();
        s.set_cursor("gitlab:g/p", "2026-01-02T00:00:00Z")
            .await
            .unwrap();
        // A second handle (another process) sees it.
        let other = b.open().await;
        assert_eq!(
            other.cursor("gitlab:g/p").await.unwrap().as_deref(),
            Some("2026-01-02T00:00:00Z"),
            "{n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_opens_all_succeed_and_a_newer_schema_is_refused() {
    for b in backends() {
        let n = b.name;
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let url = b.url.clone();
                tokio::spawn(async move { store::open(&url, false).await.map(|_| ()) })
            })
            .collect();
        for o in opens {
            if let Err(e) = o.await.unwrap() {
                panic!("{n}: a concurrent first open failed: {e}");
            }
        }
        let s = b.open().await;
        s.set_cursor("k", "v").await.unwrap();
        drop(s);
        let s = b.open().await;
        assert_eq!(
            s.cursor("k").await.unwrap().as_deref(),
            Some("v"),
            "{n}: reopening lost data"
        );
        drop(s);

        match (&b.dir, &b.db) {
            (Some(dir), _) => {
                let conn = rusqlite::Connection::open(dir.path().join("state/store.db")).unwrap();
                conn.execute("UPDATE schema_version SET version = 99", [])
                    .unwrap();
            }
            (_, Some(db)) => db
                .execute("UPDATE shepherd_schema_version SET version = 99")
                .unwrap(),
            _ => unreachable!(),
        }
        let err = store::open(&b.url, false)
            .await
            .err()
            .expect("a newer schema is refused");
        let text = err.to_string();
        let known = match b.name {
            "sqlite" => store::sqlite::SCHEMA_VERSION,
            _ => i64::from(store::postgres::SCHEMA_VERSION),
        };
        assert!(
            text.contains(&format!(
                "schema is version 99, newer than this shepherd knows ({known})"
            )),
            "{n}: {text}"
        );
    }
}

fn open_error(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match rt.block_on(store::open(url, false)) {
        Ok(s) => panic!("{url} opened as {}", s.describe()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_urls_are_named_without_their_password() {
    let cases = [
        (
            "mysql://shep:hunter2@db/state",
            "bad state URL `mysql://db/state`: write sqlite:PATH or postgres://USER@HOST/DATABASE",
        ),
        (
            "state.db",
            "bad state URL `state.db`: write sqlite:PATH or postgres://USER@HOST/DATABASE",
        ),
        (
            "sqlite:",
            "bad state URL `sqlite:`: it names no file: write sqlite:PATH",
        ),
        (
            "postgres://shep:hunter2@db:notaport/state",
            "bad state URL `postgres://db:notaport/state`: invalid connection string",
        ),
    ];
    for (url, want) in cases {
        let text = open_error(url);
        assert!(text.starts_with(want), "{url}: {text}");
        assert!(!text.contains("hunter2"), "{url}: {text}");
    }
}

#[test]
fn an_unreachable_postgres_is_an_error_naming_it() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://shep:hunter2@127.0.0.1:{port}/state");
    let started = Instant::now();
    let text = open_error(&url);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let want = format!("cannot open the state store postgres://127.0.0.1:{port}/state: ");
    assert!(text.starts_with(&want), "{text}");
    assert!(text.contains("error connecting to server"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_that_never_answers_times_out() {
    // Accepts connections and then says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("postgres://shep:hunter2@127.0.0.1:{port}/state");
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        query: Duration::from_secs(1),
    };
    let started = Instant::now();
    let err = PostgresStore::connect_with(&url, timeouts)
        .await
        .err()
        .expect("no store");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot open the state store postgres://127.0.0.1:{port}/state: "
        )),
        "{text}"
    );
    silent.abort();
}

/// A TCP proxy to PostgreSQL that a test can cut (closing every connection) or freeze
/// (keeping connections open but passing nothing on).
struct Proxy {
    port: u16,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: (String, u16)) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let list = Arc::clone(&tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().unwrap().push(task);
            }
        });
        Proxy {
            port,
            tasks,
            accept,
        }
    }

    /// Closes every connection and refuses new ones.
    fn cut(&self) {
        self.accept.abort();
        for t in self.tasks.lock().unwrap().iter() {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_that_goes_away_mid_run_is_an_error_not_a_hang() {
    let Some(db) = TestDb::create() else { return };
    let url = url::Url::parse(db.url()).unwrap();
    let target = (
        url.host_str().unwrap().to_string(),
        url.port().unwrap_or(5432),
    );
    let proxy = Proxy::start(target).await;
    let mut via = url.clone();
    via.set_port(Some(proxy.port)).unwrap();
    via.set_password(Some("hunter2")).unwrap();
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        query: Duration::from_secs(2),
    };
    let s = PostgresStore::connect_with(via.as_str(), timeouts)
        .await
        .unwrap();
    assert!(s.acquire("m1", "alice", LONG).await.unwrap());

    proxy.cut();
    let started = Instant::now();
    let err: StoreError = s
        .acquire("m1", "alice", LONG)
        .await
        .expect_err("the database is gone");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    let named = format!(
        "the state store {}",
        shepherd::http::redact::url(via.as_str())
    );
    assert!(text.starts_with(&named), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    // The server ends our connections (a restart, an administrator): the next calls
    // reconnect and carry on.
    let direct = store::open(db.url(), false).await.unwrap();
    assert!(direct.acquire("m2", "bob", LONG).await.unwrap());
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").unwrap();
    // Each pooled connection the server ended fails once, then is replaced.
    let mut results = Vec::new();
    for _ in 0..8 {
        let r = direct.holder("m2").await.map(|h| h.map(|h| h.0));
        let done = r.is_ok();
        results.push(r);
        if done {
            break;
        }
    }
    assert!(
        matches!(results.last(), Some(Ok(Some(owner))) if owner == "bob"),
        "{results:?}"
    );
}

#[tokio::test]
async fn sqlite_faults_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.txt");
    std::fs::write(
        &text_file,
        "this is not a database, just some notes kept here",
    )
    .unwrap();
    let url = format!("sqlite:{}", text_file.display());
    let err = store::open(&url, false)
        .await
        .err()
        .expect("not a database")
        .to_string();
    assert!(
        err.starts_with(&format!("cannot open the state store {url}: ")),
        "{err}"
    );
    assert!(err.contains("not a database"), "{err}");

    let under_file = format!("sqlite:{}", text_file.join("state.db").display());
    let err = store::open(&under_file, false)
        .await
        .err()
        .expect("no directory")
        .to_string();
    assert!(
        err.starts_with(&format!(
            "cannot open the state store {under_file}: cannot create "
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_dry_run_writes_nothing_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    // A missing file in a missing directory: an empty store in memory that works.
    let missing = dir.path().join("new/state.db");
    let s = store::open(&format!("sqlite:{}", missing.display()), true)
        .await
        .unwrap();
    assert!(s.acquire("m1", "alice", LONG).await.unwrap());
    s.enqueue("m1", ago(1), "dry").await.unwrap();
    assert_eq!(s.take_due("w", 5, LONG).await.unwrap().len(), 1);
    drop(s);
    assert!(
        !dir.path().join("new").exists(),
        "a dry run created a directory"
    );

    // An existing empty file stays empty (no schema written), and gets no companions.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    let s = store::open(&format!("sqlite:{}", empty.display()), true)
        .await
        .unwrap();
    s.set_cursor("k", "v").await.unwrap();
    drop(s);
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["empty.db"], "a dry run left files behind");

    // An existing store is read, and what the dry run writes goes nowhere.
    let real = format!("sqlite:{}", dir.path().join("real.db").display());
    store::open(&real, false)
        .await
        .unwrap()
        .set_cursor("k", "before")
        .await
        .unwrap();
    let s = store::open(&real, true).await.unwrap();
    assert_eq!(s.cursor("k").await.unwrap().as_deref(), Some("before"));
    s.set_cursor("k", "during the dry run").await.unwrap();
    drop(s);
    let s = store::open(&real, false).await.unwrap();
    assert_eq!(s.cursor("k").await.unwrap().as_deref(), Some("before"));
}

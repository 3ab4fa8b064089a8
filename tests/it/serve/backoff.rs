//! A failing write in `serve` (DESIGN §7): the migration is tried again only at its
//! backoff time, whatever queues it — the resync (here every second), timers, webhooks —
//! except that a delivery about it brings its next try forward once per backoff; the
//! failure shows in `/`, `/api` and `/metrics`, and the other migrations keep moving. The
//! backoff's end is brought about through the Store (its retry time set to now), not by
//! waiting for minutes; every wait is for an event (a request seen, a resync counted).

use serde_json::Value;
use shepherd::store::sqlite::SqliteStore;
use shepherd::store::Store;

use super::{gitlab_headers, gitlab_issue_hook, gitlab_lab, sample, serve_on_gitlab, SECRET};
use crate::api::Api;
use crate::gitlab_server::{Fault, PROJECT};
use crate::support::block_on;

#[test]
fn a_failing_comment_is_posted_again_only_at_its_backoff() {
    let lab = gitlab_lab();
    let (a, b) = (lab.start(), lab.start());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let tracker = format!("gitlab:{PROJECT}");
    let key = format!("{tracker}#{a}");
    // A resync every second: before the fix, each one queued #a again at once.
    let mut service = serve_on_gitlab(&lab, dir.path(), &["--resync", "1s"]);
    // #a's audit comment answers 502 from now on (a POST is never retried by the
    // client: the next run finds what it made by its marker).
    lab.server.fail(Fault::status(
        "POST",
        &format!("/issues/{a}/notes"),
        502,
        None,
        10_000,
    ));
    // The audit comments #a's run tried to post (`start` posted one before the fault).
    let posts = || {
        let path = format!("/issues/{a}/notes");
        lab.server
            .log()
            .iter()
            .filter(|l| l.method == "POST" && l.path.ends_with(&path) && l.status == 502)
            .count()
    };
    let metrics = || service.get("/metrics").1;
    let resyncs = || -> f64 {
        metrics()
            .lines()
            .filter(|l| l.starts_with("shepherd_resyncs_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // Lets three more resyncs run: each looks at #a, finds it may move, and queues it.
    let three_resyncs = |what: &str| {
        let before = resyncs();
        service.wait_for(what, || resyncs() >= before + 3.0);
    };
    let failed = || {
        sample(
            &metrics(),
            &format!("shepherd_advances_total{{tracker=\"{tracker}\",result=\"failed\"}}"),
        )
    };
    let delivery = |uuid: &str| {
        let body = gitlab_issue_hook(a, &lab.server.body(a), PROJECT);
        let (status, text) = service.post("/hooks/gitlab", &gitlab_headers(SECRET, uuid), &body);
        assert_eq!(status, 202, "{text}");
    };

    // Both are ticked; a resync finds them. #b moves, #a fails once.
    lab.tick_section(a, "Selection");
    lab.tick_section(b, "Selection");
    service.wait_for("#b to move", || {
        lab.labels(b).contains(&"Migration Analysis".to_string())
    });
    service.wait_for("#a to fail", || failed() == Some(1.0));
    assert_eq!(posts(), 1);
    three_resyncs("three resyncs after the failure");
    assert_eq!(posts(), 1, "the resyncs waited for the backoff");
    assert_eq!(failed(), Some(1.0));

    // A person acts on #a: its delivery brings the next try forward, once.
    delivery("backoff-1");
    service.wait_for("the early try", || failed() == Some(2.0));
    assert_eq!(posts(), 2);
    delivery("backoff-2");
    // Meanwhile #b moves on.
    lab.tick_section(b, "Migration Analysis");
    service.wait_for("#b to move on", || {
        !lab.labels(b).contains(&"Migration Analysis".to_string())
    });
    three_resyncs("three resyncs after the early try");
    assert_eq!(posts(), 2, "a second delivery waits for the backoff");

    // The backoff runs out (its retry time, in the Store, is now): one try, then a
    // longer wait.
    let retry_now = rusqlite::Connection::open(&db).unwrap();
    retry_now
        .busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    let changed = retry_now
        .execute(
            "UPDATE failures SET retry_at = ?2 WHERE key = ?1",
            rusqlite::params![key, chrono::Utc::now().timestamp_millis()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    service.wait_for("the try at the retry time", || failed() == Some(3.0));
    three_resyncs("three resyncs after the retry");
    assert_eq!(posts(), 3, "one try at the retry time");
    let store = SqliteStore::open(&db, false).unwrap();
    let failures = block_on(store.failures()).unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failure = &failures[0];
    assert_eq!((failure.key.as_str(), failure.attempts), (key.as_str(), 3));
    let backoff = failure.retry_at - failure.failed_at;
    assert_eq!(backoff, chrono::Duration::minutes(4), "the third in a row");

    // Shown failing in /api and /metrics; the queue holds #a, not yet due.
    service.wait_for("/api to show #a failing", || {
        let (_, text) = service.get(&format!("/api/migrations/gitlab/{a}"));
        serde_json::from_str::<Value>(&text)
            .is_ok_and(|v| v["failing"].as_str().is_some_and(|f| f.contains("502")))
    });
    service.wait_for("/ to show #a failing", || {
        let (_, page) = service.get("/");
        page.contains("<li class=\"failing-note\"><b>failing</b>: ") && page.contains("502")
    });
    let text = metrics();
    assert_eq!(
        sample(&text, "shepherd_failing_migrations"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "shepherd_queue_depth"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "shepherd_queue_age_seconds"),
        Some(0.0),
        "{text}"
    );
    assert!(lab.labels(a).contains(&"Selection".to_string()));
    assert_eq!(service.terminate(), Some(0));
}

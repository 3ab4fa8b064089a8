//! The Store's outbox, on SQLite and on PostgreSQL: an event put twice is one event, a
//! sink's 2xx is kept per sink, a failure puts the event off with backoff, a done event is
//! neither due nor put again.

use std::time::Duration;

use shepherd::store::{self, Store};

use crate::pg::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_keeps_each_event_once_and_each_sink_that_took_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![(
        "sqlite",
        format!("sqlite:{}", dir.path().join("state.db").display()),
    )];
    let db = TestDb::create();
    if let Some(db) = &db {
        urls.push(("postgres", db.url().to_string()));
    }
    for (n, url) in urls {
        let s: Box<dyn Store> = store::open(&url, false).await.unwrap();
        assert!(s.outbox_put("e1", "{\"a\":1}").await.unwrap(), "{n}");
        assert!(!s.outbox_put("e1", "{\"a\":2}").await.unwrap(), "{n}: once");
        assert!(s.outbox_put("e2", "{}").await.unwrap(), "{n}");
        let due = s.outbox_due(10).await.unwrap();
        let ids: Vec<&str> = due.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e1", "e2"], "{n}");
        assert_eq!(due[0].body, "{\"a\":1}", "{n}: the first put stays");
        assert!(due[0].sent.is_empty(), "{n}");

        s.outbox_sent("e1", "sink-a").await.unwrap();
        s.outbox_sent("e1", "sink-a").await.unwrap();
        let min = Duration::from_secs(60);
        let max = Duration::from_secs(3600);
        let first = s
            .outbox_retry("e1", "sink-b answered 500", min, max)
            .await
            .unwrap();
        let second = s
            .outbox_retry("e1", "sink-b answered 500", min, max)
            .await
            .unwrap();
        let ahead = (second - chrono::Utc::now()).num_seconds();
        assert!(
            (110..=120).contains(&ahead),
            "{n}: doubled backoff, {ahead}s"
        );
        assert!(second > first, "{n}");
        let due = s.outbox_due(10).await.unwrap();
        let ids: Vec<&str> = due.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e2"], "{n}: e1 waits for its retry");
        // Due again at once with no backoff: the sinks that took it are kept.
        s.outbox_retry("e1", "again", Duration::ZERO, max)
            .await
            .unwrap();
        let due = s.outbox_due(10).await.unwrap();
        let e1 = due.iter().find(|e| e.id == "e1").expect("e1 due");
        assert_eq!(e1.sent, ["sink-a"], "{n}");
        assert_eq!(e1.attempts, 3, "{n}");

        s.outbox_done("e1").await.unwrap();
        let due = s.outbox_due(10).await.unwrap();
        assert!(due.iter().all(|e| e.id != "e1"), "{n}: done");
        assert!(
            !s.outbox_put("e1", "{}").await.unwrap(),
            "{n}: done stays done"
        );
    }
}

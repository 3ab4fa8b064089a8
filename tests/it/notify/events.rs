//! What each sink hears: every event once, filtered by `events` and `workflows`, with the
//! same id after a failed send; `notify test`; configuration errors; no URL printed.

use std::time::Duration;

use serde_json::Value;

use super::{
    assert_no_token, cloudevents_python, header, ok, parse_cloudevents, project, recorded, run,
    slack_id, tracker, SinkServer, TOKEN,
};
use crate::support::at;

#[test]
fn each_sink_hears_each_event_once_with_ids_stable_across_a_retry() {
    let (sink, url) = SinkServer::start(Duration::ZERO);
    let [slack, ce, mattermost, other] =
        ["slack", "ce", "mattermost", "other"].map(|p| format!("/{p}/{TOKEN}"));
    let s = project(&format!(
        r#"
[[notify]]
url = "{url}{slack}"
format = "slack"

[[notify]]
url = "env:CE_HOOK"
format = "cloudevents"

[[notify]]
url = "{url}{mattermost}"
format = "slack"
events = ["paused", "resumed"]
workflows = ["note"]

[[notify]]
url = "{url}{other}"
format = "cloudevents"
workflows = ["another-workflow"]
"#
    ));
    let ce_url = format!("{url}{ce}");
    let env = [("CE_HOOK", ce_url.as_str())];
    // The CloudEvents sink refuses its first request: the start waits in the outbox.
    sink.fail(&ce, 500, 1);
    let started: Value =
        serde_json::from_str(&ok(&s, &["start", "note", "--format", "json"], &env)).unwrap();
    let n = started["ref"].as_u64().unwrap();
    let number = n.to_string();
    assert_eq!(sink.received(&ce).len(), 1);
    assert_eq!(sink.received(&ce)[0].status, 500);

    s.tick_section(n, None, "Draft", &at("1h"));
    ok(&s, &["advance", &number], &env);
    ok(
        &s,
        &[
            "pause",
            &number,
            "--reason",
            "waiting for QA",
            "--actor",
            "dave",
        ],
        &env,
    );
    ok(&s, &["resume", &number, "--actor", "erin"], &env);
    s.tick_section(n, None, "Review", &at("2h"));
    ok(&s, &["advance", &number], &env);
    // A run with nothing new sends nothing again.
    ok(&s, &["reconcile"], &env);

    let moves = recorded(&s, n);
    assert_eq!(moves.len(), 3, "start and two moves: {moves:?}");
    let pauses: Vec<String> = s
        .comments(n)
        .iter()
        .filter_map(|c| {
            let m = shepherd::core::marker::PauseMarker::find(&c.body)?;
            let kind = if m.paused { "paused" } else { "resumed" };
            Some(format!("{}/{n}/{kind}/{}", tracker(&s), c.id))
        })
        .collect();
    assert_eq!(pauses.len(), 2);
    let expected: Vec<String> = vec![
        moves[0].clone(),
        moves[1].clone(),
        pauses[0].clone(),
        pauses[1].clone(),
        moves[2].clone(),
    ];

    let heard: Vec<String> = sink.received(&slack).iter().map(slack_id).collect();
    assert_eq!(heard, expected, "the Slack sink, each once");
    let heard: Vec<String> = sink.received(&mattermost).iter().map(slack_id).collect();
    assert_eq!(heard, pauses, "the filtered sink: pauses and resumes only");
    assert!(sink.received(&other).is_empty(), "another workflow's sink");

    // The CloudEvents sink: the start twice (500, then 200, the same id), then the rest.
    let got = sink.received(&ce);
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200, 200, 200, 200, 200]);
    for r in &got {
        assert_eq!(
            header(r, "content-type").as_deref(),
            Some("application/cloudevents+json")
        );
    }
    let Some(python) = cloudevents_python("each_sink_hears_each_event_once") else {
        return;
    };
    let parsed = parse_cloudevents(&python, &got);
    let ids: Vec<&str> = parsed
        .iter()
        .map(|e| e["attributes"]["id"].as_str().unwrap())
        .collect();
    let mut want = vec![expected[0].as_str()];
    want.extend(expected.iter().map(String::as_str));
    assert_eq!(ids, want, "ids stable across the retry");
    let types: Vec<&str> = parsed
        .iter()
        .map(|e| e["attributes"]["type"].as_str().unwrap())
        .collect();
    let t = |k: &str| format!("dev.shepherd.migration.{k}.v1");
    assert_eq!(
        types,
        [
            t("transition"),
            t("transition"),
            t("transition"),
            t("paused"),
            t("resumed"),
            t("transition")
        ]
    );
    for e in &parsed {
        assert_eq!(e["attributes"]["specversion"], "1.0");
        assert_eq!(e["attributes"]["source"], tracker(&s));
        assert_eq!(e["attributes"]["subject"], number);
        assert_eq!(e["data"]["status"]["ref"], n);
        assert_eq!(e["data"]["status"]["workflow"], "note");
    }
    let last = &parsed[5]["data"];
    assert_eq!(last["transition"]["from"], "review");
    assert_eq!(last["transition"]["to"], "done");
    assert_eq!(last["status"]["stage"], "done");
    assert_eq!(last["status"]["state"], "completed");
    assert_eq!(parsed[3]["data"]["reason"], "waiting for QA");
    assert_eq!(parsed[3]["data"]["by"], "dave");
}

#[test]
fn notify_test_says_what_each_sink_answered_and_never_its_url() {
    let (sink, url) = SinkServer::start(Duration::ZERO);
    let [good, bad] = ["good", "bad"].map(|p| format!("/{p}/{TOKEN}"));
    let s = project(&format!(
        "[[notify]]\nurl = \"{url}{good}\"\nformat = \"slack\"\n\n[[notify]]\nurl = \"env:BAD_HOOK\"\nformat = \"cloudevents\"\nevents = [\"failing\"]\n"
    ));
    let bad_url = format!("{url}{bad}");
    let env = [("BAD_HOOK", bad_url.as_str())];
    let text = ok(&s, &["notify", "test"], &env);
    assert!(text.contains("notify #1 (slack): 200"), "{text}");
    assert!(text.contains("notify #2 (cloudevents): 200"), "{text}");
    assert_eq!(sink.received(&good).len(), 1);
    let id = slack_id(&sink.received(&good)[0]);
    assert!(id.contains("/0/test/"), "{id}");

    sink.fail(&bad, 503, 1);
    let out = run(&s, &["notify", "test", "--format", "json"], &env);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let sinks = v["sinks"].as_array().unwrap();
    assert_eq!(sinks.len(), 2);
    assert_eq!(sinks[0]["sink"], "notify #1");
    assert_eq!(sinks[0]["format"], "slack");
    assert_eq!(sinks[0]["status"], 200);
    assert_eq!(sinks[0]["ok"], true);
    assert_eq!(sinks[1]["status"], 503);
    assert_eq!(sinks[1]["ok"], false);
    assert!(v["id"].as_str().unwrap().contains("/0/test/"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 of 2 sinks"), "{stderr}");
    // Both got the same test event.
    let Some(python) = cloudevents_python("notify_test_says_what_each_sink_answered") else {
        return;
    };
    let parsed = parse_cloudevents(&python, &sink.received(&bad));
    assert_eq!(
        parsed[1]["attributes"]["type"],
        "dev.shepherd.migration.test.v1"
    );
    assert_eq!(parsed[1]["attributes"]["id"], v["id"]);
}

#[test]
fn a_sink_url_is_never_printed_even_when_sends_fail() {
    // A port nothing listens on, and a sink that always answers 500.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/dead/{TOKEN}", closed.local_addr().unwrap());
    drop(closed);
    let (sink, url) = SinkServer::start(Duration::ZERO);
    let failing = format!("/failing/{TOKEN}");
    sink.fail(&failing, 500, 1000);
    let s = project(&format!(
        "[[notify]]\nurl = \"{dead}\"\nformat = \"slack\"\n\n[[notify]]\nurl = \"env:HOOK\"\nformat = \"cloudevents\"\n"
    ));
    let hook = format!("{url}{failing}?token={TOKEN}");
    let env = [
        ("HOOK", hook.as_str()),
        ("SHEPHERD_LOG", "debug"),
        ("RUST_LOG", "debug"),
    ];
    let out = run(&s, &["start", "note"], &env);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notification send(s) failed"), "{stderr}");
    let out = run(&s, &["notify", "test"], &env);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("notify #1 (slack): failed: notify #1 (slack): cannot connect"),
        "{text}"
    );
    assert!(
        text.contains("notify #2 (cloudevents): failed: notify #2 (cloudevents) answered 500"),
        "{text}"
    );
    // A variable that is not set names the variable, not a value.
    let out = run(&s, &["advance", "1"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HOOK, which is not set"), "{stderr}");
    // Commands that record no event do not need the sinks.
    let out = run(&s, &["status", "1"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A value in the variable that is no URL is not shown either.
    let out = run(&s, &["notify", "test"], &[("HOOK", TOKEN)]);
    assert_eq!(out.status.code(), Some(1));
    assert_no_token(&out);
}

#[test]
fn bad_notify_tables_are_refused_with_their_line() {
    for (toml, says) in [
        (
            "[[notify]]\nurl = \"http://x\"\nformat = \"teams\"\n",
            "line 3",
        ),
        (
            "[[notify]]\nurl = \"http://x\"\nformat = \"slack\"\nevents = [\"moved\"]\n",
            "line 4",
        ),
        (
            "[[notify]]\nurl = \"http://x\"\nformat = \"slack\"\nchannel = \"#ops\"\n",
            "line 4",
        ),
    ] {
        let s = project(toml);
        let out = run(&s, &["notify", "test"], &[]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("shepherd.toml") && stderr.contains(says),
            "{stderr}"
        );
    }
}

#[test]
fn without_notify_nothing_is_recorded_or_sent() {
    let s = project("");
    let started: Value =
        serde_json::from_str(&ok(&s, &["start", "note", "--format", "json"], &[])).unwrap();
    let n = started["ref"].as_u64().unwrap();
    s.tick_section(n, None, "Draft", &at("1h"));
    ok(&s, &["advance", &n.to_string()], &[]);
    let store = rusqlite::Connection::open(s.path(".shepherd/state.db")).unwrap();
    let count: i64 = store
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0);
    let out = run(&s, &["notify", "test"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [[notify]] sink"));
}

#[test]
fn a_rollback_is_an_event_of_its_own() {
    let (sink, url) = SinkServer::start(Duration::ZERO);
    let path = format!("/rollback/{TOKEN}");
    let s = project(&format!(
        "[[notify]]\nurl = \"{url}{path}\"\nformat = \"cloudevents\"\nevents = [\"rollback\"]\n"
    ));
    let started: Value =
        serde_json::from_str(&ok(&s, &["start", "note", "--format", "json"], &[])).unwrap();
    let n = started["ref"].as_u64().unwrap();
    let number = n.to_string();
    s.tick_section(n, None, "Draft", &at("1h"));
    ok(&s, &["advance", &number], &[]);
    assert!(
        sink.received(&path).is_empty(),
        "moves forward are filtered out"
    );
    ok(
        &s,
        &[
            "rollback",
            &number,
            "--to",
            "draft",
            "--reason",
            "wrong draft",
        ],
        &[],
    );
    let got = sink.received(&path);
    assert_eq!(got.len(), 1);
    let event: Value = serde_json::from_slice(&got[0].body).unwrap();
    let moves = recorded(&s, n);
    assert_eq!(event["id"], moves[2], "{moves:?}");
    assert!(moves[2].contains("/rollback/"), "{moves:?}");
    assert_eq!(event["type"], "dev.shepherd.migration.rollback.v1");
    assert_eq!(event["data"]["transition"]["rollback"], true);
    assert_eq!(event["data"]["transition"]["from"], "review");
    assert_eq!(event["data"]["transition"]["to"], "draft");
    assert_eq!(event["data"]["reason"], "wrong draft");
    assert_eq!(event["data"]["status"]["stage"], "draft");
    assert_eq!(event["data"]["status"]["paused"], true);
}

#[test]
fn comment_commands_are_heard_as_commands_and_their_pauses_as_pauses() {
    let (sink, url) = SinkServer::start(Duration::ZERO);
    let hook = format!("/slack/{TOKEN}");
    let s = project(&format!(
        "[[notify]]\nurl = \"{url}{hook}\"\nformat = \"slack\"\nevents = [\"paused\", \"command\"]\n"
    ));
    let n = serde_json::from_str::<Value>(&ok(&s, &["start", "note", "--format", "json"], &[]))
        .unwrap()["ref"]
        .as_u64()
        .unwrap()
        .to_string();
    ok(
        &s,
        &["comment", &n, "/shepherd status", "--actor", "erin"],
        &[],
    );
    ok(
        &s,
        &[
            "comment",
            &n,
            "/shepherd pause waiting for QA",
            "--actor",
            "dave",
        ],
        &[],
    );
    ok(&s, &["reconcile"], &[]);
    ok(&s, &["reconcile"], &[]);
    let heard: Vec<String> = sink
        .received(&hook)
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let id = slack_id(r);
            format!(
                "{} {}",
                id.rsplit('/').nth(1).unwrap(),
                v["text"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert!(heard[0].starts_with("command "), "{heard:?}");
    assert!(heard[0].contains("erin"), "{heard:?}");
    assert!(heard[1].starts_with("paused "), "{heard:?}");
    assert!(heard[1].contains("dave"), "{heard:?}");
}

/// A sink that accepts connections and never answers (hung, not down) delays nothing
/// else: the migration moves, the other sink hears the event, and the run ends after one
/// request timeout (10 s) for that sink, not one per event; its event stays in the outbox
/// and is sent once the sink answers again.
#[test]
fn a_sink_that_hangs_delays_nothing_else() {
    // Accepts, reads nothing, answers nothing: each connection is held until the test ends.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_addr = hung.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hung.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    });
    let (sink, url) = SinkServer::start(Duration::ZERO);
    let good = format!("/good/{TOKEN}");
    let s = project(&format!(
        "[[notify]]\nurl = \"http://{hung_addr}/hung/{TOKEN}\"\nformat = \"slack\"\n\n[[notify]]\nurl = \"{url}{good}\"\nformat = \"slack\"\n"
    ));
    let began = std::time::Instant::now();
    let out = run(&s, &["start", "note"], &[]);
    let took = began.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_token(&out);
    assert_eq!(s.issues().len(), 1, "the migration started");
    let heard = sink.received(&good);
    assert_eq!(heard.len(), 1, "the other sink heard the start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notification send(s) failed"), "{stderr}");
    assert!(
        took < Duration::from_secs(40),
        "one timeout for the hung sink, not more: {took:?}"
    );
    // The hung sink's copy waits in the outbox: not lost; the other's is done.
    let store = rusqlite::Connection::open(s.path(".shepherd/state.db")).unwrap();
    let rows: Vec<(String, bool)> = store
        .prepare("SELECT id, done_at IS NOT NULL FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let waiting = rows.iter().filter(|(_, done)| !done).count();
    assert_eq!(waiting, 1, "{rows:?}");
    assert_eq!(recorded(&s, 1).len(), 1, "the start is recorded once");
}

//! Who else sends: `serve`'s sender, for a move the service made; and the `failing` event,
//! once per spell of failures, from a `reconcile` on the GitLab test server.

use std::time::Duration;

use super::{project, recorded, slack_id, SinkServer, TOKEN};
use crate::gitlab_server::{Fault, GitLabServer, PROJECT};
use crate::remote::Remote;
use crate::serve::service::Service;
use crate::support::{at, stderr};

#[test]
fn serve_sends_the_moves_it_makes() {
    let (sink, url) = SinkServer::start(Duration::ZERO);
    let path = format!("/serve/{TOKEN}");
    let s = project(&format!(
        "[[notify]]\nurl = \"{url}{path}\"\nformat = \"slack\"\n"
    ));
    let n = super::ok(&s, &["start", "note", "--format", "json"], &[]);
    let n: u64 = serde_json::from_str::<serde_json::Value>(&n).unwrap()["ref"]
        .as_u64()
        .unwrap();
    assert_eq!(sink.received(&path).len(), 1, "the start");
    s.tick_section(n, None, "Draft", &at("1h"));
    let db = format!("local:{}", s.db().display());
    let mut service = Service::start_args(
        s.dir.path(),
        &["--tracker", &db],
        &["--resync", "1s", "--insecure-no-webhook-secret"],
        &[],
    );
    service.wait_for("the service to move it and send the move", || {
        sink.received(&path).len() == 2
    });
    assert_eq!(service.terminate(), Some(0));
    assert!(!service.log().contains(TOKEN), "{}", service.log());
    let heard: Vec<String> = sink.received(&path).iter().map(slack_id).collect();
    assert_eq!(heard, recorded(&s, n));
}

#[test]
fn a_failing_migration_is_told_once_per_spell() {
    let server = GitLabServer::start(&[("bot-token", "shepherd-bot")]);
    let lab = Remote::new(
        server,
        &format!("gitlab:{PROJECT}"),
        "--gitlab-url",
        "GITLAB_TOKEN",
        "bot-token",
    );
    let (sink, url) = SinkServer::start(Duration::ZERO);
    let path = format!("/failing/{TOKEN}");
    std::fs::write(
        lab.dir().join("shepherd.toml"),
        format!(
            "[[notify]]\nurl = \"{url}{path}\"\nformat = \"cloudevents\"\nevents = [\"failing\"]\n"
        ),
    )
    .unwrap();
    let a = lab.start();
    lab.tick_section(a, "Selection");
    // Reading #a's comments fails from now on (403 is not retried).
    lab.server.fail(Fault::status(
        "GET",
        &format!("/issues/{a}/notes"),
        403,
        None,
        1000,
    ));
    for _ in 0..2 {
        let out = lab.run_as(lab.bot(), &["reconcile", "--format", "json"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    }
    let got = sink.received(&path);
    assert_eq!(got.len(), 1, "one event for the spell: {got:?}");
    let event: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(event["type"], "dev.shepherd.migration.failing.v1");
    assert_eq!(event["subject"], a.to_string());
    assert_eq!(event["source"], format!("gitlab:{PROJECT}"));
    assert!(
        event["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("gitlab:{PROJECT}/{a}/failing/")),
        "{event}"
    );
    assert_eq!(event["data"]["status"]["workflow"], "gitaly-migration");
    assert!(
        event["data"]["reason"].as_str().unwrap().contains("403"),
        "{event}"
    );
}

//! `shepherd serve` as a process against the GitHub test server: an `issues` (edited)
//! delivery built from GitHub's own payload, signed with `X-Hub-Signature-256`, moves the
//! label without any `reconcile`; the same delivery twice is one move.

use std::path::Path;

use serde_json::Value;

use super::{hub_signature, read_fixture, sample, Service, SECRET};
use crate::api::Api;
use crate::github_server::{GitHubServer, OWNER, REPO};
use crate::remote::Remote;
use crate::support::assert_no_duplicate_markers;

const BOT: &str = "ghp_bot0123456789";

/// GitHub's `issues` (edited) example, about issue `n` of this repository with `body`.
fn issues_edited(n: u64, body: &str) -> Vec<u8> {
    let mut v = read_fixture("github/webhooks/issues.edited.0.json");
    v["issue"]["number"] = n.into();
    v["issue"]["body"] = body.into();
    v["repository"]["full_name"] = format!("{OWNER}/{REPO}").into();
    v["repository"]["name"] = REPO.into();
    serde_json::to_vec(&v).unwrap()
}

/// The GitHub test server's repository as a `Remote` acting with the bot's token, and
/// its tracker.
pub(super) fn github_lab() -> (Remote<GitHubServer>, String) {
    let tracker = format!("github:{OWNER}/{REPO}");
    let hub = Remote::new(
        GitHubServer::start(&[(BOT, "shepherd-bot")]),
        &tracker,
        "--github-url",
        "GITHUB_TOKEN",
        BOT,
    );
    (hub, tracker)
}

/// `shepherd serve` of `hub`'s repository in `dir`, with a SQLite Store there.
pub(super) fn serve_github(dir: &Path, hub: &Remote<GitHubServer>, tracker: &str) -> Service {
    let state = format!("sqlite:{}", dir.join("state.db").display());
    Service::start(
        dir,
        &[
            "--tracker",
            tracker,
            "--github-url",
            hub.server.url(),
            "--state",
            &state,
        ],
        &[("GITHUB_TOKEN", BOT), ("SHEPHERD_WEBHOOK_SECRET", SECRET)],
    )
}

/// Delivers GitHub's `event` with id `delivery` and `body`, signed, to `service`.
pub(super) fn deliver(
    service: &Service,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> (u16, String) {
    let signature = hub_signature(SECRET, body);
    let headers = [
        ("x-github-event", event),
        ("x-github-delivery", delivery),
        ("x-hub-signature-256", signature.as_str()),
        ("content-type", "application/json"),
    ];
    service.post("/hooks/github", &headers, body)
}

#[test]
fn serve_moves_a_github_migration_when_its_webhook_arrives() {
    let (hub, tracker) = github_lab();
    let n = hub.start();
    assert!(hub.labels(n).contains(&"Selection".to_string()));
    let dir = tempfile::tempdir().unwrap();
    let mut service = serve_github(dir.path(), &hub, &tracker);
    let (status, text) = service.get(&format!("/api/migrations/github/{n}"));
    assert_eq!(status, 200, "{text}");
    let before: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        before["stage"], "selection",
        "nothing moved at the first resync"
    );

    // A person ticks the Selection checklist; GitHub sends `issues` (edited).
    hub.tick_section(n, "Selection");
    let body = issues_edited(n, &hub.server.body(n));
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let (status, text) = deliver(&service, "issues", delivery, &body);
    assert_eq!(status, 202, "{text}");
    service.wait_for("the label to move", || {
        hub.labels(n).contains(&"Migration Analysis".to_string())
    });
    assert!(!hub.labels(n).contains(&"Selection".to_string()));

    // The same delivery again (GitHub's redelivery keeps its id): acknowledged only.
    let (status, text) = deliver(&service, "issues", delivery, &body);
    assert_eq!(status, 200, "{text}");
    let transitions = format!(
        "shepherd_transitions_total{{tracker=\"{tracker}\",workflow=\"gitaly-migration\",from=\"selection\",to=\"migration-analysis\"}}"
    );
    service.wait_for("the move counted", || {
        sample(&service.get("/metrics").1, &transitions) == Some(1.0)
    });
    let (_, metrics) = service.get("/metrics");
    assert_eq!(
        sample(
            &metrics,
            "shepherd_webhook_deliveries_total{source=\"github\",result=\"duplicate\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    service.wait_for("the dashboard to follow", || {
        let (_, text) = service.get(&format!("/api/migrations/github/{n}"));
        serde_json::from_str::<Value>(&text).is_ok_and(|v| v["stage"] == "migration-analysis")
    });
    assert_eq!(service.terminate(), Some(0));
    let comments = hub.server.comment_bodies(n);
    assert_no_duplicate_markers(comments.iter().map(String::as_str));
    let audits = comments
        .iter()
        .filter(|b| b.contains("shepherd:transition="))
        .count();
    assert_eq!(audits, 2, "start's audit and the one move: {comments:?}");
    assert_eq!(hub.server.label_added_count(n, "Migration Analysis"), 1);
    assert_eq!(sample(&metrics, &transitions), Some(1.0));
    // The same exposition, read by a Prometheus parser: the gates of the stage it left.
    let scrape = super::metrics::parse(&metrics);
    let checklist = super::metrics::value(
        &scrape,
        "shepherd_gate_evaluations_total",
        &[
            ("tracker", &tracker),
            ("workflow", "gitaly-migration"),
            ("gate", "checklist"),
            ("result", "passed"),
        ],
    );
    assert!(checklist >= Some(1.0), "{metrics}");
    let moved = super::metrics::value(
        &scrape,
        "shepherd_advances_total",
        &[("tracker", &tracker), ("result", "moved")],
    );
    assert_eq!(moved, Some(1.0), "{metrics}");
}

//! The GitHub tracker: the whole gitaly-migration on the stateful test server through the
//! real binary and octocrab, GitHub's conventions (exclusive stage labels set in one
//! request, pull requests that are not migrations, timeline events octocrab does not
//! know), rate limits, crash recovery, @mentions, GitHub's payloads, and a contract test of
//! every request against GitHub's own OpenAPI description served by Prism (`contract`).
//! `requests` calls the tracker API directly, request by request.

mod contract;
mod requests;

use std::path::Path;

use serde_json::Value;
use shepherd::tracker::github::{self, GhTimelineItem};

use crate::github_server::{example, Fault, GitHubServer, Logged, OWNER, REPO};
use crate::remote::Remote;
use crate::support::{assert_no_duplicate_markers, moves};

const BOT: &str = "ghp_bot0123456789";
const JACOB: &str = "ghp_jacob0123456789";
const MALLORY: &str = "ghp_mallory0123456789";

type Hub = Remote<GitHubServer>;

fn hub() -> Hub {
    let server = GitHubServer::start(&[
        (BOT, "shepherd-bot"),
        (JACOB, "jacobvosmaer-gitlab"),
        (MALLORY, "mallory"),
    ]);
    Remote::new(
        server,
        &format!("github:{OWNER}/{REPO}"),
        "--github-url",
        "GITHUB_TOKEN",
        BOT,
    )
}

#[test]
fn a_gitaly_migration_runs_on_github() {
    let hub = hub();
    let (n, v) = hub.started_into_acceptance_testing();
    let child = v["created"][0].as_u64().unwrap();
    assert_eq!(
        hub.server.subs(),
        [(n, child)],
        "the child is a sub-issue of its tracking issue"
    );
    // Each stage move is one PATCH that sets the label set; stage labels stay exclusive.
    let log = hub.server.log();
    let patches: Vec<&Logged> = log
        .iter()
        .filter(|l| l.method == "PATCH" && l.path.ends_with(&format!("/issues/{n}")))
        .collect();
    assert_eq!(patches.len(), 6);
    assert_eq!(
        patches[0].body,
        serde_json::json!({"labels": ["Migration", "Conversation", "Migration Analysis"]})
    );
    assert_eq!(
        hub.labels(n),
        ["Migration", "Conversation", "Acceptance Testing"]
    );

    hub.child_to_complete(child);
    hub.acceptance_testing_to_done(n, MALLORY, JACOB);
    hub.reconcile_twice_writes_nothing();
}

#[test]
fn pull_requests_are_not_migrations_and_lists_cost_no_request_per_issue() {
    let hub = hub().cached();
    let n = hub.start();
    let body = hub.server.issue(n)["body"].as_str().unwrap().to_string();
    for i in 0..150 {
        hub.server.seed(
            &format!("m{i}"),
            &body,
            &["Migration", "Conversation", "Selection"],
            "shepherd-bot",
            false,
        );
    }
    let pr = hub.server.seed(
        "A pull request",
        &body,
        &["Migration", "Conversation", "Selection"],
        "someone",
        true,
    );
    hub.server.clear_log();
    let r = hub.json(&["reconcile"]);
    let refs: Vec<u64> = r["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ref"].as_u64().unwrap())
        .collect();
    assert_eq!(refs.len(), 151);
    assert!(!refs.contains(&pr), "a pull request is no migration");
    let log = hub.server.log();
    assert!(
        log.iter().all(|l| l.path.ends_with("/issues")),
        "lists only: {:?}",
        log.iter().map(|l| &l.path).collect::<Vec<_>>()
    );
    assert!(log
        .iter()
        .all(|l| l.query("per_page") == Some("100") && l.query("state") == Some("open")));
    let mut pages: Vec<&str> = log
        .iter()
        .filter(|l| l.query("labels") == Some("Conversation,Migration"))
        .map(|l| l.query("page").unwrap())
        .collect();
    pages.sort();
    assert_eq!(pages, ["1", "2"]);
}

#[test]
fn secondary_rate_limits_are_retried_and_permission_errors_are_not() {
    let hub = hub();
    let n = hub.start();
    hub.tick_section(n, "Selection");
    let issue = format!("/issues/{n}");
    hub.server
        .fail(Fault::status("PATCH", &issue, 403, Some(1), 1));
    hub.server
        .fail(Fault::status("GET", "/comments", 429, Some(0), 1));
    hub.server.clear_log();
    assert_eq!(moves(&hub.advance(n)), ["selection>migration-analysis"]);
    assert_eq!(
        hub.server
            .log()
            .iter()
            .filter(|l| l.method == "PATCH")
            .count(),
        2
    );
    hub.server.fail(Fault::status("GET", &issue, 403, None, 1));
    let err = hub.status_fails(n);
    assert!(
        err.contains(&format!(
            "GitHub request GET /repos/{OWNER}/{REPO}/issues/{n} failed: 403"
        )),
        "{err}"
    );
}

#[test]
fn a_lost_response_halfway_is_completed_without_duplicates() {
    let hub = hub();
    let n = hub.start();
    hub.tick_through_ready_for_testing(n);
    let faults = vec![
        Fault::lost("POST", &format!("/repos/{OWNER}/{REPO}/issues"), 502, 100),
        Fault::status("POST", &format!("/issues/{n}/sub_issues"), 502, None, 100),
        Fault::lost("POST", &format!("/issues/{n}/comments"), 502, 100),
    ];
    hub.lost_halfway_is_completed(n, faults, |server| {
        let children = server
            .issues()
            .into_iter()
            .filter(|i| {
                i["body"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("\"parent\":{n},"))
            })
            .count();
        let subs = server.subs().len();
        assert_eq!((children, subs), (subs, subs), "every child linked once");
    });
}

#[test]
fn values_do_not_mention_people() {
    let hub = hub();
    let n = hub.start_rollout(&[
        "feature_flag=my_flag",
        "feature_description=a fix from @octocat for @octo-org/team",
        "owner=qmnguyen",
    ]);
    let body = hub.server.issue(n)["body"].as_str().unwrap().to_string();
    assert!(
        body.contains("a fix from @\u{200B}octocat for @\u{200B}octo-org/team"),
        "{body}"
    );
    assert!(
        body.contains("- Best individual to reach out to: @qmnguyen\n"),
        "the template's own mention stays"
    );
}

/// A pull request that starts referencing an issue does not move the issue's `updated_at`
/// on GitHub, so the cache watches the projects the gates look in instead: a second idle
/// poll reads one pull-request list per project and no timeline. A new pull request there
/// could reference any migration: all of them are read again, and the ones it merges move.
/// Ten migrations in RPC Design, waiting for their checklist or a merged pull request in
/// gitaly-proto: a second poll where nothing happened reads no timeline, only
/// gitaly-proto's pull requests by update (one list). A merge, and a new pull request that
/// references a migration, touch no issue on GitHub: the next poll reads every migration
/// watching gitaly-proto again, and the one after only those that moved.
#[test]
fn a_second_idle_poll_reads_no_migration_s_timeline() {
    let hub = hub();
    hub.idle_twice_in_rpc_design("timeline", "pulls");
    // Each read once; the two that move once more, as their claim reads the timeline back.
    assert_eq!(
        hub.merged_in_rpc_design("timeline"),
        [1, 2, 3, 3, 4, 5, 6, 7, 7, 8, 9, 10]
    );

    // Quiet again: only the moved ones, whose issues changed, are read.
    hub.server.clear_log();
    let r = hub.reconcile_cached(BOT);
    assert!(crate::support::moved(&r).is_empty(), "{r}");
    let read = hub.issues_read("timeline");
    assert!(read.iter().all(|n| [3, 7].contains(n)), "{read:?}");
}

/// GitHub's `updated_at` has whole seconds: a label history read within the second of two
/// label changes is not kept, so the approval given in that same second is seen (DESIGN
/// §11, freshness proven).
#[test]
fn an_approval_in_the_second_of_the_last_read_is_seen() {
    hub().approval_within_one_second(MALLORY, JACOB, "jacobvosmaer-gitlab", "timeline", true);
}

/// A move writes the whole label set on GitHub. A label a person sets while shepherd is
/// moving the migration (here, the moment its audit comment arrives) is not lost: the
/// claim reads the timeline back, sees the label, takes the audit comment back and leaves
/// the move to the next run, which keeps the label.
#[test]
fn a_label_set_during_a_move_is_kept() {
    let hub = hub();
    let n = hub.start();
    hub.tick_section(n, "Selection");
    hub.server.meanwhile_label(
        "POST",
        &format!("/issues/{n}/comments"),
        n,
        "priority::high",
        "jacobvosmaer-gitlab",
    );
    let comments = hub.server.comments(n).len();
    hub.server.clear_log();
    let r = hub.json(&["reconcile"]);
    let mine = &r["migrations"][0];
    assert_eq!(crate::support::moved(&r), [0u64; 0], "{r}");
    assert!(
        mine["skipped"]
            .as_str()
            .unwrap()
            .contains("labels changed while this run moved it (+priority::high)"),
        "{r}"
    );
    assert_eq!(
        hub.labels(n),
        ["Migration", "Conversation", "Selection", "priority::high"]
    );
    assert_eq!(
        hub.server.comments(n).len(),
        comments,
        "the audit comment was taken back"
    );
    let log = hub.server.log();
    assert!(!log.iter().any(|l| l.method == "PATCH"), "no move written");

    let r = hub.json(&["reconcile"]);
    assert_eq!(crate::support::moved(&r), [n], "{r}");
    assert_eq!(
        hub.labels(n),
        [
            "Migration",
            "Conversation",
            "priority::high",
            "Migration Analysis"
        ]
    );
    let comments = hub.server.comments(n);
    assert_no_duplicate_markers(comments.iter().map(|c| c["body"].as_str().unwrap()));
}

#[test]
fn github_payloads_parse() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github");
    let read = |p: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(fixtures.join(p)).unwrap()).unwrap()
    };
    // Webhooks: the issue and comment objects they carry.
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures.join("webhooks")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let payload = read(&format!("webhooks/{name}"));
        if name.starts_with("issues.") || name.starts_with("issue_comment.") {
            let issue: octocrab::models::issues::Issue =
                serde_json::from_value(payload["issue"].clone())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            let is_pr = issue.pull_request.is_some();
            assert_eq!(github::convert(issue).is_none(), is_pr, "{name}");
            seen += 1;
        }
        if name.starts_with("issue_comment.") {
            let _: octocrab::models::issues::Comment =
                serde_json::from_value(payload["comment"].clone())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        if name.starts_with("issues.labeled") || name.starts_with("label.") {
            let _: octocrab::models::Label = serde_json::from_value(payload["label"].clone())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    assert!(seen >= 12);
    // Recorded API responses (octokit fixtures).
    for scenario in [
        "add-labels-to-issue",
        "labels",
        "paginate-issues",
        "search-issues",
        "errors",
        "lock-issue",
    ] {
        let exchanges = read(&format!(
            "api/octokit-fixtures/{scenario}/normalized-fixture.json"
        ));
        for x in exchanges.as_array().unwrap() {
            let path = x["path"].as_str().unwrap();
            let rsp = &x["response"];
            if path.starts_with("/search/issues") {
                let items: Vec<octocrab::models::issues::Issue> =
                    serde_json::from_value(rsp["items"].clone()).unwrap();
                assert!(!items.is_empty());
            } else if path.ends_with("/issues") && x["method"] == "POST" {
                let _: octocrab::models::issues::Issue =
                    serde_json::from_value(rsp.clone()).unwrap();
            } else if path.contains("/issues?") || path.contains("/issues/") && x["method"] == "GET"
            {
                let issues: Vec<octocrab::models::issues::Issue> =
                    serde_json::from_value(rsp.clone())
                        .unwrap_or_else(|e| panic!("{scenario} {path}: {e}"));
                assert!(!issues.is_empty());
            } else if path.contains("/labels") && x["method"] != "DELETE" && rsp.is_array() {
                let _: Vec<octocrab::models::Label> = serde_json::from_value(rsp.clone()).unwrap();
            } else if path.contains("/labels")
                && rsp.is_object()
                && x["status"].as_u64() < Some(300)
            {
                let _: octocrab::models::Label = serde_json::from_value(rsp.clone()).unwrap();
            }
            if let Some(link) = x["headers"]["link"].as_str() {
                assert!(
                    github::link_page(link, "next").is_some()
                        || github::link_page(link, "prev").is_some(),
                    "{link}"
                );
            }
        }
    }
    // GitHub's own examples, and a timeline with every kind of event.
    let _: octocrab::models::issues::Issue = serde_json::from_value(example("issue")).unwrap();
    let _: Vec<octocrab::models::issues::Issue> =
        serde_json::from_value(example("issue-items")).unwrap();
    let _: Vec<octocrab::models::issues::Comment> =
        serde_json::from_value(example("issue-comment-items")).unwrap();
    let _: Vec<octocrab::models::Label> = serde_json::from_value(example("label-items")).unwrap();
    let timeline = example("timeline-issue-events");
    let items: Vec<GhTimelineItem> = serde_json::from_value(timeline.clone()).unwrap();
    assert_eq!(
        items.len(),
        timeline.as_array().unwrap().len(),
        "every timeline item parses"
    );
    let unknown = serde_json::json!([{"event": "blocked_by_added", "id": 1, "created_at": "2026-01-01T00:00:00Z"}]);
    assert!(
        serde_json::from_value::<Vec<octocrab::models::timelines::TimelineEvent>>(unknown.clone())
            .is_err(),
        "octocrab's model rejects an unknown event"
    );
    assert!(
        serde_json::from_value::<Vec<GhTimelineItem>>(unknown).unwrap()[0]
            .event
            .is_some(),
        "ours reads it"
    );
}

/// Runs only with `SHEPHERD_LIVE_GITHUB=owner/repo` and `GITHUB_TOKEN` set.
#[test]
fn live_github() {
    crate::remote::live("github", "SHEPHERD_LIVE_GITHUB", "GITHUB_TOKEN");
}

#[test]
fn comment_commands_act_once_for_writers_and_refuse_readers() {
    hub()
        .cached()
        .comment_commands("dev", "mallory", "jacobvosmaer-gitlab", "comments");
}

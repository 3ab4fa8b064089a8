//! GitHub through the tracker API, request by request: a server that never answers, a
//! 429 and a broken answer on the run's first request, waits beyond `max_wait`, one
//! `PATCH` per move and close with no read after a write, `since` and conditional lists
//! (304), deleting comments, and children recorded on the parent where the server has no
//! sub-issues API (GitHub Enterprise Server 3.17).

use std::time::Duration;

use serde_json::json;
use shepherd::http::retry::Policy;
use shepherd::tracker::github::{self, GitHubTracker};
use shepherd::tracker::{StateFilter, Tracker};

use super::{hub, Hub, BOT};
use crate::github_server::{Fault, Logged, OWNER, REPO};
use crate::remote::quick_policy;
use crate::support::block_on;
use crate::twins;

fn config(hub: &Hub, policy: Policy) -> github::Config {
    let mut config = github::Config::new(&hub.server.url, &format!("{OWNER}/{REPO}"));
    config.policy = policy;
    config
}

/// `METHOD path` of each request, the path after the repository.
fn shapes(log: &[Logged]) -> Vec<String> {
    let prefix = format!("/repos/{OWNER}/{REPO}");
    log.iter()
        .map(|l| format!("{} {}", l.method, l.path.trim_start_matches(&prefix)))
        .collect()
}

#[test]
fn a_server_that_never_answers_is_an_error_within_the_timeout() {
    let hub = hub();
    let url = hub.server.url.clone();
    let err = twins::a_list_never_answered(&hub.server, BOT, async {
        let t = GitHubTracker::connect(config(&hub, quick_policy()), BOT)?;
        t.list_issues(StateFilter::Open, &[]).await
    });
    assert_eq!(
        err,
        format!("GitHub at {url} did not answer GET /repos/{OWNER}/{REPO}/issues within 2 s")
    );
}

#[test]
fn a_rate_limited_first_request_is_retried_and_a_cut_answer_too() {
    let hub = hub();
    let n = hub.start();
    // `status` starts with the issue; its first answer is a 429, its second breaks off.
    let cut = Fault::cut("GET", &format!("/issues/{n}"), 1);
    let tries = hub.status_after_a_429(n, vec![cut]);
    assert_eq!(
        shapes(&hub.server.log()[..1]),
        [format!("GET /issues/{n}")],
        "the run's first request"
    );
    assert_eq!(
        tries[..3],
        [429, 200, 200],
        "the 429 and the broken answer were asked again"
    );
}

#[test]
fn a_wait_beyond_max_wait_fails_at_once() {
    let hub = hub();
    let policy = Policy {
        max_wait: Duration::from_secs(120),
        ..quick_policy()
    };
    let err = twins::a_wait_beyond_max_wait(&hub.server, BOT, 403, async {
        let t = GitHubTracker::connect(config(&hub, policy), BOT)?;
        t.list_issues(StateFilter::Open, &[]).await
    });
    assert!(
        err.starts_with(&format!(
            "GitHub rate limit: GitHub asks to wait 60 min before GET /repos/{OWNER}/{REPO}/issues \
             is sent again, longer than the longest wait allowed (2 min, --max-wait): 403 "
        )),
        "{err}"
    );
    assert_eq!(hub.server.log().len(), 1, "nothing else asked");
}

#[test]
fn writes_are_one_request_each_and_their_answer_is_not_read_again() {
    let hub = hub();
    block_on(async {
        let t = GitHubTracker::connect(config(&hub, quick_policy()), BOT).unwrap();
        let n = twins::writes_each_once(&t).await;
        let log = hub.server.log();
        assert_eq!(
            shapes(&log),
            [
                "POST /issues".to_string(),
                format!("PATCH /issues/{n}"),
                format!("POST /issues/{n}/comments"),
                format!("PATCH /issues/{n}"),
                format!("PATCH /issues/{n}"),
            ]
        );
        assert_eq!(
            log[3].body,
            json!({"labels": ["Migration", "Shelved"], "state": "closed"})
        );
        assert_eq!(log[4].body, json!({"state": "open"}));
        assert_eq!(hub.server.issue(n)["state"], "open");
    });
}

#[test]
fn the_incremental_list_asks_for_what_changed_since_and_a_second_look_is_a_304() {
    let hub = hub();
    let ([a, b, c], since) = twins::changed_half_an_hour_ago(&hub.server);
    block_on(async {
        let t = GitHubTracker::connect(config(&hub, quick_policy()), BOT).unwrap();
        let changed = twins::lists_what_changed_since(&t, [a, b, c], since).await;
        let migration = ["Migration".to_string()];
        // Nothing changed: the same question again is answered 304, from memory.
        let again = t
            .list_issues_since(StateFilter::All, &migration, since)
            .await
            .unwrap();
        assert_eq!(again, changed);
        // A change: the page is read again.
        hub.server.touch(a);
        let after = t
            .list_issues_since(StateFilter::All, &migration, since)
            .await
            .unwrap();
        assert_eq!(after.iter().map(|i| i.number).collect::<Vec<_>>(), [b, a]);
        let log = hub.server.log();
        let stamp = since.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        assert!(log.iter().all(
            |l| l.query("since") == Some(stamp.as_str()) && l.query("per_page") == Some("100")
        ));
        assert_eq!(log[0].query("labels"), Some("Migration"));
        assert_eq!(log[0].query("state"), Some("all"));
        let answers: Vec<(bool, u16)> = log
            .iter()
            .map(|l| (l.if_none_match.is_some(), l.status))
            .collect();
        assert_eq!(
            answers,
            [(false, 200), (false, 200), (true, 304), (true, 200)]
        );
    });
}

#[test]
fn a_comment_is_deleted_and_deleting_it_again_is_no_error() {
    let hub = hub();
    let n = hub
        .server
        .seed("m", "", &["Migration"], "shepherd-bot", false);
    block_on(async {
        let t = GitHubTracker::connect(config(&hub, quick_policy()), BOT).unwrap();
        let (claim, deletes) = twins::comment_deleted_twice(&t, &hub.server, n).await;
        let path = format!("/repos/{OWNER}/{REPO}/issues/comments/{claim}");
        assert_eq!(deletes, [path.clone(), path]);
    });
}

/// Requests of a run to the sub-issues API, and lists of the whole repository.
fn sub_issue_requests_and_project_lists(log: &[Logged]) -> (usize, usize) {
    let subs = log
        .iter()
        .filter(|l| l.path.ends_with("/sub_issues"))
        .count();
    let whole = log
        .iter()
        .filter(|l| l.method == "GET" && l.path.ends_with("/issues") && l.query("labels").is_none())
        .count();
    (subs, whole)
}

#[test]
fn without_the_sub_issues_api_children_are_recorded_on_the_parent() {
    let hub = hub();
    hub.server.without_sub_issues();
    let n = hub.start();
    hub.tick_through_ready_for_testing(n);
    hub.server.clear_log();
    let v = hub.advance(n);
    assert_eq!(v["stage"], "acceptance-testing", "{v}");
    let child = v["created"][0].as_u64().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(hub.server.subs(), [], "no sub-issue API, no sub-issue");
    let records: Vec<String> = hub
        .server
        .comments(n)
        .iter()
        .map(|c| c["body"].as_str().unwrap().to_string())
        .filter(|b| b.contains("<!-- shepherd:child="))
        .collect();
    assert_eq!(
        records,
        [format!(
            "Opened #{child} as a child of this issue.\n\n<!-- shepherd:child={child} -->"
        )]
    );
    assert_eq!(
        sub_issue_requests_and_project_lists(&hub.server.log()),
        (1, 0),
        "the 404 is noticed once; nothing lists the whole repository"
    );

    // A later run finds the child by the record, still without listing the repository.
    hub.server.clear_log();
    let status = hub.json(&["status", &n.to_string()]);
    let children: Vec<u64> = status["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ref"].as_u64().unwrap())
        .collect();
    assert_eq!(children, [child], "{status}");
    let (subs, whole) = sub_issue_requests_and_project_lists(&hub.server.log());
    assert!(subs <= 1 && whole == 0, "{subs} {whole}");

    // Linking again (a rerun after a crash) records nothing twice.
    block_on(async {
        let t = GitHubTracker::connect(config(&hub, quick_policy()), BOT).unwrap();
        t.link(n, child).await.unwrap();
        let found = t.children(n).await.unwrap();
        assert_eq!(found.iter().map(|i| i.number).collect::<Vec<_>>(), [child]);
    });
    let recorded = hub
        .server
        .comments(n)
        .iter()
        .filter(|c| c["body"].as_str().unwrap().contains("<!-- shepherd:child="))
        .count();
    assert_eq!(recorded, 1);
}

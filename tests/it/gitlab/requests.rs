//! GitLab through the tracker API, request by request: a server that never answers, a
//! connection closed mid-response, a 429 on the run's first request, waits announced and
//! waits beyond `max_wait`, one `PUT` per move and close with no read after a write,
//! `updated_after`, deleting notes.

use std::time::Duration;

use shepherd::http::retry::Policy;
use shepherd::tracker::gitlab::{Config, GitLabTracker};
use shepherd::tracker::{StateFilter, Tracker};

use super::{lab, Lab, BOT};
use crate::gitlab_server::{Fault, Logged, PROJECT};
use crate::remote::{announced_wait, quick_policy, stderr_without};
use crate::support::{block_on, stderr};
use crate::twins;

fn config(lab: &Lab, policy: Policy) -> Config {
    let mut config = Config::new(&lab.server.url, PROJECT);
    config.policy = policy;
    config
}

/// `METHOD path` of each request, the path after the project.
fn shapes(log: &[Logged]) -> Vec<String> {
    log.iter()
        .map(|l| format!("{} {}", l.method, l.path.rsplit("project/").next().unwrap()))
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_server_that_never_answers_is_an_error_within_the_timeout() {
    let lab = lab();
    let url = lab.server.url.clone();
    // Connecting sends nothing: the token is checked by the run's first request.
    block_on(GitLabTracker::connect(config(&lab, quick_policy()), BOT)).unwrap();
    assert!(lab.server.log().is_empty(), "no request of its own");
    // A list that is never answered.
    let err = twins::a_list_never_answered(&lab.server, BOT, async {
        let t = GitLabTracker::connect(config(&lab, quick_policy()), BOT).await?;
        t.list_issues(StateFilter::Open, &[]).await
    });
    assert_eq!(
        err,
        format!("GitLab at {url} did not answer GET projects/group%2Fproject/issues within 2 s")
    );
}

#[test]
fn a_connection_closed_mid_response_is_retried_then_a_clear_error() {
    let lab = lab();
    let n = lab.start();
    let path = format!("/issues/{n}");
    lab.server.fail(Fault::cut("GET", &path, 1));
    lab.server.clear_log();
    lab.ok_as(BOT, &["status", &n.to_string()]);
    let gets: Vec<u16> = lab
        .server
        .log()
        .iter()
        .filter(|l| l.method == "GET" && l.path.ends_with(&path))
        .map(|l| l.status)
        .collect();
    assert_eq!(gets[..2], [200, 200], "the broken answer was asked again");
    lab.server.fail(Fault::cut("GET", &path, 100));
    let out = lab.run_as(BOT, &["status", &n.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_without(&out, BOT);
    assert!(
        err.contains(&format!(
            "GitLab request GET projects/group%2Fproject/issues/{n} failed after 6 tries: \
             the connection broke before the whole response came"
        )),
        "{err}"
    );
}

#[test]
fn a_rate_limited_first_request_is_retried() {
    let lab = lab();
    let n = lab.start();
    // The run's first request (`status` reads the issue).
    let first = lab.status_after_a_429(n, vec![]);
    assert_eq!(first[..2], [429, 200]);
}

#[test]
fn long_waits_are_announced_and_waits_beyond_max_wait_fail_at_once() {
    let lab = lab();
    let n = lab.start();
    lab.server.fail(Fault::status(
        "GET",
        &format!("/issues/{n}"),
        429,
        Some(11),
        1,
    ));
    let out = lab.run_as(BOT, &["status", &n.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr_without(&out, BOT);
    assert!(announced_wait(&err, "GitLab rate limit"), "{err}");
    assert_eq!(err.matches("waiting").count(), 1, "announced once: {err}");

    let policy = Policy {
        max_wait: Duration::from_secs(60),
        ..quick_policy()
    };
    let err = twins::a_wait_beyond_max_wait(&lab.server, BOT, 429, async {
        let t = GitLabTracker::connect(config(&lab, policy), BOT).await?;
        t.list_issues(StateFilter::Open, &[]).await
    });
    assert!(
        err.starts_with(
            "GitLab rate limit: GitLab asks to wait 60 min before GET projects/group%2Fproject/issues \
             is sent again, longer than the longest wait allowed (60 s, --max-wait)"
        ),
        "{err}"
    );
}

#[test]
fn writes_are_one_request_each_and_their_answer_is_not_read_again() {
    let lab = lab();
    block_on(async {
        let t = GitLabTracker::connect(config(&lab, quick_policy()), BOT)
            .await
            .unwrap();
        lab.server.clear_log();
        let n = twins::writes_each_once(&t).await;
        t.edit_labels(n, &[], &["Later".into()], &[]).await.unwrap();
        let log = lab.server.log();
        assert_eq!(
            shapes(&log),
            [
                "POST issues",
                format!("PUT issues/{n}").as_str(),
                format!("POST issues/{n}/notes").as_str(),
                format!("PUT issues/{n}").as_str(),
                format!("PUT issues/{n}").as_str(),
                format!("PUT issues/{n}").as_str(),
            ]
        );
        assert_eq!(
            log[3].form,
            form(&[
                ("add_labels", "Shelved"),
                ("remove_labels", "Selection"),
                ("state_event", "close")
            ])
        );
        assert_eq!(log[4].form, form(&[("state_event", "reopen")]));
        assert_eq!(log[5].form, form(&[("add_labels", "Later")]));
        assert_eq!(lab.server.issue(n)["state"], "opened");
    });
}

#[test]
fn the_incremental_list_asks_for_what_changed_since() {
    let lab = lab();
    let (issues, since) = twins::changed_half_an_hour_ago(&lab.server);
    block_on(async {
        let t = GitLabTracker::connect(config(&lab, quick_policy()), BOT)
            .await
            .unwrap();
        lab.server.clear_log();
        twins::lists_what_changed_since(&t, issues, since).await;
        let log = lab.server.log();
        assert_eq!(log.len(), 2, "one page each");
        let stamp = since.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        assert_eq!(log[0].query("updated_after"), Some(stamp.as_str()));
        assert_eq!(log[0].query("labels"), Some("Migration"));
        assert_eq!(log[0].query("per_page"), Some("100"));
        assert_eq!(log[1].query("state"), Some("opened"));
    });
}

#[test]
fn a_comment_is_deleted_and_deleting_it_again_is_no_error() {
    let lab = lab();
    let n = lab.server.seed("m", "", &["Migration"], "shepherd-bot");
    block_on(async {
        let t = GitLabTracker::connect(config(&lab, quick_policy()), BOT)
            .await
            .unwrap();
        let (claim, deletes) = twins::comment_deleted_twice(&t, &lab.server, n).await;
        let path = format!("/api/v4/projects/group%2Fproject/issues/{n}/notes/{claim}");
        assert_eq!(deletes, [path.clone(), path]);
    });
}

//! GitHub: pull requests from the issue timeline's `cross-referenced` events (one request
//! when the timeline says which are merged; one more a pull request where it does not),
//! listed once each; one timeline read serving the label history too; releases without
//! drafts and pre-releases (one request a repository, 100 a page); an unknown repository
//! named in the error.

use chrono::{Duration, Utc};
use shepherd::core::facts::{MrState as State, Release};
use shepherd::tracker::github::{self, GitHubTracker};
use shepherd::tracker::Tracker;

use super::{day, shown};
use crate::github_server::{GitHubServer, Logged, OWNER, REPO};
use crate::remote::quick_policy;
use crate::support::block_on;
use crate::test_server::{MrState, ReleaseKind};
use crate::twins;

const BOT: &str = "ghp_facts0123456789";

fn server() -> GitHubServer {
    GitHubServer::start(&[(BOT, "shepherd-bot")])
}

fn own() -> String {
    format!("{OWNER}/{REPO}")
}

fn tracker(server: &GitHubServer) -> GitHubTracker {
    let mut config = github::Config::new(&server.url, &own());
    config.policy = quick_policy();
    GitHubTracker::connect(config, BOT).expect("the client builds")
}

/// `METHOD path` of each request.
fn requests(log: &[Logged]) -> Vec<String> {
    log.iter()
        .map(|l| format!("{} {}", l.method, l.path))
        .collect()
}

#[test]
fn pull_requests_come_from_the_timeline_each_once() {
    let server = server();
    let n = server.seed("Migrate FindCommit", "", &["Migration"], "alice", false);
    let merged = server.add_pull_request(n, &own(), MrState::Merged, Some(day(2)));
    let open = server.add_pull_request(n, &own(), MrState::Open, None);
    server.add_pull_request(n, "octo-org/gitaly", MrState::Closed, None);
    server.add_pull_request(n, "octo-org/gitaly", MrState::Merged, Some(day(3)));
    // Mentioned twice: listed once.
    server.mention(n, &own(), merged);
    let quiet = server.seed("Quiet", "", &[], "alice", false);
    block_on(async {
        let t = tracker(&server);
        server.clear_log();
        let mrs = t.merge_requests(n).await.unwrap();
        assert_eq!(
            shown(&mrs),
            [
                "octo-org/gitaly octo-org/gitaly#1 Closed".to_string(),
                "octo-org/gitaly octo-org/gitaly#2 Merged 03".to_string(),
                format!("{} #{merged} Merged 02", own()),
                format!("{} #{open} Open", own()),
            ],
            "by project and number"
        );
        assert_eq!(
            mrs[2].url,
            format!("https://github.com/{}/pull/{merged}", own())
        );
        assert_eq!(mrs[2].title, format!("Fix #{n}"));
        assert_eq!(
            requests(&server.log()),
            [format!("GET /repos/{}/issues/{n}/timeline", own())],
            "one request: the timeline says which are merged"
        );
        twins::no_merge_requests(&t, quiet).await;
    });
}

#[test]
fn where_the_timeline_does_not_say_the_pull_request_is_read() {
    let server = server();
    server.without_merged_at_in_timeline();
    let n = server.seed("Migrate FindCommit", "", &[], "alice", false);
    server.add_pull_request(n, &own(), MrState::Merged, Some(day(2)));
    server.add_pull_request(n, "octo-org/gitaly", MrState::Open, None);
    block_on(async {
        let t = tracker(&server);
        server.clear_log();
        let mrs = t.merge_requests(n).await.unwrap();
        let states: Vec<(State, Option<_>)> = mrs.iter().map(|m| (m.state, m.merged_at)).collect();
        assert_eq!(states, [(State::Open, None), (State::Merged, Some(day(2)))]);
        assert_eq!(
            requests(&server.log()),
            [
                format!("GET /repos/{}/issues/{n}/timeline", own()),
                format!("GET /repos/{}/pulls/2", own()),
                "GET /repos/octo-org/gitaly/pulls/1".to_string(),
            ]
        );
    });
}

#[test]
fn one_timeline_read_serves_label_history_and_pull_requests() {
    let server = server();
    let n = server.seed("Migrate FindCommit", "", &["Migration"], "alice", false);
    server.add_pull_request(n, &own(), MrState::Merged, Some(day(2)));
    block_on(async {
        let t = tracker(&server);
        server.clear_log();
        let (events, mrs) = futures::join!(t.label_events(n), t.merge_requests(n));
        assert_eq!(events.unwrap().len(), 1, "Migration added");
        assert_eq!(mrs.unwrap().len(), 1);
        assert_eq!(server.log().len(), 1, "one timeline read for both");
        // Asked again, each reads again (a conditional request).
        let merged_later = server.add_pull_request(n, "octo-org/gitaly", MrState::Open, None);
        server.set_pull_request(
            "octo-org/gitaly",
            merged_later,
            MrState::Merged,
            Some(day(4)),
        );
        let mrs = t.merge_requests(n).await.unwrap();
        assert_eq!(mrs.len(), 2, "a fresh read sees the new one");
        assert_eq!(t.label_events(n).await.unwrap().len(), 1);
        assert_eq!(server.log().len(), 2, "and that read served the labels");
    });
}

#[test]
fn releases_leave_out_drafts_and_pre_releases_and_name_an_unknown_repository() {
    let server = server();
    server.publish_release(&own(), "v1.0.0", day(1), ReleaseKind::Published);
    server.publish_release(&own(), "v1.1.0", day(3), ReleaseKind::Published);
    server.publish_release(&own(), "v2.0.0", day(4), ReleaseKind::Draft);
    server.publish_release(&own(), "v2.0.0-rc1", day(5), ReleaseKind::Prerelease);
    server.publish_release("octo-org/gitaly", "v17.3.0", day(2), ReleaseKind::Published);
    server.add_repo("octo-org/quiet");
    block_on(async {
        let t = tracker(&server);
        server.clear_log();
        let releases = t.releases(None).await.unwrap();
        assert_eq!(
            releases,
            [
                Release {
                    tag: "v1.1.0".into(),
                    released_at: day(3),
                    url: format!("https://github.com/{}/releases/tag/v1.1.0", own()),
                },
                Release {
                    tag: "v1.0.0".into(),
                    released_at: day(1),
                    url: format!("https://github.com/{}/releases/tag/v1.0.0", own()),
                },
            ]
        );
        assert_eq!(t.releases(Some("octo-org/gitaly")).await.unwrap().len(), 1);
        assert_eq!(t.releases(Some("octo-org/quiet")).await.unwrap(), []);
        assert_eq!(
            requests(&server.log()),
            [
                format!("GET /repos/{}/releases", own()),
                "GET /repos/octo-org/gitaly/releases".to_string(),
                "GET /repos/octo-org/quiet/releases".to_string(),
            ],
            "one request a repository"
        );
        assert!(server
            .log()
            .iter()
            .all(|l| l.query("per_page") == Some("100")));
        twins::unknown_project(&t, &server.url, "octo-org/nope", BOT).await;
        let err = t.releases(Some("no-slash")).await.unwrap_err().to_string();
        assert_eq!(err, "`no-slash` is no GitHub repository: write OWNER/REPO");
        let err = t
            .pull_request("octo-org/gitaly", 7)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pull request octo-org/gitaly#7 not found"),
            "{err}"
        );
    });
}

#[test]
fn a_long_release_list_is_read_100_a_page() {
    let server = server();
    let days = (Utc::now() - Duration::days(200), Duration::days(1));
    block_on(async {
        let t = tracker(&server);
        let releases = twins::a_long_release_list(&t, &server, "octo-org/gitaly", days).await;
        assert_eq!(server.log().len(), 2);
        // Again: conditional requests, each answered 304.
        assert_eq!(t.releases(Some("octo-org/gitaly")).await.unwrap(), releases);
        let statuses: Vec<u16> = server.log()[2..].iter().map(|l| l.status).collect();
        assert_eq!(statuses, [304, 304]);
    });
}

//! GitLab: merge requests from `related_merge_requests`, which holds the closing ones too
//! (one request an issue, each listed once), releases from the Releases API (one request a project, 100 a
//! page, upcoming ones left out), an unknown project named in the error, and GitLab's
//! documented examples of those three lists parsed.

use chrono::{Duration, Utc};
use shepherd::core::facts::{MrState as State, Release};
use shepherd::tracker::gitlab::{Config, GitLabTracker, GlMergeRequest, GlRelease};
use shepherd::tracker::Tracker;

use super::{day, shown};
use crate::gitlab_server::facts::Lists;
use crate::gitlab_server::{GitLabServer, Logged, PROJECT};
use crate::remote::quick_policy;
use crate::support::{block_on, fixture};
use crate::test_server::{MrState, ReleaseKind};
use crate::twins;

const BOT: &str = "glpat-facts-0123456789";

fn server() -> GitLabServer {
    GitLabServer::start(&[(BOT, "shepherd-bot")])
}

/// The tracker, connected (its `GET /user` already sent), and the log cleared.
async fn tracker(server: &GitLabServer) -> GitLabTracker {
    let mut config = Config::new(&server.url, PROJECT);
    config.policy = quick_policy();
    let t = GitLabTracker::connect(config, BOT).await.expect("connects");
    server.clear_log();
    t
}

/// `path?query` of each request, the path after `/api/v4/`.
fn requests(log: &[Logged]) -> Vec<String> {
    log.iter()
        .map(|l| {
            let query: Vec<String> = l.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} {}?{}",
                l.method,
                l.path.trim_start_matches("/api/v4/"),
                query.join("&")
            )
        })
        .collect()
}

#[test]
fn merge_requests_come_from_the_related_list_each_once() {
    let server = server();
    let n = server.seed("Migrate FindCommit", "", &["Migration"], "alice");
    let other = server.seed("Another issue", "", &[], "alice");
    // !1 mentions and closes #n: it is in both lists.
    server.add_merge_request(n, PROJECT, MrState::Merged, Some(day(2)));
    server.add_merge_request_in(n, PROJECT, MrState::Open, None, Lists::Related);
    server.add_merge_request_in(n, "group/other", MrState::Closed, None, Lists::Related);
    server.add_merge_request_in(
        n,
        "group/other",
        MrState::Merged,
        Some(day(3)),
        Lists::ClosingOnly,
    );
    // Another issue's merge request is not this one's.
    server.add_merge_request(other, "group/other", MrState::Merged, Some(day(4)));
    block_on(async {
        let t = tracker(&server).await;
        let mrs = t.merge_requests(n).await.unwrap();
        assert_eq!(
            shown(&mrs),
            [
                "group/other group/other!1 Closed",
                "group/other group/other!2 Merged 03",
                "group/project !1 Merged 02",
                "group/project !2 Open",
            ]
        );
        let first = mrs.iter().find(|m| m.reference == "!1").unwrap();
        assert_eq!(first.title, format!("Resolve #{n}"));
        assert_eq!(
            first.url,
            "http://gitlab.test/group/project/-/merge_requests/1"
        );
        let enc = PROJECT.replace('/', "%2F");
        let mut sent = requests(&server.log());
        sent.sort();
        assert_eq!(
            sent,
            [format!(
                "GET projects/{enc}/issues/{n}/related_merge_requests?page=1&per_page=100"
            )],
            "one request for an issue: the related list holds the closing ones"
        );
        // A merge request merged since is seen at the next look.
        server.set_merge_request(PROJECT, 2, MrState::Merged, Some(day(5)));
        let mrs = t.merge_requests(n).await.unwrap();
        assert_eq!(mrs[3].state, State::Merged);
        assert_eq!(mrs[3].merged_at, Some(day(5)));
        // None at all, and an issue that does not exist.
        let none = server.seed("Quiet", "", &[], "alice");
        twins::no_merge_requests(&t, none).await;
    });
}

#[test]
fn releases_leave_out_upcoming_ones_and_name_an_unknown_project() {
    let server = server();
    let now = Utc::now();
    server.publish_release(PROJECT, "v1.0.0", day(1), ReleaseKind::Published);
    server.publish_release(PROJECT, "v1.1.0", day(3), ReleaseKind::Published);
    server.publish_release(PROJECT, "v2.0.0-rc", day(4), ReleaseKind::Upcoming);
    server.publish_release(
        PROJECT,
        "v2.0.0",
        now + Duration::days(7),
        ReleaseKind::Published,
    );
    server.publish_release(
        "gitlab-org/gitlab",
        "v17.3.0",
        day(2),
        ReleaseKind::Published,
    );
    server.add_project("group/quiet");
    block_on(async {
        let t = tracker(&server).await;
        let own = t.releases(None).await.unwrap();
        let tags: Vec<&str> = own.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(
            tags,
            ["v1.1.0", "v1.0.0"],
            "newest first, no upcoming release"
        );
        assert_eq!(
            own[0],
            Release {
                tag: "v1.1.0".into(),
                released_at: day(3),
                url: "http://gitlab.test/group/project/-/releases/v1.1.0".into(),
            }
        );
        let other = t.releases(Some("gitlab-org/gitlab")).await.unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(t.releases(Some("group/quiet")).await.unwrap(), []);
        assert_eq!(
            requests(&server.log()),
            [
                "GET projects/group%2Fproject/releases?page=1&per_page=100",
                "GET projects/gitlab-org%2Fgitlab/releases?page=1&per_page=100",
                "GET projects/group%2Fquiet/releases?page=1&per_page=100",
            ],
            "one request a project"
        );
        twins::unknown_project(&t, &server.url, "group/nope", BOT).await;
    });
}

#[test]
fn a_long_release_list_is_read_100_a_page() {
    let server = server();
    let minutes = (day(1), Duration::minutes(1));
    block_on(async {
        let t = tracker(&server).await;
        twins::a_long_release_list(&t, &server, "gitlab-org/gitaly", minutes).await;
        assert_eq!(server.log().len(), 2, "{:?}", requests(&server.log()));
    });
}

#[test]
fn documented_merge_requests_and_releases_parse() {
    let read = |name: &str| {
        std::fs::read_to_string(fixture(&format!("gitlab/api/{name}"))).expect("the fixture")
    };
    let related: Vec<GlMergeRequest> =
        serde_json::from_str(&read("related_merge_requests.json")).unwrap();
    let mr = related
        .into_iter()
        .next()
        .unwrap()
        .into_fact("twitter/flight");
    assert_eq!(
        (
            mr.project.as_str(),
            mr.number,
            mr.reference.as_str(),
            mr.state
        ),
        ("twitter/flight", 11, "!11", State::Open)
    );
    assert_eq!(
        mr.url,
        "https://gitlab.example.com/twitter/flight/merge_requests/4"
    );
    let closing: Vec<GlMergeRequest> = serde_json::from_str(&read("closed_by.json")).unwrap();
    let mr = closing
        .into_iter()
        .next()
        .unwrap()
        .into_fact("twitter/flight");
    assert_eq!(
        (mr.project.as_str(), mr.reference.as_str(), mr.merged_at),
        (
            "gitlab-org/gitlab-test",
            "gitlab-org/gitlab-test!6432",
            None
        )
    );
    let releases: Vec<GlRelease> = serde_json::from_str(&read("list_releases.json")).unwrap();
    let releases: Vec<Release> = releases
        .into_iter()
        .filter_map(|r| r.into_fact("https://gitlab.example.com/root/awesome-app"))
        .collect();
    assert_eq!(releases.len(), 2);
    assert_eq!(
        releases[0].url, "https://gitlab.example.com/root/awesome-app/-/releases/v0.2",
        "a release without `_links` gets its page"
    );
    assert_eq!(
        releases[1].url,
        "https://gitlab.example.com/root/awesome-app/-/releases/v0.1"
    );
    assert_eq!(
        releases[1].released_at.to_rfc3339(),
        "2019-01-03T01:55:18.203+00:00"
    );
    // A locked merge request is open; an upcoming release is none.
    let mut locked: serde_json::Value = serde_json::from_str(&read("closed_by.json")).unwrap();
    locked[0]["state"] = "locked".into();
    let locked: Vec<GlMergeRequest> = serde_json::from_value(locked).unwrap();
    assert_eq!(
        locked.into_iter().next().unwrap().into_fact("a/b").state,
        State::Open
    );
    let mut upcoming: serde_json::Value =
        serde_json::from_str(&read("list_releases.json")).unwrap();
    upcoming[0]["upcoming_release"] = true.into();
    let upcoming: Vec<GlRelease> = serde_json::from_value(upcoming).unwrap();
    assert!(upcoming
        .into_iter()
        .next()
        .unwrap()
        .into_fact("x")
        .is_none());
}

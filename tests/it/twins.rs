//! The scenarios the GitLab and GitHub tests share where they call the tracker API
//! directly (`gitlab::requests`, `github::requests`, `facts::gitlab`, `facts::github`):
//! the same behaviour on either tracker, written once over the client (`dyn Tracker`) and
//! the test server (`Server`); what the requests look like on the wire stays in each
//! tracker's tests.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shepherd::core::facts::Release;
use shepherd::tracker::{Issue, IssueEdit, NewIssue, StateFilter, Tracker, TrackerError};

use crate::api::Twin;
use crate::remote::fails_within;
use crate::test_server::{Fault, ReleaseKind, Server};

/// What a list of issues gives.
type Listed = Result<Vec<Issue>, TrackerError>;

/// A list the server never answers (`GET …/issues`): `list` fails within 10 s (the
/// timeout, retried), its error without `token`. Returns the error.
pub fn a_list_never_answered<S: Twin>(
    server: &Server<S>,
    token: &str,
    list: impl Future<Output = Listed>,
) -> String {
    server.fail(Fault::hang("GET", "/issues"));
    fails_within(Duration::from_secs(10), token, list)
}

/// A list answered `status` with `Retry-After: 3600`, an hour longer than `list`'s longest
/// wait allows: it fails at once (within 5 s), without `token`, and asks no second time.
/// Returns the error.
pub fn a_wait_beyond_max_wait<S: Twin>(
    server: &Server<S>,
    token: &str,
    status: u16,
    list: impl Future<Output = Listed>,
) -> String {
    server.fail(Fault::status("GET", "/issues", status, Some(3600), 1));
    server.clear_log();
    let err = fails_within(Duration::from_secs(5), token, list);
    let requests = server.method_paths();
    let lists = requests.iter().filter(|(_, p)| p.ends_with("/issues"));
    assert_eq!(lists.count(), 1, "no second try");
    err
}

/// Opens an issue and writes it every way a run does (its body, a comment, a move that
/// closes it, reopening it): the answers are the issue as written, never read again.
/// Returns the issue's number.
pub async fn writes_each_once(t: &dyn Tracker) -> u64 {
    let issue = t
        .create_issue(&NewIssue {
            title: "m".into(),
            body: "body".into(),
            labels: vec!["Migration".into(), "Selection".into()],
        })
        .await
        .unwrap();
    let n = issue.number;
    t.update_body(n, "new body").await.unwrap();
    let c = t.add_comment(n, "a comment").await.unwrap();
    assert_eq!(c.body, "a comment");
    let edit = IssueEdit {
        current: issue.labels.clone(),
        add: vec!["Shelved".into()],
        remove: vec!["Selection".into()],
        open: Some(false),
    };
    let moved = t.edit_issue(n, &edit).await.unwrap();
    assert_eq!(moved.labels, ["Migration", "Shelved"]);
    assert!(!moved.open);
    assert_eq!(
        moved.body, "new body",
        "the issue as the answer to the move shows it"
    );
    t.set_open(n, true).await.unwrap();
    n
}

/// Three issues an hour old, `a` and `b` with the label `Migration`; `b` and `c` changed
/// since half an hour ago. Returns them and that time.
pub fn changed_half_an_hour_ago<S: Twin>(server: &Server<S>) -> ([u64; 3], DateTime<Utc>) {
    let seed = |title: &str, label: &str| S::seed(server, title, "", &[label]);
    let (a, b, c) = (
        seed("a", "Migration"),
        seed("b", "Migration"),
        seed("c", "Other"),
    );
    server.travel(chrono::Duration::hours(1));
    let since = Utc::now() - chrono::Duration::minutes(30);
    server.touch(b);
    server.touch(c);
    ([a, b, c], since)
}

/// The incremental list after `changed_half_an_hour_ago`: the migrations changed since, then
/// every open issue changed since, newest first. Returns the first list.
pub async fn lists_what_changed_since(
    t: &dyn Tracker,
    [a, b, c]: [u64; 3],
    since: DateTime<Utc>,
) -> Vec<Issue> {
    let migration = ["Migration".to_string()];
    let changed = t
        .list_issues_since(StateFilter::All, &migration, since)
        .await
        .unwrap();
    assert_eq!(changed.iter().map(|i| i.number).collect::<Vec<_>>(), [b]);
    let all = t
        .list_issues_since(StateFilter::Open, &[], since)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|i| i.number).collect::<Vec<_>>(), [c, b]);
    assert!(!all.iter().any(|i| i.number == a));
    changed
}

/// Two comments on issue `n`, the second deleted twice: 204, then 404, which is no error;
/// the first is left. Returns the deleted comment's id and the paths of the deletes.
pub async fn comment_deleted_twice<S: Twin>(
    t: &dyn Tracker,
    server: &Server<S>,
    n: u64,
) -> (u64, Vec<String>) {
    let keep = t.add_comment(n, "keep").await.unwrap();
    let claim = t.add_comment(n, "claim").await.unwrap();
    server.clear_log();
    t.delete_comment(n, claim.id).await.unwrap();
    t.delete_comment(n, claim.id).await.unwrap();
    let left = t.comments(n).await.unwrap();
    assert_eq!(left.iter().map(|c| c.id).collect::<Vec<_>>(), [keep.id]);
    let answered = server.method_paths().into_iter().zip(server.statuses());
    let deletes: Vec<_> = answered.filter(|((m, _), _)| m == "DELETE").collect();
    let statuses: Vec<u16> = deletes.iter().map(|(_, status)| *status).collect();
    assert_eq!(statuses, [204, 404]);
    (claim.id, deletes.into_iter().map(|((_, p), _)| p).collect())
}

/// 150 releases of `project`, `step` apart from `first` on, read back through `t` (100 a
/// page): newest first, all of them. The log holds the reads.
pub async fn a_long_release_list<S: Twin>(
    t: &dyn Tracker,
    server: &Server<S>,
    project: &str,
    (first, step): (DateTime<Utc>, chrono::Duration),
) -> Vec<Release> {
    for i in 0..150 {
        let at = first + step * i;
        let tag = format!("v1.{i}.0");
        server.publish_release(project, &tag, at, ReleaseKind::Published);
    }
    server.clear_log();
    let releases = t.releases(Some(project)).await.unwrap();
    assert_eq!(releases.len(), 150);
    assert_eq!(releases[0].tag, "v1.149.0");
    assert_eq!(releases[149].tag, "v1.0.0");
    releases
}

/// An issue with no merge request has none; one that does not exist is not found.
pub async fn no_merge_requests(t: &dyn Tracker, quiet: u64) {
    assert_eq!(t.merge_requests(quiet).await.unwrap(), []);
    assert!(matches!(
        t.merge_requests(999).await,
        Err(TrackerError::NotFound(999))
    ));
}

/// The error for releases of `project`, which the server does not know: it names the
/// project and the server, and shows no token.
pub async fn unknown_project(t: &dyn Tracker, url: &str, project: &str, token: &str) {
    let err = t.releases(Some(project)).await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!("project `{project}` not found on {url} (or this token cannot see it)")
    );
    assert!(!err.contains(token));
}

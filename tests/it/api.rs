//! What the tests and benchmarks need from either test server, so that one harness
//! (`remote.rs`) and one benchmark serve GitLab and GitHub alike.

#![allow(dead_code)] // the benchmark uses what the tests do not

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shepherd::catalog::Catalog;
use shepherd::core::marker::IssueMarker;
use shepherd::render::{Context, IssueRef};

use crate::github_server::GitHubServer;
use crate::gitlab_server::GitLabServer;
use crate::test_server::{MrState, ReleaseKind};

/// The variables of a seeded gitaly migration, every one given.
pub fn gitaly_vars() -> BTreeMap<String, String> {
    [
        ("feature_flag", "GITALY_FIND_COMMIT"),
        ("grpc_service", "CommitService"),
        ("grpc_method", "FindCommit"),
        ("gitaly_version", "v1.2.3"),
        ("gitlab_version", "v11.4"),
        ("release_project", "gitlab-org/gitlab"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The body of gitaly-migration tracking issue `number` as `start` writes it (the template
/// rendered with `vars`, then the marker), for seeding a server without requests.
pub fn gitaly_body(catalog: &Catalog, number: u64, vars: BTreeMap<String, String>) -> String {
    let me = IssueRef {
        number: number.to_string(),
        ..Default::default()
    };
    let cx = Context {
        vars: &vars,
        migration: Some(me.clone()),
        parent: None,
        issue: Some(me),
        now: Utc::now(),
    };
    let rendered = catalog
        .renderer
        .render("gitaly-migration", &cx.to_value())
        .expect("the gitaly-migration template renders");
    IssueMarker {
        workflow: Some("gitaly-migration".into()),
        vars,
        ..Default::default()
    }
    .append_to(&rendered.body)
}

pub trait Api {
    fn url(&self) -> &str;
    /// The issue's body as the server stores it.
    fn body(&self, n: u64) -> String;
    fn label_names(&self, n: u64) -> Vec<String>;
    /// Creates an issue as a person would, without a request; returns its number.
    fn seed_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64;
    /// Moves one issue's times (and its comments' and label events') `d` into the past.
    #[allow(dead_code)] // used by the benchmarks
    fn backdate(&self, n: u64, d: chrono::Duration);
    fn requests(&self) -> usize;
    /// The paths of the requests since `forget_requests`, in order.
    fn paths(&self) -> Vec<String>;
    fn forget_requests(&self);
    fn latency(&self, d: Duration);
    /// Every issue's number.
    fn issue_numbers(&self) -> Vec<u64>;
    /// The bodies of issue `n`'s comments, oldest first.
    fn comment_bodies(&self, n: u64) -> Vec<String>;
    /// How many times `label` was added to issue `n`.
    fn label_added_count(&self, n: u64, label: &str) -> usize;
    /// The server's own project (`group/project`, `owner/repo`).
    fn project(&self) -> String;
    /// Records a merge request (GitHub: pull request) of `project` that references issue
    /// `issue` (GitLab: mentions and closes it); returns its number in `project`.
    fn add_merge_request(
        &self,
        issue: u64,
        project: &str,
        state: MrState,
        merged_at: Option<DateTime<Utc>>,
    ) -> u64;
    /// Changes the state of merge request `number` of `project`.
    fn set_merge_request(
        &self,
        project: &str,
        number: u64,
        state: MrState,
        merged_at: Option<DateTime<Utc>>,
    );
    /// Publishes release `tag` of `project` at `at`, of `kind` (each server takes the
    /// kinds its tracker has: GitLab upcoming, GitHub draft and pre-release).
    fn publish_release(&self, project: &str, tag: &str, at: DateTime<Utc>, kind: ReleaseKind);
    /// Holds the server's clock within the second of `at` (`None`: the real clock again):
    /// the writes it records and the `Date` it answers with.
    fn hold_clock(&self, at: Option<DateTime<Utc>>);
    /// Moves the server's clock `d` on (every time it records and answers).
    fn travel(&self, d: chrono::Duration);
    /// Gives `user` write access to the project (GitLab: Developer; GitHub: write), or
    /// only read access (GitLab: Guest; GitHub: read).
    fn grant(&self, user: &str, write: bool);
    /// A comment on issue `n` by `user`, as a person writes it (no request); its id.
    fn comment_as(&self, n: u64, user: &str, body: &str) -> u64;
}

impl Api for GitLabServer {
    fn travel(&self, d: chrono::Duration) {
        GitLabServer::travel(self, d)
    }
    fn grant(&self, user: &str, write: bool) {
        self.set_member(user, if write { 30 } else { 10 })
    }
    fn comment_as(&self, n: u64, user: &str, body: &str) -> u64 {
        GitLabServer::comment_as(self, n, user, body)
    }
    fn url(&self) -> &str {
        &self.url
    }
    fn body(&self, n: u64) -> String {
        self.issue(n)["description"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn label_names(&self, n: u64) -> Vec<String> {
        self.issue(n)["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    }
    fn seed_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        self.seed(title, body, labels, "shepherd-bot")
    }
    fn backdate(&self, n: u64, d: chrono::Duration) {
        GitLabServer::backdate(self, n, d)
    }
    fn requests(&self) -> usize {
        self.log().len()
    }
    fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|l| l.path).collect()
    }
    fn forget_requests(&self) {
        self.clear_log()
    }
    fn latency(&self, d: Duration) {
        self.set_latency(d)
    }
    fn issue_numbers(&self) -> Vec<u64> {
        self.issues()
            .iter()
            .filter_map(|i| i["iid"].as_u64())
            .collect()
    }
    fn comment_bodies(&self, n: u64) -> Vec<String> {
        self.notes(n)
            .iter()
            .map(|c| c["body"].as_str().unwrap_or_default().to_string())
            .collect()
    }
    fn label_added_count(&self, n: u64, label: &str) -> usize {
        self.events(n)
            .iter()
            .filter(|e| e["action"] == "add" && e["label"]["name"] == label)
            .count()
    }
    fn project(&self) -> String {
        crate::gitlab_server::PROJECT.to_string()
    }
    fn add_merge_request(
        &self,
        issue: u64,
        project: &str,
        state: MrState,
        merged_at: Option<DateTime<Utc>>,
    ) -> u64 {
        GitLabServer::add_merge_request(self, issue, project, state, merged_at)
    }
    fn set_merge_request(
        &self,
        project: &str,
        number: u64,
        state: MrState,
        merged_at: Option<DateTime<Utc>>,
    ) {
        GitLabServer::set_merge_request(self, project, number, state, merged_at)
    }
    fn publish_release(&self, project: &str, tag: &str, at: DateTime<Utc>, kind: ReleaseKind) {
        GitLabServer::publish_release(self, project, tag, at, kind)
    }
    fn hold_clock(&self, at: Option<DateTime<Utc>>) {
        GitLabServer::hold_clock(self, at)
    }
}

impl Api for GitHubServer {
    fn travel(&self, d: chrono::Duration) {
        GitHubServer::travel(self, d)
    }
    fn grant(&self, user: &str, write: bool) {
        self.set_permission(user, if write { "write" } else { "read" })
    }
    fn comment_as(&self, n: u64, user: &str, body: &str) -> u64 {
        GitHubServer::comment_as(self, n, user, body)
    }
    fn url(&self) -> &str {
        &self.url
    }
    fn body(&self, n: u64) -> String {
        self.issue(n)["body"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn label_names(&self, n: u64) -> Vec<String> {
        self.issue(n)["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    }
    fn seed_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        self.seed(title, body, labels, "shepherd-bot", false)
    }
    fn backdate(&self, n: u64, d: chrono::Duration) {
        GitHubServer::backdate(self, n, d)
    }
    fn requests(&self) -> usize {
        self.log().len()
    }
    fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|l| l.path).collect()
    }
    fn forget_requests(&self) {
        self.clear_log()
    }
    fn latency(&self, d: Duration) {
        self.set_latency(d)
    }
    fn issue_numbers(&self) -> Vec<u64> {
        self.issues()
            .iter()
            .filter_map(|i| i["number"].as_u64())
            .collect()
    }
    fn comment_bodies(&self, n: u64) -> Vec<String> {
        self.comments(n)
            .iter()
            .map(|c| c["body"].as_str().unwrap_or_default().to_string())
            .collect()
    }
    fn label_added_count(&self, n: u64, label: &str) -> usize {
        self.timeline(n)
            .iter()
            .filter(|e| e["event"] == "labeled" && e["label"]["name"] == label)
            .count()
    }
    fn project(&self) -> String {
        format!(
            "{}/{}",
            crate::github_server::OWNER,
            crate::github_server::REPO
        )
    }
    fn add_merge_request(
        &self,
        issue: u64,
        project: &str,
        state: MrState,
        merged_at: Option<DateTime<Utc>>,
    ) -> u64 {
        self.add_pull_request(issue, project, state, merged_at)
    }
    fn set_merge_request(
        &self,
        project: &str,
        number: u64,
        state: MrState,
        merged_at: Option<DateTime<Utc>>,
    ) {
        self.set_pull_request(project, number, state, merged_at)
    }
    fn publish_release(&self, project: &str, tag: &str, at: DateTime<Utc>, kind: ReleaseKind) {
        GitHubServer::publish_release(self, project, tag, at, kind)
    }
    fn hold_clock(&self, at: Option<DateTime<Utc>>) {
        GitHubServer::hold_clock(self, at)
    }
}

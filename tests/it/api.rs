//! What the tests and benchmarks need from either test server, so that one harness
//! (`remote.rs`) and one benchmark serve GitLab and GitHub alike.

#![allow(dead_code)] // the benchmark uses what the tests do not

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shepherd::catalog::Catalog;
use shepherd::core::marker::IssueMarker;
use shepherd::render::{Context, IssueRef};

use serde_json::Value;

use crate::github_server::GitHubServer;
use crate::gitlab_server::GitLabServer;
use crate::test_server::{Fault, MergedAt, MrState, ReleaseKind, Server, Tracked};

/// The variables of a seeded gitaly migration, every one given, as `--var` takes them.
const GITALY_VARS: [&str; 6] = [
    "feature_flag=GITALY_FIND_COMMIT",
    "grpc_service=CommitService",
    "grpc_method=FindCommit",
    "gitaly_version=v1.2.3",
    "gitlab_version=v11.4",
    "release_project=gitlab-org/gitlab",
];

/// The variables of a seeded gitaly migration, every one given.
pub fn gitaly_vars() -> BTreeMap<String, String> {
    let vars = GITALY_VARS.map(|v| v.split_once('=').expect("name=value"));
    vars.map(|(k, v)| (k.to_string(), v.to_string())).into()
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
    fn add_merge_request(&self, issue: u64, project: &str, state: MrState, at: MergedAt) -> u64;
    /// Changes the state of merge request `number` of `project`.
    fn set_merge_request(&self, project: &str, number: u64, state: MrState, at: MergedAt);
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
    /// Injects `fault` into the next requests that match.
    fn fail(&self, fault: Fault);
    fn clear_faults(&self);
    /// Issue `n`'s state as the tracker writes it (`opened`, `open`, `closed`).
    fn issue_state(&self, n: u64) -> String;
    /// `METHOD path` of each request since `forget_requests` that is no GET.
    fn writes(&self) -> Vec<String>;
    /// The statuses the requests since `forget_requests` whose path ends with `path_ends`
    /// were answered with, in order.
    fn answers(&self, path_ends: &str) -> Vec<u16>;
}

/// What `Api` needs of one tracker's test server beyond what both servers share
/// (`Server`): the keys of its JSON, and what only that tracker does or names its own way.
pub trait Twin: Tracked {
    /// The key of an issue's number (GitLab: `iid`).
    const NUMBER: &'static str;
    /// The key of an issue's body (GitLab: `description`).
    const BODY: &'static str;
    fn project() -> String;
    fn seed(server: &Server<Self>, title: &str, body: &str, labels: &[&str]) -> u64;
    fn grant(server: &Server<Self>, user: &str, write: bool);
    fn add_merge_request(server: &Server<Self>, issue: u64, mr: Mr) -> u64;
    fn set_merge_request(server: &Server<Self>, number: u64, mr: Mr);
}

/// A merge request (GitHub: pull request) of `project` as a test records it.
#[derive(Clone, Copy)]
pub struct Mr<'a> {
    pub project: &'a str,
    pub state: MrState,
    pub merged_at: MergedAt,
}

impl<S: Twin> Api for Server<S> {
    fn travel(&self, d: chrono::Duration) {
        Server::travel(self, d)
    }
    fn grant(&self, user: &str, write: bool) {
        S::grant(self, user, write)
    }
    fn comment_as(&self, n: u64, user: &str, body: &str) -> u64 {
        Server::comment_as(self, n, user, body)
    }
    fn url(&self) -> &str {
        &self.url
    }
    fn body(&self, n: u64) -> String {
        let body = self.issue(n)[S::BODY].as_str().map(str::to_string);
        body.unwrap_or_default()
    }
    /// GitLab lists a label's name, GitHub the label.
    fn label_names(&self, n: u64) -> Vec<String> {
        let labels = self.issue(n)["labels"].as_array().unwrap().clone();
        let name = |l: &Value| l["name"].as_str().or(l.as_str()).unwrap().to_string();
        labels.iter().map(name).collect()
    }
    fn seed_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        S::seed(self, title, body, labels)
    }
    fn backdate(&self, n: u64, d: chrono::Duration) {
        Server::backdate(self, n, d)
    }
    fn requests(&self) -> usize {
        self.log().len()
    }
    fn paths(&self) -> Vec<String> {
        self.method_paths().into_iter().map(|(_, p)| p).collect()
    }
    fn forget_requests(&self) {
        self.clear_log()
    }
    fn latency(&self, d: Duration) {
        self.set_latency(d)
    }
    fn issue_numbers(&self) -> Vec<u64> {
        let issues = self.issues();
        issues
            .iter()
            .filter_map(|i| i[S::NUMBER].as_u64())
            .collect()
    }
    fn comment_bodies(&self, n: u64) -> Vec<String> {
        let comments = self.comments_of(n);
        let body = |c: &Value| c["body"].as_str().unwrap_or_default().to_string();
        comments.iter().map(body).collect()
    }
    fn label_added_count(&self, n: u64, label: &str) -> usize {
        Server::label_added_count(self, n, label)
    }
    fn project(&self) -> String {
        S::project()
    }
    fn add_merge_request(&self, issue: u64, project: &str, state: MrState, at: MergedAt) -> u64 {
        let mr = Mr {
            project,
            state,
            merged_at: at,
        };
        S::add_merge_request(self, issue, mr)
    }
    fn set_merge_request(&self, project: &str, number: u64, state: MrState, at: MergedAt) {
        let mr = Mr {
            project,
            state,
            merged_at: at,
        };
        S::set_merge_request(self, number, mr)
    }
    fn publish_release(&self, project: &str, tag: &str, at: DateTime<Utc>, kind: ReleaseKind) {
        Server::publish_release(self, project, tag, at, kind)
    }
    fn hold_clock(&self, at: Option<DateTime<Utc>>) {
        Server::hold_clock(self, at)
    }
    fn fail(&self, fault: Fault) {
        Server::fail(self, fault)
    }
    fn clear_faults(&self) {
        Server::clear_faults(self)
    }
    fn issue_state(&self, n: u64) -> String {
        self.issue(n)["state"].as_str().unwrap().to_string()
    }
    fn answers(&self, path_ends: &str) -> Vec<u16> {
        let answered = self.method_paths().into_iter().zip(self.statuses());
        let these = answered.filter(|((_, path), _)| path.ends_with(path_ends));
        these.map(|(_, status)| status).collect()
    }
    fn writes(&self) -> Vec<String> {
        let requests = self.method_paths().into_iter();
        let writes = requests.filter(|(method, _)| method != "GET");
        writes
            .map(|(method, path)| format!("{method} {path}"))
            .collect()
    }
}

impl Twin for crate::gitlab_server::GitLab {
    const NUMBER: &'static str = "iid";
    const BODY: &'static str = "description";
    fn project() -> String {
        crate::gitlab_server::PROJECT.to_string()
    }
    fn seed(server: &GitLabServer, title: &str, body: &str, labels: &[&str]) -> u64 {
        server.seed(title, body, labels, "shepherd-bot")
    }
    /// Developer, or Guest.
    fn grant(server: &GitLabServer, user: &str, write: bool) {
        server.set_member(user, if write { 30 } else { 10 })
    }
    fn add_merge_request(server: &GitLabServer, issue: u64, mr: Mr) -> u64 {
        server.add_merge_request(issue, mr.project, mr.state, mr.merged_at)
    }
    fn set_merge_request(server: &GitLabServer, number: u64, mr: Mr) {
        server.set_merge_request(mr.project, number, mr.state, mr.merged_at)
    }
}

impl Twin for crate::github_server::GitHub {
    const NUMBER: &'static str = "number";
    const BODY: &'static str = "body";
    fn project() -> String {
        use crate::github_server::{OWNER, REPO};
        format!("{OWNER}/{REPO}")
    }
    fn seed(server: &GitHubServer, title: &str, body: &str, labels: &[&str]) -> u64 {
        server.seed(title, body, labels, "shepherd-bot", false)
    }
    /// `write`, or `read`.
    fn grant(server: &GitHubServer, user: &str, write: bool) {
        server.set_permission(user, if write { "write" } else { "read" })
    }
    fn add_merge_request(server: &GitHubServer, issue: u64, mr: Mr) -> u64 {
        server.add_pull_request(issue, mr.project, mr.state, mr.merged_at)
    }
    fn set_merge_request(server: &GitHubServer, number: u64, mr: Mr) {
        server.set_pull_request(mr.project, number, mr.state, mr.merged_at)
    }
}

//! Four `shepherd reconcile` processes at once against the GitLab and GitHub test servers
//! (with latency, so their requests interleave), on migrations that enter Acceptance
//! Testing — which opens a child issue and comments. With a shared Store, leases keep
//! them apart; with none, the claim on the tracker does. Either way: no duplicate issue,
//! comment or stage label move.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shepherd::catalog::Sources;
use shepherd::core::marker::{IssueMarker, TransitionMarker};

use crate::api::Api;
use crate::github_server::GitHubServer;
use crate::gitlab_server::GitLabServer;
use crate::support::{stderr, stdout};

const MIGRATIONS: usize = 4;

/// The labels of a gitaly migration in Ready for Testing.
const READY: [&str; 3] = ["Migration", "Conversation", "Migration:Ready-for-Testing"];

/// Seeds `MIGRATIONS` gitaly migrations in Ready for Testing with every box ticked.
fn seed(server: &impl Api) -> Vec<u64> {
    let catalog = Sources::builtin().load().expect("shipped workflows load");
    let body = crate::api::gitaly_body(&catalog, 1, crate::api::gitaly_vars());
    let body = body.replace("- [ ] ", "- [x] ");
    let seed = |i| server.seed_issue(&format!("migration {i}"), &body, &READY);
    (0..MIGRATIONS).map(seed).collect()
}

struct Target<'a> {
    tracker: String,
    url_flag: &'a str,
    token_var: &'a str,
    token: &'a str,
}

impl Target<'_> {
    /// Starts `shepherd args` in `dir` against `server` as `token`, with the Store
    /// `state` (`None`: the default).
    fn spawn(
        &self,
        dir: &Path,
        server: &impl Api,
        token: &str,
        state: Option<String>,
        args: &[&str],
    ) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shepherd"));
        command.current_dir(dir).env_remove("SHEPHERD_TRACKER");
        match state {
            Some(state) => command.env("SHEPHERD_STATE", state),
            None => command.env_remove("SHEPHERD_STATE"),
        };
        command
            .env("SHEPHERD_RETRY_BASE_MS", "10")
            .env(self.token_var, token)
            .args(["--tracker", &self.tracker, self.url_flag, server.url()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shepherd starts")
    }
}

/// Waits for every run, each of which must succeed.
fn all_succeed(runs: Vec<Child>) {
    for run in runs {
        let out = run.wait_with_output().expect("ends");
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
}

fn race(server: &impl Api, target: &Target, shared_store: bool) {
    let numbers = seed(server);
    server.latency(Duration::from_millis(15));
    let dir = tempfile::tempdir().expect("dir");
    let runs = (0..4)
        .map(|i| {
            let store = if shared_store {
                "state.db".to_string()
            } else {
                format!("state-{i}.db")
            };
            let state = format!("sqlite:{}", dir.path().join(store).display());
            let args = ["reconcile", "--format", "json"];
            target.spawn(dir.path(), server, target.token, Some(state), &args)
        })
        .collect();
    all_succeed(runs);
    server.latency(Duration::ZERO);
    // One child per migration, each migration in Acceptance Testing, no duplicate comment.
    let mut children: BTreeMap<u64, usize> = BTreeMap::new();
    for n in server.issue_numbers() {
        if let Some(p) = IssueMarker::find(&server.body(n)).and_then(|m| m.parent) {
            *children.entry(p).or_insert(0) += 1;
        }
    }
    for n in &numbers {
        assert_eq!(children.get(n), Some(&1), "#{n}: one child: {children:?}");
        assert!(
            server
                .label_names(*n)
                .contains(&"Acceptance Testing".to_string()),
            "#{n} moved: {:?}",
            server.label_names(*n)
        );
        let comments = server.comment_bodies(*n);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for c in &comments {
            if let Some(t) = TransitionMarker::find(c) {
                *seen.entry(format!("transition {}", t.seq)).or_insert(0) += 1;
            } else if let Some(i) = c.rfind("shepherd:action=") {
                *seen.entry(c[i..].to_string()).or_insert(0) += 1;
            }
        }
        assert!(
            seen.values().all(|k| *k == 1),
            "#{n}: duplicate comments: {seen:?}"
        );
        let added = server.label_added_count(*n, "Acceptance Testing");
        assert_eq!(added, 1, "#{n}: the stage label was added {added} times");
    }
}

fn gitlab_target() -> Target<'static> {
    Target {
        tracker: format!("gitlab:{}", crate::gitlab_server::PROJECT),
        url_flag: "--gitlab-url",
        token_var: "GITLAB_TOKEN",
        token: "bot-token",
    }
}

fn github_target() -> Target<'static> {
    Target {
        tracker: format!(
            "github:{}/{}",
            crate::github_server::OWNER,
            crate::github_server::REPO
        ),
        url_flag: "--github-url",
        token_var: "GITHUB_TOKEN",
        token: "bot-token",
    }
}

/// Three trials with one Store for all four runs, three with a Store each.
fn races<S: Api>(start: impl Fn() -> S, target: Target) {
    for shared in [true, false] {
        for _trial in 0..3 {
            race(&start(), &target, shared);
        }
    }
}

#[test]
fn four_reconciles_on_gitlab_make_no_duplicates() {
    races(
        || GitLabServer::start(&[("bot-token", "shepherd-bot")]),
        gitlab_target(),
    );
}

#[test]
fn four_reconciles_on_github_make_no_duplicates() {
    races(
        || GitHubServer::start(&[("bot-token", "shepherd-bot")]),
        github_target(),
    );
}

#[test]
fn three_people_ticking_at_once_on_gitlab_lose_no_tick() {
    let server = GitLabServer::start(&[
        ("alice-token", "alice"),
        ("bob-token", "bob"),
        ("carol-token", "carol"),
    ]);
    let body = "## Plan\n- [ ] one\n- [ ] two\n- [ ] three\n- [ ] four\n- [ ] five\n- [ ] six\n";
    let n = server.seed_issue("a plan", body, &["Migration"]);
    server.latency(Duration::from_millis(15));
    let dir = tempfile::tempdir().expect("dir");
    let people = [
        ("alice-token", ["one", "two"]),
        ("bob-token", ["three", "four"]),
        ("carol-token", ["five", "six"]),
    ];
    let target = gitlab_target();
    let runs = people
        .iter()
        .flat_map(|(token, items)| items.iter().map(move |item| (token, item)))
        .map(|(token, item)| {
            let args = ["tick", &n.to_string(), item];
            target.spawn(dir.path(), &server, token, None, &args)
        })
        .collect();
    all_succeed(runs);
    let body = server.body(n);
    let done: Vec<String> = shepherd::core::checklist::parse(&body)
        .into_iter()
        .filter(|i| i.done())
        .map(|i| i.text)
        .collect();
    assert_eq!(
        done,
        ["one", "two", "three", "four", "five", "six"],
        "{body}"
    );
}

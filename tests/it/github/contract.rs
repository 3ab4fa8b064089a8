//! A contract test: every request the GitHub adapter makes, each kind at least once,
//! against Prism serving GitHub's own OpenAPI description, which rejects what the
//! description does not allow.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::Utc;
use shepherd::tracker::github::{self, GitHubTracker};
use shepherd::tracker::{IssueEdit, LabelSpec, NewIssue, StateFilter, Tracker};

use crate::support::block_on;

/// Prism, installed by `.ci/run` (or here, once, into target/) with npm; `None` (the test
/// skipped, see `support::tool`) when npm is missing.
fn prism() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [root.join(".ci/prism"), root.join("target/prism")] {
        let bin = dir.join("node_modules/.bin/prism");
        if bin.exists() {
            return Some(bin);
        }
    }
    let npm = crate::support::tool(
        "every_request_is_accepted_by_githubs_api_description",
        "npm",
        "Node 20 and npm install Prism for the GitHub contract test",
    )?;
    let dir = root.join("target/prism");
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new(npm)
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg("@stoplight/prism-cli@5.14.2")
        .status()
        .expect("npm runs (Node 20 and npm are needed for the contract test)");
    assert!(
        status.success(),
        "npm install @stoplight/prism-cli@5.14.2 failed"
    );
    Some(dir.join("node_modules/.bin/prism"))
}

/// What Prism answers (500) when the description's example of a response breaks the
/// description's schema, after the request passed its checks.
const RESPONSE_EXAMPLE: &str = "prism/errors#VIOLATIONS";

struct Prism(Child);

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every request the adapter makes, each kind at least once, against Prism serving
/// GitHub's OpenAPI description in static mode with `--errors`: a request the description
/// does not allow gets a 4xx, and the adapter fails.
#[test]
fn every_request_is_accepted_by_githubs_api_description() {
    let Some(prism) = prism() else { return };
    let spec =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/api/api.github.com.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(prism)
        .args([
            "mock",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--errors",
        ])
        .arg(&spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prism starts");
    let lines = BufReader::new(child.stdout.take().unwrap());
    let _prism = Prism(child);
    let mut log = Vec::new();
    let mut lines = lines.lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("Prism is listening") {
            break;
        }
        log.push(line);
    }
    let violations = std::thread::spawn(move || {
        lines
            .map_while(Result::ok)
            .filter(|l| l.contains("✖") || l.contains("error"))
            .collect::<Vec<_>>()
    });
    let mut config =
        github::Config::new(&format!("http://127.0.0.1:{port}"), "octo-org/migrations");
    config.policy.attempts = 1;
    block_on(async {
        // octocrab's client must be built inside a runtime.
        let tracker = GitHubTracker::connect(config, "ghp_contract").unwrap();
        let t: &dyn Tracker = &tracker;
        // A request the description rejects fails with its 4xx; a response whose example
        // octocrab's strict models cannot read is Prism's sample data, not a contract
        // breach (the real payloads are parsed in `github_payloads_parse`). So is a 500
        // "Request/Response not valid": Prism validated the request (a request it rejects
        // gets a 422), then found that the description's own example of the answer breaks
        // its schema (the `pull-request` example's `requested_teams` lack `type`).
        fn accepted<T>(what: &str, r: Result<T, shepherd::tracker::TrackerError>) -> Option<T> {
            match r {
                Ok(v) => Some(v),
                Err(e) if e.to_string().contains("unexpected JSON") => None,
                Err(e) if what == "a pull request" && e.to_string().contains(RESPONSE_EXAMPLE) => {
                    None
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
        let created = accepted(
            "create issue",
            t.create_issue(&NewIssue {
                title: "Gitaly migration".into(),
                body: "body <!-- shepherd:{} -->".into(),
                labels: vec!["Migration".into(), "feature flag".into()],
            })
            .await,
        );
        let n = created.map(|i| i.number).unwrap_or(1347);
        accepted("get issue", t.issue(n).await);
        accepted(
            "list open issues by labels",
            t.list_issues(
                StateFilter::Open,
                &["Migration".into(), "feature flag".into()],
            )
            .await,
        );
        accepted(
            "list all issues",
            t.list_issues(StateFilter::All, &[]).await,
        );
        accepted("update body", t.update_body(n, "ticked").await);
        accepted(
            "move a stage",
            t.edit_labels(
                n,
                &["Migration".into(), "Selection".into()],
                &["Migration Analysis".into()],
                &["Selection".into()],
            )
            .await,
        );
        accepted("close", t.set_open(n, false).await);
        accepted("reopen", t.set_open(n, true).await);
        accepted(
            "move and close in one request",
            t.edit_issue(
                n,
                &IssueEdit {
                    current: vec!["Migration".into(), "Selection".into()],
                    add: vec!["Shelved".into()],
                    remove: vec!["Selection".into()],
                    open: Some(false),
                },
            )
            .await,
        );
        let since = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for _ in 0..2 {
            // The second time, a conditional request (when Prism sent an ETag).
            accepted(
                "list changed issues",
                t.list_issues_since(StateFilter::All, &["Migration".into()], since)
                    .await,
            );
        }
        accepted("delete a comment", t.delete_comment(n, 42).await);
        accepted("list comments", t.comments(n).await);
        accepted(
            "comment",
            t.add_comment(n, "moved <!-- shepherd:transition=1 {} -->")
                .await,
        );
        let events = accepted("timeline", t.label_events(n).await);
        assert!(
            events.is_some(),
            "the timeline is read item by item and never fails on an example"
        );
        accepted(
            "labels",
            t.ensure_labels(&[LabelSpec {
                name: "shepherd-contract-test".into(),
                color: "#1f78d1".into(),
                description: "made by the contract test".into(),
            }])
            .await,
        );
        accepted("sub-issues", t.children(n).await);
        accepted("add a sub-issue", t.link(n, n + 1).await);
        // Another issue's timeline: this one's was read for its labels moments ago, and
        // would serve the pull requests without a request.
        accepted("pull requests of an issue", t.merge_requests(n + 1).await);
        accepted(
            "a pull request",
            tracker.pull_request("octo-org/gitaly", 1347).await,
        );
        accepted("releases", t.releases(None).await);
        accepted(
            "releases of another repository",
            t.releases(Some("octo-org/gitaly")).await,
        );
    });
    // A control: one request the description forbids must be caught, or this test proves
    // nothing.
    let control = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(stream, "GET /repos/octo-org/migrations/issues?state=shepherd-control HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token x\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(control.starts_with("HTTP/1.1 422"), "{control}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(_prism);
    let violations = violations.join().unwrap();
    let (expected, unexpected): (Vec<String>, Vec<String>) = violations
        .into_iter()
        // The example of a pull request breaks its own schema (see `accepted`).
        .filter(|l| !(l.contains("/pulls/1347") && l.contains(RESPONSE_EXAMPLE)))
        .partition(|l| l.contains("query parameter state"));
    assert!(
        !expected.is_empty(),
        "Prism's log shows the control's violation"
    );
    assert!(
        unexpected.is_empty(),
        "Prism reported:\n{}",
        unexpected.join("\n")
    );
}

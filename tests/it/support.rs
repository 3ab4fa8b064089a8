//! A small builder around the real binary: each `Shepherd` works in its own temporary
//! directory with its own tracker file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use shepherd::tracker::local::LocalTracker;
use shepherd::tracker::{Comment, Issue, StateFilter, Tracker};

pub const T0: &str = "2026-01-01T00:00:00Z";

pub struct Shepherd {
    pub dir: tempfile::TempDir,
}

impl Shepherd {
    pub fn new() -> Shepherd {
        Shepherd {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("tracker.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs shepherd with `args` on this directory's tracker.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("shepherd runs")
    }

    /// The command `run` runs, to start it in the background.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shepherd"));
        cmd.current_dir(self.dir.path())
            .env_remove("SHEPHERD_TRACKER")
            .env("USER", "tester")
            .arg("--tracker")
            .arg(format!("local:{}", self.db().display()))
            .args(args);
        cmd
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "shepherd {args:?} failed ({:?}):\n{}{}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs with `--format json`, expects success, parses the one document on stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        let text = self.ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("shepherd {args:?} printed no single JSON document ({e}):\n{text}")
        })
    }

    /// Runs and expects exit code 1; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "shepherd {args:?} should fail with 1:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(err.contains("error"), "no error message: {err}");
        err
    }

    pub fn tracker(&self) -> LocalTracker {
        LocalTracker::open(&self.db(), false, None, "test").expect("the tracker opens")
    }

    pub fn comments(&self, number: u64) -> Vec<Comment> {
        block_on(self.tracker().comments(number)).expect("comments")
    }

    pub fn issues(&self) -> Vec<Issue> {
        block_on(self.tracker().list_issues(StateFilter::All, &[])).expect("issues")
    }

    pub fn issue(&self, number: u64) -> Issue {
        block_on(self.tracker().issue(number)).expect("issue")
    }

    /// Ticks every open item under `section` of `number` (or its child `child`).
    pub fn tick_section(&self, number: u64, child: Option<&str>, section: &str, now: &str) {
        let target = match child {
            None => number,
            Some(t) => self.child_of(number, t),
        };
        let items = shepherd::core::checklist::parse(&self.issue(target).body);
        let mut count = 0;
        let n = number.to_string();
        for item in items.iter().filter(|i| i.in_section(section) && !i.done()) {
            let mut args = vec![
                "tick",
                n.as_str(),
                item.text.as_str(),
                "--section",
                section,
                "--now",
                now,
            ];
            if let Some(t) = child {
                args.extend(["--child", t]);
            }
            self.ok(&args);
            count += 1;
        }
        assert!(count > 0, "no open items under {section:?} of #{target}");
    }

    /// The newest child of `number` made from `template`.
    pub fn child_of(&self, number: u64, template: &str) -> u64 {
        let status = self.json(&["status", &number.to_string()]);
        status["children"]
            .as_array()
            .expect("children")
            .iter()
            .filter(|c| c["template"] == template)
            .map(|c| c["ref"].as_u64().expect("ref"))
            .max()
            .unwrap_or_else(|| panic!("#{number} has no {template} child: {status}"))
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A file in `tests/fixtures/` (third-party documents and seeds; origin in its README).
pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// `T0` plus a duration written like `90m`, as RFC 3339.
pub fn at(offset: &str) -> String {
    let base = chrono::DateTime::parse_from_rfc3339(T0).expect("T0");
    let d = shepherd::core::duration::parse(offset).expect("an offset");
    (base + d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub const GITALY_VARS: &[&str] = &[
    "--var",
    "feature_flag=GITALY_FIND_COMMIT",
    "--var",
    "grpc_service=CommitService",
    "--var",
    "grpc_method=FindCommit",
    "--var",
    "gitaly_version=v1.2.3",
    "--var",
    "gitlab_version=v11.4",
];

/// Starts a gitaly-migration at `now`; returns its number.
pub fn start_gitaly(s: &Shepherd, now: &str) -> u64 {
    let mut args = vec!["start", "gitaly-migration", "--now", now];
    args.extend(GITALY_VARS);
    let started = s.json(&args);
    assert_eq!(started["workflow"], "gitaly-migration");
    assert_eq!(started["stage"], "selection");
    started["ref"].as_u64().expect("ref")
}

/// The moves an `advance` JSON reports, as `from>to`.
pub fn moves(v: &Value) -> Vec<String> {
    v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}>{}",
                t["from"].as_str().unwrap_or("-"),
                t["to"].as_str().unwrap()
            )
        })
        .collect()
}

/// The migrations a `reconcile` JSON reports as moved.
pub fn moved(r: &Value) -> Vec<u64> {
    r["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["transitions"].as_array().unwrap().is_empty())
        .map(|m| m["ref"].as_u64().unwrap())
        .collect()
}

/// The issue numbers of the requests `paths` whose path ends `/N/{what}`, sorted (an issue
/// asked twice is there twice).
pub fn issues_asked<'a>(paths: impl Iterator<Item = &'a str>, what: &str) -> Vec<u64> {
    let suffix = format!("/{what}");
    let mut issues: Vec<u64> = paths
        .filter(|p| p.ends_with(&suffix))
        .filter_map(|p| p.split('/').rev().nth(1)?.parse().ok())
        .collect();
    issues.sort();
    issues
}

/// What blocks an `advance`, as `gate: detail`.
pub fn blocked(v: &Value) -> Vec<String> {
    v["blocked_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            format!(
                "{}: {}",
                b["gate"].as_str().unwrap(),
                b["detail"].as_str().unwrap()
            )
        })
        .collect()
}

/// The sections of a gitaly-migration's tracking issue from Selection to Ready for Testing.
pub const TO_ACCEPTANCE_TESTING: [&str; 6] = [
    "Selection",
    "Migration Analysis",
    "RPC Design",
    "Server Implementation",
    "Client Implementation",
    "Ready for Testing",
];

/// Fails if two comments carry the same shepherd marker (a duplicate audit or action).
pub fn assert_no_duplicate_markers<'a>(bodies: impl Iterator<Item = &'a str>) {
    let mut markers: Vec<&str> = bodies
        .filter_map(|b| {
            b.rsplit_once("<!-- shepherd:")
                .map(|(_, m)| m.split(' ').next().unwrap())
                // Pauses and resumes are a person's, as often as they like.
                .filter(|m| *m != "pause")
        })
        .collect();
    markers.sort();
    let all = markers.clone();
    markers.dedup();
    assert_eq!(markers.len(), all.len(), "no duplicate comment: {all:?}");
}

/// The program `name` on `PATH`, for a test that needs a tool outside Rust (`why` says
/// what for). Without it the test is skipped with one line saying so, unless `CI` is set:
/// CI installs every tool (`.ci/run`), so there a missing one fails the test.
pub fn tool(test: &str, name: &str, why: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let message = format!("skipped {test}: `{name}` is not installed ({why})");
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}, and CI is set, so it is required"
        );
        println!("{message}");
    }
    found
}

/// Runs headless Chromium on `url` with `args`; returns (stdout, console lines).
pub fn headless(chromium: &Path, url: &str, args: &[&str]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

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

/// Runs `work` to completion on a runtime and thread of its own, so that it may be called
/// from sync code and from inside another runtime alike.
pub fn block_on_apart<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || block_on(work))
        .join()
        .expect("the helper thread")
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

pub use crate::seeds::GITALY_VARS;

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

/// Writes workflow `name` (`yaml`) into `dir/workflows/` and each of `templates`, as
/// (name, text), into `dir/templates/NAME.md.hbs`.
pub fn write_workflow(dir: &Path, name: &str, yaml: &str, templates: &[(&str, &str)]) {
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join(format!("workflows/{name}.yaml")), yaml).unwrap();
    for (template, text) in templates {
        std::fs::write(dir.join(format!("templates/{template}.md.hbs")), text).unwrap();
    }
}

/// `schema-change`: draft (checklist *Plan*) → review (target 2d, then `review`'s lines)
/// → verify (`verify`'s lines) → done, each left by ticking its section of
/// `SCHEMA_CHANGE_TEMPLATE`.
pub fn schema_change_workflow(review: &str, verify: &str) -> String {
    format!(
        r#"
name: schema-change
tracking: {{template: schema-change}}
stages:
  - id: draft
    label: "sc::draft"
    gates: [{{checklist: {{section: Plan}}}}]
    next: review
  - id: review
    label: "sc::review"
    target: 2d
{review}    gates: [{{checklist: {{section: Review}}}}]
    next: verify
  - id: verify
    label: "sc::verify"
{verify}    gates: [{{checklist: {{section: Verify}}}}]
    next: done
  - id: done
    label: "sc::done"
    terminal: true
"#
    )
}

/// The tracking issue of `schema_change_workflow`: one box under each stage's section.
pub const SCHEMA_CHANGE_TEMPLATE: &str =
    "---\ntitle: \"Schema change\"\n---\n## Plan\n- [ ] Write it\n\n## Review\n- [ ] Review it\n\n## Verify\n- [ ] Verify it\n";

/// What a `reconcile` JSON `r` reports of migration `n`.
pub fn run_of(r: &Value, n: u64) -> &Value {
    r["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ref"] == n)
        .unwrap_or_else(|| panic!("#{n} is not in {r}"))
}

/// The keys every migration has in `status REF` and in the report's JSON.
pub const STATUS_KEYS: [&str; 10] = [
    "ref",
    "title",
    "url",
    "workflow",
    "stage",
    "label",
    "state",
    "entered_at",
    "gates",
    "children",
];

/// A screenshot of `url`, 1280 pixels wide and `height` high, into
/// target/test-output/`name`, for a person to look at: it must be a picture of at least
/// `min_bytes`, not a blank page, and the console must stay silent.
pub fn screenshot(chromium: &Path, url: &str, name: &str, height: u32, min_bytes: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join(name);
    let _ = std::fs::remove_file(&png);
    let (_, console) = headless(
        chromium,
        url,
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size=1280,{height}"),
            "--hide-scrollbars",
        ],
    );
    assert!(console.is_empty(), "{console:#?}");
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > min_bytes,
        "a real picture, not a blank page: {} bytes",
        bytes.len()
    );
}

//! One harness for shepherd on a remote tracker's test server: the real binary with the
//! tracker, its URL flag and its token variable; and the steps the GitLab and GitHub tests
//! share when they call the tracker API directly (timeouts, errors without tokens, waits
//! announced).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use shepherd::tracker::retry::Policy;
use shepherd::tracker::TrackerError;

use crate::api::Api;
use crate::support::{block_on, moved, stderr, stdout, GITALY_VARS, TO_ACCEPTANCE_TESTING};
use crate::test_server::MrState;

pub struct Remote<S: Api> {
    pub server: S,
    dir: tempfile::TempDir,
    tracker: String,
    url_flag: &'static str,
    token_var: &'static str,
    bot: &'static str,
    /// `SHEPHERD_CACHE` for every run: `off` (a full, fresh read) unless `cached`.
    cache: &'static str,
}

impl<S: Api> Remote<S> {
    pub fn new(
        server: S,
        tracker: &str,
        url_flag: &'static str,
        token_var: &'static str,
        bot: &'static str,
    ) -> Remote<S> {
        Remote {
            server,
            dir: tempfile::tempdir().unwrap(),
            tracker: tracker.to_string(),
            url_flag,
            token_var,
            bot,
            cache: "off",
        }
    }

    /// Runs as in production: the engine's shortcuts and the Store's cache on (for tests
    /// that count what a run reads; the test server's `travel` must not be used).
    pub fn cached(mut self) -> Remote<S> {
        self.cache = "on";
        self
    }

    pub fn run_as(&self, token: &str, args: &[&str]) -> Output {
        self.run_with(token, &[], args)
    }

    /// Runs with extra environment variables.
    pub fn run_with(&self, token: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_shepherd"))
            .current_dir(self.dir.path())
            .envs(env.iter().copied())
            .env_remove("SHEPHERD_TRACKER")
            .env(self.token_var, token)
            .env("SHEPHERD_RETRY_BASE_MS", "10")
            // The test servers' `travel` rewrites recorded times, which the Store's cache
            // of comments and label history could not know: read everything each run
            // (`off`, the run every shortcut is compared against), unless `cached`.
            // (A test that means the cache gives `SHEPHERD_CACHE` itself.)
            .env("SHEPHERD_CACHE", self.cache)
            .envs(env.iter().copied())
            .args(["--tracker", &self.tracker, self.url_flag, self.server.url()])
            .args(args)
            .output()
            .unwrap()
    }

    /// `reconcile --format json` as `token`, with the Store's cache on: what a scheduled
    /// poll does.
    pub fn reconcile_cached(&self, token: &str) -> Value {
        let out = self.run_with(
            token,
            &[("SHEPHERD_CACHE", "on")],
            &["reconcile", "--format", "json"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    }

    pub fn ok_as(&self, token: &str, args: &[&str]) -> String {
        let out = self.run_as(token, args);
        assert!(
            out.status.success(),
            "shepherd {args:?} failed:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs as the bot with `--format json`.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        serde_json::from_str(&self.ok_as(self.bot, &args)).unwrap()
    }

    /// Starts a gitaly-migration; returns its number.
    pub fn start(&self) -> u64 {
        let mut args = vec!["start", "gitaly-migration"];
        args.extend(GITALY_VARS);
        self.json(&args)["ref"].as_u64().unwrap()
    }

    /// Ticks every open item under `section` of issue `n`, as the bot.
    pub fn tick_section(&self, n: u64, section: &str) {
        let body = self.server.body(n);
        let t = n.to_string();
        for item in shepherd::core::checklist::parse(&body)
            .iter()
            .filter(|i| i.in_section(section) && !i.done())
        {
            self.ok_as(self.bot, &["tick", &t, &item.text, "--section", section]);
        }
    }

    /// Ticks every section a gitaly-migration needs to reach Acceptance Testing.
    pub fn tick_through_ready_for_testing(&self, n: u64) {
        for section in TO_ACCEPTANCE_TESTING {
            self.tick_section(n, section);
        }
    }

    pub fn advance(&self, n: u64) -> Value {
        self.json(&["advance", &n.to_string()])
    }

    pub fn labels(&self, n: u64) -> Vec<String> {
        self.server.label_names(n)
    }

    /// The issues whose `read` (the last part of a request's path: `timeline`,
    /// `related_merge_requests`) was asked since the log was cleared, sorted.
    pub fn issues_read(&self, read: &str) -> Vec<u64> {
        let paths = self.server.paths();
        crate::support::issues_asked(paths.iter().map(String::as_str), read)
    }

    /// Ten gitaly migrations in RPC Design (#1 to #10), the first five with an open merge
    /// request in gitaly-proto, and two polls with the Store's cache where nothing
    /// happens: the first reads each migration's merge requests (`read`, as in
    /// `issues_read`), the second none of them, and gitaly-proto's changes once (a
    /// request whose path ends with `/{feed}`).
    pub fn idle_twice_in_rpc_design(&self, read: &str, feed: &str) {
        let catalog = shepherd::catalog::Sources::builtin()
            .load()
            .expect("the built-in catalogue");
        for i in 1..=10u64 {
            let body = crate::api::gitaly_body(&catalog, i, crate::api::gitaly_vars());
            let labels = ["Migration", "Conversation", "RPC Design"];
            assert_eq!(self.server.seed_issue(&format!("m{i}"), &body, &labels), i);
            if i <= 5 {
                self.server
                    .add_merge_request(i, GITALY_PROTO, MrState::Open, None);
            }
        }
        self.server.forget_requests();
        let r = self.reconcile_cached(self.bot);
        assert!(moved(&r).is_empty(), "{r}");
        assert_eq!(self.issues_read(read), (1..=10).collect::<Vec<_>>());

        self.server.forget_requests();
        let r = self.reconcile_cached(self.bot);
        assert!(moved(&r).is_empty(), "{r}");
        assert_eq!(
            self.issues_read(read),
            [0u64; 0],
            "nothing changed: no migration read"
        );
        let feed = format!("/{feed}");
        let changes = self.server.paths();
        let changes = changes
            .iter()
            // GitLab spells the project `gitlab-org%2Fgitaly-proto` in its paths.
            .filter(|p| p.ends_with(&feed) && p.contains("gitaly-proto"))
            .count();
        assert_eq!(changes, 1, "gitaly-proto's changes, once");
    }

    /// After `idle_twice_in_rpc_design`: gitaly-proto's merge request of #3 is merged, and
    /// a new one, merged, references #7; the next poll moves exactly those two. Returns the
    /// issues it read (`issues_read(read)`).
    pub fn merged_in_rpc_design(&self, read: &str) -> Vec<u64> {
        let now = chrono::Utc::now();
        self.server
            .set_merge_request(GITALY_PROTO, 3, MrState::Merged, Some(now));
        self.server
            .add_merge_request(7, GITALY_PROTO, MrState::Merged, Some(now));
        self.server.forget_requests();
        let r = self.reconcile_cached(self.bot);
        assert_eq!(moved(&r), [3, 7], "{r}");
        self.issues_read(read)
    }
}

/// The project the RPC Design stage's merge requests are in.
const GITALY_PROTO: &str = "gitlab-org/gitaly-proto";

/// Tracker settings for tests through the tracker API: a short request timeout and quick
/// retries.
pub fn quick_policy() -> Policy {
    Policy {
        attempts: 3,
        min_delay: Duration::from_millis(10),
        timeout: Duration::from_secs(2),
        ..Policy::default()
    }
}

/// Runs `call` on a runtime of its own and checks that it fails within `limit`, with an
/// error that does not show `token`; returns the error's text.
pub fn fails_within<T>(
    limit: Duration,
    token: &str,
    call: impl std::future::Future<Output = Result<T, TrackerError>>,
) -> String {
    let started = Instant::now();
    let result = block_on(call);
    let took = started.elapsed();
    let Err(err) = result else {
        panic!("the call succeeded; it should have failed")
    };
    let err = err.to_string();
    assert!(
        took < limit,
        "failed after {took:?}, not within {limit:?}: {err}"
    );
    assert!(!err.contains(token), "the token is in the error: {err}");
    err
}

/// The stderr of a run, checked to hold no token.
pub fn stderr_without(out: &Output, token: &str) -> String {
    let err = stderr(out);
    assert!(
        !err.contains(token) && !stdout(out).contains(token),
        "{err}"
    );
    err
}

/// A line that announces a wait: `… waiting 11 s, until 14:05:10 local time`.
pub fn announced_wait(stderr: &str, why: &str) -> bool {
    stderr.lines().any(|l| {
        l.strip_prefix(why)
            .and_then(|rest| rest.strip_prefix(": waiting "))
            .and_then(|rest| rest.split_once(", until "))
            .is_some_and(|(_, until)| {
                until.ends_with(" local time")
                    && until
                        .get(..8)
                        .is_some_and(|t| chrono::NaiveTime::parse_from_str(t, "%H:%M:%S").is_ok())
            })
    })
}

//! One harness for shepherd on a remote tracker's test server: the real binary with the
//! tracker, its URL flag and its token variable; and the steps the GitLab and GitHub tests
//! share when they call the tracker API directly (timeouts, errors without tokens, waits
//! announced).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use shepherd::http::retry::Policy;
use shepherd::tracker::TrackerError;

use crate::api::Api;
use crate::support::{assert_no_duplicate_markers, block_on, moved, moves, stderr, stdout};
use crate::support::{GITALY_VARS, TO_ACCEPTANCE_TESTING};
use crate::test_server::{Fault, MrState};

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

    /// The bot's token: who runs shepherd.
    pub fn bot(&self) -> &'static str {
        self.bot
    }

    pub fn run_as(&self, token: &str, args: &[&str]) -> Output {
        self.run_with(token, &[], args)
    }

    /// Runs with extra environment variables.
    pub fn run_with(&self, token: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.command(token, env, args).output().unwrap()
    }

    /// The directory each run works in (its `workflows/` and `templates/` override the
    /// built-in ones; its `.shepherd/` holds the Store).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The command `run_with` runs, for a test that starts it itself (and kills it).
    pub fn command(&self, token: &str, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shepherd"));
        command
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
            .args(args);
        command
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

    /// Runs as `token` and expects success; returns stdout.
    pub fn ok_as(&self, token: &str, args: &[&str]) -> String {
        let out = self.run_as(token, args);
        let (printed, err) = (stdout(&out), stderr(&out));
        assert!(
            out.status.success(),
            "shepherd {args:?} failed:\n{printed}{err}"
        );
        printed
    }

    /// Runs as the bot with `--format json`.
    pub fn json(&self, args: &[&str]) -> Value {
        let args = [args, &["--format", "json"]].concat();
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

impl<S: Api> Remote<S> {
    /// DESIGN §11, freshness proven: everything within one second of the tracker's clock.
    /// `other` (who may not approve) adds `dba-approved`; an `advance` through the Store's
    /// cache reads the label history and names them; `other` takes the label off and
    /// `approver` (whose login is `approver_login`) puts it on. `status` and `advance`
    /// through the cache see the approval. Where `updated_at` has whole seconds
    /// (`whole_seconds`), the history read within that second is read again at every look
    /// until one is made two seconds on, and kept from then; with milliseconds, each write
    /// changed `updated_at`, and the first read after them is kept. `history` is the end of
    /// the label history's path (`timeline`, `resource_label_events`).
    pub fn approval_within_one_second(
        &self,
        other: &str,
        approver: &str,
        approver_login: &str,
        history: &str,
        whole_seconds: bool,
    ) {
        std::fs::create_dir_all(self.dir.path().join("workflows")).unwrap();
        std::fs::create_dir_all(self.dir.path().join("templates")).unwrap();
        std::fs::write(
            self.dir.path().join("workflows/review.yaml"),
            REVIEW.replace("APPROVER", approver_login),
        )
        .unwrap();
        std::fs::write(
            self.dir.path().join("templates/review.md.hbs"),
            "---\ntitle: \"A schema change\"\n---\nWaits for a DBA.\n",
        )
        .unwrap();
        let dirs = ["--workflows", "workflows", "--templates", "templates"];
        let cached = |token: &str, args: &[&str]| -> Value {
            let all: Vec<&str> = dirs
                .iter()
                .chain(args)
                .copied()
                .chain(["--format", "json"])
                .collect();
            let out = self.run_with(token, &[("SHEPHERD_CACHE", "on")], &all);
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            serde_json::from_str(&stdout(&out)).unwrap()
        };
        let label = |token: &str, change: &str, n: &str| {
            let all: Vec<&str> = dirs
                .iter()
                .copied()
                .chain(["label", n, change, "dba-approved"])
                .collect();
            self.ok_as(token, &all);
        };
        let approval = |v: &Value, key: &str| -> (bool, String) {
            let gate = &v[key][0];
            assert_eq!(gate["gate"], "approval", "{v}");
            (
                gate["passed"].as_bool().unwrap(),
                gate["detail"].as_str().unwrap().to_string(),
            )
        };

        let second = chrono::Utc::now();
        self.server.hold_clock(Some(second));
        let n = cached(self.bot, &["start", "review"])["ref"]
            .as_u64()
            .unwrap();
        let n = &n.to_string();
        label(other, "--add", n);
        let v = cached(self.bot, &["advance", n]);
        let (passed, detail) = approval(&v, "blocked_by");
        assert!(!passed && detail.contains("who may not approve"), "{v}");

        label(other, "--remove", n);
        label(approver, "--add", n);
        self.server.forget_requests();
        let v = cached(self.bot, &["status", n]);
        assert_eq!(
            approval(&v, "gates"),
            (true, format!("approved by {approver_login}")),
            "{v}"
        );
        assert_eq!(self.history_reads(history), 1, "the history is read again");

        // Still within that second: read again, or kept where each write showed.
        self.server.forget_requests();
        cached(self.bot, &["status", n]);
        let again = usize::from(whole_seconds);
        assert_eq!(
            self.history_reads(history),
            again,
            "a read within its second"
        );
        // Two seconds on: read once more, and final from then.
        self.server
            .hold_clock(Some(second + chrono::Duration::seconds(2)));
        self.server.forget_requests();
        cached(self.bot, &["status", n]);
        assert_eq!(
            self.history_reads(history),
            again,
            "the read two seconds on"
        );
        self.server.forget_requests();
        let v = cached(self.bot, &["status", n]);
        assert_eq!(self.history_reads(history), 0, "final: kept");
        assert!(approval(&v, "gates").0, "{v}");

        let v = cached(self.bot, &["advance", n]);
        assert_eq!(crate::support::moves(&v), ["review>done"], "{v}");
        self.server.hold_clock(None);
    }

    /// How many label-history reads (requests whose path ends with `/{history}`) were sent
    /// since the log was cleared.
    fn history_reads(&self, history: &str) -> usize {
        let end = format!("/{history}");
        self.server
            .paths()
            .iter()
            .filter(|p| p.ends_with(&end))
            .count()
    }
}

/// The scenarios the GitLab and GitHub tests share: the same behaviour on either tracker,
/// written once; the tracker's own checks stay in its tests.
impl<S: Api> Remote<S> {
    /// A gitaly migration started and ticked through Ready for Testing, then advanced: six
    /// moves into Acceptance Testing, the first run of which opens a child. Returns the
    /// migration and the advance's JSON (its `created[0]` is the child); the log holds the
    /// advance's requests.
    pub fn started_into_acceptance_testing(&self) -> (u64, Value) {
        let n = self.start();
        assert_eq!(self.labels(n), ["Migration", "Conversation", "Selection"]);
        self.tick_through_ready_for_testing(n);
        self.server.forget_requests();
        let v = self.advance(n);
        assert_eq!(moves(&v).len(), 6, "{v}");
        assert_eq!(v["stage"], "acceptance-testing", "{v}");
        (n, v)
    }

    /// The acceptance-testing child `c`, from its first ticks to complete: each soak time
    /// waited with the server's clock moved instead of `--now`; the completed child is
    /// closed.
    pub fn child_to_complete(&self, c: u64) {
        for section in ["1. Preparation", "2. Development Trial", "3. Staging Trial"] {
            self.tick_section(c, section);
        }
        let v = self.advance(c);
        assert_eq!(
            moves(&v),
            [
                "preparation>development-trial",
                "development-trial>staging-trial"
            ]
        );
        let soak = v["blocked_by"][0]["detail"].as_str().unwrap();
        assert!(soak.starts_with("soak: "), "{v}");
        self.server.travel(chrono::Duration::minutes(16));
        assert_eq!(
            moves(&self.advance(c)),
            ["staging-trial>production-version-check"]
        );
        for (section, soak) in [
            ("4. Production", 0),
            ("5. Initial Impact", 16),
            ("6. Low Impact", 121),
            ("7. Mid Impact", 24 * 60 + 1),
            ("8. Full Impact", 7 * 24 * 60 + 1),
        ] {
            self.tick_section(c, section);
            self.advance(c);
            self.server.travel(chrono::Duration::minutes(soak));
        }
        let r = self.json(&["reconcile"]);
        let migrations = r["migrations"].as_array().unwrap();
        let complete = |m: &Value| m["ref"] == c && m["stage"] == "complete";
        assert!(migrations.iter().any(complete), "{r}");
        assert_eq!(self.server.issue_state(c), "closed");
    }

    /// Two reconciles where nothing can move write nothing.
    pub fn reconcile_twice_writes_nothing(&self) {
        self.server.forget_requests();
        self.json(&["reconcile"]);
        self.json(&["reconcile"]);
        assert_eq!(
            self.server.writes(),
            Vec::<String>::new(),
            "reconcile twice writes nothing"
        );
    }

    /// Back to Ready for Testing with the checklists kept, for `reason`, and resumed (a
    /// rollback pauses the migration): it moves on again, on the same ticks.
    pub fn again_from_ready_for_testing(&self, n: u64, reason: &str) {
        let n = &n.to_string();
        self.ok_as(
            self.bot,
            &[
                "rollback",
                n,
                "--to",
                "ready-for-testing",
                "--reason",
                reason,
                "--keep-checklists",
            ],
        );
        self.ok_as(self.bot, &["resume", n]);
    }

    /// Each of `faults` in turn (migration `n` in Ready for Testing, its sections ticked):
    /// with the fault in place, `advance` stops halfway and fails; without it, the next
    /// completes the move into Acceptance Testing with no comment twice, and `check` sees
    /// the children whole. Then back to Ready for Testing for the next fault.
    pub fn lost_halfway_is_completed(&self, n: u64, faults: Vec<Fault>, check: impl Fn(&S)) {
        for fault in faults {
            self.server.fail(fault);
            let out = self.run_as(self.bot, &["advance", &n.to_string()]);
            assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
            self.server.clear_faults();
            let v = self.advance(n);
            assert_eq!(v["stage"], "acceptance-testing", "{v}");
            check(&self.server);
            let comments = self.server.comment_bodies(n);
            assert_no_duplicate_markers(comments.iter().map(String::as_str));
            self.again_from_ready_for_testing(n, "again");
        }
    }

    /// Starts a feature-flag rollout as the bot with `vars` (`name=value`); its number.
    pub fn start_rollout(&self, vars: &[&str]) -> u64 {
        let mut args = vec!["start", "feature-flag-rollout"];
        args.extend(vars.iter().flat_map(|v| ["--var", v]));
        args.extend(["--format", "json"]);
        let out = self.run_as(self.bot, &args);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["ref"].as_u64().unwrap()
    }

    /// `status` of `n`, whose first request (the issue) is answered 429 with `Retry-After:
    /// 1`, then as `faults` say: the run waits that second, asks again, and succeeds.
    /// Returns the statuses the issue's requests were answered with.
    pub fn status_after_a_429(&self, n: u64, faults: Vec<Fault>) -> Vec<u16> {
        let issue = format!("/issues/{n}");
        self.server
            .fail(Fault::status("GET", &issue, 429, Some(1), 1));
        faults.into_iter().for_each(|f| self.server.fail(f));
        self.server.forget_requests();
        let started = Instant::now();
        self.ok_as(self.bot, &["status", &n.to_string()]);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(1), "Retry-After: 1 honoured");
        self.server.answers(&issue)
    }

    /// `status` of `n`, which fails (exit 1): its stderr, which shows no token.
    pub fn status_fails(&self, n: u64) -> String {
        let out = self.run_as(self.bot, &["status", &n.to_string()]);
        assert_eq!(out.status.code(), Some(1));
        stderr_without(&out, self.bot)
    }
}

/// A run against a real tracker (`tracker` `github` or `gitlab`), only with `project_var`
/// (the project: `OWNER/REPO`, `GROUP/PROJECT`) and `token_var` set: a feature-flag
/// rollout started, its status read, closed.
pub fn live(tracker: &str, project_var: &str, token_var: &str) {
    let (Ok(project), Ok(_)) = (std::env::var(project_var), std::env::var(token_var)) else {
        println!("skipped live_{tracker}: set {project_var} and {token_var} to run it");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tracker = format!("{tracker}:{project}");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_shepherd"))
            .current_dir(dir.path())
            .args(["--tracker", &tracker, "--format", "json"])
            .args(args)
            .output()
            .unwrap()
    };
    let flag = "feature_flag=shepherd_live_test";
    let out = run(&["start", "feature-flag-rollout", "--var", flag]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = v["ref"].as_u64().unwrap().to_string();
    assert!(run(&["status", &n]).status.success());
    assert!(run(&["close", &n]).status.success());
}

/// A workflow with one stage that waits for an approval by APPROVER.
pub(crate) const REVIEW: &str = "name: review
description: A schema change, approved by a DBA
tracking:
  template: review
  labels: [schema-change]
stages:
  - id: review
    label: \"review::waiting\"
    gates:
      - approval: {label: dba-approved, by: [APPROVER]}
    next: done
  - id: done
    label: \"review::done\"
    terminal: true
";

/// The project the RPC Design stage's merge requests are in.
const GITALY_PROTO: &str = "gitlab-org/gitaly-proto";

/// Tracker settings for tests through the tracker API: a short request timeout and quick
/// retries.
impl<S: Api> Remote<S> {
    /// The rest of a Gitaly migration from Acceptance Testing, the same on every tracker:
    /// an approval by someone who may not approve (`mallory`'s token) does not count, a
    /// maintainer's (`jacob`'s) does; Opt-In and Opt-Out wait for the next minor release
    /// of GitLab (a patch does not count); Mandatory, ticked already, is done in the same
    /// advance; eleven transitions in all.
    pub fn acceptance_testing_to_done(&self, n: u64, mallory: &str, jacob: &str) {
        self.tick_section(n, "Acceptance Testing");
        self.ok_as(
            mallory,
            &["label", &n.to_string(), "--add", "Opt-In Approved"],
        );
        let v = self.advance(n);
        assert!(
            v["blocked_by"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("set by mallory, who may not approve"),
            "{v}"
        );
        self.ok_as(
            mallory,
            &["label", &n.to_string(), "--remove", "Opt-In Approved"],
        );
        self.ok_as(
            jacob,
            &["label", &n.to_string(), "--add", "Opt-In Approved"],
        );
        assert_eq!(moves(&self.advance(n)), ["acceptance-testing>opt-in"]);
        self.tick_section(n, "Opt-In");
        self.tick_section(n, "Opt-Out");
        self.tick_section(n, "Mandatory");
        // Opt-In waits for the next minor release of GitLab, however long that takes; a
        // patch release does not count.
        self.server.travel(chrono::Duration::days(31));
        let release = |tag: &str| {
            self.server.publish_release(
                "gitlab-org/gitlab",
                tag,
                chrono::Utc::now(),
                crate::test_server::ReleaseKind::Published,
            )
        };
        release("v17.2.3-ee");
        let v = self.advance(n);
        assert_eq!(moves(&v), Vec::<String>::new());
        assert!(
            v["blocked_by"][0]["detail"]
                .as_str()
                .unwrap()
                .starts_with("0 of 1 releases of gitlab-org/gitlab since "),
            "{v}"
        );
        release("v17.3.0-ee");
        assert_eq!(moves(&self.advance(n)), ["opt-in>opt-out"]);
        self.server.travel(chrono::Duration::days(31));
        release("v17.4.0-ee");
        // The Mandatory work was ticked already: done in the same advance.
        assert_eq!(
            moves(&self.advance(n)),
            ["opt-out>mandatory", "mandatory>done"]
        );
        assert_eq!(self.json(&["status", &n.to_string()])["state"], "completed");
        assert_eq!(
            self.json(&["history", &n.to_string()])["transitions"]
                .as_array()
                .unwrap()
                .len(),
            11
        );
    }
}

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

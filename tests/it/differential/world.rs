//! One world of a case: a tracker (the local tracker's file, or a GitLab or GitHub test
//! server of its own) with a directory for shepherd's Store, the workflow and templates of
//! `fixtures/`, and the real binary run in it — cached (`SHEPHERD_CACHE=on`, the Store
//! kept between runs, as in production) or as the oracle (`SHEPHERD_CACHE=off`). People
//! act as on the tracker itself: through shepherd's person commands with the cache off
//! (so no edit of theirs refreshes the cached world's copies), as `carol` (who may
//! approve), `mallory` (who may not) or `alice`; merge requests and time are the
//! server's own (the local tracker's `mr` and `clock advance`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::api::Api;
use crate::github_server::GitHubServer;
use crate::gitlab_server::GitLabServer;
use crate::test_server::{Fault, MrState};

use super::Kind;

const BOT: &str = "bot-token";
/// Every token a world knows, with its user.
pub const PEOPLE: [(&str, &str); 4] = [
    (BOT, "shepherd-bot"),
    ("carol-token", "carol"),
    ("mallory-token", "mallory"),
    ("alice-token", "alice"),
];
/// The project whose merge requests the build stage waits for.
pub const MR_PROJECT: &str = "acme/app";

pub enum Server {
    Local,
    Lab(GitLabServer),
    Hub(GitHubServer),
}

pub struct World {
    pub cached: bool,
    pub dir: tempfile::TempDir,
    pub server: Server,
    /// Merge requests opened, by migration issue number: (number, merged).
    pub mrs: Vec<(u64, u64, bool)>,
}

/// What a run or a person's command ended with.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// What a person's edit in the tracker ended with.
    pub fn edit(result: Result<(), String>) -> Ran {
        match result {
            Ok(()) => done(),
            Err(e) => Ran {
                code: Some(1),
                stdout: String::new(),
                stderr: e,
            },
        }
    }

    fn of(out: Output) -> Ran {
        // `SHEPHERD_DIFF_VERBOSE=1` with a replayed seed: what each run said.
        if std::env::var_os("SHEPHERD_DIFF_VERBOSE").is_some() {
            eprintln!(
                "      exit {:?}\n{}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl World {
    pub fn new(kind: Kind, cached: bool) -> World {
        let server = match kind {
            Kind::Local => Server::Local,
            Kind::GitLab => Server::Lab(GitLabServer::start(&PEOPLE)),
            Kind::GitHub => Server::Hub(GitHubServer::start(&PEOPLE)),
        };
        let world = World {
            cached,
            dir: tempfile::tempdir().unwrap(),
            server,
            mrs: Vec::new(),
        };
        let dir = world.dir.path();
        std::fs::create_dir_all(dir.join("workflows")).unwrap();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        let fixtures = [
            ("workflows/diff.yaml", include_str!("fixtures/diff.yaml")),
            (
                "templates/diff.md.hbs",
                include_str!("fixtures/diff.md.hbs"),
            ),
            (
                "templates/diff-rollout.md.hbs",
                include_str!("fixtures/diff-rollout.md.hbs"),
            ),
        ];
        for (path, text) in fixtures {
            std::fs::write(dir.join(path), text).unwrap();
        }
        match &world.server {
            Server::Local => {}
            Server::Lab(s) => s.add_project(MR_PROJECT),
            Server::Hub(s) => s.add_repo(MR_PROJECT),
        }
        if kind == Kind::Local {
            let out = world.person(BOT, &["clock", "set", crate::support::T0]);
            assert_eq!(out.code, Some(0), "{}", out.stderr);
        }
        world
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("tracker.db")
    }

    /// The real binary on this world's tracker as `token`'s user, the cache on or off.
    fn command(&self, token: &str, cache: bool, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_shepherd"));
        c.current_dir(self.dir.path())
            .env_remove("SHEPHERD_TRACKER")
            .env_remove("SHEPHERD_LOG")
            .env_remove("RUST_LOG")
            .env("SHEPHERD_CACHE", if cache { "on" } else { "off" })
            .env("SHEPHERD_RETRY_BASE_MS", "10")
            .stdin(Stdio::null());
        let user = PEOPLE.iter().find(|(t, _)| *t == token).unwrap().1;
        match &self.server {
            Server::Local => {
                c.env("USER", user)
                    .arg("--tracker")
                    .arg(format!("local:{}", self.db().display()));
            }
            Server::Lab(s) => {
                c.env("GITLAB_TOKEN", token).args([
                    "--tracker",
                    &format!("gitlab:{}", crate::gitlab_server::PROJECT),
                    "--gitlab-url",
                    &s.url,
                ]);
            }
            Server::Hub(s) => {
                let repo = format!(
                    "github:{}/{}",
                    crate::github_server::OWNER,
                    crate::github_server::REPO
                );
                c.env("GITHUB_TOKEN", token)
                    .args(["--tracker", &repo, "--github-url", &s.url]);
            }
        }
        c.args(args);
        c
    }

    /// A shepherd run (`advance`, `reconcile`, `start`) as the bot, with this world's cache.
    pub fn run(&self, args: &[&str]) -> Ran {
        Ran::of(self.command(BOT, self.cached, args).output().unwrap())
    }

    /// The same run, killed with SIGKILL `after` it started (unless it ended first). The
    /// server answers each request `latency` late meanwhile, so the kill lands mid-run.
    pub fn run_killed(&self, args: &[&str], after: Duration, latency: Duration) {
        self.latency(latency);
        let mut child = self
            .command(BOT, self.cached, args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let began = Instant::now();
        while began.elapsed() < after && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.kill();
        child.wait().unwrap();
        self.latency(Duration::ZERO);
    }

    /// `reconcile` (one migration at a time) and, `after` it, `advance n` (the servers
    /// answer `latency` late meanwhile, so the two overlap); both must end well. On a
    /// server, the first read of the comments of each of `others` answers 503 with
    /// `Retry-After: 1`, and the advance starts once reconcile is held there: reconcile
    /// then comes to `n` with the list's copy from before the advance moved it (a move
    /// another process made since the list, which must not be posted again).
    pub fn race(&self, n: u64, others: &[u64], after: Duration, latency: Duration) -> Ran {
        self.latency(latency);
        let comments = |o: u64| match &self.server {
            Server::Hub(_) => format!("/issues/{o}/comments"),
            _ => format!("/issues/{o}/notes"),
        };
        for &o in others {
            let fault = Fault::status("GET", &comments(o), 503, Some(1), 1);
            match &self.server {
                Server::Local => {}
                Server::Lab(s) => s.fail(fault),
                Server::Hub(s) => s.fail(fault),
            }
        }
        let number = n.to_string();
        let spawn = |args: &[&str]| {
            self.command(BOT, self.cached, args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let reconcile = spawn(&["reconcile", "--concurrency", "1", "--format", "json"]);
        std::thread::sleep(after);
        let held = |paths: Vec<String>| {
            others
                .iter()
                .any(|&o| paths.iter().any(|p| p.ends_with(&comments(o))))
        };
        let began = Instant::now();
        while !others.is_empty() && began.elapsed() < Duration::from_millis(800) {
            let asked = match &self.server {
                Server::Local => break,
                Server::Lab(s) => held(s.log().into_iter().map(|l| l.path).collect()),
                Server::Hub(s) => held(s.log().into_iter().map(|l| l.path).collect()),
            };
            if asked {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let advance = spawn(&["advance", &number, "--format", "json"]);
        let a = Ran::of(reconcile.wait_with_output().unwrap());
        let b = Ran::of(advance.wait_with_output().unwrap());
        self.latency(Duration::ZERO);
        match &self.server {
            Server::Local => {}
            Server::Lab(s) => s.shared_clear_faults(),
            Server::Hub(s) => s.clear_faults(),
        }
        Ran {
            code: a.code.max(b.code),
            stdout: a.stdout + &b.stdout,
            stderr: a.stderr + &b.stderr,
        }
    }

    /// The comments deleted so far (a run that lost a claim takes its audit comment back:
    /// it was posted for a move already made). Only the servers log requests.
    pub fn deleted_comments(&self) -> Vec<String> {
        let gone = |method: &str, path: &str| {
            method == "DELETE" && (path.contains("/notes/") || path.contains("/comments/"))
        };
        match &self.server {
            Server::Local => Vec::new(),
            Server::Lab(s) => s
                .log()
                .iter()
                .filter(|l| gone(&l.method, &l.path))
                .map(|l| l.path.clone())
                .collect(),
            Server::Hub(s) => s
                .log()
                .iter()
                .filter(|l| gone(&l.method, &l.path))
                .map(|l| l.path.clone())
                .collect(),
        }
    }

    /// A command with the cache off (the clock, the local tracker's merge requests).
    pub fn person(&self, token: &str, args: &[&str]) -> Ran {
        Ran::of(self.command(token, false, args).output().unwrap())
    }

    /// A person's shepherd command (`pause`, `resume`, `rollback`) as `name`, with this
    /// world's cache: a run like any other.
    pub fn shepherd_as(&self, name: &str, args: &[&str]) -> Ran {
        let token = PEOPLE.iter().find(|(_, u)| *u == name).unwrap().0;
        match self.server {
            Server::Local => {
                let mut all = vec!["--actor", name];
                all.extend(args);
                Ran::of(self.command(token, self.cached, &all).output().unwrap())
            }
            _ => Ran::of(self.command(token, self.cached, args).output().unwrap()),
        }
    }

    /// On GitHub, whose times have whole seconds, waits until the second of what was just
    /// done has passed. What people do in the second of a rollback cannot be told to come
    /// after it and does not count (DESIGN §11); without the wait, evidence given right
    /// after a rollback would count in a world whose steps happened to cross a second
    /// boundary between them and not in the other, and the worlds would part for a reason
    /// that is no cache's. (GitLab's times have milliseconds; the local tracker's clock
    /// moves only when told.)
    pub fn past_the_second(&self) {
        if let Server::Hub(_) = self.server {
            let into = Utc::now().timestamp_subsec_millis();
            std::thread::sleep(Duration::from_millis(u64::from(1000 - into.min(999)) + 20));
        }
    }

    /// A command as `name` with the cache off.
    pub fn person_as(&self, name: &str, args: &[&str]) -> Ran {
        let token = PEOPLE.iter().find(|(_, u)| *u == name).unwrap().0;
        match self.server {
            // The local tracker takes the person from `--actor`.
            Server::Local => {
                let mut all = vec!["--actor", name];
                all.extend(args);
                self.person(token, &all)
            }
            _ => self.person(token, args),
        }
    }

    fn latency(&self, d: Duration) {
        match &self.server {
            Server::Local => {}
            Server::Lab(s) => s.latency(d),
            Server::Hub(s) => s.latency(d),
        }
    }

    /// Two minutes pass: the local tracker's clock moves on; on a server every record
    /// moves two minutes into the past (shepherd reads the real clock there).
    pub fn pass_time(&self) {
        let d = chrono::Duration::minutes(2);
        match &self.server {
            Server::Local => {
                let out = self.person(BOT, &["clock", "advance", "2m"]);
                assert_eq!(out.code, Some(0), "{}", out.stderr);
            }
            Server::Lab(s) => s.travel(d),
            Server::Hub(s) => s.travel(d),
        }
    }

    /// Opens a merge request of `MR_PROJECT` referencing issue `issue`.
    pub fn mr_open(&mut self, issue: u64) -> Ran {
        let number = match &self.server {
            Server::Local => {
                let n = issue.to_string();
                let out = self.person_as(
                    "alice",
                    &[
                        "mr",
                        "open",
                        "--issue",
                        &n,
                        "--project",
                        MR_PROJECT,
                        "--format",
                        "json",
                    ],
                );
                if out.code != Some(0) {
                    return out;
                }
                let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
                v["number"].as_u64().unwrap()
            }
            Server::Lab(s) => s.add_merge_request(issue, MR_PROJECT, MrState::Open, None),
            Server::Hub(s) => Api::add_merge_request(s, issue, MR_PROJECT, MrState::Open, None),
        };
        self.mrs.push((issue, number, false));
        done()
    }

    /// Merges the newest open merge request referencing `issue`, if any.
    pub fn mr_merge(&mut self, issue: u64) -> Ran {
        let Some(i) = self
            .mrs
            .iter()
            .rposition(|(m, _, merged)| *m == issue && !merged)
        else {
            return done();
        };
        let number = self.mrs[i].1;
        self.mrs[i].2 = true;
        let now = Some(Utc::now());
        match &self.server {
            Server::Local => {
                let n = number.to_string();
                return self.person_as("alice", &["mr", "merge", &n, "--project", MR_PROJECT]);
            }
            Server::Lab(s) => s.set_merge_request(MR_PROJECT, number, MrState::Merged, now),
            Server::Hub(s) => s.set_pull_request(MR_PROJECT, number, MrState::Merged, now),
        }
        done()
    }
}

fn done() -> Ran {
    Ran {
        code: Some(0),
        stdout: String::new(),
        stderr: String::new(),
    }
}

//! A whole rollout of the shipped `gitaly-migration` workflow, at 1,000 and 3,000
//! migrations, on the project's GitLab and GitHub test servers with 20 ms added to every
//! response: requests and wall time of `shepherd reconcile` (the real binary, as a user
//! runs it, with one Store kept between the steps as a CI cache would keep it) against a
//! straightforward python-gitlab / PyGithub script doing the same job
//! (`benches/python/`), and against the lower bound.
//!
//! The steps: two idle polls (nothing can move), 10% of the migrations ready to move
//! (their current section ticked through the server's API, as a person would), 10% entering
//! Acceptance Testing (which opens an `acceptance-testing` child), soaks expiring (both
//! clients run under `faketime +31d`, so `min_duration` gates hold), and
//! `report --format json`. shepherd and the script each run on their own server, seeded
//! identically and ticked alike; after every step both servers must hold the same number
//! of issues in every stage, or the benchmark fails.
//!
//! The benchmark makes its own virtualenv (`target/bench-venv`, python-gitlab and PyGithub
//! from PyPI) on first use. Run with `cargo bench --bench rollout`; `ROLLOUT_N=1000` runs
//! one size, `ROLLOUT_TRACKERS=gitlab` one tracker. At 3,000 migrations only steps 1–4 run
//! (within ~15 minutes on 2 cores) unless `ROLLOUT_FULL=1`.

#[path = "../tests/it/api.rs"]
mod api;
#[path = "../tests/it/github_server.rs"]
mod github_server;
#[path = "../tests/it/gitlab_server.rs"]
mod gitlab_server;
#[path = "../tests/it/test_server.rs"]
mod test_server;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use api::Api;
use futures::stream::{self, StreamExt};
use serde_json::Value;
use shepherd::catalog::{Catalog, Sources};
use shepherd::core::checklist;
use shepherd::core::marker::IssueMarker;
use shepherd::core::workflow::{Gate, Stage, Workflow};
use shepherd::tracker::{github, gitlab, Tracker};

const LATENCY: Duration = Duration::from_millis(20);
const CONCURRENCY: usize = 8;
const TOKEN: &str = "bench-token";
/// The stages the migrations are spread over, one in 8 each.
const SPREAD: [&str; 8] = [
    "selection",
    "migration-analysis",
    "rpc-design",
    "server-implementation",
    "client-implementation",
    "ready-for-testing",
    "opt-in",
    "opt-out",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Idle,
    IdleAgain,
    Move,
    Children,
    Soaks,
    Report,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Idle => "1 idle poll",
            Step::IdleAgain => "2 idle poll again",
            Step::Move => "3 10% move",
            Step::Children => "4 10% open a child",
            Step::Soaks => "5 soaks expire",
            Step::Report => "6 report --format json",
        }
    }
}

const ALL_STEPS: [Step; 6] = [
    Step::Idle,
    Step::IdleAgain,
    Step::Move,
    Step::Children,
    Step::Soaks,
    Step::Report,
];

/// What the benchmark needs of a test server beyond `Api`.
trait Server: Api {
    const NAME: &'static str;
    /// `--tracker`, its URL flag, its token variable.
    const SPEC: &'static str;
    const URL_FLAG: &'static str;
    const TOKEN_VAR: &'static str;
    /// The Python script and the flag naming the project.
    const SCRIPT: &'static str;
    const TARGET: [&'static str; 2];
    fn start() -> Self;
    /// Every issue: number → (open, labels, body).
    fn state(&self) -> BTreeMap<u64, (bool, Vec<String>, String)>;
    /// shepherd's own client for this server, to tick as a person would.
    async fn client(&self) -> Box<dyn Tracker>;
    /// The method and path (below the project) of every request logged.
    fn requests_made(&self) -> Vec<(String, String)>;
}

/// Requests by kind (`GET /issues/:n/notes ×12`), numbers folded, most first.
fn kinds(log: &[(String, String)], prefixes: &[&str]) -> String {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (method, path) in log {
        let path: Vec<&str> = prefixes
            .iter()
            .find_map(|p| path.strip_prefix(p))
            .unwrap_or(path)
            .split('/')
            .map(|s| if s.parse::<u64>().is_ok() { ":n" } else { s })
            .collect();
        *count
            .entry(format!("{method} {}", path.join("/")))
            .or_insert(0) += 1;
    }
    let mut list: Vec<(String, usize)> = count.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    list.iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

impl Server for gitlab_server::GitLabServer {
    const NAME: &'static str = "GitLab";
    const SPEC: &'static str = "gitlab:group/project";
    const URL_FLAG: &'static str = "--gitlab-url";
    const TOKEN_VAR: &'static str = "GITLAB_TOKEN";
    const SCRIPT: &'static str = "gitlab_rollout.py";
    const TARGET: [&'static str; 2] = ["--project", gitlab_server::PROJECT];
    fn start() -> Self {
        Self::start(&[(TOKEN, "shepherd-bot")])
    }
    fn state(&self) -> BTreeMap<u64, (bool, Vec<String>, String)> {
        self.issues()
            .iter()
            .map(|i| {
                (
                    i["iid"].as_u64().unwrap_or(0),
                    (
                        i["state"] == "opened",
                        strings(&i["labels"], |l| l.as_str()),
                        i["description"].as_str().unwrap_or("").to_string(),
                    ),
                )
            })
            .collect()
    }
    async fn client(&self) -> Box<dyn Tracker> {
        let mut config = gitlab::Config::new(&self.url, gitlab_server::PROJECT);
        config.concurrency = CONCURRENCY;
        Box::new(
            gitlab::GitLabTracker::connect(config, TOKEN)
                .await
                .expect("a client of the GitLab test server"),
        )
    }
    fn requests_made(&self) -> Vec<(String, String)> {
        self.log().into_iter().map(|l| (l.method, l.path)).collect()
    }
}

impl Server for github_server::GitHubServer {
    const NAME: &'static str = "GitHub";
    const SPEC: &'static str = "github:octo-org/migrations";
    const URL_FLAG: &'static str = "--github-url";
    const TOKEN_VAR: &'static str = "GITHUB_TOKEN";
    const SCRIPT: &'static str = "github_rollout.py";
    const TARGET: [&'static str; 2] = ["--repo", "octo-org/migrations"];
    fn start() -> Self {
        Self::start(&[(TOKEN, "shepherd-bot")])
    }
    fn state(&self) -> BTreeMap<u64, (bool, Vec<String>, String)> {
        self.issues()
            .iter()
            .map(|i| {
                (
                    i["number"].as_u64().unwrap_or(0),
                    (
                        i["state"] == "open",
                        strings(&i["labels"], |l| l["name"].as_str()),
                        i["body"].as_str().unwrap_or("").to_string(),
                    ),
                )
            })
            .collect()
    }
    async fn client(&self) -> Box<dyn Tracker> {
        let mut config = github::Config::new(
            &self.url,
            &format!("{}/{}", github_server::OWNER, github_server::REPO),
        );
        config.concurrency = CONCURRENCY;
        Box::new(
            github::GitHubTracker::connect(config, TOKEN)
                .expect("a client of the GitHub test server"),
        )
    }
    fn requests_made(&self) -> Vec<(String, String)> {
        self.log().into_iter().map(|l| (l.method, l.path)).collect()
    }
}

fn strings(v: &Value, f: impl Fn(&Value) -> Option<&str>) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(&f).map(str::to_string).collect())
        .unwrap_or_default()
}

fn main() {
    let catalog = Sources::builtin()
        .load()
        .expect("the shipped workflows load");
    let python = venv();
    let sizes: Vec<usize> = std::env::var("ROLLOUT_N")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 3_000]);
    let trackers = std::env::var("ROLLOUT_TRACKERS").unwrap_or_else(|_| "gitlab,github".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let mut agree = true;
    let full = std::env::var("ROLLOUT_FULL").is_ok_and(|v| v == "1");
    let faketime = have_faketime();
    if !faketime {
        println!("faketime is not installed (apt-get install faketime): steps 5 and 6 need a client clock a month on, and are left out");
    }
    for n in sizes {
        // Above 1,000 migrations the soaks and the report (the Python script's report alone
        // takes minutes) are left out unless asked for.
        let steps = if !faketime {
            &ALL_STEPS[..4]
        } else if n <= 1_000 || full {
            &ALL_STEPS[..]
        } else {
            &ALL_STEPS[..4]
        };
        if trackers.contains("gitlab") {
            agree &= series::<gitlab_server::GitLabServer>(&runtime, &catalog, &python, n, steps);
        }
        if trackers.contains("github") {
            agree &= series::<github_server::GitHubServer>(&runtime, &catalog, &python, n, steps);
        }
    }
    println!("whole benchmark: {:.0} s", started.elapsed().as_secs_f64());
    if !agree {
        eprintln!("shepherd and the Python script left different stages: see above");
        std::process::exit(1);
    }
}

/// The virtualenv with python-gitlab and PyGithub, made on first use.
fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-venv");
    let python = dir.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import gitlab, github"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready() {
        eprintln!("making {} (python-gitlab, PyGithub)", dir.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&dir));
        run(Command::new(dir.join("bin/pip")).args([
            "install",
            "--quiet",
            "python-gitlab",
            "PyGithub",
        ]));
        assert!(
            ready(),
            "python-gitlab and PyGithub import in {}",
            dir.display()
        );
    }
    python
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// Who is ticked when: the migrations of each step, by seed index.
struct Plan {
    /// Step 3: the current section of 10% of the migrations in checklist-only stages.
    moving: Vec<usize>,
    /// Step 4: "Ready for Testing" of 10% of the migrations.
    entering: Vec<usize>,
}

/// Seeds `n` migrations, opened two minutes apart, spread over `SPREAD` (every other Migration Analysis one with
/// `existing-rpc`; half of the Opt-In and Opt-Out ones with their section done, waiting
/// for their soak) into each server, identically.
fn seed(servers: [&impl Api; 2], catalog: &Catalog, n: usize) -> Plan {
    let workflow = &catalog.workflows["gitaly-migration"];
    for i in 0..n {
        let mut vars = api::gitaly_vars();
        vars.insert("feature_flag".into(), format!("GITALY_FEATURE_{i}"));
        vars.insert("grpc_method".into(), format!("FindCommit{i}"));
        let stage = workflow.stage(SPREAD[i % 8]).expect("a shipped stage");
        let mut body = api::gitaly_body(catalog, i as u64 + 1, vars);
        let mut labels = vec!["Migration", "Conversation", stage.label.as_str()];
        if i % 8 == 1 && (i / 8) % 2 == 1 {
            labels.push("existing-rpc");
        }
        if i % 8 >= 6 && (i / 8) % 2 == 0 {
            body = ticked(&body, section(stage).expect("a checklist"));
        }
        for server in servers {
            let number = server.seed_issue(&format!("migration {i}"), &body, &labels);
            assert_eq!(number, i as u64 + 1, "both servers number alike");
            // Opened one every two minutes, the newest just now: migrations are not all
            // made in the same millisecond (a soak of a release is not reached).
            server.backdate(number, chrono::Duration::minutes(2 * (n - i) as i64));
        }
    }
    Plan {
        moving: (0..n)
            .filter(|i| i % 8 < 5)
            .step_by(6)
            .take(n / 10)
            .collect(),
        entering: (0..n).filter(|i| i % 8 == 5).take(n / 10).collect(),
    }
}

/// The section of a stage's own checklist gate.
fn section(stage: &Stage) -> Option<&str> {
    stage.gates.iter().find_map(|g| match g {
        Gate::Checklist(c) if c.child.is_none() => c.section.as_deref(),
        _ => None,
    })
}

/// `body` with every item under `section` ticked.
fn ticked(body: &str, section: &str) -> String {
    let mut out = body.to_string();
    for item in checklist::parse(body)
        .iter()
        .filter(|i| i.in_section(section) && !i.done())
    {
        out = checklist::set(&out, item, true);
    }
    out
}

/// Whether a stage's own checklist gate holds on `body` (at least one item, all done).
fn section_done(stage: &Stage, body: &str) -> bool {
    let Some(section) = section(stage) else {
        return true;
    };
    let items: Vec<_> = checklist::parse(body)
        .into_iter()
        .filter(|i| i.in_section(section))
        .collect();
    !items.is_empty() && items.iter().all(|i| i.done())
}

/// Ticks the current stage's section of each issue, as a person would: read it, tick,
/// save (through the API, without latency; the requests are not counted).
async fn tick(server: &impl Server, catalog: &Catalog, numbers: &[u64]) {
    server.latency(Duration::ZERO);
    let client = server.client().await;
    let client = client.as_ref();
    let workflow = &catalog.workflows["gitaly-migration"];
    stream::iter(numbers)
        .for_each_concurrent(CONCURRENCY, |&n| async move {
            let issue = client.issue(n).await.expect("the issue to tick");
            let stage = workflow.stages_labelled(&issue.labels)[0];
            let section = section(stage).expect("a checklist to tick");
            client
                .update_body(n, &ticked(&issue.body, section))
                .await
                .expect("ticked");
        })
        .await;
    server.latency(LATENCY);
    server.forget_requests();
}

/// A command for `program`, under `faketime +31d` when `later`: a month has passed for the
/// client. (Moving the servers' records into the past instead would rewrite history under
/// a client's cache, which real time passing never does.)
fn clock(program: &Path, later: bool) -> Command {
    if !later {
        return Command::new(program);
    }
    let mut cmd = Command::new("faketime");
    cmd.args(["-f", "+31d"])
        .arg(program)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    cmd
}

/// Whether `faketime` (libfaketime) is installed.
fn have_faketime() -> bool {
    Command::new("faketime")
        .args(["-f", "+0d", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Requests and wall time of one run.
#[derive(Clone, Copy, Default)]
struct Cost {
    requests: usize,
    wall: Duration,
}

fn measure<S: Server>(server: &S, cmd: &mut Command) -> (Cost, String, String) {
    server.forget_requests();
    let start = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let wall = start.elapsed();
    let requests = server.requests();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Below the project: its path, or (python-gitlab, for an issue's parts) its id.
    let prefixes: &[&str] = if S::NAME == "GitLab" {
        &["/api/v4/projects/group%2Fproject", "/api/v4/projects/1"]
    } else {
        &["/repos/octo-org/migrations"]
    };
    (
        Cost { requests, wall },
        String::from_utf8_lossy(&out.stdout).into_owned(),
        kinds(&server.requests_made(), prefixes),
    )
}

/// Issues per stage label (and open or closed), the way the two sides are compared.
fn stage_counts(
    catalog: &Catalog,
    state: &BTreeMap<u64, (bool, Vec<String>, String)>,
) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (open, labels, body) in state.values() {
        let stage = IssueMarker::find(body)
            .and_then(|m| m.workflow)
            .and_then(|w| catalog.workflows.get(&w))
            .and_then(|w| w.stages_labelled(labels).first().map(|s| s.label.clone()))
            .unwrap_or_else(|| "(no stage)".into());
        let key = format!("{stage}{}", if *open { "" } else { " (closed)" });
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

/// The lower bound's bookkeeping: what an ideal client with the same Store would have
/// read already.
struct Ideal<'a> {
    catalog: &'a Catalog,
    /// The distinct sets of tracking labels: one list each.
    sets: Vec<Vec<String>>,
    /// Issues whose history the ideal client has read or written.
    known: BTreeSet<u64>,
    cold: bool,
}

/// The unavoidable requests of one step.
struct Bound {
    lists: usize,
    reads: usize,
    writes: usize,
}

impl Bound {
    fn total(&self) -> usize {
        self.lists + self.reads + self.writes
    }
    /// Unavoidable requests × latency / concurrency, in whole rounds.
    fn wall(&self) -> Duration {
        LATENCY * self.total().div_ceil(CONCURRENCY) as u32
    }
}

impl<'a> Ideal<'a> {
    fn new(catalog: &'a Catalog) -> Ideal<'a> {
        let mut sets: Vec<Vec<String>> = catalog
            .workflows
            .values()
            .map(|w| {
                let mut l = w.tracking.labels.clone();
                l.sort();
                l
            })
            .collect();
        sets.sort();
        sets.dedup();
        Ideal {
            catalog,
            sets,
            known: BTreeSet::new(),
            cold: true,
        }
    }

    fn workflow(&self, body: &str) -> Option<&'a Workflow> {
        IssueMarker::find(body)
            .and_then(|m| m.workflow)
            .and_then(|w| self.catalog.workflows.get(&w))
    }

    /// Lists: one per label set; a cold Store pages through every open issue of the set,
    /// a warm one only through those someone else changed since its last poll. Reads: the
    /// label history of each migration whose checklist holds in a stage with a soak or an
    /// approval (whose label is on), unless already read and unchanged since; for
    /// `report`, of every open migration not read or written before. Writes: 2 per move
    /// (the audit comment, carrying the stage's message and any child's number; the label
    /// edit, carrying a close), 3 per child (its creation with labels, the fill-in of its
    /// own number, its first audit comment).
    fn step(
        &mut self,
        step: Step,
        before: &BTreeMap<u64, (bool, Vec<String>, String)>,
        after: &BTreeMap<u64, (bool, Vec<String>, String)>,
        touched: &BTreeSet<u64>,
    ) -> Bound {
        let mut lists = 0;
        for set in &self.sets {
            let in_set = |(n, (open, labels, _)): (&u64, &(bool, Vec<String>, String))| {
                *open
                    && set.iter().all(|l| labels.contains(l))
                    && (self.cold || touched.contains(n))
            };
            lists += before
                .iter()
                .filter(|e| in_set(*e))
                .count()
                .div_ceil(100)
                .max(1);
        }
        let mut reads = 0;
        for (n, (open, labels, body)) in before {
            let Some(w) = self.workflow(body).filter(|_| *open) else {
                continue;
            };
            let wanted = if step == Step::Report {
                !self.known.contains(n)
            } else {
                let Some(stage) = w.stages_labelled(labels).first().copied() else {
                    continue;
                };
                let approval_on = stage.gates.iter().all(|g| match g {
                    Gate::Approval { label, .. } => labels.contains(label),
                    _ => true,
                });
                stage.needs_label_history()
                    && section_done(stage, body)
                    && approval_on
                    && (!self.known.contains(n) || touched.contains(n))
            };
            if wanted {
                reads += 1;
                self.known.insert(*n);
            }
        }
        let mut writes = 0;
        for (n, (open, labels, body)) in after {
            let stage = |labels: &[String]| {
                self.workflow(body)
                    .and_then(|w| w.stages_labelled(labels).first().map(|s| s.id.clone()))
            };
            match before.get(n) {
                None => writes += 3,
                Some((was_open, was, _)) => {
                    if stage(was) != stage(labels) || was_open != open {
                        writes += 2;
                    } else {
                        continue;
                    }
                }
            }
            self.known.insert(*n);
        }
        self.cold = false;
        Bound {
            lists,
            reads,
            writes,
        }
    }
}

struct Row {
    step: Step,
    moves: String,
    shepherd: Cost,
    python: Cost,
    bound: Bound,
    agree: bool,
    /// shepherd's and the script's requests by kind.
    kinds: [String; 2],
}

/// One tracker at one size: two servers, the six steps, the table.
fn series<S: Server>(
    runtime: &tokio::runtime::Runtime,
    catalog: &Catalog,
    python: &Path,
    n: usize,
    steps: &[Step],
) -> bool {
    let started = Instant::now();
    let ours = S::start();
    let theirs = S::start();
    let plan = seed([&ours, &theirs], catalog, n);
    ours.latency(LATENCY);
    theirs.latency(LATENCY);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = format!("sqlite:{}", dir.path().join("state.db").display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/python")
        .join(S::SCRIPT);
    let mut ideal = Ideal::new(catalog);
    let mut rows = Vec::new();
    let mut all_agree = true;
    for &step in steps {
        let numbers = |idx: &[usize]| -> Vec<u64> { idx.iter().map(|i| *i as u64 + 1).collect() };
        let touched: Vec<u64> = match step {
            Step::Move => numbers(&plan.moving),
            Step::Children => numbers(&plan.entering),
            _ => Vec::new(),
        };
        if !touched.is_empty() {
            runtime.block_on(async {
                tick(&ours, catalog, &touched).await;
                tick(&theirs, catalog, &touched).await;
            });
        }
        // From the soaks on, a month has passed for both clients.
        let later = matches!(step, Step::Soaks | Step::Report);
        let before = ours.state();
        let command = if step == Step::Report {
            "report"
        } else {
            "reconcile"
        };
        let (shepherd, out, shepherd_kinds) = measure(
            &ours,
            clock(Path::new(env!("CARGO_BIN_EXE_shepherd")), later)
                .current_dir(dir.path())
                .env_remove("SHEPHERD_TRACKER")
                .env(S::TOKEN_VAR, TOKEN)
                .env("SHEPHERD_STATE", &state)
                .args(["--tracker", S::SPEC, S::URL_FLAG, ours.url()])
                .args([command, "--format", "json"]),
        );
        let shepherd_moves = serde_json::from_str::<Value>(&out)
            .ok()
            .map(|v| {
                v["migrations"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|m| m["transitions"].as_array().map_or(0, Vec::len))
                            .sum::<usize>()
                    })
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        let (python, out, python_kinds) = measure(
            &theirs,
            clock(python, later)
                .arg(&script)
                .arg(command)
                .args(["--url", theirs.url()])
                .args(S::TARGET)
                .env(S::TOKEN_VAR, TOKEN),
        );
        let python_moves = serde_json::from_str::<Value>(&out)
            .ok()
            .and_then(|v| v["moves"].as_u64())
            .unwrap_or(0);
        let after = ours.state();
        let ours_counts = stage_counts(catalog, &after);
        let theirs_counts = stage_counts(catalog, &theirs.state());
        let agree = ours_counts == theirs_counts;
        if !agree {
            eprintln!(
                "{} N={n} {}: stages differ\n  shepherd: {ours_counts:?}\n  python:   {theirs_counts:?}",
                S::NAME,
                step.name()
            );
        }
        all_agree &= agree;
        let touched: BTreeSet<u64> = touched.into_iter().collect();
        rows.push(Row {
            step,
            moves: if step == Step::Report {
                "-".into()
            } else {
                format!("{shepherd_moves}/{python_moves}")
            },
            shepherd,
            python,
            bound: ideal.step(step, &before, &after, &touched),
            agree,
            kinds: [shepherd_kinds, python_kinds],
        });
    }
    print_table::<S>(n, &rows, started.elapsed());
    if steps.len() < ALL_STEPS.len() {
        println!(
            "(steps {}–6 left out at {n} migrations to keep the benchmark within ~15 minutes on 2 cores; ROLLOUT_FULL=1 runs them)",
            steps.len() + 1
        );
    }
    all_agree
}

fn print_table<S: Server>(n: usize, rows: &[Row], took: Duration) {
    println!(
        "\n{} · {n} migrations · {} ms per response · concurrency {CONCURRENCY} (series took {:.0} s)",
        S::NAME,
        LATENCY.as_millis(),
        took.as_secs_f64()
    );
    println!(
        "{:<24} {:>9} | {:>8} {:>8} | {:>8} {:>8} | {:>15} {:>7} | {:>9} {:>11} | stages",
        "step",
        "moves s/p",
        "shepherd",
        "wall",
        "python",
        "wall",
        "bound l+r+w",
        "wall",
        "req sh/py",
        "wall sh/bnd"
    );
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    for r in rows {
        let b = &r.bound;
        println!(
            "{:<24} {:>9} | {:>8} {:>8} | {:>8} {:>8} | {:>15} {:>7} | {:>9} {:>11} | {}",
            r.step.name(),
            r.moves,
            r.shepherd.requests,
            secs(r.shepherd.wall),
            r.python.requests,
            secs(r.python.wall),
            format!("{} = {}+{}+{}", b.total(), b.lists, b.reads, b.writes),
            secs(b.wall()),
            format!(
                "{:.2}",
                r.shepherd.requests as f64 / r.python.requests.max(1) as f64
            ),
            format!(
                "{:.1}",
                r.shepherd.wall.as_secs_f64() / b.wall().as_secs_f64()
            ),
            if r.agree { "same" } else { "DIFFER" }
        );
    }
    println!("requests by kind (shepherd; script):");
    for r in rows {
        println!("  {}: {}", r.step.name(), r.kinds[0]);
        println!(
            "  {:width$}  {}",
            "",
            r.kinds[1],
            width = r.step.name().len()
        );
    }
}

//! A whole rollout of the shipped `gitaly-migration` workflow, at 1,000 and 3,000
//! migrations, on the project's GitLab and GitHub test servers with 20 ms added to every
//! response: requests and wall time of `shepherd reconcile` (the real binary, as a user
//! runs it, with one Store kept between the steps as a CI cache would keep it) against a
//! straightforward python-gitlab / PyGithub script doing the same job
//! (`benches/python/`), and against the lower bound.
//!
//! The seed: migrations spread over the stages from Selection to Opt-Out (the workflow's
//! labels made, as `shepherd start` leaves them), half of the
//! Opt-In and Opt-Out ones with their section ticked (waiting for a release), and the
//! release history of `gitlab-org/gitlab` (the workflow's `release_project`): a minor
//! release long before any migration began, a patch release an hour ago (its tag does not
//! match the gate's pattern), and the next minor not out yet (GitLab: upcoming; GitHub: a
//! draft). The steps: two idle polls (nothing can move), 10% of the migrations ready to
//! move (their current section ticked through the server's API, as a person would, or —
//! every other one in RPC Design, Server or Client Implementation — a merge request that
//! references the tracking issue merged in the stage's project instead), 10% entering
//! Acceptance Testing (which opens an `acceptance-testing` child), a release is published
//! (`v17.3.0-ee` of `gitlab-org/gitlab`, after every Opt-In and Opt-Out migration entered
//! its stage: the ticked ones move on), and `report --format json`. No step needs a clock
//! other than the real one. shepherd and the script each run on their own server, seeded
//! identically and ticked, merged and released alike; after every step both servers must
//! hold the same number of issues in every stage, or the benchmark fails. The table
//! shows each side's requests to the releases endpoint (from the server's request log):
//! shepherd asks a project's releases once per run however many migrations wait on them,
//! or the benchmark fails.
//!
//! The benchmark makes its own virtualenv (`target/bench-venv`, python-gitlab and PyGithub
//! from PyPI) on first use. Run with `cargo bench --bench rollout`; `ROLLOUT_N=1000` runs
//! one size, `ROLLOUT_TRACKERS=gitlab` one tracker. At 3,000 migrations the report (the
//! Python script's alone takes minutes) is left out unless `ROLLOUT_FULL=1`.

include!("servers.rs");

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use api::Api;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use seeds::{section, ticked, SPREAD};
use serde_json::Value;
use shepherd::catalog::{Catalog, Sources};
use shepherd::core::checklist;
use shepherd::core::marker::IssueMarker;
use shepherd::core::workflow::{Gate, Stage, Workflow};
use shepherd::tracker::{github, gitlab, Tracker};
use test_server::{MrState, ReleaseKind};

const LATENCY: Duration = Duration::from_millis(20);
const CONCURRENCY: usize = 8;
const TOKEN: &str = "bench-token";
/// The project whose releases pace Opt-In and Opt-Out (the workflow's default
/// `release_project`).
const RELEASE_PROJECT: &str = "gitlab-org/gitlab";
/// The release of step 5: the next minor one.
const RELEASE_TAG: &str = "v17.3.0-ee";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Idle,
    IdleAgain,
    Move,
    Children,
    Release,
    Report,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Idle => "1 idle poll",
            Step::IdleAgain => "2 idle poll again",
            Step::Move => "3 10% move",
            Step::Children => "4 10% open a child",
            Step::Release => "5 a release is published",
            Step::Report => "6 report --format json",
        }
    }
}

const ALL_STEPS: [Step; 6] = [
    Step::Idle,
    Step::IdleAgain,
    Step::Move,
    Step::Children,
    Step::Release,
    Step::Report,
];

/// One issue as a server holds it.
#[derive(Clone, Debug)]
struct Seen {
    open: bool,
    labels: Vec<String>,
    body: String,
    created: DateTime<Utc>,
}

fn seen(open: bool, labels: Vec<String>, body: &Value, created: &Value) -> Seen {
    Seen {
        open,
        labels,
        body: body.as_str().unwrap_or("").to_string(),
        created: created
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or(DateTime::UNIX_EPOCH, |t| t.with_timezone(&Utc)),
    }
}

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
    /// The fields of an issue in this API: its number, its description, and its state
    /// when it is open.
    const FIELDS: [&'static str; 3];
    fn start() -> Self;
    /// Every issue as the API answers it.
    fn all_issues(&self) -> Vec<Value>;
    /// The name of a label of an issue as the API answers it.
    fn label_name(label: &Value) -> Option<&str>;
    /// Every issue by number.
    fn state(&self) -> BTreeMap<u64, Seen> {
        let [number, body, open] = Self::FIELDS;
        self.all_issues()
            .iter()
            .map(|i| {
                let labels = strings(&i["labels"], Self::label_name);
                let seen = seen(i["state"] == open, labels, &i[body], &i["created_at"]);
                (i[number].as_u64().unwrap_or(0), seen)
            })
            .collect()
    }
    /// shepherd's own client for this server, to tick as a person would.
    async fn client(&self) -> Box<dyn Tracker>;
    /// The method and path (below the project) of every request logged.
    fn requests_made(&self) -> Vec<(String, String)>;
    /// Lists release `tag` of `project` as one that is not out yet, the way this tracker
    /// does (GitLab: upcoming, its date to come; GitHub: a draft).
    fn announce_release(&self, project: &str, tag: &str);
    /// Makes `project` exist (with no merge request yet), as the gates' projects do.
    fn make_project(&self, project: &str);
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

/// Requests to a project's releases (GitLab `GET /projects/:id/releases`, GitHub
/// `GET /repos/{o}/{r}/releases`), every page counted.
fn release_requests(log: &[(String, String)]) -> usize {
    log.iter()
        .filter(|(method, path)| method == "GET" && path.ends_with("/releases"))
        .count()
}

impl Server for gitlab_server::GitLabServer {
    const NAME: &'static str = "GitLab";
    const SPEC: &'static str = "gitlab:group/project";
    const URL_FLAG: &'static str = "--gitlab-url";
    const TOKEN_VAR: &'static str = "GITLAB_TOKEN";
    const SCRIPT: &'static str = "gitlab_rollout.py";
    const TARGET: [&'static str; 2] = ["--project", gitlab_server::PROJECT];
    const FIELDS: [&'static str; 3] = ["iid", "description", "opened"];
    fn start() -> Self {
        Self::start(&[(TOKEN, "shepherd-bot")])
    }
    fn all_issues(&self) -> Vec<Value> {
        self.issues()
    }
    fn label_name(label: &Value) -> Option<&str> {
        label.as_str()
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
    fn announce_release(&self, project: &str, tag: &str) {
        let at = Utc::now() + chrono::Duration::days(30);
        self.publish_release(project, tag, at, ReleaseKind::Upcoming);
    }
    fn make_project(&self, project: &str) {
        self.add_project(project)
    }
}

impl Server for github_server::GitHubServer {
    const NAME: &'static str = "GitHub";
    const SPEC: &'static str = "github:octo-org/migrations";
    const URL_FLAG: &'static str = "--github-url";
    const TOKEN_VAR: &'static str = "GITHUB_TOKEN";
    const SCRIPT: &'static str = "github_rollout.py";
    const TARGET: [&'static str; 2] = ["--repo", "octo-org/migrations"];
    const FIELDS: [&'static str; 3] = ["number", "body", "open"];
    fn start() -> Self {
        Self::start(&[(TOKEN, "shepherd-bot")])
    }
    fn all_issues(&self) -> Vec<Value> {
        self.issues()
    }
    fn label_name(label: &Value) -> Option<&str> {
        label["name"].as_str()
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
    fn announce_release(&self, project: &str, tag: &str) {
        self.publish_release(project, tag, Utc::now(), ReleaseKind::Draft);
    }
    fn make_project(&self, project: &str) {
        self.add_repo(project)
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
    for n in sizes {
        // Above 1,000 migrations the report (the Python script's alone takes minutes) is
        // left out unless asked for.
        let steps = if n <= 1_000 || full {
            &ALL_STEPS[..]
        } else {
            &ALL_STEPS[..5]
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
        eprintln!("shepherd and the Python script left different stages, or shepherd asked for releases more than once per project in a run: see above");
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

/// A published release: project, tag, when.
type Published = (String, String, DateTime<Utc>);

/// Who is ticked or merged when: the migrations of each step, by seed index; and the
/// releases published so far.
struct Plan {
    /// Step 3: the current section of these is ticked …
    ticking: Vec<usize>,
    /// … and these (every other one of the step's migrations in RPC Design, Server or
    /// Client Implementation) get a merged merge request in their stage's project
    /// instead (`any` of the section and a merge request).
    merging: Vec<(usize, String)>,
    /// Step 4: "Ready for Testing" of 10% of the migrations.
    entering: Vec<usize>,
    /// The seed's published releases.
    releases: Vec<Published>,
}

/// Seeds `n` migrations, opened two minutes apart, spread over `SPREAD` (every other
/// Migration Analysis one with `existing-rpc`; half of the Opt-In and Opt-Out ones with
/// their section done, waiting for a release) into each server, identically, with their
/// variables as `start` writes them (defaults filled in); and the releases of
/// `RELEASE_PROJECT` so far: a minor one long before any migration began, a patch an hour
/// ago (not a minor: the gate's pattern leaves it out), the next minor not out yet.
fn seed<S: Server>(servers: [&S; 2], catalog: &Catalog, n: usize) -> Plan {
    let workflow = &catalog.workflows["gitaly-migration"];
    let now = Utc::now();
    let releases: Vec<Published> = [
        ("v17.2.0-ee", now - chrono::Duration::days(40)),
        ("v17.2.1-ee", now - chrono::Duration::hours(1)),
    ]
    .into_iter()
    .map(|(tag, at)| (RELEASE_PROJECT.to_string(), tag.to_string(), at))
    .collect();
    for server in servers {
        for (project, tag, at) in &releases {
            server.publish_release(project, tag, *at, ReleaseKind::Published);
        }
        server.announce_release(RELEASE_PROJECT, "v17.4.0-ee");
    }
    let mut all_vars = Vec::with_capacity(n);
    for i in 0..n {
        let mut given = api::gitaly_vars();
        given.insert("feature_flag".into(), format!("GITALY_FEATURE_{i}"));
        given.insert("grpc_method".into(), format!("FindCommit{i}"));
        let vars =
            shepherd::engine::resolve_vars(workflow, &given).expect("the seed's variables hold");
        let stage = workflow.stage(SPREAD[i % 8]).expect("a shipped stage");
        let mut body = api::gitaly_body(catalog, i as u64 + 1, vars.clone());
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
            // made in the same millisecond.
            server.backdate(number, chrono::Duration::minutes(2 * (n - i) as i64));
        }
        all_vars.push(vars);
    }
    let projects: BTreeSet<String> = all_vars
        .iter()
        .flat_map(|vars| {
            workflow
                .stages
                .iter()
                .filter_map(|stage| merge_request_project(stage, vars))
        })
        .collect();
    for server in servers {
        for project in &projects {
            server.make_project(project);
        }
    }
    let mut ticking = Vec::new();
    let mut merging = Vec::new();
    let mut alternate = false;
    for i in (0..n).filter(|i| i % 8 < 5).step_by(6).take(n / 10) {
        let stage = workflow.stage(SPREAD[i % 8]).expect("a shipped stage");
        let project = merge_request_project(stage, &all_vars[i]);
        let merge_request_stage = project.is_some();
        match project {
            Some(project) if alternate => merging.push((i, project)),
            _ => ticking.push(i),
        }
        alternate ^= merge_request_stage;
    }
    Plan {
        ticking,
        merging,
        entering: (0..n).filter(|i| i % 8 == 5).take(n / 10).collect(),
        releases,
    }
}

/// The project of a stage's own `merge_request` gate (the alternative to its section),
/// for a migration with `vars`.
fn merge_request_project(stage: &Stage, vars: &BTreeMap<String, String>) -> Option<String> {
    let mut found = None;
    for gate in &stage.gates {
        gate.visit(&mut |g| {
            if let Gate::MergeRequest {
                project: Some(p),
                child: None,
                ..
            } = g
            {
                found = found.take().or_else(|| p.resolve(vars).ok());
            }
        });
    }
    found
}

/// A stage's own `release` gates, for a migration with `vars`: (project, tag pattern).
fn release_gates(stage: &Stage, vars: &BTreeMap<String, String>) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for gate in &stage.gates {
        gate.visit(&mut |g| {
            if let Gate::Release {
                project: Some(p),
                pattern,
                ..
            } = g
            {
                if let Ok(project) = p.resolve(vars) {
                    out.push((project, pattern.clone()));
                }
            }
        });
    }
    out
}

/// Whether a stage's own checklist section holds on `body` (at least one item, all done).
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

/// Makes the labels of `gitaly-migration` exist, as `shepherd start` leaves them: the
/// seed stands for migrations shepherd started (the requests are not counted).
async fn started_labels(server: &impl Server, catalog: &Catalog) {
    let workflow = &catalog.workflows["gitaly-migration"];
    let specs: Vec<_> = workflow
        .labels()
        .iter()
        .map(|l| shepherd::tracker::label_spec(l, "shepherd: gitaly-migration"))
        .collect();
    let client = server.client().await;
    client
        .ensure_labels(&specs)
        .await
        .expect("the workflow's labels");
    server.forget_requests();
}

/// Merges, in each `(issue, project)`, a merge request of `project` that references the
/// issue, as a developer would (it was opened and merged a moment ago).
fn merge(server: &impl Server, merging: &[(u64, String)], at: DateTime<Utc>) {
    for (number, project) in merging {
        server.add_merge_request(*number, project, MrState::Merged, Some(at));
    }
    server.forget_requests();
}

/// Requests and wall time of one run, and its requests for releases.
#[derive(Clone, Copy, Default)]
struct Cost {
    requests: usize,
    wall: Duration,
    releases: usize,
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
    let log = server.requests_made();
    (
        Cost {
            requests,
            wall,
            releases: release_requests(&log),
        },
        String::from_utf8_lossy(&out.stdout).into_owned(),
        kinds(&log, prefixes),
    )
}

/// Issues per stage label (and open or closed), the way the two sides are compared.
fn stage_counts(catalog: &Catalog, state: &BTreeMap<u64, Seen>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in state.values() {
        let stage = IssueMarker::find(&s.body)
            .and_then(|m| m.workflow)
            .and_then(|w| catalog.workflows.get(&w))
            .and_then(|w| {
                w.stages_labelled(&s.labels)
                    .first()
                    .map(|s| s.label.clone())
            })
            .unwrap_or_else(|| "(no stage)".into());
        let key = format!("{stage}{}", if s.open { "" } else { " (closed)" });
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

/// The lower bound's bookkeeping: what an ideal client with the same Store would have
/// read already, and the releases published so far.
struct Ideal<'a> {
    catalog: &'a Catalog,
    /// The distinct sets of tracking labels: one list each.
    sets: Vec<Vec<String>>,
    /// Issues whose history the ideal client has read or written.
    known: BTreeSet<u64>,
    cold: bool,
    /// Every published release (upcoming ones and drafts left out).
    releases: Vec<Published>,
}

/// The unavoidable requests of one step.
struct Bound {
    lists: usize,
    reads: usize,
    /// Release lists: one per project a release gate asks about.
    releases: usize,
    /// Merge-request lists: one per migration whose stage's `any` its checklist does not
    /// settle.
    merge_requests: usize,
    writes: usize,
    /// Migrations whose release gate was asked (their other gates hold).
    waiting: usize,
}

impl Bound {
    fn facts(&self) -> usize {
        self.releases + self.merge_requests
    }
    fn total(&self) -> usize {
        self.lists + self.reads + self.facts() + self.writes
    }
    /// Unavoidable requests × latency / concurrency, in whole rounds.
    fn wall(&self) -> Duration {
        LATENCY * self.total().div_ceil(CONCURRENCY) as u32
    }
}

impl<'a> Ideal<'a> {
    fn new(catalog: &'a Catalog, releases: Vec<Published>) -> Ideal<'a> {
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
            releases,
        }
    }

    fn marker(&self, body: &str) -> Option<(&'a Workflow, BTreeMap<String, String>)> {
        let marker = IssueMarker::find(body)?;
        let workflow = self.catalog.workflows.get(marker.workflow.as_ref()?)?;
        Some((workflow, marker.vars))
    }

    /// Whether a release that one of `stage`'s release gates counts was published after
    /// `since`.
    fn released_since(
        &self,
        stage: &Stage,
        vars: &BTreeMap<String, String>,
        since: DateTime<Utc>,
    ) -> bool {
        release_gates(stage, vars).iter().any(|(project, pattern)| {
            let re = pattern
                .as_deref()
                .map(|p| regex::Regex::new(p).expect("the shipped pattern"));
            self.releases.iter().any(|(p, tag, at)| {
                p == project && *at > since && re.as_ref().is_none_or(|re| re.is_match(tag))
            })
        })
    }

    /// Lists: one per label set; a cold Store pages through every open issue of the set,
    /// a warm one only through those someone else changed since its last poll.
    ///
    /// Facts: one release list per project that a release gate asks about (its other
    /// gates hold) — per run, not per migration; one merge-request list per migration in
    /// a stage whose `any` of its section and a merged merge request the section does not
    /// settle (GitLab's `related_merge_requests` lists the closing ones too; GitHub's
    /// timeline), also when it has just moved into such a stage.
    ///
    /// Reads: the label history of each migration whose checklist holds in a stage with
    /// a soak, an approval (whose label is on) or a release gate, unless already read and
    /// unchanged since — for a release gate only once a release it counts came out after
    /// the migration was opened (before, it cannot have entered the stage after it); for
    /// `report`, of every open migration not read or written before.
    ///
    /// Writes: 2 per move (the audit comment, carrying the stage's message and any child's
    /// number; the label edit, carrying a close), 3 per child (its creation with labels,
    /// the fill-in of its own number, its first audit comment).
    fn step(
        &mut self,
        step: Step,
        before: &BTreeMap<u64, Seen>,
        after: &BTreeMap<u64, Seen>,
        touched: &BTreeSet<u64>,
    ) -> Bound {
        let mut lists = 0;
        for set in &self.sets {
            let in_set = |(n, s): (&u64, &Seen)| {
                s.open
                    && set.iter().all(|l| s.labels.contains(l))
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
        let mut projects = BTreeSet::new();
        let mut waiting = 0;
        let mut merge_requests = BTreeSet::new();
        for (n, s) in before.iter().filter(|(_, s)| s.open) {
            let Some((w, vars)) = self.marker(&s.body) else {
                continue;
            };
            let stage = w.stages_labelled(&s.labels).first().copied();
            if let Some(stage) = stage {
                let done = section_done(stage, &s.body);
                if !done && merge_request_project(stage, &vars).is_some() {
                    merge_requests.insert(*n);
                }
                let gates = release_gates(stage, &vars);
                if done && !gates.is_empty() {
                    waiting += 1;
                    projects.extend(gates.into_iter().map(|(p, _)| p));
                }
            }
            let wanted = if step == Step::Report {
                !self.known.contains(n)
            } else {
                let Some(stage) = stage else {
                    continue;
                };
                let approval_on = stage.gates.iter().all(|g| match g {
                    Gate::Approval { label, .. } => s.labels.contains(label),
                    _ => true,
                });
                let mut only_releases = true;
                for g in stage.all_gates() {
                    g.visit(&mut |g| {
                        only_releases &= !matches!(g, Gate::MinDuration(_) | Gate::Approval { .. })
                    });
                }
                stage.needs_label_history()
                    && section_done(stage, &s.body)
                    && approval_on
                    && (!only_releases || self.released_since(stage, &vars, s.created))
                    && (!self.known.contains(n) || touched.contains(n))
            };
            if wanted {
                reads += 1;
                self.known.insert(*n);
            }
        }
        let mut writes = 0;
        for (n, s) in after {
            let Some((w, vars)) = self.marker(&s.body) else {
                continue;
            };
            let stage = |labels: &[String]| w.stages_labelled(labels).first().copied();
            match before.get(n) {
                None => writes += 3,
                Some(was) => {
                    if stage(&was.labels).map(|s| &s.id) != stage(&s.labels).map(|s| &s.id)
                        || was.open != s.open
                    {
                        writes += 2;
                        if let Some(new) = stage(&s.labels) {
                            if !section_done(new, &s.body)
                                && merge_request_project(new, &vars).is_some()
                            {
                                merge_requests.insert(*n);
                            }
                        }
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
            releases: projects.len(),
            merge_requests: merge_requests.len(),
            writes,
            waiting,
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
    runtime.block_on(async {
        started_labels(&ours, catalog).await;
        started_labels(&theirs, catalog).await;
    });
    ours.latency(LATENCY);
    theirs.latency(LATENCY);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = format!("sqlite:{}", dir.path().join("state.db").display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/python")
        .join(S::SCRIPT);
    let mut ideal = Ideal::new(catalog, plan.releases.clone());
    let mut rows = Vec::new();
    let mut all_agree = true;
    for &step in steps {
        let numbers = |idx: &[usize]| -> Vec<u64> { idx.iter().map(|i| *i as u64 + 1).collect() };
        let touched: Vec<u64> = match step {
            Step::Move => numbers(&plan.ticking),
            Step::Children => numbers(&plan.entering),
            _ => Vec::new(),
        };
        if !touched.is_empty() {
            runtime.block_on(async {
                tick(&ours, catalog, &touched).await;
                tick(&theirs, catalog, &touched).await;
            });
        }
        if step == Step::Move {
            let merging: Vec<(u64, String)> = plan
                .merging
                .iter()
                .map(|(i, p)| (*i as u64 + 1, p.clone()))
                .collect();
            let at = Utc::now();
            merge(&ours, &merging, at);
            merge(&theirs, &merging, at);
        }
        if step == Step::Release {
            // After every Opt-In and Opt-Out migration entered its stage (the newest was
            // opened two minutes before the first step).
            let at = Utc::now();
            for server in [&ours, &theirs] {
                server.publish_release(RELEASE_PROJECT, RELEASE_TAG, at, ReleaseKind::Published);
            }
            ideal
                .releases
                .push((RELEASE_PROJECT.into(), RELEASE_TAG.into(), at));
        }
        let before = ours.state();
        let command = if step == Step::Report {
            "report"
        } else {
            "reconcile"
        };
        let (shepherd, out, shepherd_kinds) = measure(
            &ours,
            Command::new(env!("CARGO_BIN_EXE_shepherd"))
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
            Command::new(python)
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
        let mut agree = ours_counts == theirs_counts;
        if !agree {
            eprintln!(
                "{} N={n} {}: stages differ\n  shepherd: {ours_counts:?}\n  python:   {theirs_counts:?}",
                S::NAME,
                step.name()
            );
        }
        let touched: BTreeSet<u64> = touched.into_iter().collect();
        let bound = ideal.step(step, &before, &after, &touched);
        // One request per project per run (the release list fits one page here), not one
        // per migration.
        if shepherd.releases > bound.releases {
            eprintln!(
                "{} N={n} {}: shepherd asked for releases {} times, for {} project(s)",
                S::NAME,
                step.name(),
                shepherd.releases,
                bound.releases
            );
            agree = false;
        }
        all_agree &= agree;
        rows.push(Row {
            step,
            moves: if step == Step::Report {
                "-".into()
            } else {
                format!("{shepherd_moves}/{python_moves}")
            },
            shepherd,
            python,
            bound,
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
        "{:<24} {:>9} | {:>8} {:>8} | {:>8} {:>8} | {:>19} {:>7} | {:>9} | {:>9} {:>11} | stages",
        "step",
        "moves s/p",
        "shepherd",
        "wall",
        "python",
        "wall",
        "bound l+r+f+w",
        "wall",
        "rel s/p/b",
        "req sh/py",
        "wall sh/bnd"
    );
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    for r in rows {
        let b = &r.bound;
        println!(
            "{:<24} {:>9} | {:>8} {:>8} | {:>8} {:>8} | {:>19} {:>7} | {:>9} | {:>9} {:>11} | {}",
            r.step.name(),
            r.moves,
            r.shepherd.requests,
            secs(r.shepherd.wall),
            r.python.requests,
            secs(r.python.wall),
            format!(
                "{} = {}+{}+{}+{}",
                b.total(),
                b.lists,
                b.reads,
                b.facts(),
                b.writes
            ),
            secs(b.wall()),
            format!(
                "{}/{}/{}",
                r.shepherd.releases, r.python.releases, b.releases
            ),
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
    println!("bound: l list pages, r label histories, f facts (release lists + merge-request lists), w writes; rel: requests for releases (shepherd/script/bound)");
    println!("releases asked (GET …/releases, counted in the server's log), per run:");
    for r in rows.iter().filter(|r| r.bound.waiting > 0) {
        let b = &r.bound;
        println!(
            "  {}: shepherd {} request(s), script {}, for {} project(s) and {} migration(s) whose other gates hold{}",
            r.step.name(),
            r.shepherd.releases,
            r.python.releases,
            b.releases,
            b.waiting,
            if r.shepherd.releases <= b.releases {
                " — one per project per run, not one per migration"
            } else {
                " — MORE THAN ONE PER PROJECT"
            }
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

//! `reconcile` of 1,000 migrations against each remote tracker's test server (GitLab,
//! GitHub) with 20 ms added to every response, in which nothing can move: request count
//! and wall time, against
//!
//! - the lower bound: the requests that cannot be avoided × 20 ms / concurrency — the list
//!   pages; one release list of `gitlab-org/gitlab` for the Opt-In and Opt-Out migrations
//!   whose section is ticked (they wait for its next minor release; none came out since
//!   any of them was opened, so their label history is not needed); one merge-request
//!   list for each migration in RPC Design, Server or Client Implementation (its section
//!   is not ticked, so a merged merge request would end the stage);
//! - a naive client that fetches every issue and its label history one by one, and the
//!   releases and merge requests of each migration whose gates ask for them.
//!
//! It prints shepherd's requests to the releases endpoint (from the server's log): one per
//! project per run, not one per migration (DESIGN.md §9; issue 11's "Speed").
//!
//! Run with `cargo bench --bench remote` (`REMOTE_N=200` for fewer migrations).

include!("servers.rs");

use std::time::{Duration, Instant};

use api::Api;
use seeds::SPREAD;
use shepherd::catalog::{Catalog, Sources};
use shepherd::core::workflow::{Gate, Stage};
use shepherd::engine::{Engine, Settings};
use shepherd::tracker::{github, gitlab, Tracker};
use test_server::ReleaseKind;

const LATENCY: Duration = Duration::from_millis(20);
const CONCURRENCY: usize = 8;
/// The project whose releases Opt-In and Opt-Out wait for (the workflow's default).
const RELEASE_PROJECT: &str = "gitlab-org/gitlab";

fn main() {
    let catalog = Sources::builtin()
        .load()
        .expect("the shipped workflows load");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let n: usize = std::env::var("REMOTE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);

    let server = gitlab_server::GitLabServer::start(&[("bench-token", "shepherd-bot")]);
    let seeded = seed(&server, &catalog, n);
    runtime.block_on(async {
        let mut config = gitlab::Config::new(&server.url, gitlab_server::PROJECT);
        config.concurrency = CONCURRENCY;
        let tracker = gitlab::GitLabTracker::connect(config, "bench-token")
            .await
            .unwrap();
        let releases = || release_requests(server.log().iter().map(|l| l.path.as_str()));
        measure("GitLab", &server, &tracker, &catalog, &seeded, &releases).await;
    });

    let server = github_server::GitHubServer::start(&[("bench-token", "shepherd-bot")]);
    let seeded = seed(&server, &catalog, n);
    runtime.block_on(async {
        let mut config = github::Config::new(
            &server.url,
            &format!("{}/{}", github_server::OWNER, github_server::REPO),
        );
        config.concurrency = CONCURRENCY;
        let tracker = github::GitHubTracker::connect(config, "bench-token").unwrap();
        let releases = || release_requests(server.log().iter().map(|l| l.path.as_str()));
        measure("GitHub", &server, &tracker, &catalog, &seeded, &releases).await;
    });
}

/// Requests for a project's releases among the logged paths.
fn release_requests<'a>(paths: impl Iterator<Item = &'a str>) -> usize {
    paths.filter(|p| p.ends_with("/releases")).count()
}

/// What was seeded, and what of it the gates ask for.
struct Seeded {
    n: usize,
    /// Issue numbers of the Opt-In and Opt-Out migrations with their section ticked: they
    /// wait for a release.
    waiting: Vec<u64>,
    /// Issue numbers of the migrations whose stage a merged merge request would end.
    merge_requests: Vec<u64>,
}

/// `n` gitaly migrations spread over the stages from Selection to Opt-Out, every Opt-In
/// and Opt-Out one with its section ticked, and `gitlab-org/gitlab`'s last minor release
/// 40 days before any of them was opened: nothing can move. Then the latency.
fn seed(server: &impl Api, catalog: &Catalog, n: usize) -> Seeded {
    let workflow = &catalog.workflows["gitaly-migration"];
    let vars = shepherd::engine::resolve_vars(workflow, &api::gitaly_vars()).unwrap();
    let body = api::gitaly_body(catalog, 1, vars);
    server.publish_release(
        RELEASE_PROJECT,
        "v17.2.0-ee",
        chrono::Utc::now() - chrono::Duration::days(40),
        ReleaseKind::Published,
    );
    let mut seeded = Seeded {
        n,
        waiting: Vec::new(),
        merge_requests: Vec::new(),
    };
    for i in 0..n {
        let stage = workflow.stage(SPREAD[i % SPREAD.len()]).unwrap();
        let releases = has(stage, |g| matches!(g, Gate::Release { .. }));
        let body = if releases {
            ticked(&body, stage)
        } else {
            body.clone()
        };
        let number = server.seed_issue(
            &format!("migration {i}"),
            &body,
            &["Migration", "Conversation", &stage.label],
        );
        if releases {
            seeded.waiting.push(number);
        }
        if has(stage, |g| matches!(g, Gate::MergeRequest { .. })) {
            seeded.merge_requests.push(number);
        }
    }
    server.latency(LATENCY);
    seeded
}

/// Whether one of `stage`'s gates (or one inside them) is `f`.
fn has(stage: &Stage, f: impl Fn(&Gate) -> bool) -> bool {
    let mut found = false;
    for gate in &stage.gates {
        gate.visit(&mut |g| found |= f(g));
    }
    found
}

/// `body` with every item of `stage`'s own checklist section ticked.
fn ticked(body: &str, stage: &Stage) -> String {
    seeds::ticked(body, seeds::section(stage).expect("a section"))
}

async fn measure(
    name: &str,
    server: &impl Api,
    tracker: &dyn Tracker,
    catalog: &Catalog,
    seeded: &Seeded,
    release_requests: &dyn Fn() -> usize,
) {
    let n = seeded.n;
    let state = tempfile::tempdir().unwrap();
    let store =
        shepherd::store::sqlite::SqliteStore::open(&state.path().join("state.db"), false).unwrap();
    let settings = Settings {
        concurrency: CONCURRENCY,
        ..Settings::acting_as("bench")
    };
    let engine = Engine::new(tracker, catalog, &store, settings);
    server.forget_requests();
    let start = Instant::now();
    let result = engine.reconcile(false).await.unwrap();
    let wall = start.elapsed();
    let requests = server.requests();
    let releases = release_requests();
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    let result = result.migrations;
    assert_eq!(result.len(), n);
    assert!(
        result.iter().all(|a| a.transitions.is_empty()),
        "nothing can move"
    );
    assert!(
        releases <= 1,
        "{name}: {releases} requests for releases of one project in one run"
    );

    // One list per workflow label set: Migration+Conversation (N issues, N/100 pages) and
    // the two other sets (empty: one page each); one release list for the one project
    // the waiting migrations ask about; one merge-request list per migration in an
    // implementation stage.
    let pages = n.div_ceil(100);
    let release_lists = usize::from(!seeded.waiting.is_empty());
    let merge_requests = seeded.merge_requests.len();
    let unavoidable = pages + 2 + release_lists + merge_requests;
    let bound = LATENCY * unavoidable.div_ceil(CONCURRENCY) as u32;

    server.forget_requests();
    let start = Instant::now();
    for number in 1..=n as u64 {
        tracker.issue(number).await.unwrap();
        tracker.label_events(number).await.unwrap();
        if seeded.waiting.contains(&number) {
            tracker.releases(Some(RELEASE_PROJECT)).await.unwrap();
        }
        if seeded.merge_requests.contains(&number) {
            tracker.merge_requests(number).await.unwrap();
        }
    }
    let naive = start.elapsed();
    let naive_requests = server.requests();
    let naive_releases = release_requests();

    println!(
        "{name}: reconcile of {n} migrations, {} ms per response, concurrency {CONCURRENCY}:",
        LATENCY.as_millis()
    );
    println!(
        "  shepherd:    {requests} requests, {:.2} s; {releases} for releases ({} migrations wait for a release of {RELEASE_PROJECT}: one per project per run, not one per migration)",
        wall.as_secs_f64(),
        seeded.waiting.len()
    );
    println!(
        "  lower bound: {unavoidable} requests ({pages} + 2 list pages, {release_lists} release list, {merge_requests} merge-request lists, no label history), {:.2} s; shepherd/bound = {:.2}x",
        bound.as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64()
    );
    println!(
        "  naive:       {naive_requests} requests ({naive_releases} for releases), {:.2} s; naive/shepherd = {:.1}x",
        naive.as_secs_f64(),
        naive.as_secs_f64() / wall.as_secs_f64()
    );
}

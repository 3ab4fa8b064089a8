//! `reconcile` of 1,000 migrations against each remote tracker's test server (GitLab,
//! GitHub) with 20 ms added to every response, in which nothing can move: request count
//! and wall time, against
//!
//! - the lower bound: the requests that cannot be avoided (the list pages, and one label
//!   history for each migration whose stage has a soak time or an approval) × 20 ms /
//!   concurrency;
//! - a naive client that fetches every issue and its label history one by one.
//!
//! Run with `cargo bench --bench remote`.

#[path = "../tests/it/api.rs"]
mod api;
#[path = "../tests/it/github_server.rs"]
mod github_server;
#[path = "../tests/it/gitlab_server.rs"]
mod gitlab_server;
#[path = "../tests/it/test_server.rs"]
mod test_server;

use std::time::{Duration, Instant};

use api::Api;
use shepherd::catalog::{Catalog, Sources};
use shepherd::engine::Engine;
use shepherd::tracker::{github, gitlab, Tracker};

const N: usize = 1_000;
const LATENCY: Duration = Duration::from_millis(20);
const CONCURRENCY: usize = 8;

fn main() {
    let catalog = Sources::builtin()
        .load()
        .expect("the shipped workflows load");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let server = gitlab_server::GitLabServer::start(&[("bench-token", "shepherd-bot")]);
    let needs_history = seed(&server, &catalog);
    runtime.block_on(async {
        let mut config = gitlab::Config::new(&server.url, gitlab_server::PROJECT);
        config.concurrency = CONCURRENCY;
        let tracker = gitlab::GitLabTracker::connect(config, "bench-token")
            .await
            .unwrap();
        measure("GitLab", &server, &tracker, &catalog, needs_history).await;
    });

    let server = github_server::GitHubServer::start(&[("bench-token", "shepherd-bot")]);
    let needs_history = seed(&server, &catalog);
    runtime.block_on(async {
        let mut config = github::Config::new(
            &server.url,
            &format!("{}/{}", github_server::OWNER, github_server::REPO),
        );
        config.concurrency = CONCURRENCY;
        let tracker = github::GitHubTracker::connect(config, "bench-token").unwrap();
        measure("GitHub", &server, &tracker, &catalog, needs_history).await;
    });
}

/// N gitaly migrations spread over stages without soak or approval (no label history
/// needed) and Opt-In/Opt-Out (needed); returns how many need it. Then the latency.
fn seed(server: &impl Api, catalog: &Catalog) -> usize {
    let workflow = &catalog.workflows["gitaly-migration"];
    let body = api::gitaly_body(catalog, 1, api::gitaly_vars());
    let stages = [
        "selection",
        "migration-analysis",
        "rpc-design",
        "server-implementation",
        "client-implementation",
        "ready-for-testing",
        "opt-in",
        "opt-out",
    ];
    let mut needs_history = 0;
    for i in 0..N {
        let stage = workflow.stage(stages[i % stages.len()]).unwrap();
        needs_history += usize::from(stage.needs_label_history());
        server.seed_issue(
            &format!("migration {i}"),
            &body,
            &["Migration", "Conversation", &stage.label],
        );
    }
    server.latency(LATENCY);
    needs_history
}

async fn measure(
    name: &str,
    server: &impl Api,
    tracker: &dyn Tracker,
    catalog: &Catalog,
    needs_history: usize,
) {
    let state = tempfile::tempdir().unwrap();
    let store =
        shepherd::store::sqlite::SqliteStore::open(&state.path().join("state.db"), false).unwrap();
    let mut engine = Engine::new(tracker, catalog, &store, "bench");
    engine.concurrency = CONCURRENCY;
    server.forget_requests();
    let start = Instant::now();
    let result = engine.reconcile(false).await.unwrap();
    let wall = start.elapsed();
    let requests = server.requests();
    assert!(result.errors.is_empty());
    let result = result.migrations;
    assert_eq!(result.len(), N);
    assert!(
        result.iter().all(|a| a.transitions.is_empty()),
        "nothing can move"
    );

    // One list per workflow label set: Migration+Conversation (N issues, N/100 pages) and
    // the two other sets (empty: one page each).
    let pages = N.div_ceil(100);
    let unavoidable = pages + 2 + needs_history;
    let bound = LATENCY * unavoidable as u32 / CONCURRENCY as u32;

    server.forget_requests();
    let start = Instant::now();
    for n in 1..=N as u64 {
        tracker.issue(n).await.unwrap();
        tracker.label_events(n).await.unwrap();
    }
    let naive = start.elapsed();
    let naive_requests = server.requests();

    println!(
        "{name}: reconcile of {N} migrations, {} ms per response, concurrency {CONCURRENCY}:",
        LATENCY.as_millis()
    );
    println!(
        "  shepherd:    {requests} requests, {:.2} s",
        wall.as_secs_f64()
    );
    println!(
        "  lower bound: {unavoidable} requests ({pages} + 2 list pages, {needs_history} label histories), {:.2} s; shepherd/bound = {:.2}x",
        bound.as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64()
    );
    println!(
        "  naive:       {naive_requests} requests, {:.2} s; naive/shepherd = {:.1}x",
        naive.as_secs_f64(),
        naive.as_secs_f64() / wall.as_secs_f64()
    );
}

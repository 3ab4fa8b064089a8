//! `reconcile` of 1,000 migrations against the GitHub test server with 20 ms added to every
//! response, in which nothing can move: request count and wall time, against the lower
//! bound (list pages and the timelines that soak and approval gates need, × 20 ms /
//! concurrency) and a naive client that fetches every issue and its timeline one by one.
//!
//! Run with `cargo bench --bench github`.

#[path = "../tests/it/github_server.rs"]
mod github_server;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use github_server::{GitHubServer, OWNER, REPO};
use shepherd::catalog::Sources;
use shepherd::core::marker::IssueMarker;
use shepherd::engine::Engine;
use shepherd::render::{Context, IssueRef};
use shepherd::tracker::github::{Config, GitHubTracker};
use shepherd::tracker::Tracker;

const N: usize = 1_000;
const LATENCY: Duration = Duration::from_millis(20);
const CONCURRENCY: usize = 8;

fn main() {
    let server = GitHubServer::start(&[("bench-token", "shepherd-bot")]);
    let catalog = Sources::builtin()
        .load()
        .expect("the shipped workflows load");
    let workflow = &catalog.workflows["gitaly-migration"];
    let vars: BTreeMap<String, String> = [
        ("feature_flag", "GITALY_FIND_COMMIT"),
        ("grpc_service", "CommitService"),
        ("grpc_method", "FindCommit"),
        ("gitaly_version", "v1.2.3"),
        ("gitlab_version", "v11.4"),
        ("release_interval", "30d"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let me = IssueRef {
        number: "1".into(),
        ..Default::default()
    };
    let cx = Context {
        vars: &vars,
        migration: Some(me.clone()),
        parent: None,
        issue: Some(me),
        now: Utc::now(),
    };
    let rendered = catalog
        .renderer
        .render("gitaly-migration", &cx.to_value())
        .unwrap();
    let body = IssueMarker {
        workflow: Some("gitaly-migration".into()),
        vars: vars.clone(),
        ..Default::default()
    }
    .append_to(&rendered.body);
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
        if stage.needs_label_history() {
            needs_history += 1;
        }
        server.seed(
            &format!("migration {i}"),
            &body,
            &["Migration", "Conversation", &stage.label],
            "shepherd-bot",
            false,
        );
    }
    server.set_latency(LATENCY);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut config = Config::new(&server.url, &format!("{OWNER}/{REPO}"));
        config.concurrency = CONCURRENCY;
        let tracker = GitHubTracker::connect(config, "bench-token").unwrap();
        let engine = Engine { tracker: &tracker, catalog: &catalog, actor: "bench".into(), concurrency: CONCURRENCY };

        server.clear_log();
        let start = Instant::now();
        let result = engine.reconcile(false).await.unwrap();
        let wall = start.elapsed();
        let requests = server.log().len();
        assert_eq!(result.len(), N);
        assert!(result.iter().all(|a| a.transitions.is_empty()), "nothing can move");

        let pages = N.div_ceil(100);
        let unavoidable = pages + 2 + needs_history;
        let bound = LATENCY * unavoidable as u32 / CONCURRENCY as u32;

        server.clear_log();
        let start = Instant::now();
        for n in 1..=N as u64 {
            tracker.issue(n).await.unwrap();
            tracker.label_events(n).await.unwrap();
        }
        let naive = start.elapsed();
        let naive_requests = server.log().len();

        println!("reconcile of {N} migrations on GitHub, {} ms per response, concurrency {CONCURRENCY}:", LATENCY.as_millis());
        println!("  shepherd:    {requests} requests, {:.2} s", wall.as_secs_f64());
        println!("  lower bound: {unavoidable} requests ({pages} + 2 list pages, {needs_history} timelines), {:.2} s; shepherd/bound = {:.2}x", bound.as_secs_f64(), wall.as_secs_f64() / bound.as_secs_f64());
        println!("  naive:       {naive_requests} requests, {:.2} s; naive/shepherd = {:.1}x", naive.as_secs_f64(), naive.as_secs_f64() / wall.as_secs_f64());
    });
}

//! `shepherd serve` under webhooks: 1,000 gitaly migrations in Selection on the GitLab
//! test server with 20 ms added to every response, the real binary serving them (a SQLite
//! Store, the Store's cache as in production), and 1,000 deliveries: a person ticks a
//! migration's Selection checklist through the server's API and GitLab's Issue Hook
//! follows, one migration after another at a steady rate (`SERVE_RATE`, default 20 a
//! second). For each delivery: the time until the label moved (the server's state polled
//! every few milliseconds), p50 / p99 / max; the service's requests per delivery (its
//! incremental resyncs in that time included); and the requests of an idle resync (a
//! restart on the same Store, nothing changed). DESIGN.md §9: p99 within 1 s.
//!
//! Run with `cargo bench --bench serve`; `SERVE_N=200` for fewer migrations.

include!("servers.rs");
#[path = "../tests/it/serve/service.rs"]
mod service;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::Api;
use gitlab_server::{GitLabServer, PROJECT};
use seeds::ticked;
use serde_json::Value;
use service::{http, Service};
use shepherd::catalog::Sources;

const LATENCY: Duration = Duration::from_millis(20);
const BOT: &str = "bench-bot-token";
const PERSON: &str = "bench-person-token";
const SECRET: &str = "bench-webhook-secret";
const CONCURRENCY: &str = "8";
const MOVED_TO: &str = "Migration Analysis";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = env_number("SERVE_N", 1000);
    let rate: f64 = env_number("SERVE_RATE", 20) as f64;
    let catalog = Sources::builtin().load().expect("shipped workflows load");
    let workflow = &catalog.workflows["gitaly-migration"];
    let selection = workflow.stage("selection").expect("a shipped stage");

    let server = GitLabServer::start(&[(BOT, "shepherd-bot"), (PERSON, "alice")]);
    let numbers: Vec<u64> = (0..n)
        .map(|i| {
            let mut vars = api::gitaly_vars();
            vars.insert("feature_flag".into(), format!("GITALY_FEATURE_{i}"));
            let body = api::gitaly_body(&catalog, i as u64 + 1, vars);
            server.seed_issue(
                &format!("migration {i}"),
                &body,
                &["Migration", "Conversation", &selection.label],
            )
        })
        .collect();
    // The workflow's labels exist, as `shepherd start` leaves them.
    for label in workflow.labels() {
        make_label(&server.url, &label);
    }
    server.set_latency(LATENCY);
    let dir = tempfile::tempdir().expect("a directory");
    let state = format!("sqlite:{}", dir.path().join("state.db").display());

    eprintln!("serve bench: {n} migrations, 20 ms per response; starting the service");
    let started = Instant::now();
    let mut service = start_service(dir.path(), &server.url, &state);
    let first_resync = started.elapsed();
    let first_requests = bot_requests(&server);
    server.clear_log();

    // The deliveries, paced; the moves, polled.
    eprintln!("serve bench: {n} deliveries at {rate}/s");
    let sent: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let statuses: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
    let sender = {
        let (sent, statuses) = (sent.clone(), statuses.clone());
        let (numbers, url, addr) = (numbers.clone(), server.url.clone(), service.addr.clone());
        let bodies: Vec<String> = numbers.iter().map(|n| server.body(*n)).collect();
        std::thread::spawn(move || {
            let begin = Instant::now();
            for (i, (n, body)) in numbers.iter().zip(bodies).enumerate() {
                let at = begin + Duration::from_secs_f64(i as f64 / rate);
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let body = ticked(&body, "Selection");
                edit_description(&url, *n, &body);
                let hook = issue_hook(*n, &body);
                let uuid = format!("bench-{n}");
                let headers = [
                    ("x-gitlab-token", SECRET),
                    ("x-gitlab-event", "Issue Hook"),
                    ("x-gitlab-event-uuid", uuid.as_str()),
                    ("content-type", "application/json"),
                ];
                sent.lock().unwrap().insert(*n, Instant::now());
                let (status, _) = http(&addr, "POST", "/hooks/gitlab", &headers, &hook);
                *statuses.lock().unwrap().entry(status).or_insert(0) += 1;
            }
        })
    };
    let phase = Instant::now();
    let mut moved: BTreeMap<u64, Duration> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(n as u64 / rate as u64 + 300);
    while moved.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} moved; serve said:\n{}",
            moved.len(),
            service.log()
        );
        let pending: Vec<(u64, Instant)> = sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| !moved.contains_key(k))
            .map(|(k, v)| (*k, *v))
            .collect();
        for (k, at) in pending {
            if server.label_names(k).iter().any(|l| l == MOVED_TO) {
                moved.insert(k, at.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    sender.join().expect("the sender");
    let phase_time = phase.elapsed();
    // The refresh after the last moves settles.
    std::thread::sleep(Duration::from_secs(2));
    let delivery_requests = bot_requests(&server);
    let by_kind = kinds(&server);
    if std::env::var("SERVE_TRACE").is_ok() {
        for l in server.log().iter().filter(|l| l.user == "shepherd-bot") {
            eprintln!("{} {} {:?}", l.method, l.path, l.query);
        }
    }
    let stopped = service.terminate();
    assert_eq!(stopped, Some(0), "serve stops cleanly:\n{}", service.log());

    // An idle resync: a restart on the same Store, nothing changed since.
    server.clear_log();
    let mut again = start_service(dir.path(), &server.url, &state);
    let idle_requests = bot_requests(&server);
    assert_eq!(again.terminate(), Some(0));

    let mut times: Vec<Duration> = moved.values().copied().collect();
    times.sort();
    let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!();
    println!("shepherd serve: {n} migrations, GitLab test server, +20 ms per response, --concurrency {CONCURRENCY}");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| first resync at start (cold) | {first_requests} requests, ready after {:.1} s |",
        first_resync.as_secs_f64()
    );
    println!(
        "| deliveries | {n} at {rate}/s, answered {:?} |",
        statuses.lock().unwrap()
    );
    println!("| delivery → label moved, p50 | {} |", ms(pick(0.50)));
    println!("| delivery → label moved, p99 | {} |", ms(pick(0.99)));
    println!("| delivery → label moved, max | {} |", ms(pick(1.0)));
    println!(
        "| requests per delivery | {:.2} ({delivery_requests} in {:.0} s) |",
        delivery_requests as f64 / n as f64,
        phase_time.as_secs_f64()
    );
    println!("| requests by kind | {by_kind} |");
    println!("| idle resync (restart, nothing changed) | {idle_requests} requests |");
    println!(
        "| budget (DESIGN.md §9) | p99 within 1 s: {} |",
        if pick(0.99) <= Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// The requests the service made (the person's edits are not its).
fn bot_requests(server: &GitLabServer) -> usize {
    server
        .log()
        .iter()
        .filter(|l| l.user == "shepherd-bot")
        .count()
}

/// The service's requests by method and the last meaningful path segment.
fn kinds(server: &GitLabServer) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for l in server.log().iter().filter(|l| l.user == "shepherd-bot") {
        let kind = l
            .path
            .rsplit('/')
            .find(|s| s.parse::<u64>().is_err())
            .unwrap_or("?");
        *counts.entry(format!("{} {kind}", l.method)).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A person edits issue `n`'s description through the server's API.
/// Makes project label `name`, as a maintainer would.
fn make_label(url: &str, name: &str) {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("name", name)
        .append_pair("color", "#6699cc")
        .finish();
    let project: String = url::form_urlencoded::byte_serialize(PROJECT.as_bytes()).collect();
    let (status, text) = http(
        url.trim_start_matches("http://"),
        "POST",
        &format!("/api/v4/projects/{project}/labels"),
        &[
            ("private-token", PERSON),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    );
    assert!(
        status == 201 || status == 409,
        "making label {name}: {text}"
    );
}

fn edit_description(url: &str, n: u64, description: &str) {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("description", description)
        .finish();
    let project: String = url::form_urlencoded::byte_serialize(PROJECT.as_bytes()).collect();
    let (status, text) = http(
        url.trim_start_matches("http://"),
        "PUT",
        &format!("/api/v4/projects/{project}/issues/{n}"),
        &[
            ("private-token", PERSON),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    );
    assert_eq!(status, 200, "editing #{n}: {text}");
}

/// GitLab's Issue Hook example about issue `n` with `body`.
fn issue_hook(n: u64, body: &str) -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab/webhooks/issue.json");
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the fixture")).expect("JSON");
    v["object_attributes"]["iid"] = n.into();
    v["object_attributes"]["description"] = body.into();
    v["project"]["path_with_namespace"] = PROJECT.into();
    serde_json::to_vec(&v).expect("JSON")
}

/// Starts the service and waits until it is ready (its first resync done).
fn start_service(dir: &Path, url: &str, state: &str) -> Service {
    Service::on_gitlab(
        dir,
        url,
        state,
        &["--concurrency", CONCURRENCY],
        &["--resync", "30s"],
        &[
            ("GITLAB_TOKEN", BOT),
            ("SHEPHERD_WEBHOOK_SECRET", SECRET),
            ("SHEPHERD_LOG", "shepherd=warn"),
        ],
    )
}

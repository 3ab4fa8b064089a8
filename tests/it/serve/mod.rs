//! `shepherd serve`: the router without a socket (`tower::ServiceExt::oneshot`) — every
//! endpoint, every bad input, GitHub's documented signature example, a Standard Webhooks
//! signature computed here, replayed deliveries — and the real binary as a service
//! against the GitLab test server (a webhook moves the label without any `reconcile`; the
//! same delivery twice is one move; SIGTERM exits 0) and on the local tracker (resync
//! catches a change no webhook announced). Submodules: the GitHub end to end (`github`),
//! two replicas on PostgreSQL (`replicas`), SIGTERM mid-work (`shutdown`), `/metrics`
//! parsed (`metrics`), the dashboard in Chromium (`browser`), a failing write tried again
//! only at its backoff (`backoff`).

mod backoff;
mod browser;
mod commands;
mod edges;
mod github;
pub(crate) mod metrics;
mod pages;
mod replicas;
pub mod service;
mod shutdown;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use service::{http, Service};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use shepherd::catalog::Sources;
use shepherd::engine::{Engine, Settings};
use shepherd::serve::{app, dashboard, Secrets, Shared};
use shepherd::store::sqlite::SqliteStore;
use shepherd::store::Store;
use shepherd::tracker::Tracker;
use tower::ServiceExt;

use crate::api::Api;
use crate::gitlab_server::{GitLabServer, PROJECT};
use crate::remote::Remote;
use crate::support::{block_on, fixture, start_gitaly, stderr, Shepherd, T0};

const GL: &str = "gitlab:group/project";
const GH: &str = "github:owner/repo";
pub(crate) const SECRET: &str = "It's a Secret to Everybody";
const SIGNING_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// A router over an in-memory Store, serving the local tracker of a fresh directory with
/// one gitaly migration, and a GitLab and a GitHub tracker that know the same numbers.
struct Rig {
    _dir: Shepherd,
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    local: String,
    number: u64,
}

fn rig(secrets: Secrets, published: bool) -> Rig {
    let dir = Shepherd::new();
    let number = start_gitaly(&dir, T0);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory("test".into()).unwrap());
    let tracker = dir.tracker();
    let local = tracker.describe();
    let shared = Arc::new(Shared::new(
        store.clone(),
        secrets,
        vec![local.clone(), GL.into(), GH.into()],
    ));
    let catalog = Sources::builtin().load().unwrap();
    block_on(async {
        let engine = Engine::new(
            &tracker,
            &catalog,
            store.as_ref(),
            Settings::acting_as("tester"),
        );
        let index = engine.index().await.unwrap();
        shared.set_known(GL, &index);
        shared.set_known(GH, &index);
        if published {
            shared.set_known(&local, &index);
            dashboard::publish(&engine, &shared, &index).await.unwrap();
            shared.set_ready(true);
        }
    });
    Rig {
        _dir: dir,
        shared,
        store,
        local,
        number,
    }
}

/// The service's pages over `s`'s local tracker (its `workflows/` and `templates/` beside
/// the built-in ones) as after its first resync, with a fresh Store: a GET of a path
/// ((status, body)), and what the resync's look at every migration found.
pub(crate) fn local_pages(
    s: &Shepherd,
) -> (
    impl Fn(&str) -> (StatusCode, String),
    Vec<shepherd::engine::due::Look>,
) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory("test".into()).unwrap());
    let tracker = s.tracker();
    let local = tracker.describe();
    let secrets = Secrets::new(None, None, false).unwrap();
    let shared = Arc::new(Shared::new(store.clone(), secrets, vec![local.clone()]));
    let mut sources = Sources::builtin();
    sources.add_workflow_dir(&s.path("workflows")).unwrap();
    sources.add_template_dir(&s.path("templates")).unwrap();
    let catalog = sources.load().unwrap();
    let looks = block_on(async {
        let engine = Engine::new(&tracker, &catalog, store.as_ref(), Settings::acting_as("t"));
        let index = engine.index().await.unwrap();
        let looks = engine.looks(&index, None).await.unwrap();
        shared.set_known(&local, &index);
        dashboard::publish(&engine, &shared, &index).await.unwrap();
        shared.set_ready(true);
        looks
    });
    let get = move |path: &str| {
        block_on(async {
            let request = Request::get(path).body(Body::empty()).unwrap();
            let response = app(shared.clone()).oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        })
    };
    (get, looks)
}

fn secrets() -> Secrets {
    let token = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(SIGNING_KEY)
    );
    Secrets::new(Some(SECRET), Some(&token), false).unwrap()
}

impl Rig {
    fn send(&self, request: Request<Body>) -> (StatusCode, String) {
        block_on(async {
            let response = app(self.shared.clone()).oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        })
    }

    fn get(&self, path: &str) -> (StatusCode, String) {
        self.send(Request::get(path).body(Body::empty()).unwrap())
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, String) {
        let mut request = Request::post(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request.body(Body::from(body)).unwrap())
    }

    /// The queue's keys, taken and handed back.
    fn queued(&self) -> Vec<String> {
        block_on(async {
            let taken = self
                .store
                .take_due("peek", 1000, Duration::from_secs(60))
                .await
                .unwrap();
            for e in &taken {
                self.store.done(&e.key, "peek").await.unwrap();
                self.store.enqueue(&e.key, e.due, &e.reason).await.unwrap();
            }
            let mut keys: Vec<String> = taken.into_iter().map(|e| e.key).collect();
            keys.sort();
            keys
        })
    }

    fn body(&self) -> String {
        self._dir.issue(self.number).body
    }
}

fn read_fixture(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(path)).unwrap()).unwrap()
}

/// GitLab's Issue Hook example, about issue `iid` of `project` with `body`.
pub(crate) fn gitlab_issue_hook(iid: u64, body: &str, project: &str) -> Vec<u8> {
    let mut v = read_fixture("gitlab/webhooks/issue.json");
    v["object_attributes"]["iid"] = iid.into();
    v["object_attributes"]["description"] = body.into();
    v["project"]["path_with_namespace"] = project.into();
    serde_json::to_vec(&v).unwrap()
}

pub(crate) fn gitlab_headers<'a>(token: &'a str, uuid: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("x-gitlab-token", token),
        ("x-gitlab-event", "Issue Hook"),
        ("x-gitlab-event-uuid", uuid),
        ("content-type", "application/json"),
    ]
}

pub(super) fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn standard_signature(id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_KEY).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn health_dashboard_api_metrics_and_unknown_paths() {
    let rig = rig(secrets(), false);
    assert_eq!(rig.get("/healthz"), (StatusCode::OK, "ok\n".into()));
    let (status, _) = rig.get("/readyz");
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready before a resync"
    );
    let (status, page) = rig.get("/");
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("http-equiv=\"refresh\""), "{page}");
    assert_eq!(
        rig.get("/api/migrations").0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(rig.get("/nowhere").0, StatusCode::NOT_FOUND);
    assert_eq!(rig.get("/hooks/gitlab").0, StatusCode::METHOD_NOT_ALLOWED);

    let rig = rig_published();
    assert_eq!(rig.get("/readyz"), (StatusCode::OK, "ready\n".into()));
    let (status, page) = rig.get("/");
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    assert!(page.contains("Migration report"), "the report page");
    assert!(page.contains("selection") || page.contains("Selection"));
    let (status, text) = rig.get("/api/migrations?tracker=local");
    assert_eq!(status, StatusCode::OK);
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["tracker"], rig.local.as_str());
    assert_eq!(report["migrations"][0]["ref"], rig.number);
    assert_eq!(report["migrations"][0]["stage"], "selection");
    let (status, text) = rig.get(&format!("/api/migrations/local/{}", rig.number));
    assert_eq!(status, StatusCode::OK, "{text}");
    let one: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(one["ref"], rig.number);
    assert_eq!(one["workflow"], "gitaly-migration");
    assert_eq!(one["tracker"], rig.local.as_str());
    // The tracker as it describes itself, slashes and all.
    let (status, _) = rig.get(&format!("/api/migrations/{}/%23{}", rig.local, rig.number));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        rig.get("/api/migrations/local/999").0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        rig.get("/api/migrations/nowhere/1").0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(rig.get("/api/migrations/local/x").0, StatusCode::NOT_FOUND);
    assert_eq!(rig.get("/api/migrations/1").0, StatusCode::NOT_FOUND);
    // Several trackers: the reports of each, or one by name.
    let (status, text) = rig.get("/api/migrations");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");

    let (status, metrics) = rig.get("/metrics");
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    for series in [
        "shepherd_queue_depth 0",
        "shepherd_failing_migrations 0",
        "shepherd_migrations{tracker=",
        "stage=\"selection\"} 1",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    check_exposition(&metrics);
}

/// The GitLab test server with shepherd's bot, as the service's tests drive it.
fn gitlab_lab() -> Remote<GitLabServer> {
    Remote::new(
        GitLabServer::start(&[(BOT, "shepherd-bot")]),
        &format!("gitlab:{PROJECT}"),
        "--gitlab-url",
        "GITLAB_TOKEN",
        BOT,
    )
}

/// `shepherd serve SERVE_ARGS` on `lab`'s project with a SQLite Store in `dir`; it reads
/// through the Store's cache, as in production.
fn serve_on_gitlab(
    lab: &Remote<GitLabServer>,
    dir: &std::path::Path,
    serve_args: &[&str],
) -> Service {
    let state = format!("sqlite:{}", dir.join("state.db").display());
    let env = [("GITLAB_TOKEN", BOT), ("SHEPHERD_WEBHOOK_SECRET", SECRET)];
    Service::on_gitlab(dir, lab.server.url(), &state, &[], serve_args, &env)
}

fn rig_published() -> Rig {
    rig(secrets(), true)
}

/// Every sample line of a Prometheus text exposition is `name{labels} value`, every
/// family is announced by `# TYPE`, and the text ends with `# EOF`.
fn check_exposition(text: &str) {
    let mut types = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            types.push(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect("name and value");
        value
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let bare = name.split('{').next().unwrap();
        assert!(
            types
                .iter()
                .any(|t| bare == t || bare.strip_suffix("_total") == Some(t)),
            "{bare} has no # TYPE"
        );
        if let Some(labels) = name.split_once('{').map(|(_, l)| l) {
            assert!(labels.ends_with('}'), "{line}");
        }
    }
}

#[test]
fn gitlab_hooks_are_checked_before_reading_and_queue_the_migration_once() {
    let rig = rig(secrets(), false);
    let n = rig.number;
    let body = gitlab_issue_hook(n, &rig.body(), PROJECT);
    // No token, a wrong one: 401, and a malformed body is not even read.
    for headers in [
        vec![("x-gitlab-event", "Issue Hook")],
        gitlab_headers("wrong", "u-0"),
        gitlab_headers("", "u-0"),
    ] {
        assert_eq!(
            rig.post("/hooks/gitlab", &headers, body.clone()),
            (StatusCode::UNAUTHORIZED, "unauthorized\n".into())
        );
        assert_eq!(
            rig.post("/hooks/gitlab", &headers, b"{not json".to_vec()).0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(rig.queued().is_empty());
    // Malformed JSON, and an issue event without its iid: 400.
    let good = gitlab_headers(SECRET, "u-1");
    assert_eq!(
        rig.post("/hooks/gitlab", &good, b"{not json".to_vec()).0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        rig.post("/hooks/gitlab", &good, b"[]".to_vec()).0,
        StatusCode::BAD_REQUEST
    );
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    v["object_attributes"]
        .as_object_mut()
        .unwrap()
        .remove("iid");
    let (status, text) = rig.post("/hooks/gitlab", &good, serde_json::to_vec(&v).unwrap());
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("iid"), "{text}");
    assert!(rig.queued().is_empty());
    // An issue that is no migration, another project, a push: 202 and nothing queued.
    let other = gitlab_issue_hook(n + 100, "just an issue", PROJECT);
    assert_eq!(
        rig.post("/hooks/gitlab", &good, other).0,
        StatusCode::ACCEPTED
    );
    let elsewhere = gitlab_issue_hook(n, &rig.body(), "someone/else");
    assert_eq!(
        rig.post("/hooks/gitlab", &good, elsewhere).0,
        StatusCode::ACCEPTED
    );
    let push = json!({"object_kind": "push", "project": {"path_with_namespace": PROJECT}});
    let mut push_headers = good.clone();
    push_headers[1] = ("x-gitlab-event", "Push Hook");
    assert_eq!(
        rig.post(
            "/hooks/gitlab",
            &push_headers,
            push.to_string().into_bytes()
        )
        .0,
        StatusCode::ACCEPTED
    );
    assert!(rig.queued().is_empty());
    // The migration's own issue: queued, once, however often it is delivered.
    let (status, text) = rig.post("/hooks/gitlab", &good, body.clone());
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    assert_eq!(rig.queued(), [format!("{GL}#{n}")]);
    let (status, text) = rig.post("/hooks/gitlab", &good, body.clone());
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("seen before"), "{text}");
    assert_eq!(rig.queued(), [format!("{GL}#{n}")]);
    // A note on the issue whose payload carries no marker: known from the index.
    let mut note = read_fixture("gitlab/webhooks/note_issue.json");
    note["issue"]["iid"] = n.into();
    note["project"]["path_with_namespace"] = PROJECT.into();
    let mut note_headers = gitlab_headers(SECRET, "u-2");
    note_headers[1] = ("x-gitlab-event", "Note Hook");
    assert_eq!(
        rig.post(
            "/hooks/gitlab",
            &note_headers,
            note.to_string().into_bytes()
        )
        .0,
        StatusCode::ACCEPTED
    );
    // A merge request that closes the migration's issue.
    let mut mr = read_fixture("gitlab/webhooks/merge_request.json");
    mr["object_attributes"]["description"] = format!("Closes #{n}").into();
    mr["project"]["path_with_namespace"] = PROJECT.into();
    let mut mr_headers = gitlab_headers(SECRET, "u-3");
    mr_headers[1] = ("x-gitlab-event", "Merge Request Hook");
    let (status, text) = rig.post("/hooks/gitlab", &mr_headers, mr.to_string().into_bytes());
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(text.contains(&format!("#{n}")), "{text}");
    // A release concerns every migration.
    let release = json!({"object_kind": "release", "project": {"path_with_namespace": PROJECT}});
    let mut release_headers = gitlab_headers(SECRET, "u-4");
    release_headers[1] = ("x-gitlab-event", "Release Hook");
    let (status, text) = rig.post(
        "/hooks/gitlab",
        &release_headers,
        release.to_string().into_bytes(),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    assert_eq!(rig.queued(), [format!("{GL}#{n}")], "coalesced by key");

    let (_, metrics) = rig.get("/metrics");
    for series in [
        "shepherd_webhook_deliveries_total{source=\"gitlab\",result=\"unauthorized\"} 6",
        "shepherd_webhook_deliveries_total{source=\"gitlab\",result=\"malformed\"} 3",
        "shepherd_webhook_deliveries_total{source=\"gitlab\",result=\"ignored\"} 3",
        "shepherd_webhook_deliveries_total{source=\"gitlab\",result=\"duplicate\"} 1",
        "shepherd_webhook_deliveries_total{source=\"gitlab\",result=\"queued\"} 4",
        "shepherd_queue_depth 1",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    check_exposition(&metrics);
}

#[test]
fn gitlab_signing_token_standard_webhooks() {
    let rig = rig(secrets(), false);
    let n = rig.number;
    let body = gitlab_issue_hook(n, &rig.body(), PROJECT);
    let now = chrono::Utc::now().timestamp();
    let send = |id: &str, at: i64, signature: &str| {
        let at = at.to_string();
        rig.post(
            "/hooks/gitlab",
            &[
                ("webhook-id", id),
                ("webhook-timestamp", &at),
                ("webhook-signature", signature),
                ("x-gitlab-event", "Issue Hook"),
            ],
            body.clone(),
        )
        .0
    };
    let good = standard_signature("msg_1", now, &body);
    // Tampered, signed with another id, too old, from the future: 401.
    let mut tampered = body.clone();
    tampered[0] = b' ';
    let at = now.to_string();
    let tampered_status = rig
        .post(
            "/hooks/gitlab",
            &[
                ("webhook-id", "msg_1"),
                ("webhook-timestamp", &at),
                ("webhook-signature", &good),
            ],
            tampered,
        )
        .0;
    assert_eq!(tampered_status, StatusCode::UNAUTHORIZED);
    assert_eq!(send("msg_2", now, &good), StatusCode::UNAUTHORIZED);
    let old = now - 6 * 60;
    assert_eq!(
        send("msg_1", old, &standard_signature("msg_1", old, &body)),
        StatusCode::UNAUTHORIZED
    );
    let ahead = now + 6 * 60;
    assert_eq!(
        send("msg_1", ahead, &standard_signature("msg_1", ahead, &body)),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(send("msg_1", now, "v1,AAAA"), StatusCode::UNAUTHORIZED);
    assert!(rig.queued().is_empty());
    // Good (among other signatures, as key rotation sends them): queued.
    assert_eq!(
        send("msg_1", now, &format!("v1,bm9wZQ== {good}")),
        StatusCode::ACCEPTED
    );
    assert_eq!(rig.queued(), [format!("{GL}#{n}")]);
    // The same webhook-id again, freshly signed: acknowledged, not queued again.
    block_on(rig.store.take_due("w", 10, Duration::from_secs(60))).unwrap();
    block_on(rig.store.done(&format!("{GL}#{n}"), "w")).unwrap();
    assert!(rig.queued().is_empty());
    let later = now + 1;
    assert_eq!(
        send("msg_1", later, &standard_signature("msg_1", later, &body)),
        StatusCode::OK
    );
    assert!(
        rig.queued().is_empty(),
        "a replayed webhook-id is not queued"
    );
}

#[test]
fn github_hooks_with_the_documented_signature() {
    let rig = rig(secrets(), false);
    let n = rig.number;
    // GitHub's documented example: this secret, this payload, this signature.
    let documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(hub_signature(SECRET, b"Hello, World!"), documented);
    let ping = |signature: &str, payload: &[u8]| {
        rig.post(
            "/hooks/github",
            &[
                ("x-github-event", "ping"),
                ("x-hub-signature-256", signature),
            ],
            payload.to_vec(),
        )
    };
    assert_eq!(ping(documented, b"Hello, World!").0, StatusCode::OK);
    assert_eq!(
        ping(documented, b"Hello, World?"),
        (StatusCode::UNAUTHORIZED, "unauthorized\n".into())
    );
    assert_eq!(ping("sha256=zz", b"x").0, StatusCode::UNAUTHORIZED);
    assert_eq!(ping("", b"x").0, StatusCode::UNAUTHORIZED);
    let ping_payload = std::fs::read(fixture("github/webhooks/ping.0.json")).unwrap();
    assert_eq!(
        ping(&hub_signature(SECRET, &ping_payload), &ping_payload).0,
        StatusCode::OK
    );

    let deliver = |event: &str, id: &str, payload: &[u8]| {
        let signature = hub_signature(SECRET, payload);
        rig.post(
            "/hooks/github",
            &[
                ("x-github-event", event),
                ("x-github-delivery", id),
                ("x-hub-signature-256", &signature),
            ],
            payload.to_vec(),
        )
    };
    let mut labeled = read_fixture("github/webhooks/issues.labeled.0.json");
    labeled["issue"]["number"] = n.into();
    labeled["issue"]["body"] = rig.body().into();
    labeled["repository"]["full_name"] = "owner/repo".into();
    let labeled = serde_json::to_vec(&labeled).unwrap();
    // No event name, bad JSON, an issue without its number: 400.
    let signature = hub_signature(SECRET, &labeled);
    assert_eq!(
        rig.post(
            "/hooks/github",
            &[("x-hub-signature-256", signature.as_str())],
            labeled.clone()
        )
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        deliver("issues", "d-0", b"{\"issue\":").0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        deliver("issues", "d-0", br#"{"issue": {"title": "x"}}"#).0,
        StatusCode::BAD_REQUEST
    );
    assert!(rig.queued().is_empty());
    // A comment on an issue that is no migration: nothing queued.
    let mut comment = read_fixture("github/webhooks/issue_comment.created.0.json");
    comment["issue"]["number"] = (n + 50).into();
    comment["repository"]["full_name"] = "owner/repo".into();
    assert_eq!(
        deliver(
            "issue_comment",
            "d-1",
            &serde_json::to_vec(&comment).unwrap()
        )
        .0,
        StatusCode::ACCEPTED
    );
    assert!(rig.queued().is_empty());
    // The migration's issue, labeled: queued once, also when delivered again.
    assert_eq!(deliver("issues", "d-2", &labeled).0, StatusCode::ACCEPTED);
    assert_eq!(rig.queued(), [format!("{GH}#{n}")]);
    assert_eq!(deliver("issues", "d-2", &labeled).0, StatusCode::OK);
    // A comment on it whose payload carries the body of an unmarked issue: the index
    // knows it.
    comment["issue"]["number"] = n.into();
    assert_eq!(
        deliver(
            "issue_comment",
            "d-3",
            &serde_json::to_vec(&comment).unwrap()
        )
        .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(rig.queued(), [format!("{GH}#{n}")]);
}

#[test]
fn oversized_and_odd_bodies_never_panic() {
    let rig = rig(secrets(), false);
    // Above 25 MiB: 413.
    let big = vec![b' '; 25 * 1024 * 1024 + 1];
    let (status, _) = rig.post("/hooks/gitlab", &gitlab_headers(SECRET, "big"), big);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    for body in [
        &b""[..],
        b"null",
        b"1",
        b"\"x\"",
        b"{\"object_kind\": 5}",
        b"{\"object_kind\": \"issue\", \"object_attributes\": {\"iid\": -1}}",
        b"{\"object_kind\": \"note\", \"object_attributes\": {\"noteable_type\": \"Issue\"}, \"issue\": {\"iid\": \"1\"}}",
        b"{\"object_kind\": \"merge_request\", \"object_attributes\": {\"iid\": 1, \"description\": 7}}",
        b"\xff\xfe",
    ] {
        let (status, _) = rig.post("/hooks/gitlab", &gitlab_headers(SECRET, "odd"), body.to_vec());
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::ACCEPTED,
            "{status} for {:?}",
            String::from_utf8_lossy(body)
        );
        let signature = hub_signature(SECRET, body);
        let (status, _) = rig.post(
            "/hooks/github",
            &[
                ("x-github-event", "issues"),
                ("x-hub-signature-256", &signature),
            ],
            body.to_vec(),
        );
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::ACCEPTED,
            "{status}"
        );
    }
    assert!(rig.queued().is_empty());
}

#[test]
fn insecure_mode_and_github_without_a_secret() {
    // Only a signing token: GitHub deliveries cannot be checked, so none is accepted.
    let token = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(SIGNING_KEY)
    );
    let rig = rig(Secrets::new(None, Some(&token), false).unwrap(), false);
    let (status, _) = rig.post(
        "/hooks/github",
        &[("x-github-event", "ping")],
        b"{}".to_vec(),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let open = rig_with(Secrets::new(None, None, true).unwrap());
    let body = gitlab_issue_hook(open.number, &open.body(), PROJECT);
    let (status, _) = open.post("/hooks/gitlab", &[], body);
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(open.queued().len(), 1);
}

fn rig_with(secrets: Secrets) -> Rig {
    rig(secrets, false)
}

// ---- the binary as a service ------------------------------------------------------

/// The value of the sample `series` (name and labels, exactly) in `/metrics`.
pub(crate) fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub(crate) const BOT: &str = "glpat-bot-0123456789";

#[test]
fn serve_moves_a_gitlab_migration_when_its_webhook_arrives() {
    let lab = gitlab_lab();
    let n = lab.start();
    assert!(lab.labels(n).contains(&"Selection".to_string()));
    let dir = tempfile::tempdir().unwrap();
    let service = serve_on_gitlab(&lab, dir.path(), &[]);
    // The first resync found the migration blocked: nothing moved.
    let (status, text) = service.get(&format!("/api/migrations/gitlab/{n}"));
    assert_eq!(status, 200, "{text}");
    let before: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(before["stage"], "selection");

    // A person ticks the Selection checklist; GitLab sends an Issue Hook.
    lab.tick_section(n, "Selection");
    let body = gitlab_issue_hook(n, &lab.server.body(n), PROJECT);
    let headers = gitlab_headers(SECRET, "7d3e1f0a-serve-test-1");
    let (status, text) = service.post("/hooks/gitlab", &headers, &body);
    assert_eq!(status, 202, "{text}");
    service.wait_for("the label to move", || {
        lab.labels(n).contains(&"Migration Analysis".to_string())
    });
    assert!(!lab.labels(n).contains(&"Selection".to_string()));

    // The same delivery again: acknowledged, not queued; one move, one audit comment.
    let (status, text) = service.post("/hooks/gitlab", &headers, &body);
    assert_eq!(status, 200, "{text}");
    let audits = lab
        .server
        .comment_bodies(n)
        .iter()
        .filter(|b| b.contains("shepherd:transition="))
        .count();
    service.wait_for("the move counted", || {
        let (_, metrics) = service.get("/metrics");
        sample(
            &metrics,
            &format!("shepherd_transitions_total{{tracker=\"gitlab:{PROJECT}\",workflow=\"gitaly-migration\",from=\"selection\",to=\"migration-analysis\"}}"),
        ) == Some(1.0)
    });
    let (_, metrics) = service.get("/metrics");
    assert_eq!(
        sample(
            &metrics,
            "shepherd_webhook_deliveries_total{source=\"gitlab\",result=\"duplicate\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    check_exposition(&metrics);
    // What the service asked of GitLab: the user probe, lists, the move's reads and writes.
    let asked = sample(
        &metrics,
        &format!("shepherd_tracker_requests_total{{tracker=\"gitlab:{PROJECT}\",outcome=\"ok\"}}"),
    );
    assert!(asked.is_some_and(|n| n >= 4.0), "{metrics}");
    // The dashboard follows.
    service.wait_for("the dashboard to follow", || {
        let (_, text) = service.get(&format!("/api/migrations/gitlab/{n}"));
        serde_json::from_str::<Value>(&text).is_ok_and(|v| v["stage"] == "migration-analysis")
    });
    // It shows the move as the move saw it: the history has it, and the page read neither
    // the comments nor the issue list again after the move's write.
    let (_, text) = service.get(&format!("/api/migrations/gitlab/{n}"));
    let status_json: Value = serde_json::from_str(&text).unwrap();
    let history = status_json["history"].to_string();
    assert!(history.contains("migration-analysis"), "{text}");
    let log = lab.server.log();
    let moved_at = log
        .iter()
        .rposition(|l| l.method == "PUT" && l.path.ends_with(&format!("/issues/{n}")))
        .expect("the move's write");
    let after: Vec<String> = log[moved_at + 1..]
        .iter()
        .filter(|l| l.user == "shepherd-bot")
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert!(
        !after
            .iter()
            .any(|l| l.ends_with("/notes") || l.ends_with("/issues")),
        "{after:?}"
    );
    let (status, page) = service.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("http-equiv=\"refresh\""));
    assert_eq!(service.get("/nowhere").0, 404);
    let mut service = service;
    assert_eq!(service.terminate(), Some(0));
    let audits_after = lab
        .server
        .comment_bodies(n)
        .iter()
        .filter(|b| b.contains("shepherd:transition="))
        .count();
    assert_eq!(audits, audits_after);
    // The initial audit of `start` (entering selection) and the one move.
    assert_eq!(audits, 2, "{:?}", lab.server.comment_bodies(n));
}

#[test]
fn serve_catches_a_change_no_webhook_announced_on_the_local_tracker() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, T0);
    let db = format!("local:{}", s.db().display());
    // A resync every second, and no secret (the local tracker sends no webhooks).
    let service = Service::start_args(
        s.dir.path(),
        &["--tracker", &db, "--concurrency", "2"],
        &["--resync", "1s", "--insecure-no-webhook-secret"],
        &[],
    );
    assert!(
        service
            .log()
            .contains("WARNING: --insecure-no-webhook-secret"),
        "{}",
        service.log()
    );
    let mut service = service;
    s.tick_section(n, None, "Selection", T0);
    service.wait_for("the resync to move it", || {
        s.issue(n)
            .labels
            .contains(&"Migration Analysis".to_string())
    });
    assert_eq!(service.terminate(), Some(0));
    assert!(no_lease_left(&s, n), "no lease left behind");
}

/// Two trackers in one process, by `--tracker` repeated and by `[[trackers]]`: both are
/// resynced and moved, and the API lists both; other commands refuse two trackers.
#[test]
fn one_service_serves_several_trackers() {
    let a = Shepherd::new();
    let b = Shepherd::new();
    let na = start_gitaly(&a, T0);
    let nb = start_gitaly(&b, T0);
    let (da, db) = (a.db().display().to_string(), b.db().display().to_string());
    let two = a.run(&["--tracker", &format!("local:{db}"), "status"]);
    assert_eq!(two.status.code(), Some(1));
    assert!(
        stderr(&two).contains("only `serve` serves several trackers"),
        "{}",
        stderr(&two)
    );

    let moved = |s: &Shepherd, n: u64, label: &str| s.issue(n).labels.contains(&label.to_string());
    a.tick_section(na, None, "Selection", T0);
    b.tick_section(nb, None, "Selection", T0);
    let mut service = Service::start_args(
        a.dir.path(),
        &[
            "--tracker",
            &format!("local:{da}"),
            "--tracker",
            &format!("local:{db}"),
        ],
        &["--resync", "1s", "--insecure-no-webhook-secret"],
        &[],
    );
    service.wait_for("both trackers to move", || {
        moved(&a, na, "Migration Analysis") && moved(&b, nb, "Migration Analysis")
    });
    let (status, body) = service.get("/api/migrations");
    assert_eq!(status, 200, "{body}");
    let reports: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        reports["reports"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    assert_eq!(service.terminate(), Some(0));

    // The same from shepherd.toml, each tracker its own table.
    std::fs::write(
        a.path("shepherd.toml"),
        format!("[[trackers]]\nspec = \"local:{da}\"\n\n[[trackers]]\nspec = \"local:{db}\"\n"),
    )
    .unwrap();
    a.tick_section(na, None, "Migration Analysis", T0);
    b.tick_section(nb, None, "Migration Analysis", T0);
    let mut service = Service::start_args(
        a.dir.path(),
        &[],
        &["--resync", "1s", "--insecure-no-webhook-secret"],
        &[],
    );
    assert!(
        service.log().contains(&da) && service.log().contains(&db),
        "{}",
        service.log()
    );
    service.wait_for("both trackers to move again", || {
        !moved(&a, na, "Migration Analysis") && !moved(&b, nb, "Migration Analysis")
    });
    assert_eq!(service.terminate(), Some(0));
}

/// After a clean stop, no lease is held in the directory's Store.
fn no_lease_left(s: &Shepherd, n: u64) -> bool {
    let store = SqliteStore::open(&s.dir.path().join(".shepherd/state.db"), false).unwrap();
    let key = format!("local:{}#{n}", s.db().display());
    block_on(store.holder(&key)).unwrap().is_none()
}

/// A GitLab or GitHub tracker needs a webhook secret (the local tracker needs none:
/// `edges::serve_on_the_local_tracker_needs_no_webhook_secret`).
#[test]
fn serve_refuses_to_start_without_a_secret() {
    let s = Shepherd::new();
    // `run` serves the local tracker; beside it, a remote one.
    for tracker in ["gitlab:group/project", "github:owner/repo"] {
        let out = s.run(&["--tracker", tracker, "serve", "--listen", "127.0.0.1:0"]);
        assert_eq!(out.status.code(), Some(1), "{tracker}");
        let err = crate::support::stderr(&out);
        assert!(err.contains("SHEPHERD_WEBHOOK_SECRET"), "{err}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_shepherd"))
        .current_dir(s.dir.path())
        .env("SHEPHERD_WEBHOOK_SIGNING_TOKEN", "not-a-whsec-token-xyz")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = crate::support::stderr(&bad);
    assert!(err.contains("whsec_"), "{err}");
    assert!(
        !err.contains("not-a-whsec-token-xyz"),
        "the token is never printed: {err}"
    );
    let usage = s.run(&["serve", "--resync", "soon"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn a_failing_migration_backs_off_while_another_moves() {
    let lab = gitlab_lab();
    let (a, b) = (lab.start(), lab.start());
    let dir = tempfile::tempdir().unwrap();
    let mut service = serve_on_gitlab(&lab, dir.path(), &[]);
    let tracker = format!("gitlab:{PROJECT}");
    lab.tick_section(a, "Selection");
    lab.tick_section(b, "Selection");
    // Reading #a fails from now on (403 is not retried; a 404 would make it no migration).
    lab.server.fail(crate::gitlab_server::Fault::status(
        "GET",
        &format!("/issues/{a}"),
        403,
        None,
        1000,
    ));
    for (n, uuid) in [(a, "fail-a"), (b, "fail-b")] {
        let body = gitlab_issue_hook(n, &lab.server.body(n), PROJECT);
        let (status, text) = service.post("/hooks/gitlab", &gitlab_headers(SECRET, uuid), &body);
        assert_eq!(status, 202, "{text}");
    }
    service.wait_for("#b to move", || {
        lab.labels(b).contains(&"Migration Analysis".to_string())
    });
    service.wait_for("#a to be shown failing", || {
        let (_, metrics) = service.get("/metrics");
        sample(&metrics, "shepherd_failing_migrations") == Some(1.0)
            && sample(
                &metrics,
                &format!("shepherd_advances_total{{tracker=\"{tracker}\",result=\"failed\"}}"),
            )
            .is_some()
    });
    assert!(lab.labels(a).contains(&"Selection".to_string()));
    // Its retry waits for the backoff: it is queued, a minute or more from now.
    let (_, metrics) = service.get("/metrics");
    assert_eq!(
        sample(&metrics, "shepherd_queue_depth"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "shepherd_queue_age_seconds"),
        Some(0.0),
        "{metrics}"
    );
    service.wait_for("the dashboard to show #a failing", || {
        let (_, text) = service.get(&format!("/api/migrations/gitlab/{a}"));
        serde_json::from_str::<Value>(&text).is_ok_and(|v| v["failing"].is_string())
    });
    assert_eq!(service.terminate(), Some(0));
}

#[test]
fn a_soak_moves_on_its_timer() {
    let s = Shepherd::new();
    crate::support::write_workflow(
        s.dir.path(),
        "soak-test",
        "name: soak-test\ndescription: A one-minute soak\ntracking:\n  template: soak-test\n  labels: [\"soak\"]\nstages:\n  - id: soaking\n    label: \"soak::soaking\"\n    gates:\n      - min_duration: 1m\n    next: done\n  - id: done\n    label: \"soak::done\"\n    terminal: true\n",
        &[("soak-test", "---\ntitle: \"A soak\"\nlabels: [\"soak\"]\n---\nNothing to tick: a minute passes.\n")],
    );
    // On the system clock (no --now): the soak ends a minute from now.
    let started = s.json(&["start", "soak-test"]);
    assert_eq!(started["stage"], "soaking");
    let n = started["ref"].as_u64().unwrap();
    let db = format!("local:{}", s.db().display());
    // Resync every 10 minutes: only the timer can move it within the test.
    let mut service = Service::start(
        s.dir.path(),
        &["--tracker", &db],
        &[("SHEPHERD_WEBHOOK_SECRET", SECRET)],
    );
    let (_, metrics) = service.get("/metrics");
    assert_eq!(
        sample(&metrics, "shepherd_queue_depth"),
        Some(1.0),
        "queued for the end of the soak: {metrics}"
    );
    let deadline = Instant::now() + Duration::from_secs(150);
    while !s.issue(n).labels.contains(&"soak::done".to_string()) {
        assert!(
            Instant::now() < deadline,
            "the soak did not end on its timer:\n{}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(service.terminate(), Some(0));
}

/// `shepherd serve` of the GitLab test server's project in `dir`, on the Store at `state`,
/// two advances at a time, with the bot's token and the webhook secret, and `env` more.
pub(crate) fn serve_gitlab(
    dir: &std::path::Path,
    server: &GitLabServer,
    state: &str,
    env: &[(&str, &str)],
) -> Service {
    let mut all = vec![("GITLAB_TOKEN", BOT), ("SHEPHERD_WEBHOOK_SECRET", SECRET)];
    all.extend(env);
    let concurrency = ["--concurrency", "2"];
    Service::on_gitlab(dir, &server.url, state, &concurrency, &[], &all)
}

/// Seeds `count` gitaly migrations in Ready for Testing, every box ticked if `ticked`.
pub(crate) fn seed_ready_for_testing(server: &impl Api, count: usize, ticked: bool) -> Vec<u64> {
    let catalog = Sources::builtin().load().expect("shipped workflows load");
    let mut body = crate::api::gitaly_body(&catalog, 1, crate::api::gitaly_vars());
    if ticked {
        body = body.replace("- [ ] ", "- [x] ");
    }
    (0..count)
        .map(|i| {
            server.seed_issue(
                &format!("migration {i}"),
                &body,
                &["Migration", "Conversation", "Migration:Ready-for-Testing"],
            )
        })
        .collect()
}

/// The person with `token` edits issue `n` through the server's API, with the form `form`.
pub(crate) fn put_issue(server: &GitLabServer, token: &str, n: u64, form: &str) {
    let path = format!(
        "/api/v4/projects/{}/issues/{n}",
        url::form_urlencoded::byte_serialize(PROJECT.as_bytes()).collect::<String>()
    );
    let (status, text) = http(
        server.url.trim_start_matches("http://"),
        "PUT",
        &path,
        &[
            ("private-token", token),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    );
    assert_eq!(status, 200, "editing #{n} with {form}: {text}");
}

//! A stateful GitHub REST API test server (axum on 127.0.0.1) for one repository: issues
//! (with pull requests among them, as GitHub lists them), comments, labels, the issue
//! timeline (with an event type octocrab does not know) and sub-issues; pull requests of
//! any repository that reference its issues, and releases (`github_facts.rs`). Its JSON starts
//! from the examples in GitHub's own OpenAPI description. It checks the token (each token
//! is a user), pages with `Link` headers, answers lists with an `ETag` and a conditional
//! request whose `If-None-Match` still matches with 304, filters lists by `since` (on
//! `updated_at`, inclusive), deletes comments, logs every request with its status, injects
//! faults (secondary rate limits: 403 with `Retry-After`; 429; 5xx; a lost response; no
//! answer; a connection closed mid-response) and latency, can answer 404 to the
//! sub-issues API as GitHub Enterprise Server 3.17 does (`without_sub_issues`), can
//! let time pass for what it recorded (`travel`), and can hold its clock within one
//! second (`hold_clock`: the stamps it records and the `Date` it answers with).
//! What it shares with the GitLab server (its data, log, faults, clock and handler) is
//! `test_server.rs`; this file is what only GitHub has.

#![allow(dead_code)]

#[path = "github_facts.rs"]
mod facts;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

#[allow(unused_imports)] // the benchmarks inject no faults
pub use crate::test_server::Fault;
use crate::test_server::ReleaseKind::{self, *};
use crate::test_server::{add_comment, Request, Server, Tracked};
use crate::test_server::{created, issues_asked, ok, page_of, param, parse_time};

pub const OWNER: &str = "octo-org";
pub const REPO: &str = "migrations";

/// One request as the server saw it.
pub type Logged = crate::test_server::Logged<Sent>;

/// What GitHub's server logs of a request besides its method, path, query and user.
#[derive(Clone, Debug)]
pub struct Sent {
    pub body: Value,
    /// The `If-None-Match` the request carried.
    pub if_none_match: Option<String>,
}

/// What the server keeps behind its lock.
pub type Data = crate::test_server::Data<GitHub>;

/// What GitHub's server keeps besides what `Data` holds for both (its timeline is `events`).
#[derive(Default)]
pub struct Own {
    /// Collaborators' permissions by login (`admin`, `write`, `read`, …).
    permissions: BTreeMap<String, String>,
    subs: Vec<(u64, u64)>,
    /// Answer 404 to the sub-issues API, as GitHub Enterprise Server before 3.18 does.
    no_sub_issues: bool,
    /// Pull requests and releases (`github_facts.rs`).
    facts: facts::Facts,
    /// What people do the moment a request arrives (`meanwhile_label`).
    meanwhile: Vec<Meanwhile>,
}

/// A label a person adds to an issue when a request arrives, before it is answered.
struct Meanwhile {
    method: &'static str,
    path_ends: String,
    issue: u64,
    label: String,
    user: String,
}

struct Examples {
    issue: Value,
    comment: Value,
    label: Value,
    user: Value,
}

impl GitHubServer {
    /// Gives `login` a permission on the repository (`write`, `read`, …).
    pub fn set_permission(&self, login: &str, permission: &str) {
        self.shared
            .data
            .lock()
            .unwrap()
            .permissions
            .insert(login.to_string(), permission.to_string());
    }
}

/// GitHub's part of what the server shares with its handler.
pub struct GitHub {
    examples: Examples,
    /// The address clients reach the API at: the `url` of every issue and the `Link`
    /// pages point there, as GitHub (and GitHub Enterprise Server) answer.
    api: OnceLock<String>,
}

/// What the server shares with its handler.
pub type Shared = crate::test_server::Shared<GitHub>;

/// The API's address for `url` fields and `Link` headers.
fn api(shared: &Shared) -> &str {
    shared
        .api
        .get()
        .map(String::as_str)
        .unwrap_or("https://api.github.com")
}

impl Tracked for GitHub {
    type Own = Own;
    type Sent = Sent;
    const FAULT: &'static str = "You have exceeded a secondary rate limit (injected)";
    const COMMENTS: &'static str = "comments";
    const ADDED: (&'static str, &'static str) = ("event", "labeled");

    fn comment_json(shared: &Shared, n: u64, id: u64, user: &str, body: &str, now: Stamp) -> Value {
        let mut c = shared.examples.comment.clone();
        c["id"] = json!(id);
        c["body"] = json!(body);
        c["user"] = user_json(shared, user);
        c["created_at"] = json!(stamp(now));
        c["updated_at"] = json!(stamp(now));
        c["issue_url"] = json!(format!(
            "https://api.github.com/repos/{OWNER}/{REPO}/issues/{n}"
        ));
        c
    }
    /// A draft has no `published_at`; GitHub has no upcoming releases.
    const RELEASES: &'static [ReleaseKind] = &[Published, Draft, Prerelease];

    fn stamp(t: DateTime<Utc>) -> Value {
        json!(stamp(t))
    }
    /// Issues, their comments and timelines: created and updated; pull requests and
    /// releases too when everything moves.
    fn shift(data: &mut Data, only: Option<u64>, d: chrono::Duration) {
        let mine = |n: &u64| only.is_none_or(|o| o == *n);
        let shift = |v: &mut Value| {
            for key in ["created_at", "updated_at"] {
                if let Some(t) = v[key].as_str().map(parse_time) {
                    v[key] = json!(stamp(t - d));
                }
            }
        };
        let issues = data.issues.iter_mut().filter(|(n, _)| mine(n));
        issues.for_each(|(_, i)| shift(i));
        let kept = data.comments.iter_mut().chain(data.events.iter_mut());
        kept.filter(|(n, _)| mine(n)).for_each(|(_, v)| shift(v));
        if only.is_none() {
            data.own.facts.travel(d);
        }
    }
    fn error_body(message: &str) -> Value {
        json!({"message": message, "documentation_url": "https://docs.github.com/rest"})
    }
    /// The answer to one request; `None` for a request that is never answered.
    /// The JSON body and `If-None-Match` of a request, and the user of its token (`Bearer`
    /// or `token`).
    fn read(shared: &Shared, request: &Request) -> (Sent, Result<String, Response>) {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let token = request.header("authorization").map(|t| {
            t.trim_start_matches("Bearer ")
                .trim_start_matches("token ")
                .to_string()
        });
        let user = token.and_then(|t| shared.tokens.get(&t).cloned());
        let user = user.ok_or_else(|| error(StatusCode::UNAUTHORIZED, "Bad credentials"));
        let if_none_match = request.header("if-none-match").map(str::to_string);
        (
            Sent {
                body,
                if_none_match,
            },
            user,
        )
    }
    /// The answer to a request let in: pull requests and releases of any repository
    /// (`facts`), or the repository's issues, comments, labels.
    fn respond(shared: &Shared, data: &mut Data, r: &Request, sent: &Sent, user: &str) -> Response {
        let (method, uri, query) = (&r.method, &r.uri, &r.query);
        let acting = data
            .meanwhile
            .iter()
            .position(|m| m.method == method.as_str() && uri.path().ends_with(&m.path_ends));
        if let Some(i) = acting {
            let m = data.meanwhile.remove(i);
            let mut labels: Vec<String> = data.issues[&m.issue]["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["name"].as_str().unwrap().to_string())
                .collect();
            labels.push(m.label);
            let now = shared.clock.now();
            set_labels(shared, data, m.issue, &labels, (&m.user, now));
            data.issues.get_mut(&m.issue).unwrap()["updated_at"] = json!(stamp(now));
        }
        let mut parts = uri.path().strip_prefix("/repos/").unwrap_or("").split('/');
        let repo = format!(
            "{}/{}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        );
        let segs: Vec<&str> = parts.filter(|s| !s.is_empty()).collect();
        let mut response = match facts::route(data, method.as_str(), &repo, &segs, query, uri) {
            Some(response) => response,
            None => route(shared, data, r, &segs, &sent.body, user),
        };
        // The pages of a list are on this server, not on api.github.com.
        if let Some(link) = response.headers().get("link").and_then(|v| v.to_str().ok()) {
            let own = link.replace("https://api.github.com", api(shared));
            if let Ok(v) = HeaderValue::from_str(&own) {
                response.headers_mut().insert("link", v);
            }
        }
        // A conditional request whose ETag still matches: 304, no body, no rate limit spent.
        let etag = response.headers().get("etag").cloned();
        if let (Some(etag), Some(sent)) = (etag, &sent.if_none_match) {
            if response.status() == StatusCode::OK && etag.to_str().ok() == Some(sent.as_str()) {
                let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
                for name in ["etag", "link", "x-ratelimit-limit", "x-ratelimit-remaining"] {
                    if let Some(v) = response.headers().get(name) {
                        not_modified.headers_mut().insert(name, v.clone());
                    }
                }
                response = not_modified;
            }
        }
        response
    }
}

/// GitHub's OpenAPI description, parsed once per test process.
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/github/api/api.github.com.json");
        serde_json::from_str(
            &std::fs::read_to_string(path).expect("the GitHub OpenAPI description"),
        )
        .expect("JSON")
    })
}

pub fn example(name: &str) -> Value {
    spec()["components"]["examples"][name]["value"].clone()
}

/// The server, as a test holds it.
pub type GitHubServer = Server<GitHub>;

impl GitHubServer {
    pub fn start(tokens: &[(&str, &str)]) -> GitHubServer {
        let issue = example("issue");
        let examples = Examples {
            user: issue["user"].clone(),
            issue,
            comment: example("issue-comment"),
            label: example("label"),
        };
        let api = OnceLock::new();
        let server = Server::start_with(GitHub { examples, api }, tokens, 5000);
        let _ = server.shared.api.set(server.url.clone());
        server
    }

    /// Issue `n`'s comments, oldest first.
    pub fn comments(&self, n: u64) -> Vec<Value> {
        self.comments_of(n)
    }
    /// When the next `method` request whose path ends with `path_ends` arrives, `user`
    /// adds `label` to issue `n` first: a person acting at the same moment as a client.
    pub fn meanwhile_label(
        &self,
        method: &'static str,
        path_ends: &str,
        n: u64,
        label: &str,
        user: &str,
    ) {
        self.shared.data.lock().unwrap().meanwhile.push(Meanwhile {
            method,
            path_ends: path_ends.to_string(),
            issue: n,
            label: label.to_string(),
            user: user.to_string(),
        });
    }
    /// Answers 404 to the sub-issues API from now on, like GitHub Enterprise Server 3.17.
    pub fn without_sub_issues(&self) {
        self.shared.data.lock().unwrap().no_sub_issues = true;
    }
    /// The timeline events of issue `n`, oldest first.
    pub fn timeline(&self, n: u64) -> Vec<Value> {
        self.events(n)
    }
    pub fn subs(&self) -> Vec<(u64, u64)> {
        self.shared.data.lock().unwrap().subs.clone()
    }

    /// Creates an issue (or, with `pull`, a pull request) directly in the state.
    pub fn seed(&self, title: &str, body: &str, labels: &[&str], user: &str, pull: bool) -> u64 {
        let now = self.shared.clock.now();
        let mut data = self.shared.data.lock().unwrap();
        let n = create(
            &self.shared,
            &mut data,
            title,
            body,
            &labels.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            user,
            now,
        );
        if pull {
            data.issues.get_mut(&n).unwrap()["pull_request"] = json!({"url": format!("https://api.github.com/repos/{OWNER}/{REPO}/pulls/{n}"), "html_url": format!("https://github.com/{OWNER}/{REPO}/pull/{n}"), "diff_url": format!("https://github.com/{OWNER}/{REPO}/pull/{n}.diff"), "patch_url": format!("https://github.com/{OWNER}/{REPO}/pull/{n}.patch")});
        }
        n
    }
}

/// A time the server stamps a record with.
type Stamp = DateTime<Utc>;

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn user_json(shared: &Shared, login: &str) -> Value {
    let mut u = shared.examples.user.clone();
    u["login"] = json!(login);
    u
}

fn label_json(shared: &Shared, data: &mut Data, name: &str) -> Value {
    if let Some(l) = data.labels.iter().find(|l| l["name"] == name) {
        return l.clone();
    }
    data.next_id += 1;
    let mut l = shared.examples.label.clone();
    l["id"] = json!(data.next_id);
    l["name"] = json!(name);
    l["url"] = json!(format!(
        "https://api.github.com/repos/{OWNER}/{REPO}/labels/{}",
        name.replace(' ', "%20")
    ));
    data.labels.push(l.clone());
    l
}

fn create(
    shared: &Shared,
    data: &mut Data,
    title: &str,
    body: &str,
    labels: &[String],
    user: &str,
    now: DateTime<Utc>,
) -> u64 {
    let n = data.issues.keys().max().copied().unwrap_or(0) + 1;
    data.next_id += 1;
    let mut issue = shared.examples.issue.clone();
    issue["id"] = json!(data.next_id);
    issue["number"] = json!(n);
    issue["title"] = json!(title);
    issue["body"] = json!(body);
    issue["state"] = json!("open");
    issue["state_reason"] = Value::Null;
    issue["labels"] = json!([]);
    issue["user"] = user_json(shared, user);
    issue["created_at"] = json!(stamp(now));
    issue["updated_at"] = json!(stamp(now));
    issue["closed_at"] = Value::Null;
    issue["closed_by"] = Value::Null;
    issue["comments"] = json!(0);
    issue["pull_request"] = Value::Null;
    issue["html_url"] = json!(format!("https://github.com/{OWNER}/{REPO}/issues/{n}"));
    issue["url"] = json!(format!("{}/repos/{OWNER}/{REPO}/issues/{n}", api(shared)));
    data.issues.insert(n, issue);
    // Every issue's timeline starts with an event type octocrab's `Event` does not know.
    data.events.push((n, json!({"event": "blocked_by_added", "id": data.next_id, "actor": user_json(shared, user), "created_at": stamp(now)})));
    set_labels(shared, data, n, labels, (user, now));
    n
}

/// Gives issue `n` the labels `wanted`, set `by` a user at a time: a `labeled` or
/// `unlabeled` event each.
fn set_labels(shared: &Shared, data: &mut Data, n: u64, wanted: &[String], by: (&str, Stamp)) {
    let (user, now) = by;
    let current: Vec<String> = data.issues[&n]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    let mut events = Vec::new();
    for l in &current {
        if !wanted.contains(l) {
            events.push((l.clone(), "unlabeled"));
        }
    }
    for l in wanted {
        if !current.contains(l) {
            events.push((l.clone(), "labeled"));
        }
    }
    let mut labels = Vec::new();
    for l in wanted {
        if !labels.iter().any(|x: &Value| x["name"] == l.as_str()) {
            labels.push(label_json(shared, data, l));
        }
    }
    for (label, event) in events {
        data.next_id += 1;
        let l = label_json(shared, data, &label);
        data.events.push((n, json!({"id": data.next_id, "node_id": "LE_x", "url": "https://api.github.com/x", "event": event, "actor": user_json(shared, user), "created_at": stamp(now), "label": {"name": l["name"], "color": l["color"]}, "commit_id": null, "commit_url": null, "performed_via_github_app": null})));
    }
    data.issues.get_mut(&n).unwrap()["labels"] = json!(labels);
}

fn error(status: StatusCode, message: &str) -> Response {
    crate::test_server::error::<GitHub>(status, message)
}

fn page(list: Vec<&Value>, query: &[(String, String)], uri: &Uri) -> Response {
    let (items, page, last) = page_of(list.into_iter(), query, 30);
    let items = Value::Array(items);
    let etag = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        items.to_string().hash(&mut h);
        last.hash(&mut h);
        format!("W/\"{:016x}\"", h.finish())
    };
    let mut r = ok(items);
    r.headers_mut()
        .insert("etag", HeaderValue::from_str(&etag).unwrap());
    let link_to = |p: usize| {
        let others: Vec<String> = query
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
            .collect();
        format!(
            "<https://api.github.com{}?{}&page={p}>",
            uri.path(),
            others.join("&")
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link_to(page - 1)));
        links.push(format!("{}; rel=\"first\"", link_to(1)));
    }
    if !links.is_empty() {
        r.headers_mut()
            .insert("link", HeaderValue::from_str(&links.join(", ")).unwrap());
    }
    r.headers_mut()
        .insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
    r.headers_mut()
        .insert("x-ratelimit-remaining", HeaderValue::from_static("4999"));
    r
}

/// The answer about the repository's own issues, comments, labels and collaborators.
fn route(
    shared: &Shared,
    data: &mut Data,
    request: &Request,
    segs: &[&str],
    body: &Value,
    user: &str,
) -> Response {
    let (method, query, uri) = (&request.method, &request.query[..], &request.uri);
    let now = shared.clock.now();
    let n = |s: &str| s.parse::<u64>().unwrap_or(0);
    match (method.as_str(), segs) {
        ("GET", ["issues"]) => {
            // GitHub: "only show results that were last updated after the given time",
            // to the second and inclusive.
            let state = param(query, "state").unwrap_or("open");
            let list = issues_asked(&data.issues, query, Some(state), "since");
            page(list, query, uri)
        }
        ("POST", ["issues"]) => {
            let Some(title) = body["title"].as_str() else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed: title");
            };
            let labels: Vec<String> = body["labels"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|l| l.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let number = create(
                shared,
                data,
                title,
                body["body"].as_str().unwrap_or(""),
                &labels,
                user,
                now,
            );
            created(data.issues[&number].clone())
        }
        ("GET", ["issues", num]) => match data.issues.get(&n(num)) {
            Some(i) => ok(i.clone()),
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
        ("PATCH", ["issues", num]) => {
            let num = n(num);
            if !data.issues.contains_key(&num) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            if let Some(b) = body["body"].as_str() {
                data.issues.get_mut(&num).unwrap()["body"] = json!(b);
            }
            if let Some(labels) = body["labels"].as_array() {
                let wanted: Vec<String> = labels
                    .iter()
                    .filter_map(|l| l.as_str().map(String::from))
                    .collect();
                set_labels(shared, data, num, &wanted, (user, now));
            }
            if let Some(state) = body["state"].as_str() {
                let i = data.issues.get_mut(&num).unwrap();
                i["state"] = json!(state);
                i["closed_at"] = if state == "closed" {
                    json!(stamp(now))
                } else {
                    Value::Null
                };
            }
            data.issues.get_mut(&num).unwrap()["updated_at"] = json!(stamp(now));
            ok(data.issues[&num].clone())
        }
        // "Get repository permissions for a user", shaped as GitHub's documented example.
        ("GET", ["collaborators", login, "permission"]) => {
            let mut answer = example(
                "repository-collaborator-permission-response-if-user-has-admin-permissions",
            );
            let permission = data
                .permissions
                .get(*login)
                .cloned()
                .unwrap_or_else(|| "none".into());
            answer["permission"] = json!(permission);
            answer["role_name"] = json!(permission);
            answer["user"] = user_json(shared, login);
            ok(answer)
        }
        ("GET", ["issues", num, "comments"]) => {
            let list: Vec<&Value> = data
                .comments
                .iter()
                .filter(|(i, _)| *i == n(num))
                .map(|(_, c)| c)
                .collect();
            page(list, query, uri)
        }
        ("POST", ["issues", num, "comments"]) => {
            let num = n(num);
            let Some(text) = body["body"].as_str() else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed: body");
            };
            if !data.issues.contains_key(&num) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            created(add_comment(shared, data, num, user, text, now))
        }
        ("DELETE", ["issues", "comments", id]) => {
            let Some(at) = data.comments.iter().position(|(_, c)| c["id"] == n(id)) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let (num, _) = data.comments.remove(at);
            let count = data.comments.iter().filter(|(i, _)| *i == num).count();
            data.issues.get_mut(&num).unwrap()["comments"] = json!(count);
            StatusCode::NO_CONTENT.into_response()
        }
        (_, ["issues", _, "sub_issues"]) if data.no_sub_issues => {
            error(StatusCode::NOT_FOUND, "Not Found")
        }
        ("GET", ["issues", num, "timeline"]) => {
            if !data.issues.contains_key(&n(num)) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            let mut list: Vec<Value> = data
                .events
                .iter()
                .filter(|(i, _)| *i == n(num))
                .map(|(_, e)| e.clone())
                .collect();
            list.extend(facts::cross_references(shared, data, n(num)));
            // A comment is a `commented` item: the comment as the comments API shows it,
            // with the event's name and actor (as in GitHub's `timeline-issue-events`
            // example).
            list.extend(
                data.comments
                    .iter()
                    .filter(|(i, _)| *i == n(num))
                    .map(|(_, c)| {
                        let mut item = c.clone();
                        item["event"] = json!("commented");
                        item["actor"] = c["user"].clone();
                        item
                    }),
            );
            // Oldest first; the times are stamped to the second, so text order is time order.
            list.sort_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()));
            page(list.iter().collect(), query, uri)
        }
        ("GET", ["issues", num, "sub_issues"]) => {
            let parent = n(num);
            let list: Vec<&Value> = data
                .subs
                .iter()
                .filter(|(p, _)| *p == parent)
                .filter_map(|(_, c)| data.issues.get(c))
                .collect();
            page(list, query, uri)
        }
        ("POST", ["issues", num, "sub_issues"]) => {
            let parent = n(num);
            let Some(id) = body["sub_issue_id"].as_u64() else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Validation Failed: sub_issue_id",
                );
            };
            let Some(child) = data
                .issues
                .values()
                .find(|i| i["id"] == id)
                .map(|i| i["number"].as_u64().unwrap())
            else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            if data.subs.iter().any(|(_, c)| *c == child) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Validation Failed: sub-issue already has a parent",
                );
            }
            data.subs.push((parent, child));
            created(data.issues[&parent].clone())
        }
        ("GET", ["labels"]) => {
            let list: Vec<&Value> = data.labels.iter().collect();
            page(list, query, uri)
        }
        ("POST", ["labels"]) => {
            let Some(name) = body["name"].as_str() else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed: name");
            };
            let color = body["color"].as_str().unwrap_or("");
            if color.len() != 6 || !color.chars().all(|c| c.is_ascii_hexdigit()) {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed: color");
            }
            if data.labels.iter().any(|l| l["name"] == name) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Validation Failed: already_exists",
                );
            }
            let mut l = label_json(shared, data, name);
            l["color"] = json!(color);
            l["description"] = body["description"].clone();
            let last = data.labels.len() - 1;
            data.labels[last] = l.clone();
            created(l)
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

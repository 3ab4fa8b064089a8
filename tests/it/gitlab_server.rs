//! A stateful GitLab API test server (axum on 127.0.0.1): issues, notes, labels, resource
//! label events and issue links of one project, answering like GitLab. Its JSON starts from
//! GitLab's own documented responses in `tests/fixtures/gitlab/api/`. Merge requests that
//! reference its issues and releases of any project are `gitlab_facts.rs`. It checks
//! `PRIVATE-TOKEN` (each token is a user), pages with `x-next-page`/`x-total-pages`, runs
//! the quick actions `/label` and `/close` in bodies as GitLab does, logs every request,
//! and injects faults (429 with `Retry-After`, 5xx, a lost response, no answer at all, a
//! connection closed mid-response) and latency on demand. Lists filter by `state`,
//! `labels` and `updated_after`; notes can be deleted. Its clock can be moved: `travel`
//! shifts the time it stamps on what it records, and `hold_clock` holds it within one
//! second (stamps a millisecond apart, as GitLab's are; the `Date` it answers with).
//! Project feature flags and the instance's Features API are `gitlab_flags.rs`; deploy
//! freeze periods `gitlab_freezes.rs`.
//! What it shares with the GitHub server (its data, log, faults, clock and handler) is
//! `test_server.rs`; this file is what only GitLab has.

#![allow(dead_code)]

#[path = "gitlab_facts.rs"]
pub mod facts;
#[path = "gitlab_flags.rs"]
pub mod flags;
#[path = "gitlab_freezes.rs"]
pub mod freezes;

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

#[allow(unused_imports)] // the benchmarks inject no faults
pub use crate::test_server::Fault;
use crate::test_server::ReleaseKind::{self, *};
use crate::test_server::{add_comment, Request, Server, Tracked};
pub(crate) use crate::test_server::{created, ok, param};
use crate::test_server::{issues_asked, page_of, page_size, parse_time};

pub const PROJECT: &str = "group/project";

/// One request as the server saw it.
pub type Logged = crate::test_server::Logged<Sent>;

/// What GitLab's server logs of a request besides its method, path, query and user.
#[derive(Clone, Debug)]
pub struct Sent {
    pub form: Vec<(String, String)>,
    /// The body, when it was JSON.
    pub json: Option<Value>,
}

impl Sent {
    pub fn form(&self, key: &str) -> Option<&str> {
        param(&self.form, key)
    }
}

/// What the server keeps behind its lock (the issues' notes are its `comments`).
pub type Data = crate::test_server::Data<GitLab>;

/// What GitLab's server keeps besides what `Data` holds for both (its notes are `comments`,
/// its label events `events`).
#[derive(Default)]
pub struct Own {
    links: Vec<(u64, u64)>,
    rate_limit: Option<(u64, i64)>,
    /// Merge requests and releases (`gitlab_facts.rs`).
    facts: facts::Facts,
    /// Project feature flags and instance features (`gitlab_flags.rs`).
    flags: flags::Flags,
    /// Project members by username: their access level (10 Guest, 30 Developer, …).
    members: BTreeMap<String, u64>,
    /// Deploy freeze periods (`gitlab_freezes.rs`).
    freezes: freezes::Freezes,
}

/// A user's id on this server: the same for the same name.
pub fn user_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    }) % 1_000_000
        + 1
}

/// GitLab's part of what the server shares with its handler: its documented responses.
pub struct GitLab {
    fixtures: Fixtures,
}

/// What the server shares with its handler.
pub type Shared = crate::test_server::Shared<GitLab>;

struct Fixtures {
    issue: Value,
    note: Value,
    event: Value,
    label: Value,
    user: Value,
}

impl Tracked for GitLab {
    type Own = Own;
    type Sent = Sent;
    const FAULT: &'static str = "injected fault";
    const COMMENTS: &'static str = "user_notes_count";
    const ADDED: (&'static str, &'static str) = ("action", "add");

    fn comment_json(shared: &Shared, n: u64, id: u64, user: &str, body: &str, now: Stamp) -> Value {
        let mut note = shared.fixtures.note.clone();
        note["id"] = json!(id);
        note["body"] = json!(body);
        note["author"] = user_json(&shared.fixtures, user);
        note["created_at"] = time(now);
        note["updated_at"] = time(now);
        note["system"] = json!(false);
        note["noteable_iid"] = json!(n);
        note
    }
    /// Upcoming: as `kind` says, or when `at` is still to come, as GitLab decides.
    const RELEASES: &'static [ReleaseKind] = &[Published, Upcoming];

    fn stamp(t: DateTime<Utc>) -> Value {
        time(t)
    }
    /// Issues (created and updated), their notes and label events (created); merge
    /// requests and releases too when everything moves.
    fn shift(data: &mut Data, only: Option<u64>, d: chrono::Duration) {
        let mine = |n: u64| only.is_none_or(|o| o == n);
        let shift = |v: &mut Value, key: &str| {
            if let Some(t) = v[key].as_str().map(parse_time) {
                v[key] = time(t - d);
            }
        };
        for (_, issue) in data.issues.iter_mut().filter(|(n, _)| mine(**n)) {
            shift(issue, "created_at");
            shift(issue, "updated_at");
        }
        let recorded = data.comments.iter_mut().chain(data.events.iter_mut());
        for (_, v) in recorded.filter(|(n, _)| mine(*n)) {
            shift(v, "created_at");
        }
        if only.is_none() {
            data.own.facts.travel(d);
        }
    }
    fn error_body(message: &str) -> Value {
        json!({ "message": message })
    }
    /// The answer to one request; `None` for a request that is never answered.
    /// The form and JSON body of a request, and the user of its `PRIVATE-TOKEN`.
    fn read(shared: &Shared, request: &Request) -> (Sent, Result<String, Response>) {
        let (form, json) = (form_params(request), json_body(request));
        let user = request.header("private-token");
        let user = user.and_then(|t| shared.tokens.get(t)).cloned();
        let unauthorized = || error(StatusCode::UNAUTHORIZED, "401 Unauthorized");
        (Sent { form, json }, user.ok_or_else(unauthorized))
    }
    /// The answer to a request let in: feature flags (`flags`), or the project's issues,
    /// notes, labels, links and members, merge requests and releases of any project
    /// (`facts`), freeze periods (`freezes`); with the rate limit set and the pages linked.
    fn respond(shared: &Shared, data: &mut Data, r: &Request, sent: &Sent, user: &str) -> Response {
        let (method, uri, query) = (&r.method, &r.uri, &r.query);
        let (form, json) = (&sent.form, &sent.json);
        let now = shared.clock.now();
        let segments: Vec<String> = uri
            .path()
            .trim_start_matches("/api/v4/")
            .split('/')
            .map(|s| {
                url::form_urlencoded::parse(s.as_bytes())
                    .map(|(k, v)| {
                        if v.is_empty() {
                            k.into_owned()
                        } else {
                            format!("{k}={v}")
                        }
                    })
                    .collect::<String>()
            })
            .collect();
        // GitLab takes a project's numeric id (1 here) wherever it takes its path.
        let segs: Vec<&str> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| match (i, s.as_str()) {
                (1, "1") if segments[0] == "projects" => PROJECT,
                (_, s) => s,
            })
            .collect();
        let flag_answer = flags::route(
            data,
            method.as_str(),
            &segs,
            query,
            form,
            json.as_ref(),
            user,
        );
        let mut response = match flag_answer {
            Some(answer) => answer,
            None => route(shared, data, method, &segs, query, form, user, now),
        };
        if let Some((remaining, reset_in)) = data.rate_limit {
            let reset = (Utc::now().timestamp() + reset_in).to_string();
            response.headers_mut().insert(
                "ratelimit-remaining",
                HeaderValue::from_str(&remaining.to_string()).unwrap(),
            );
            response
                .headers_mut()
                .insert("ratelimit-reset", HeaderValue::from_str(&reset).unwrap());
        }
        link_pages(&mut response, r);
        response
    }
}

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gitlab/api")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// The server, as a test holds it.
pub type GitLabServer = Server<GitLab>;

impl GitLabServer {
    /// Starts a server; `tokens` maps each token to its user's name.
    pub fn start(tokens: &[(&str, &str)]) -> GitLabServer {
        let notes = fixture("list_issue_notes.json");
        let events = fixture("list_issue_resource_label_events.json");
        let issue = fixture("get_issue.json");
        let fixtures = Fixtures {
            user: issue["author"].clone(),
            issue,
            note: notes[1].clone(),
            event: events[0].clone(),
            label: fixture("create_label.json"),
        };
        Server::start_with(GitLab { fixtures }, tokens, 1000)
    }

    /// Makes `user` a project member with `level` (10 Guest, 30 Developer, …).
    pub fn set_member(&self, user: &str, level: u64) {
        self.shared
            .data
            .lock()
            .unwrap()
            .members
            .insert(user.to_string(), level);
    }

    /// Creates an issue directly in the server's state (no request, no log), as if a
    /// person had made it; returns its iid.
    pub fn seed(&self, title: &str, description: &str, labels: &[&str], user: &str) -> u64 {
        let now = self.shared.clock.now();
        let mut data = self.shared.data.lock().unwrap();
        let data = &mut *data;
        let form: Vec<(String, String)> = vec![
            ("title".into(), title.into()),
            ("description".into(), description.into()),
            ("labels".into(), labels.join(",")),
        ];
        let segs = ["projects", PROJECT, "issues"];
        let r = route(
            &self.shared,
            data,
            &Method::POST,
            &segs,
            &[],
            &form,
            user,
            now,
        );
        assert_eq!(r.status(), StatusCode::CREATED);
        *data.issues.keys().max().unwrap()
    }

    pub fn shared_clear_faults(&self) {
        self.clear_faults();
    }

    /// Sends `RateLimit-Remaining`/`RateLimit-Reset` (seconds from now) on every response.
    pub fn set_rate_limit(&self, remaining: u64, reset_in: i64) {
        self.shared.data.lock().unwrap().rate_limit = Some((remaining, reset_in));
    }

    /// Issue `iid`'s notes, oldest first.
    pub fn notes(&self, iid: u64) -> Vec<Value> {
        self.comments_of(iid)
    }

    /// A person's edit of an issue's description in GitLab's own editor: no request.
    pub fn edit_description(&self, iid: u64, description: &str, _user: &str) {
        let now = self.shared.clock.now();
        let mut data = self.shared.data.lock().unwrap();
        let issue = data.issues.get_mut(&iid).unwrap();
        issue["description"] = Value::String(description.to_string());
        issue["updated_at"] = time(now);
    }

    pub fn links(&self) -> Vec<(u64, u64)> {
        self.shared.data.lock().unwrap().links.clone()
    }
}

/// The parameters of a request body: form-encoded, or a JSON object (GitLab takes both;
/// python-gitlab sends JSON). A JSON array becomes a comma-separated list, as GitLab
/// accepts `labels` either way.
fn form_params(request: &Request) -> Vec<(String, String)> {
    let body = &request.body;
    if !request.is_json() {
        return url::form_urlencoded::parse(body).into_owned().collect();
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::Array(items) => (
                k.clone(),
                items.iter().map(text).collect::<Vec<_>>().join(","),
            ),
            v => (k.clone(), text(v)),
        })
        .collect()
}

/// The body, when it is JSON (feature flag strategies are nested: `form_params` flattens).
fn json_body(request: &Request) -> Option<Value> {
    let json = request.is_json();
    json.then(|| serde_json::from_slice(&request.body).ok())
        .flatten()
}

/// GitLab's `Link` header on a paged list (`rel="next"`, `"prev"`, `"first"`, `"last"`),
/// with the address the client used: python-gitlab follows it.
fn link_pages(response: &mut Response, request: &Request) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
    };
    let (Some(page), Some(last)) = (header("x-page"), header("x-total-pages")) else {
        return;
    };
    let (host, uri) = (request.header("host").unwrap_or("localhost"), &request.uri);
    let query = request.query.iter().filter(|(k, _)| k != "page");
    let to = |p: usize, rel: &str| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.extend_pairs(query.clone())
            .append_pair("page", &p.to_string());
        format!(
            "<http://{host}{}?{}>; rel=\"{rel}\"",
            uri.path(),
            q.finish()
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(to(page + 1, "next"));
    }
    if page > 1 {
        links.push(to(page - 1, "prev"));
    }
    links.push(to(1, "first"));
    links.push(to(last, "last"));
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        response.headers_mut().insert("link", v);
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    crate::test_server::error::<GitLab>(status, message)
}

/// A time the server stored.
fn stamp(v: &Value) -> DateTime<Utc> {
    parse_time(v.as_str().expect("a time"))
}

/// A user as GitLab shows one: the same id for the same name.
fn user_json(f: &Fixtures, user: &str) -> Value {
    let mut u = f.user.clone();
    u["username"] = json!(user);
    u["name"] = json!(user);
    u["id"] = json!(user_id(user));
    u
}

/// A time the server stamps a record with.
type Stamp = DateTime<Utc>;

fn time(t: DateTime<Utc>) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

#[allow(clippy::too_many_arguments)]
fn route(
    shared: &Shared,
    data: &mut Data,
    method: &Method,
    segs: &[&str],
    query: &[(String, String)],
    form: &[(String, String)],
    user: &str,
    now: DateTime<Utc>,
) -> Response {
    let f = &shared.fixtures;
    let user_json = || user_json(f, user);
    if let Some(answer) = facts::route(data, method.as_str(), segs, query) {
        return answer;
    }
    if let Some(answer) = freezes::route(data, method.as_str(), segs, query) {
        return answer;
    }
    match (method.as_str(), segs) {
        ("GET", ["user"]) => ok(user_json()),
        ("GET", ["projects", p, "issues"]) if *p == PROJECT => {
            // GitLab: "issues updated on or after the given time".
            let state = param(query, "state");
            let matching = issues_asked(&data.issues, query, state, "updated_after");
            paginate_refs(&matching, query)
        }
        ("POST", ["projects", p, "issues"]) if *p == PROJECT => {
            let Some(title) = param(form, "title") else {
                return error(StatusCode::BAD_REQUEST, "title is missing");
            };
            let iid = data.issues.keys().max().copied().unwrap_or(0) + 1;
            data.next_id += 1;
            let mut issue = f.issue.clone();
            issue["id"] = json!(data.next_id);
            issue["iid"] = json!(iid);
            issue["project_id"] = json!(1);
            issue["title"] = json!(title);
            issue["state"] = json!("opened");
            issue["labels"] = json!([]);
            issue["created_at"] = time(now);
            issue["updated_at"] = time(now);
            issue["closed_at"] = Value::Null;
            issue["closed_by"] = Value::Null;
            issue["author"] = user_json();
            issue["user_notes_count"] = json!(0);
            issue["web_url"] = json!(format!("http://gitlab.test/{PROJECT}/-/issues/{iid}"));
            let (description, actions) = quick_actions(param(form, "description").unwrap_or(""));
            issue["description"] = json!(description);
            data.issues.insert(iid, issue);
            let mut add: Vec<String> = param(form, "labels")
                .map(|l| {
                    l.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let mut close = false;
            for a in actions {
                match a {
                    Quick::Label(l) => add.extend(l),
                    Quick::Close => close = true,
                }
            }
            edit_labels(shared, data, iid, &add, &[], user, now);
            if close {
                data.issues.get_mut(&iid).unwrap()["state"] = json!("closed");
            }
            created(data.issues[&iid].clone())
        }
        ("GET", ["projects", p, "issues", iid]) if *p == PROJECT => {
            match data.issues.get(&iid.parse::<u64>().unwrap_or(0)) {
                Some(i) => ok(i.clone()),
                None => error(StatusCode::NOT_FOUND, "404 Not found"),
            }
        }
        ("PUT", ["projects", p, "issues", iid]) if *p == PROJECT => {
            let iid: u64 = iid.parse().unwrap_or(0);
            if !data.issues.contains_key(&iid) {
                return error(StatusCode::NOT_FOUND, "404 Not found");
            }
            if let Some(d) = param(form, "description") {
                let (d, actions) = quick_actions(d);
                data.issues.get_mut(&iid).unwrap()["description"] = json!(d);
                for a in actions {
                    match a {
                        Quick::Label(l) => edit_labels(shared, data, iid, &l, &[], user, now),
                        Quick::Close => {
                            data.issues.get_mut(&iid).unwrap()["state"] = json!("closed")
                        }
                    }
                }
            }
            let split = |k: &str| -> Vec<String> {
                param(form, k)
                    .map(|l| {
                        l.split(',')
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if let Some(all) = param(form, "labels") {
                let current: Vec<String> = data.issues[&iid]["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string())
                    .collect();
                let wanted: Vec<String> = all
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                let remove: Vec<String> = current
                    .iter()
                    .filter(|l| !wanted.contains(l))
                    .cloned()
                    .collect();
                edit_labels(shared, data, iid, &wanted, &remove, user, now);
            }
            edit_labels(
                shared,
                data,
                iid,
                &split("add_labels"),
                &split("remove_labels"),
                user,
                now,
            );
            match param(form, "state_event") {
                Some("close") => {
                    let i = data.issues.get_mut(&iid).unwrap();
                    i["state"] = json!("closed");
                    i["closed_at"] = time(now);
                }
                Some("reopen") => {
                    let i = data.issues.get_mut(&iid).unwrap();
                    i["state"] = json!("opened");
                    i["closed_at"] = Value::Null;
                }
                _ => {}
            }
            data.issues.get_mut(&iid).unwrap()["updated_at"] = time(now);
            ok(data.issues[&iid].clone())
        }
        // GitLab's "Get a member of a group or project, including inherited and invited
        // members" (the shape of its documented example).
        ("GET", ["projects", p, "members", "all", id]) if *p == PROJECT => {
            let id: u64 = id.parse().unwrap_or(0);
            match data.members.iter().find(|(name, _)| user_id(name) == id) {
                Some((name, level)) => ok(json!({
                    "id": id,
                    "username": name,
                    "name": name,
                    "state": "active",
                    "avatar_url": "https://www.gravatar.com/avatar/c2525a7f58ae3776070e44c106c48e15?s=80&d=identicon",
                    "web_url": format!("http://192.168.1.8:3000/{name}"),
                    "access_level": level,
                    "email": null,
                    "created_at": "2012-10-22T14:13:35Z",
                    "created_by": {"id": 2, "username": "john_doe", "name": "John Doe", "state": "active"},
                    "expires_at": null,
                    "group_saml_identity": null,
                    "membership_state": "active"
                })),
                None => error(StatusCode::NOT_FOUND, "404 Not found"),
            }
        }
        ("GET", ["projects", p, "issues", iid, "notes"]) if *p == PROJECT => {
            let iid: u64 = iid.parse().unwrap_or(0);
            let mut list: Vec<Value> = data
                .comments
                .iter()
                .filter(|(i, _)| *i == iid)
                .map(|(_, n)| n.clone())
                .collect();
            if param(query, "sort") != Some("asc") {
                list.reverse();
            }
            paginate(&list, query)
        }
        ("POST", ["projects", p, "issues", iid, "notes"]) if *p == PROJECT => {
            let iid: u64 = iid.parse().unwrap_or(0);
            if !data.issues.contains_key(&iid) {
                return error(StatusCode::NOT_FOUND, "404 Not found");
            }
            let (body, actions) = quick_actions(param(form, "body").unwrap_or(""));
            for a in actions {
                match a {
                    Quick::Label(l) => edit_labels(shared, data, iid, &l, &[], user, now),
                    Quick::Close => data.issues.get_mut(&iid).unwrap()["state"] = json!("closed"),
                }
            }
            created(add_comment(shared, data, iid, user, &body, now))
        }
        ("DELETE", ["projects", p, "issues", iid, "notes", id]) if *p == PROJECT => {
            let iid: u64 = iid.parse().unwrap_or(0);
            let id: u64 = id.parse().unwrap_or(0);
            let Some(at) = data
                .comments
                .iter()
                .position(|(i, n)| *i == iid && n["id"] == id)
            else {
                return error(StatusCode::NOT_FOUND, "404 Note Not Found");
            };
            data.comments.remove(at);
            let count = data.comments.iter().filter(|(i, _)| *i == iid).count();
            if let Some(issue) = data.issues.get_mut(&iid) {
                issue["user_notes_count"] = json!(count);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", ["projects", p, "issues", iid, "resource_label_events"]) if *p == PROJECT => {
            let iid: u64 = iid.parse().unwrap_or(0);
            let list: Vec<Value> = data
                .events
                .iter()
                .filter(|(i, _)| *i == iid)
                .map(|(_, e)| e.clone())
                .collect();
            paginate(&list, query)
        }
        ("GET", ["projects", p, "issues", iid, "links"]) if *p == PROJECT => {
            let iid: u64 = iid.parse().unwrap_or(0);
            let linked: Vec<Value> = data
                .links
                .iter()
                .filter_map(|(a, b)| {
                    if *a == iid {
                        Some(*b)
                    } else if *b == iid {
                        Some(*a)
                    } else {
                        None
                    }
                })
                .filter_map(|other| data.issues.get(&other).cloned())
                .map(|mut i| {
                    i["issue_link_id"] = json!(1);
                    i["link_type"] = json!("relates_to");
                    i
                })
                .collect();
            ok(Value::Array(linked))
        }
        ("POST", ["projects", p, "issues", iid, "links"]) if *p == PROJECT => {
            let a: u64 = iid.parse().unwrap_or(0);
            let b: u64 = param(form, "target_issue_iid")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if !data.issues.contains_key(&a) || !data.issues.contains_key(&b) {
                return error(StatusCode::NOT_FOUND, "404 Not found");
            }
            if data.links.iter().any(|l| *l == (a, b) || *l == (b, a)) {
                return error(StatusCode::CONFLICT, "Issue(s) already assigned");
            }
            data.links.push((a, b));
            created(
                json!({"source_issue": data.issues[&a], "target_issue": data.issues[&b], "link_type": "relates_to"}),
            )
        }
        ("GET", ["projects", p, "labels"]) if *p == PROJECT => {
            let list = data.labels.clone();
            paginate(&list, query)
        }
        ("POST", ["projects", p, "labels"]) if *p == PROJECT => {
            let Some(name) = param(form, "name") else {
                return error(StatusCode::BAD_REQUEST, "name is missing");
            };
            if data.labels.iter().any(|l| l["name"] == name) {
                return error(StatusCode::CONFLICT, "Label already exists");
            }
            let Some(color) = param(form, "color").filter(|c| c.starts_with('#') && c.len() == 7)
            else {
                return error(StatusCode::BAD_REQUEST, "color is invalid");
            };
            data.next_id += 1;
            let mut label = f.label.clone();
            label["id"] = json!(data.next_id);
            label["name"] = json!(name);
            label["color"] = json!(color);
            label["description"] = json!(param(form, "description"));
            data.labels.push(label.clone());
            created(label)
        }
        _ => error(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

fn paginate(list: &[Value], query: &[(String, String)]) -> Response {
    let refs: Vec<&Value> = list.iter().collect();
    paginate_refs(&refs, query)
}

/// One page of `list`, with GitLab's pagination headers; only that page is copied.
fn paginate_refs(list: &[&Value], query: &[(String, String)]) -> Response {
    let (items, page, pages) = page_of(list.iter().copied(), query, 20);
    let mut r = ok(Value::Array(items));
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: String| {
        h.insert(k, HeaderValue::from_str(&v).unwrap());
    };
    set(h, "x-page", page.to_string());
    set(h, "x-per-page", page_size(query, 20).to_string());
    set(h, "x-total", list.len().to_string());
    set(h, "x-total-pages", pages.to_string());
    set(
        h,
        "x-next-page",
        if page < pages {
            (page + 1).to_string()
        } else {
            String::new()
        },
    );
    set(
        h,
        "x-prev-page",
        if page > 1 {
            (page - 1).to_string()
        } else {
            String::new()
        },
    );
    r
}

fn edit_labels(
    shared: &Shared,
    data: &mut Data,
    iid: u64,
    add: &[String],
    remove: &[String],
    user: &str,
    now: DateTime<Utc>,
) {
    let f = &shared.fixtures;
    let mut current: Vec<String> = data.issues[&iid]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let mut changes = Vec::new();
    for l in remove {
        if let Some(i) = current.iter().position(|c| c == l) {
            current.remove(i);
            changes.push((l.clone(), "remove"));
        }
    }
    for l in add {
        if !current.contains(l) {
            current.push(l.clone());
            changes.push((l.clone(), "add"));
        }
    }
    for (label, action) in changes {
        if !data.labels.iter().any(|x| x["name"] == label.as_str()) {
            data.next_id += 1;
            let mut new = f.label.clone();
            new["id"] = json!(data.next_id);
            new["name"] = json!(label);
            data.labels.push(new);
        }
        data.next_id += 1;
        let mut e = f.event.clone();
        e["id"] = json!(data.next_id);
        e["user"]["username"] = json!(user);
        e["user"]["name"] = json!(user);
        e["created_at"] = time(now);
        e["resource_id"] = data.issues[&iid]["id"].clone();
        e["label"]["name"] = json!(label);
        e["action"] = json!(action);
        data.events.push((iid, e));
    }
    data.issues.get_mut(&iid).unwrap()["labels"] = json!(current);
}

enum Quick {
    Label(Vec<String>),
    Close,
}

/// GitLab runs quick actions on lines that start with them, outside code blocks, and
/// removes those lines.
fn quick_actions(text: &str) -> (String, Vec<Quick>) {
    let mut kept = Vec::new();
    let mut actions = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced {
            if let Some(rest) = line.strip_prefix("/label ") {
                let mut labels = Vec::new();
                let mut rest = rest.trim();
                while let Some(r) = rest.strip_prefix('~') {
                    if let Some(q) = r.strip_prefix('"') {
                        let end = q.find('"').unwrap_or(q.len());
                        labels.push(q[..end].to_string());
                        rest = q.get(end + 1..).unwrap_or("").trim_start();
                    } else {
                        let end = r.find(' ').unwrap_or(r.len());
                        labels.push(r[..end].to_string());
                        rest = r[end..].trim_start();
                    }
                }
                actions.push(Quick::Label(labels));
                continue;
            }
            if line.trim_end() == "/close" {
                actions.push(Quick::Close);
                continue;
            }
        }
        kept.push(line);
    }
    (kept.join("\n"), actions)
}

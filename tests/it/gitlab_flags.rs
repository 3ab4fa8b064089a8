//! The test GitLab's feature flags (a module of `gitlab_server`), stateful, answering from
//! GitLab's documented examples:
//!
//! - project feature flags of its project (`/projects/:id/feature_flags[/:name]`: list,
//!   get, create, update, delete), each flag built from the "Get a single feature flag"
//!   example. `POST` and `PUT` take JSON as GitLab does: strategies with scopes; a
//!   strategy with an `id` is updated (or removed with `_destroy`), one without is added;
//!   scopes likewise. Names and strategy parameters are checked as GitLab checks them
//!   (400 with GitLab's validation messages); an unknown strategy id is 404. A user made a
//!   Reporter (`set_reporter`) may read but not write (403).
//! - the instance's Features API (`/features`, `POST /features/:name`, `DELETE`), each
//!   feature built from the "Set or create a feature" example, with Flipper's rules:
//!   `value=true|false` clears the other gates, a number sets `percentage_of_time` (or
//!   `percentage_of_actors` with `key`), `state` is `on` when the boolean gate is or the
//!   percentage of time is 100. Only administrators (`set_admin`) may use it: 403 for
//!   anyone else, as `authenticated_as_admin!` answers.
//!
//! Tests seed both directly (`set_project_flag`, `set_instance_feature`) and read them back
//! (`project_flag`, `instance_feature`); requests are logged with the others.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::{created, error, fixture, ok, paginate, param, time, Data, GitLabServer, PROJECT};

/// A strategy to seed: its name, parameters and environment scopes.
#[derive(Clone, Debug)]
pub struct Strategy {
    pub name: String,
    pub parameters: Value,
    pub scopes: Vec<String>,
}

impl Strategy {
    fn new(name: &str, parameters: Value, scopes: &[&str]) -> Strategy {
        Strategy {
            name: name.to_string(),
            parameters,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `default`: on for everyone.
    pub fn on(scopes: &[&str]) -> Strategy {
        Strategy::new("default", json!({}), scopes)
    }

    /// `flexibleRollout` at `percent`, as GitLab's UI makes it.
    pub fn rollout(percent: u32, scopes: &[&str]) -> Strategy {
        Strategy::new(
            "flexibleRollout",
            json!({"groupId": "default", "rollout": percent.to_string(), "stickiness": "default"}),
            scopes,
        )
    }

    /// `gradualRolloutUserId` at `percent`.
    pub fn gradual(percent: u32, scopes: &[&str]) -> Strategy {
        Strategy::new(
            "gradualRolloutUserId",
            json!({"groupId": "default", "percentage": percent.to_string()}),
            scopes,
        )
    }

    /// `userWithId`: on for the users named (comma-separated).
    pub fn users(ids: &str, scopes: &[&str]) -> Strategy {
        Strategy::new("userWithId", json!({"userIds": ids}), scopes)
    }
}

/// An instance feature's gates, to seed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gates {
    pub boolean: bool,
    pub percentage_of_time: Option<f64>,
    pub percentage_of_actors: Option<f64>,
}

pub struct Flags {
    /// Project feature flags by name, as GitLab answers them.
    project: BTreeMap<String, Value>,
    /// Instance features by name.
    features: BTreeMap<String, Gates>,
    admins: BTreeSet<String>,
    reporters: BTreeSet<String>,
    next_id: u64,
    flag: Value,
    feature: Value,
}

impl Default for Flags {
    fn default() -> Flags {
        let flag = fixture("get_feature_flag.json");
        let feature = fixture("set_feature.json");
        Flags {
            project: BTreeMap::new(),
            features: BTreeMap::new(),
            admins: BTreeSet::new(),
            reporters: BTreeSet::new(),
            next_id: 100,
            flag,
            feature,
        }
    }
}

impl Flags {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A new flag from the documented example.
    fn new_flag(&self, name: &str, active: bool, description: Option<&str>) -> Value {
        let now = time(Utc::now());
        let mut f = self.flag.clone();
        f["name"] = json!(name);
        f["active"] = json!(active);
        f["description"] = json!(description);
        f["version"] = json!("new_version_flag");
        f["created_at"] = now.clone();
        f["updated_at"] = now;
        f["strategies"] = json!([]);
        f
    }

    fn strategy(&mut self, name: &str, parameters: Value, scopes: &[String]) -> Value {
        let id = self.id();
        let scopes: Vec<Value> = scopes
            .iter()
            .map(|s| json!({"id": self.id(), "environment_scope": s}))
            .collect();
        json!({"id": id, "name": name, "parameters": parameters, "scopes": scopes, "user_list": null})
    }

    /// A new strategy from a request's `s`: its name, parameters and environment scopes.
    fn new_strategy(&mut self, s: &Value) -> Value {
        let scopes: Vec<String> = s["scopes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["environment_scope"].as_str())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let name = s["name"].as_str().unwrap_or("");
        self.strategy(name, parameters(&s["parameters"]), &scopes)
    }

    /// What is wrong with `name` for a new project flag, taken names included.
    fn new_name_problems(&self, name: &str) -> Vec<String> {
        let mut problems = name_problems(name);
        if self.project.contains_key(name) {
            problems.push("Name has already been taken".into());
        }
        problems
    }

    /// A feature as the Features API answers it.
    fn feature_json(&self, name: &str, gates: &Gates) -> Value {
        let mut v = self.feature.clone();
        v["name"] = json!(name);
        v["state"] = json!(feature_state(gates));
        let mut list = vec![json!({"key": "boolean", "value": gates.boolean})];
        for (key, value) in [
            ("percentage_of_time", gates.percentage_of_time),
            ("percentage_of_actors", gates.percentage_of_actors),
        ] {
            if let Some(p) = value.filter(|p| *p > 0.0) {
                list.push(json!({"key": key, "value": number(p)}));
            }
        }
        v["gates"] = Value::Array(list);
        v["definition"] = Value::Null;
        v
    }
}

/// Flipper's `Feature#state`.
fn feature_state(g: &Gates) -> &'static str {
    if g.boolean || g.percentage_of_time == Some(100.0) {
        "on"
    } else if g.percentage_of_time.is_some_and(|p| p > 0.0)
        || g.percentage_of_actors.is_some_and(|p| p > 0.0)
    {
        "conditional"
    } else {
        "off"
    }
}

/// A whole number as an integer, as GitLab shows `30`.
fn number(p: f64) -> Value {
    if p.fract() == 0.0 {
        json!(p as u64)
    } else {
        json!(p)
    }
}

impl GitLabServer {
    /// Makes `user` an administrator (who may use `/features`) or not.
    pub fn set_admin(&self, user: &str, admin: bool) {
        let mut data = self.shared.data.lock().unwrap();
        if admin {
            data.flags.admins.insert(user.to_string());
        } else {
            data.flags.admins.remove(user);
        }
    }

    /// Makes `user` a Reporter of the project (may read feature flags, not change them).
    pub fn set_reporter(&self, user: &str, reporter: bool) {
        let mut data = self.shared.data.lock().unwrap();
        if reporter {
            data.flags.reporters.insert(user.to_string());
        } else {
            data.flags.reporters.remove(user);
        }
    }

    /// Creates (or replaces) project feature flag `name` with these strategies, as a
    /// person would in GitLab's UI (no request, no log).
    pub fn set_project_flag(&self, name: &str, active: bool, strategies: &[Strategy]) {
        let mut data = self.shared.data.lock().unwrap();
        let flags = &mut data.flags;
        let mut flag = flags.new_flag(name, active, None);
        let list: Vec<Value> = strategies
            .iter()
            .map(|s| flags.strategy(&s.name, s.parameters.clone(), &s.scopes))
            .collect();
        flag["strategies"] = Value::Array(list);
        flags.project.insert(name.to_string(), flag);
    }

    /// Project feature flag `name` as GitLab would answer it, if there is one.
    pub fn project_flag(&self, name: &str) -> Option<Value> {
        self.shared
            .data
            .lock()
            .unwrap()
            .flags
            .project
            .get(name)
            .cloned()
    }

    /// Creates (or replaces) instance feature `name` with these gates.
    pub fn set_instance_feature(&self, name: &str, gates: Gates) {
        let mut data = self.shared.data.lock().unwrap();
        data.flags.features.insert(name.to_string(), gates);
    }

    /// Instance feature `name` as the Features API would answer it, if there is one.
    pub fn instance_feature(&self, name: &str) -> Option<Value> {
        let data = self.shared.data.lock().unwrap();
        let flags = &data.flags;
        flags
            .features
            .get(name)
            .map(|g| flags.feature_json(name, g))
    }
}

/// The answer to a request about feature flags; `None` for other requests.
pub(super) fn route(
    data: &mut Data,
    method: &str,
    segs: &[&str],
    query: &[(String, String)],
    form: &[(String, String)],
    body: Option<&Value>,
    user: &str,
) -> Option<Response> {
    let flags = &mut data.flags;
    let writes = method != "GET";
    match (method, segs) {
        (_, ["projects", p, "feature_flags", ..]) if *p == PROJECT => {
            if writes && flags.reporters.contains(user) {
                return Some(error(StatusCode::FORBIDDEN, "403 Forbidden"));
            }
            let empty = json!({});
            let body = body.unwrap_or(&empty);
            Some(project_flags(flags, method, &segs[3..], query, body))
        }
        (_, ["features", ..]) => {
            if !flags.admins.contains(user) {
                return Some(error(StatusCode::FORBIDDEN, "403 Forbidden"));
            }
            Some(features(flags, method, &segs[1..], form))
        }
        _ => None,
    }
}

/// GitLab's answer to a failed validation: `{"message": [full messages]}`, 400.
fn invalid(messages: &[String]) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "message": messages })),
    )
        .into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "404 Not found")
}

fn project_flags(
    flags: &mut Flags,
    method: &str,
    rest: &[&str],
    query: &[(String, String)],
    body: &Value,
) -> Response {
    match (method, rest) {
        ("GET", []) => {
            let list: Vec<Value> = flags.project.values().cloned().collect();
            paginate(&list, query)
        }
        ("POST", []) => {
            let Some(name) = body["name"].as_str() else {
                return error(StatusCode::BAD_REQUEST, "400 Bad request - name is missing");
            };
            let mut problems = flags.new_name_problems(name);
            if body["version"] != "new_version_flag" {
                // GitLab would make a legacy flag, which this server does not keep.
                return error(
                    StatusCode::BAD_REQUEST,
                    "400 Bad request - this test server keeps only version new_version_flag",
                );
            }
            let active = body["active"].as_bool().unwrap_or(true);
            let mut flag = flags.new_flag(name, active, body["description"].as_str());
            let strategies: Vec<Value> = body["strategies"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|s| flags.new_strategy(s))
                .collect();
            problems.extend(strategy_problems(&strategies));
            if !problems.is_empty() {
                return invalid(&problems);
            }
            flag["strategies"] = Value::Array(strategies);
            flags.project.insert(name.to_string(), flag.clone());
            created(flag)
        }
        ("GET", [name]) => match flags.project.get(*name) {
            Some(flag) => ok(flag.clone()),
            None => not_found(),
        },
        ("PUT", [name]) => {
            let Some(mut flag) = flags.project.get(*name).cloned() else {
                return not_found();
            };
            if let Some(active) = body["active"].as_bool() {
                flag["active"] = json!(active);
            }
            if let Some(d) = body.get("description") {
                flag["description"] = d.clone();
            }
            let mut problems = Vec::new();
            let mut renamed = None;
            if let Some(new) = body["name"].as_str().filter(|n| n != name) {
                problems = flags.new_name_problems(new);
                flag["name"] = json!(new);
                renamed = Some(new.to_string());
            }
            let mut strategies: Vec<Value> =
                flag["strategies"].as_array().cloned().unwrap_or_default();
            for change in body["strategies"].as_array().cloned().unwrap_or_default() {
                match change["id"].as_u64() {
                    Some(id) => {
                        let Some(at) = strategies.iter().position(|s| s["id"] == id) else {
                            return not_found();
                        };
                        if change["_destroy"] == true {
                            strategies.remove(at);
                            continue;
                        }
                        if let Some(n) = change["name"].as_str() {
                            strategies[at]["name"] = json!(n);
                        }
                        if change.get("parameters").is_some() {
                            strategies[at]["parameters"] = parameters(&change["parameters"]);
                        }
                        let scopes = change["scopes"].as_array().cloned().unwrap_or_default();
                        for scope in scopes {
                            let list = strategies[at]["scopes"].as_array_mut().unwrap();
                            match scope["id"].as_u64() {
                                Some(sid) => {
                                    let Some(i) = list.iter().position(|x| x["id"] == sid) else {
                                        return not_found();
                                    };
                                    if scope["_destroy"] == true {
                                        list.remove(i);
                                    } else if let Some(e) = scope["environment_scope"].as_str() {
                                        list[i]["environment_scope"] = json!(e);
                                    }
                                }
                                None => {
                                    let e = scope["environment_scope"].as_str().unwrap_or("");
                                    let sid = flags.id();
                                    let list = strategies[at]["scopes"].as_array_mut().unwrap();
                                    list.push(json!({"id": sid, "environment_scope": e}));
                                }
                            }
                        }
                    }
                    None => strategies.push(flags.new_strategy(&change)),
                }
            }
            problems.extend(strategy_problems(&strategies));
            if !problems.is_empty() {
                return invalid(&problems);
            }
            flag["strategies"] = Value::Array(strategies);
            flag["updated_at"] = time(Utc::now());
            flags.project.remove(*name);
            let key = renamed.unwrap_or_else(|| name.to_string());
            flags.project.insert(key, flag.clone());
            ok(flag)
        }
        ("DELETE", [name]) => match flags.project.remove(*name) {
            // GitLab answers with the flag it deleted.
            Some(flag) => ok(flag),
            None => not_found(),
        },
        _ => not_found(),
    }
}

/// Strategy parameters as GitLab takes them: a JSON object, or a string holding one.
fn parameters(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Value::Null => json!({}),
        v => v.clone(),
    }
}

/// `Gitlab::Regex.feature_flag_regex` and its message.
fn name_problems(name: &str) -> Vec<String> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
        && !matches!(b[b.len() - 1], b'_' | b'-');
    let mut problems = Vec::new();
    if !ok {
        problems.push(
            "Name can contain only lowercase letters, digits, '_' and '-'. Must start with a \
             letter, and cannot end with '-' or '_'"
                .to_string(),
        );
    }
    problems
}

/// The checks GitLab makes of each strategy's name and parameters.
fn strategy_problems(strategies: &[Value]) -> Vec<String> {
    let percent = |v: &Value| {
        v.as_str()
            .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u32>().ok())
            .is_some_and(|p| p <= 100)
    };
    let group = |v: &Value| {
        v.as_str().is_some_and(|s| {
            (1..=32).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_lowercase())
        })
    };
    let keys = |p: &Map<String, Value>, want: &[&str]| {
        let mut have: Vec<&str> = p.keys().map(String::as_str).collect();
        have.sort_unstable();
        have == want
    };
    let mut problems = Vec::new();
    for s in strategies {
        let empty = Map::new();
        let p = s["parameters"].as_object().unwrap_or(&empty);
        let fine = match s["name"].as_str().unwrap_or("") {
            "default" => p.is_empty(),
            "flexibleRollout" => {
                keys(p, &["groupId", "rollout", "stickiness"])
                    && percent(&p["rollout"])
                    && group(&p["groupId"])
                    && matches!(
                        p["stickiness"].as_str(),
                        Some("default" | "userId" | "sessionId" | "random")
                    )
            }
            "gradualRolloutUserId" => {
                keys(p, &["groupId", "percentage"])
                    && percent(&p["percentage"])
                    && group(&p["groupId"])
            }
            "userWithId" => keys(p, &["userIds"]) && p["userIds"].is_string(),
            "gitlabUserList" => p.is_empty(),
            _ => {
                problems.push("Strategies name strategy name is invalid".to_string());
                continue;
            }
        };
        if !fine {
            problems.push("Strategies parameters are invalid".to_string());
        }
    }
    problems
}

fn features(flags: &mut Flags, method: &str, rest: &[&str], form: &[(String, String)]) -> Response {
    match (method, rest) {
        ("GET", []) => {
            let list: Vec<Value> = flags
                .features
                .iter()
                .map(|(name, gates)| flags.feature_json(name, gates))
                .collect();
            ok(Value::Array(list))
        }
        ("POST", [name]) => {
            let Some(value) = param(form, "value") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "400 Bad request - value is missing",
                );
            };
            let mut gates = flags.features.get(*name).copied().unwrap_or_default();
            match value {
                "true" => {
                    gates = Gates {
                        boolean: true,
                        ..Gates::default()
                    }
                }
                "0" | "false" => gates = Gates::default(),
                v => {
                    let numeric = v.split_once('.').map_or(
                        !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()),
                        |(a, b)| {
                            !a.is_empty()
                                && !b.is_empty()
                                && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
                        },
                    );
                    let Some(p) = v.parse::<f64>().ok().filter(|_| numeric) else {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &format!("400 Bad request - Value must be boolean or numeric, got {v}"),
                        );
                    };
                    if p > 100.0 {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &format!("400 Bad request - value must be a positive number less than or equal to 100, but was {v}"),
                        );
                    }
                    if param(form, "key") == Some("percentage_of_actors") {
                        gates.percentage_of_actors = Some(p);
                    } else {
                        gates.percentage_of_time = Some(p);
                    }
                }
            }
            flags.features.insert(name.to_string(), gates);
            // `Feature.get` after the change, `201 Created` as Grape answers a POST.
            created(flags.feature_json(name, &gates))
        }
        ("DELETE", [name]) => {
            flags.features.remove(*name);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(),
    }
}
